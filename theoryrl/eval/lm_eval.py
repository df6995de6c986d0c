"""Evaluating a language model on a verifiable task: sample, score, then pass@k on the counts.

The one evaluation path of the LM experiments (Zhang et al.'s process-verified pass@k, Yue et al.'s
pass@k at large k, Song et al.'s exploration): on device, `greedy_scores` / `sampled_scores` decode
with the KV-cache sampler and score every response with the task's verifier; on the host,
`pass_at_k_report` turns the [problems, samples] correctness matrix into unbiased pass@k
(passk.py), the solvable set and the accuracy histogram. A task's `score(problems, response_NxT,
mask_NxT) -> {name: [N]}` is the same callable the RL step optimises (lm_rl.RLTask.score), so what
is trained and what is evaluated are scored by one function.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.eval import passk
from theoryrl.rl import sampling


def score_samples(score_fn: Callable, problems, rollout: sampling.Rollout) -> dict:
    """Score a [P, G, T] rollout against its P problems (sample g of prompt p against problem p);
    every score comes back as float32 [P, G]."""
    num_prompts, group, steps = rollout.tokens_PxGxT.shape
    tiled = jax.tree.map(lambda a: jnp.repeat(a, group, axis=0), problems)
    scores = score_fn(tiled, rollout.tokens_PxGxT.reshape(num_prompts * group, steps),
                      rollout.mask_PxGxT.reshape(num_prompts * group, steps))
    return {k: jnp.reshape(v, (num_prompts, group)).astype(jnp.float32) for k, v in scores.items()}


def greedy_scores(model_spec, sampler: sampling.SamplerSpec, score_fn: Callable, params, prompts_NxL,
                  prompt_mask_NxL, problems) -> dict:
    """Greedy decoding of every prompt, scored: each score as [N], plus the response "length"."""
    rollout = sampling.sample(model_spec, params, prompts_NxL, prompt_mask_NxL, jax.random.key(0), 1,
                              dataclasses.replace(sampler, greedy=True))
    scores = {k: v[:, 0] for k, v in score_samples(score_fn, problems, rollout).items()}
    scores["length"] = rollout.length_PxG[:, 0].astype(jnp.float32)
    return scores


def sampled_scores(model_spec, sampler: sampling.SamplerSpec, score_fn: Callable, params, prompts_NxL,
                   prompt_mask_NxL, problems, key, num_samples: int, temperature=1.0, top_p=1.0) -> dict:
    """`num_samples` samples per prompt, scored: each score as [N, num_samples] (pass@k's input)."""
    rollout = sampling.sample(model_spec, params, prompts_NxL, prompt_mask_NxL, key, num_samples, sampler,
                              temperature=temperature, top_p=top_p)
    scores = score_samples(score_fn, problems, rollout)
    scores["length"] = rollout.length_PxG.astype(jnp.float32)
    return scores


def pass_at_k_report(correct_NxS, ks, num_resamples: int = 0, seed: int = 0) -> dict:
    """Host-side pass@k of a [problems, samples] 0/1 correctness matrix (e.g. `sampled_scores`'s
    "answer_correct" or "process_correct"): {"k", "pass_at_k" (mean over problems), "correct_N",
    "solvable" (fraction with a correct sample), "histogram" (12 accuracy bins)}, plus "lo" / "hi"
    bootstrap intervals over problems when num_resamples > 0."""
    correct = np.asarray(correct_NxS)
    if correct.ndim != 2 or not np.all((correct == 0) | (correct == 1)):
        raise ValueError(f"correct_NxS must be a [problems, samples] matrix of 0/1, got shape {correct.shape}")
    num_samples = correct.shape[1]
    c_N = correct.sum(axis=1).astype(np.int64)
    n_N = np.full_like(c_N, num_samples)
    ks = np.atleast_1d(np.asarray(ks))
    out = {"k": ks.astype(np.int64), "pass_at_k": passk.pass_at_k_curve(n_N, c_N, ks), "correct_N": c_N,
           "solvable": float(np.mean(passk.solvable_set(c_N))), "histogram": passk.accuracy_histogram(n_N, c_N)[0]}
    if num_resamples:
        ci = passk.pass_at_k_with_ci(n_N, c_N, ks, num_resamples=num_resamples, seed=seed)
        out.update(lo=ci["lo"], hi=ci["hi"])
    return out
