"""Every verdict of bandit-diversity, bandit-regret and affine-uniform-vs-hard fed hand-made finished
runs: the claim holds -> pass, the claim fails -> fail, nothing learned (or a precondition fails)
-> not judged (issue 20 §3). Each section's docstring derives the expected values by hand."""
import math

import numpy as np
import pytest

from theoryrl.core.experiment import Run, Runs
from theoryrl.core.verdicts import FAIL, NOT_JUDGED, PASS
from theoryrl.experiments import affine_uniform_vs_hard as affine  # noqa: F401
from theoryrl.experiments import bandit_diversity as div
from theoryrl.experiments import bandit_regret as reg  # noqa: F401

# ---------------------------------------------------------------- bandit-diversity
"""Synthetic bandit-diversity runs: 4 seeds, 2 chunks (rounds 10, 5 per chunk; early_frac 0.1 -> the
early budget is chunk 0). Every per-seed value is its method's value plus the seed's offset
0.01 x (-1.5, -0.5, 0.5, 1.5): the offsets' sample variance is 1e-4 x 5/3, so each method's SE is
0.01 x sqrt(5/12) = 0.0064550 and the 2-SE band of a difference of two methods is
2 sqrt(2) x 0.0064550 = 0.0182574. Paired differences (same seed) cancel the offsets: SE 0.
Four questions: base solved q0, every RL method q1, so q2, q3 are the common unsolved ones, where base
found 10 distinct answers and grpo `distinct` (6 + seed index in the pass case: paired base - grpo =
4, 3, 2, 1, mean 2.5, SE sqrt(5/12) = 0.6455, band 1.291)."""

OFFSET_S = 0.01 * np.array([-1.5, -0.5, 0.5, 1.5])
DIV_BAND = 2 * math.sqrt(2) * 0.01 * math.sqrt(5 / 12)

# method -> (early solved, final solved, pass1, batch distinct unsolved, batch distinct solved)
DIV_HOLDS = {"base": (0.20, 0.50, 0.01, 4.0, 4.0), "grpo": (0.30, 0.40, 0.30, 2.5, 1.1),
             "ucb": (0.30, 0.55, 0.40, 2.9, 1.1), "ucb_mean": (0.30, 0.56, 0.40, 2.9, 1.1),
             "ucb_con": (0.30, 0.60, 0.40, 2.9, 1.1), "batch": (0.30, 0.50, 0.40, 3.8, 1.2)}
# every claim reversed or inside the noise band, while every RL method still learned (pass1 >> base)
DIV_FAILS = {"base": (0.20, 0.41, 0.01, 4.0, 4.0), "grpo": (0.20, 0.40, 0.30, 2.5, 1.1),
             "ucb": (0.30, 0.40, 0.40, 2.9, 1.1), "ucb_mean": (0.30, 0.60, 0.40, 2.9, 1.1),
             "ucb_con": (0.30, 0.58, 0.40, 2.9, 1.1), "batch": (0.30, 0.50, 0.40, 2.9, 1.6)}
# lr = 0: every method is the base policy
DIV_NOTHING = {m: DIV_HOLDS["base"] for m in DIV_HOLDS}


def _div_cfg(seeds=(42, 43, 44, 45)) -> div.Config:
    return div.Config(questions=4, arms=8, outcomes=4, rounds=10, rounds_per_chunk=5, seeds=seeds)


def _div_runs(cfg: div.Config, table: dict, grpo_distinct) -> Runs:
    runs = []
    for method in cfg.methods:
        early, solved, pass1, bu, bs = table[method]
        for i, seed in enumerate(cfg.seeds):
            o = OFFSET_S[i]
            hist = {k: np.full(2, 1.0 + o) for k in div.TABLE_KEYS}
            hist.update(solved_frac=np.array([early + o, solved + o]), pass1=np.full(2, pass1 + o),
                        batch_distinct_unsolved=np.full(2, bu + o), batch_distinct_solved=np.full(2, bs + o))
            solved_Q = np.array([True, False, False, False]) if method == "base" else np.array([False, True, False, False])
            common = 10.0 if method == "base" else grpo_distinct(i)
            arrays = {f"history/{k}": v for k, v in hist.items()}
            arrays["final/solved_Q"] = solved_Q
            arrays["final/distinct_Q"] = np.array([3.0, 3.0, common, common])
            runs.append(Run("train", {"method": method, "seed": seed}, arrays))
    return Runs(runs)


