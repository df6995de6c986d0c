"""The claims of dag-context-exposure and dag-pretrain-hard-exposure on hand-built tables (issue 22).

Zhang, Neubig and Yue (arXiv 2512.07783), Observations 2, 5 (Fig. 4: RL transfers to a surface
context only if pre-training saw it) and 7 (Fig. 15: RL gains most at partial pre-training exposure
of the hard ID ops). Every claim family gets a case where it must pass, one where it must fail and
one where it is not judged, naming the precondition (handbook); learning off (RL tables equal to
the zero-step tables) passes nothing; plus the pieces of `dag_runs` both use (`hard_share_mix`,
`gated_ops`, the gate on explicit ops, `gate_requirement`, `paired_ratio_gain` on fractions).

Construction: [O, N, S] boolean tables over ops 2..8, N = 8 problems, n = S = 4 samples, k_max = 2.
A problem with c correct samples has unbiased pass@1 = c/4 and pass@2 = 1 - C(4 - c, 2)/C(4, 2):
c = 0 -> 0, 1 -> 1/2, 2 -> 5/6, 3 or 4 -> 1. A gain that is the same on every problem has the
bootstrap interval [gain, gain]; one that varies lies within [min, max] of the per-problem gains (a
resampled mean never leaves them), and a resampled ratio of sums sum(w num) / sum(w den) with den > 0
lies within [min, max] of the per-row ratios num/den (the mediant inequality), which is all a pass /
fail needs. Ops outside the measured band are given values that differ between arms, so a verdict
that read them would move.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from theoryrl.core.config import ConfigError
from theoryrl.core.stages import Run
from theoryrl.core.verdicts import FAIL, NOT_JUDGED, PASS
from theoryrl.experiments import dag_context_exposure as dce
from theoryrl.experiments import dag_pretrain_hard_exposure as dhe
from theoryrl.rl import dag_runs as dr

N, S = 8, 4
OPS = list(range(2, 9))
BASE = dr.BaseSpec(eval_samples=S, k_max=2, eval_problems=N)


def _p2(c: int) -> float:
    return 1 - math.comb(S - c, 2) / math.comb(S, 2)


def _table(counts: dict | None = None, default: int = 0) -> dict:
    """ops 2..8: op o gets counts[o] correct samples per problem (an int, or one count per problem),
    every op not in `counts` gets `default`; the three verifier keys alike."""
    counts = counts or {}
    perfect = np.zeros((len(OPS), N, S), bool)
    for i, op in enumerate(OPS):
        per = np.broadcast_to(np.asarray(counts.get(op, default)), (N,))
        for n in range(N):
            perfect[i, n, :per[n]] = True
    return {"perfect": perfect, "answer_correct": perfect.copy(), "strict": perfect.copy(),
            "ops": np.asarray(OPS, np.int64)}


# ---------------------------------------------------------------- dag-context-exposure
#
# BASE: ID ops 2..5, so the deep ID ops (above B's op 2) are 3..5; the reference band puts the edge
# at 6..7, so RL trained on ops id_lo..edge_hi = 2..7. Context A: c = 3 on ops 2..5 (pass@1 3/4,
# pass@2 1) and c = 1 on the edge (pass@1 1/4, pass@2 1/2); its RL arm adds one correct sample on
# every op 2..7 (pass@1 +1/4 on every problem: "RL learned", interval [1/4, 1/4]; edge pass@2
# 1/2 -> 5/6, +1/3) and lifts the unmeasured op 8 from 0 to 4. Context B's base: c = 1 on the deep
# ops (pass@2 1/2: headroom 1 - 1/2 = 1/2 >= 0.05), 0 on the edge (headroom 1/2 - 0); B's RL arm
# always lifts the unmeasured ops 2 and 8 from 0 to 4.

CTX_CFG = dce.Config(base=BASE, shares=(0.0, 0.01), table_samples=S, seeds=(1,))
BANDS = dr.Bands(id=(2, 5), edge=(6, 7), hard=(8, 8), pass1={}, passk={}, rule="by hand")
HALF = np.array([2, 2, 2, 2, 3, 3, 3, 3])  # per-problem counts: 2 on problems 0..3, 3 on 4..7
A_BASE = {2: 3, 3: 3, 4: 3, 5: 3, 6: 1, 7: 1, 8: 0}
A_RL = {2: 4, 3: 4, 4: 4, 5: 4, 6: 2, 7: 2, 8: 4}
B_BASE = {2: 0, 3: 1, 4: 1, 5: 1, 6: 0, 7: 0, 8: 0}
B_FLAT = {**B_BASE, 2: 4, 8: 4}
B_UP = {2: 4, 3: HALF, 4: HALF, 5: HALF, 6: 1, 7: 1, 8: 4}  # deep: +1/3 on problems 0..3, +1/2 on 4..7; edge +1/2


def _ctx(share: float, a=(A_BASE, A_RL), b=(B_BASE, B_FLAT), seed: int = 1) -> dict:
    """One seed and share: a = (base, rl) per-op counts in context A, b likewise in context B."""
    return {(seed, share, "base", 0): _table(a[0]), (seed, share, "rl", 0): _table(a[1]),
            (seed, share, "base", 1): _table(b[0]), (seed, share, "rl", 1): _table(b[1])}


def _ctx_judge(tables: dict, cfg=CTX_CFG, skipped=None, bands_of=None):
    return dce._verdicts(cfg, tables, bands_of or {s: BANDS for s in cfg.seeds}, skipped or {})


def test_context_config_claim_names_and_deep_ops():
    """Shares below transfer_min_share (0.01) claim no transfer, at or above it transfer; each on the
    deep ID ops (no band suffix) and on the edge. BASE's ID ops are 2..5: the deep ones are 3..5."""
    CTX_CFG.validate()
    assert dce._claim(CTX_CFG, 0.0, "id") == "no_transfer_at_0"
    assert dce._claim(CTX_CFG, 0.001, "edge") == "no_transfer_edge_at_0.001"
    assert dce._claim(CTX_CFG, 0.01, "id") == "transfers_at_0.01"
    assert dce._claim(CTX_CFG, 0.1, "edge") == "transfers_edge_at_0.1"
    assert dce._deep_id_ops(CTX_CFG) == [3, 4, 5]
    v, _ = _ctx_judge({**_ctx(0.01), **_ctx(0.0)})
    assert set(v) == {"transfers_at_0.01", "transfers_edge_at_0.01", "no_transfer_at_0", "no_transfer_edge_at_0"}


