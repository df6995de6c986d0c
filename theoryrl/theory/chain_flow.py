"""Exact population objective of the fixed-V chain model (Ran-Milo et al.; spec §2.2-2.3, §6.1).

With V fixed to the incidence values (an edge votes for both endpoints, vertex tokens vote for
nothing), the next-vertex distribution depends only on the current vertex v: for linear attention
the vertex keys carry zero value, and for softmax they are masked (`mask_vertex_keys`). So a
rollout on one labelled instance is a Markov chain over vertices with every sink absorbing, and
  logits[v, w] = sum_e weight_e(v) * 1[w endpoint of e] / tmp,   e over the prompt's edges,
  weight_e(v)  = A[v, e]                     (linear)
               = softmax_e(A[v, e])           (softmax, vertex keys masked).
The success probability from every vertex at once is the solution of the absorption system
(I - Q) x = b (H = infinity) or the value recursion x_t = Q x_{t-1} + b over a finite horizon H,
where Q is P restricted to non-sink -> non-sink moves and b_i = P[i, target] (b = 1 at the target).
The same recursions with x as right-hand side give E[length * 1{success}], so the mean length of
correct rollouts comes out exactly too.

Symmetric A. The constants (alpha, beta, gamma, eta, delta) fill A by the relation of the key to
the query vertex v (spec §2.2 table): out-edge (v, .), in-edge (., v), edge not touching v, the
vertex v itself, another vertex. Such an A is invariant under relabelling, so every labelled
instance gives the same numbers and the population objective is the canonical instance's
(perm = identity). The full-matrix gradient flow dA/dt = grad_A J started at a symmetric A stays
symmetric and moves each constant by the class mean of grad_A J, i.e. d c_k / dt = (dJ/dc_k) / N_k
with N_k the class size (`flow_field(..., metric="A")`); metric="coords" is plain gradient flow in
the constants (what a 3-parameter computation does). eta and delta never matter here (vertex keys
carry no vote, or are masked), so their gradient is exactly zero.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core.config import require
from theoryrl.models.chain_attention import ModelSpec
from theoryrl.tasks.chain import ChainSpec, edge_token

CLASSES = ("alpha", "beta", "gamma", "eta", "delta")  # out-edge, in-edge, other edge, same vertex, other vertex
METRICS = ("A", "coords")


@dataclasses.dataclass(frozen=True)
class FlowSpec:
    """Static shape of one exact objective: chain length m in n >= 2m vertices, attention, tmp, H.

    horizon = 0 means H = infinity (absorption probabilities)."""

    m: int
    n: int = 0  # 0: n = 2m (two chains, no isolated vertices)
    attention: str = "linear"
    tmp: float = 1.0
    horizon: int = 0

    def __post_init__(self):
        require(isinstance(self.m, int) and self.m >= 2, "m", self.m, "an integer >= 2")
        require(self.n == 0 or self.n >= 2 * self.m, "n", self.n, f"0 (= 2m) or >= 2m = {2 * self.m}")
        require(self.attention in ("linear", "softmax"), "attention", self.attention, "linear or softmax")
        require(self.tmp > 0, "tmp", self.tmp, "> 0")
        require(isinstance(self.horizon, int) and self.horizon >= 0, "horizon", self.horizon, "0 (infinity) or >= 1")

    @property
    def num_vertices(self) -> int:
        return self.n or 2 * self.m

    @property
    def task(self) -> ChainSpec:
        return ChainSpec(self.m, self.num_vertices)

    @property
    def model(self) -> ModelSpec:
        """The foundation model this objective is exact for (fixed V; softmax with vertex keys masked)."""
        return ModelSpec(n=self.num_vertices, attention=self.attention, tmp=self.tmp, fixed_v=True,
                         mask_vertex_keys=self.attention == "softmax", init_std=0.0)


# ---------------------------------------------------------------- symmetric classes of A entries

@lru_cache(maxsize=None)
def class_index(n: int) -> np.ndarray:
    """int32[n, n^2]: class (index into CLASSES) of A[v, c] for query vertex v and context id c."""
    v = np.arange(n)[:, None]
    c = np.arange(n * n)[None, :]
    k = np.maximum(c - n, 0)
    tail = k // (n - 1)
    rem = k % (n - 1)
    head = rem + (rem >= tail)
    edge_cls = np.where(tail == v, 0, np.where(head == v, 1, 2))
    vertex_cls = np.where(c == v, 3, 4)
    return np.where(c < n, vertex_cls, edge_cls).astype(np.int32)


def class_sizes(n: int) -> np.ndarray:
    """Number of A entries in each class: n(n-1), n(n-1), n(n-1)(n-2), n, n(n-1)."""
    return np.bincount(class_index(n).reshape(-1), minlength=len(CLASSES)).astype(np.float64)


def symmetric_A(consts_5: jax.Array, n: int) -> jax.Array:
    """The symmetric A (n x n^2) of the constants (alpha, beta, gamma, eta, delta)."""
    require(consts_5.shape == (5,), "consts", consts_5.shape, "shape (5,)")
    return consts_5[jnp.asarray(class_index(n))]


def class_stats(a_NxC: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Projection on the five classes (class means) and the within-class spread (std)."""
    n = a_NxC.shape[0]
    require(a_NxC.shape == (n, n * n), "A", a_NxC.shape, "shape (n, n^2)")
    onehot_KxNxC = jnp.asarray(class_index(n)[None] == np.arange(5)[:, None, None], a_NxC.dtype)
    sizes_K = jnp.asarray(class_sizes(n), a_NxC.dtype)
    means_K = jnp.sum(onehot_KxNxC * a_NxC[None], axis=(1, 2)) / sizes_K
    var_K = jnp.sum(onehot_KxNxC * (a_NxC[None] - means_K[:, None, None]) ** 2, axis=(1, 2)) / sizes_K
    return means_K, jnp.sqrt(var_K)


