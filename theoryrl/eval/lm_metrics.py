"""Token-level metrics of language-model samples: perplexity and entropy (jax, jit-able).

Spec `rlvr_limits.md` §2.4 (perplexity) and §2.7 (entropy matching), `outcome_exploration.md` §2.4
(mean token entropy on correct / incorrect / all generations: pass `mask * correct[:, None]`).
Masks are 1 on the response tokens that count and 0 elsewhere (prompt, padding); they may be bool,
int or float. A response with no counted token gets perplexity 1 and contributes nothing to a mean,
so that an empty batch never produces a NaN inside a training scan.

`distinct_answers` and `expected_distinct_in_k` live in `diversity.py` and are re-exported here.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from theoryrl.eval.diversity import distinct_answers, expected_distinct_in_k  # noqa: F401  (re-export)


def _check_pair(a, a_name: str, mask, rank: int = 2) -> None:
    if a.ndim != rank or mask.shape != a.shape:
        raise ValueError(f"{a_name} must be rank {rank} with a mask of the same shape, "
                         f"got {a.shape} and mask {mask.shape}")


def sequence_perplexity(logp_NxT: jax.Array, mask_NxT: jax.Array) -> jax.Array:
    """PPL_i = exp(-(1/T_i) sum_t mask_it logp_it) with T_i = sum_t mask_it (1 where T_i = 0)."""
    _check_pair(logp_NxT, "logp_NxT", mask_NxT)
    m = mask_NxT.astype(logp_NxT.dtype)
    # where() rather than a product: a masked -inf log-prob (a padded, impossible token) stays out
    total_N = jnp.sum(jnp.where(m > 0, logp_NxT * m, 0.0), axis=-1)
    count_N = jnp.sum(m, axis=-1)
    return jnp.exp(-total_N / jnp.maximum(count_N, 1.0))


def mean_token_entropy(entropy_NxT: jax.Array, mask_NxT: jax.Array) -> jax.Array:
    """Mean per-token entropy over all masked-in tokens of the batch (0 if there are none)."""
    _check_pair(entropy_NxT, "entropy_NxT", mask_NxT)
    m = mask_NxT.astype(entropy_NxT.dtype)
    return jnp.sum(jnp.where(m > 0, entropy_NxT * m, 0.0)) / jnp.maximum(jnp.sum(m), 1.0)


def entropy_from_logits(logits_xV: jax.Array, temperature=1.0) -> jax.Array:
    """Entropy (nats) of softmax(logits / temperature) over the last axis; -inf logits allowed.

    The temperature is what entropy matching (rlvr_limits.md §2.7) varies: the RL model's
    temperature is raised until its mean token entropy equals the base model's at T = 0.6.
    """
    if logits_xV.ndim < 1:
        raise ValueError(f"logits must have a vocabulary axis, got shape {logits_xV.shape}")
    logp = jax.nn.log_softmax(logits_xV / temperature, axis=-1)
    p = jnp.exp(logp)
    # 0 log 0 = 0: masked-out tokens (logit -inf) have logp = -inf and p = 0
    return -jnp.sum(jnp.where(p > 0, p * logp, 0.0), axis=-1)