def test_context_claims_pass():
    """Share 0.01, B rises on the deep ops c 1 -> HALF: per-problem pass@2 gains 5/6 - 1/2 = 1/3
    (problems 0..3) and 1 - 1/2 = 1/2 (4..7), mean 5/12, interval within [1/3, 1/2] > 0; on the edge
    c 0 -> 1, +1/2 on every problem. A's deep pass@2 stays at 1 (gain 0: the headroom is B's); A's
    edge gain 1/3. Share 0: B flat on the deep ops and the edge (gain 0, interval [0, 0], upper end
    0 < 0.05) while RL lifts B's ops 2 and 8 (not measured); A learned (pass@1 +1/4 on 2..7; edge
    pass@2 +1/3): no transfer passes on both bands, value (the upper end) 0."""
    v, m = _ctx_judge({**_ctx(0.01, b=(B_BASE, B_UP)), **_ctx(0.0)})
    t = v["transfers_at_0.01"]
    assert t.status == PASS
    assert t.value == pytest.approx(((_p2(2) - _p2(1)) + (_p2(3) - _p2(1))) / 2) and t.value == pytest.approx(5 / 12)
    assert 1 / 3 - 1e-12 <= m["gain_B_id_0.01_lo"] <= m["gain_B_id_0.01_hi"] <= 1 / 2 + 1e-12
    assert m["base_A_id_0.01"] == pytest.approx(_p2(3)) and m["base_B_id_0.01"] == pytest.approx(_p2(1))
    assert m["gain_A_id_0.01"] == pytest.approx(0.0) and m["rl_B_id_0.01"] == pytest.approx((5 / 6 + 1) / 2)
    te = v["transfers_edge_at_0.01"]
    assert te.status == PASS and te.value == pytest.approx(_p2(1) - _p2(0)) and m["gain_B_edge_0.01_lo"] == pytest.approx(1 / 2)
    assert m["gain_A_edge_0.01"] == pytest.approx(_p2(2) - _p2(1)) and m["base_A_edge_0.01"] == pytest.approx(1 / 2)
    assert m["base_B_edge_0.01"] == pytest.approx(0.0)
    for name in ("no_transfer_at_0", "no_transfer_edge_at_0"):
        assert v[name].status == PASS and v[name].value == pytest.approx(0.0)
        assert v[name].margin == pytest.approx(0.05)


def test_context_claims_fail():
    """Share 0.01: B flat on both bands while A learned: gain 0, interval [0, 0], not above 0: both
    transfer claims fail. Share 0: B rises as in the pass case: on the deep ops the upper end lies
    in [1/3, 1/2] (>= 0.05), on the edge it is exactly 1/2: both no-transfer claims fail."""
    v, m = _ctx_judge({**_ctx(0.01), **_ctx(0.0, b=(B_BASE, B_UP))})
    for name in ("transfers_at_0.01", "transfers_edge_at_0.01"):
        assert v[name].status == FAIL and v[name].value == pytest.approx(0.0)
    nt = v["no_transfer_at_0"]
    assert nt.status == FAIL and 1 / 3 - 1e-12 <= nt.value <= 1 / 2 + 1e-12
    assert nt.value == pytest.approx(m["gain_B_id_0_hi"]) and nt.margin == pytest.approx(0.05 - nt.value)
    ne = v["no_transfer_edge_at_0"]
    assert ne.status == FAIL and ne.value == pytest.approx(1 / 2) and ne.margin == pytest.approx(0.05 - 1 / 2)


