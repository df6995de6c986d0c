"""Diversity of outcomes: distinct answers, diff@k and its expectation, outcome entropy, coverage.

Written for one prompt (vmap over prompts). Spec `outcome_exploration.md` §2.1-2.3:
- diff@k: the number of distinct outcomes among k samples; its expectation under an outcome
  distribution p is D_k = sum_o [1 - (1 - p(o))^k] [S:reading-note; each outcome o contributes
  P(o appears at least once)].
- "solved at least once" coverage across checkpoints: 1 - prod_s (1 - p_s)^n (the RL curve of
  Figure 2 is this cross-checkpoint quantity, not any single model's pass@k).
- From samples rather than probabilities: `distinct_answers` (jax) counts distinct valid answers
  among K samples; `expected_distinct_in_k` (numpy) is the unbiased estimate of E[diff@k] from
  n >= k samples, the diversity analogue of the unbiased pass@k.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.eval.passk import pass_at_k


def distinct_count(answers_N: jax.Array, num_outcomes: int) -> jax.Array:
    """Number of distinct values among integer answers in [0, num_outcomes)."""
    if answers_N.ndim != 1:
        raise ValueError(f"answers_N must be 1-D, got shape {answers_N.shape}")
    seen_M = jnp.zeros((num_outcomes,), bool).at[answers_N].set(True)
    return jnp.sum(seen_M)


def expected_diff_at_k(probs_M: jax.Array, k) -> jax.Array:
    """E[diff@k] = sum_o [1 - (1 - p(o))^k] for k i.i.d. samples from p."""
    if probs_M.ndim != 1:
        raise ValueError(f"probs_M must be 1-D, got shape {probs_M.shape}")
    return jnp.sum(1.0 - jnp.power(1.0 - probs_M, k))


def outcome_entropy(probs_M: jax.Array) -> jax.Array:
    """Shannon entropy (nats) of an outcome distribution; 0 log 0 = 0."""
    safe = jnp.where(probs_M > 0, probs_M, 1.0)
    return -jnp.sum(jnp.where(probs_M > 0, probs_M * jnp.log(safe), 0.0))


def cross_checkpoint_coverage(success_S: jax.Array, n) -> jax.Array:
    """P(solved at least once) over checkpoints s with success probability p_s and n samples each."""
    return 1.0 - jnp.exp(jnp.sum(n * jnp.log1p(-jnp.clip(success_S, 0.0, 1.0 - 1e-7))))


def pass_at_k_expected(p_correct, k) -> jax.Array:
    """P(at least one of k i.i.d. samples is correct) = 1 - (1 - p)^k."""
    return 1.0 - jnp.power(1.0 - p_correct, k)


def _distinct_one(answers_K: jax.Array, valid_K: jax.Array) -> jax.Array:
    # sort valid answers first, by value; count the valid entries that differ from their predecessor
    order = jnp.lexsort((answers_K, ~valid_K))
    a_K, v_K = answers_K[order], valid_K[order]
    new_K = jnp.concatenate([jnp.ones((1,), bool), a_K[1:] != a_K[:-1]])
    return jnp.sum(v_K & new_K).astype(jnp.int32)


def distinct_answers(answers_NxK: jax.Array, valid_NxK: jax.Array) -> jax.Array:
    """Distinct valid answers among the K samples of each of N problems (any integer answers).

    diff@K of outcome_exploration.md §2.3; invalid samples (no parsable answer) are not outcomes.
    """
    if answers_NxK.ndim != 2 or valid_NxK.shape != answers_NxK.shape:
        raise ValueError(f"answers_NxK must be rank 2 with valid_NxK of the same shape, "
                         f"got {answers_NxK.shape} and {valid_NxK.shape}")
    if not jnp.issubdtype(answers_NxK.dtype, jnp.integer):
        raise ValueError(f"answers_NxK must be integers, got dtype {answers_NxK.dtype}")
    return jax.vmap(_distinct_one)(answers_NxK, valid_NxK.astype(bool))


def expected_distinct_in_k(answers_n, valid_n, k: int):
    """Unbiased estimate of E[diff@k] from the n samples of one problem (numpy, float).

    The mean number of distinct valid answers over all C(n, k) k-subsets of the n samples:
    answer a (n_a copies) is in a random k-subset unless all k come from the other n - n_a, so

        E[diff@k] = sum_a [1 - C(n - n_a, k) / C(n, k)] = sum_a pass@k(n, n_a).

    Invalid samples occupy slots but are no answer. Requires 1 <= k <= n. A [problems, n] input
    gives one value per problem.
    """
    answers, valid = np.asarray(answers_n), np.asarray(valid_n, bool)
    if answers.shape != valid.shape or answers.ndim not in (1, 2):
        raise ValueError(f"answers_n and valid_n must share a 1-D (or [problems, n]) shape, "
                         f"got {answers.shape} and {valid.shape}")
    if answers.ndim == 2:
        return np.array([expected_distinct_in_k(a, v, k) for a, v in zip(answers, valid)])
    n = answers.shape[0]
    _, n_a = np.unique(answers[valid], return_counts=True)
    if n_a.size == 0:
        pass_at_k(n, 0, k)  # still validates k against n
        return 0.0
    return float(np.sum(pass_at_k(n, n_a, k)))
