"""Diversity of outcomes: distinct answers, diff@k and its expectation, outcome entropy, coverage.

Written for one prompt (vmap over prompts). Spec `outcome_exploration.md` §2.1-2.3:
- diff@k: the number of distinct outcomes among k samples; its expectation under an outcome
  distribution p is D_k = sum_o [1 - (1 - p(o))^k] [S:reading-note; each outcome o contributes
  P(o appears at least once)].
- "solved at least once" coverage across checkpoints: 1 - prod_s (1 - p_s)^n (the RL curve of
  Figure 2 is this cross-checkpoint quantity, not any single model's pass@k).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


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