# ---------------------------------------------------------------- one labelled instance

def instance_edges(task: ChainSpec, perm_N: jax.Array):
    """Tails, heads and context ids of the prompt's edges for the labelling `perm_N`."""
    links = np.asarray(task.link_positions)
    tails_E, heads_E = perm_N[links], perm_N[links + 1]
    return tails_E, heads_E, edge_token(tails_E, heads_E, task.n)


def transition_from_scores(scores_NxE: jax.Array, tails_E, heads_E, fs: FlowSpec) -> jax.Array:
    """P[v, w]: next-vertex probabilities for every current vertex v (rows sum to 1)."""
    n = fs.num_vertices
    if fs.attention == "linear":
        weights_NxE = scores_NxE
    else:
        weights_NxE = jax.nn.softmax(scores_NxE, axis=-1)
    votes_ExN = jax.nn.one_hot(tails_E, n, dtype=scores_NxE.dtype) + jax.nn.one_hot(heads_E, n, dtype=scores_NxE.dtype)
    return jax.nn.softmax(weights_NxE @ votes_ExN / fs.tmp, axis=-1)


def transition(a_NxC: jax.Array, fs: FlowSpec, perm_N: jax.Array) -> jax.Array:
    """Transition matrix of the full-A model on the instance labelled by `perm_N`."""
    tails_E, heads_E, edges_E = instance_edges(fs.task, perm_N)
    return transition_from_scores(a_NxC[:, edges_E], tails_E, heads_E, fs)


def sym_transition(consts_5: jax.Array, fs: FlowSpec) -> jax.Array:
    """Transition matrix of the symmetric model on the canonical instance (vertex i at layout i)."""
    perm = jnp.arange(fs.num_vertices)
    tails_E, heads_E, edges_E = instance_edges(fs.task, perm)
    cls_NxE = jnp.asarray(class_index(fs.num_vertices))[:, edges_E]
    return transition_from_scores(consts_5[cls_NxE], tails_E, heads_E, fs)


def absorb(p_NxN: jax.Array, is_sink_N: jax.Array, target_N: jax.Array, horizon: int) -> dict:
    """From every start vertex: P(first sink = target), P(some sink reached), E[len * 1{success}].

    `is_sink_N`, `target_N`: 0/1 vectors. horizon = 0: H = infinity (linear solves)."""
    live_N = 1.0 - is_sink_N
    q_NxN = p_NxN * live_N[:, None] * live_N[None, :]
    hit_Nx2 = jnp.stack([target_N, is_sink_N], axis=-1)
    b_Nx2 = live_N[:, None] * (p_NxN @ hit_Nx2) + is_sink_N[:, None] * hit_Nx2
    if horizon == 0:
        lhs = jnp.eye(p_NxN.shape[0], dtype=p_NxN.dtype) - q_NxN
        x_Nx2 = jnp.linalg.solve(lhs, b_Nx2)
        lensum_N = jnp.linalg.solve(lhs, x_Nx2[:, 0] * live_N)
    else:
        def step(carry, _):
            x, h = carry
            x = q_NxN @ x + b_Nx2
            return (x, q_NxN @ h + x[:, 0] * live_N), None

        zeros = jnp.zeros_like(b_Nx2)
        (x_Nx2, lensum_N), _ = jax.lax.scan(step, (zeros, zeros[:, 0]), None, length=horizon)
    return {"success": x_Nx2[:, 0], "reach": x_Nx2[:, 1], "lensum": lensum_N}


def _sinks(fs: FlowSpec, perm_N: jax.Array, dtype):
    n = fs.num_vertices
    is_sink = jnp.zeros((n,), dtype).at[perm_N[np.asarray(fs.task.sink_positions)]].set(1.0)
    target = jax.nn.one_hot(perm_N[fs.m - 1], n, dtype=dtype)
    return is_sink, target


def by_distance(values_N: jax.Array, fs: FlowSpec, perm_N: jax.Array) -> jax.Array:
    """values at the source of distance d = 1..m-1 (layout position m-1-d of chain 1)."""
    return values_N[perm_N[fs.m - 1 - np.arange(1, fs.m)]]


