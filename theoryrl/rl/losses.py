"""Policy-gradient surrogates, loss aggregation and KL estimators (spec rl_algorithms.md §2, §3, §5).

Reference: verl `core_algos.py` (compute_policy_loss, agg_loss, kl_penalty, compute_value_loss).
Token arrays are `[P, G, T]` with `mask_PxGxT` = 1.0 on valid response tokens. Mode and kind
strings are static; every coefficient and clip range may be a traced scalar (swept under vmap).

Aggregation (`aggregate`), with len_i = sum_t m_it and N_resp = P * G every response in the batch:
- "token-mean":              sum m l / sum m                       (verl default; DAPO)
- "seq-mean-token-mean":     (1/N_resp) sum_i (sum_t m l / len_i)  (original GRPO). An empty response
                             contributes 0 but still counts in N_resp, so the scale does not depend
                             on how many responses happen to be empty.
- "seq-mean-token-sum-norm": sum m l / norm_len / N_resp           (Dr.GRPO; norm_len defaults to T).
                             The 1/N_resp makes it a mean over responses of token sums / L_const, so
                             the learning rate does not scale with the batch size; with norm_len = 1
                             it is exactly the sequence-level score-function estimator (1/N) sum_i A_i
                             grad log pi(y_i) on-policy.
Divisions by zero are guarded: an all-masked batch aggregates to 0.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from theoryrl.core.config import require

AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")
KL_KINDS = ("k1", "k2", "k3", "k3+")
KL_PLACEMENTS = ("none", "reward", "loss")


def _check_tokens(**arrays) -> tuple:
    """Rank 3 and one common shape for every non-None array; returns the shape."""
    shape = None
    for name, x in arrays.items():
        if x is None:
            continue
        if jnp.ndim(x) != 3:
            raise ValueError(f"{name} must be [P, G, T], got shape {jnp.shape(x)}")
        if shape is not None and jnp.shape(x) != shape:
            raise ValueError(f"{name} has shape {jnp.shape(x)}, expected {shape} like the other token arrays")
        shape = jnp.shape(x)
    return shape


def _nonzero(x):
    return jnp.where(x > 0, x, 1.0)


def aggregate(loss_PxGxT, mask_PxGxT, mode: str, *, norm_len=None) -> jax.Array:
    """Reduce per-token losses to a scalar with an explicit mode (see the module docstring)."""
    p, g, t = _check_tokens(loss_PxGxT=loss_PxGxT, mask_PxGxT=mask_PxGxT)
    mask = jnp.asarray(mask_PxGxT, jnp.result_type(loss_PxGxT))
    # where, not a product: a masked token may hold -inf/nan (log-prob of padding)
    masked = jnp.where(mask > 0, loss_PxGxT * mask, 0.0)
    if mode == "token-mean":
        return jnp.sum(masked) / _nonzero(jnp.sum(mask))
    n_resp = p * g
    seq_sum_PxG = jnp.sum(masked, axis=2)
    if mode == "seq-mean-token-mean":
        return jnp.sum(seq_sum_PxG / _nonzero(jnp.sum(mask, axis=2))) / n_resp
    if mode == "seq-mean-token-sum-norm":
        if isinstance(norm_len, (int, float)) and norm_len <= 0:
            raise ValueError(f"norm_len must be > 0 (or None for T), got {norm_len}")
        return jnp.sum(seq_sum_PxG) / (t if norm_len is None else norm_len) / n_resp
    raise ValueError(f"unknown aggregation mode {mode!r} (allowed: {', '.join(AGG_MODES)})")


def _surrogate(logp, logp_old, adv, clip_low, clip_high, dual_clip):
    """Per-token PPO loss, the PPO-clip flags, the dual-clip flags and the ratio."""
    # verl clamps the log-ratio so that exp stays finite far off-policy
    ratio = jnp.exp(jnp.clip(logp - logp_old, -20.0, 20.0))
    unclipped = -adv * ratio
    clipped = -adv * jnp.clip(ratio, 1.0 - clip_low, 1.0 + clip_high)
    ppo_hit = clipped > unclipped  # the clipped branch wins: its gradient is 0
    loss = jnp.where(ppo_hit, clipped, unclipped)
    if dual_clip is None:
        return loss, ppo_hit, jnp.zeros_like(ppo_hit), ratio
    cap = -adv * dual_clip  # for A < 0 the loss is capped at -A c (a constant: zero gradient)
    dual_hit = (adv < 0) & (loss > cap) & (dual_clip > 1.0)
    return jnp.where(dual_hit, cap, loss), ppo_hit, dual_hit, ratio


def clipped_surrogate(logp_PxGxT, logp_old_PxGxT, adv_PxGxT, *, clip_low=0.2, clip_high=0.2, dual_clip=3.0):
    """max(-A rho, -A clip(rho, 1 - clip_low, 1 + clip_high)), then for A < 0 min(., -A dual_clip).

    Returns (loss_PxGxT, clipped_PxGxT): clipped marks tokens whose gradient the clip (either one)
    zeroed. dual_clip None or <= 1 disables the dual clip. No aggregation, no stop-gradient.
    """
    _check_tokens(logp_PxGxT=logp_PxGxT, logp_old_PxGxT=logp_old_PxGxT, adv_PxGxT=adv_PxGxT)
    loss, ppo_hit, dual_hit, _ = _surrogate(logp_PxGxT, logp_old_PxGxT, adv_PxGxT, clip_low, clip_high,
                                            dual_clip)
    return loss, ppo_hit | dual_hit


def kl_estimate(logp, logp_ref, kind: str) -> jax.Array:
    """Per-token KL(pi || pi_ref) estimate from sampled-token log-probs, delta = logp - logp_ref.

    k1 = delta; k2 = delta^2 / 2; k3 = exp(-delta) + delta - 1 with verl's clamps (exponent argument
    to [-20, 20], result to [-10, 10]); k3+ = k3's value with k2's gradient (straight-through).
    """
    delta = logp - logp_ref
    if kind == "k1":
        return delta
    if kind == "k2":
        return 0.5 * jnp.square(delta)
    if kind not in ("k3", "k3+"):
        raise ValueError(f"unknown KL estimator {kind!r} (allowed: {', '.join(KL_KINDS)})")
    neg_delta = jnp.clip(-delta, -20.0, 20.0)
    k3 = jnp.clip(jnp.exp(neg_delta) - neg_delta - 1.0, -10.0, 10.0)
    if kind == "k3":
        return k3
    k2 = 0.5 * jnp.square(delta)
    return k2 + jax.lax.stop_gradient(k3 - k2)


def _is_number(v) -> bool:
    """Concrete Python numbers are range-checked; traced (swept) values cannot be and are skipped."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """Actor loss. kl: "none"; "reward" (the caller subtracts kl_coef * k1 from the token rewards via
    compute_advantages, the loss has no KL term); "loss" (kl_coef * aggregate(kl_kind estimate) is
    added, aggregated like the policy loss). norm_len: L_const of seq-mean-token-sum-norm, 0 = T."""

    agg: str = "token-mean"
    clip_low: float = 0.2
    clip_high: float = 0.2
    dual_clip: float | None = 3.0
    kl: str = "none"
    kl_kind: str = "k3"
    kl_coef: float = 0.0
    norm_len: int = 0
    entropy_coef: float = 0.0

    def validate(self) -> None:
        require(self.agg in AGG_MODES, "agg", self.agg, " | ".join(AGG_MODES))
        require(self.kl in KL_PLACEMENTS, "kl", self.kl, " | ".join(KL_PLACEMENTS))
        require(self.kl_kind in KL_KINDS, "kl_kind", self.kl_kind, " | ".join(KL_KINDS))
        require(not _is_number(self.clip_low) or 0.0 <= self.clip_low < 1.0, "clip_low", self.clip_low,
                "0 <= clip_low < 1")
        require(not _is_number(self.clip_high) or self.clip_high >= 0.0, "clip_high", self.clip_high, ">= 0")
        require(self.dual_clip is None or not isinstance(self.dual_clip, (str, bool)), "dual_clip",
                self.dual_clip, "a number (<= 1 disables) or none")
        require(not _is_number(self.kl_coef) or self.kl_coef >= 0.0, "kl_coef", self.kl_coef, ">= 0")
        require(isinstance(self.norm_len, int) and self.norm_len >= 0, "norm_len", self.norm_len,
                "an integer >= 0 (0 = response length T)")


def _masked_mean(x, mask):
    return jnp.sum(jnp.where(mask > 0, x * mask, 0.0)) / _nonzero(jnp.sum(mask))


def policy_loss(spec: LossSpec, logp_PxGxT, logp_old_PxGxT, adv_PxGxT, mask_PxGxT, *, logp_ref_PxGxT=None,
                entropy_PxGxT=None):
    """Clipped surrogate aggregated with spec.agg, + kl_coef * KL (kl="loss"), - entropy_coef * entropy.

    Advantages and old log-probs are constants (gradient stopped here). Returns (loss, stats):
    pg_loss, kl (spec.kl_kind estimate aggregated like the loss; 0 without logp_ref), entropy (0 when
    not given), clipfrac (PPO clip), clipfrac_lower (dual clip), ratio_mean, approx_kl (mean of
    logp_old - logp); the token statistics are masked token means. Stats carry no gradient.
    """
    spec.validate()
    _check_tokens(logp_PxGxT=logp_PxGxT, logp_old_PxGxT=logp_old_PxGxT, adv_PxGxT=adv_PxGxT,
                  mask_PxGxT=mask_PxGxT, logp_ref_PxGxT=logp_ref_PxGxT, entropy_PxGxT=entropy_PxGxT)
    if spec.kl == "loss" and logp_ref_PxGxT is None:
        raise ValueError("LossSpec.kl = 'loss' needs logp_ref_PxGxT (reference-policy log-probs)")
    if entropy_PxGxT is None and not (_is_number(spec.entropy_coef) and spec.entropy_coef == 0):
        raise ValueError("LossSpec.entropy_coef != 0 needs entropy_PxGxT")
    norm_len = spec.norm_len or None
    mask = jnp.asarray(mask_PxGxT, jnp.result_type(logp_PxGxT))
    logp_old = jax.lax.stop_gradient(logp_old_PxGxT)
    adv = jax.lax.stop_gradient(adv_PxGxT)
    pg_PxGxT, ppo_hit, dual_hit, ratio = _surrogate(logp_PxGxT, logp_old, adv, spec.clip_low, spec.clip_high,
                                                    spec.dual_clip)
    pg_loss = aggregate(pg_PxGxT, mask, spec.agg, norm_len=norm_len)
    loss, kl, entropy = pg_loss, jnp.zeros(()), jnp.zeros(())
    if logp_ref_PxGxT is not None:
        kl_PxGxT = kl_estimate(logp_PxGxT, jax.lax.stop_gradient(logp_ref_PxGxT), spec.kl_kind)
        kl = aggregate(kl_PxGxT, mask, spec.agg, norm_len=norm_len)
        if spec.kl == "loss":
            loss = loss + spec.kl_coef * kl
    if entropy_PxGxT is not None:
        entropy = aggregate(entropy_PxGxT, mask, spec.agg, norm_len=norm_len)
        loss = loss - spec.entropy_coef * entropy
    stats = {"pg_loss": pg_loss, "kl": kl, "entropy": entropy,
             "clipfrac": _masked_mean(ppo_hit.astype(mask.dtype), mask),
             "clipfrac_lower": _masked_mean(dual_hit.astype(mask.dtype), mask),
             "ratio_mean": _masked_mean(ratio, mask),
             "approx_kl": _masked_mean(logp_old - logp_PxGxT, mask)}
    return loss, jax.lax.stop_gradient(stats)


def value_loss(values_PxGxT, values_old_PxGxT, returns_PxGxT, mask_PxGxT, *, clip=0.5, agg="token-mean",
               norm_len=None) -> jax.Array:
    """PPO value loss 0.5 * max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2), aggregated with `agg`."""
    _check_tokens(values_PxGxT=values_PxGxT, values_old_PxGxT=values_old_PxGxT, returns_PxGxT=returns_PxGxT,
                  mask_PxGxT=mask_PxGxT)
    values_old = jax.lax.stop_gradient(values_old_PxGxT)
    returns = jax.lax.stop_gradient(returns_PxGxT)
    v_clipped = jnp.clip(values_PxGxT, values_old - clip, values_old + clip)
    per_token = jnp.maximum(jnp.square(values_PxGxT - returns), jnp.square(v_clipped - returns))
    return 0.5 * aggregate(per_token, mask_PxGxT, agg, norm_len=norm_len)
