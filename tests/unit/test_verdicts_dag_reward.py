"""The claims of dag-process-reward on hand-built evaluation tables (issue 22, Observation 4).

Zhang, Neubig and Yue (arXiv 2512.07783), Fig. 7: process-verified or mixed rewards raise hard-op
pass@1 and lower reward hacking. Every claim gets a case where it must pass, one where it must fail
and one where it is not judged (handbook).

Construction: n = S = 4 samples, N = 8 problems per op, ops 2..10, hand bands ID 2..5, edge 6..7,
hard 8..10. A table gives, per band and problem, p perfect samples and h "hacked" ones (answer right,
process wrong); the rest are wrong. pass@1 per problem = p / 4 (unbiased pass@1 is the mean).
Hacking rate = hacked / right over the pooled edge problems (on hard ops right answers are mostly
guesses, so the experiment reads the edge band):
- outcome arm: edge p = 1, h = 2 (3 right): rate 2/3; hard p = 0, h = 2 (row rate 1, not judged on).
- a good process arm: edge p = 2, h = 0, hard p = 1, h = 0: hard pass@1 gain +1/4 on every hard
  problem (interval [1/4, 1/4]); hacking rate 0, every edge row alike, so the difference's interval
  is [-2/3, -2/3], below 0.
- an arm equal to the outcome arm: gains 0, interval [0, 0]: both claims fail (ties never pass).
"""
from __future__ import annotations

import numpy as np
import pytest

from theoryrl.core.bases import Gate
from theoryrl.core.stages import Run, Runs
from theoryrl.core.verdicts import FAIL, NOT_JUDGED, PASS
from theoryrl.experiments import dag_process_reward as dpr
from theoryrl.rl import dag_runs as dr

N, S = 8, 4
CFG = dpr.Config(base=dr.BaseSpec(eval_samples=S, k_max=2, eval_problems=N), arms=("outcome", "strict"), seeds=(1,))
BANDS = dr.Bands(id=(2, 5), edge=(6, 7), hard=(8, 10), pass1={}, passk={}, rule="by hand")
OUTCOME = {"edge": (1, 2), "hard": (0, 2)}
GOOD = {"edge": (2, 0), "hard": (1, 0)}


def _table(counts: dict) -> dict:
    """[9, N, S] table over ops 2..10; counts[band] = (perfect, hacked) samples per problem on each
    op of the band; ID ops all perfect."""
    ops = list(range(2, 11))
    perfect = np.zeros((len(ops), N, S), bool)
    answer = np.zeros((len(ops), N, S), bool)
    for name, (p, h) in {"id": (S, 0), **counts}.items():
        lo, hi = getattr(BANDS, name)
        for op in range(lo, hi + 1):
            perfect[ops.index(op), :, :p] = True
            answer[ops.index(op), :, :p + h] = True
    return {"perfect": perfect, "answer_correct": answer, "strict": perfect.copy(), "ops": np.asarray(ops, np.int64)}


def _judge(strict_counts: dict, outcome_counts=OUTCOME, cfg=CFG, seeds=(1,)):
    tables = {(1, "base"): _table(OUTCOME), (1, "outcome"): _table(outcome_counts), (1, "strict"): _table(strict_counts)}
    return dpr._verdicts(cfg, tables, {1: BANDS}, list(seeds), {} if seeds else {1: "base failed its gate"})


def test_a_process_arm_that_helps_passes_both_claims():
    v, m = _judge(GOOD)
    assert v["strict_raises_hard_pass1"].status == PASS
    assert v["strict_raises_hard_pass1"].value == pytest.approx(0.25)
    assert v["strict_lowers_hacking"].status == PASS
    assert m["outcome_hacking_rate"] == pytest.approx(2 / 3)
    assert m["strict_hacking_rate"] == 0.0
    assert m["strict_gain_hacking_lo"] == pytest.approx(-2 / 3) and m["strict_gain_hacking_hi"] == pytest.approx(-2 / 3)