def instance_solution(a_NxC: jax.Array, fs: FlowSpec, perm_N: jax.Array) -> dict:
    """Exact per-distance success / reach / mean correct length on one labelled instance."""
    p = transition(a_NxC, fs, perm_N)
    return _solution(p, fs, perm_N)


def sym_solution(consts_5: jax.Array, fs: FlowSpec) -> dict:
    """The same for the symmetric model (any labelling gives these numbers), plus P itself."""
    p = sym_transition(consts_5, fs)
    return {**_solution(p, fs, jnp.arange(fs.num_vertices)), "P": p}


def _solution(p_NxN, fs: FlowSpec, perm_N) -> dict:
    is_sink, target = _sinks(fs, perm_N, p_NxN.dtype)
    out = absorb(p_NxN, is_sink, target, fs.horizon)
    success_D = by_distance(out["success"], fs, perm_N)
    return {"success": success_D, "reach": by_distance(out["reach"], fs, perm_N),
            "length": by_distance(out["lensum"], fs, perm_N) / jnp.maximum(success_D, 1e-30)}


def instance_success(a_NxC: jax.Array, fs: FlowSpec, perm_N: jax.Array, source_pos) -> jax.Array:
    """Expected reward of one (labelling, source position) instance."""
    p = transition(a_NxC, fs, perm_N)
    is_sink, target = _sinks(fs, perm_N, p.dtype)
    return absorb(p, is_sink, target, fs.horizon)["success"][perm_N[source_pos]]


def objective(a_NxC: jax.Array, fs: FlowSpec, perms_BxN: jax.Array, dist_probs_D: jax.Array) -> jax.Array:
    """Expected reward under the distance distribution, exact over rollouts and distances, averaged
    over the given labellings (all labellings give the same value when A is symmetric)."""
    success_BxD = jax.vmap(lambda perm: instance_solution(a_NxC, fs, perm)["success"])(perms_BxN)
    return jnp.mean(success_BxD @ dist_probs_D)


def sym_objective(consts_5: jax.Array, fs: FlowSpec, dist_probs_D: jax.Array) -> jax.Array:
    """Population expected reward of the symmetric model (exact)."""
    return sym_solution(consts_5, fs)["success"] @ dist_probs_D


def flow_field(consts_5: jax.Array, fs: FlowSpec, dist_probs_D: jax.Array, metric: str = "A") -> jax.Array:
    """d consts / dt of gradient ascent on the population reward.

    metric "A": the full-matrix flow dA/dt = grad_A J restricted to symmetric A (grad / class size);
    metric "coords": plain gradient flow in the five constants."""
    require(metric in METRICS, "metric", metric, " or ".join(METRICS))
    grad = jax.grad(sym_objective)(consts_5, fs, dist_probs_D)
    if metric == "A":
        grad = grad / jnp.asarray(class_sizes(fs.num_vertices), grad.dtype)
    return grad


# ---------------------------------------------------------------- readouts along chain 1

def step_probs(p_NxN: jax.Array, fs: FlowSpec) -> dict:
    """Canonical-instance step probabilities at chain-1 positions i = 0..m-2 (distance m-1-i):
    forward (to the successor), backward (to the predecessor), self (repeat v) and jump (anything
    else: the other chain, non-adjacent vertices of this chain)."""
    i = np.arange(fs.m - 1)
    fwd = p_NxN[i, i + 1]
    bwd = jnp.where(i > 0, p_NxN[i, np.maximum(i - 1, 0)], 0.0)
    self_ = p_NxN[i, i]
    return {"p_fwd": fwd, "p_bwd": bwd, "p_self": self_, "p_jump": 1.0 - fwd - bwd - self_}


def base_rates(consts_5: jax.Array, fs: FlowSpec) -> dict:
    """The theory's base-model quantities at these constants: c0 = min_i p_fwd and
    b0 = min_i (p_fwd - p_bwd) over chain-1 positions."""
    sp = step_probs(sym_transition(consts_5, fs), fs)
    return {"c0": jnp.min(sp["p_fwd"]), "b0": jnp.min(sp["p_fwd"] - sp["p_bwd"])}


@partial(jax.jit, static_argnames=("fs",))
def _base_c0(consts_5, fs: FlowSpec):
    return base_rates(consts_5, fs)["c0"]


def alpha_for_c0(fs: FlowSpec, c0: float, beta: float = 0.0, gamma: float = 0.0) -> float:
    """alpha such that min_i p_fwd = c0 at (alpha, beta, gamma, 0, 0), by bisection on the host
    (p_fwd grows with alpha). Keeps the base-model rate c0 fixed across m, as the theory assumes."""
    rate = lambda a: _base_c0(jnp.stack([a, beta, gamma, 0.0, 0.0]).astype(jnp.float32), fs)
    lo, hi = -30.0, 60.0
    require(float(rate(jnp.float32(lo))) < c0 < float(rate(jnp.float32(hi))), "init_c0", c0,
            f"a forward rate reachable by alpha alone (below {float(rate(jnp.float32(hi))):.3f})")
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if float(rate(jnp.float32(mid))) < c0 else (lo, mid)
    return 0.5 * (lo + hi)