def test_no_transfer_is_an_equivalence_test_against_flat_margin():
    """B rises c 1 -> 2 on every deep-op problem: pass@2 1/2 -> 5/6, +1/3. With flat_margin 0.4 B's
    headroom 1 - 1/2 = 1/2 >= 0.4 and 1/3 < 0.4 counts as flat: passes, margin 0.4 - 1/3; with the
    default 0.05 it fails; with 0.6 the headroom 1/2 < 0.6 is too small to judge at all."""
    tables = _ctx(0.0, b=(B_BASE, {**B_FLAT, 3: 2, 4: 2, 5: 2}))
    cfg = dataclasses.replace(CTX_CFG, shares=(0.0,))
    v, _ = _ctx_judge(tables, cfg=dataclasses.replace(cfg, flat_margin=0.4))
    nt = v["no_transfer_at_0"]
    assert nt.status == PASS and nt.value == pytest.approx(1 / 3) and nt.margin == pytest.approx(0.4 - 1 / 3)
    v, _ = _ctx_judge(tables, cfg=cfg)
    assert v["no_transfer_at_0"].status == FAIL and v["no_transfer_at_0"].value == pytest.approx(1 / 3)
    v, _ = _ctx_judge(tables, cfg=dataclasses.replace(cfg, flat_margin=0.6))
    assert v["no_transfer_at_0"].status == NOT_JUDGED and "B has headroom" in v["no_transfer_at_0"].reason


def test_context_claims_not_judged_without_headroom():
    """B's base equals A's on the deep ops (c = 3, pass@2 1) and the edge (c = 1, 1/2): headroom 0 <
    0.05, so neither a flat nor a rising B says anything: all four claims not judged, naming it."""
    b_same = {2: 0, 3: 3, 4: 3, 5: 3, 6: 1, 7: 1, 8: 0}
    v, _ = _ctx_judge({**_ctx(0.01, b=(b_same, {**b_same, 6: 2, 7: 2})), **_ctx(0.0, b=(b_same, b_same))})
    for name, x in v.items():
        assert x.status == NOT_JUDGED and "precondition failed" in x.reason and "B has headroom" in x.reason, name
    assert v["transfers_edge_at_0.01"].value == pytest.approx(_p2(2) - _p2(1))  # measured, not judged


def test_no_transfer_not_judged_when_rl_did_not_learn():
    """(a) A flat (RL tables of A equal its base's): A's pass@1 gain on ops 2..7 is 0 (interval
    [0, 0]), its edge pass@2 gain 0: both no-transfer claims not judged, each naming its own
    precondition. The transfer claims have no such precondition: B rising (5/12) still passes.
    (b) A's edge rises c 1 -> 4 only on the calibration half (problems 0..3), the half that chose
    the band: its edge gain on the evaluation half is 0 (the whole table would give
    (1 - 1/2) / 2 = 1/4), so the edge claim is not judged, while A's pass@1 on ops 2..7 rose
    (+1/4 on 2..5, +3/4 on the edge's problems 0..3, 0 on 4..7: a resampled mean of 48 rows is 0
    only if all come from the 8 zero rows) and the deep-op claim passes (B flat)."""
    v, _ = _ctx_judge({**_ctx(0.01, a=(A_BASE, A_BASE), b=(B_BASE, B_UP)), **_ctx(0.0, a=(A_BASE, A_BASE))})
    assert v["no_transfer_at_0"].status == NOT_JUDGED and "RL learned" in v["no_transfer_at_0"].reason
    assert "context A's pass@1" in v["no_transfer_at_0"].reason and "B has headroom" not in v["no_transfer_at_0"].reason
    assert v["no_transfer_edge_at_0"].status == NOT_JUDGED
    assert "RL raised context A's pass@2 on the edge ops" in v["no_transfer_edge_at_0"].reason
    assert v["no_transfer_at_0"].value == pytest.approx(0.0)  # measured, not judged
    assert v["transfers_at_0.01"].status == PASS and v["transfers_at_0.01"].value == pytest.approx(5 / 12)

    cal = np.array([4] * 4 + [1] * 4)
    v, m = _ctx_judge(_ctx(0.0, a=(A_BASE, {**A_RL, 6: cal, 7: cal})), cfg=dataclasses.replace(CTX_CFG, shares=(0.0,)))
    assert m["gain_A_edge_0"] == pytest.approx(0.0)
    assert v["no_transfer_edge_at_0"].status == NOT_JUDGED and "on the edge ops" in v["no_transfer_edge_at_0"].reason
    assert v["no_transfer_at_0"].status == PASS and v["no_transfer_at_0"].value == pytest.approx(0.0)


