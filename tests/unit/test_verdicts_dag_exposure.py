"""The claims of dag-context-exposure and dag-pretrain-hard-exposure on hand-built tables (issue 22).

Zhang, Neubig and Yue (arXiv 2512.07783), Observations 2, 5 (Fig. 4: RL transfers to a surface
context only if pre-training saw it) and 7 (Fig. 15: RL gains most at partial pre-training exposure
of the hard ID ops). Every claim gets a case where it must pass, one where it must fail and one
where it is not judged (handbook); plus the pieces of `dag_runs` the second experiment adds
(`hard_share_mix`, `BaseSpec.gated_ops`, the gate on pre-trained ops only).

Construction: [O, N, S] boolean tables over ops 2..8, N = 8 problems, n = S = 4 samples, k_max = 2.
A problem with c correct samples has unbiased pass@1 = c/4 and pass@2 = 1 - C(4 - c, 2)/C(4, 2):
c = 0 -> 0, 1 -> 1/2, 2 -> 5/6, 3 or 4 -> 1. A gain that is the same on every problem has the
bootstrap interval [gain, gain]; one that varies lies within [min, max] of the per-problem gains
(a resampled mean never leaves them), which is all a pass / fail needs. Ops outside the measured
band are given values that differ between arms, so a verdict that read them would move.
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


def _table(band_ops, band_c, other_c: int = 0) -> dict:
    """ops 2..8: every op of `band_ops` gets band_c correct samples per problem (an int, or one count
    per problem), every other op `other_c`; the three verifier keys alike."""
    perfect = np.zeros((len(OPS), N, S), bool)
    counts = np.broadcast_to(np.asarray(band_c), (N,))
    for i, op in enumerate(OPS):
        for n in range(N):
            perfect[i, n, :counts[n] if op in band_ops else other_c] = True
    return {"perfect": perfect, "answer_correct": perfect.copy(), "strict": perfect.copy(),
            "ops": np.asarray(OPS, np.int64)}


# ---------------------------------------------------------------- dag-context-exposure

CTX_CFG = dce.Config(base=BASE, shares=(0.0, 0.01), table_samples=S, seeds=(1,))
EDGE = (6, 7)
BANDS = dr.Bands(id=(2, 5), edge=EDGE, hard=(8, 8), pass1={}, passk={}, rule="by hand")
HALF = np.array([2, 2, 2, 2, 3, 3, 3, 3])  # per-problem counts: 2 on problems 0..3, 3 on 4..7


def _ctx_tables(share: float, a: tuple, b: tuple, *, seed: int = 1, edge=EDGE, b_other=(0, 0)) -> dict:
    """One seed and share: a = (base c, rl c) on the edge ops in context A, b likewise in context B;
    b_other = (base, rl) counts on every op off the edge in context B."""
    ops = range(edge[0], edge[1] + 1)
    return {(seed, share, "base", 0): _table(ops, a[0]), (seed, share, "rl", 0): _table(ops, a[1]),
            (seed, share, "base", 1): _table(ops, b[0], b_other[0]), (seed, share, "rl", 1): _table(ops, b[1], b_other[1])}


def _ctx_judge(tables: dict, cfg=CTX_CFG, skipped=None, bands_of=None):
    bands_of = bands_of or {(s, float(x)): BANDS for s in cfg.seeds for x in cfg.shares}
    return dce._verdicts(cfg, tables, bands_of, skipped or {})


def test_context_config_and_claim_names():
    """Shares below transfer_min_share (0.01) claim no transfer; at or above it, transfer."""
    CTX_CFG.validate()
    assert dce._claim(CTX_CFG, 0.0) == "no_transfer_at_0" and dce._claim(CTX_CFG, 0.001) == "no_transfer_at_0.001"
    assert dce._claim(CTX_CFG, 0.01) == "transfers_at_0.01" and dce._claim(CTX_CFG, 0.1) == "transfers_at_0.1"


def test_context_claims_pass():
    """Context A rises c 1 -> 2 on both edge ops (pass@2 1/2 -> 5/6, +1/3 on every problem: A's
    interval [1/3, 1/3] > 0). Share 0.01: B rises 1 -> HALF: per-problem gains 5/6 - 1/2 = 1/3 on
    problems 0..3 and 1 - 1/2 = 1/2 on 4..7, mean 5/12, interval within [1/3, 1/2] > 0: transfers.
    Share 0: B stays at c = 1 on the edge (gain 0, interval [0, 0]: upper end 0 < 0.05) while RL
    lifts every other B op 0 -> 4 (not measured): no transfer passes with value 0."""
    tables = {**_ctx_tables(0.01, (1, 2), (1, HALF)), **_ctx_tables(0.0, (1, 2), (1, 1), b_other=(0, 4))}
    v, m = _ctx_judge(tables)
    t = v["transfers_at_0.01"]
    assert t.status == PASS
    assert t.value == pytest.approx(((_p2(2) - _p2(1)) + (_p2(3) - _p2(1))) / 2) and t.value == pytest.approx(5 / 12)
    assert 1 / 3 - 1e-12 <= m["gain_B_0.01_lo"] <= m["gain_B_0.01_hi"] <= 1 / 2 + 1e-12
    assert m["gain_A_0.01"] == pytest.approx(1 / 3) and m["gain_A_0.01_lo"] == pytest.approx(1 / 3)
    assert m["base_B_0.01"] == pytest.approx(1 / 2) and m["rl_B_0.01"] == pytest.approx((5 / 6 + 1) / 2)
    nt = v["no_transfer_at_0"]
    assert nt.status == PASS and nt.value == pytest.approx(0.0)  # the value is the gain's upper end
    assert nt.margin == pytest.approx(0.05)


def test_context_claims_fail():
    """Share 0.01: B flat (c = 1 both arms) while A rises 1 -> 2: gain 0, interval [0, 0], not above
    0: fails. Share 0: B rises 1 -> 2 on every edge problem, +1/3, upper end 1/3 >= 0.05: fails."""
    tables = {**_ctx_tables(0.01, (1, 2), (1, 1)), **_ctx_tables(0.0, (1, 2), (1, 2))}
    v, _ = _ctx_judge(tables)
    assert v["transfers_at_0.01"].status == FAIL and v["transfers_at_0.01"].value == pytest.approx(0.0)
    nt = v["no_transfer_at_0"]
    assert nt.status == FAIL and nt.value == pytest.approx(1 / 3) and nt.margin == pytest.approx(0.05 - 1 / 3)


def test_no_transfer_is_an_equivalence_test_against_flat_margin():
    """B rises 2 -> 3 on every edge problem: pass@2 5/6 -> 1, +1/6 = 0.1667. Below flat_margin 0.2 it
    counts as flat (passes); above the default 0.05 it does not (fails)."""
    tables = _ctx_tables(0.0, (1, 2), (2, 3))
    v, _ = _ctx_judge(tables, cfg=dataclasses.replace(CTX_CFG, flat_margin=0.2))
    nt = v["no_transfer_at_0"]
    assert nt.status == PASS and nt.value == pytest.approx(1 / 6) and nt.margin == pytest.approx(0.2 - 1 / 6)
    v, _ = _ctx_judge(tables)
    assert v["no_transfer_at_0"].status == FAIL and v["no_transfer_at_0"].value == pytest.approx(1 / 6)


def test_context_claims_not_judged_when_rl_did_not_learn_context_a():
    """A flat (c = 1 both arms: A's interval [0, 0]): a flat or rising B says nothing about transfer."""
    tables = {**_ctx_tables(0.01, (1, 1), (1, 2)), **_ctx_tables(0.0, (1, 1), (1, 1))}
    v, _ = _ctx_judge(tables)
    for name in ("transfers_at_0.01", "no_transfer_at_0"):
        assert v[name].status == NOT_JUDGED
        assert "precondition failed" in v[name].reason and "context A" in v[name].reason
    assert v["transfers_at_0.01"].value == pytest.approx(1 / 3)  # measured, not judged


def test_context_claims_not_judged_without_rl_steps_or_a_judged_base():
    """rl.steps = 0 judges nothing. A share whose base is skipped is not judged and names the reason,
    even though its tables are there; the other share is still judged."""
    tables = {**_ctx_tables(0.01, (1, 2), (1, 2)), **_ctx_tables(0.0, (1, 2), (1, 1))}
    v, _ = _ctx_judge(tables, cfg=dataclasses.replace(CTX_CFG, rl=dr.RLKnobs(reward="strict", steps=0)))
    assert {x.status for x in v.values()} == {NOT_JUDGED}
    assert "rl.steps = 0" in v["transfers_at_0.01"].reason
    v, _ = _ctx_judge(tables, skipped={"seed 1, b_share 0.01": "base has no edge band"})
    assert v["transfers_at_0.01"].status == NOT_JUDGED
    assert "no judged seed at b_share 0.01" in v["transfers_at_0.01"].reason
    assert "seed 1, b_share 0.01: base has no edge band" in v["transfers_at_0.01"].reason
    assert v["no_transfer_at_0"].status == PASS


def test_context_gain_pools_seeds_on_each_seeds_own_edge_band():
    """Seed 1: edge 6..7, B gain +1/3 (c 1 -> 2). Seed 2: edge 7..8, B gain +1/2 (c 1 -> 3), and c = 0
    on op 6 in both arms. Pooled rows: 16 of 1/3 and 16 of 1/2: mean 5/12. With seed 2's base skipped
    only seed 1 counts: 1/3 exactly."""
    cfg = dataclasses.replace(CTX_CFG, shares=(0.01,), seeds=(1, 2))
    tables = {**_ctx_tables(0.01, (1, 2), (1, 2)), **_ctx_tables(0.01, (1, 2), (1, 3), seed=2, edge=(7, 8))}
    bands_of = {(1, 0.01): BANDS, (2, 0.01): dataclasses.replace(BANDS, edge=(7, 8), hard=None)}
    v, m = _ctx_judge(tables, cfg=cfg, bands_of=bands_of)
    assert v["transfers_at_0.01"].status == PASS
    assert v["transfers_at_0.01"].value == pytest.approx((16 * (1 / 3) + 16 * (1 / 2)) / 32)
    v, _ = _ctx_judge(tables, cfg=cfg, bands_of=bands_of, skipped={"seed 2, b_share 0.01": "base failed its gate"})
    assert v["transfers_at_0.01"].status == PASS and v["transfers_at_0.01"].value == pytest.approx(1 / 3)


def test_context_learning_off_passes_nothing():
    """rl.lr = 0: every RL table equals its base (A and B at c = 1): A did not rise, nothing judged."""
    cfg = dataclasses.replace(CTX_CFG, rl=dr.RLKnobs(reward="strict", lr=0.0))
    tables = {**_ctx_tables(0.01, (1, 1), (1, 1)), **_ctx_tables(0.0, (1, 1), (1, 1))}
    v, m = _ctx_judge(tables, cfg=cfg)
    assert set(v) == {"transfers_at_0.01", "no_transfer_at_0"}
    assert PASS not in {x.status for x in v.values()}
    assert {x.status for x in v.values()} == {NOT_JUDGED}
    assert m["gain_A_0"] == 0.0 and m["gain_B_0.01"] == 0.0


# ---------------------------------------------------------------- dag-pretrain-hard-exposure

HARD_BASE = dataclasses.replace(BASE, id_hi=6)  # hard ID band medium_max + 1 .. id_hi = 5..6
HARD_CFG = dhe.Config(base=HARD_BASE, hard_shares=(0.0, 0.2, 0.5), table_samples=S, seeds=(1,))
HARD_OPS = (5, 6)
QUARTERS = np.array([3, 3, 3, 3, 4, 4, 4, 4])


def _hard_tables(gains: dict, seed: int = 1) -> dict:
    """gains[h] = (base c, rl c) on the hard ID ops 5..6; the RL table also has every other op at
    c = 4 and the base at c = 0 (ops 2..4 and 7..8 are not measured)."""
    out = {}
    for h, (cb, cr) in gains.items():
        out[(seed, h, "base")] = _table(HARD_OPS, cb, 0)
        out[(seed, h, "rl")] = _table(HARD_OPS, cr, 4)
    return out


def _hard_judge(tables: dict, cfg=HARD_CFG, skipped=None):
    return dhe._verdicts(cfg, tables, skipped or {})


def test_hard_config_band_and_claim_names():
    HARD_CFG.validate()
    assert dhe.hard_id_ops(HARD_BASE) == [5, 6] and dhe.hard_id_ops(BASE) == [5]
    assert [n for n, _, _ in dhe.claim_names(HARD_CFG)] == ["gain_at_0.2_above_0", "gain_at_0.2_above_0.5"]


def test_hard_gain_at_partial_share_above_both_ends_passes():
    """pass@1 gains: share 0.2: base 1/4 -> RL 3/4 on problems 0..3, 1 on 4..7: +1/2 and +3/4, mean
    5/8; share 0: 0 -> 1/4, +1/4; share 0.5: 3/4 -> 1, +1/4. Differences per problem 1/4 and 1/2:
    value 5/8 - 1/4 = 3/8 for both claims, interval within [1/4, 1/2] > 0. Share 0.2's headroom
    closed: 5/8 / (1 - 1/4) = 5/6; its pass@2 gain: 1/2 -> 1 on every problem, +1/2."""
    v, m = _hard_judge(_hard_tables({0.0: (0, 1), 0.2: (1, QUARTERS), 0.5: (3, 4)}))
    for name in ("gain_at_0.2_above_0", "gain_at_0.2_above_0.5"):
        assert v[name].status == PASS and v[name].value == pytest.approx(3 / 8)
        assert 1 / 4 - 1e-12 <= m[f"{name}_lo"] <= m[f"{name}_hi"] <= 1 / 2 + 1e-12
    assert m["gain_pass1_0.2"] == pytest.approx(5 / 8) and m["base_pass1_0.2"] == pytest.approx(1 / 4)
    assert m["headroom_closed_pass1_0.2"] == pytest.approx(5 / 6)
    assert m["gain_pass2_0.2"] == pytest.approx(_p2(4) - _p2(1))
    assert m["gain_pass1_0"] == pytest.approx(1 / 4) and m["gain_pass1_0.5"] == pytest.approx(1 / 4)


def test_hard_gain_tie_or_smaller_fails():
    """Tie: every share gains +1/4 on every problem: difference 0, interval [0, 0], fails. Smaller:
    share 0.2 gains +1/4 (2 -> 3), share 0 gains +1/2 (0 -> 2): -1/4, fails; share 0.5 +1/4 ties."""
    v, _ = _hard_judge(_hard_tables({0.0: (0, 1), 0.2: (2, 3), 0.5: (3, 4)}))
    for name in ("gain_at_0.2_above_0", "gain_at_0.2_above_0.5"):
        assert v[name].status == FAIL and v[name].value == pytest.approx(0.0)
    v, _ = _hard_judge(_hard_tables({0.0: (0, 2), 0.2: (2, 3), 0.5: (3, 4)}))
    assert v["gain_at_0.2_above_0"].status == FAIL and v["gain_at_0.2_above_0"].value == pytest.approx(-1 / 4)
    assert v["gain_at_0.2_above_0.5"].status == FAIL and v["gain_at_0.2_above_0.5"].value == pytest.approx(0.0)


def test_hard_claims_not_judged_without_rl_steps_or_a_gated_base():
    """rl.steps = 0 judges nothing. Share 0.5's base failed its gate (its RL never ran): the claim
    against 0.5 is not judged and names it; the claim against 0 is still judged (3/8 as above).
    Share 0.2's base failed: both claims need it."""
    gains = {0.0: (0, 1), 0.2: (1, QUARTERS), 0.5: (3, 4)}
    v, _ = _hard_judge(_hard_tables(gains), cfg=dataclasses.replace(HARD_CFG, rl=dr.RLKnobs(steps=0)))
    assert {x.status for x in v.values()} == {NOT_JUDGED}
    assert "rl.steps = 0" in v["gain_at_0.2_above_0"].reason
    tables = _hard_tables(gains)
    del tables[(1, 0.5, "rl")]
    v, m = _hard_judge(tables, skipped={"seed 1, hard_share 0.5": "base failed its gate"})
    assert v["gain_at_0.2_above_0.5"].status == NOT_JUDGED
    assert "seed 1, hard_share 0.5: base failed its gate" in v["gain_at_0.2_above_0.5"].reason
    assert v["gain_at_0.2_above_0"].status == PASS and v["gain_at_0.2_above_0"].value == pytest.approx(3 / 8)
    assert "gain_pass1_0.5" not in m
    v, _ = _hard_judge(_hard_tables(gains), skipped={"seed 1, hard_share 0.2": "base failed its gate"})
    assert {x.status for x in v.values()} == {NOT_JUDGED}
    assert "hard_share 0.2: base failed its gate" in v["gain_at_0.2_above_0"].reason


def test_hard_learning_off_passes_nothing():
    """rl.lr = 0: RL tables equal the bases' on every op: every gain and difference 0."""
    cfg = dataclasses.replace(HARD_CFG, rl=dr.RLKnobs(lr=0.0))
    tables = {}
    for h, c in ((0.0, 0), (0.2, 2), (0.5, 3)):
        tables[(1, h, "base")] = tables[(1, h, "rl")] = _table(HARD_OPS, c, 4)
    v, _ = _hard_judge(tables, cfg=cfg)
    assert PASS not in {x.status for x in v.values()}
    assert all(x.value == 0.0 for x in v.values())


def test_hard_difference_is_paired_per_problem():
    """(a) Bases that differ per problem: share 0.2's base c = 0,1,2,3,0,1,2,3 with RL one higher
    (+1/4 everywhere); share 0's base c = 3,2,1,0,... with RL equal (+0). Each arm's pass@1 spreads
    over 0..1, but the per-problem difference of gains is 1/4 on all 16 rows: interval exactly
    [1/4, 1/4]. (b) Equal mean gains, on different problems: share 0.2 gains +1/2 (2 -> 4) on
    problems 0..3, share 0 gains +1/2 on 4..7. Paired differences are +1/2 on 8 rows and -1/2 on 8:
    value 0, fails. A resampled mean is (B - 8)/16 with B ~ Binomial(16, 1/2) rows of +1/2; its 2.5%
    quantile is B = 4 (P(B <= 3) = 697/65536 < 0.025 <= P(B <= 4) = 2517/65536), so the interval is
    [-1/4, 1/4], within one step 1/16 for 2000 resamples."""
    up = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    tables = {(1, 0.2, "base"): _table(HARD_OPS, up), (1, 0.2, "rl"): _table(HARD_OPS, up + 1),
              (1, 0.0, "base"): _table(HARD_OPS, 3 - up), (1, 0.0, "rl"): _table(HARD_OPS, 3 - up),
              **_hard_tables({0.5: (3, 3)})}
    v, m = _hard_judge(tables)
    assert v["gain_at_0.2_above_0"].status == PASS and v["gain_at_0.2_above_0"].value == pytest.approx(1 / 4)
    assert m["gain_at_0.2_above_0_lo"] == pytest.approx(1 / 4) and m["gain_at_0.2_above_0_hi"] == pytest.approx(1 / 4)

    first, second = np.array([2] * 4 + [4] * 4), np.array([4] * 4 + [2] * 4)
    tables = {(1, 0.2, "base"): _table(HARD_OPS, 2), (1, 0.2, "rl"): _table(HARD_OPS, second),
              (1, 0.0, "base"): _table(HARD_OPS, 2), (1, 0.0, "rl"): _table(HARD_OPS, first),
              **_hard_tables({0.5: (3, 3)})}
    v, m = _hard_judge(tables)
    assert m["gain_pass1_0.2"] == pytest.approx(1 / 4) and m["gain_pass1_0"] == pytest.approx(1 / 4)
    assert v["gain_at_0.2_above_0"].status == FAIL and v["gain_at_0.2_above_0"].value == pytest.approx(0.0)
    cdf = np.cumsum([math.comb(16, b) for b in range(17)]) / 2 ** 16
    assert cdf[3] < 0.025 <= cdf[4] and cdf[11] < 0.975 <= cdf[12]
    lo_b, hi_b = (4 - 8) / 16, (12 - 8) / 16
    assert lo_b - 1 / 16 <= m["gain_at_0.2_above_0_lo"] <= lo_b + 1 / 16
    assert hi_b - 1 / 16 <= m["gain_at_0.2_above_0_hi"] <= hi_b + 1 / 16


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
    """Default bands easy 2, medium 3..4, hard 5: all drawn -> 2..5; no hard share -> 2..4."""
    assert dr.BaseSpec().gated_ops == [2, 3, 4, 5]
    assert dr.BaseSpec(mix=(0.4, 0.6, 0.0)).gated_ops == [2, 3, 4]


def _gate_run(c_by_op: dict) -> Run:
    table = _table([], 0)
    for op, c in c_by_op.items():
        table["perfect"][OPS.index(op), :, :c] = True
    arrays = {f"final/eval/{k}": v for k, v in table.items()}
    return Run(stage="pretrain", row={}, arrays=arrays)


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
