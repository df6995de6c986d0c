"""Rollouts and the REINFORCE objective for the chain-traversal policy.

A rollout emits vertex tokens until the first sink or `horizon` tokens. Its reward is 1 when the
first sink is the source's terminal. Sampling is a `lax.scan` over decode steps that carries the
current vertex and the counts of vertex tokens in the context; logits use the model's count form
(`count_logits`: the prompt's edge rows are gathered once per instance, everything else is small
dense contractions). The REINFORCE gradient re-scores the sampled tokens in one teacher-forced pass.
Functions marked "one example" are batched with vmap.

Performance (XLA:CPU). Large batches are processed in chunks of about `BatchLayout.chunk` instances
(a `lax.map` / `lax.scan` over chunks), so that every intermediate stays small and cache-resident:
on CPU, buffers over ~32 MB are fresh mmaps whose page faults cost more than the arithmetic.
Chunk j holds the instances b with b mod k == j (k chunks), so a batch axis sharded in contiguous
blocks stays sharded inside each chunk. `reinforce_loss` has a custom VJP that accumulates the
parameter gradient chunk by chunk in its forward pass (exact: the loss is a sum over instances), so
no batch-sized residuals are kept for the backward pass. The layout is a frozen `BatchLayout`
argument (default: the measured best), never module state; it changes speed, never the math.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.models.chain_attention import ModelSpec, count_logits, edge_tables, small_contract, values
from theoryrl.tasks.chain import ChainInstance


@dataclasses.dataclass(frozen=True)
class BatchLayout:
    """How a batch is laid out for the compiler (static, hashable; the math is the same in every layout)."""

    chunk: int = 2000  # target instances per chunk (see module docstring); best of 1000-10000 at m = 8
    decode_unroll: int | bool = 1  # lax.scan unroll of the decode loop


# No chunk loop and a fully unrolled decode loop: XLA's cost analysis counts a while-loop body once,
# so in this layout `compiled.cost_analysis()` reports the flops and bytes of the whole step.
COST_ANALYSIS = BatchLayout(chunk=2**62, decode_unroll=True)


def _sample_index(logits_N: jax.Array, u: jax.Array, upper_NxN: jax.Array) -> jax.Array:
    """Inverse-CDF draw from softmax(logits) with one uniform (same rule as tasks.chain.inverse_cdf:
    the number of cdf entries <= u * total mass); the cumulative sum is a matmul with a triangle."""
    cdf_N = jnp.exp(logits_N - jnp.max(logits_N)) @ upper_NxN
    idx = jnp.sum((u * cdf_N[-1]) >= cdf_N)
    return jnp.minimum(idx, logits_N.shape[-1] - 1).astype(jnp.int32)


def rollout_one(params, mspec: ModelSpec, inst_one: ChainInstance, horizon: int, uniforms_H: jax.Array | None,
                unroll: int | bool = 1):
    """One example: decode up to `horizon` vertices; greedy when `uniforms_H` is None."""
    n = mspec.n
    keys_ExN, vals_ExN = edge_tables(params, mspec, inst_one.edge_tokens)
    upper_NxN = jnp.triu(jnp.ones((n, n), jnp.float32))
    is_sink_N = inst_one.is_sink.astype(jnp.float32)
    noise_H = jnp.zeros((horizon,)) if uniforms_H is None else uniforms_H

    def step(carry, u):
        current_N, counts_N, done, first_sink, on_path = carry  # current vertex as a one-hot
        logits_N = count_logits(params, mspec, keys_ExN, vals_ExN, current_N[None], counts_N[None])[0]
        if uniforms_H is None:
            action = jnp.argmax(logits_N).astype(jnp.int32)
        else:
            action = _sample_index(logits_N, u, upper_NxN)
        action_N = jax.nn.one_hot(action, n, dtype=jnp.float32)
        emitted = ~done
        hit_sink = jnp.sum(action_N * is_sink_N) > 0
        first_sink = jnp.where(emitted & hit_sink, action, first_sink)
        succ = jnp.sum(current_N * inst_one.succ).astype(jnp.int32)  # succ[current] without a gather
        on_path = on_path & (~emitted | (action == succ))
        return (action_N, counts_N + action_N, done | hit_sink, first_sink, on_path), (action, emitted)

    source_N = jax.nn.one_hot(inst_one.source, n, dtype=jnp.float32)
    init = (source_N, source_N, jnp.array(False), jnp.array(-1, jnp.int32), jnp.array(True))
    (_, _, reached, first_sink, on_path), (actions_H, emitted_H) = jax.lax.scan(step, init, noise_H, unroll=unroll)
    return {
        "actions": actions_H,
        "emitted": emitted_H,
        "reached": reached,
        "correct": reached & (first_sink == inst_one.target),
        "traversal": reached & on_path,
        "length": jnp.sum(emitted_H.astype(jnp.int32)),
    }


def _chunking(batch: int, chunk: int) -> tuple[int, int]:
    """(number of chunks k, padded batch size): k divides the padded size, chunks <= ~`chunk`."""
    k0 = math.ceil(batch / chunk)
    if k0 <= 1:
        return 1, batch
    for k in range(k0, 2 * k0 + 1):
        if batch % k == 0:
            return k, batch
    return k0, k0 * math.ceil(batch / k0)


def _split(tree, k: int, padded: int):
    """Batch-leading arrays -> [k, padded/k, ...]; chunk j holds examples j, j+k, j+2k, ..."""
    def one(x):
        if padded > x.shape[0]:
            x = jnp.concatenate([x, jnp.broadcast_to(x[-1:], (padded - x.shape[0],) + x.shape[1:])])
        return jnp.moveaxis(x.reshape((padded // k, k) + x.shape[1:]), 1, 0)
    return jax.tree.map(one, tree)


def _merge(tree, batch: int):
    def one(x):
        x = jnp.moveaxis(x, 0, 1)
        return x.reshape((-1,) + x.shape[2:])[:batch]
    return jax.tree.map(one, tree)


def _chunked_map(fn, xs, batch: int, chunk: int):
    """fn maps a batch-leading pytree to one; applied chunk by chunk when the batch is large."""
    k, padded = _chunking(batch, chunk)
    if k == 1:
        return fn(xs)
    return _merge(jax.lax.map(fn, _split(xs, k, padded)), batch)


def rollout(params, mspec: ModelSpec, inst: ChainInstance, horizon: int, key: jax.Array | None = None,
            layout: BatchLayout = BatchLayout()):
    """Batched rollouts; sampled at temperature 1 with `key`, greedy without."""
    batch, unroll = inst.source.shape[0], layout.decode_unroll
    if key is None:
        greedy = jax.vmap(lambda i: rollout_one(params, mspec, i, horizon, None, unroll))
        return _chunked_map(greedy, inst, batch, layout.chunk)
    uniforms_BxH = jax.random.uniform(key, (batch, horizon))
    one = jax.vmap(lambda i, u: rollout_one(params, mspec, i, horizon, u, unroll))
    return _chunked_map(lambda xs: one(*xs), (inst, uniforms_BxH), batch, layout.chunk)


def sequence_logp_one(params, mspec: ModelSpec, inst_one: ChainInstance, actions_H, emitted_H):
    """One example: sum of log pi over the emitted tokens (the terminating sink included)."""
    n, horizon = mspec.n, actions_H.shape[0]
    keys_ExN, vals_ExN = edge_tables(params, mspec, inst_one.edge_tokens)
    actions_HxN = jax.nn.one_hot(actions_H, n, dtype=jnp.float32)
    source_N = jax.nn.one_hot(inst_one.source, n, dtype=jnp.float32)
    query_HxN = jnp.concatenate([source_N[None], actions_HxN[:-1]])  # step t queries its last token
    before_HxH = jnp.tril(jnp.ones((horizon, horizon), jnp.float32), -1)  # tokens generated before t
    counts_HxN = source_N[None] + before_HxH @ actions_HxN
    logits_HxN = count_logits(params, mspec, keys_ExN, vals_ExN, query_HxN, counts_HxN)
    logp_H = jnp.sum(jax.nn.log_softmax(logits_HxN) * actions_HxN, axis=-1)
    return jnp.sum(jnp.where(emitted_H, logp_H, 0.0))


def _batch_logp(params, mspec: ModelSpec, xs):
    inst, actions_BxH, emitted_BxH = xs
    return jax.vmap(lambda i, a, e: sequence_logp_one(params, mspec, i, a, e))(inst, actions_BxH, emitted_BxH)


def _materialize(x: jax.Array) -> jax.Array:
    """x computed once into a buffer: an exact identity matmul, which XLA does not fuse into its
    consumers (else it re-evaluates x, exps included, for every element of a contraction over H)."""
    return (x.reshape(-1, x.shape[-1]) @ jnp.eye(x.shape[-1], dtype=x.dtype)).reshape(x.shape)


def _chunk_value_and_grad(params, mspec: ModelSpec, xs):
    """sum_b w_b log pi(rollout_b) over a chunk, its gradient, and log pi per example.

    Batched by hand (no vmap, no autodiff): the count form of `count_logits` on the teacher-forced
    queries, and its gradient written out, so that XLA:CPU runs a few fused loops over [C, H, E]
    arrays, dense n x n matmuls and two scatter-adds (A entries, V rows) per chunk. Equal to
    jax.grad of sum_b w_b sequence_logp_one(...) (checked in tests/unit/test_chain_model.py).
    """
    inst, actions_CxH, emitted_CxH, weights_C = xs
    n, tmp = mspec.n, mspec.tmp
    (num, horizon), edges_CxE = actions_CxH.shape, inst.edge_tokens
    a_mat, v_mat = params["A"], values(params, mspec)
    a_vv, v_vv = a_mat[:, :n], v_mat[:n]
    actions_CxHxN = jax.nn.one_hot(actions_CxH, n, dtype=jnp.float32)
    source_CxN = jax.nn.one_hot(inst.source, n, dtype=jnp.float32)
    queries_CxH = jnp.concatenate([inst.source[:, None], actions_CxH[:, :-1]], axis=1)
    query_CxHxN = jnp.concatenate([source_CxN[:, None], actions_CxHxN[:, :-1]], axis=1)
    counts, running = [], source_CxN
    for t in range(horizon):  # vertex tokens in the context of step t
        counts.append(running)
        running = running + actions_CxHxN[:, t]
    counts_CxHxN = jnp.stack(counts, axis=1)
    flat = lambda x: x.reshape((num * horizon, n))
    flat_idx = queries_CxH[:, :, None] * (n * n) + edges_CxE[:, None, :]  # A[q, e] in A.ravel()
    scores_CxHxE = a_mat.reshape(-1).at[flat_idx].get(mode="promise_in_bounds")
    vscores_CxHxN = (flat(query_CxHxN) @ a_vv).reshape(num, horizon, n)
    vals_CxExN = v_mat.at[edges_CxE].get(mode="promise_in_bounds")
    if mspec.attention == "linear":
        edge_w, vertex_w, norm_CxH = scores_CxHxE, counts_CxHxN * vscores_CxHxN, jnp.full((num, horizon), tmp)
    else:
        present = (counts_CxHxN > 0) & (not mspec.mask_vertex_keys)
        top = jnp.maximum(jnp.max(scores_CxHxE, axis=-1), jnp.max(jnp.where(present, vscores_CxHxN, -jnp.inf), axis=-1))
        edge_w = jnp.exp(scores_CxHxE - top[..., None])
        vertex_w = jnp.where(present, counts_CxHxN * jnp.exp(jnp.where(present, vscores_CxHxN - top[..., None], 0.0)), 0.0)
        norm_CxH = (jnp.sum(edge_w, axis=-1) + jnp.sum(vertex_w, axis=-1)) * tmp
    # mixed[c,h,:] = sum_e edge_w[c,h,e] vals[c,e,:] + vertex_w[c,h,:] @ V[:n]
    mixed_CxHxN = (small_contract(edge_w[..., None], vals_CxExN[:, None], axis=2)
                   + (flat(vertex_w) @ v_vv).reshape(num, horizon, n))
    logits = mixed_CxHxN / norm_CxH[..., None]
    shifted = logits - jnp.max(logits, axis=-1, keepdims=True)
    exp_shifted = jnp.exp(shifted)  # one exp per logit serves log pi and pi
    total = jnp.sum(exp_shifted, axis=-1, keepdims=True)
    logp_H = jnp.sum(shifted * actions_CxHxN, axis=-1) - jnp.log(total[..., 0])
    logp_C = jnp.sum(jnp.where(emitted_CxH, logp_H, 0.0), axis=1)
    # backward: d/dlogits of sum_c w_c logp_c
    g_logits = (weights_C[:, None, None] * emitted_CxH[..., None]) * (actions_CxHxN - exp_shifted / total)
    g_mixed = g_logits / norm_CxH[..., None]
    g_mixed = _materialize(g_mixed)
    g_edge_w = jnp.sum(g_mixed[:, :, None, :] * vals_CxExN[:, None], axis=-1)  # [C, H, E]
    g_vertex_w = (flat(g_mixed) @ v_vv.T).reshape(num, horizon, n)
    if mspec.attention == "linear":
        g_scores, g_vscores = g_edge_w, g_vertex_w * counts_CxHxN
    else:  # through the normaliser Z = sum of weights (the max shift has zero gradient)
        g_norm = -jnp.sum(g_logits * logits, axis=-1, keepdims=True) / (norm_CxH[..., None] / tmp)
        g_scores, g_vscores = (g_edge_w + g_norm) * edge_w, (g_vertex_w + g_norm) * vertex_w
    grad_a = jnp.zeros((n * n * n,), a_mat.dtype).at[flat_idx].add(g_scores, mode="promise_in_bounds")
    grad_a = grad_a.reshape(a_mat.shape).at[:, :n].add(flat(query_CxHxN).T @ flat(g_vscores))
    grads = {"A": grad_a}
    if not mspec.fixed_v:
        g_vals_CxExN = small_contract(edge_w[..., None], g_mixed[:, :, None, :], axis=1)
        grad_v = jnp.zeros_like(v_mat).at[edges_CxE].add(g_vals_CxExN, mode="promise_in_bounds")
        grads["V"] = grad_v.at[:n].add(flat(vertex_w).T @ flat(g_mixed))
    return jnp.sum(weights_C * logp_C), grads, logp_C


def reinforce_loss(params, mspec: ModelSpec, inst: ChainInstance, actions_BxH, emitted_BxH, advantages_B,
                   layout: BatchLayout = BatchLayout()):
    """-(1/B) sum_b advantage_b * log pi(rollout_b): its gradient is the REINFORCE estimator."""
    return _reinforce_loss(mspec, layout, params, inst, actions_BxH, emitted_BxH, advantages_B)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _reinforce_loss(mspec, layout, params, inst, actions_BxH, emitted_BxH, advantages_B):
    logp_B = _chunked_map(lambda xs: _batch_logp(params, mspec, xs), (inst, actions_BxH, emitted_BxH),
                          advantages_B.shape[0], layout.chunk)
    return -jnp.mean(advantages_B * logp_B)


def _reinforce_loss_fwd(mspec, layout, params, inst, actions_BxH, emitted_BxH, advantages_B):
    batch = advantages_B.shape[0]
    k, padded = _chunking(batch, layout.chunk)
    grad_fn = functools.partial(_chunk_value_and_grad, params, mspec)
    if k == 1:
        total, grads, logp_B = grad_fn((inst, actions_BxH, emitted_BxH, advantages_B))
    else:
        weights_P = jnp.where(np.arange(padded) < batch, jnp.pad(advantages_B, (0, padded - batch)), 0.0)
        xs = _split((inst, actions_BxH, emitted_BxH), k, padded) + (_split(weights_P, k, padded),)

        def body(acc, chunk):
            part, g, logp_C = grad_fn(chunk)
            return (acc[0] + part, jax.tree.map(jnp.add, acc[1], g)), logp_C

        zeros = (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, params))
        (total, grads), logp_kxC = jax.lax.scan(body, zeros, xs)
        logp_B = _merge(logp_kxC, batch)
    return -total / batch, (grads, logp_B)


def _reinforce_loss_bwd(mspec, layout, residuals, g):
    grads, logp_B = residuals
    scale = -g / logp_B.shape[0]
    return jax.tree.map(lambda x: scale * x, grads), None, None, None, scale * logp_B


_reinforce_loss.defvjp(_reinforce_loss_fwd, _reinforce_loss_bwd)


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