def test_context_claims_not_judged_without_rl_steps_or_a_judged_base():
    """rl.steps = 0 judges nothing. A share whose base is skipped (or whose runs are missing) is not
    judged and names the reason, though its tables are there; the other share is still judged. A
    seed whose reference base is unusable ("seed 1") leaves every share without a judged seed."""
    tables = {**_ctx(0.01, b=(B_BASE, B_UP)), **_ctx(0.0)}
    v, _ = _ctx_judge(tables, cfg=dataclasses.replace(CTX_CFG, rl=dr.RLKnobs(reward="strict", steps=0)))
    assert {x.status for x in v.values()} == {NOT_JUDGED}
    assert all("rl.steps = 0" in x.reason for x in v.values())
    v, _ = _ctx_judge(tables, skipped={"seed 1, b_share 0.01": "base failed its gate"})
    for name in ("transfers_at_0.01", "transfers_edge_at_0.01"):
        assert v[name].status == NOT_JUDGED and "no judged seed at b_share 0.01" in v[name].reason
        assert "seed 1, b_share 0.01: base failed its gate" in v[name].reason
    assert v["no_transfer_at_0"].status == PASS and v["no_transfer_edge_at_0"].status == PASS
    v, _ = _ctx_judge(tables, skipped={"seed 1": "the reference base (b_share 0): base has no edge band"})
    assert {x.status for x in v.values()} == {NOT_JUDGED}
    assert "seed 1: the reference base (b_share 0): base has no edge band" in v["no_transfer_at_0"].reason
    del tables[(1, 0.01, "rl", 1)]
    v, _ = _ctx_judge(tables)
    assert v["transfers_at_0.01"].status == NOT_JUDGED and "no judged seed at b_share 0.01" in v["transfers_at_0.01"].reason


def test_context_gain_pools_seeds_each_on_its_own_reference_band():
    """Seed 1: edge 6..7, B's edge c 0 -> 1 (+1/2 on 16 rows). Seed 2: edge 7..8 (A at c = 1 there,
    RL c = 2), B's c 0 -> 2 on ops 7..8 (+5/6 on 16 rows) and 0 -> 4 on op 6, which is not seed 2's
    edge. Pooled: (16 * 1/2 + 16 * 5/6) / 32 = 2/3, every resample within [1/2, 5/6]. With seed 2's
    reference unusable only seed 1 counts: 1/2 exactly."""
    cfg = dataclasses.replace(CTX_CFG, shares=(0.01,), seeds=(1, 2))
    a2 = ({**A_BASE, 6: 0, 7: 1, 8: 1}, {**A_RL, 6: 0, 7: 2, 8: 2})
    tables = {**_ctx(0.01, b=(B_BASE, {**B_FLAT, 6: 1, 7: 1})),
              **_ctx(0.01, a=a2, b=(B_BASE, {**B_FLAT, 6: 4, 7: 2, 8: 2}), seed=2)}
    bands_of = {1: BANDS, 2: dataclasses.replace(BANDS, edge=(7, 8), hard=None)}
    v, m = _ctx_judge(tables, cfg=cfg, bands_of=bands_of)
    te = v["transfers_edge_at_0.01"]
    assert te.status == PASS and te.value == pytest.approx((16 * (1 / 2) + 16 * _p2(2)) / 32)
    assert 1 / 2 - 1e-12 <= m["gain_B_edge_0.01_lo"] <= m["gain_B_edge_0.01_hi"] <= 5 / 6 + 1e-12
    v, _ = _ctx_judge(tables, cfg=cfg, bands_of=bands_of, skipped={"seed 2": "base has no edge band"})
    assert v["transfers_edge_at_0.01"].status == PASS and v["transfers_edge_at_0.01"].value == pytest.approx(1 / 2)


def test_context_learning_off_passes_nothing():
    """rl.lr = 0: every RL table equals the zero-step run's (A and B at their base counts), at all
    four shares. B has headroom, so the transfer claims are judged and fail (gain 0, [0, 0]); A did
    not learn, so every no-transfer claim is not judged. Nothing passes."""
    cfg = dataclasses.replace(CTX_CFG, shares=(0.0, 0.001, 0.01, 0.1), rl=dr.RLKnobs(reward="strict", lr=0.0))
    tables = {}
    for share in cfg.shares:
        tables.update(_ctx(share, a=(A_BASE, A_BASE), b=(B_BASE, B_BASE)))
    v, m = _ctx_judge(tables, cfg=cfg)
    assert len(v) == 8 and PASS not in {x.status for x in v.values()}
    for name, x in v.items():
        want = NOT_JUDGED if name.startswith("no_transfer") else FAIL
        assert x.status == want and (want == NOT_JUDGED or x.value == 0.0), name
    assert all(val == 0.0 for key, val in m.items() if key.startswith("gain_"))


# ---------------------------------------------------------------- dag-pretrain-hard-exposure

HARD_BASE = dataclasses.replace(BASE, id_hi=6)  # hard ID band medium_max + 1 .. id_hi = 5..6
HARD_CFG = dhe.Config(base=HARD_BASE, hard_shares=(0.0, 0.2, 0.5), table_samples=S, seeds=(1,))
HARD_OPS = (5, 6)
QUARTERS = np.array([3, 3, 3, 3, 4, 4, 4, 4])


def _hard_tables(spec: dict, seed: int = 1) -> dict:
    """spec[h] = (base c, rl c) on the hard ID ops 5..6; the RL table has every other op at c = 4 and
    the base at c = 0 (ops 2..4 and 7..8 are not measured)."""
    out = {}
    for h, (cb, cr) in spec.items():
        out[(seed, h, "base")] = _table({op: cb for op in HARD_OPS}, 0)
        out[(seed, h, "rl")] = _table({op: cr for op in HARD_OPS}, 4)
    return out


def _hard_judge(tables: dict, cfg=HARD_CFG, skipped=None):
    return dhe._verdicts(cfg, tables, skipped or {})


