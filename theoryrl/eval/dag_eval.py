"""DAG-lite evaluation: process-verified and outcome-only pass@k per op, with intervals and hacking rate.

What. `sample_and_verify` draws S completions per prompt of a `DagProblems` batch with the KV-cache
sampler and checks each with the token-level verifier (`tasks/dag/verify.py`); `pass_at_k_by_op`
turns the [N problems, S samples] results into, per op: the unbiased pass@k for k = 1..k_max (n = S
samples per problem, `passk.py`) both process-verified (`perfect`: every gold node present with the
right parents and value, and the right answer; extra nodes allowed, spec §5.3) and outcome-only (the
answer alone), each with a percentile bootstrap interval over problems (the two paired: the same
resampled problems), the hacking rate (P(answer right and process wrong | answer right), §11.10) and
the sample counts. `evaluate` does both, with every knob checked before any compute.

Which paper. Zhang, Neubig and Yue (arXiv 2512.07783; spec `dag_arithmetic.md` §5.3-5.4 and §11.7:
n = 128 samples at T = 0.7, pass@{1..128} per op). The RLVR-limits (Yue et al.) and LM-exploration
experiments reuse it on the same substrate. The official process-verified aggregator takes "any of
the first k samples"; we use the unbiased estimator for both kinds, as the spec recommends.

Why both. Answers are residues mod p, so the outcome-only pass@k is inflated by guessing: a uniform
guesser is right with probability 1/p per sample, so its pass@k is 1 - (1 - 1/p)^k, which at p = 97 is
1 - (96/97)^256 ≈ 0.93 for k = 256 (and 0.28 at k = 32) while it verifies no step. Headline claims use
the process-verified pass@k; the outcome-only one and the hacking rate say how much of the answer
accuracy is not backed by a correct derivation.

Batching. Prompts are sampled `max_rows // S` at a time (at least one) through one jitted function of
fixed shapes: the last partial chunk is padded with copies of the last prompt, whose samples are
dropped, so an evaluation compiles once. Chunk c uses the key fold_in(key, c); the same key, batch and
`max_rows` give the same samples, another `max_rows` gives statistically equal ones. Nothing in the
sampled path raises on what the model emits: garbage tokens only fail verification.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core.config import require, require_float, require_int
from theoryrl.eval import lm_eval, passk
from theoryrl.models import transformer as tfm
from theoryrl.rl import sampling
from theoryrl.tasks.dag import generate as gen
from theoryrl.tasks.dag import verify as ver
from theoryrl.tasks.vocab import EOS_ID, PAD_ID

MAX_SAMPLES = 4096  # samples per problem: the largest pass@k budget of the LM papers is 1024
MAX_ROWS = 1 << 20  # sequences decoded by one jitted call
_SCORES = ("answer_correct", "perfect", "strict", "process_reward", "answer")


def _as_int(value):
    """numpy integer scalars as int, so the size checks accept them; anything else unchanged."""
    return int(value) if isinstance(value, np.integer) else value


def _check_k_max(k_max, num_samples) -> int:
    k_max = _as_int(k_max)
    require_int(num_samples, "num_samples (S)", 1, MAX_SAMPLES,
                f"an integer in 1..{MAX_SAMPLES} samples per problem")
    require(isinstance(k_max, int) and not isinstance(k_max, bool) and k_max >= 1, "k_max", k_max,
            "an integer >= 1")
    require(k_max <= num_samples, "k_max", k_max,
            f"1..{num_samples}: unbiased pass@k needs n = S = {num_samples} >= k_max samples per problem")
    return k_max


def _check_flags(x, name: str, shape=None) -> np.ndarray:
    arr = np.asarray(x)
    ok = arr.ndim == 2 and (arr.dtype == bool or (np.issubdtype(arr.dtype, np.number)
                                                   and np.all((arr == 0) | (arr == 1))))
    if shape is not None:
        ok = ok and arr.shape == shape
    require(ok, name, f"array of shape {arr.shape}, dtype {arr.dtype}",
            f"a [N problems, S samples] 0/1 array{'' if shape is None else f' of shape {shape}'}")
    return arr.astype(bool)


def pass_at_k_by_op(perfect_NxS, answer_correct_NxS, op_N, k_max, *, ops=None, num_resamples: int = 1000,
                    alpha: float = 0.05, seed: int = 0) -> dict:
    """Per op, process-verified and outcome-only pass@k (k = 1..k_max), hacking rate and counts.

    perfect_NxS / answer_correct_NxS: `verify`'s perfect / answer_correct of sample s of problem i
    (perfect implies answer_correct); op_N: each problem's op (any integer label groups, e.g. the
    context). ops: the ops to report (default every op present); each must have a problem.
    Returns {op: {"k": [K], "process": {"mean", "lo", "hi"}, "outcome": {...} (each [K] float64),
    "hacking_rate" (float, NaN when no sample's answer is right), "num_problems", "num_samples" (S),
    "num_answer_correct", "num_perfect"}}. ConfigError (one line, before any compute) for S < 1,
    k_max < 1, k_max > S, an empty op list, or arrays of the wrong shape.
    """
    answer = _check_flags(answer_correct_NxS, "answer_correct_NxS")
    perfect = _check_flags(perfect_NxS, "perfect_NxS", answer.shape)
    num_problems, num_samples = answer.shape
    op_N = np.asarray(op_N)
    require(op_N.shape == (num_problems,) and (num_problems == 0 or np.issubdtype(op_N.dtype, np.integer)),
            "op_N", f"array of shape {op_N.shape}, dtype {op_N.dtype}", f"[N={num_problems}] integer ops")
    require(num_problems >= 1, "op_N", "[] (no problems)", "a non-empty op list: at least one problem")
    require(num_samples >= 1, "num_samples (S)", num_samples, "an integer >= 1 samples per problem")
    k_max = _check_k_max(k_max, num_samples)
    present = sorted(int(o) for o in np.unique(op_N))
    if ops is None:
        ops = present
    require(isinstance(ops, (list, tuple, np.ndarray)) and len(ops) >= 1, "ops", ops, "a non-empty list of ops")
    ops = [_as_int(o) for o in ops]
    require(all(isinstance(o, int) and o in present for o in ops), "ops", ops,
            f"ops that have problems in the batch: {present}")
    require(not np.any(perfect & ~answer), "perfect_NxS", "a perfect sample with a wrong answer",
            "perfect implies answer_correct (are the two arrays swapped?)")
    require_int(num_resamples, "num_resamples", 1, 1_000_000)
    require_float(alpha, "alpha", 0.0, 1.0, lo_open=True, hi_open=True)
    ks = np.arange(1, k_max + 1)
    out = {}
    for op in ops:
        rows = op_N == op
        n_P = np.full(int(rows.sum()), num_samples, np.int64)
        ci = {}
        for name, flags in (("process", perfect), ("outcome", answer)):
            c_P = flags[rows].sum(axis=1)
            curve = passk.pass_at_k_with_ci(n_P, c_P, ks, num_resamples=num_resamples, alpha=alpha, seed=seed)
            ci[name] = {key: np.asarray(curve[key], np.float64) for key in ("mean", "lo", "hi")}
        out[op] = {"k": ks.astype(np.int64), **ci,
                   "hacking_rate": float(ver.hacking_rate(answer[rows].ravel(), perfect[rows].ravel())),
                   "num_problems": int(rows.sum()), "num_samples": int(num_samples),
                   "num_answer_correct": int(answer[rows].sum()), "num_perfect": int(perfect[rows].sum())}
    return out


def _score(spec: gen.DagSpec, problems: gen.DagProblems, response_NxT, mask_NxT) -> dict:
    """lm_eval's score_fn: the verifier's per-sample results (the mask is implied by EOS)."""
    del mask_NxT
    result = ver.verify(spec, problems, response_NxT)
    return {name: result[f"{name}_B"] for name in _SCORES}


@partial(jax.jit, static_argnames=("model_spec", "sampler", "spec", "num_samples", "with_entropy"))
def _chunk(model_spec, sampler, spec, num_samples, params, problems, key, temperature, top_p,
           with_entropy: bool = False) -> dict:
    """lm_eval.sampled_scores with the verifier as score_fn, plus the response tokens and, with
    with_entropy, each sample's mean token entropy at the sampling temperature (one more forward
    pass over the sampled sequences)."""
    prompts_PxL, mask_PxL = gen.left_padded_prompts(problems)
    rollout = sampling.sample(model_spec, params, prompts_PxL, mask_PxL, key, num_samples, sampler,
                              temperature=temperature, top_p=top_p)
    scores = lm_eval.score_samples(partial(_score, spec), problems, rollout)
    out = {**scores, "length": rollout.length_PxG, "response": rollout.tokens_PxGxT}
    if with_entropy:
        tokens, kv_mask, positions, _ = sampling.full_sequences(prompts_PxL, mask_PxL, rollout)
        _, entropy, _ = tfm.token_logprobs(model_spec, params, tokens, positions_BxT=positions, kv_mask_BxT=kv_mask,
                                           temperature=temperature)
        entropy_PxGxT = sampling.response_part(entropy, prompts_PxL.shape[1], prompts_PxL.shape[0])
        mask = rollout.mask_PxGxT
        out["entropy"] = jnp.sum(entropy_PxGxT * mask, axis=-1) / jnp.maximum(jnp.sum(mask, axis=-1), 1.0)
    return out


def _check_sampling(model_spec, sampler, spec: gen.DagSpec, problems: gen.DagProblems, num_samples,
                    temperature, top_p, max_rows) -> int:
    """Every knob of `sample_and_verify`, before any compute; returns the number of problems."""
    require_int(num_samples, "num_samples (S)", 1, MAX_SAMPLES,
                f"an integer in 1..{MAX_SAMPLES} samples per problem")
    require_int(max_rows, "max_rows", 1, MAX_ROWS)
    require_float(temperature, "temperature", 0.0, lo_open=True)
    require_float(top_p, "top_p", 0.0, 1.0, lo_open=True)
    sampler.validate()
    require(sampler.eos_id == EOS_ID and sampler.pad_id == PAD_ID, "sampler", sampler,
            f"eos_id={EOS_ID} and pad_id={PAD_ID} (the DAG vocabulary's)")
    require(model_spec.vocab_size >= spec.vocab_size, "model_spec.vocab_size", model_spec.vocab_size,
            f">= {spec.vocab_size}, the DAG vocabulary at p={spec.p}")
    num_problems, prompt_len = problems.prompt_BxLp.shape
    require(num_problems >= 1, "problems", "an empty batch", "at least one problem")
    require(prompt_len + sampler.max_new_tokens <= model_spec.max_len, "sampler.max_new_tokens",
            sampler.max_new_tokens, f"<= {model_spec.max_len - prompt_len} (model max_len {model_spec.max_len} "
            f"- prompt length {prompt_len})")
    return num_problems


def sample_and_verify(model_spec, sampler: sampling.SamplerSpec, params, spec: gen.DagSpec,
                      problems: gen.DagProblems, key, num_samples: int, *, temperature=0.7, top_p=1.0,
                      max_rows: int = 4096, keep_tokens: bool = False, with_entropy: bool = False) -> dict:
    """S = num_samples completions per problem (prompts laid out by `left_padded_prompts`), verified.

    Returns numpy arrays: perfect_NxS, answer_correct_NxS, strict_NxS (bool), process_reward_NxS
    (float32), answer_NxS (stated answer, -1 if none), length_NxS (response tokens, EOS included),
    and op_N, context_N; with keep_tokens, also response_NxSxT (PAD after EOS, T = max_new_tokens);
    with with_entropy, also entropy_NxS (mean token entropy of each sample at the temperature). `model_spec` / `params` / `sampler` as lm_eval's functions take them; the
    defaults are the spec's T = 0.7, top-p 1 (§5.4)."""
    num_problems = _check_sampling(model_spec, sampler, spec, problems, num_samples, temperature, top_p, max_rows)
    per_call = max(1, min(num_problems, max_rows // num_samples))
    temperature, top_p = jnp.float32(temperature), jnp.float32(top_p)
    parts = []
    for c, first in enumerate(range(0, num_problems, per_call)):
        idx = np.minimum(np.arange(first, first + per_call), num_problems - 1)  # pad with the last prompt
        scores = _chunk(model_spec, sampler, spec, num_samples, params, gen.take(problems, idx),
                        jax.random.fold_in(key, c), temperature, top_p, with_entropy)
        keep = min(per_call, num_problems - first)
        parts.append({name: np.asarray(v)[:keep] for name, v in scores.items() if keep_tokens or name != "response"})
    cat = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    out = {f"{name}_NxS": cat[name].astype(bool) for name in ("perfect", "answer_correct", "strict")}
    out.update(process_reward_NxS=cat["process_reward"], answer_NxS=cat["answer"].astype(np.int32),
               length_NxS=cat["length"].astype(np.int32), op_N=np.asarray(problems.op_B, np.int64),
               context_N=np.asarray(problems.context_B, np.int64))
    if keep_tokens:
        out["response_NxSxT"] = cat["response"].astype(np.int32)
    if with_entropy:
        out["entropy_NxS"] = cat["entropy"].astype(np.float32)
    return out


def evaluate(model_spec, sampler: sampling.SamplerSpec, params, spec: gen.DagSpec, problems: gen.DagProblems,
             key, num_samples: int, k_max: int, *, temperature=0.7, top_p=1.0, max_rows: int = 4096,
             num_resamples: int = 1000, alpha: float = 0.05, seed: int = 0) -> dict:
    """`sample_and_verify`, then `pass_at_k_by_op` over the ops present: {"by_op": that report,
    "samples": the per-sample arrays}. k_max and every sampling knob are checked before sampling."""
    _check_k_max(k_max, num_samples)
    _check_sampling(model_spec, sampler, spec, problems, num_samples, temperature, top_p, max_rows)
    require_int(num_resamples, "num_resamples", 1, 1_000_000)
    require_float(alpha, "alpha", 0.0, 1.0, lo_open=True, hi_open=True)
    samples = sample_and_verify(model_spec, sampler, params, spec, problems, key, num_samples,
                                temperature=temperature, top_p=top_p, max_rows=max_rows)
    report = pass_at_k_by_op(samples["perfect_NxS"], samples["answer_correct_NxS"], samples["op_N"], k_max,
                             num_resamples=num_resamples, alpha=alpha, seed=seed)
    return {"by_op": report, "samples": samples}


__all__ = ["MAX_SAMPLES", "evaluate", "pass_at_k_by_op", "sample_and_verify"]
