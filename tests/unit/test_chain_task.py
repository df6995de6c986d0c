import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.core.config import ConfigError
from theoryrl.tasks.chain import (ChainSpec, derive, edge_token, inverse_cdf, sample, simple_mass, uniform_over,
                                  validate_dist_probs)


def _instances(m, n, probs, num=4000, seed=0):
    spec = ChainSpec(m, n)
    batch = sample(jax.random.key(seed), spec, jnp.asarray(probs, jnp.float32), num)
    return spec, batch, jax.tree.map(np.asarray, derive(spec, batch))


def test_edge_token_is_a_bijection_onto_edge_ids():
    n = 7
    u, w = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    off = u != w
    ids = np.asarray(edge_token(jnp.asarray(u[off]), jnp.asarray(w[off]), n))
    assert sorted(ids.tolist()) == list(range(n, n * n))


@pytest.mark.parametrize("m, n", [(4, 8), (4, 24), (5, 10)])
def test_instances_are_two_chains_with_correct_targets(m, n):
    spec, batch, inst = _instances(m, n, uniform_over(range(1, m), m), num=500)
    perm = np.asarray(batch.perm)
    assert all(sorted(p) == list(range(n)) for p in perm)
    for b in range(perm.shape[0]):
        # walking succ from the source for `distance` steps ends at the target, which is a sink
        v = inst.source[b]
        for _ in range(inst.distance[b]):
            v = inst.succ[b, v]
        assert v == inst.target[b] and inst.is_sink[b, v] and inst.succ[b, v] == -1
        # sinks: the two chain ends and every isolated vertex; each edge token decodes to a link
        assert inst.is_sink[b].sum() == 2 + (n - 2 * m)
        tails = [t for t in range(n) if inst.succ[b, t] >= 0]
        expect = sorted(int(edge_token(jnp.int32(t), jnp.int32(inst.succ[b, t]), n)) for t in tails)
        assert sorted(inst.edge_tokens[b].tolist()) == expect
        assert len(tails) == 2 * (m - 1)


def test_distance_frequencies_follow_the_mass_vector():
    m, num = 5, 20000
    probs = np.array([0.5, 0.0, 0.2, 0.3])
    _, _, inst = _instances(m, 2 * m, probs, num=num, seed=3)
    counts = np.bincount(inst.distance, minlength=m)[1:]
    assert counts[1] == 0
    sigma = np.sqrt(num * probs * (1 - probs))
    assert np.all(np.abs(counts - num * probs) <= 5 * sigma + 1e-9)


def test_inverse_cdf_matches_hand_computed_bins():
    probs = jnp.array([0.25, 0.0, 0.75])
    u = jnp.array([0.0, 0.2499, 0.25, 0.9999])
    assert inverse_cdf(probs, u).tolist() == [0, 0, 2, 2]


def test_simple_mass_puts_c_on_simple_distances():
    probs = simple_mass(6, 0.2, 2)
    assert np.allclose(probs, [0.1, 0.1, 0.8 / 3, 0.8 / 3, 0.8 / 3])


@pytest.mark.parametrize("kwargs, knob", [
    (dict(m=1, n=4), "'m'"),
    (dict(m=4, n=7), "'n'"),
])
def test_bad_shapes_are_rejected(kwargs, knob):
    with pytest.raises(ConfigError, match=knob):
        ChainSpec(**kwargs)


@pytest.mark.parametrize("probs, why", [([0.5, 0.7, -0.2], "non-negative"), ([0.3, 0.3, 0.3], "summing to 1"),
                                        ([0.5, 0.5], "length")])
def test_bad_mass_vectors_are_rejected(probs, why):
    with pytest.raises(ConfigError, match=why):
        validate_dist_probs(probs, 4)


def test_random_permutations_are_uniform_over_small_n():
    from itertools import permutations

    from theoryrl.tasks.chain import random_permutations

    num = 24000
    perms = np.asarray(random_permutations(jax.random.key(7), num, 4))
    assert all(sorted(p) == [0, 1, 2, 3] for p in perms[:200])
    index = {p: i for i, p in enumerate(permutations(range(4)))}
    counts = np.bincount([index[tuple(p)] for p in perms], minlength=24)
    # each of the 24 permutations has probability 1/24: counts within 5 binomial sigmas
    sigma = np.sqrt(num / 24 * (1 - 1 / 24))
    assert np.all(np.abs(counts - num / 24) <= 5 * sigma)
