"""STaR for the small decoder (spec parity_cot.md §3, Algorithm 1), on top of `rl.star.star_round`.

One round: draw N prompts online (`RLTask.sample_prompts`), sample one response each (KV-cache
sampler at the run's temperature / top-p), score it with the task's verifier, keep the pairs with
reward 1, then run E epochs of next-token prediction on the kept pairs from the current parameters
and optimiser state (the optimiser state is carried from round to round: `star_round`'s "params"
are a `FitState`, the pair of parameters and optimiser state).

Static shapes: nothing is gathered. The 0/1 keep weights multiply the loss mask. Every epoch draws
a random order with the kept pairs first, then runs N / B mini-batch steps of B pairs; a step
whose mini-batch holds no kept pair leaves parameters and optimiser state untouched (Adam would
otherwise keep moving on its momentum), so an epoch makes exactly ceil(K / B) updates for K kept
pairs: E epochs of NTP over the kept set. (A last, partly kept mini-batch averages over its kept
tokens only, like any smaller batch.)

    spec = StarSpec(prompts_per_round=8192, epochs=1, batch_size=512)
    program = star_program(model_spec, sampler, spec, optim, task, num_chunks=..., rounds_per_chunk=1,
                           data_fn=..., eval_fn=...)      # hp: an lm_runs.RLHp
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from theoryrl.core import prng
from theoryrl.core.config import require
from theoryrl.core.experiment import Program
from theoryrl.models import transformer as tfm
from theoryrl.rl import lm_rl, lm_runs, ntp, sampling, star


@dataclasses.dataclass(frozen=True)
class StarSpec:
    """N fresh prompts per round, E epochs of NTP on the kept pairs in mini-batches of B."""

    prompts_per_round: int = 8192
    epochs: int = 1
    batch_size: int = 512

    def validate(self) -> None:
        require(self.batch_size >= 1, "batch_size", self.batch_size, ">= 1")
        require(self.prompts_per_round >= self.batch_size and self.prompts_per_round % self.batch_size == 0,
                "prompts_per_round", self.prompts_per_round, f"a positive multiple of batch_size = {self.batch_size}")
        require(self.epochs >= 1, "epochs", self.epochs, ">= 1")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class FitState:
    """What the NTP fit of a STaR round updates: parameters and the AdamW state carried across rounds."""

    params: Any
    opt: Any


def response_sequences(prompts_NxL, prompt_mask_NxL, response_NxT, mask_NxT):
    """(tokens_NxS, kv_mask_NxS, positions_NxS, loss_mask_NxS), S = L + T: prompt + response rows as
    the sampler decoded them (left-padded prompts keep their RoPE positions); the loss mask marks
    the valid response tokens (EOS included) as targets, never a prompt token."""
    if response_NxT.ndim != 2 or mask_NxT.shape != response_NxT.shape:
        raise ValueError(f"need response and mask of equal shape [N, T], got {response_NxT.shape}, {mask_NxT.shape}")
    if prompts_NxL.ndim != 2 or prompts_NxL.shape[0] != response_NxT.shape[0]:
        raise ValueError(f"prompts must be [N, L] with N = {response_NxT.shape[0]}, got {prompts_NxL.shape}")
    n, t = response_NxT.shape
    mask_Nx1xT = mask_NxT.astype(jnp.float32)[:, None, :]
    rollout = sampling.Rollout(tokens_PxGxT=response_NxT[:, None, :], logp_PxGxT=jnp.zeros_like(mask_Nx1xT),
                               mask_PxGxT=mask_Nx1xT, length_PxG=jnp.sum(mask_NxT, axis=1, dtype=jnp.int32)[:, None],
                               finished_PxG=jnp.ones((n, 1), bool))
    tokens, kv_mask, positions, response_mask_NxSm1 = sampling.full_sequences(prompts_NxL, prompt_mask_NxL, rollout)
    # logp column s scores token s + 1, so the target mask is the response mask shifted right by one
    loss_mask = jnp.concatenate([jnp.zeros((n, 1), jnp.float32), response_mask_NxSm1], axis=1)
    return tokens, kv_mask, positions, loss_mask


def _kept_first_order(key, weight_N):
    """A random permutation of 0..N-1 with every kept (weight > 0) index before every dropped one."""
    perm = jax.random.permutation(key, weight_N.shape[0])
    return perm[jnp.argsort(weight_N[perm] <= 0, stable=True)]


def fit(model_spec: tfm.TransformerSpec, tx: optax.GradientTransformation, state: FitState, key, seqs, weight_N,
        *, epochs: int, batch_size: int) -> tuple[FitState, dict]:
    """E epochs of weighted NTP over the rows of `seqs` = response_sequences(...): returns (state, metrics).

    weight_N (0/1) multiplies each row's loss mask (see module docstring).
    """
    tokens, kv_mask, positions, loss_mask = seqs
    n = tokens.shape[0]
    if weight_N.shape != (n,):
        raise ValueError(f"weight_N must be [{n}], got {weight_N.shape}")
    if n % batch_size:
        raise ValueError(f"{n} rows do not split into mini-batches of {batch_size}")
    steps = n // batch_size

    def step(carry, idx_B):
        params, opt = carry
        mask_BxS = loss_mask[idx_B] * weight_N[idx_B][:, None]
        active = jnp.sum(mask_BxS) > 0
        new_params, new_opt, m = ntp.ntp_step(model_spec, tx, params, opt, tokens[idx_B], mask_BxS,
                                              kv_mask_BxT=kv_mask[idx_B], positions_BxT=positions[idx_B])
        keep_new = lambda new, old: jax.tree.map(lambda a, b: jnp.where(active, a, b), new, old)  # noqa: E731
        return (keep_new(new_params, params), keep_new(new_opt, opt)), (m["loss"], active)

    carry = (state.params, state.opt)
    losses, actives = [], []
    for e in range(epochs):
        order_N = _kept_first_order(jax.random.fold_in(key, e), weight_N)
        carry, (loss_S, active_S) = jax.lax.scan(step, carry, order_N.reshape(steps, batch_size))
        losses.append(loss_S)
        actives.append(active_S)
    loss, active = jnp.concatenate(losses), jnp.concatenate(actives).astype(jnp.float32)
    metrics = {"loss": jnp.sum(loss * active) / jnp.maximum(jnp.sum(active), 1.0), "fit_updates": jnp.sum(active)}
    return FitState(params=carry[0], opt=carry[1]), metrics


def star_step(model_spec, sampler: sampling.SamplerSpec, spec: StarSpec, tx: optax.GradientTransformation,
              task: lm_rl.RLTask, state: lm_rl.TrainState, hp: lm_runs.RLHp) -> tuple[lm_rl.TrainState, dict]:
    """One STaR round of one run (state.step counts rounds)."""
    t = state.step

    def prompt_fn(key):
        return task.sample_prompts(key, hp, spec.prompts_per_round)

    def sample_fn(st: FitState, key, prompts):
        rollout = sampling.sample(model_spec, st.params, prompts[0], prompts[1], key, 1, sampler,
                                  temperature=hp.temperature, top_p=hp.top_p)
        return rollout.tokens_PxGxT[:, 0], rollout.mask_PxGxT[:, 0]

    def reward_fn(prompts, response_NxT, mask_NxT):
        return task.score(prompts[2], response_NxT, mask_NxT)["reward"].astype(jnp.float32)

    def fit_fn(st: FitState, key, prompts, response_NxT, mask_NxT, weight_N):
        seqs = response_sequences(prompts[0], prompts[1], response_NxT, mask_NxT)
        # star_round hands back whatever fit_fn returns: the fit's metrics ride along
        return fit(model_spec, tx, st, key, seqs, weight_N, epochs=spec.epochs, batch_size=spec.batch_size)

    key = prng.step_key(prng.root_key(hp.seed), prng.Stream.POLICY, t)
    (new, fit_metrics), ro = star.star_round(FitState(params=state.params, opt=state.opt), key, prompt_fn=prompt_fn,
                                             sample_fn=sample_fn, reward_fn=reward_fn, fit_fn=fit_fn)
    scores = task.score(ro.prompts[2], ro.outputs, ro.length)
    metrics = {**fit_metrics, "reward": jnp.mean(ro.reward),
               "kept": jnp.mean(ro.keep), "response_len": jnp.mean(jnp.sum(ro.length, axis=1)),
               **{f"train_{k}": jnp.mean(v.astype(jnp.float32)) for k, v in scores.items() if k != "reward"}}
    return lm_rl.TrainState(new.params, new.opt, t + 1), metrics


def star_program(model_spec, sampler: sampling.SamplerSpec, spec: StarSpec, optim: ntp.OptimSpec,
                 task: lm_rl.RLTask, *, num_chunks: int, rounds_per_chunk: int, data_fn: Callable,
                 eval_fn: Callable) -> Program:
    """STaR rounds from `hp.init_params` with a fresh optimiser (hp an `lm_runs.RLHp`); `eval_fn(params, hp,
    data)` after every chunk of `rounds_per_chunk` rounds."""
    spec.validate()

    def init_fn(hp: lm_runs.RLHp):
        tx = ntp.make_optimizer(optim, lr_scale=hp.lr_scale)
        return lm_rl.TrainState(hp.init_params, tx.init(hp.init_params), jnp.int32(0))

    def chunk_fn(state: lm_rl.TrainState, hp: lm_runs.RLHp, data):
        tx = ntp.make_optimizer(optim, lr_scale=hp.lr_scale)
        state, metrics = jax.lax.scan(lambda st, _: star_step(model_spec, sampler, spec, tx, task, st, hp), state,
                                      None, length=rounds_per_chunk)
        metrics = {k: jnp.mean(v, axis=0) for k, v in metrics.items()}
        metrics.update(eval_fn(state.params, hp, data))
        return state, metrics

    return Program(data_fn=data_fn, init_fn=init_fn, chunk_fn=chunk_fn, num_chunks=num_chunks,
                   steps_per_chunk=rounds_per_chunk,
                   final_fn=lambda state: lm_runs.params_to_arrays(state.params))