def test_hard_config_band_gate_ops_and_claim_names():
    HARD_CFG.validate()
    assert dhe.hard_id_ops(HARD_BASE) == [5, 6] and dhe.hard_id_ops(BASE) == [5]
    assert dhe.gate_ops(HARD_CFG) == [2, 3, 4] and dhe.gate_ops(dhe.Config()) == [2, 3, 4]
    assert [n for n, _, _ in dhe.claim_names(HARD_CFG)] == ["gain_at_0.2_above_0", "gain_at_0.2_above_0.5"]


def test_hard_relative_gain_at_partial_share_above_both_ends_passes():
    """pass@1 on 16 rows (2 ops x 8 problems). Share 0.2: base 1/4 -> RL 3/4 (problems 0..3), 1
    (4..7): gains 1/2, 3/4 over headroom 3/4: relative 10 / 12 = 5/6 (per-row ratios 2/3, 1).
    Share 0: 0 -> 1/4 over headroom 1: 1/4. Share 0.5: 1/2 -> 3/4 over 1/2: 1/2. Claims: 5/6 - 1/4 =
    7/12, interval within [2/3 - 1/4, 1 - 1/4] = [5/12, 3/4]; 5/6 - 1/2 = 1/3 within [1/6, 1/2].
    Absolute: 0.2 gains 5/8 in pass@1 (base 1/4) and 1 - 1/2 = 1/2 in pass@2."""
    v, m = _hard_judge(_hard_tables({0.0: (0, 1), 0.2: (1, QUARTERS), 0.5: (2, 3)}))
    for name, want, lo, hi in (("gain_at_0.2_above_0", 7 / 12, 5 / 12, 3 / 4), ("gain_at_0.2_above_0.5", 1 / 3, 1 / 6, 1 / 2)):
        assert v[name].status == PASS and v[name].value == pytest.approx(want)
        assert lo - 1e-12 <= m[f"{name}_lo"] <= m[f"{name}_hi"] <= hi + 1e-12
    assert m["relative_gain_0.2"] == pytest.approx(5 / 6) and m["relative_gain_0"] == pytest.approx(1 / 4)
    assert m["relative_gain_0.5"] == pytest.approx(1 / 2)
    assert m["gain_pass1_0.2"] == pytest.approx(5 / 8) and m["base_pass1_0.2"] == pytest.approx(1 / 4)
    assert m["gain_pass2_0.2"] == pytest.approx(_p2(4) - _p2(1))


def test_hard_claim_judges_share_of_headroom_not_absolute_gain():
    """Share 0.2: 3/4 -> 1, absolute +1/4, all its headroom closed (relative 1). Share 0: 0 -> 1/2,
    +1/2 absolute, relative 1/2. Share 0.5: 1/2 -> 3/4, +1/4, relative 1/2. The absolute gain at 0.2
    is smaller than at 0 and equal to 0.5's, yet both claims pass with 1 - 1/2 = 1/2 on every row."""
    v, m = _hard_judge(_hard_tables({0.0: (0, 2), 0.2: (3, 4), 0.5: (2, 3)}))
    assert m["gain_pass1_0.2"] == pytest.approx(1 / 4) and m["gain_pass1_0"] == pytest.approx(1 / 2)
    for name in ("gain_at_0.2_above_0", "gain_at_0.2_above_0.5"):
        assert v[name].status == PASS and v[name].value == pytest.approx(1 / 2)
        assert m[f"{name}_lo"] == pytest.approx(1 / 2)


def test_hard_claim_uses_every_problem():
    """Share 0.2's RL rises c 1 -> 4 on problems 0..3 only (the half a band calibration would use):
    relative (8 * 3/4) / (16 * 3/4) = 1/2 over the whole table (the evaluation half alone: 0)."""
    _, m = _hard_judge(_hard_tables({0.0: (0, 1), 0.2: (1, np.array([4] * 4 + [1] * 4)), 0.5: (2, 3)}))
    assert m["relative_gain_0.2"] == pytest.approx(1 / 2) and m["gain_pass1_0.2"] == pytest.approx(3 / 8)


def test_hard_relative_gain_tie_or_smaller_fails():
    """Tie: every share closes half its headroom (0 -> 1/2 over 1; 1/2 -> 3/4 over 1/2) on every
    row: difference 0, interval [0, 0], fails. Smaller: share 0.2 at 0 -> 1/4 (relative 1/4, a real
    pass@1 gain, so judged) against 1/2 at both ends: -1/4, fails."""
    v, _ = _hard_judge(_hard_tables({0.0: (0, 2), 0.2: (2, 3), 0.5: (2, 3)}))
    for name in ("gain_at_0.2_above_0", "gain_at_0.2_above_0.5"):
        assert v[name].status == FAIL and v[name].value == pytest.approx(0.0)
    v, _ = _hard_judge(_hard_tables({0.0: (0, 2), 0.2: (0, 1), 0.5: (2, 3)}))
    for name in ("gain_at_0.2_above_0", "gain_at_0.2_above_0.5"):
        assert v[name].status == FAIL and v[name].value == pytest.approx(-1 / 4)


