"""Single-layer attention of Ran-Milo et al.: a query-key matrix A and a value matrix V.

Context tokens are the n vertices and n(n-1) ordered edges (ids as in `tasks/chain.py`; the model
only needs the id count n^2, never the graph). Only the current vertex v queries:
  score_j  = A[v, token_j]                         for every context position j
  weight_j = score_j                              (linear: unnormalised causal counts)
           = softmax_j(score_j over valid j)      (softmax; optionally vertex keys masked)
  logits   = sum_j weight_j V[token_j, :] / tmp    over the n vertices.
Linear attention is exactly the official count form sum_c count(c) A[v, c] V[c, :], since a
token that occurs k times contributes k times. The fixed-V theory variant uses the incidence
values V[(u, w), x] = 1{x in {u, w}}, V[vertex, :] = 0, and trains only A.

Functions are written for one example (one context buffer) and batched by callers with vmap.

Two equivalent forms. `next_logits` / `teacher_forced_logits` are the reference: they gather one
A entry and one V row per context position. The rollout and the loss use the *count form*
(`edge_tables` + `count_logits`), which is exact for this model because scores do not depend on
position: an instance's context is its E prompt edges (fixed) plus vertex tokens (the source and
the generated vertices), and a vertex token u that occurs c_u times contributes c_u times, so
  linear:  logits = [ A[v, edges] @ V[edges] + (c * A[v, :n]) @ V[:n] ] / tmp
  softmax: logits = [ sum_e e^{A[v,e]-M} V[e] + sum_u c_u e^{A[v,u]-M} V[u] ] / (Z tmp),
with M the max over present keys and Z the matching sum. The edge rows (A[:, edges]^T, V[edges])
are gathered once per instance, vertex blocks A[:, :n], V[:n] are dense n x n matrices, and the
query enters as a one-hot, so the work is small dense contractions instead of per-position gathers.
(`rl/chain.py` writes the REINFORCE gradient of this form out by hand, batched over a chunk.)
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core.config import require

ATTENTIONS = ("softmax", "linear")
_NEG = -1e9  # the official code's mask value


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    n: int  # number of vertices
    attention: str = "softmax"
    tmp: float = 1.0 / 20.0  # logits are divided by tmp (1/20: scores x 20)
    fixed_v: bool = False
    mask_vertex_keys: bool = False  # softmax only: vertex keys get no attention (Markov theory variant)
    init_std: float = 1e-8

    def __post_init__(self):
        require(self.attention in ATTENTIONS, "attention", self.attention, " or ".join(ATTENTIONS))
        require(self.tmp > 0, "tmp", self.tmp, "> 0")
        require(self.init_std >= 0, "init_std", self.init_std, ">= 0")

    @property
    def num_ctx(self) -> int:
        return self.n * self.n


def incidence_values(n: int) -> np.ndarray:
    """Fixed V of the theory variant: each edge votes for both of its endpoints."""
    values = np.zeros((n * n, n), np.float32)
    for u in range(n):
        for w in range(n):
            if u != w:
                row = n + u * (n - 1) + w - (w > u)
                values[row, u] = values[row, w] = 1.0
    return values


def init_params(key: jax.Array, spec: ModelSpec) -> dict:
    """A (and V unless fixed) ~ N(0, init_std^2), as in the official code."""
    k_a, k_v = jax.random.split(key)
    params = {"A": spec.init_std * jax.random.normal(k_a, (spec.n, spec.num_ctx), jnp.float32)}
    if not spec.fixed_v:
        params["V"] = spec.init_std * jax.random.normal(k_v, (spec.num_ctx, spec.n), jnp.float32)
    return params


def values(params: dict, spec: ModelSpec) -> jax.Array:
    return jnp.asarray(incidence_values(spec.n)) if spec.fixed_v else params["V"]


def attention_weights(scores_L: jax.Array, valid_L: jax.Array, is_vertex_L: jax.Array, spec: ModelSpec):
    """Weights over context positions for one query (any leading axes broadcast)."""
    if spec.attention == "linear":
        return jnp.where(valid_L, scores_L, 0.0)
    keep = valid_L & ~is_vertex_L if spec.mask_vertex_keys else valid_L
    return jax.nn.softmax(jnp.where(keep, scores_L, _NEG), axis=-1)


def next_logits(params: dict, spec: ModelSpec, query: jax.Array, ctx_L: jax.Array, valid_L: jax.Array):
    """Logits over the n vertices for the current vertex `query` and context buffer `ctx_L`."""
    scores_L = params["A"][query, ctx_L]
    weights_L = attention_weights(scores_L, valid_L, ctx_L < spec.n, spec)
    return weights_L @ values(params, spec)[ctx_L] / spec.tmp


def edge_tables(params: dict, spec: ModelSpec, edge_tokens_E: jax.Array):
    """One example: keys_ExN[e, v] = A[v, edge_e] and vals_ExN = V[edge_e] (row gathers)."""
    keys_ExN = params["A"].T.at[edge_tokens_E].get(mode="promise_in_bounds")
    vals_ExN = values(params, spec).at[edge_tokens_E].get(mode="promise_in_bounds")
    return keys_ExN, vals_ExN


def small_contract(x: jax.Array, y: jax.Array, axis: int) -> jax.Array:
    """sum_k x.take(k, axis) * y.take(k, axis) over a small axis, as an unrolled sum of broadcast
    products: XLA:CPU fuses it into one loop, several times faster than its batched-dot kernels
    for the tiny per-instance contractions of this model (x, y broadcast against each other)."""
    size = max(x.shape[axis], y.shape[axis])
    take = lambda a, k: jax.lax.index_in_dim(a, k if a.shape[axis] > 1 else 0, axis, keepdims=False)
    return sum(take(x, k) * take(y, k) for k in range(size))


def count_logits(params: dict, spec: ModelSpec, keys_ExN, vals_ExN, query_QxN, counts_QxN):
    """One example, Q queries at once: logits over vertices in the count form (module docstring).

    query_QxN: one-hot of each query vertex; counts_QxN: how often each vertex token is in that
    query's context (the source included). Equals `next_logits` on the same context.
    """
    n = spec.n
    edge_scores_QxE = query_QxN @ keys_ExN.T
    vertex_scores_QxN = query_QxN @ params["A"][:, :n]
    vertex_vals_NxN = values(params, spec)[:n]
    if spec.attention == "linear":
        return (edge_scores_QxE @ vals_ExN + (counts_QxN * vertex_scores_QxN) @ vertex_vals_NxN) / spec.tmp
    present_QxN = (counts_QxN > 0) & (not spec.mask_vertex_keys)
    top_Q = jnp.maximum(jnp.max(edge_scores_QxE, axis=-1),
                        jnp.max(jnp.where(present_QxN, vertex_scores_QxN, -jnp.inf), axis=-1))
    top_Q = jax.lax.stop_gradient(top_Q)
    edge_w_QxE = jnp.exp(edge_scores_QxE - top_Q[:, None])
    vertex_w_QxN = jnp.where(present_QxN, counts_QxN * jnp.exp(
        jnp.where(present_QxN, vertex_scores_QxN - top_Q[:, None], 0.0)), 0.0)
    total_Q = jnp.sum(edge_w_QxE, axis=-1) + jnp.sum(vertex_w_QxN, axis=-1)
    mixed_QxN = edge_w_QxE @ vals_ExN + vertex_w_QxN @ vertex_vals_NxN
    return mixed_QxN / (total_Q[:, None] * spec.tmp)


def teacher_forced_logits(params: dict, spec: ModelSpec, ctx_L: jax.Array, num_prompt: int, horizon: int):
    """Logits of every decode step at once, for a full buffer [prompt (ending with the source),
    generated vertices]: step t queries with ctx[num_prompt-1+t] and sees positions < num_prompt+t."""
    queries_H = ctx_L[num_prompt - 1: num_prompt - 1 + horizon]
    valid_HxL = jnp.arange(ctx_L.shape[0])[None, :] < (num_prompt + jnp.arange(horizon))[:, None]
    scores_HxL = params["A"][queries_H[:, None], ctx_L[None, :]]
    weights_HxL = attention_weights(scores_HxL, valid_HxL, (ctx_L < spec.n)[None, :], spec)
    return weights_HxL @ values(params, spec)[ctx_L] / spec.tmp
