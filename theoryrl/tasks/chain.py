"""Two-chain traversal (Ran-Milo et al.): graphs, sources, targets, and the verifier.

Encoding (index encoding, equivalent to the official token layout). A graph instance is a random
labelling `perm` of n vertices laid out as: chain 1 at layout positions 0..m-1, chain 2 at
m..2m-1, and (when n > 2m) isolated vertices at 2m..n-1. Layout position i links to i+1 inside
a chain. The prompt is the set of edge tokens (perm[i], perm[i+1]) followed by the source vertex.
Context-token ids follow the official vocabulary minus its 5 specials, which never occur in a
prompt (no BOS/EOS; pads are masked): vertex v -> v, ordered edge (u, w), u != w ->
n + u*(n-1) + w - [w > u]. So there are n + n(n-1) = n^2 context tokens and the attention
matrices have the official shapes (A: n x n^2, V: n^2 x n). Edge order is irrelevant to the model
(no positions), so we list edges in layout order, as the official code does.

The source is in chain 1 at layout position m-1-d, where d in 1..m-1 is its distance to the
chain's terminal; the distance distribution `dist_probs` (a vmappable array) is the task's
"simple-example mass" knob. The answer is the terminal perm[m-1].
"""
from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core.config import require


@dataclasses.dataclass(frozen=True)
class ChainSpec:
    """Static shape of the task: chain length m in a graph of n >= 2m vertices."""

    m: int
    n: int

    def __post_init__(self):
        require(isinstance(self.m, int) and self.m >= 2, "m", self.m, "an integer >= 2")
        require(isinstance(self.n, int) and 2 * self.m <= self.n <= 256, "n", self.n,
                f"an integer with 2m = {2 * self.m} <= n <= 256")

    @property
    def num_edges(self) -> int:
        return 2 * (self.m - 1)

    @property
    def num_ctx(self) -> int:
        return self.n * self.n

    @property
    def link_positions(self) -> np.ndarray:
        """Layout positions i with an edge i -> i+1 (static)."""
        return np.array([i for i in range(2 * self.m - 1) if i != self.m - 1], dtype=np.int32)

    @property
    def sink_positions(self) -> np.ndarray:
        """Layout positions of sinks: both chain ends and every isolated vertex (static)."""
        return np.array([self.m - 1, 2 * self.m - 1] + list(range(2 * self.m, self.n)), dtype=np.int32)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ChainBatch:
    """B instances: vertex labels in layout order, and the source's layout position."""

    perm: jax.Array  # int32[B, n]
    source_pos: jax.Array  # int32[B]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ChainInstance:
    """What the model sees and what the verifier needs, derived from a ChainBatch."""

    edge_tokens: jax.Array  # int32[B, E] context ids of the prompt's edges
    source: jax.Array  # int32[B]
    target: jax.Array  # int32[B] terminal of the source's chain
    succ: jax.Array  # int32[B, n] successor vertex, -1 at sinks
    is_sink: jax.Array  # bool[B, n]
    distance: jax.Array  # int32[B]


def edge_token(u, w, n: int):
    """Context id of the ordered edge (u, w), u != w."""
    return n + u * (n - 1) + w - (w > u).astype(jnp.int32)


def validate_dist_probs(probs, m: int, knob: str = "dist_probs") -> np.ndarray:
    """Check a distance distribution over 1..m-1 on the host, before any compute."""
    probs = np.asarray(probs, dtype=np.float64)
    require(probs.ndim == 1 and probs.shape[0] == m - 1, knob, probs.tolist(), f"a vector of length m-1 = {m - 1}")
    require(bool(np.all(probs >= 0)), knob, probs.tolist(), "non-negative entries")
    require(abs(probs.sum() - 1.0) < 1e-6, knob, probs.tolist(), "entries summing to 1")
    return probs