def test_hard_not_judged_when_rl_did_not_raise_the_partial_share():
    """Review 23 finding 2: share 0.2 gains 0 (c 2 -> 2) while 0.5's RL damages its base (3/4 -> 1/2:
    -1/4 over headroom 1/4, relative -1). The raw difference 0 - (-1) = 1 would pass; RL raised
    nothing at 0.2 (interval [0, 0]), so neither claim is judged, and each says why."""
    v, _ = _hard_judge(_hard_tables({0.0: (0, 0), 0.2: (2, 2), 0.5: (3, 2)}))
    for name in ("gain_at_0.2_above_0", "gain_at_0.2_above_0.5"):
        assert v[name].status == NOT_JUDGED
        assert "RL raised pass@1 on the hard ID ops at hard share 0.2" in v[name].reason
    assert v["gain_at_0.2_above_0.5"].value == pytest.approx(1.0)  # measured, not judged


def test_hard_not_judged_without_headroom():
    """Share 0.5's base solves every hard-ID problem (c = 4, pass@1 1): no headroom, its relative gain
    is undefined (NaN) and the claim against it is not judged; the claim against 0 still passes
    with 5/6 - 1/4 = 7/12."""
    v, m = _hard_judge(_hard_tables({0.0: (0, 1), 0.2: (1, QUARTERS), 0.5: (4, 4)}))
    assert v["gain_at_0.2_above_0.5"].status == NOT_JUDGED
    assert "no headroom at hard share 0.2 or 0.5" in v["gain_at_0.2_above_0.5"].reason
    assert math.isnan(m["relative_gain_0.5"])
    assert v["gain_at_0.2_above_0"].status == PASS and v["gain_at_0.2_above_0"].value == pytest.approx(7 / 12)


def test_hard_claims_not_judged_without_rl_steps_or_a_gated_base():
    """rl.steps = 0 judges nothing. Share 0.5's base failed its gate (its RL never ran): the claim
    against 0.5 is not judged and names it; the claim against 0 is still judged (7/12 as above).
    Share 0.2's base failed: both claims need it."""
    spec = {0.0: (0, 1), 0.2: (1, QUARTERS), 0.5: (2, 3)}
    v, _ = _hard_judge(_hard_tables(spec), cfg=dataclasses.replace(HARD_CFG, rl=dr.RLKnobs(steps=0)))
    assert {x.status for x in v.values()} == {NOT_JUDGED}
    assert all("rl.steps = 0" in x.reason for x in v.values())
    tables = _hard_tables(spec)
    del tables[(1, 0.5, "rl")]
    v, m = _hard_judge(tables, skipped={"seed 1, hard_share 0.5": "base failed its gate"})
    assert v["gain_at_0.2_above_0.5"].status == NOT_JUDGED
    assert "seed 1, hard_share 0.5: base failed its gate" in v["gain_at_0.2_above_0.5"].reason
    assert v["gain_at_0.2_above_0"].status == PASS and v["gain_at_0.2_above_0"].value == pytest.approx(7 / 12)
    assert "gain_pass1_0.5" not in m and "relative_gain_0.5" not in m
    v, _ = _hard_judge(_hard_tables(spec), skipped={"seed 1, hard_share 0.2": "base failed its gate"})
    assert {x.status for x in v.values()} == {NOT_JUDGED}
    assert "hard_share 0.2: base failed its gate" in v["gain_at_0.2_above_0"].reason


def test_hard_pools_the_seeds_both_shares_judged():
    """Seeds 1 and 2; seed 2's base at share 0.5 failed its gate. Against 0.5 only seed 1 counts:
    5/6 - 1/2 = 1/3. Against 0 both: share 0.2 pooled (10 + 16 * 3/4) / (12 + 12) = 11/12 (seed 2
    closes all headroom, 1/4 -> 1), share 0 1/4: 11/12 - 1/4 = 2/3, with per-row ratios 2/3, 1 against
    1/4 bounding every resample to [5/12, 3/4]."""
    cfg = dataclasses.replace(HARD_CFG, seeds=(1, 2))
    tables = {**_hard_tables({0.0: (0, 1), 0.2: (1, QUARTERS), 0.5: (2, 3)}),
              **_hard_tables({0.0: (0, 1), 0.2: (1, 4)}, seed=2)}
    v, m = _hard_judge(tables, cfg=cfg, skipped={"seed 2, hard_share 0.5": "base failed its gate"})
    assert v["gain_at_0.2_above_0.5"].status == PASS and v["gain_at_0.2_above_0.5"].value == pytest.approx(1 / 3)
    assert v["gain_at_0.2_above_0"].status == PASS and v["gain_at_0.2_above_0"].value == pytest.approx(2 / 3)
    assert 5 / 12 - 1e-12 <= m["gain_at_0.2_above_0_lo"] <= m["gain_at_0.2_above_0_hi"] <= 3 / 4 + 1e-12


