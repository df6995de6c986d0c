"""Outcome-reward RL for the small decoder: one step of any algorithm of the zoo.

One RL step (spec `rl_algorithms.md` §2-§5, §7) is `collect` -> `advantage_batch` -> `update`:
1. draw prompts online (`RLTask.sample_prompts`), G responses per prompt by tiling (KV-cache sampler);
2. score them with the task's verifier, natively shaped [prompts, G];
3. one forward pass over prompt + response gives the behaviour ("old") log-probs (with a single
   on-policy update, the update's own pass with its gradient stopped serves instead), the value head's
   values (PPO) and, with a second pass, the frozen reference's log-probs (KL);
4. advantages from `rl.advantages.compute_advantages` (GRPO ... GAE), with the hooks later papers
   need (bonus on masked tokens, DAPO keep mask, KL in the reward);
5. `ppo_epochs` x `num_minibatches` AdamW updates on `rl.losses.policy_loss` (+ the PPO value loss),
   two nested `lax.scan`s, so the update is traced once whatever the counts.
With one update per rollout batch the surrogate's gradient is the policy gradient (ratio 1).

Everything is a pure function of (TrainState, hp): hp is an `lm_runs.RLHp` holding the run's seed,
`lr_scale`, `temperature`, `top_p` and, in `hp.task`, the task's own traced knobs, so a sweep vmaps
over them (the step reads seed, temperature and top_p; the task reads what it needs).
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable

import jax
import jax.numpy as jnp
import optax

from theoryrl.core import prng
from theoryrl.core.config import require
from theoryrl.eval import lm_eval
from theoryrl.models import transformer as tfm
from theoryrl.rl import advantages as adv_lib
from theoryrl.rl import losses as loss_lib
from theoryrl.rl import sampling

if TYPE_CHECKING:  # lm_runs builds programs on this module
    from theoryrl.rl.lm_runs import RLHp


@dataclasses.dataclass(frozen=True)
class RLSpec:
    """Static settings of the RL update (traced ones — lr, temperature, top-p — live in hp)."""

    prompts_per_step: int = 16
    group_size: int = 8
    advantage: adv_lib.AdvantageSpec = adv_lib.AdvantageSpec()
    loss: loss_lib.LossSpec = loss_lib.LossSpec()
    num_minibatches: int = 1  # sequential updates per rollout batch (later ones are off-policy)
    ppo_epochs: int = 1
    oversample: int = 1  # DAPO dynamic sampling: draw this many x prompts, train on informative groups first
    overlong_cache: int = 0  # DAPO overlong shaping: linear penalty over the last this-many tokens (0 = off)
    value_coef: float = 0.5  # weight of the PPO value loss (estimator "gae" only)

    def validate(self) -> None:
        require(self.prompts_per_step >= 1, "prompts_per_step", self.prompts_per_step, ">= 1")
        require(self.group_size >= 1, "group_size", self.group_size, ">= 1")
        require(self.advantage.estimator != "rloo" or self.group_size >= 2, "group_size", self.group_size,
                ">= 2 for rloo")
        require(self.num_minibatches >= 1 and self.prompts_per_step % self.num_minibatches == 0,
                "num_minibatches", self.num_minibatches, f">= 1 and dividing prompts_per_step = {self.prompts_per_step}")
        require(self.ppo_epochs >= 1, "ppo_epochs", self.ppo_epochs, ">= 1")
        require(self.oversample >= 1, "oversample", self.oversample, ">= 1")
        require(self.overlong_cache >= 0, "overlong_cache", self.overlong_cache, ">= 0")
        require(self.value_coef >= 0, "value_coef", self.value_coef, ">= 0")
        self.advantage.validate()
        self.loss.validate()


@dataclasses.dataclass(frozen=True)
class RLTask:
    """What the RL step needs from a task (pure JAX callables; `hp.task` carries the task's traced knobs).

    sample_prompts(key, hp, n) -> (prompts_NxL, prompt_mask_NxL or None, problems pytree with leading N)
    score(problems, response_NxT, mask_NxT) -> dict of [N] arrays; "reward" is the outcome reward and
        every other entry is reported as a metric (e.g. "process_correct").
    shape(scores_PxG, rollout) -> dict of extra `compute_advantages` keyword arguments (optional): the
        hook for per-sample bonuses on masked tokens (`bonus_PxG`, `bonus_coef`, `token_adv_mask_PxGxT`)
        and process rewards (`token_rewards_PxGxT`), e.g. the exploration bonuses of Song et al.
    """

    sample_prompts: Callable
    score: Callable
    shape: Callable | None = None


def needs_value_head(spec: RLSpec) -> bool:
    return spec.advantage.estimator == "gae"


def score_groups(task: RLTask, problems, rollout: sampling.Rollout) -> dict:
    """Score a [P, G, T] rollout against its P problems with the task's verifier (eval/lm_eval.py)."""
    return lm_eval.score_samples(task.score, problems, rollout)


def _select_groups(tree, order_P, count: int):
    return jax.tree.map(lambda a: jnp.take(a, order_P[:count], axis=0), tree)


def sequence_forward(model_spec, params, seqs, temperature, prompt_len, num_prompts, group):
    """Log-probs, entropies and values of the response tokens, each [P, G, T]."""
    tokens, kv_mask, positions, _ = seqs
    logp, entropy, values = tfm.token_logprobs(model_spec, params, tokens, positions_BxT=positions,
                                               kv_mask_BxT=kv_mask, temperature=temperature)
    cut = lambda x: sampling.response_part(x, prompt_len, num_prompts)  # noqa: E731
    values_PxGxT = None if values is None else cut(values[:, :-1])
    return cut(logp), cut(entropy), values_PxGxT


def _minibatch_loss(params, batch, *, model_spec, spec, temperature, prompt_len):
    """(loss, (stats, log-probs, entropies)); without "logp_old" in `batch` the update is on-policy:
    the behaviour log-probs are this pass's own, gradient stopped (ratio exactly 1)."""
    num_prompts, group, _ = batch["mask"].shape
    logp, entropy, values = sequence_forward(model_spec, params, batch["seqs"], temperature, prompt_len,
                                             num_prompts, group)
    logp_old = batch["logp_old"] if "logp_old" in batch else jax.lax.stop_gradient(logp)
    loss, stats = loss_lib.policy_loss(spec.loss, logp, logp_old, batch["adv"], batch["mask"],
                                       logp_ref_PxGxT=batch.get("logp_ref"), entropy_PxGxT=entropy)
    if needs_value_head(spec):
        v_loss = loss_lib.value_loss(values, batch["values_old"], batch["returns"], batch["mask"])
        loss = loss + spec.value_coef * v_loss
        stats = {**stats, "value_loss": v_loss}
    return loss, (stats, jax.lax.stop_gradient(logp), jax.lax.stop_gradient(entropy))


def single_on_policy_update(spec: RLSpec) -> bool:
    """One update per rollout batch, nothing needing the behaviour pass before the update (no value
    head, no KL in the reward): then the "old" log-probs equal the update's own forward pass, so the
    separate pass is skipped (it costs about a third of a GRPO step's model FLOPs)."""
    return (spec.num_minibatches == 1 and spec.ppo_epochs == 1 and not needs_value_head(spec)
            and spec.loss.kl != "reward")


def _flatten_groups(x, num_prompts: int, group: int):
    """[N = P*G, ...] -> [P, G, ...] (for the sequence arrays, so mini-batches split whole groups)."""
    return x.reshape((num_prompts, group) + x.shape[1:])


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
    """A decoder run's training state (NTP or RL): parameters, optimiser state, steps taken."""

    params: Any
    opt: Any
    step: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Rollouts:
    """One step's scored samples: P prompts (after DAPO's selection) x G responses."""

    prompts_PxL: jax.Array
    prompt_mask_PxL: jax.Array | None
    problems: Any
    rollout: sampling.Rollout
    scores: dict  # task scores, each [P, G]
    rewards_PxG: jax.Array  # the reward that is optimised (with DAPO's length shaping)
    keep_P: jax.Array  # DAPO: groups with signal (all True without oversampling)
    mask_PxGxT: jax.Array  # response tokens that count (0 on dropped groups)
    informative_drawn: jax.Array | None = None  # share of the drawn groups with a non-constant reward


def collect(model_spec, sampler: sampling.SamplerSpec, spec: RLSpec, task: RLTask, params, hp: RLHp,
            t) -> Rollouts:
    """Draw prompts, sample G responses each at the run's temperature / top-p, score them."""
    key = prng.root_key(hp.seed)
    num_drawn = spec.prompts_per_step * spec.oversample
    prompts, prompt_mask, problems = task.sample_prompts(prng.step_key(key, prng.Stream.DATA, t), hp, num_drawn)
    rollout = sampling.sample(model_spec, params, prompts, prompt_mask, prng.step_key(key, prng.Stream.POLICY, t),
                              spec.group_size, sampler, temperature=hp.temperature, top_p=hp.top_p)
    scores = score_groups(task, problems, rollout)
    rewards = scores["reward"]
    if spec.overlong_cache:
        rewards = rewards + adv_lib.overlong_penalty(rollout.length_PxG, max_len=sampler.max_new_tokens,
                                                     cache_len=spec.overlong_cache)
    keep_P = jnp.ones((num_drawn,), bool)
    informative = jnp.mean(adv_lib.dapo_keep_groups(scores["reward"]).astype(jnp.float32))
    if spec.oversample > 1:  # dynamic sampling with static shapes: informative groups first, then the rest
        keep_P = adv_lib.dapo_keep_groups(scores["reward"])  # by accuracy, before any length shaping
        order = jnp.argsort(~keep_P, stable=True)
        prompts, prompt_mask, problems, rollout, scores, rewards, keep_P = _select_groups(
            (prompts, prompt_mask, problems, rollout, scores, rewards, keep_P), order, spec.prompts_per_step)
    mask = rollout.mask_PxGxT * keep_P[:, None, None].astype(jnp.float32)
    return Rollouts(prompts, prompt_mask, problems, rollout, scores, rewards, keep_P, mask, informative)


def advantage_batch(model_spec, sampler: sampling.SamplerSpec, spec: RLSpec, task: RLTask, params, ref_params,
                    hp: RLHp, t, ro: Rollouts) -> tuple[dict, tuple | None]:
    """The update's inputs: advantages, and the behaviour / reference / value passes that need them.
    Sequence arrays are grouped [P, G, ...] so that mini-batches split whole groups. Also returns the
    behaviour pass's (log-probs, entropies), or None when the single on-policy update supplies them."""
    key, temperature = prng.root_key(hp.seed), hp.temperature
    (num_prompts, prompt_len), group = ro.prompts_PxL.shape, spec.group_size
    seqs = sampling.full_sequences(ro.prompts_PxL, ro.prompt_mask_PxL, ro.rollout)
    batch, behaviour = {"mask": ro.mask_PxGxT}, None
    if not single_on_policy_update(spec):
        logp_old, entropy_old, values_old = jax.tree.map(jax.lax.stop_gradient, sequence_forward(
            model_spec, params, seqs, temperature, prompt_len, num_prompts, group))
        batch["logp_old"] = logp_old
        behaviour = (logp_old, entropy_old)
    if spec.loss.kl != "none":
        logp_ref, _, _ = sequence_forward(model_spec, ref_params, seqs, temperature, prompt_len, num_prompts, group)
        batch["logp_ref"] = jax.lax.stop_gradient(logp_ref)
    adv_kw = {}
    if spec.loss.kl == "reward":
        adv_kw = {"kl_PxGxT": logp_old - batch["logp_ref"], "kl_coef": spec.loss.kl_coef}
    if spec.advantage.estimator == "remax":
        greedy = sampling.sample(model_spec, params, ro.prompts_PxL, ro.prompt_mask_PxL,
                                 prng.step_key(key, prng.Stream.POLICY, t), 1, dataclasses.replace(sampler, greedy=True))
        adv_kw["greedy_rewards_P"] = score_groups(task, ro.problems, greedy)["reward"][:, 0]
    if needs_value_head(spec):
        adv_kw["values_PxGxT"] = values_old
        batch["values_old"] = values_old
    if task.shape is not None:
        adv_kw.update(task.shape(ro.scores, ro.rollout))
    adv, extras = adv_lib.compute_advantages(spec.advantage, ro.rewards_PxG, ro.mask_PxGxT, keep_P=ro.keep_P, **adv_kw)
    batch["adv"] = adv
    if "returns" in extras:
        batch["returns"] = extras["returns"]
    batch["seqs"] = jax.tree.map(lambda x: _flatten_groups(x, num_prompts, group), seqs)
    return batch, behaviour


def update(model_spec, spec: RLSpec, tx: optax.GradientTransformation, params, opt_state, batch: dict,
           temperature, prompt_len: int):
    """`ppo_epochs` x `num_minibatches` AdamW updates, as two nested lax.scans (one traced update
    body whatever the counts). Returns (params, opt_state, loss, stats, logp, entropy) of the last
    update; logp / entropy are [P/num_minibatches, G, T] of its mini-batch."""
    loss_fn = jax.value_and_grad(_minibatch_loss, has_aux=True)
    num_prompts, group = batch["mask"].shape[:2]
    per_mb = num_prompts // spec.num_minibatches

    def one_update(carry, mb):
        params, opt_state = carry
        mb = {**mb, "seqs": jax.tree.map(lambda x: x.reshape((per_mb * group,) + x.shape[2:]), mb["seqs"])}
        (loss, (stats, logp_mb, entropy_mb)), grads = loss_fn(
            params, mb, model_spec=model_spec, spec=spec, temperature=temperature, prompt_len=prompt_len)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), (loss, stats, logp_mb, entropy_mb)

    if spec.num_minibatches * spec.ppo_epochs == 1:  # the common on-policy case: no loop at all
        (params, opt_state), (loss, stats, logp_mb, entropy_mb) = one_update((params, opt_state), batch)
        return params, opt_state, loss, stats, logp_mb, entropy_mb
    # [M, P/M, ...]: mini-batch m is prompts m*P/M .. (m+1)*P/M - 1, in the same order every epoch
    minibatches = jax.tree.map(lambda x: x.reshape((spec.num_minibatches, per_mb) + x.shape[1:]), batch)

    def epoch(carry, _):
        carry, outs = jax.lax.scan(one_update, carry, minibatches)
        return carry, jax.tree.map(lambda x: x[-1], outs)

    (params, opt_state), outs = jax.lax.scan(epoch, (params, opt_state), None, length=spec.ppo_epochs)
    loss, stats, logp_mb, entropy_mb = jax.tree.map(lambda x: x[-1], outs)
    return params, opt_state, loss, stats, logp_mb, entropy_mb


