"""Advantage estimators on outcome rewards (spec rl_algorithms.md §4; reference: verl core_algos).

Shapes: rewards natively `[P, G]` (prompts x group), so no reshape can mix groups; token arrays
`[P, G, T]` with `mask_PxGxT` = 1.0 on valid response tokens. Every estimator's output is a
score-function weight: the gradient is stopped (rlax's default). Token-level recursions (returns,
GAE) are written for one sequence with `lax.scan` and batched with `vmap`.

Conventions where verl leaves room, chosen here and tested:
- a group of size 1 gets mean 0 and std 1 (verl), for GRPO, Dr.GRPO and REINFORCE++-baseline;
- `whiten` is verl's `masked_whiten`: masked mean, Bessel-corrected masked variance, `rsqrt(var + eps)`;
- masked tokens are *skipped* by the backward recursions (the carry passes through them, as verl's
  GAE does for observation tokens), so the value after the last valid token is 0 and padding never
  leaks into returns; outputs are 0 on masked tokens;
- sequence-level estimators score a response by the sum of its token rewards (verl), so a KL-in-reward
  term and process rewards enter them as `r - kl_coef * sum_t k1_t + sum_t p_t`.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from theoryrl.core.config import require

ESTIMATORS = ("grpo", "dr_grpo", "rloo", "reinforce", "reinforce_pp", "reinforce_pp_baseline", "remax",
              "gae", "dapo")


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


# ---------------------------------------------------------------- boundary checks

def _floats(name: str, x, ndim: int) -> jax.Array:
    """Check the rank, promote integer/bool inputs to float32 and stop the gradient."""
    x = jnp.asarray(x)
    if x.ndim != ndim:
        raise ValueError(f"{name} must have rank {ndim}, got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return jax.lax.stop_gradient(x)


def _tokens(name: str, x, shape: tuple) -> jax.Array:
    x = _floats(name, x, 3)
    if x.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (like mask_PxGxT), got {x.shape}")
    return x


def _rewards_and_mask(rewards_PxG, mask_PxGxT):
    rewards = _floats("rewards_PxG", rewards_PxG, 2)
    mask = _floats("mask_PxGxT", mask_PxGxT, 3)
    if mask.shape[:2] != rewards.shape:
        raise ValueError(f"mask_PxGxT {mask.shape} must start with rewards_PxG's shape {rewards.shape}")
    return rewards, mask


# ---------------------------------------------------------------- sequence-level estimators

def _group_mean_std(rewards_PxG: jax.Array, ddof: int):
    """[P, 1] group mean and std; a group of size 1 gets mean 0 and std 1 (verl; static shape)."""
    if rewards_PxG.shape[1] == 1:
        return jnp.zeros_like(rewards_PxG), jnp.ones_like(rewards_PxG)
    mean_Px1 = jnp.mean(rewards_PxG, axis=1, keepdims=True)
    return mean_Px1, jnp.std(rewards_PxG, axis=1, keepdims=True, ddof=ddof)


def _centred(rewards_PxG: jax.Array, mean_Px1: jax.Array) -> jax.Array:
    """r - mean, exactly 0 in a constant group: under jit the mean's rounding can leave ~1e-8 there,
    which (r - mean) / (std + eps) would blow up to O(1e-2) (seen for a group of 0.1s)."""
    if rewards_PxG.shape[1] == 1:
        return rewards_PxG - mean_Px1
    constant_Px1 = jnp.max(rewards_PxG, axis=1, keepdims=True) == jnp.min(rewards_PxG, axis=1, keepdims=True)
    return jnp.where(constant_Px1, 0.0, rewards_PxG - mean_Px1)


def grpo(rewards_PxG, *, std_normalize: bool = True, ddof: int = 1, eps=1e-6) -> jax.Array:
    """(r - mean_G) / (std_G + eps); std with `ddof` (verl: 1, Bessel). std_normalize=False: r - mean_G."""
    rewards = _floats("rewards_PxG", rewards_PxG, 2)
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 or 1, got {ddof!r}")
    mean_Px1, std_Px1 = _group_mean_std(rewards, ddof)
    centred = _centred(rewards, mean_Px1)
    if not std_normalize:
        return centred
    denom_Px1 = std_Px1 + eps
    return centred / jnp.where(denom_Px1 > 0, denom_Px1, 1.0)  # eps = 0 and a constant group: 0, not nan


def dr_grpo(rewards_PxG) -> jax.Array:
    """Dr.GRPO: r - mean_G (no std division)."""
    return grpo(rewards_PxG, std_normalize=False)


def rloo(rewards_PxG) -> jax.Array:
    """Leave-one-out: r_i - mean_{j != i} r_j = G/(G-1) (r_i - mean_G); needs G >= 2."""
    rewards = _floats("rewards_PxG", rewards_PxG, 2)
    g = rewards.shape[1]
    if g < 2:
        raise ValueError(f"RLOO needs groups of G >= 2, got G = {g}")
    return (g / (g - 1)) * _centred(rewards, jnp.mean(rewards, axis=1, keepdims=True))


def reinforce_batch_mean(rewards_PxG, *, valid_PxG=None) -> jax.Array:
    """r - mean over the whole batch; `valid_PxG` (0/1) restricts the mean to the kept responses."""
    rewards = _floats("rewards_PxG", rewards_PxG, 2)
    if valid_PxG is None:
        return rewards - jnp.mean(rewards)
    valid = _floats("valid_PxG", valid_PxG, 2)
    mean = jnp.sum(valid * rewards) / jnp.maximum(jnp.sum(valid), 1.0)
    return rewards - mean


def remax(rewards_PxG, greedy_rewards_P) -> jax.Array:
    """ReMax: r_i - r(greedy response to the prompt)."""
    rewards = _floats("rewards_PxG", rewards_PxG, 2)
    greedy = _floats("greedy_rewards_P", greedy_rewards_P, 1)
    if greedy.shape[0] != rewards.shape[0]:
        raise ValueError(f"greedy_rewards_P {greedy.shape} must have one entry per prompt ({rewards.shape[0]})")
    return rewards - greedy[:, None]


def dapo_keep_groups(rewards_PxG) -> jax.Array:
    """DAPO dynamic sampling: keep groups whose rewards are not all equal (accuracy strictly in (0, 1)).

    Like verl (which keeps groups with std > 0), a group of size 1 is kept.
    """
    rewards = _floats("rewards_PxG", rewards_PxG, 2)
    if rewards.shape[1] == 1:
        return jnp.ones(rewards.shape[:1], bool)
    return jnp.max(rewards, axis=1) > jnp.min(rewards, axis=1)


def overlong_penalty(length_PxG, *, max_len: int, cache_len: int, factor=1.0) -> jax.Array:
    """DAPO overlong shaping: 0 up to max_len - cache_len, then linear down to -factor at max_len.

    verl: min(-(L - (max_len - cache_len)) / cache_len * factor, 0); lengths past max_len (which a
    sampler capped at max_len cannot produce) are held at -factor.
    """
    if not (isinstance(cache_len, int) and isinstance(max_len, int) and 1 <= cache_len <= max_len):
        raise ValueError(f"need integers 1 <= cache_len <= max_len, got cache_len={cache_len!r}, "
                         f"max_len={max_len!r}")
    length = _floats("length_PxG", length_PxG, 2)
    over = jnp.clip((length - (max_len - cache_len)) / cache_len, 0.0, 1.0)
    return -factor * over


def broadcast_to_tokens(adv_PxG, mask_PxGxT) -> jax.Array:
    """A_i on every valid token of response i, 0 elsewhere."""
    adv = _floats("adv_PxG", adv_PxG, 2)
    mask = _floats("mask_PxGxT", mask_PxGxT, 3)
    if mask.shape[:2] != adv.shape:
        raise ValueError(f"mask_PxGxT {mask.shape} must start with adv_PxG's shape {adv.shape}")
    return adv[:, :, None] * mask


# ---------------------------------------------------------------- token-level pieces

def whiten(x, mask, eps=1e-8, *, ddof: int = 1) -> jax.Array:
    """Global whitening over the valid entries: (x - mean) * rsqrt(var + eps), 0 where mask is 0.

    verl's masked_whiten: the variance is Bessel-corrected (ddof = 1); with fewer than ddof + 1
    valid entries the denominator is held at 1 instead of dividing by zero.
    """
    x, mask = jnp.asarray(x), jnp.asarray(mask, x.dtype)
    if x.shape != mask.shape:
        raise ValueError(f"whiten: x {x.shape} and mask {mask.shape} must have the same shape")
    n = jnp.sum(mask)
    mean = jnp.sum(mask * x) / jnp.maximum(n, 1.0)
    var = jnp.sum(mask * jnp.square(x - mean)) / jnp.maximum(n - ddof, 1.0)
    return mask * (x - mean) * jax.lax.rsqrt(var + eps)


def outcome_token_rewards(rewards_PxG, mask_PxGxT) -> jax.Array:
    """The outcome reward on the last valid token of each response (an empty response gets none)."""
    rewards, mask = _rewards_and_mask(rewards_PxG, mask_PxGxT)
    t_PxGxT = jax.lax.broadcasted_iota(jnp.int32, mask.shape, 2)
    last_PxG = jnp.argmax(jnp.where(mask > 0, t_PxGxT, -1), axis=2)
    is_last = (t_PxGxT == last_PxG[:, :, None]) & (mask > 0)
    return jnp.where(is_last, rewards[:, :, None], 0.0)


def _returns_T(rewards_T, mask_T, gamma):
    """G_t = r_t + gamma G_{t+1} over valid tokens; masked tokens are skipped and get 0."""
    def step(next_return, r_m):
        r_t, m_t = r_m
        g_t = r_t + gamma * next_return
        return m_t * g_t + (1.0 - m_t) * next_return, m_t * g_t

    _, returns_T = jax.lax.scan(step, jnp.zeros((), rewards_T.dtype), (rewards_T, mask_T), reverse=True)
    return returns_T


def discounted_returns(token_rewards_PxGxT, mask_PxGxT, gamma=1.0) -> jax.Array:
    """Returns-to-go G_t = sum_{t' >= t, valid} gamma^(#valid steps) r_t'; 0 on masked tokens."""
    mask = _floats("mask_PxGxT", mask_PxGxT, 3)
    rewards = _tokens("token_rewards_PxGxT", token_rewards_PxGxT, mask.shape)
    per_group = jax.vmap(_returns_T, in_axes=(0, 0, None))
    return jax.vmap(per_group, in_axes=(0, 0, None))(rewards, mask, gamma)


def _gae_T(rewards_T, values_T, mask_T, gamma, lam):
    """One sequence of GAE, backwards; V after the last valid token is 0, masked tokens skipped."""
    def step(carry, rvm):
        next_value, next_adv = carry
        r_t, v_t, m_t = rvm
        delta_t = r_t + gamma * next_value - v_t
        adv_t = delta_t + gamma * lam * next_adv
        carry = (m_t * v_t + (1.0 - m_t) * next_value, m_t * adv_t + (1.0 - m_t) * next_adv)
        return carry, m_t * adv_t

    zero = jnp.zeros((), rewards_T.dtype)
    _, adv_T = jax.lax.scan(step, (zero, zero), (rewards_T, values_T, mask_T), reverse=True)
    return adv_T


def gae(token_rewards_PxGxT, values_PxGxT, mask_PxGxT, *, gamma=1.0, lam=1.0,
        whiten_advantages: bool = False):
    """GAE: delta_t = r_t + gamma V_{t+1} - V_t, A_t = sum_l (gamma lam)^l delta_{t+l}; returns = A + V.

    The returns use the raw advantages. `whiten_advantages=True` then whitens A over the batch's
    valid tokens (what `compute_advantages` does for "gae", as verl); the default leaves A raw.
    """
    mask = _floats("mask_PxGxT", mask_PxGxT, 3)
    rewards = _tokens("token_rewards_PxGxT", token_rewards_PxGxT, mask.shape)
    values = _tokens("values_PxGxT", values_PxGxT, mask.shape)
    per_group = jax.vmap(_gae_T, in_axes=(0, 0, 0, None, None))
    adv = jax.vmap(per_group, in_axes=(0, 0, 0, None, None))(rewards, values, mask, gamma, lam)
    returns = mask * (adv + values)
    if whiten_advantages:
        adv = whiten(adv, mask)
    return adv, returns


def _token_rewards(rewards, mask, kl_PxGxT, kl_coef, token_rewards_PxGxT):
    """Outcome on the last token, minus kl_coef * k1 per token, plus per-token process rewards."""
    token_r = outcome_token_rewards(rewards, mask)
    if kl_PxGxT is not None:
        token_r = token_r - kl_coef * _tokens("kl_PxGxT", kl_PxGxT, mask.shape)
    if token_rewards_PxGxT is not None:
        token_r = token_r + _tokens("token_rewards_PxGxT", token_rewards_PxGxT, mask.shape)
    return mask * token_r


def reinforce_pp(rewards_PxG, mask_PxGxT, *, kl_PxGxT=None, kl_coef=0.0, gamma=1.0,
                 token_rewards_PxGxT=None) -> jax.Array:
    """REINFORCE++: token rewards (outcome at the last token - kl_coef * k1 [+ process rewards]),
    returns-to-go, then global whitening over all valid tokens; no per-prompt baseline."""
    rewards, mask = _rewards_and_mask(rewards_PxG, mask_PxGxT)
    token_r = _token_rewards(rewards, mask, kl_PxGxT, kl_coef, token_rewards_PxGxT)
    return whiten(discounted_returns(token_r, mask, gamma), mask)


def reinforce_pp_baseline(rewards_PxG, mask_PxGxT) -> jax.Array:
    """REINFORCE++-baseline: r - group mean, broadcast to the tokens, global whitening over tokens."""
    rewards, mask = _rewards_and_mask(rewards_PxG, mask_PxGxT)
    mean_Px1, _ = _group_mean_std(rewards, ddof=0)
    return whiten(broadcast_to_tokens(_centred(rewards, mean_Px1), mask), mask)


# ---------------------------------------------------------------- spec and dispatcher

def _is_number(v) -> bool:
    """Concrete Python numbers are range-checked; traced (swept) values cannot be and are skipped."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclasses.dataclass(frozen=True)
class AdvantageSpec:
    """Which estimator, and its knobs. `eps` is GRPO's std epsilon (whitening uses verl's 1e-8);
    gamma/lam are used by reinforce_pp (gamma) and gae (both); "dapo" is GRPO's advantage."""

    estimator: str = "grpo"
    std_normalize: bool = True
    ddof: int = 1
    eps: float = 1e-6
    gamma: float = 1.0
    lam: float = 1.0

    def validate(self) -> None:
        require(self.estimator in ESTIMATORS, "estimator", self.estimator, " | ".join(ESTIMATORS))
        require(isinstance(self.std_normalize, bool), "std_normalize", self.std_normalize, "true/false")
        require(self.ddof in (0, 1), "ddof", self.ddof, "0 or 1")
        for knob, lo, hi in (("eps", 0.0, float("inf")), ("gamma", 0.0, 1.0), ("lam", 0.0, 1.0)):
            v = getattr(self, knob)
            require(not _is_number(v) or lo <= v <= hi, knob, v, f"{lo} <= {knob} <= {hi}")


def _sequence_advantages(spec: AdvantageSpec, scores_PxG, greedy_rewards_P, keep_PxG):
    est = spec.estimator
    if est in ("grpo", "dapo"):
        return grpo(scores_PxG, std_normalize=spec.std_normalize, ddof=spec.ddof, eps=spec.eps)
    if est == "dr_grpo":
        return dr_grpo(scores_PxG)
    if est == "rloo":
        return rloo(scores_PxG)
    if est == "reinforce":
        return reinforce_batch_mean(scores_PxG, valid_PxG=keep_PxG)
    if greedy_rewards_P is None:
        raise ValueError("estimator 'remax' needs greedy_rewards_P (one greedy rollout per prompt)")
    return remax(scores_PxG, greedy_rewards_P)


def _sequence_scores(rewards, mask, kl_PxGxT, kl_coef, token_rewards_PxGxT):
    """A response's score = the sum of its token rewards (verl), i.e. r - kl_coef sum k1 + sum p."""
    if kl_PxGxT is None and token_rewards_PxGxT is None:
        return rewards
    return jnp.sum(_token_rewards(rewards, mask, kl_PxGxT, kl_coef, token_rewards_PxGxT), axis=2)


def compute_advantages(spec: AdvantageSpec, rewards_PxG, mask_PxGxT, *, values_PxGxT=None,
                       greedy_rewards_P=None, kl_PxGxT=None, kl_coef=0.0, token_adv_mask_PxGxT=None,
                       bonus_PxG=None, bonus_coef=0.0, keep_P=None, token_rewards_PxGxT=None):
    """One dispatcher over ESTIMATORS -> (adv_PxGxT, extras); extras = {"returns": ...} for "gae".

    - kl_PxGxT (k1 per token) * kl_coef is subtracted from the token rewards (KL in the reward);
      token_rewards_PxGxT (process rewards) are added to them.
    - keep_P (DAPO dynamic sampling, see dapo_keep_groups) removes dropped groups from the batch:
      their advantages are 0 and they do not enter batch statistics (batch mean, whitening).
    - bonus_coef * bonus_PxG is added after normalisation on tokens where token_adv_mask_PxGxT is 1
      (default: every valid token), e.g. exploration bonuses on reasoning tokens only.
    The result is 0 on masked tokens and carries no gradient.
    """
    spec.validate()
    rewards, mask = _rewards_and_mask(rewards_PxG, mask_PxGxT)
    keep_Px1x1 = None
    if keep_P is not None:
        keep_Px1x1 = _floats("keep_P", keep_P, 1).reshape(-1, 1, 1)
        if keep_Px1x1.shape[0] != rewards.shape[0]:
            raise ValueError(f"keep_P must have one entry per prompt ({rewards.shape[0]}), got {keep_Px1x1.shape[0]}")
        mask = mask * keep_Px1x1
    extras = {}
    if spec.estimator == "reinforce_pp":
        adv = reinforce_pp(rewards, mask, kl_PxGxT=kl_PxGxT, kl_coef=kl_coef, gamma=spec.gamma,
                           token_rewards_PxGxT=token_rewards_PxGxT)
    elif spec.estimator == "gae":
        if values_PxGxT is None:
            raise ValueError("estimator 'gae' needs values_PxGxT (a value head)")
        token_r = _token_rewards(rewards, mask, kl_PxGxT, kl_coef, token_rewards_PxGxT)
        adv, extras["returns"] = gae(token_r, values_PxGxT, mask, gamma=spec.gamma, lam=spec.lam,
                                     whiten_advantages=True)
    else:
        scores = _sequence_scores(rewards, mask, kl_PxGxT, kl_coef, token_rewards_PxGxT)
        if spec.estimator == "reinforce_pp_baseline":
            adv = reinforce_pp_baseline(scores, mask)
        else:
            keep_PxG = None if keep_Px1x1 is None else jnp.broadcast_to(keep_Px1x1[:, :, 0], scores.shape)
            adv = broadcast_to_tokens(_sequence_advantages(spec, scores, greedy_rewards_P, keep_PxG), mask)
    if bonus_PxG is not None:
        bonus = _floats("bonus_PxG", bonus_PxG, 2)
        if bonus.shape != rewards.shape:
            raise ValueError(f"bonus_PxG must have shape {rewards.shape}, got {bonus.shape}")
        where = mask if token_adv_mask_PxGxT is None else mask * _tokens(
            "token_adv_mask_PxGxT", token_adv_mask_PxGxT, mask.shape)
        adv = adv + bonus_coef * bonus[:, :, None] * where
    return jax.lax.stop_gradient(mask * adv), extras
