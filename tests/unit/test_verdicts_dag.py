"""The four claims of dag-edge-of-competence on hand-built evaluation tables (issue 22).

Zhang, Neubig and Yue (arXiv 2512.07783), Observation 1: RL on the ID band sharpens (pass@1 up,
pass@k_max flat); RL at the edge of competence raises pass@k_max on edge and hard ops; RL on
too-hard ops gains nothing. Every claim gets a case where it must pass, one where it must fail and
one where it is not judged (handbook).

Construction: n = 4 samples, k_max = 2, N = 8 problems per op, ops 2..10, hand bands ID 2..5,
edge 6..7, hard 8..10 (`dr.Bands`). Per problem, pass@1 = c / 4 and pass@2 = 1 - C(4 - c, 2) / 6:
c = 0 -> 0, 1 -> 1/2, 2 -> 5/6, 3 or 4 -> 1 (math.comb, derived here, never by the code under test).
Base: ID c = 3 (pass@1 3/4, pass@2 1), edge [1, 1, 0, 0, 0, 0, 0, 0] (pass@1 1/16, pass@2 1/8: an edge
op), hard c = 0. Hand gains, every problem's difference of the same sign, so the bootstrap interval
of the mean lies within [min, max] of the per-problem differences:
- ID arm, ID c = 4: pass@1 +1/4 on every problem (interval [1/4, 1/4], above 0), pass@2 +0 (interval
  [0, 0], not above 0): sharpens only. A base at ID c = 1 with the arm at c = 3 gains pass@2 +1/2 too:
  the claim fails.
- Edge arm, edge [2, 2, 1, 1, 1, 1, 1, 1]: pass@2 +1/3 on two problems, +1/2 on six: mean
  (2/3 + 3) / 8 = 11/24; hard c = 1: pass@2 +1/2 on every hard problem.
- Hard arm, hard c = 0: gain 0, interval [0, 0] (no gain: passes when the edge arm learned); hard
  c = 1: +1/2 (fails).
Learning off (every arm's table equal to its base's) gives zero intervals: no "raises" claim passes
and "no gain" is not judged (nothing learned anywhere).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from theoryrl.core.bases import Gate
from theoryrl.core.stages import Run, Runs
from theoryrl.core.verdicts import FAIL, NOT_JUDGED, PASS
from theoryrl.experiments import dag_edge_of_competence as dee
from theoryrl.rl import dag_runs as dr

N, S = 8, 4
CFG = dee.Config(base=dr.BaseSpec(eval_samples=S, k_max=2, eval_problems=N), seeds=(1, 2))
BANDS = dr.Bands(id=(2, 5), edge=(6, 7), hard=(8, 10), pass1={}, passk={}, rule="by hand")
BASE = {"id": [3] * N, "edge": [1, 1] + [0] * (N - 2), "hard": [0] * N}
NAMES = ("id_rl_sharpens_only", "edge_rl_extends_edge", "edge_rl_extends_hard", "too_hard_rl_no_gain")
SHARPEN = {"id": [4] * N}
EXTEND = {"edge": [2, 2] + [1] * (N - 2), "hard": [1] * N}


def _table(bands: dr.Bands, counts: dict) -> dict:
    """[9, N, S] table over ops 2..10: counts[band] correct samples per problem on each op of the
    band (scattered positions), zero on ops in no band; answer_correct = perfect."""
    rng = np.random.default_rng(0)
    ops = list(range(2, 11))
    perfect = np.zeros((len(ops), N, S), bool)
    for name in ("id", "edge", "hard"):
        band = getattr(bands, name)
        if band is None or name not in counts:
            continue
        for op in range(band[0], band[1] + 1):
            for i, c in enumerate(counts[name]):
                perfect[ops.index(op), i, rng.permutation(S)[:c]] = True
    return {"perfect": perfect, "answer_correct": perfect.copy(), "strict": perfect.copy(),
            "ops": np.asarray(ops, np.int64)}


def _tables(arms: dict, base=None, seeds=(1, 2), missing=(), bands_of=None) -> tuple[dict, dict]:
    """tables[(seed, arm)] with arm = base counts overridden by arms[arm]; (seed, arm) in missing
    are left out."""
    base = BASE if base is None else base
    bands_of = {s: BANDS for s in seeds} if bands_of is None else bands_of
    tables = {}
    for s in seeds:
        tables[(s, "base")] = _table(bands_of[s], base)
        for arm, over in arms.items():
            if (s, arm) not in missing:
                tables[(s, arm)] = _table(bands_of[s], {**base, **over})
    return tables, bands_of


def _judge(arms: dict, cfg=CFG, seeds=(1, 2), skipped=None, **kw):
    tables, bands_of = _tables(arms, seeds=seeds, **kw)
    judged = list(seeds) if skipped is None else [s for s in seeds if s not in skipped]
    return dee._verdicts(cfg, tables, bands_of, judged, skipped or {})


def test_config_validates():
    CFG.validate()


# ---------------------------------------------------------------- every claim passes


def test_all_claims_pass_with_hand_gains():
    v, m = _judge({"id": SHARPEN, "edge": EXTEND, "hard": {}, "mixed": {}})
    assert {n: v[n].status for n in NAMES} == {n: PASS for n in NAMES}
    assert m["id_gain_id_pass1"] == pytest.approx(0.25, abs=1e-12)
    assert (m["id_gain_id_pass1_lo"], m["id_gain_id_pass1_hi"]) == (pytest.approx(0.25), pytest.approx(0.25))
    assert (m["id_gain_id_pass2"], m["id_gain_id_pass2_lo"]) == (0.0, 0.0)
    assert m["edge_gain_edge_pass2"] == pytest.approx(11 / 24, abs=1e-12)
    assert 1 / 3 - 1e-12 <= m["edge_gain_edge_pass2_lo"] and m["edge_gain_edge_pass2_hi"] <= 0.5 + 1e-12
    assert m["edge_gain_hard_pass2"] == pytest.approx(0.5, abs=1e-12)
    assert m["hard_gain_hard_pass2"] == 0.0
    assert v["edge_rl_extends_edge"].value == pytest.approx(11 / 24, abs=1e-12)
    assert v["too_hard_rl_no_gain"].value == 0.0


def test_gains_pool_problem_rows_over_seeds_each_with_its_own_bands():
    """Seed 2's bands are edge 6..6, hard 7..10 and its edge arm reaches c = 4 on edge ops: per
    problem +1/2 (two problems) or +1 (six), mean 7/8 over 8 rows. Seed 1: 16 rows of mean 11/24.
    Pooled rows: (16 * 11/24 + 8 * 7/8) / 24 = 43/72 = 0.5972 (a mean of seed means would be 2/3)."""
    b2 = dr.Bands(id=(2, 5), edge=(6, 6), hard=(7, 10), pass1={}, passk={}, rule="by hand")
    bands_of = {1: BANDS, 2: b2}
    tables = {}
    for s, edge_arm in ((1, EXTEND["edge"]), (2, [4] * N)):
        tables[(s, "base")] = _table(bands_of[s], BASE)
        tables[(s, "edge")] = _table(bands_of[s], {**BASE, "edge": edge_arm, "hard": [1] * N})
        tables[(s, "id")] = _table(bands_of[s], {**BASE, **SHARPEN})
        tables[(s, "hard")] = _table(bands_of[s], BASE)
    v, m = dee._verdicts(CFG, tables, bands_of, [1, 2], {})
    assert m["edge_gain_edge_pass2"] == pytest.approx(43 / 72, abs=1e-12)
    assert m["edge_gain_hard_pass2"] == pytest.approx(0.5, abs=1e-12)  # 24 + 32 hard rows, all +1/2
    assert v["edge_rl_extends_edge"].status == PASS


# ---------------------------------------------------------------- each claim fails


def test_id_rl_sharpens_only_fails_when_pass_k_also_rises():
    """Base ID c = 1 (pass@1 1/4, pass@2 1/2), arm c = 3 (3/4, 1): pass@2 +1/2 everywhere."""
    v, m = _judge({"id": {"id": [3] * N}, "edge": EXTEND, "hard": {}}, base={**BASE, "id": [1] * N})
    assert v["id_rl_sharpens_only"].status == FAIL
    assert m["id_gain_id_pass2"] == pytest.approx(0.5) and m["id_gain_id_pass2_lo"] == pytest.approx(0.5)


def test_id_rl_sharpens_only_fails_when_pass1_does_not_rise():
    v, _ = _judge({"id": {}, "edge": EXTEND, "hard": {}})
    assert v["id_rl_sharpens_only"].status == FAIL


def test_edge_claims_fail_without_gain():
    """Edge arm equal to the base on edge ops (gain 0, interval [0, 0]) and worse on nothing."""
    v, m = _judge({"id": SHARPEN, "edge": {"hard": [1] * N}, "hard": {}})
    assert v["edge_rl_extends_edge"].status == FAIL and m["edge_gain_edge_pass2_lo"] == 0.0
    assert v["edge_rl_extends_hard"].status == PASS
    v, m = _judge({"id": SHARPEN, "edge": {"edge": EXTEND["edge"]}, "hard": {}})
    assert v["edge_rl_extends_edge"].status == PASS
    assert v["edge_rl_extends_hard"].status == FAIL and m["edge_gain_hard_pass2"] == 0.0


def test_too_hard_rl_no_gain_fails_when_the_hard_arm_gains():
    v, m = _judge({"id": SHARPEN, "edge": EXTEND, "hard": {"hard": [1] * N}})
    assert v["too_hard_rl_no_gain"].status == FAIL
    assert v["too_hard_rl_no_gain"].value == pytest.approx(0.5) and m["hard_gain_hard_pass2_lo"] == pytest.approx(0.5)


# ---------------------------------------------------------------- not judged


def test_no_judged_seed_judges_nothing_and_names_the_reasons():
    v, m = _judge({"id": SHARPEN, "edge": EXTEND, "hard": {}}, skipped={1: "base failed its gate",
                                                                       2: "base has no edge band"})
    assert all(v[n].status == NOT_JUDGED for n in NAMES) and m == {}
    assert "seed 1: base failed its gate" in v["edge_rl_extends_edge"].reason


def test_rl_steps_zero_judges_nothing():
    cfg = dee.Config(base=CFG.base, rl=dr.RLKnobs(steps=0), seeds=(1, 2))
    v, _ = _judge({"id": SHARPEN, "edge": EXTEND, "hard": {}}, cfg=cfg)
    assert all(v[n].status == NOT_JUDGED and "rl.steps = 0" in v[n].reason for n in NAMES)


def test_missing_arm_is_not_judged():
    """The id arm missing for seed 2 only: its claim is not judged (never judged on seed 1 alone);
    likewise the edge arm (both edge claims, and too-hard, whose precondition needs it), the hard arm."""
    v, _ = _judge({"id": SHARPEN, "edge": EXTEND, "hard": {}}, missing={(2, "id")})
    assert v["id_rl_sharpens_only"].status == NOT_JUDGED
    assert all(v[n].status == PASS for n in NAMES[1:])
    v, _ = _judge({"id": SHARPEN, "edge": EXTEND, "hard": {}}, missing={(2, "edge")})
    assert [v[n].status for n in NAMES] == [PASS, NOT_JUDGED, NOT_JUDGED, NOT_JUDGED]
    v, _ = _judge({"id": SHARPEN, "edge": EXTEND, "hard": {}}, missing={(1, "hard")})
    assert [v[n].status for n in NAMES] == [PASS, PASS, PASS, NOT_JUDGED]


def test_too_hard_not_judged_when_the_edge_arm_learned_nothing():
    """Hard arm gain 0 would pass, but the edge arm equals the base (no interval above 0 on edge
    pass@1, edge pass@2 or hard pass@2): RL may not learn here at all, so no verdict."""
    v, _ = _judge({"id": SHARPEN, "edge": {}, "hard": {}})
    assert v["too_hard_rl_no_gain"].status == NOT_JUDGED
    assert "precondition" in v["too_hard_rl_no_gain"].reason


def test_learning_off_passes_no_claim():
    """Every RL table equal to its base's: every gain interval is [0, 0]."""
    v, m = _judge({"id": {}, "edge": {}, "hard": {}, "mixed": {}})
    assert not any(v[n].passed for n in NAMES)
    assert [v[n].status for n in NAMES] == [FAIL, FAIL, FAIL, NOT_JUDGED]
    assert all(m[k] == 0.0 for k in m)


