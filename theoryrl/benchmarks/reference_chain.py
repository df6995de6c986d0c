"""The in-bench reference of `bench chain`: one REINFORCE step written the straightforward way.

    state, metrics = train_step(spec, state, hp, batch, policy_key)   # same signature as chain_trainer's

It computes the step of `rl.chain_trainer.train_step` (Ran-Milo et al.'s emergence setting): the
same instances (`tasks.chain.derive`), the same uniforms `uniform(policy_key, [B, H])` and
inverse-CDF rule (`tasks.chain.inverse_cdf`), the same reward (first sink = the source's terminal),
mean-reward baseline, loss -(1/B) sum_b adv_b log pi(rollout_b), Adam step and early-stop mask.
It is written as plain JAX, vmapped over instances, in one jitted program:
- decode: a `lax.scan` over the H steps; each instance keeps a token buffer [E prompt edges, source,
  generated vertices], and only the current vertex queries it: scores A[v, ctx], weights over the
  valid prefix (linear: the scores; softmax: softmax), logits = weights @ V[ctx] / tmp (one A entry
  and one V row gathered per context position, as `models.chain_attention.next_logits`);
- loss: the teacher-forced log-probs of the sampled tokens (all H queries at once, causal mask)
  under `jax.value_and_grad`.
No count form, custom VJP, chunking or hand-written backward pass: it is the baseline that the fast
step's ratio is measured against (`bench chain`), and tests/unit/test_bench_chain.py checks that it
gives the fast step's rollouts, loss and gradient (float64), so the ratio is not against a straw man.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from theoryrl.models.chain_attention import ModelSpec, values
from theoryrl.rl.advantages import baselined_advantages
from theoryrl.rl.chain_trainer import ChainHp, TrainSpec, TrainState
from theoryrl.tasks.chain import ChainBatch, ChainInstance, derive, inverse_cdf


def _logits(params, mspec: ModelSpec, query_Q, ctx_L, valid_QxL):
    """Logits over the n vertices for Q queries of one instance, each over its valid context prefix."""
    scores_QxL = params["A"][query_Q[:, None], ctx_L[None, :]]
    if mspec.attention == "linear":
        weights_QxL = jnp.where(valid_QxL, scores_QxL, 0.0)
    else:
        keep_QxL = valid_QxL & ~(mspec.mask_vertex_keys & (ctx_L < mspec.n))[None, :]
        weights_QxL = jax.nn.softmax(jnp.where(keep_QxL, scores_QxL, -jnp.inf), axis=-1)
    return weights_QxL @ values(params, mspec)[ctx_L] / mspec.tmp


def _context(inst_one: ChainInstance, actions_H):
    """The token buffer [edges, source, actions[:-1]]: step t queries position E + t and sees < E + 1 + t."""
    return jnp.concatenate([inst_one.edge_tokens, inst_one.source[None], actions_H[:-1]]).astype(jnp.int32)


def rollout_one(params, mspec: ModelSpec, inst_one: ChainInstance, uniforms_H):
    """One instance: H sampled vertices (decoding goes on after a sink; those steps are not emitted)."""
    num_edges, horizon = inst_one.edge_tokens.shape[0], uniforms_H.shape[0]
    ctx0_L = _context(inst_one, jnp.zeros((horizon,), jnp.int32))
    positions_L = jnp.arange(ctx0_L.shape[0])

    def step(carry, t_u):
        ctx_L, current = carry
        t, u = t_u
        logits_N = _logits(params, mspec, current[None], ctx_L, (positions_L < num_edges + 1 + t)[None])[0]
        action = inverse_cdf(jnp.exp(logits_N - jnp.max(logits_N)), u)
        ctx_L = ctx_L.at[num_edges + 1 + t].set(action, mode="drop")  # the last action is never context
        return (ctx_L, action), action

    _, actions_H = jax.lax.scan(step, (ctx0_L, inst_one.source), (jnp.arange(horizon), uniforms_H))
    hit_H = inst_one.is_sink[actions_H]
    emitted_H = (jnp.cumsum(hit_H) - hit_H) == 0  # no sink before step t
    reached = jnp.any(hit_H)
    first_sink = actions_H[jnp.argmax(hit_H)]
    return {"actions": actions_H, "emitted": emitted_H, "reached": reached,
            "correct": reached & (first_sink == inst_one.target),
            "length": jnp.sum(emitted_H.astype(jnp.int32))}


def rollout(params, mspec: ModelSpec, inst: ChainInstance, horizon: int, key):
    """Batched sampled rollouts at temperature 1: the uniforms of `rl.chain.rollout` with the same key."""
    uniforms_BxH = jax.random.uniform(key, (inst.source.shape[0], horizon))
    return jax.vmap(lambda i, u: rollout_one(params, mspec, i, u))(inst, uniforms_BxH)


def sequence_logp_one(params, mspec: ModelSpec, inst_one: ChainInstance, actions_H, emitted_H):
    """One instance: sum of the teacher-forced log pi over its emitted tokens."""
    num_edges, horizon = inst_one.edge_tokens.shape[0], actions_H.shape[0]
    ctx_L = _context(inst_one, actions_H)
    valid_HxL = jnp.arange(ctx_L.shape[0])[None, :] < (num_edges + 1 + jnp.arange(horizon))[:, None]
    logits_HxN = _logits(params, mspec, ctx_L[num_edges:], ctx_L, valid_HxL)
    logp_H = jnp.take_along_axis(jax.nn.log_softmax(logits_HxN), actions_H[:, None], axis=-1)[:, 0]
    return jnp.sum(jnp.where(emitted_H, logp_H, 0.0))


def reinforce_loss(params, mspec: ModelSpec, inst: ChainInstance, actions_BxH, emitted_BxH, advantages_B):
    """-(1/B) sum_b advantage_b * log pi(rollout_b), differentiated by jax.value_and_grad."""
    logp_B = jax.vmap(lambda i, a, e: sequence_logp_one(params, mspec, i, a, e))(inst, actions_BxH, emitted_BxH)
    return -jnp.mean(advantages_B * logp_B)


def train_step(spec: TrainSpec, state: TrainState, hp: ChainHp, batch: ChainBatch, policy_key):
    """One REINFORCE + Adam step on `batch` (masked when the run has early-stopped)."""
    inst = derive(spec.task, batch)
    out = rollout(state.params, spec.model, inst, spec.horizon, policy_key)
    advantages_B = baselined_advantages(out["correct"].astype(jnp.float32), spec.baseline_groups)
    loss, grads = jax.value_and_grad(reinforce_loss)(state.params, spec.model, inst, out["actions"],
                                                     out["emitted"], advantages_B)
    updates, opt = optax.adam(hp.lr).update(grads, state.opt, state.params)
    params = optax.apply_updates(state.params, updates)
    keep = state.stopped
    state = dataclasses.replace(
        state, params=jax.tree.map(lambda old, new: jnp.where(keep, old, new), state.params, params),
        opt=jax.tree.map(lambda old, new: jnp.where(keep, old, new), state.opt, opt))
    return state, {"loss": loss, "train_acc": jnp.mean(out["correct"].astype(jnp.float32)),
                   "train_len": jnp.mean(out["length"].astype(jnp.float32))}