def test_hard_learning_off_passes_nothing():
    """rl.lr = 0: RL tables equal the zero-step runs' on every op, at bases 0, 1/2 and 3/4: every
    gain and relative gain is 0, RL raised nothing at 0.2, so every claim is not judged."""
    cfg = dataclasses.replace(HARD_CFG, rl=dr.RLKnobs(lr=0.0))
    tables = {}
    for h, c in ((0.0, 0), (0.2, 2), (0.5, 3)):
        tables[(1, h, "base")] = tables[(1, h, "rl")] = _table({op: c for op in HARD_OPS}, 4)
    v, m = _hard_judge(tables, cfg=cfg)
    assert PASS not in {x.status for x in v.values()} and {x.status for x in v.values()} == {NOT_JUDGED}
    assert all("RL raised pass@1" in x.reason for x in v.values())
    assert all(m[f"{key}_{h:g}"] == 0.0 for key in ("gain_pass1", "gain_pass2", "relative_gain") for h in (0, 0.2, 0.5))


def test_hard_difference_is_paired_per_problem():
    """Every base at 0 (headroom 1 per row), so a resample's difference of relative gains is the
    resampled mean of per-row differences z. (a) Share 0.2's RL at c = 1,2,3,4,1,2,3,4 and share 0's
    at one less: each relative gain spreads over 1/4..1 and 0..3/4 (5/8, 3/8), but z = 1/4 on all 16
    rows: interval exactly [1/4, 1/4]. (b) Equal relative gains (1/2) on different problems: 0.2
    solves problems 0..3, share 0 problems 4..7. z = +1 on 8 rows, -1 on 8: value 0, fails. A
    resampled difference is (B - 8)/8 with B ~ Binomial(16, 1/2) rows of +1; its 2.5% quantile is
    B = 4 (P(B <= 3) = 697/65536 < 0.025 <= P(B <= 4) = 2517/65536), so the interval is [-1/2, 1/2],
    within one step 1/8 for 2000 resamples. (0.2's absolute gain, B/16, has a 2.5% quantile 4/16 > 0:
    the claim is judged.)"""
    up = np.array([1, 2, 3, 4, 1, 2, 3, 4])
    tables = {**_hard_tables({0.2: (0, up), 0.0: (0, up - 1), 0.5: (2, 3)})}
    v, m = _hard_judge(tables)
    assert m["relative_gain_0.2"] == pytest.approx(5 / 8) and m["relative_gain_0"] == pytest.approx(3 / 8)
    assert v["gain_at_0.2_above_0"].status == PASS and v["gain_at_0.2_above_0"].value == pytest.approx(1 / 4)
    assert m["gain_at_0.2_above_0_lo"] == pytest.approx(1 / 4) and m["gain_at_0.2_above_0_hi"] == pytest.approx(1 / 4)

    first, second = np.array([4] * 4 + [0] * 4), np.array([0] * 4 + [4] * 4)
    v, m = _hard_judge(_hard_tables({0.2: (0, first), 0.0: (0, second), 0.5: (2, 3)}))
    assert m["relative_gain_0.2"] == pytest.approx(1 / 2) and m["relative_gain_0"] == pytest.approx(1 / 2)
    assert v["gain_at_0.2_above_0"].status == FAIL and v["gain_at_0.2_above_0"].value == pytest.approx(0.0)
    cdf = np.cumsum([math.comb(16, b) for b in range(17)]) / 2 ** 16
    assert cdf[3] < 0.025 <= cdf[4] and cdf[11] < 0.975 <= cdf[12]
    lo_b, hi_b = (4 - 8) / 8, (12 - 8) / 8
    assert lo_b - 1 / 8 <= m["gain_at_0.2_above_0_lo"] <= lo_b + 1 / 8
    assert hi_b - 1 / 8 <= m["gain_at_0.2_above_0_hi"] <= hi_b + 1 / 8


# ---------------------------------------------------------------- paired_ratio_gain on fractions


def test_paired_ratio_gain_with_fractional_denominators():
    """num [0.1, 0.1] over den [0.2, 0.2]: 0.2 / 0.4 = 0.5 (max(total, 1) would give 0.2), against
    0 / 2 = 0: difference 0.5, every resample equal, interval [0.5, 0.5]; the same through the
    cluster bootstrap (rows of two seeds). num [0.1, 0.3] over [0.2, 0.2]: 0.4 / 0.4 = 1, resamples
    within the per-row ratios [0.5, 1.5]. Counts: [1, 2] over [4, 4]: 3/8. No denominator: NaN."""
    g = dr.paired_ratio_gain([0.1, 0.1], [0.2, 0.2], [0.0, 0.0], [1.0, 1.0])
    assert (g.a, g.b, g.diff) == pytest.approx((0.5, 0.0, 0.5)) and (g.lo, g.hi) == pytest.approx((0.5, 0.5))
    g = dr.paired_ratio_gain([0.1] * 4, [0.2] * 4, [0.0] * 4, [1.0] * 4, clusters=[1, 1, 2, 2])
    assert g.diff == pytest.approx(0.5) and (g.lo, g.hi) == pytest.approx((0.5, 0.5))
    g = dr.paired_ratio_gain([0.1, 0.3], [0.2, 0.2], [0.0, 0.0], [1.0, 1.0])
    assert g.a == pytest.approx(1.0) and 0.5 - 1e-12 <= g.lo <= g.hi <= 1.5 + 1e-12
    g = dr.paired_ratio_gain([1, 2], [4, 4], [0, 0], [1, 1])
    assert g.a == pytest.approx(3 / 8)
    g = dr.paired_ratio_gain([0.0, 0.0], [0.0, 0.0], [0.1, 0.1], [0.2, 0.2])
    assert math.isnan(g.a) and math.isnan(g.diff) and g.b == pytest.approx(0.5)


