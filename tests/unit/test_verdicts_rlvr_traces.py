"""The claims of rlvr-coverage and rlvr-distillation on hand-built runs: each passes where its effect is
built in, fails where it is absent (the arms identical: what SFT steps 0 or learning off gives), and is
not judged without training, without a usable seed, or without its positive control.

Runs are built directly (per-problem correct counts of n = 8 samples on 20 ID problems, per-sample
base NLLs), so every expected number follows from the values written here, derived in each docstring
with the unbiased pass@k = 1 - C(n - c, k) / C(n, k) (pass@k = k/8 when c = 1; 1 when c >= 8 - k + 1).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from theoryrl.core.stages import Run
from theoryrl.core.verdicts import FAIL, NOT_JUDGED, PASS
from theoryrl.experiments import rlvr_coverage as cov
from theoryrl.experiments import rlvr_distillation as dis
from theoryrl.rl import rlvr_metrics as rm
from theoryrl.rl import rlvr_runs as rr

N, n = 20, 8
KNOBS = rr.RLVRKnobs(steps=4, checkpoints=(4,), prompts_per_step=2, train_problems=16, id_problems=N, ood_problems=4,
                     eval_samples=n, k_max=n, keep_samples=2)
SPLITS = rr.Splits(train=(5, 6), ood=None, pass1={}, passk={}, rule="hand-built")


def _run(arm, counts) -> Run:
    c = np.asarray(counts, np.int64)[None]  # one checkpoint
    return Run(stage="rlvr", row={"seed": 42, "arm": arm},
               arrays={"final/id/t0/perfect_CxN": c, "final/id/t0/answer_correct_CxN": c,
                       "final/id/t0/entropy_CxN": np.zeros(c.shape)})


def _col(counts: dict, seeds=(42,)) -> rm.Collected:
    return rm.Collected(runs={(42, a): _run(a, c) for a, c in counts.items()}, seeds=list(seeds),
                        skipped={} if seeds else {42: "base failed its gate"}, splits={42: SPLITS} if seeds else {})


def _statuses(verdicts) -> dict:
    return {k: v.status for k, v in verdicts.items()}


def _counts(first: int, value: int, rest: int = 0) -> np.ndarray:
    """Problems 0..first-1 have `value` correct samples, the others `rest`."""
    return np.where(np.arange(N) < first, value, rest)


# ---------------------------------------------------------------- rlvr-coverage


def _ppl_run(base_nll, rl_nll, latest_nll, earliest_nll=0.05) -> Run:
    def full(x, k):
        return np.broadcast_to(np.asarray(x, float).reshape(-1, 1) if np.ndim(x) else x, (N, k)).copy()

    arrays = {"final/base_samples/nll_NxK": full(base_nll, 2), "final/rl_samples/nll_NxK": full(rl_nll, 2),
              "final/gold_latest/nll_NxK": full(latest_nll, 1), "final/gold_earliest/nll_NxK": full(earliest_nll, 1)}
    return Run(stage="ppl", row={"seed": 42}, arrays=arrays)


# RL solves problems 0..9 every time (c = 8), the base solves 0..15 with c = 2: RL-only 0, base-only 6
# (problems 10..15), D = 6/20 = 0.3; RL's pass@1 gain = 10 (1 - 2/8) / 20 - 6 (2/8) / 20 = 0.375 - 0.075 = 0.3.
WITHIN = {"base": _counts(16, 2), "grpo": _counts(10, 8)}


def test_coverage_passes_where_built_in():
    """Base NLL per token: base samples 0.10, RL samples 0.08, latest-order gold 0.50: d_RL = -0.02
    and d_GT = 0.40 on every problem (intervals are points), d_RL / d_GT = -0.05 < 0.5."""
    v, m, arrays = cov._judge(cov.Config(rlvr=KNOBS), _col(WITHIN), {42: _ppl_run(0.10, 0.08, 0.50)})
    assert _statuses(v) == {c: PASS for c in cov.CLAIMS}
    assert (m["id_only_base"], m["id_only_rl"], m["id_solved_base"], m["id_solved_rl"]) == (6, 0, 16, 10)
    assert m["id_only_base_minus_only_rl_share"] == pytest.approx(0.3)
    assert m["id_rl_minus_base_pass1"] == pytest.approx(0.3)
    assert (m["ppl_d_rl"], m["ppl_d_gt"], m["ppl_ratio"]) == pytest.approx((-0.02, 0.40, -0.05))
    assert (m["ppl_d_rl_lo"], m["ppl_d_rl_hi"]) == pytest.approx((-0.02, -0.02))
    assert m["gold_latest_median_ppl"] == pytest.approx(np.exp(0.5))
    assert m["gold_latest_minus_earliest_nll"] == pytest.approx(0.45)  # 0.50 - 0.05 on every problem
    # histograms (bins 0, (0,.1], (.1,.2], (.2,.3], ..., (.9,1), 1): base c/n = 2/8 = 0.25 in bin 3 for 16, 0 for 4
    np.testing.assert_array_equal(arrays["id_base_hist"], [4, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(arrays["id_grpo_hist"], [10] + [0] * 10 + [10])
    assert (m["id_grpo_share_acc0"], m["id_grpo_share_acc1"]) == (0.5, 0.5)


def test_containment_fails_when_rl_solves_what_the_base_cannot():
    """RL solves 0..15 every time (c = 8, pass@1 0.8, raised over the base's 0.5), the base 0..9 (c = 8):
    RL-only 6, base-only 0, D = -0.3."""
    v, m, _ = cov._judge(cov.Config(rlvr=KNOBS), _col({"base": _counts(10, 8), "grpo": _counts(16, 8)}),
                         {42: _ppl_run(0.1, 0.08, 0.5)})
    assert v["rl_solvable_within_base"].status == FAIL
    assert m["id_only_base_minus_only_rl_share"] == pytest.approx(-0.3)


def test_neither_claim_is_judged_with_identical_arms():
    """Learning off: RL = base, D = 0 with a point interval and pass@1 gain 0: RL did not raise pass@1,
    which both claims presume (a model that learned nothing, or collapsed, solves nothing new)."""
    same = {"base": _counts(16, 2), "grpo": _counts(16, 2)}
    v, m, _ = cov._judge(cov.Config(rlvr=KNOBS), _col(same), {42: _ppl_run(0.1, 0.1, 0.5)})
    assert _statuses(v) == {"rl_solvable_within_base": NOT_JUDGED, "rl_samples_low_base_ppl": NOT_JUDGED}
    assert "RL did not learn" in v["rl_samples_low_base_ppl"].reason
    assert m["id_only_base_minus_only_rl_share"] == 0.0


def test_ppl_fails_when_rl_samples_are_as_unlikely_as_the_latest_traces():
    """RL samples at 0.50 like the latest-order traces: d_RL = 0.40 > 0 on every problem."""
    v, m, _ = cov._judge(cov.Config(rlvr=KNOBS), _col(WITHIN), {42: _ppl_run(0.10, 0.50, 0.50)})
    assert v["rl_samples_low_base_ppl"].status == FAIL
    assert m["ppl_d_rl_lo"] == pytest.approx(0.40) and m["ppl_ratio"] == pytest.approx(1.0)


def test_ppl_fails_when_not_far_below_the_latest_traces():
    """d_RL per problem alternates +0.5, -0.4 (mean 0.05, its interval straddles 0: 'not higher'), but
    d_GT = 0.10, so d_RL / d_GT = 0.5 and its interval's upper end is far above far_ratio = 0.5."""
    rl = 0.5 + np.where(np.arange(N) % 2 == 0, 0.5, -0.4)
    v, m, _ = cov._judge(cov.Config(rlvr=KNOBS), _col(WITHIN), {42: _ppl_run(0.5, rl, 0.6)})
    assert v["rl_samples_low_base_ppl"].status == FAIL
    assert m["ppl_d_rl_lo"] < 0 < m["ppl_d_rl_hi"]
    assert m["ppl_ratio"] == pytest.approx(0.5) and m["ppl_ratio_hi"] > 1.0


def test_ppl_is_not_judged_without_its_positive_control():
    """Latest-order traces as likely as the base's own samples (d_GT = 0): the ruler sees nothing."""
    v, _, _ = cov._judge(cov.Config(rlvr=KNOBS), _col(WITHIN), {42: _ppl_run(0.10, 0.08, 0.10)})
    assert v["rl_samples_low_base_ppl"].status == NOT_JUDGED
    assert "positive control" in v["rl_samples_low_base_ppl"].reason
    assert v["rl_solvable_within_base"].status == PASS


@pytest.mark.parametrize("case", ["no seed", "steps 0", "no ppl run"])
def test_coverage_not_judged_without_training_seed_or_scores(case):
    knobs = dataclasses.replace(KNOBS, steps=0, checkpoints=(1,)) if case == "steps 0" else KNOBS
    col = _col(WITHIN, seeds=() if case == "no seed" else (42,))
    ppl = {} if case == "no ppl run" else {42: _ppl_run(0.1, 0.08, 0.5)}
    v, m, _ = cov._judge(cov.Config(rlvr=knobs), col, ppl)
    assert _statuses(v) == {c: NOT_JUDGED for c in cov.CLAIMS} and m == {}


def test_ppl_stats_average_samples_per_problem_first():
    """K = 2 base samples per problem with NLL (0.1, 0.3) (mean 0.2) and RL (0.0, 0.2) (mean 0.1),
    gold 0.6: d_RL = -0.1, d_GT = 0.4, ratio -0.25."""
    st = cov.ppl_stats(np.tile([0.1, 0.3], (N, 1)), np.tile([0.0, 0.2], (N, 1)), np.full(N, 0.6))
    assert (st["d_rl"], st["d_gt"], st["ratio"]) == pytest.approx((-0.1, 0.4, -0.25))
    assert (st["ratio_lo"], st["ratio_hi"]) == pytest.approx((-0.25, -0.25))


# ---------------------------------------------------------------- rlvr-distillation

# base: c = 1 on problems 0..9, 0 on 10..19; SFT: c = 6 everywhere. Judged k = 1, round(sqrt(8)) = 3, 8.
# base pass@k = (10 k/8) / 20: 0.0625, 0.1875, 0.5. SFT pass@1 = 6/8 = 0.75, pass@3 = pass@8 = 1 (n - c = 2 < k).
# Gains: 0.6875, 0.8125, 0.5. RL: c = 8 on 0..9 (pass@1 gain 10 (1 - 1/8) / 20 = 0.4375), 0 elsewhere:
# pass@8 equals the base's on every problem (1 on 0..9, 0 on 10..19), gain 0 with a point interval.
BASE = _counts(10, 1)
SFT = np.full(N, 6)
RL_SHARP = _counts(10, 8)


def test_distillation_passes_where_built_in():
    v, m, arrays = dis._judge(dis.Config(rlvr=KNOBS), _col({"base": BASE, "grpo": RL_SHARP, "sft": SFT}))
    assert _statuses(v) == {c: PASS for c in dis.CLAIMS}
    assert dis.judged_ks(n) == (1, 3, 8)
    for k, gain in ((1, 0.6875), (3, 0.8125), (8, 0.5)):
        assert m[f"id_sft_minus_base_pass{k}"] == pytest.approx(gain)
    assert m["id_rl_minus_base_pass1"] == pytest.approx(0.4375)
    assert (m["id_rl_minus_base_pass8"], m["id_rl_minus_base_pass8_lo"]) == (0.0, 0.0)
    assert arrays["id_sft_K"][0] == pytest.approx(0.75) and arrays["id_base_K"][-1] == pytest.approx(0.5)


def test_sft_claim_fails_when_sft_is_the_base():
    """SFT steps 0: SFT's samples are the base's, every gain 0; the RL claim then has no positive control."""
    v, m, _ = dis._judge(dis.Config(rlvr=KNOBS), _col({"base": BASE, "grpo": RL_SHARP, "sft": BASE}))
    assert _statuses(v) == {"sft_above_base_every_k": FAIL, "rl_not_above_base_at_kmax": NOT_JUDGED}
    assert all(m[f"id_sft_minus_base_pass{k}"] == 0.0 for k in (1, 3, 8))
    assert "positive control" in v["rl_not_above_base_at_kmax"].reason


def test_sft_claim_fails_when_one_k_is_not_above():
    """SFT c = 8 on 0..9 and 0 elsewhere: above the base at k = 1 and 3, equal at k = 8 (gain 0)."""
    v, m, _ = dis._judge(dis.Config(rlvr=KNOBS), _col({"base": BASE, "grpo": RL_SHARP, "sft": RL_SHARP}))
    assert v["sft_above_base_every_k"].status == FAIL
    assert m["id_sft_minus_base_pass1"] == pytest.approx(0.4375) and m["id_sft_minus_base_pass8"] == 0.0


def test_rl_claim_fails_when_rl_lifts_pass_at_kmax():
    """RL c = 8 on every problem: pass@8 gain 0.5 (the 10 problems the base never solves)."""
    v, m, _ = dis._judge(dis.Config(rlvr=KNOBS), _col({"base": BASE, "grpo": np.full(N, 8), "sft": SFT}))
    assert v["rl_not_above_base_at_kmax"].status == FAIL
    assert m["id_rl_minus_base_pass8"] == pytest.approx(0.5)


def test_rl_claim_not_judged_when_rl_did_not_learn_or_took_no_step():
    v, _, _ = dis._judge(dis.Config(rlvr=KNOBS), _col({"base": BASE, "grpo": BASE, "sft": SFT}))
    verdict = v["rl_not_above_base_at_kmax"]
    assert verdict.status == NOT_JUDGED and "did not learn" in verdict.reason
    off = dataclasses.replace(KNOBS, steps=0, checkpoints=(1,))
    v, _, _ = dis._judge(dis.Config(rlvr=off), _col({"base": BASE, "grpo": BASE, "sft": SFT}))
    assert _statuses(v) == {"sft_above_base_every_k": PASS, "rl_not_above_base_at_kmax": NOT_JUDGED}


def test_distillation_not_judged_without_a_usable_seed():
    v, m, _ = dis._judge(dis.Config(rlvr=KNOBS), _col({"base": BASE, "grpo": RL_SHARP, "sft": SFT}, seeds=()))
    assert _statuses(v) == {c: NOT_JUDGED for c in dis.CLAIMS} and m == {}
    assert "base failed its gate" in v["sft_above_base_every_k"].reason