def rl_step(model_spec, sampler: sampling.SamplerSpec, spec: RLSpec, tx: optax.GradientTransformation,
            task: RLTask, state: TrainState, hp: RLHp, ref_params) -> tuple[TrainState, dict]:
    """One RL step of one run: collect -> advantages -> update. `ref_params` is frozen (KL)."""
    state, metrics, _ = rl_step_rollouts(model_spec, sampler, spec, tx, task, state, hp, ref_params)
    return state, metrics


def rl_step_rollouts(model_spec, sampler: sampling.SamplerSpec, spec: RLSpec, tx: optax.GradientTransformation,
                     task: RLTask, state: TrainState, hp: RLHp, ref_params, *,
                     shape_fn: Callable | None = None) -> tuple[TrainState, dict, Rollouts]:
    """`rl_step`, also returning the step's Rollouts, for steps that keep more state than TrainState
    (e.g. exploration count tables). `shape_fn(ro) -> dict` replaces `task.shape` and sees the whole
    Rollouts (problems included)."""
    t, params = state.step, state.params
    ro = collect(model_spec, sampler, spec, task, params, hp, t)
    if shape_fn is not None:
        task = dataclasses.replace(task, shape=lambda scores, rollout: shape_fn(ro))
    batch, behaviour = advantage_batch(model_spec, sampler, spec, task, params, ref_params, hp, t, ro)
    params, opt_state, loss, stats, logp_mb, entropy_mb = update(model_spec, spec, tx, params, state.opt, batch,
                                                                 hp.temperature, ro.prompts_PxL.shape[1])
    # with a single on-policy update its own pass saw the behaviour parameters
    logp_old, entropy_old = behaviour if behaviour is not None else (logp_mb, entropy_mb)
    mask = ro.mask_PxGxT
    group_acc = jnp.mean(ro.scores["reward"], axis=1)
    metrics = {"loss": loss, **{k: jnp.asarray(v, jnp.float32) for k, v in stats.items()},
               "reward": jnp.mean(ro.rewards_PxG),
               "zero_adv_groups": jnp.mean(((group_acc == 0) | (group_acc == 1)).astype(jnp.float32)),
               # of all groups drawn (DAPO: before its selection), the share with a non-constant reward
               "informative_drawn": ro.informative_drawn,
               "response_len": jnp.mean(ro.rollout.length_PxG.astype(jnp.float32)),
               "entropy": jnp.sum(entropy_old * mask) / jnp.maximum(jnp.sum(mask), 1.0),
               # the sampler's KV-cache log-probs vs the recomputed full-pass ones (0 up to float error
               # when top_p = 1; with top_p < 1 the sampler's are renormalised over the nucleus)
               "sampler_logp_gap": jnp.max(jnp.abs(ro.rollout.logp_PxGxT - logp_old) * mask),
               **{f"train_{k}": jnp.mean(v) for k, v in ro.scores.items() if k != "reward"}}
    return TrainState(params, opt_state, t + 1), metrics, ro
