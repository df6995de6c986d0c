"""Outcome-based exploration bonuses (Song, Kempe, Munos, arXiv 2509.06941, spec §3.1-3.3).

Shared by the bandit simulations (`theoryrl.theory.bandits`) and the language-model stack: every
function takes per-group arrays shaped [prompts, G] (`answers_PxG`: integer outcome ids, already
normalised; `correct_PxG`: bool) and, for the historical bonuses, a count table `counts_PxM`
(N(x, a) for prompt x and outcome a over the whole of training).

Readings implemented (every formula in the spec is [S]):
- naive UCB    b(x, a) = min{1, sqrt(1 / N(x, a))}, with N = 0 giving the cap 1 (§3.1). The
  default order is the spec's recommendation [I]: `update_counts` with the current batch *before*
  `ucb_bonus`, so N >= 1; calling them in the other order gives the "N from 0" ablation.
- UCB-Mean     b_i - (1/(G-1)) sum_{j != i} b_j  (leave-one-out mean over the group).
- UCB-Con      b_i - b0.
- batch        -(1/G) * #{j != i : a_j = a_i}  (n = G, the group size).
- gating       the exploration term is 0 in a group whose samples are all correct (§3.3).
- the bonus is added *after* group normalisation: A_i = Â_i + c * bonus_i (§3, the transcriptions'
  reading; `shaped_advantages(..., after_norm=False)` adds c * bonus to the reward instead).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _check_group(name: str, x: jax.Array) -> None:
    if x.ndim != 2:
        raise ValueError(f"{name} must be [prompts, G], got shape {x.shape}")


def update_counts(counts_PxM: jax.Array, answers_PxG: jax.Array) -> jax.Array:
    """N(x, a) += #{i : a_i = a} for every prompt x of the batch."""
    _check_group("answers_PxG", answers_PxG)
    num_outcomes = counts_PxM.shape[1]
    hits_PxM = jax.nn.one_hot(answers_PxG, num_outcomes, dtype=counts_PxM.dtype).sum(axis=1)
    return counts_PxM + hits_PxM


def lookup_counts(counts_PxM: jax.Array, answers_PxG: jax.Array) -> jax.Array:
    """N(x, a_i) for every sample: [P, G]."""
    _check_group("answers_PxG", answers_PxG)
    return jnp.take_along_axis(counts_PxM, answers_PxG, axis=1)


def ucb_bonus(counts_PxG: jax.Array) -> jax.Array:
    """Naive historical UCB: min{1, sqrt(1/N)}; N = 0 gives 1 (the cap)."""
    n = jnp.asarray(counts_PxG, jnp.float32)
    return jnp.where(n > 0, jnp.minimum(1.0, jax.lax.rsqrt(jnp.maximum(n, 1e-30))), 1.0)


def ucb_mean(bonus_PxG: jax.Array) -> jax.Array:
    """UCB-Mean: b_i minus the leave-one-out mean of the other G-1 bonuses of its group."""
    _check_group("bonus_PxG", bonus_PxG)
    g = bonus_PxG.shape[1]
    if g < 2:
        raise ValueError("UCB-Mean needs groups of G >= 2")
    others = (jnp.sum(bonus_PxG, axis=1, keepdims=True) - bonus_PxG) / (g - 1)
    return bonus_PxG - others


def ucb_con(bonus_PxG: jax.Array, b0) -> jax.Array:
    """UCB-Con: b_i - b0 (b0 = 0.5: answers seen < 4 times get a positive signal)."""
    return bonus_PxG - b0


def batch_penalty(answers_PxG: jax.Array) -> jax.Array:
    """-(1/G) * #{j != i : a_j = a_i}: a penalty for answers repeated within the group."""
    _check_group("answers_PxG", answers_PxG)
    g = answers_PxG.shape[1]
    same_PxGxG = answers_PxG[:, :, None] == answers_PxG[:, None, :]
    repeats_PxG = jnp.sum(same_PxGxG, axis=2) - 1
    return -repeats_PxG.astype(jnp.float32) / g


def gate(bonus_PxG: jax.Array, correct_PxG: jax.Array) -> jax.Array:
    """Zero the exploration term in groups whose samples are all correct (§3.3 gating)."""
    _check_group("correct_PxG", correct_PxG)
    all_correct_Px1 = jnp.all(correct_PxG, axis=1, keepdims=True)
    return jnp.where(all_correct_Px1, 0.0, bonus_PxG)


def exploration_bonus(weights: dict, counts_PxM: jax.Array, answers_PxG: jax.Array,
                      correct_PxG: jax.Array) -> jax.Array:
    """Weighted sum of the bonus variants, gated; `weights` may hold traced scalars (sweepable):

        ucb, ucb_mean, ucb_con : weights of b, UCB-Mean(b), UCB-Con(b, b0) with b = ucb_bonus(N)
        b0                     : UCB-Con's constant
        batch                  : weight of batch_penalty
        gate                   : 1.0 applies gating, 0.0 does not

    `counts_PxM` must already include the current batch for the default N >= 1 reading.
    Missing keys count as 0 (gate as 1).
    """
    w = {"ucb": 0.0, "ucb_mean": 0.0, "ucb_con": 0.0, "b0": 0.0, "batch": 0.0, "gate": 1.0, **weights}
    b_PxG = ucb_bonus(lookup_counts(counts_PxM, answers_PxG))
    bonus = (w["ucb"] * b_PxG + w["ucb_mean"] * ucb_mean(b_PxG) + w["ucb_con"] * ucb_con(b_PxG, w["b0"])
             + w["batch"] * batch_penalty(answers_PxG))
    gated = gate(bonus, correct_PxG)
    return w["gate"] * gated + (1.0 - w["gate"]) * bonus


def group_normalized(rewards_PxG: jax.Array, eps: float = 1e-4) -> jax.Array:
    """GRPO advantage (r - mean) / (std + eps) within each group (population std, ddof = 0)."""
    _check_group("rewards_PxG", rewards_PxG)
    mean = jnp.mean(rewards_PxG, axis=1, keepdims=True)
    std = jnp.std(rewards_PxG, axis=1, keepdims=True)
    return (rewards_PxG - mean) / (std + eps)


def shaped_advantages(rewards_PxG: jax.Array, bonus_PxG: jax.Array, c, *, after_norm: bool = True,
                      eps: float = 1e-4) -> jax.Array:
    """Â + c * bonus (default, §3) or normalise(r + c * bonus) (the 'before' ablation); no gradient."""
    if after_norm:
        adv = group_normalized(rewards_PxG, eps) + c * bonus_PxG
    else:
        adv = group_normalized(rewards_PxG + c * bonus_PxG, eps)
    return jax.lax.stop_gradient(adv)
