"""Responses scored under a model, gold traces in either solution order, and SFT on the latest-order ones.

What. The pieces `rlvr-coverage` and `rlvr-distillation` (Yue et al., arXiv 2504.13837, spec
`rlvr_limits.md` §2.4, §3.6, §6.3) add to `rl/rlvr_runs.py`, on the same splits and stored base:
- `trace_nll`: per response, the mean token negative log-likelihood under a model and its perplexity
  PPL = exp(mean NLL) (`eval.lm_metrics.sequence_perplexity`, spec §2.4), teacher-forced: one forward
  pass over prompt + response laid out exactly as the sampler lays them out (left-padded prompt,
  response token j at position n_prompt + j), counting the response tokens up to and including the
  first EOS (all of them when there is none): the tokens the sampler's mask marks valid. Rows go
  through one jitted function in chunks of a static size (the last one padded), so it compiles once.
- `gold_traces`: the fixed problems of `rlvr_runs.set_problems` (same key, same prompts and answers)
  with the gold solution in the "earliest" order (the base's pre-training order) or the "latest" one
  (`tasks/dag/generate.py`: equally valid, verified perfect, but not what the base writes), as
  response arrays shaped like the sampler's [N, 1, T].
- `sft_program`: NTP from hp.init_params (the base) on prompt + latest-order gold trace of the RL
  *train split* (loss on the solution tokens, EOS included), then `rlvr_runs.eval_arrays` of the final
  parameters (and the parameters), so an SFT arm is read by the same metric helpers as an RL arm.
Why latest-order traces: §3.6 contrasts RLVR with distillation from a teacher whose traces carry
patterns the base does not produce; here the gold solution in an order the base never saw is such a
teacher: always correct, and improbable under the base (§2.4's PPL_Base(Y_GT)).
Why the train split as SFT data: SFT and RL then see exactly the same problems and differ only in
what supervises them (another order's gold traces vs the verifier's reward on the model's own
samples); the ID and OOD test sets come from other keys (`rlvr_runs.SPLIT_KEYS`), so no judged
problem is trained on. `SFTKnobs.pool` > 0 trains on that many other train-band problems instead.
"""
from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core import prng
from theoryrl.core.config import require, require_finite_nonneg, require_int
from theoryrl.core.stages import Program, RunPlan
from theoryrl.eval import lm_metrics
from theoryrl.models import transformer as tfm
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import lm_rl, lm_runs, ntp
from theoryrl.rl import rlvr_runs as rr
from theoryrl.tasks.dag import generate as gen
from theoryrl.tasks.vocab import EOS_ID

SFT_POOL_KEY = dr.EVAL_SEED + 70  # SFTKnobs.pool > 0: its problems' key, apart from every evaluation set's
SFT_DATA_FOLD = 7  # the SFT batches' stream: fold_in(the seed's DATA stream, 7), apart from every other stage's
MAX_ROWS = 1 << 16  # sequences scored by one jitted call


# ---------------------------------------------------------------- scoring responses


def response_mask(response_BxT: jax.Array, eos_id: int = EOS_ID) -> jax.Array:
    """[B, T] bool: tokens up to and including the first EOS (all when there is none)."""
    is_eos = (response_BxT == eos_id).astype(jnp.int32)
    return (jnp.cumsum(is_eos, axis=1) - is_eos) == 0


@partial(jax.jit, static_argnames=("model_spec", "eos_id"))
def _score_rows(model_spec, params, prompts_BxL, prompt_mask_BxL, response_BxT, eos_id: int):
    """(mean token NLL, perplexity, counted tokens) per row: prompt + response, one forward pass."""
    length = prompts_BxL.shape[1]
    valid_BxT = response_mask(response_BxT, eos_id)
    tokens_BxS = jnp.concatenate([prompts_BxL, response_BxT], axis=1).astype(jnp.int32)
    kv_mask_BxS = jnp.concatenate([prompt_mask_BxL, valid_BxT], axis=1)
    start_Bx1 = jnp.sum(prompt_mask_BxL, axis=1, keepdims=True, dtype=jnp.int32)
    positions_BxS = jnp.concatenate([tfm.mask_positions(prompt_mask_BxL),
                                     start_Bx1 + jnp.arange(response_BxT.shape[1], dtype=jnp.int32)[None]], axis=1)
    logp_BxSm1, _, _ = tfm.token_logprobs(model_spec, params, tokens_BxS, positions_BxT=positions_BxS,
                                          kv_mask_BxT=kv_mask_BxS)
    logp_BxT = logp_BxSm1[:, length - 1:]  # log p(response token j | prompt, response[:j])
    count_B = jnp.sum(valid_BxT, axis=1)
    nll_B = -jnp.sum(jnp.where(valid_BxT, logp_BxT, 0.0), axis=1) / jnp.maximum(count_B, 1)
    return nll_B, lm_metrics.sequence_perplexity(logp_BxT, valid_BxT), count_B


