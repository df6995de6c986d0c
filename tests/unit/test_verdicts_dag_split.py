"""The claims of dag-midtrain-rl-split on hand-built evaluation tables (issue 22, Observations 3, 8).

Per budget: `light_rl_best_edge_pass1@B` passes when the arm with the best edge pass@1 has CPT
fraction >= 0.5 and beats RL alone (fraction 0) with a paired interval above 0; `heavy_rl_best_hard@B`
when the best hard pass@k_max is at a fraction in (0, 0.5] and beats CPT alone (fraction 1). Both are
not judged when every arm scores the same. Construction: n = S = 4 samples, k = 2, N = 8 problems per
op, ops 2..8, bands edge 6, hard 7..8; every problem of a band gets c correct samples, so pass@1 = c/4
and pass@2 = 1 - C(4 - c, 2)/6 (c = 0 -> 0, 1 -> 1/2, 2 -> 5/6, 3 or 4 -> 1), and a gain that is the
same on every problem has the interval [gain, gain].
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from theoryrl.core.verdicts import FAIL, NOT_JUDGED, PASS
from theoryrl.experiments import dag_midtrain_rl_split as split
from theoryrl.rl import dag_runs as dr

N, S = 8, 4
FRACS = (0.0, 0.5, 0.8, 1.0)
CFG = split.Config(base=dr.BaseSpec(eval_samples=S, k_max=2, eval_problems=N), cpt_fractions=FRACS, budgets=(20,),
                   table_samples=S, seeds=(1,))
BANDS = dr.Bands(id=(2, 5), edge=(6, 6), hard=(7, 8), pass1={}, passk={}, rule="by hand")


def _table(edge_c: int, hard_c: int) -> dict:
    ops = list(range(2, 9))
    perfect = np.zeros((len(ops), N, S), bool)
    for op, c in [(6, edge_c), (7, hard_c), (8, hard_c)]:
        perfect[ops.index(op), :, :c] = True
    return {"perfect": perfect, "answer_correct": perfect.copy(), "strict": perfect.copy(), "ops": np.asarray(ops)}


def _judge(edge: dict, hard: dict, seeds=(1,)):
    tables = {(1, 20, f): _table(edge[f], hard[f]) for f in FRACS}
    return split._verdicts(CFG, tables, {1: BANDS}, list(seeds), {} if seeds else {1: "base failed its gate"})


def _p2(c: int) -> float:
    return 1 - math.comb(S - c, 2) / math.comb(S, 2)


def test_both_claims_pass_with_hand_gains():
    """edge c: 1, 1, 3, 2 -> best fraction 0.8 (pass@1 3/4), gain over fraction 0: +1/2; hard c: 0, 2, 1, 0
    -> best fraction 0.5 (pass@2 5/6), gain over fraction 1: +5/6."""
    v, m = _judge({0.0: 1, 0.5: 1, 0.8: 3, 1.0: 2}, {0.0: 0, 0.5: 2, 0.8: 1, 1.0: 0})
    assert v["light_rl_best_edge_pass1@20"].status == PASS
    assert v["light_rl_best_edge_pass1@20"].value == pytest.approx(0.5)
    assert v["heavy_rl_best_hard@20"].status == PASS
    assert v["heavy_rl_best_hard@20"].value == pytest.approx(_p2(2) - _p2(0))
    assert m["hard_pass2@20@0.5"] == pytest.approx(5 / 6)


def test_claims_fail_when_the_best_arm_is_on_the_wrong_side():
    """Best edge pass@1 at RL alone (fraction 0); best hard pass@2 at CPT alone (fraction 1)."""
    v, _ = _judge({0.0: 3, 0.5: 1, 0.8: 1, 1.0: 1}, {0.0: 0, 0.5: 1, 0.8: 1, 1.0: 2})
    assert v["light_rl_best_edge_pass1@20"].status == FAIL
    assert v["heavy_rl_best_hard@20"].status == FAIL


def test_a_tie_with_the_rival_fails():
    """Best edge arm 0.8 ties RL alone: gain 0, interval [0, 0], never a pass."""
    v, _ = _judge({0.0: 3, 0.5: 1, 0.8: 3, 1.0: 1}, {0.0: 0, 0.5: 1, 0.8: 1, 1.0: 1})
    assert v["light_rl_best_edge_pass1@20"].status == FAIL
    assert v["heavy_rl_best_hard@20"].status == FAIL


def test_not_judged_when_all_arms_score_the_same_or_no_seed_is_judged():
    """Learning off gives every arm the base's table: nothing to rank, nothing passes."""
    v, _ = _judge({f: 1 for f in FRACS}, {f: 0 for f in FRACS})
    assert {x.status for x in v.values()} == {NOT_JUDGED}
    assert "not all equal" in v["light_rl_best_edge_pass1@20"].reason
    v, _ = _judge({0.0: 1, 0.5: 1, 0.8: 3, 1.0: 2}, {0.0: 0, 0.5: 2, 0.8: 1, 1.0: 0}, seeds=())
    assert {x.status for x in v.values()} == {NOT_JUDGED}
    assert "seed 1: base failed its gate" in v["heavy_rl_best_hard@20"].reason