# ---------------------------------------------------------------- analyze on constructed runs


def _arrays(table: dict) -> dict:
    return dr.table_arrays(table, "final/eval")


def test_analyze_leaves_out_failed_gate_and_edgeless_seeds():
    """Seeds 1, 2, 3. Seed 1: gated base, calibrates to ID 2..5, edge 6..7 (pass@2 1/8, pass@1
    1/16), hard 8..10 (pass@2 0); arms as in the passing case. Seed 2: same table but its gate
    failed; its (hypothetical) edge arm lost every edge success, which would drag the pooled
    edge gain below 11/24 if it were counted. Seed 3: gated, but never correct above the ID band
    (no edge band); an id arm equal to its base would pull the pooled ID pass@1 gain below 1/4.
    So the metrics are seed 1's hand values, and seeds 2 and 3 are reported as left out."""
    cfg = dee.Config(base=CFG.base, seeds=(1, 2, 3))
    good = _table(BANDS, BASE)
    edgeless = _table(BANDS, {"id": BASE["id"]})
    runs = [Run("pretrain", {"seed": 1}, _arrays(good), gate=Gate(True, "r", {})),
            Run("pretrain", {"seed": 2}, _arrays(good), gate=Gate(False, "r", {})),
            Run("pretrain", {"seed": 3}, _arrays(edgeless), gate=Gate(True, "r", {}))]
    for arm, over in (("id", SHARPEN), ("edge", EXTEND), ("hard", {}), ("mixed", {})):
        runs.append(Run("rl", {"seed": 1, "arm": arm}, _arrays(_table(BANDS, {**BASE, **over}))))
    runs.append(Run("rl", {"seed": 2, "arm": "edge"}, _arrays(_table(BANDS, {**BASE, "edge": [0] * N}))))
    runs.append(Run("rl", {"seed": 3, "arm": "id"}, _arrays(edgeless)))
    out = dee.analyze(cfg, Runs(runs))
    assert out.paper["seeds_judged"] == [1]
    assert out.paper["seeds_left_out"] == {2: "base failed its gate", 3: "base has no edge band"}
    assert out.paper["bands"][1]["edge"] == (6, 7) and out.paper["bands"][1]["hard"] == (8, 10)
    assert out.paper["bands"][3]["edge"] is None
    assert {n: out.verdicts[n].status for n in NAMES} == {n: PASS for n in NAMES}
    assert out.metrics["edge_gain_edge_pass2"] == pytest.approx(11 / 24, abs=1e-12)
    assert out.metrics["id_gain_id_pass1"] == pytest.approx(0.25, abs=1e-12)
    row = next(r for r in out.rows if r["seed"] == 1 and r["arm"] == "edge")
    assert row["edge_pass2"] == pytest.approx((2 * 5 / 6 + 6 * 0.5) / 8, abs=1e-12)  # 7/12
    assert row["base_gate_passed"] is True
    assert next(r for r in out.rows if r["seed"] == 2 and r["arm"] == "base")["base_gate_passed"] is False
    assert math.isnan(next(r for r in out.rows if r["seed"] == 3 and r["arm"] == "base")["edge_pass1"])
    assert len(out.rows) == 1 + 4 + 1 + 1 + 1 + 1
    assert out.arrays["passk_RxO"].shape == (9, 9)