def test_an_arm_equal_to_outcome_fails_both_claims():
    v, m = _judge(OUTCOME)
    assert v["strict_raises_hard_pass1"].status == FAIL
    assert v["strict_lowers_hacking"].status == FAIL
    assert m["strict_gain_hacking"] == 0.0 and m["strict_gain_hard_pass1"] == 0.0


def test_more_hacking_or_lower_pass1_fails():
    """strict arm: edge p = 0, h = 3: every right edge answer hacked, rate 1 > 2/3; hard pass@1 0 like outcome."""
    v, m = _judge({"edge": (0, 3), "hard": (0, 2)})
    assert m["strict_hacking_rate"] == pytest.approx(1.0)
    assert v["strict_lowers_hacking"].status == FAIL
    assert v["strict_raises_hard_pass1"].status == FAIL


def test_hacking_is_not_judged_without_right_answers():
    """outcome with no right answer on edge ops: its hacking rate is undefined."""
    v, _ = _judge(GOOD, outcome_counts={"edge": (0, 0), "hard": (0, 2)})
    assert v["strict_lowers_hacking"].status == NOT_JUDGED
    assert "outcome arm has right answers" in v["strict_lowers_hacking"].reason
    assert v["strict_raises_hard_pass1"].status == PASS  # pass@1 is still defined: 1/4 vs 0
    v, _ = _judge({"edge": (0, 0), "hard": (1, 0)})  # the process arm answers no edge problem right
    assert v["strict_lowers_hacking"].status == NOT_JUDGED


def test_nothing_is_judged_without_a_judged_seed_or_rl_steps():
    v, _ = _judge(GOOD, seeds=())
    assert {x.status for x in v.values()} == {NOT_JUDGED}
    assert "seed 1: base failed its gate" in v["strict_raises_hard_pass1"].reason
    cfg = dpr.Config(base=CFG.base, arms=CFG.arms, seeds=(1,), rl=dr.RLKnobs(steps=0))
    v, _ = _judge(GOOD, cfg=cfg)
    assert {x.status for x in v.values()} == {NOT_JUDGED}


def test_learning_off_passes_nothing():
    """Every arm's table equal to the base's (rl.lr = 0): every difference is 0."""
    v, _ = _judge(OUTCOME)
    assert PASS not in {x.status for x in v.values()}


def test_analyze_rows_and_left_out_seed():
    """Seed 1 judged (gate passed, bands forced by a base whose table has them); seed 2's base failed
    its gate: left out and named. Outcome row hacking rates: edge 2/3, hard 1."""
    cfg = dpr.Config(base=CFG.base, arms=("outcome", "strict"), seeds=(1, 2))
    runs = []
    for seed, passed in ((1, True), (2, False)):
        base_arrays = {f"final/eval/{k}": v for k, v in _table(OUTCOME).items()}
        runs.append(Run("pretrain", {"seed": seed}, base_arrays, base_id=f"b{seed}", gate=Gate(passed, "hand", {})))
        for arm, counts in (("outcome", OUTCOME), ("strict", GOOD)):
            runs.append(Run("rl", {"seed": seed, "arm": arm}, {f"final/eval/{k}": v for k, v in _table(counts).items()}))
    orig = dr.seed_status

    def fixed(base, run, need=("edge", "hard")):
        bands, why = orig(base, run, need)
        return BANDS, (None if run.gate.passed else "base failed its gate")

    try:
        dr.seed_status = fixed
        out = dpr.analyze(cfg, Runs(runs))
    finally:
        dr.seed_status = orig
    assert out.paper["seeds_judged"] == [1] and out.paper["seeds_left_out"] == {2: "base failed its gate"}
    row = next(r for r in out.rows if r["seed"] == 1 and r["arm"] == "outcome")
    assert row["edge_hacking_rate"] == pytest.approx(2 / 3) and row["hard_hacking_rate"] == pytest.approx(1.0)
    assert out.verdicts["strict_raises_hard_pass1"].status == PASS
    assert out.metrics["strict_gain_hard_pass1"] == pytest.approx(0.25)  # seed 2's tables do not count
