"""pass@k, bootstrap CIs, coverage sets, histograms, diversity and token metrics against exact values."""
import itertools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import theoryrl.eval as ev


def _exact_pass_at_k(n, c, k):
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


def test_pass_at_k_equals_the_exact_binomial_formula_vectorised():
    rng = np.random.default_rng(0)
    n = rng.integers(1, 1025, size=300)
    c = rng.integers(0, n + 1)
    k = rng.integers(1, n + 1)
    k[:40] = 1 + (k[:40] % 8)  # many small k too: the regime where n - c >= k and the product is long
    got = ev.pass_at_k(n, c, k)  # one call, n differs per problem
    want = np.array([float(_exact_pass_at_k(int(a), int(b), int(m))) for a, b, m in zip(n, c, k)])
    assert got.dtype == np.float64 and got.shape == (300,)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_pass_at_k_equals_brute_force_over_all_k_subsets():
    n = 6
    for c in range(n + 1):
        samples = [1] * c + [0] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(samples, k))
            want = sum(any(s) for s in subsets) / len(subsets)
            assert ev.pass_at_k(n, c, k) == pytest.approx(want, abs=1e-14)


def test_pass_at_k_edge_cases():
    n = np.array([10, 10, 10, 1024, 7])
    assert ev.pass_at_k(n, 0, 3).tolist() == [0.0] * 5  # c = 0
    assert ev.pass_at_k(n, n, 3).tolist() == [1.0] * 5  # c = n
    assert ev.pass_at_k(10, 8, 3) == 1.0  # n - c = 2 < k
    np.testing.assert_allclose(ev.pass_at_k(n, [1, 3, 9, 100, 2], 1), [0.1, 0.3, 0.9, 100 / 1024, 2 / 7], rtol=1e-14)
    # whole-number floats are accepted as counts
    assert ev.pass_at_k(np.array([4.0]), np.array([2.0]), 2)[0] == pytest.approx(5 / 6)


@pytest.mark.parametrize("n, c, k, why", [
    (5, 2, 6, "k must be <= n"), (5, 6, 1, "c must be <= n"), (5, -1, 1, "non-negative"),
    (5, 2, 0, "k must be >= 1"), (5, 2.5, 1, "whole numbers"), ([4, 8], [1, 2], [4, 9], "k = 9 > n = 8"),
])
def test_pass_at_k_rejects_bad_counts(n, c, k, why):
    with pytest.raises(ValueError, match=why):
        ev.pass_at_k(n, c, k)


def test_pass_at_k_curve_is_the_mean_over_problems():
    # pass@1 = [1/4, 1/2]; pass@2 = [1 - C(3,2)/C(4,2), 1 - C(2,2)/C(4,2)] = [1/2, 5/6]
    np.testing.assert_allclose(ev.pass_at_k_curve([4, 4], [1, 2], [1, 2]), [0.375, (0.5 + 5 / 6) / 2])


def test_bootstrap_ci_covers_the_truth_and_shrinks_like_one_over_sqrt_problems():
    rng = np.random.default_rng(1)
    widths = []
    for problems in (200, 800):
        values = rng.binomial(1, 0.3, size=problems).astype(float)
        mean, lo, hi = ev.bootstrap_ci(values, num_resamples=2000, seed=3)
        assert mean == pytest.approx(values.mean())
        assert lo < mean < hi and lo < 0.3 < hi
        # the percentile interval of a mean approaches the normal one: 2 * 1.96 * sd / sqrt(P)
        normal = 2 * 1.96 * values.std() / np.sqrt(problems)
        assert (hi - lo) == pytest.approx(normal, rel=0.15)
        widths.append(hi - lo)
    assert 0.35 < widths[1] / widths[0] < 0.65  # 4x the problems: about half the width


def test_bootstrap_ci_matrix_resamples_columns_with_the_same_problems():
    rng = np.random.default_rng(2)
    values = rng.random((50, 3))
    values[:, 2] = 0.7  # a constant column has no spread
    mean, lo, hi = ev.bootstrap_ci(values, num_resamples=300, seed=5)
    for j in range(3):
        assert (mean[j], lo[j], hi[j]) == pytest.approx(ev.bootstrap_ci(values[:, j], num_resamples=300, seed=5))
    assert lo[2] == pytest.approx(0.7) and hi[2] == pytest.approx(0.7)
    # paired resampling: column 1 = 2 * column 0 gives exactly doubled bounds
    values[:, 1] = 2 * values[:, 0]
    _, lo, hi = ev.bootstrap_ci(values, num_resamples=300, seed=5)
    assert lo[1] == pytest.approx(2 * lo[0]) and hi[1] == pytest.approx(2 * hi[0])


def test_pass_at_k_with_ci_matches_the_curve():
    n, c = np.full(40, 16), np.arange(40) % 17
    out = ev.pass_at_k_with_ci(n, c, [1, 4, 16], num_resamples=200)
    assert out["k"].tolist() == [1, 4, 16]
    np.testing.assert_allclose(out["mean"], ev.pass_at_k_curve(n, c, [1, 4, 16]))
    assert np.all(out["lo"] <= out["mean"]) and np.all(out["mean"] <= out["hi"])