def uniform_over(distances, m: int, knob: str = "train_distances") -> np.ndarray:
    """Distance distribution uniform over a set of distances in 1..m-1."""
    distances = sorted(set(int(d) for d in distances))
    require(len(distances) > 0 and all(1 <= d <= m - 1 for d in distances),
            knob, distances, f"a non-empty subset of 1..{m - 1}")
    probs = np.zeros(m - 1)
    probs[np.array(distances) - 1] = 1.0 / len(distances)
    return probs


def simple_mass(m: int, c: float, k: int) -> np.ndarray:
    """Mass c uniform over distances 1..k, mass 1-c uniform over k+1..m-1 ((k, c)-simple)."""
    require(0.0 <= c <= 1.0, "c", c, "0 <= c <= 1")
    require(1 <= k < m - 1, "simple_k", k, f"1 <= k < m-1 = {m - 1}")
    probs = np.zeros(m - 1)
    probs[:k] = c / k
    probs[k:] = (1.0 - c) / (m - 1 - k)
    return probs


def inverse_cdf(probs: jax.Array, u: jax.Array) -> jax.Array:
    """Index drawn from `probs` with one uniform `u` per draw (cheaper than Gumbel on CPU)."""
    cdf = jnp.cumsum(probs, axis=-1)
    scaled = (u * cdf[..., -1])[..., None]  # u * total mass: robust to float rounding of the sum
    idx = jnp.sum(scaled >= jnp.broadcast_to(cdf, scaled.shape[:-1] + cdf.shape[-1:]), axis=-1)
    return jnp.minimum(idx, probs.shape[-1] - 1).astype(jnp.int32)


def random_permutations(key: jax.Array, num: int, n: int) -> jax.Array:
    """`num` uniform permutations of 0..n-1 (n <= 256) with one sort of packed uint32 keys:
    24 random high bits, the index in the low 8 bits. One integer sort is about 4x cheaper on CPU
    than an argsort of floats; equal high bits (probability 2^-24 per pair) fall back to index
    order, a negligible bias."""
    bits = jax.random.bits(key, (num, n), jnp.uint32)
    packed = (bits & jnp.uint32(0xFFFFFF00)) | jnp.arange(n, dtype=jnp.uint32)[None, :]
    return (jnp.sort(packed, axis=-1) & jnp.uint32(0xFF)).astype(jnp.int32)


@partial(jax.jit, static_argnames=("spec", "num"))
def sample(key: jax.Array, spec: ChainSpec, dist_probs: jax.Array, num: int) -> ChainBatch:
    """`num` fresh instances: a uniform random labelling each, distance ~ dist_probs."""
    k_perm, k_dist = jax.random.split(key)
    perm = random_permutations(k_perm, num, spec.n)
    distance = 1 + inverse_cdf(dist_probs, jax.random.uniform(k_dist, (num,)))
    return ChainBatch(perm=perm, source_pos=(spec.m - 1 - distance).astype(jnp.int32))


def derive(spec: ChainSpec, batch: ChainBatch) -> ChainInstance:
    """Edge tokens, source, target, successor map and sinks of each instance."""
    links = jnp.asarray(spec.link_positions)
    tails, heads = batch.perm[:, links], batch.perm[:, links + 1]
    rows = jnp.arange(batch.perm.shape[0])[:, None]
    succ = jnp.full(batch.perm.shape, -1, jnp.int32).at[rows, tails].set(heads)
    sink_pos = jnp.asarray(spec.sink_positions)
    is_sink = jnp.zeros(batch.perm.shape, bool).at[rows, batch.perm[:, sink_pos]].set(True)
    source = jnp.take_along_axis(batch.perm, batch.source_pos[:, None], axis=1)[:, 0]
    return ChainInstance(
        edge_tokens=edge_token(tails, heads, spec.n).astype(jnp.int32),
        source=source,
        target=batch.perm[:, spec.m - 1],
        succ=succ,
        is_sink=is_sink,
        distance=(spec.m - 1 - batch.source_pos).astype(jnp.int32),
    )


def take(batch: ChainBatch, idx: jax.Array) -> ChainBatch:
    return jax.tree.map(lambda x: x[idx], batch)
