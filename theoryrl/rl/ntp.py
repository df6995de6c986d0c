"""Next-token-prediction (SFT) training of the transformer: loss, one step, a scanned chunk.

    tx = make_optimizer(OptimSpec(lr=1e-3, total_steps=2000), lr_scale=hp.lr_scale)
    params, opt_state, metrics_S = ntp_chunk(model_spec, tx, batch_fn, params, opt_state, key, t0, 100)

The optimiser is AdamW (decoupled weight decay on matrices only, not on RMSNorm scales or biases)
behind an optional global-norm clip. The learning rate is `lr_scale * learning_rate(spec, step)`:
a linear warmup to `lr` over `warmup_steps` (step s uses lr * (s + 1) / warmup_steps, so step 0
already moves), then a cosine decay to `final_lr_frac * lr` at `total_steps` (held there after), or a
constant `lr`. `lr_scale` may be a traced scalar: it multiplies the update inside the optimiser
(a closure in `scale_by_schedule`), so an lr sweep is a vmap, not one optimiser per value.

`loss_mask_BxT` marks TARGET tokens: the loss averages -log p(tokens[:, t+1] | tokens[:, :t+1]) over
the positions t with loss_mask[:, t+1] == 1 (prompt tokens are context, never targets).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from theoryrl.core.config import require
from theoryrl.models import transformer as tfm

SCHEDULES = ("cosine", "constant")


@dataclasses.dataclass(frozen=True)
class OptimSpec:
    lr: float = 1e-3
    warmup_steps: int = 100
    total_steps: int = 1000  # cosine decay horizon (warmup included)
    schedule: str = "cosine"  # "cosine" | "constant" (after warmup)
    final_lr_frac: float = 0.1
    weight_decay: float = 0.0
    b1: float = 0.9
    b2: float = 0.95
    grad_clip: float = 1.0  # global-norm clip, 0 = off

    def validate(self) -> None:
        # lr = 0 is legal: learning switched off (issue 20), AdamW then leaves the parameters unchanged
        require(math.isfinite(self.lr) and self.lr >= 0, "lr", self.lr, "a finite number >= 0")
        require(self.warmup_steps >= 0, "warmup_steps", self.warmup_steps, ">= 0")
        require(self.total_steps >= 1, "total_steps", self.total_steps, ">= 1")
        require(self.schedule in SCHEDULES, "schedule", self.schedule, " | ".join(SCHEDULES))
        require(0 <= self.final_lr_frac <= 1, "final_lr_frac", self.final_lr_frac, "in [0, 1]")
        require(self.weight_decay >= 0, "weight_decay", self.weight_decay, ">= 0")
        require(0 <= self.b1 < 1, "b1", self.b1, "in [0, 1)")
        require(0 <= self.b2 < 1, "b2", self.b2, "in [0, 1)")
        require(self.grad_clip >= 0, "grad_clip", self.grad_clip, ">= 0 (0 = off)")


def learning_rate(spec: OptimSpec, step) -> jax.Array:
    """The scheduled learning rate at (0-based, possibly traced) `step`, before lr_scale."""
    step = jnp.asarray(step, jnp.float32)
    warm = jnp.minimum(1.0, (step + 1.0) / spec.warmup_steps) if spec.warmup_steps > 0 else jnp.float32(1.0)
    if spec.schedule == "constant":
        return spec.lr * warm
    horizon = max(spec.total_steps - spec.warmup_steps, 1)
    frac = jnp.clip((step - spec.warmup_steps) / horizon, 0.0, 1.0)
    decay = spec.final_lr_frac + (1.0 - spec.final_lr_frac) * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
    return spec.lr * jnp.where(step < spec.warmup_steps, warm, decay)


def _decay_mask(params):
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(spec: OptimSpec, lr_scale=1.0) -> optax.GradientTransformation:
    """AdamW + warmup/cosine (see module docstring); `lr_scale` may be traced."""
    spec.validate()
    parts = [optax.clip_by_global_norm(spec.grad_clip)] if spec.grad_clip > 0 else []
    parts.append(optax.scale_by_adam(b1=spec.b1, b2=spec.b2))
    if spec.weight_decay > 0:
        parts.append(optax.add_decayed_weights(spec.weight_decay, mask=_decay_mask))
    parts.append(optax.scale_by_schedule(lambda count: -lr_scale * learning_rate(spec, count)))
    return optax.chain(*parts)


def ntp_loss(model_spec: tfm.TransformerSpec, params, tokens_BxT, loss_mask_BxT, *, kv_mask_BxT=None,
             positions_BxT=None):
    """(mean cross-entropy over target positions, {"loss", "token_acc", "num_targets"})."""
    if loss_mask_BxT.shape != tokens_BxT.shape:
        raise ValueError(f"loss_mask_BxT shape {loss_mask_BxT.shape} != tokens shape {tokens_BxT.shape}")
    out = tfm.forward(model_spec, params, tokens_BxT, positions_BxT=positions_BxT, kv_mask_BxT=kv_mask_BxT)
    logits_BxTm1xV = out.logits_BxTxV[:, :-1]
    targets_BxTm1 = tokens_BxT[:, 1:]
    weight_BxTm1 = loss_mask_BxT[:, 1:].astype(jnp.float32)
    target_logit = jnp.take_along_axis(logits_BxTm1xV, targets_BxTm1[..., None], axis=-1)[..., 0]
    nll_BxTm1 = jax.nn.logsumexp(logits_BxTm1xV, axis=-1) - target_logit
    count = jnp.sum(weight_BxTm1)
    denom = jnp.maximum(count, 1.0)
    loss = jnp.sum(nll_BxTm1 * weight_BxTm1) / denom
    hit_BxTm1 = (jnp.argmax(logits_BxTm1xV, axis=-1) == targets_BxTm1).astype(jnp.float32)
    acc = jnp.sum(hit_BxTm1 * weight_BxTm1) / denom
    return loss, {"loss": loss, "token_acc": acc, "num_targets": count}


def ntp_step(model_spec: tfm.TransformerSpec, tx: optax.GradientTransformation, params, opt_state, tokens_BxT,
             loss_mask_BxT, **kw):
    """One AdamW step on the NTP loss; `kw` goes to `ntp_loss` (kv_mask_BxT, positions_BxT)."""
    grad_fn = jax.grad(lambda p: ntp_loss(model_spec, p, tokens_BxT, loss_mask_BxT, **kw), has_aux=True)
    grads, metrics = grad_fn(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    metrics = dict(metrics, grad_norm=optax.tree.norm(grads))
    return params, opt_state, metrics


def ntp_chunk(model_spec: tfm.TransformerSpec, tx: optax.GradientTransformation, batch_fn: Callable, params,
              opt_state, key, start_step, num_steps: int):
    """`num_steps` NTP steps in one lax.scan; step t trains on batch_fn(fold_in(key, t), t).

    The data of step t depends only on (key, t), not on chunking or resume; the traced step lets
    the data change over training (a curriculum). Metrics are stacked
    over steps ([num_steps] each).
    """
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a static int >= 1, got {num_steps!r}")

    def body(carry, t):
        params, opt_state = carry
        tokens_BxT, loss_mask_BxT = batch_fn(jax.random.fold_in(key, t), t)
        params, opt_state, metrics = ntp_step(model_spec, tx, params, opt_state, tokens_BxT, loss_mask_BxT)
        return (params, opt_state), metrics

    steps = jnp.asarray(start_step, jnp.int32) + jnp.arange(num_steps, dtype=jnp.int32)
    (params, opt_state), metrics = jax.lax.scan(body, (params, opt_state), steps)
    return params, opt_state, metrics
