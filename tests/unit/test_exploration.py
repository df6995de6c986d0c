"""Outcome-based exploration bonuses against hand-computed values and exact enumeration."""
import itertools

import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.rl import exploration as ex


def test_ucb_bonus_is_min_one_inverse_sqrt_count_with_cap_at_zero():
    got = ex.ucb_bonus(jnp.array([[0.0, 1.0, 4.0, 9.0, 100.0]]))
    np.testing.assert_allclose(got, [[1.0, 1.0, 0.5, 1.0 / 3.0, 0.1]], rtol=1e-6)


def test_counts_are_updated_with_the_batch_before_lookup():
    table = jnp.array([[0.0, 3.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]])
    answers = jnp.array([[2, 2, 4, 1], [0, 0, 0, 0]])
    new = ex.update_counts(table, answers)
    np.testing.assert_array_equal(new, [[0, 4, 2, 0, 1], [5, 0, 0, 0, 0]])
    counts = ex.lookup_counts(new, answers)
    np.testing.assert_array_equal(counts, [[2, 2, 1, 4], [5, 5, 5, 5]])
    np.testing.assert_allclose(ex.ucb_bonus(counts)[0], [2 ** -0.5, 2 ** -0.5, 1.0, 0.5], rtol=1e-6)


def test_ucb_mean_subtracts_the_leave_one_out_mean():
    got = ex.ucb_mean(jnp.array([[1.0, 0.5, 0.25]]))
    # 1 - (0.5 + 0.25)/2, 0.5 - (1 + 0.25)/2, 0.25 - (1 + 0.5)/2
    np.testing.assert_allclose(got, [[0.625, -0.125, -0.5]], rtol=1e-6)


def test_ucb_con_signs_match_the_spec():
    n = jnp.array([[1.0, 2.0, 3.0, 4.0, 5.0, 16.0]])
    half = ex.ucb_con(ex.ucb_bonus(n), 0.5)
    # 1/sqrt(N) > 0.5 iff N < 4; zero at N = 4
    np.testing.assert_allclose(half, [[0.5, 2 ** -0.5 - 0.5, 3 ** -0.5 - 0.5, 0.0, 5 ** -0.5 - 0.5, -0.25]], rtol=1e-6)
    one = ex.ucb_con(ex.ucb_bonus(n), 1.0)
    assert float(one[0, 0]) == 0.0 and bool(jnp.all(one <= 0.0))


def test_batch_penalty_counts_other_samples_with_the_same_answer():
    got = ex.batch_penalty(jnp.array([[3, 3, 5, 3], [1, 2, 3, 4], [7, 7, 7, 7]]))
    np.testing.assert_allclose(got, [[-0.5, -0.5, 0.0, -0.5], [0, 0, 0, 0], [-0.75, -0.75, -0.75, -0.75]])


def test_batch_penalty_expectation_is_minus_collision_probability_by_enumeration():
    p = np.array([0.5, 0.3, 0.2])
    n = 3
    tuples = np.array(list(itertools.product(range(3), repeat=n)))
    weights = np.prod(p[tuples], axis=1)
    pen = np.asarray(ex.batch_penalty(jnp.asarray(tuples)))
    expected = -((n - 1) / n) * 0.38  # sum p^2 = 0.25 + 0.09 + 0.04
    np.testing.assert_allclose(weights @ pen, [expected] * n, rtol=1e-6)


def test_gating_zeroes_only_all_correct_groups():
    bonus = jnp.array([[0.3, -0.2], [0.5, 0.1], [0.4, 0.4]])
    correct = jnp.array([[True, True], [True, False], [False, False]])
    np.testing.assert_allclose(ex.gate(bonus, correct), [[0, 0], [0.5, 0.1], [0.4, 0.4]])


def test_exploration_bonus_combines_ucb_con_with_gating():
    table = jnp.zeros((2, 4))
    answers = jnp.array([[0, 0, 1, 2], [3, 3, 3, 3]])
    correct = jnp.array([[False, False, True, False], [True, True, True, True]])
    counts = ex.update_counts(table, answers)  # N = [2, 2, 1, 1] and [4, 4, 4, 4]
    got = ex.exploration_bonus({"ucb_con": 1.0, "b0": 0.5}, counts, answers, correct)
    np.testing.assert_allclose(got, [[2 ** -0.5 - 0.5, 2 ** -0.5 - 0.5, 0.5, 0.5], [0, 0, 0, 0]], rtol=1e-6)
    ungated = ex.exploration_bonus({"ucb_con": 1.0, "b0": 0.5, "gate": 0.0}, counts, answers, correct)
    np.testing.assert_allclose(ungated[1], [0.0, 0.0, 0.0, 0.0], atol=1e-7)  # N = 4: 1/2 - 1/2
    batch = ex.exploration_bonus({"batch": 1.0, "gate": 0.0}, counts, answers, correct)
    np.testing.assert_allclose(batch, [[-0.25, -0.25, 0, 0], [-0.75] * 4])


def test_bonus_is_added_after_group_normalisation():
    rewards = jnp.array([[1.0, 0.0, 0.0, 0.0]])
    bonus = jnp.array([[0.0, 1.0, 0.0, -1.0]])
    std = np.sqrt(0.25 * 0.75)
    norm = np.array([0.75, -0.25, -0.25, -0.25]) / (std + 1e-4)
    np.testing.assert_allclose(ex.shaped_advantages(rewards, bonus, 0.2), [norm + 0.2 * np.array([0, 1, 0, -1])],
                               rtol=1e-5)
    before = ex.shaped_advantages(rewards, bonus, 0.2, after_norm=False)
    shaped = np.array([1.0, 0.2, 0.0, -0.2])
    np.testing.assert_allclose(before, [(shaped - shaped.mean()) / (shaped.std() + 1e-4)], rtol=1e-5)


def test_group_functions_reject_flat_inputs():
    with pytest.raises(ValueError, match="prompts, G"):
        ex.batch_penalty(jnp.array([1, 2, 3]))
    with pytest.raises(ValueError, match="G >= 2"):
        ex.ucb_mean(jnp.ones((3, 1)))