def trace_nll(model_spec: tfm.TransformerSpec, params, prompts_PxL, prompt_mask_PxL, response_PxKxT, *,
              rows: int = 512, eos_id: int = EOS_ID) -> dict:
    """Responses scored under a model (one run's params): K responses to each of P left-padded
    prompts (`gen.left_padded_prompts`' layout, the sampler's). Returns numpy [P, K] arrays
    "nll_PxK" (mean token NLL in nats), "ppl_PxK" (exp of it) and "length_PxK" (tokens counted, EOS
    included); `rows` sequences per jitted call."""
    prompts = np.asarray(prompts_PxL)
    mask = np.asarray(prompt_mask_PxL).astype(bool)
    resp = np.asarray(response_PxKxT)
    require_int(rows, "rows", 1, MAX_ROWS)
    if prompts.ndim != 2 or mask.shape != prompts.shape:
        raise ValueError(f"prompts must be [P, L] with a mask of that shape, got {prompts.shape} and {mask.shape}")
    if resp.ndim != 3 or resp.shape[0] != prompts.shape[0] or resp.shape[1] < 1:
        raise ValueError(f"responses must be [P={prompts.shape[0]}, K >= 1, T], got {resp.shape}")
    if prompts.shape[1] + resp.shape[2] > model_spec.max_len:
        raise ValueError(f"prompt length {prompts.shape[1]} + response length {resp.shape[2]} exceeds "
                         f"max_len={model_spec.max_len}")
    p, k, t = resp.shape
    n = p * k
    prompt_of = np.repeat(np.arange(p), k)
    flat = resp.reshape(n, t)
    per_call = min(rows, n)
    parts = []
    for first in range(0, n, per_call):
        idx = np.minimum(np.arange(first, first + per_call), n - 1)  # the last chunk repeats the last row
        out = _score_rows(model_spec, params, jnp.asarray(prompts[prompt_of[idx]]), jnp.asarray(mask[prompt_of[idx]]),
                          jnp.asarray(flat[idx]), eos_id)
        keep = min(per_call, n - first)
        parts.append([np.asarray(x)[:keep] for x in out])
    nll, ppl, count = (np.concatenate(x) for x in zip(*parts))
    return {"nll_PxK": nll.astype(np.float64).reshape(p, k), "ppl_PxK": ppl.astype(np.float64).reshape(p, k),
            "length_PxK": count.astype(np.int64).reshape(p, k)}


def problem_trace_nll(model_spec, params, problems: gen.DagProblems, response_NxKxT, *, rows: int = 512) -> dict:
    """`trace_nll` of responses to DAG problems (prompts laid out by `gen.left_padded_prompts`)."""
    prompts, mask = gen.left_padded_prompts(problems)
    return trace_nll(model_spec, params, prompts, mask, response_NxKxT, rows=rows)


# ---------------------------------------------------------------- gold traces


def gold_traces(base: dr.BaseSpec, band: tuple[int, int], num: int, key: int,
                order: str = "latest") -> tuple[gen.DagProblems, np.ndarray]:
    """(problems, response_Nx1xT): `rlvr_runs.set_problems(base, band, num, key)` with the gold
    solution in `order` ("earliest" | "latest"); the prompts, answers and gold graphs are the same in
    both orders, T = the band's sampler length (the gold solution is PAD-padded to it)."""
    require(order in gen.SOLUTION_ORDERS, "order", order, " | ".join(gen.SOLUTION_ORDERS))
    spec = dataclasses.replace(base.task(band[1]), solution_order=order)
    problems = gen.sample(jax.random.key(key), spec, dr.band_params(base, [band], band[1]), num)
    return problems, np.asarray(problems.solution_BxLs)[:, None, :]


# ---------------------------------------------------------------- SFT on latest-order traces


@dataclasses.dataclass(frozen=True)
class SFTKnobs:
    """SFT ("distillation", spec §3.6): `steps` AdamW steps of `batch` distinct problems of the pool
    each (drawn afresh every step), lr constant after a linear warmup of `warmup` steps, chunks of
    `chunk` steps (ID pass@1 logged at each chunk end). steps = 0: the SFT arm is the base. `pool`:
    0 = the RL train split (the same problems RL trains on); N > 0 = N other train-band problems
    drawn from their own key (`SFT_POOL_KEY`: a larger "teacher corpus", still no evaluation problem)."""

    steps: int = 200
    chunk: int = 50
    batch: int = 16
    lr: float = 3e-4
    warmup: int = 20
    pool: int = 0

    def validate(self) -> None:
        require_int(self.chunk, "chunk", 1, 1_000_000)
        require(isinstance(self.steps, int) and not isinstance(self.steps, bool) and 0 <= self.steps <= 10_000_000
                and self.steps % self.chunk == 0, "steps", self.steps,
                f"0 (SFT off) .. 10000000, a multiple of chunk = {self.chunk}")
        require_int(self.batch, "batch", 1, 65_536)
        require_finite_nonneg(self.lr, "lr", 10.0)
        require_int(self.warmup, "warmup", 0, 10_000_000)
        require_int(self.pool, "pool", 0, 1_000_000, "0 (the RL train split) or 1..1000000 problems")

    def pool_size(self, knobs: rr.RLVRKnobs) -> int:
        return self.pool or knobs.train_problems

    def pool_key(self) -> int:
        return SFT_POOL_KEY if self.pool else rr.SPLIT_KEYS["train"]


