"""Advantage estimators on outcome rewards (the LM-stack issue extends this module)."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def group_mean_baseline(rewards_B: jax.Array, num_groups: int = 1) -> jax.Array:
    """Mean reward of each example's group; groups are `num_groups` near-equal contiguous blocks.

    num_groups = 1 is the batch-mean baseline. num_groups = S reproduces the official code's
    per-sub-batch mean when a batch of B is processed as S sub-batches (block b*S // B).
    """
    (batch,) = rewards_B.shape
    if num_groups == 1:
        return jnp.broadcast_to(jnp.mean(rewards_B), rewards_B.shape)
    group_B = (jnp.arange(batch) * num_groups) // batch
    sums = jax.ops.segment_sum(rewards_B, group_B, num_segments=num_groups)
    counts = jax.ops.segment_sum(jnp.ones_like(rewards_B), group_B, num_segments=num_groups)
    return (sums / counts)[group_B]


def baselined_advantages(rewards_B: jax.Array, num_groups: int = 1) -> jax.Array:
    """r - baseline, with the gradient stopped (a score-function estimator's weights)."""
    return jax.lax.stop_gradient(rewards_B - group_mean_baseline(rewards_B, num_groups))
