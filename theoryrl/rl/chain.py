"""Rollouts and the REINFORCE objective for the chain-traversal policy.

A rollout emits vertex tokens until the first sink or `horizon` tokens. Its reward is 1 when the
first sink is the source's terminal. Sampling is a `lax.scan` over decode steps in which only the
current vertex queries a fixed-size context buffer (O(context) work per step, no recomputation of
the prompt); the REINFORCE gradient re-scores the sampled tokens in one teacher-forced pass.
Functions marked "one example" are batched with vmap.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from theoryrl.models.chain_attention import ModelSpec, next_logits, teacher_forced_logits
from theoryrl.tasks.chain import ChainInstance, inverse_cdf


def _prompt(inst_one: ChainInstance) -> jax.Array:
    return jnp.concatenate([inst_one.edge_tokens, inst_one.source[None]])


def rollout_one(params, mspec: ModelSpec, inst_one: ChainInstance, horizon: int, uniforms_H: jax.Array | None):
    """One example: decode up to `horizon` vertices; greedy when `uniforms_H` is None."""
    prompt = _prompt(inst_one)
    num_prompt = prompt.shape[0]
    ctx_L = jnp.concatenate([prompt, jnp.zeros((horizon,), jnp.int32)])
    positions_L = jnp.arange(ctx_L.shape[0])
    noise_H = jnp.zeros((horizon,)) if uniforms_H is None else uniforms_H

    def step(carry, inputs):
        ctx_L, current, done, first_sink, on_path = carry
        t, u = inputs
        logits = next_logits(params, mspec, current, ctx_L, positions_L < num_prompt + t)
        if uniforms_H is None:
            action = jnp.argmax(logits).astype(jnp.int32)
        else:
            action = inverse_cdf(jax.nn.softmax(logits), u)
        emitted = ~done
        hit_sink = inst_one.is_sink[action]
        first_sink = jnp.where(emitted & hit_sink, action, first_sink)
        on_path = on_path & (~emitted | (action == inst_one.succ[current]))
        carry = (ctx_L.at[num_prompt + t].set(action), action, done | hit_sink, first_sink, on_path)
        return carry, (action, emitted)

    init = (ctx_L, inst_one.source, jnp.array(False), jnp.array(-1, jnp.int32), jnp.array(True))
    (_, _, reached, first_sink, on_path), (actions_H, emitted_H) = jax.lax.scan(
        step, init, (jnp.arange(horizon), noise_H))
    return {
        "actions": actions_H,
        "emitted": emitted_H,
        "reached": reached,
        "correct": reached & (first_sink == inst_one.target),
        "traversal": reached & on_path,
        "length": jnp.sum(emitted_H.astype(jnp.int32)),
    }


def rollout(params, mspec: ModelSpec, inst: ChainInstance, horizon: int, key: jax.Array | None = None):
    """Batched rollouts; sampled at temperature 1 with `key`, greedy without."""
    if key is None:
        return jax.vmap(lambda i: rollout_one(params, mspec, i, horizon, None))(inst)
    uniforms_BxH = jax.random.uniform(key, (inst.source.shape[0], horizon))
    return jax.vmap(lambda i, u: rollout_one(params, mspec, i, horizon, u))(inst, uniforms_BxH)


def sequence_logp_one(params, mspec: ModelSpec, inst_one: ChainInstance, actions_H, emitted_H):
    """One example: sum of log pi over the emitted tokens (the terminating sink included)."""
    prompt = _prompt(inst_one)
    horizon = actions_H.shape[0]
    logits_HxN = teacher_forced_logits(params, mspec, jnp.concatenate([prompt, actions_H]), prompt.shape[0], horizon)
    logp_H = jnp.take_along_axis(jax.nn.log_softmax(logits_HxN), actions_H[:, None], axis=1)[:, 0]
    return jnp.sum(jnp.where(emitted_H, logp_H, 0.0))


def reinforce_loss(params, mspec: ModelSpec, inst: ChainInstance, actions_BxH, emitted_BxH, advantages_B):
    """-(1/B) sum_b advantage_b * log pi(rollout_b): its gradient is the REINFORCE estimator."""
    logp_B = jax.vmap(lambda i, a, e: sequence_logp_one(params, mspec, i, a, e))(inst, actions_BxH, emitted_BxH)
    return -jnp.mean(advantages_B * logp_B)


def accuracy_metrics(out: dict) -> dict:
    """Both denominators of the paper's code: over rollouts that reached a sink, and over all."""
    reached = out["reached"].astype(jnp.float32)
    num_reached = jnp.maximum(jnp.sum(reached), 1.0)
    correct, traversal = out["correct"].astype(jnp.float32), out["traversal"].astype(jnp.float32)
    return {
        "acc": jnp.sum(correct) / num_reached,
        "acc_all": jnp.mean(correct),
        "traversal": jnp.sum(traversal) / num_reached,
        "traversal_all": jnp.mean(traversal),
        "reached": jnp.mean(reached),
        "len_correct": jnp.sum(out["length"] * correct) / jnp.maximum(jnp.sum(correct), 1.0),
    }
