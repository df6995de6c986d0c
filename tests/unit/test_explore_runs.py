"""rl/explore_runs: the exploration experiments' metrics against enumeration and hand-computed values.

Every metric here is checked against something computed another way: distinct answers in k of n
samples by enumerating all C(n, k) subsets, pass@k by math.comb, coverage across checkpoints and
entropies by hand, the same-reasoning answer pairs on a batch built by hand. Bad arm names and knobs
are one-line ConfigErrors before any compute.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from theoryrl.core.config import ConfigError
from theoryrl.core.stages import Run
from theoryrl.rl import explore_runs as er
from theoryrl.tasks.dag import tokens as tk

A = tk.ANSWER


def test_answer_only_pairs_by_hand():
    """Samples 0, 1, 3 share the reasoning (5, 6); 2 differs; 4 states no answer (left out).
    Same-reasoning pairs: (0,1), (0,3), (1,3) = 3; of them (0,1) and (1,3) differ in the answer = 2.
    Tokens after the answer marker (the answer itself, EOS, padding) are not reasoning."""
    resp = np.array([[5, 6, A, 11, 1], [5, 6, A, 12, 1], [5, 7, A, 11, 1], [5, 6, A, 11, 1], [5, 6, A, 0, 0]])
    answers = np.array([3, 4, 3, 3, -1])
    assert er.answer_only_pairs(resp, answers) == (2, 3)
    table = {"answer": np.stack([answers, answers]), "answer_only_pairs": np.array([2, 0]),
             "same_reasoning_pairs": np.array([3, 1])}
    assert er.answer_only_rate(table) == pytest.approx(2 / 4)
    np.testing.assert_allclose(er.answer_only_rows(table), [2 / 10, 0.0])  # C(5, 2) = 10 pairs per problem


def test_expected_distinct_in_k_is_the_mean_over_every_k_subset():
    """n = 6 samples with answers 1, 1, 2, 3, 3 and one without an answer; every C(6, 3) = 20
    subset's distinct valid answers, averaged, equals diff_rows at k = 3."""
    answers = np.array([1, 1, 2, 3, 3, -1])
    brute = np.mean([len({answers[i] for i in sub if answers[i] >= 0}) for sub in itertools.combinations(range(6), 3)])
    assert er.diff_rows({"answer": answers[None]}, 3)[0] == pytest.approx(brute)


def test_pass_rows_and_their_mean_over_k_match_math_comb():
    """A problem with c = 2 correct of n = 5: pass@k = 1 - C(3, k) / C(5, k); the AUC row is the
    mean over k = 1..3."""
    perfect = np.array([[True, False, True, False, False]])
    want = [1 - math.comb(3, k) / math.comb(5, k) for k in (1, 2, 3)]
    for k, w in zip((1, 2, 3), want):
        assert er.pass_rows({"perfect": perfect}, k)[0] == pytest.approx(w)
    assert er.pass_auc_rows({"perfect": perfect}, 3)[0] == pytest.approx(np.mean(want))


def _run(solved, correct, distinct, table=None) -> Run:
    arrays = {"history/solved_Q": np.asarray(solved, float), "history/correct_Q": np.asarray(correct, float),
              "history/distinct_Q": np.asarray(distinct, float)}
    for k, v in (table or {}).items():
        arrays[f"final/test/{k}"] = np.asarray(v)
    return Run(stage="explore", row={"seed": 42, "arm": "grpo"}, arrays=arrays)


def test_cross_checkpoint_coverage_by_hand():
    """Two chunks of n = G x epochs_per_chunk = 2 x 1 = 2 samples per question. Question 0 is right
    1 of 2 in each chunk (p = 0.5, 0.5): coverage 1 - 0.25 = 0.75 after one, 1 - 0.25^2 = 0.9375
    after two. Question 1 never: 0. The mean over questions is reported."""
    knobs = er.ExploreKnobs(num_questions=2, prompts_per_step=2, group_size=2, epochs=2, epochs_per_chunk=1)
    run = _run([[1, 0], [1, 0]], [[1, 0], [2, 0]], [[1, 1], [2, 1]])
    np.testing.assert_allclose(er.epoch_success(run, knobs), [[0.5, 0.0], [0.5, 0.0]])
    np.testing.assert_allclose(er.cross_checkpoint_coverage(run, knobs), [0.75 / 2, 0.9375 / 2])
    np.testing.assert_array_equal(er.budget_per_chunk(knobs), [2, 4])