def test_accuracy_histogram_bins_on_hand_made_counts():
    n = [10, 10, 10, 10, 10, 10, 10, 20, 20, 3, 10]
    c = [0, 1, 2, 5, 9, 10, 10, 19, 2, 1, 3]
    # acc: 0, .1, .2, .5, .9, 1, 1, .95, .1, .333, .3
    counts, labels = ev.accuracy_histogram(n, c)
    want = dict.fromkeys(labels, 0)
    want.update({"0": 1, "(0,0.1]": 2, "(0.1,0.2]": 1, "(0.2,0.3]": 1, "(0.3,0.4]": 1, "(0.4,0.5]": 1,
                 "(0.8,0.9]": 1, "(0.9,1)": 1, "1": 2})
    assert len(labels) == 12 and labels[0] == "0" and labels[10] == "(0.9,1)" and labels[11] == "1"
    assert counts.tolist() == [want[lab] for lab in labels]


def test_solvable_sets_and_containment():
    assert ev.solvable_set([0, 3, 1, 0]).tolist() == [False, True, True, False]
    got = ev.coverage_containment([0, 3, 1, 0, 2], [0, 1, 0, 0, 4])
    assert got == dict(solved_a=3, solved_b=2, both=2, only_a=1, only_b=0, b_subset_of_a=True)
    got = ev.coverage_containment([0, 3, 1, 0, 2], [1, 1, 0, 0, 4])
    assert got["only_b"] == 1 and got["b_subset_of_a"] is False


def test_delta_se_is_base_coverage_minus_rl_pass_at_1():
    # base pass@2 with n = 4: c = 1 -> 1/2, c = 0 -> 0; RL pass@1: c = 1 -> 1/4, c = 0 -> 0
    assert ev.delta_se([4, 4], [1, 0], [4, 4], [1, 0], k_base=2) == pytest.approx(0.25 - 0.125)


def test_expected_distinct_in_k_equals_brute_force_over_k_subsets():
    rng = np.random.default_rng(4)
    for _ in range(5):
        n = 7
        answers = rng.integers(-2, 3, size=n)
        valid = rng.random(n) < 0.8
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            want = np.mean([len({answers[i] for i in s if valid[i]}) for s in subsets])
            assert ev.expected_distinct_in_k(answers, valid, k) == pytest.approx(want, abs=1e-12)
    batch = ev.expected_distinct_in_k(np.array([[1, 1, 2], [5, 6, 7]]), np.ones((2, 3), bool), 3)
    assert batch.tolist() == [2.0, 3.0]
    assert ev.expected_distinct_in_k([1, 2], [False, False], 2) == 0.0
    with pytest.raises(ValueError, match="k must be <= n"):
        ev.expected_distinct_in_k([1, 2], [True, True], 3)


def test_distinct_answers_counts_valid_distinct_values():
    answers = jnp.array([[3, 3, 5, -1], [7, 7, 7, 7], [-4, 9, -4, 0]], jnp.int32)
    valid = jnp.array([[1, 1, 1, 0], [1, 0, 1, 1], [0, 0, 0, 0]], bool)
    assert jax.jit(ev.distinct_answers)(answers, valid).tolist() == [2, 1, 0]
    rng = np.random.default_rng(5)
    a, v = rng.integers(-3, 4, size=(20, 9)), rng.random((20, 9)) < 0.7
    want = [len(set(row[m].tolist())) for row, m in zip(a, v)]
    assert ev.distinct_answers(jnp.asarray(a, jnp.int32), jnp.asarray(v)).tolist() == want
    with pytest.raises(ValueError, match="rank 2"):
        ev.distinct_answers(answers[0], valid[0])


def test_sequence_perplexity_by_hand():
    logp = jnp.log(jnp.array([[0.5, 0.25, 0.1], [0.2, 1e-3, 1e-3], [0.3, 0.3, 0.3]]))
    logp = logp.at[1, 2].set(-jnp.inf)  # a masked impossible token must not leak in
    mask = jnp.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    ppl = jax.jit(ev.sequence_perplexity)(logp, mask)
    np.testing.assert_allclose(ppl, [np.sqrt(8.0), 5.0, 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        ev.sequence_perplexity(logp, mask[:, :2])


def test_entropy_from_logits_and_masked_mean_by_hand():
    logits = jnp.array([[0.0, jnp.log(3.0), -jnp.inf], [1.0, 1.0, 1.0]])
    h = ev.entropy_from_logits(logits)
    h_quarter = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))
    np.testing.assert_allclose(h, [h_quarter, np.log(3.0)], rtol=1e-6)
    # temperature 0.5 squares the odds: p = [1/10, 9/10]
    np.testing.assert_allclose(ev.entropy_from_logits(logits[0], temperature=0.5),
                               -(0.1 * np.log(0.1) + 0.9 * np.log(0.9)), rtol=1e-6)
    ent = jnp.array([[1.0, 2.0, 9.0], [4.0, 9.0, 9.0]])
    mask = jnp.array([[1, 1, 0], [1, 0, 0]], bool)
    assert float(jax.jit(ev.mean_token_entropy)(ent, mask)) == pytest.approx(7.0 / 3.0)
    assert float(ev.mean_token_entropy(ent, jnp.zeros_like(mask))) == 0.0