def _div_verdicts(table, grpo_distinct, seeds=(42, 43, 44, 45)):
    cfg = _div_cfg(seeds)
    return div.analyze(cfg, _div_runs(cfg, table, grpo_distinct)).verdicts


def test_bandit_diversity_claims_hold():
    """Early: 0.30 - 0.20 = 0.10 > band 0.01826. Eventually: 0.50 - 0.40 = 0.10. Transfer: paired
    mean 2.5 > 1.291 (margin 1.209). UCB variants: closest ucb 0.55 - 0.40 = 0.15. UCB-Con best:
    closest ucb_mean, 0.60 - 0.56 = 0.04, margin 0.02174. Batch most distinct: 3.8 - 2.9 = 0.9.
    Batch's gain: unsolved 3.8 - 2.5 = 1.3, solved 1.2 - 1.1 = 0.1, paired 1.2 (SE 0)."""
    v = _div_verdicts(DIV_HOLDS, lambda i: 6.0 + i)
    assert {k: x.status for k, x in v.items()} == {k: PASS for k in v} and len(v) == 7
    assert v["rl_solves_more_early"].value == pytest.approx(0.10)
    assert v["rl_solves_more_early"].threshold == pytest.approx(DIV_BAND)
    assert v["transfer_of_diversity_degradation"].value == pytest.approx(2.5)
    assert v["transfer_of_diversity_degradation"].margin == pytest.approx(2.5 - 2 * math.sqrt(5 / 12))
    assert v["ucb_variants_solve_more_than_grpo"].value == pytest.approx(0.15)
    assert v["ucb_con_best_for_solving"].margin == pytest.approx(0.04 - DIV_BAND)
    assert "ucb_mean" in v["ucb_con_best_for_solving"].reason
    assert v["batch_gain_concentrated_on_unsolved"].value == pytest.approx(1.2)
    assert "5.390" in v["batch_most_distinct_on_unsolved"].paper


def test_bandit_diversity_claims_fail_on_ties_and_noise():
    """Early: a tie (0.20 = 0.20) fails. Eventually: 0.41 - 0.40 = 0.01 < band 0.01826 fails.
    Transfer: grpo 12 > base 10, paired -2. UCB variants: ucb 0.40 - 0.40 ties. UCB-Con best:
    0.58 - 0.60 = -0.02. Batch most distinct: 2.9 - 2.9 ties. Batch's gain: (2.9 - 2.5) - (1.6 - 1.1)
    = -0.1."""
    v = _div_verdicts(DIV_FAILS, lambda i: 12.0)
    assert {k: x.status for k, x in v.items()} == {k: FAIL for k in v} and len(v) == 7
    assert v["base_solves_more_eventually"].value == pytest.approx(0.01)
    assert v["transfer_of_diversity_degradation"].value == pytest.approx(-2.0)
    assert v["batch_gain_concentrated_on_unsolved"].value == pytest.approx(-0.1)


def test_bandit_diversity_nothing_learned_judges_nothing():
    """lr = 0: every method is base, pass@1 ties base's, so no RL method learned: all not judged."""
    v = _div_verdicts(DIV_NOTHING, lambda i: 10.0)
    assert {k: x.status for k, x in v.items()} == {k: NOT_JUDGED for k in v} and len(v) == 7
    assert all("learned" in x.reason for x in v.values())


def test_bandit_diversity_one_seed_has_no_standard_error():
    """One seed: no SE, so the learned-precondition itself cannot pass: nothing is judged."""
    v = _div_verdicts(DIV_HOLDS, lambda i: 6.0, seeds=(42,))
    assert all(x.status == NOT_JUDGED for x in v.values())