def _sft_final(base: dr.BaseSpec, knobs: rr.RLVRKnobs, sets, state: lm_rl.TrainState) -> dict:
    """Per run (host loop over the run axis): the final parameters and their `eval_arrays`."""
    per_run = []
    for r in range(state.step.shape[0]):
        params = jax.tree.map(lambda x: x[r], state.params)
        per_run.append({**lm_runs.params_to_arrays(params), **rr.eval_arrays(base, knobs, sets, [params])})
    return {k: np.stack([a[k] for a in per_run]) for k in per_run[0]}


def sft_program(base: dr.BaseSpec, knobs: rr.RLVRKnobs, sft: SFTKnobs, sets, id_band: tuple[int, int]) -> Program:
    """NTP from hp.init_params (an `lm_runs.RLHp`'s: the base) on hp.task.problems (a
    `rlvr_runs.FixedSet` of latest-order train problems): step t trains on `batch` distinct problems
    drawn with fold_in(key, t); the loss covers the solution tokens only (`gen.sequences`' mask).
    ID pass@1 (`rlvr_runs`' learning curve on the ID band) at every chunk end, `eval_arrays` of
    `sets` at the end."""
    spec_m = dr.model(base)
    optim = ntp.OptimSpec(lr=sft.lr, warmup_steps=min(sft.warmup, max(sft.steps, 1)), total_steps=max(sft.steps, 1),
                          schedule="constant", weight_decay=0.0)
    curves = rr.curve_fn(base, "base", id_band[1])

    def init_fn(hp: lm_runs.RLHp):
        tx = ntp.make_optimizer(optim, lr_scale=hp.lr_scale)
        return lm_rl.TrainState(hp.init_params, tx.init(hp.init_params), jnp.int32(0))

    def chunk_fn(state: lm_rl.TrainState, hp: lm_runs.RLHp, data):
        tx = ntp.make_optimizer(optim, lr_scale=hp.lr_scale)
        key = jax.random.fold_in(prng.stream_key(prng.root_key(hp.seed), prng.Stream.DATA), SFT_DATA_FOLD)
        pool = hp.task.problems

        def batch_fn(k, t):
            del t
            idx = jax.random.choice(k, pool.answer_B.shape[0], (sft.batch,), replace=False)
            return gen.sequences(gen.take(pool, idx))

        params, opt, metrics = ntp.ntp_chunk(spec_m, tx, batch_fn, state.params, state.opt, key, state.step, sft.chunk)
        metrics = {name: jnp.mean(v, axis=0) for name, v in metrics.items()}
        metrics.update(curves(params, hp, data))
        return lm_rl.TrainState(params, opt, state.step + sft.chunk), metrics

    return Program(data_fn=lambda hp: rr.set_problems(base, id_band, rr.CURVE_PROBLEMS, rr.SPLIT_KEYS["id"]),
                   init_fn=init_fn, chunk_fn=chunk_fn, num_chunks=sft.steps // sft.chunk, steps_per_chunk=sft.chunk,
                   final_fn=partial(_sft_final, base, knobs, sets))


def sft_plans(base: dr.BaseSpec, knobs: rr.RLVRKnobs, sft: SFTKnobs, seeds, runs, static: str,
              arm: str = "sft") -> list[RunPlan]:
    """Per usable seed (as `rlvr_runs.plans`): one SFT run from the base on the latest-order gold
    traces of the seed's train band (the train split, or `sft.pool` other problems); row {"seed",
    "arm": arm}, so `rlvr_runs.collect` finds it next to the RL arms when the plans share a stage."""
    require(sft.batch <= sft.pool_size(knobs), "sft.batch", sft.batch,
            f"at most the SFT pool's {sft.pool_size(knobs)} problems (each step draws distinct ones)")
    out = []
    for seed in seeds:
        base_run = runs.one(stage="pretrain", seed=int(seed))
        splits, why = rr.seed_splits(base, knobs, base_run)
        if why is not None:
            continue
        sets = rr.eval_sets(knobs, splits)
        train, _ = gold_traces(base, splits.train, sft.pool_size(knobs), sft.pool_key(), "latest")
        hp = lm_runs.RLHp(seed=np.int32(seed), lr_scale=np.float32(1.0), temperature=np.float32(knobs.temperature),
                          top_p=np.float32(1.0), init_params=rr.start_params(base, "base", base_run),
                          task=rr.FixedSet(jax.tree.map(np.asarray, train)))
        out.append(RunPlan(row={"seed": int(seed), "arm": arm}, bucket=("rlvr-sft", sft, knobs, tuple(sets), static),
                           label="rlvr-sft", hp=hp, build=partial(sft_program, base, knobs, sft, sets, splits.train),
                           parent=base_run))
    return out