def test_entropies_split_by_correctness_by_hand():
    """Problem 0: entropies 1 (correct), 3 (wrong); problem 1: 2, 4 both wrong. Correct: 1; incorrect:
    (3 + 2 + 4) / 3 = 3; all: 2.5. Per problem over incorrect samples: 3 and 3."""
    table = {"entropy": np.array([[1.0, 3.0], [2.0, 4.0]]), "perfect": np.array([[True, False], [False, False]])}
    assert er.entropy_split(table) == pytest.approx({"correct": 1.0, "incorrect": 3.0, "all": 2.5})
    np.testing.assert_allclose(er.entropy_incorrect_rows(table), [3.0, 3.0])
    all_right = {"entropy": np.ones((1, 2)), "perfect": np.ones((1, 2), bool)}
    assert np.isnan(er.entropy_incorrect_rows(all_right)[0])


def test_paired_drops_rows_missing_on_either_side():
    """NaN rows (e.g. problems solved by one arm, for an "unsolved" metric) drop out pairwise: the
    gain is over the remaining rows only."""
    g = er.paired({1: np.array([1.0, np.nan, 3.0])}, {1: np.array([0.0, 5.0, np.nan])}, [1])
    assert g.num_problems == 1 and g.diff == pytest.approx(1.0)


def test_arm_names_map_to_the_paper_arms():
    knobs = er.ExploreKnobs(c=0.2, b0=0.5, c_batch=0.3)
    w, learn = er.arm_weights("ucb_con:b0=1,nomask", knobs)
    assert learn and w["ucb_con"] == 0.2 and w["b0"] == 1.0 and w["mask"] == 0.0 and w["gate"] == 1.0
    w, learn = er.arm_weights("ucb_mean+batch:before,nogate", knobs)
    assert (w["ucb_mean"], w["batch"], w["after_norm"], w["gate"], w["ucb_con"]) == (0.2, 0.3, 0.0, 0.0, 0.0)
    w, learn = er.arm_weights("base", knobs)
    assert not learn and all(w[k] == 0 for k in ("ucb", "ucb_mean", "ucb_con", "batch"))


@pytest.mark.parametrize("arms", [("grpo", "ucb_sqrt"), ("ucb_con:nomasking",), ("base:nogate",), ("grpo", "grpo"), ()])
def test_bad_arm_names_are_one_line_errors(arms):
    with pytest.raises(ConfigError) as err:
        er.check_arms(arms)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("change", [{"c": -0.1}, {"b0": float("nan")}, {"c_batch": -1.0}, {"num_questions": 60},
                                    {"k_max": 65}, {"diff_k": 0}, {"epochs": 3}, {"reward": "pv"}])
def test_bad_knobs_are_one_line_errors(change):
    import dataclasses

    with pytest.raises(ConfigError) as err:
        dataclasses.replace(er.ExploreKnobs(), **change).validate()
    assert "\n" not in str(err.value)


def test_arm_row_pools_entropies_over_samples_and_brackets_them():
    """arm_row's entropies are entropy_split's pooled means (1 on the correct sample; (3 + 2 + 4) / 3
    on the wrong ones), each inside its own bootstrap interval; the solved share of 2 of 4
    training questions is 0.5."""
    table = {"entropy": np.array([[1.0, 3.0], [2.0, 4.0]]), "perfect": np.array([[True, False], [False, False]]),
             "answer": np.array([[1, 2], [3, 3]]), "answer_only_pairs": np.zeros(2), "same_reasoning_pairs": np.ones(2)}
    knobs = er.ExploreKnobs(test_samples=2, k_max=2, diff_k=2)
    row = er.arm_row(_run([[1, 1, 0, 0]], [[1, 1, 0, 0]], [[1, 1, 2, 2]], table), knobs)
    assert row["test_entropy_correct"] == 1.0 and row["test_entropy_incorrect"] == pytest.approx(3.0)
    for name in ("correct", "incorrect", "all"):
        assert row[f"test_entropy_{name}_lo"] <= row[f"test_entropy_{name}"] <= row[f"test_entropy_{name}_hi"]
    assert row["train_solved_frac"] == 0.5 and row["train_distinct_unsolved"] == 2.0
    assert row["test_diff2_all"] == pytest.approx(1.5)  # problem 0: answers 1, 2 -> 2; problem 1: 3, 3 -> 1