# ---------------------------------------------------------------- hard_share_mix, gated_ops, the gate


def test_hard_share_mix_by_hand():
    """(0.2, 0.3, 0.5) keeps easy:medium = 2:3 over 1 - h: h = 0.2 -> 0.8 * (0.4, 0.6) = (0.32, 0.48);
    h = 0.5 -> 0.5 * (0.4, 0.6) = (0.2, 0.3), the main mix itself; h = 0 -> (0.4, 0.6, 0)."""
    assert dr.hard_share_mix((0.2, 0.3, 0.5), 0.2) == (0.32, 0.48, 0.2)
    assert dr.hard_share_mix((0.2, 0.3, 0.5), 0.5) == (0.2, 0.3, 0.5)
    assert dr.hard_share_mix((0.2, 0.3, 0.5), 0.0) == (0.4, 0.6, 0.0)
    with pytest.raises(ConfigError):
        dr.hard_share_mix((0.0, 0.0, 1.0), 0.2)
    assert dhe._bases(dhe.Config())[0.0].mix == (0.4, 0.6, 0.0)


def test_gated_ops_leave_out_a_band_with_no_share():
    """Default bands easy 2, medium 3..4, hard 5: all drawn -> 2..5; no hard share -> 2..4; with
    medium_max 3 and no medium share -> easy 2 and hard 4..5: [2, 4, 5]."""
    assert dr.BaseSpec().gated_ops == [2, 3, 4, 5]
    assert dr.BaseSpec(mix=(0.4, 0.6, 0.0)).gated_ops == [2, 3, 4]
    assert dr.BaseSpec(mix=(0.5, 0.0, 0.5), medium_max=3).gated_ops == [2, 4, 5]


def _gate_run(c_by_op: dict, row=None) -> Run:
    arrays = {f"final/eval/{k}": v for k, v in _table(c_by_op, 0).items()}
    return Run(stage="pretrain", row=row or {}, arrays=arrays)


def test_gate_ignores_an_op_that_was_not_pretrained():
    """Ops 2..4 all correct (pass@1 = pass@2 = 1), op 5 all wrong (0): the base without a hard share
    passes (op 5 not gated), the default one fails on op 5. With op 4 at c = 1 (pass@1 1/4 < 0.3)
    both fail."""
    run = _gate_run({2: S, 3: S, 4: S})
    no_hard = dataclasses.replace(BASE, mix=(0.4, 0.6, 0.0))
    assert dr.gate(no_hard, run).passed
    assert dr.gate(no_hard, run).measured["pass1"][5] == 0.0
    assert not dr.gate(BASE, run).passed
    worse = _gate_run({2: S, 3: S, 4: 1})
    assert not dr.gate(no_hard, worse).passed and not dr.gate(BASE, worse).passed


def test_gate_on_explicit_ops_and_its_requirement_text():
    """Ops 2..3 all correct, 4..5 all wrong: gated on ops [2, 3] the base passes, by default (2..5)
    it fails; the record still holds op 4's pass@1 (0). Requirement text: contiguous ops as a range,
    others listed: the no-medium base gates [2, 4, 5] (op 3 right or wrong does not matter)."""
    run = _gate_run({2: S, 3: S})
    g = dr.gate(BASE, run, ops=[2, 3])
    assert g.passed and g.measured["pass1"][4] == 0.0 and "ID op 2..3 (" in g.requirement
    assert not dr.gate(BASE, run).passed and "every ID op 2..5 (" in dr.gate(BASE, run).requirement
    no_medium = dataclasses.replace(BASE, mix=(0.5, 0.0, 0.5), medium_max=3)
    req = dr.gate_requirement(no_medium)
    assert "pre-trained ID op 2, 4, 5 (" in req and "2..5" not in req
    assert "ID op 2, 4 (" in dr.gate_requirement(BASE, [2, 4])
    assert dr.gate(no_medium, _gate_run({2: S, 4: S, 5: S})).passed
    assert not dr.gate(no_medium, _gate_run({2: S, 3: S, 4: S})).passed


def test_hard_exposure_gates_every_share_on_easy_and_medium_only():
    """Ops 2..4 all correct, the hard ID ops 5..6 all wrong: the experiment's pre-training stage gates
    the share-0.2 base on gate_ops 2..4 and passes it, while that base's own gated_ops (2..6, it
    draws hard problems) would fail it."""
    run = _gate_run({2: S, 3: S, 4: S}, row={"hard_share": 0.2})
    stage = dhe.stages(HARD_CFG)[0]
    g = stage.gate(run)
    assert g.passed and "ID op 2..4 (" in g.requirement
    assert dhe._bases(HARD_CFG)[0.2].gated_ops == [2, 3, 4, 5, 6]
    assert not dr.gate(dhe._bases(HARD_CFG)[0.2], run).passed
