"""Negative tests of the parity verdicts (issue 20 §3): every verdict of parity-threshold,
parity-leap2, parity-separation, parity-rl and parity-star is fed hand-made runs in three cases:
the claim holds (pass), it fails (fail), and nothing was learned or a precondition failed (not
judged). A verdict must never pass on a run that learned nothing.
"""
from __future__ import annotations

import numpy as np
import pytest

from theoryrl.core import verdicts as V
from theoryrl.core.stages import Run, Runs
from theoryrl.experiments import parity_threshold as pt
from theoryrl.theory import parity as th


def _status(outcome, claim: str) -> str:
    return outcome.verdicts[claim].status


def _never_passes_anything(outcome) -> None:
    passed = [k for k, v in outcome.verdicts.items() if v.passed]
    assert not passed, f"verdicts passed on a run that learned nothing: {passed}"


# ----------------------------------------------------------------------------------------------
# parity-threshold


def _threshold_runs(cfg: pt.Config, metrics_fn) -> Runs:
    """One run per (family, d, p, seed) with a 2-chunk history whose last value is
    metrics_fn(family, p) (a dict over EVAL_METRICS + chain_token_acc)."""
    runs = []
    for family in cfg.families:
        ds, ps, _, _ = pt.GRIDS[family](cfg)
        for d in ds:
            for p in ps:
                for s in cfg.seeds:
                    m = metrics_fn(family, p)
                    runs.append(Run("main", {"family": family, "d": d, "p_cot": p, "seed": s},
                                    {f"history/{k}": np.array([0.0, v]) for k, v in m.items()}))
    return Runs(runs)


def _calibrated(p: float, acc: float, chain_acc: float = 1.0, long_frac: float = 1.0) -> dict:
    """Exactly calibrated metrics at p (pi_long_correct = long_frac * p), greedy accuracy acc."""
    return {"acc": acc, "greedy_long": float(acc > 0.9), "sampled_long": p, "sampled_long_correct": p,
            "sampled_short_correct": (1 - p) / 2, "p_first_x1": th.p_first_is_x1(p),
            "p_eos_x1": th.p_eos_given_first_x1(p), "pi_long_correct": long_frac * p,
            "pi_short_correct": (1 - p) / 2, "chain_token_acc": chain_acc}


THRESHOLD_CFG = pt.Config(families=("ar_linear", "transformer"), ds=(10,), p_cots=(0.1, 0.3, 0.4, 0.6),
                          seeds=(1, 2), lm_ds=(8,), lm_p_cots=(0.1, 0.3, 0.4, 0.6))
TAGS = ("ar_linear,d=10", "transformer,d=8")


@pytest.mark.parametrize("tag", TAGS)
def test_threshold_holds(tag):
    """Theorem 1 exactly: acc 0.5 at p <= 0.3, 1 at p >= 0.4; every metric at its calibrated value;
    the chain learned (chain_token_acc 1, pi_long_correct = p). greedy_short: max acc 0.5 <= 0.6,
    margin 0.1; greedy_long: min acc 1 >= 0.95, margin 0.05; transition (0.3, 0.4) brackets 1/3
    with margin min(1/3 - 0.3, 0.4 - 1/3) = 0.0333; calibration errors 0 <= tol."""
    theorem1 = lambda f, p: _calibrated(p, 0.5 if p < 1 / 3 else 1.0)  # noqa: E731
    out = pt.analyze(THRESHOLD_CFG, _threshold_runs(THRESHOLD_CFG, theorem1))
    v = out.verdicts[f"greedy_short_for_p_le_0.3[{tag}]"]
    assert v.status == V.PASS and v.value == 0.5 and v.margin == pytest.approx(0.1)
    v = out.verdicts[f"greedy_long_for_p_ge_0.4[{tag}]"]
    assert v.status == V.PASS and v.margin == pytest.approx(0.05)
    v = out.verdicts[f"transition_brackets_1/3[{tag}]"]
    assert v.status == V.PASS and v.margin == pytest.approx(1 / 3 - 0.3)
    for k in ("p_first_x1", "p_eos_x1", "pi_long_correct", "pi_short_correct"):
        assert _status(out, f"calibrated_{k}[{tag}]") == V.PASS
    assert out.verdict[f"greedy_short_for_p_le_0.3[{tag}]"] is True  # the plain booleans stay


@pytest.mark.parametrize("tag", TAGS)
def test_threshold_fails(tag):
    """The chain is learned but the claims fail. (a) acc 1 everywhere: greedy_short max acc 1 > 0.6
    (margin -0.4); the low regime is empty so the transition has no lower end: fail. (b) acc 0.5
    everywhere: greedy_long min acc 0.5 < 0.95 (margin -0.45). (c) P(y_1 = x_1) off by 0.1 > tol:
    calibrated_p_first_x1 fails."""
    out = pt.analyze(THRESHOLD_CFG, _threshold_runs(THRESHOLD_CFG, lambda f, p: _calibrated(p, 1.0)))
    v = out.verdicts[f"greedy_short_for_p_le_0.3[{tag}]"]
    assert v.status == V.FAIL and v.margin == pytest.approx(-0.4)
    assert _status(out, f"transition_brackets_1/3[{tag}]") == V.FAIL
    out = pt.analyze(THRESHOLD_CFG, _threshold_runs(THRESHOLD_CFG, lambda f, p: _calibrated(p, 0.5)))
    v = out.verdicts[f"greedy_long_for_p_ge_0.4[{tag}]"]
    assert v.status == V.FAIL and v.margin == pytest.approx(-0.45)
    assert _status(out, f"transition_brackets_1/3[{tag}]") == V.FAIL

    def off(f, p):
        m = _calibrated(p, 0.5 if p < 1 / 3 else 1.0)
        return {**m, "p_first_x1": m["p_first_x1"] - 0.1}
    out = pt.analyze(THRESHOLD_CFG, _threshold_runs(THRESHOLD_CFG, off))
    v = out.verdicts[f"calibrated_p_first_x1[{tag}]"]
    assert v.status == V.FAIL and v.value == pytest.approx(0.1)


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("metric", ("p_eos_x1", "pi_long_correct", "pi_short_correct"))
def test_threshold_calibration_fails_for_each_metric(tag, metric):
    """Theorem 1's accuracies and the chain learned, but one calibration metric is off by +0.1 at
    every p and seed (the others exact). Its max |measured - theory| is 0.1 > tol (calib_tol 0.03 for
    AR-linear: margin -0.07; lm_calib_tol 0.05 for the transformer: margin -0.05): fail; the other
    three stay at error 0: pass. pi_long_correct + 0.1 keeps the chain learned (>= p/2)."""
    def off(f, p):
        m = _calibrated(p, 0.5 if p < 1 / 3 else 1.0)
        return {**m, metric: m[metric] + 0.1}
    out = pt.analyze(THRESHOLD_CFG, _threshold_runs(THRESHOLD_CFG, off))
    tol = THRESHOLD_CFG.lm_calib_tol if tag.startswith("transformer") else THRESHOLD_CFG.calib_tol
    v = out.verdicts[f"calibrated_{metric}[{tag}]"]
    assert v.status == V.FAIL and v.value == pytest.approx(0.1) and v.margin == pytest.approx(tol - 0.1)
    for other in {"p_first_x1", "p_eos_x1", "pi_long_correct", "pi_short_correct"} - {metric}:
        assert _status(out, f"calibrated_{other}[{tag}]") == V.PASS, other


@pytest.mark.parametrize("tag", TAGS)
def test_threshold_not_judged_when_nothing_learned(tag):
    """Nothing learned: greedy acc 0.5 everywhere, chain_token_acc 0.5, pi_long_correct 0 (< p/2).
    The short answer is an inability: greedy_short, the transition and calibration are not judged;
    greedy_long fails (0.5 < 0.95). No verdict passes. Without p >= 0.4 in the grid greedy_long is
    not judged either."""
    nothing = lambda f, p: {**_calibrated(p, 0.5, chain_acc=0.5, long_frac=0.0), "p_first_x1": 0.5,  # noqa: E731
                            "p_eos_x1": 0.5}
    out = pt.analyze(THRESHOLD_CFG, _threshold_runs(THRESHOLD_CFG, nothing))
    for claim in ("greedy_short_for_p_le_0.3", "transition_brackets_1/3", "calibrated_p_first_x1",
                  "calibrated_p_eos_x1", "calibrated_pi_long_correct", "calibrated_pi_short_correct"):
        v = out.verdicts[f"{claim}[{tag}]"]
        assert v.status == V.NOT_JUDGED and "learned the chain" in v.reason, claim
        assert f"{claim}[{tag}]" in out.not_judged and f"{claim}[{tag}]" not in out.verdict
    assert _status(out, f"greedy_long_for_p_ge_0.4[{tag}]") == V.FAIL
    _never_passes_anything(out)
    low_only = pt.Config(families=("ar_linear", "transformer"), ds=(10,), p_cots=(0.1, 0.3), seeds=(1, 2),
                         lm_ds=(8,), lm_p_cots=(0.1, 0.3))
    out = pt.analyze(low_only, _threshold_runs(low_only, lambda f, p: _calibrated(p, 0.5)))
    assert _status(out, f"greedy_long_for_p_ge_0.4[{tag}]") == V.NOT_JUDGED
    assert _status(out, f"greedy_short_for_p_le_0.3[{tag}]") == V.PASS


def test_threshold_greedy_long_not_judged_when_nothing_was_trained():
    """lm_steps = 0 (issue 20): the transformer runs have empty histories (no chunk ran), so every
    final is NaN: greedy_long_for_p_ge_0.4[transformer,d=8] is not judged ("nothing was trained"),
    and so is every other transformer claim; no transformer claim passes. The AR-linear family is
    fed Theorem 1 exactly here, and its greedy_long still passes (min acc 1 >= 0.95)."""
    runs = []
    for r in _threshold_runs(THRESHOLD_CFG, lambda f, p: _calibrated(p, 0.5 if p < 1 / 3 else 1.0)):
        arrays = r.arrays if r.row["family"] == "ar_linear" else {k: np.zeros(0) for k in r.arrays}
        runs.append(Run(r.stage, r.row, arrays))
    out = pt.analyze(THRESHOLD_CFG, Runs(runs))
    v = out.verdicts["greedy_long_for_p_ge_0.4[transformer,d=8]"]
    assert v.status == V.NOT_JUDGED and "nothing was trained" in v.reason
    transformer = {k: v for k, v in out.verdicts.items() if "[transformer," in k}
    assert transformer and all(v.status == V.NOT_JUDGED for v in transformer.values())
    assert _status(out, "greedy_long_for_p_ge_0.4[ar_linear,d=10]") == V.PASS


def test_threshold_ar_linear_chain_learned_rule():
    """AR-linear has no chain-token metric: learned iff pi_long_correct >= p/2 (0.049 at p = 0.1 fails,
    0.05 passes)."""
    ps = np.array([0.1])
    assert not pt.chain_learned("ar_linear", {"pi_long_correct": np.array([[0.049]])}, ps).any()
    assert pt.chain_learned("ar_linear", {"pi_long_correct": np.array([[0.05]])}, ps).all()


def test_threshold_learning_off_is_legal():
    """lm.lr = 0 (AdamW steps of size 0) is an accepted knob value (issue 20). This test only
    validates the config; that such a run passes no claim is checked by running it, in
    tests/integration/test_learning_off_parity.py (test_threshold_lr_0, test_threshold_zero_samples)."""
    from theoryrl.core.config import apply_overrides, validate
    validate(apply_overrides(pt.TIERS["quick"], ["lm.lr=0"]))


# ----------------------------------------------------------------------------------------------
# parity-leap2

from theoryrl.experiments import parity_leap2 as pl  # noqa: E402

LEAP_CFG = pl.Config(d=8, p_cots=(0.2, 0.3, 0.4), seeds=(1, 2))


def _leap_runs(cfg: pl.Config, per_chain: dict) -> Runs:
    """per_chain: chain -> (chain_token_acc, (acc of seed 1, acc of seed 2)) at every p."""
    runs = []
    for chain in cfg.chains:
        chain_acc, accs = per_chain[chain]
        for p in cfg.p_cots:
            for s, acc in zip(cfg.seeds, accs):
                m = {k: 0.5 for k in pl.KEYS} | {"acc": acc, "chain_token_acc": chain_acc}
                runs.append(Run("ntp", {"chain": chain, "p_cot": p, "seed": s},
                                {f"history/{k}": np.array([0.0, v]) for k, v in m.items()}))
    return Runs(runs)


def test_leap2_holds():
    """Both chains learned (chain_token_acc 1 >= 0.99, margin 0.01). leap-2 acc (0.99, 1.0): min 0.99
    >= 0.95 (margin 0.04); full acc (0.49, 0.51): max 0.51 <= 0.6 (margin 0.09). Beats: mean 0.995 (SE
    0.005) vs 0.5 (SE 0.01): difference 0.495 > 2 sqrt(0.005^2 + 0.01^2) = 0.02236 at every p."""
    out = pl.analyze(LEAP_CFG, _leap_runs(LEAP_CFG, {"leap2": (1.0, (0.99, 1.0)), "full": (1.0, (0.49, 0.51))}))
    for chain in ("leap2", "full"):
        v = out.verdicts[f"chain_learned[{chain}]"]
        assert v.status == V.PASS and v.value == 1.0 and v.margin == pytest.approx(0.01)
    v = out.verdicts["leap2_generalises_below_1/3"]
    assert v.status == V.PASS and v.margin == pytest.approx(0.04)
    v = out.verdicts["full_stays_short_below_1/3"]
    assert v.status == V.PASS and v.margin == pytest.approx(0.09)
    v = out.verdicts["leap2_beats_full_below_1/3"]
    assert v.status == V.PASS and v.value == pytest.approx(0.495) and v.threshold == pytest.approx(0.0223607, rel=1e-5)
    assert all(out.verdict[k] for k in ("chain_learned[full]", "chain_learned[leap2]"))


def test_leap2_fails():
    """Both chains learned, but leap-2 answers at chance (0.49, 0.51: min 0.49 < 0.95) and the full
    chain generalises (0.99, 1.0: max 1.0 > 0.6); leap-2 minus full = -0.495: fails."""
    out = pl.analyze(LEAP_CFG, _leap_runs(LEAP_CFG, {"leap2": (1.0, (0.49, 0.51)), "full": (1.0, (0.99, 1.0))}))
    for claim in ("leap2_generalises_below_1/3", "full_stays_short_below_1/3", "leap2_beats_full_below_1/3"):
        assert _status(out, claim) == V.FAIL, claim


def test_leap2_not_judged_when_a_chain_is_not_learned():
    """Nothing learned (chain_token_acc 0.5, acc 0.5): chain_learned fails for both chains (0.5 < 0.99,
    margin -0.49: trained but not learned), the three claims are not judged, nothing passes. Only the
    leap-2 chain unlearned (the quick tier's case, chain_token_acc 0.62): chain_learned[leap2] fails
    (margin -0.37), chain_learned[full] passes; leap-2's claim and the comparison are not judged,
    full's is judged. One seed: no SE, the comparison is not judged."""
    out = pl.analyze(LEAP_CFG, _leap_runs(LEAP_CFG, {"leap2": (0.5, (0.5, 0.5)), "full": (0.5, (0.5, 0.5))}))
    for chain in ("leap2", "full"):
        v = out.verdicts[f"chain_learned[{chain}]"]
        assert v.status == V.FAIL and v.value == 0.5 and v.margin == pytest.approx(-0.49), chain
        assert out.verdict[f"chain_learned[{chain}]"] is False
    for claim in ("leap2_generalises_below_1/3", "full_stays_short_below_1/3", "leap2_beats_full_below_1/3"):
        assert _status(out, claim) == V.NOT_JUDGED and "was learned" in out.not_judged[claim], claim
    _never_passes_anything(out)
    out = pl.analyze(LEAP_CFG, _leap_runs(LEAP_CFG, {"leap2": (0.62, (0.5, 0.5)), "full": (1.0, (0.49, 0.51))}))
    v = out.verdicts["chain_learned[leap2]"]
    assert v.status == V.FAIL and v.margin == pytest.approx(-0.37)
    assert _status(out, "chain_learned[full]") == V.PASS
    assert _status(out, "leap2_generalises_below_1/3") == V.NOT_JUDGED
    assert _status(out, "leap2_beats_full_below_1/3") == V.NOT_JUDGED
    assert _status(out, "full_stays_short_below_1/3") == V.PASS
    one = pl.Config(d=8, p_cots=(0.2, 0.4), seeds=(1,))
    out = pl.analyze(one, _leap_runs(one, {"leap2": (1.0, (1.0,)), "full": (1.0, (0.5,))}))
    v = out.verdicts["leap2_beats_full_below_1/3"]
    assert v.status == V.NOT_JUDGED and "standard error" in v.reason
    assert _status(out, "leap2_generalises_below_1/3") == V.PASS


def test_leap2_chain_learned_not_judged_when_nothing_was_trained():
    """steps = 0 (issue 20): no chunk ran, every history is empty, so no chain was trained:
    chain_learned[<chain>] is not judged ("nothing was trained"; before: fail), and with it every
    claim that needs a learned chain; nothing passes. The value is None, the threshold 0.99."""
    runs = Runs([Run(r.stage, r.row, {k: np.zeros(0) for k in r.arrays})
                 for r in _leap_runs(LEAP_CFG, {"leap2": (1.0, (1.0, 1.0)), "full": (1.0, (0.5, 0.5))})])
    out = pl.analyze(LEAP_CFG, runs)
    for chain in ("leap2", "full"):
        v = out.verdicts[f"chain_learned[{chain}]"]
        assert v.status == V.NOT_JUDGED and "nothing was trained" in v.reason, chain
        assert v.value is None and v.threshold == 0.99
    assert {k: v.status for k, v in out.verdicts.items()} == {k: V.NOT_JUDGED for k in out.verdicts}
    assert all(r["acc"] is None for r in out.rows)


def test_leap2_learning_off_is_legal():
    """lm.lr=0 (learning rates of 0) are accepted knob values (issue 20). This test only validates the
    config; that such a run passes no claim is checked by running it, in
    tests/integration/test_learning_off_parity.py (test_leap2_lr_0, test_leap2_zero_steps)."""
    from theoryrl.core.config import apply_overrides, validate
    validate(apply_overrides(pl.TIERS["quick"], ["lm.lr=0"]))


# ----------------------------------------------------------------------------------------------
# parity-separation

from theoryrl.experiments import parity_lm_common as plm  # noqa: E402
from theoryrl.experiments import parity_separation as psep  # noqa: E402

# caps: ntp 100 steps x batch 10 = 1000 samples; ntp_rl 1000 + 10 RL steps x 2 prompts x 2 = 1040.
# An ntp run first at greedy acc 1 in chunk c costs (c + 1) x 10 x 10 = 100 (c + 1); an ntp_rl run
# with good_step G whose RL curve (start first) hits at index k costs 10 G + k x 2 x 2 x 2 = 10 G + 8 k.
SEP_CFG = psep.Config(ds=(4, 6), seeds=(1, 2), lm=plm.LMSetup(d_model=16, n_layers=1, n_heads=2, batch=10),
                      ntp_steps=100, pre_steps=100, steps_per_chunk=10, rl_steps=10, rl_steps_per_chunk=2,
                      prompts_per_step=2, group_size=2)


def _sep_runs(cfg: psep.Config, ntp_hit: dict, rl_hit: dict) -> Runs:
    """ntp_hit[(d, seed)]: the ntp arm's first chunk at acc 1 (None: never); rl_hit[(d, seed)]:
    (good_step, curve index of the first RL hit) or None (the good checkpoint never reached)."""
    runs, n_ntp, n_rl = [], cfg.ntp_steps // cfg.steps_per_chunk, cfg.rl_steps // cfg.rl_steps_per_chunk
    for d in cfg.ds:
        for s in cfg.seeds:
            c = ntp_hit[d, s]
            acc = np.array([1.0 if c is not None and i >= c else 0.5 for i in range(n_ntp)])
            runs.append(Run("ntp", {"arm": "ntp", "d": d, "seed": s}, {"history/acc": acc}))
            g, k = rl_hit[d, s] if rl_hit[d, s] is not None else (-1, None)
            runs.append(Run("pretrain", {"arm": "ntp_rl", "d": d, "p_cot": 1 / d, "seed": s},
                            {"history/good_step": np.array([-1, g])}))
            curve = [1.0 if k is not None and i >= k else 0.5 for i in range(n_rl + 1)]
            runs.append(Run("rl", {"arm": "ntp_rl", "d": d, "seed": s},
                            {"history/acc": np.array(curve[1:]), "history/start_acc": np.array([curve[0]] * n_rl)}))
    return Runs(runs)


HOLDS_NTP = {(4, 1): 1, (4, 2): 2, (6, 1): None, (6, 2): None}  # costs 200, 300 at d = 4; >= 1000 at d = 6
HOLDS_RL = {(4, 1): (10, 1), (4, 2): (10, 2), (6, 1): (20, 1), (6, 2): (20, 2)}  # 108, 116; 208, 216


def test_separation_holds():
    """Costs: ntp d=4 (200, 300), d=6 (>= 1000, >= 1000: charged the cap); ntp_rl d=4 (108, 116), d=6
    (208, 216). Every ntp_rl run learned (1 >= 1). NTP learned at d = 4 (control) and at d = 6 none
    did (0 <= 0). Cheaper at d=4: log2 means 7.936 (SE 0.2925) vs 6.806 (SE 0.0515), difference
    1.130 > 2 x 0.297 = 0.594; at d=6: 9.966 (SE 0) vs 7.727 (SE 0.0273), a lower bound that passes.
    Growth: ntp log2(1000/200), log2(1000/300) = 2.322, 1.737 (mean 2.029, SE 0.2925); ntp_rl
    log2(208/108), log2(216/116) = 0.946, 0.897 (mean 0.921, SE 0.0243): 1.108 > 0.587."""
    out = psep.analyze(SEP_CFG, _sep_runs(SEP_CFG, HOLDS_NTP, HOLDS_RL))
    for claim in ("ntp_rl_learns_every_d", "ntp_fails_at_largest_d", "ntp_rl_cheaper_at_every_d",
                  "ntp_cost_grows_faster"):
        assert _status(out, claim) == V.PASS, claim
    v = out.verdicts["ntp_cost_grows_faster"]
    assert v.value == pytest.approx(1.108, abs=1e-3) and "lower bound" in v.reason
    v = out.verdicts["ntp_rl_cheaper_at_every_d"]  # the smaller margin: d = 4
    assert v.value == pytest.approx(1.1300, abs=1e-3) and v.threshold == pytest.approx(0.5941, abs=1e-3)
    ntp_rows = [r for r in out.rows if r["arm"] == "ntp" and r["d"] == 6]
    assert all(r["cost"] == ">= 1000" for r in ntp_rows)
    assert out.metrics["median_samples_is_lower_bound[ntp,d=6]"] is True
    assert out.metrics["median_samples_is_lower_bound[ntp,d=4]"] is False


def test_separation_fails():
    """(a) NTP learns at once everywhere (100 samples), ntp_rl as above: ntp learned at d = 6 (fraction
    1 > 0); cheaper at d = 4: log2 100 = 6.644 vs 6.806, negative; growth 0 vs 0.921: fail.
    (b) ntp_rl seed 2 at d = 6 never learns: learned fraction 3/4 < 1, and ntp_rl is not cheaper
    where ntp learned."""
    fast = {k: 0 for k in HOLDS_NTP}
    out = psep.analyze(SEP_CFG, _sep_runs(SEP_CFG, fast, HOLDS_RL))
    for claim in ("ntp_fails_at_largest_d", "ntp_rl_cheaper_at_every_d", "ntp_cost_grows_faster"):
        assert _status(out, claim) == V.FAIL, claim
    out = psep.analyze(SEP_CFG, _sep_runs(SEP_CFG, fast, {**HOLDS_RL, (6, 2): (20, None)}))
    v = out.verdicts["ntp_rl_learns_every_d"]
    assert v.status == V.FAIL and v.value == 0.75
    assert _status(out, "ntp_rl_cheaper_at_every_d") == V.FAIL


def test_separation_not_judged_when_nothing_learned():
    """No run learns (every stage trained): ntp_rl_learns_every_d fails (0 < 1: trained but not learned);
    ntp_fails_at_largest_d lacks its control (NTP never learned at d = 4): not judged; at every d
    both arms are lower bounds: not judged; the growth needs learned end points: not judged. With
    one seed the comparisons have no SE: not judged."""
    none_ntp, none_rl = {k: None for k in HOLDS_NTP}, {k: None for k in HOLDS_RL}
    out = psep.analyze(SEP_CFG, _sep_runs(SEP_CFG, none_ntp, none_rl))
    v = out.verdicts["ntp_rl_learns_every_d"]
    assert v.status == V.FAIL and v.value == 0.0 and v.margin == -1.0
    for claim in ("ntp_fails_at_largest_d", "ntp_rl_cheaper_at_every_d", "ntp_cost_grows_faster"):
        assert _status(out, claim) == V.NOT_JUDGED, claim
    assert "positive control" in out.not_judged["ntp_fails_at_largest_d"]
    _never_passes_anything(out)
    one = psep.Config(**{**SEP_CFG.__dict__, "seeds": (1,)})
    out = psep.analyze(one, _sep_runs(one, {k: v for k, v in HOLDS_NTP.items() if k[1] == 1},
                                      {k: v for k, v in HOLDS_RL.items() if k[1] == 1}))
    assert _status(out, "ntp_rl_cheaper_at_every_d") == V.NOT_JUDGED
    assert _status(out, "ntp_cost_grows_faster") == V.NOT_JUDGED
    assert _status(out, "ntp_fails_at_largest_d") == V.PASS


@pytest.mark.parametrize("off", (("pre_steps", "rl_steps"), ("pre_steps",), ("rl_steps",)))
def test_separation_ntp_rl_learns_not_judged_when_a_stage_trained_nothing(off):
    """A stage of the ntp_rl arm has 0 steps (issue 20): its histories are empty, no run learns,
    and ntp_rl_learns_every_d is not judged ("nothing was trained", naming the knob; before: fail at
    learned fraction 0). Nothing passes (the ntp arm trained 100 steps but, as fed here, never learned)."""
    cfg = dataclasses.replace(SEP_CFG, **{k: 0 for k in off})
    none_ntp, none_rl = {k: None for k in HOLDS_NTP}, {k: None for k in HOLDS_RL}
    runs = []
    for r in _sep_runs(SEP_CFG, none_ntp, none_rl):
        empty = r.stage == "rl" and "rl_steps" in off or r.stage == "pretrain" and "pre_steps" in off
        runs.append(Run(r.stage, r.row, {k: v[:0] for k, v in r.arrays.items()} if empty else r.arrays))
    out = psep.analyze(cfg, Runs(runs))
    v = out.verdicts["ntp_rl_learns_every_d"]
    assert v.status == V.NOT_JUDGED and "nothing was trained" in v.reason and v.threshold == 1.0
    assert all(f"{k} = 0" in v.reason for k in off)
    assert not any(r["learned"] for r in out.rows if r["arm"] == "ntp_rl")
    _never_passes_anything(out)


def test_separation_learning_off_is_legal():
    """lm.lr=0 and rl_lr=0 (learning rates of 0) are accepted knob values (issue 20). This test only validates the
    config; that such a run passes no claim is checked by running it, in
    tests/integration/test_learning_off_parity.py (test_separation_lr_0, test_separation_zero_steps)."""
    from theoryrl.core.config import apply_overrides, validate
    validate(apply_overrides(psep.TIERS["quick"], ["lm.lr=0", "rl_lr=0"]))


# ----------------------------------------------------------------------------------------------
# parity-rl

import dataclasses  # noqa: E402

from theoryrl.core.bases import Gate  # noqa: E402
from theoryrl.experiments import parity_rl as prl  # noqa: E402

RL_CFG = dataclasses.replace(prl.TIERS["quick"], seeds=(1, 2), algorithms=("grpo",))  # d = 8, p_cot_low = 0.01


def _rl_runs(cfg, *, main_chain=1.0, low_chain=1.0, low_pi=0.008, ntp=((0.5, 1), (0.5, 1)), early_steps=(300, 300),
             early_qs=(0.6, 0.6), curves=None) -> Runs:
    """Bases main / low (gate: chain_token_acc >= 0.99) with final NTP greedy (acc, median length) per
    seed `ntp`, main's early checkpoint per seed at `early_steps` with chain_q `early_qs`, and RL runs whose per-seed (start, final) values come from `curves[start]`:
    {"acc": [(a0, a1)] * S, "med": [...], "mean": [...]} (two RL chunks: start, middle, final)."""
    runs, bases = [], {}
    for name, chain, pi in (("main", main_chain, 0.25), ("low", low_chain, low_pi)):
        for i, s in enumerate(cfg.seeds):
            acc, med = ntp[i] if name == "main" else (0.5, 1)
            h = {"chain_token_acc": chain, "acc": acc, "greedy_len_median": med, "sampled_long": 0.2, "p_eos_x1": 0.6,
                 "loss": 0.1, "samples": 1e5, "good_step": 100 if chain >= 0.99 else -1,
                 "early_step": early_steps[i] if name == "main" else 0, "early_chain_acc": 0.9,
                 "early_q": early_qs[i] if name == "main" else 0.0,
                 "pi_long_correct": pi}
            gate = Gate(chain >= 0.99, "final teacher-forced chain_token_acc >= 0.99", {"chain_token_acc": chain})
            bases[name, s] = Run("pretrain", {"base": name, "seed": s},
                                 {f"history/{k}": np.array([0.0, v]) for k, v in h.items()}, base_id=f"{name}{s}",
                                 gate=gate)
            runs.append(bases[name, s])
    for start, c in curves.items():
        for i, s in enumerate(cfg.seeds):
            (a0, a1), (m0, m1), (l0, l1) = c["acc"][i], c["med"][i], c["mean"][i]
            vals = {"acc": (a0, a1), "greedy_len_median": (m0, m1), "greedy_len_mean": (l0, l1)}
            h = {}
            for k in prl.CURVE_KEYS:
                v0, v1 = vals.get(k, (0.5, 0.5))
                h[f"history/{k}"], h[f"history/start_{k}"] = np.array([v1, v1]), np.array([v0, v0])
            h["history/reward"] = np.array([0.5, 0.5])
            base = bases[prl.BASE_OF[start], s]
            runs.append(Run("rl", {"algorithm": "grpo", "start": start, "seed": s}, h, base_id=base.base_id,
                            gate=base.gate))
    return Runs(runs)


def _curve(acc, med, mean):
    return {"acc": [acc[0], acc[1]], "med": [med[0], med[1]], "mean": [mean[0], mean[1]]}


GOOD_OK = _curve(((0.5, 1.0), (0.5, 1.0)), ((1, 8), (1, 8)), ((1, 8), (1, 8)))
EARLY_OK = _curve(((0.5, 0.5), (0.5, 0.6)), ((1, 2), (1, 3)), ((1, 3), (1, 4)))
LOW_OK = _curve(((0.5, 0.5), (0.5, 0.5)), ((1, 4), (1, 5)), ((1, 5), (1, 6)))
FLAT = _curve(((0.5, 0.5), (0.5, 0.5)), ((1, 1), (1, 1)), ((1, 1), (1, 1)))


def test_rl_holds():
    """Main and low learned the chain (1 >= 0.99); low pi(long correct) 0.008 >= 0.01 / 2. NTP alone:
    acc 0.5 <= 0.6 and length 1. good: final acc 1 >= 0.99, median 8 = d, from 1. early: mean length
    1 -> (3, 4): growth 2.5, SE 0.5, 2.5 > 1.0; final acc max 0.6 < 0.99 with the good control passed.
    low: 1 -> (5, 6): growth 4.5 > 2 x 0.5. Early checkpoints at step 300 with chain_q 0.6 on both
    seeds, inside [0.5, 0.99]: margin min(0.6 - 0.5, 0.99 - 0.6) = 0.1 (value 0.6, nearest edge 0.5).
    good_checkpoint_reached: min final chain_token_acc 1 >= 0.99 (margin 0.01)."""
    out = prl.analyze(RL_CFG, _rl_runs(RL_CFG, curves={"good": GOOD_OK, "early": EARLY_OK, "low": LOW_OK}))
    assert {k: v.status for k, v in out.verdicts.items()} == {k: V.PASS for k in out.verdicts}
    v = out.verdicts["early_checkpoint_in_q_window"]
    assert v.value == pytest.approx(0.6) and v.threshold == 0.5 and v.margin == pytest.approx(0.1)
    assert out.verdicts["good_checkpoint_reached"].margin == pytest.approx(0.01)
    v = out.verdicts["grpo_early_length_grows"]
    assert v.value == pytest.approx(2.5) and v.se == pytest.approx(0.5) and v.margin == pytest.approx(1.5)
    assert out.verdicts["grpo_early_fails_to_generalise"].margin == pytest.approx(0.39)
    assert out.verdicts["ntp_alone_stays_short"].status == V.PASS


def test_rl_fails():
    """(a) The chain is learned but NTP alone generalises (acc 1, length 8 > 1), RL from good stays
    short (acc 0.5 < 0.99; median 1 < 8), low does not grow (difference 0: a tie fails), seed 2's
    early checkpoint has chain_q 0.3 < 0.5 (value 0.3, threshold 0.5, margin -0.2). (b) good works,
    but RL from early generalises (max acc 1.0 is not < 0.99) without growing the mean length (a tie).
    (c) chain_q 0.995 above the window on seed 1: margin float32(0.99) - 0.995 = -0.005."""
    out = prl.analyze(RL_CFG, _rl_runs(RL_CFG, ntp=((1.0, 8), (1.0, 8)), early_qs=(0.6, 0.3),
                                       curves={"good": FLAT, "early": EARLY_OK, "low": FLAT}))
    for claim in ("ntp_alone_stays_short", "grpo_good_generalises", "grpo_good_length_grows_from_1",
                  "grpo_low_length_grows", "early_checkpoint_in_q_window"):
        assert _status(out, claim) == V.FAIL, claim
    v = out.verdicts["early_checkpoint_in_q_window"]
    assert v.value == pytest.approx(0.3) and v.threshold == 0.5 and v.margin == pytest.approx(-0.2)
    assert out.verdict["early_checkpoint_in_q_window"] is False
    out = prl.analyze(RL_CFG, _rl_runs(RL_CFG, early_qs=(0.995, 0.6),
                                       curves={"good": GOOD_OK, "early": EARLY_OK, "low": LOW_OK}))
    v = out.verdicts["early_checkpoint_in_q_window"]
    assert v.status == V.FAIL and v.value == pytest.approx(0.995) and v.threshold == 0.99
    assert v.margin == pytest.approx(-0.005, abs=1e-6)
    early_flat_but_right = _curve(((0.5, 1.0), (0.5, 1.0)), ((1, 1), (1, 1)), ((1, 1), (1, 1)))
    out = prl.analyze(RL_CFG, _rl_runs(RL_CFG, curves={"good": GOOD_OK, "early": early_flat_but_right, "low": LOW_OK}))
    assert _status(out, "grpo_early_fails_to_generalise") == V.FAIL
    assert _status(out, "grpo_early_length_grows") == V.FAIL


def test_rl_not_judged_when_nothing_learned_or_a_precondition_fails():
    """Nothing learned (main and low chain_token_acc 0.5 < 0.99: gates fail, RL flat): every claim is
    not judged except good_checkpoint_reached, which fails (0.5 < 0.99); nothing passes. Then one
    precondition at a time: low learned the chain but pi(long correct) 0.001 < 0.005; good RL fails,
    so early_fails_to_generalise lacks its positive control; the good start is already long (median 8),
    so 'grows from 1' is not judged; one seed gives the growth no SE; seed 2 has no early checkpoint
    (early_step 0: chain_q never in the window): early_checkpoint_in_q_window and the early claims
    are not judged (before: fail)."""
    out = prl.analyze(RL_CFG, _rl_runs(RL_CFG, main_chain=0.5, low_chain=0.5, low_pi=0.0,
                                       curves={"good": FLAT, "early": FLAT, "low": FLAT}))
    assert _status(out, "good_checkpoint_reached") == V.FAIL
    for claim, v in out.verdicts.items():
        if claim != "good_checkpoint_reached":
            assert v.status == V.NOT_JUDGED, claim
    assert "base main learned the chain" in out.not_judged["ntp_alone_stays_short"]
    _never_passes_anything(out)
    out = prl.analyze(RL_CFG, _rl_runs(RL_CFG, low_pi=0.001, curves={"good": FLAT, "early": EARLY_OK, "low": LOW_OK}))
    assert "pi(long correct) >= p_cot_low / 2" in out.not_judged["grpo_low_length_grows"]
    assert "positive control" in out.not_judged["grpo_early_fails_to_generalise"]
    assert _status(out, "grpo_early_length_grows") == V.PASS
    long_start = _curve(((1.0, 1.0), (1.0, 1.0)), ((8, 8), (8, 8)), ((8, 8), (8, 8)))
    out = prl.analyze(RL_CFG, _rl_runs(RL_CFG, curves={"good": long_start, "early": EARLY_OK, "low": LOW_OK}))
    assert _status(out, "grpo_good_length_grows_from_1") == V.NOT_JUDGED
    # a start that already generalises cannot show that RL taught it: not judged (it would pass unlearned)
    assert _status(out, "grpo_good_generalises") == V.NOT_JUDGED
    assert "below acc_target" in out.not_judged["grpo_good_generalises"]
    one = dataclasses.replace(RL_CFG, seeds=(1,))
    out = prl.analyze(one, _rl_runs(one, ntp=((0.5, 1),), early_steps=(300,),
                                    curves={k: {kk: vv[:1] for kk, vv in c.items()}
                                            for k, c in {"good": GOOD_OK, "early": EARLY_OK, "low": LOW_OK}.items()}))
    assert _status(out, "grpo_early_length_grows") == V.NOT_JUDGED
    assert _status(out, "grpo_low_length_grows") == V.NOT_JUDGED
    out = prl.analyze(RL_CFG, _rl_runs(RL_CFG, early_steps=(300, 0), early_qs=(0.6, 0.0),
                                       curves={"good": GOOD_OK, "early": EARLY_OK, "low": LOW_OK}))
    v = out.verdicts["early_checkpoint_in_q_window"]
    assert v.status == V.NOT_JUDGED and "no early checkpoint" in v.reason and "[2]" in v.reason
    assert _status(out, "grpo_early_length_grows") == V.NOT_JUDGED
    assert _status(out, "grpo_good_generalises") == V.PASS


def test_rl_good_checkpoint_not_judged_when_nothing_was_trained():
    """pretrain_steps = low_pretrain_steps = rl_steps = 0 (issue 20): every history is empty (no chunk
    ran). good_checkpoint_reached is not judged ("nothing was trained"; before: fail; a trained base
    that did not learn still fails, as in the test above), and so is every other claim (the gates
    fail, the RL curves are empty). Nothing passes."""
    learned = _rl_runs(RL_CFG, main_chain=0.5, low_chain=0.5, low_pi=0.0,
                       curves={"good": FLAT, "early": FLAT, "low": FLAT})
    runs = Runs([Run(r.stage, r.row, {k: np.zeros(0) for k in r.arrays}, base_id=r.base_id, gate=r.gate)
                 for r in learned])
    out = prl.analyze(RL_CFG, runs)
    v = out.verdicts["good_checkpoint_reached"]
    assert v.status == V.NOT_JUDGED and "nothing was trained" in v.reason and v.threshold == 0.99
    assert {k: v.status for k, v in out.verdicts.items()} == {k: V.NOT_JUDGED for k in out.verdicts}


def test_rl_learning_off_is_legal():
    """lm.lr=0, rl_lr=0 and star_lr=0 (learning rates of 0) are accepted knob values (issue 20). This test only validates the
    config; that such a run passes no claim is checked by running it, in
    tests/integration/test_learning_off_parity.py (test_rl_lr_0, test_rl_zero_steps)."""
    from theoryrl.core.config import apply_overrides, validate
    validate(apply_overrides(prl.TIERS["quick"], ["lm.lr=0", "rl_lr=0", "star_lr=0"]))


# ----------------------------------------------------------------------------------------------
# parity-star

from theoryrl.experiments import parity_star as pst  # noqa: E402

STAR_CFG = pst.Config(p0s=(0.25,), seeds=(1, 2), rounds=3, calib_prompts=8192, pg_steps=6, pg_steps_per_chunk=2)
CLOSED = th.star_closed_form(0.25, np.arange(4))  # 0.25, 0.4, 0.5714, 0.7273: greedy long from round 1 (formula 1)


def _star_runs(cfg: pst.Config, *, calib_shift=0.0, calib_greedy=None, learned=None, pg=None) -> Runs:
    """calibrated: q_n = closed form + calib_shift after round 0; learned / pg: per-seed dicts of
    curves over n = 0..3 ("long" = pi(long correct), "acc", "greedy_long"), stored as before_ (n < 3)
    and after_ (the last)."""
    runs = []
    for p0 in cfg.p0s:
        closed = th.star_closed_form(p0, np.arange(cfg.rounds + 1))
        q = np.concatenate([[p0], closed[1:] + calib_shift])
        greedy = calib_greedy if calib_greedy is not None else (q[:-1] > 1 / 3).astype(float)
        for i, s in enumerate(cfg.seeds):
            runs.append(Run("main", {"arm": "calibrated", "variant": "cot", "p0": p0, "seed": s},
                            {"history/long_fraction": q[:-1], "history/next_long_fraction": q[1:],
                             "history/greedy_long": np.asarray(greedy, float),
                             "history/acc": np.full(cfg.rounds, 0.5)}))
            for arm, variants, curves in (("star", cfg.rewards, learned), ("pg", cfg.estimators, pg)):
                for variant in variants:
                    c = curves[i]
                    h = {}
                    for k, name in (("long", "pi_long_correct"), ("acc", "acc"), ("greedy_long", "greedy_long"),
                                    ("long", "sampled_long")):
                        h[f"history/before_{name}"] = np.asarray(c[k][:-1], float)
                        h[f"history/after_{name}"] = np.asarray(c[k][1:], float)
                    h["history/kept_long_wrong"] = np.zeros(len(c["acc"]) - 1)
                    h["history/reward"] = np.zeros(len(c["acc"]) - 1)
                    runs.append(Run("main", {"arm": arm, "variant": variant, "p0": p0, "seed": s}, h))
    return Runs(runs)


GOOD_LEARNED = [{"long": [0.25, 0.4, 0.57, 0.9], "acc": [0.5, 1, 1, 1], "greedy_long": [0, 1, 1, 1]},
                {"long": [0.25, 0.4, 0.57, 0.95], "acc": [0.5, 1, 1, 1], "greedy_long": [0, 1, 1, 1]}]
STUCK = [{"long": [0.25] * 4, "acc": [0.5] * 4, "greedy_long": [0] * 4}] * 2
UNLEARNED = [{"long": [0.0] * 4, "acc": [0.5] * 4, "greedy_long": [0] * 4}] * 2
SIM = ("sim_calibrated_long_fraction_within_4se[p0=0.25]", "sim_calibrated_switch_round_equals_formula[p0=0.25]")
LEARNED = ("learned_cot_switch_within_1[p0=0.25]", "learned_cot_final_acc[p0=0.25]",
           "learned_e2e_switch_within_1[p0=0.25]", "learned_e2e_final_acc[p0=0.25]",
           "pg_reaches_acc_target[pg,reinforce,p0=0.25]", "pg_long_fraction_grows[pg,reinforce,p0=0.25]",
           "pg_reaches_acc_target[pg,grpo,p0=0.25]", "pg_long_fraction_grows[pg,grpo,p0=0.25]")


def test_star_holds():
    """The simulation follows the closed form exactly (deviation 0 SE <= 4) and goes long at round 1
    = formula (|1 - 1| = 0). Learned: pi(long correct) 0.25 >= p0/2 at round 0; switch at round 1
    (off 0 <= 1), final acc 1 >= 0.95; pg: growth (0.65, 0.70), mean 0.675, SE 0.025: 0.675 > 0.05.
    The calibrated row carries theory_final_acc (the formula's greedy accuracy at q_3 = 0.727: 1)
    and no final_acc; the old claim names are gone."""
    out = pst.analyze(STAR_CFG, _star_runs(STAR_CFG, learned=GOOD_LEARNED, pg=GOOD_LEARNED))
    for claim in SIM + LEARNED:
        assert _status(out, claim) == V.PASS, claim
    v = out.verdicts["pg_long_fraction_grows[pg,grpo,p0=0.25]"]
    assert v.value == pytest.approx(0.675) and v.se == pytest.approx(0.025)
    row = next(r for r in out.rows if r["arm"] == "calibrated")
    assert row["kind"] == "simulation" and row["theory_final_acc"] == 1.0 and "final_acc" not in row
    assert next(r for r in out.rows if r["arm"] == "star")["kind"] == "learned"
    assert not any(k.startswith("calibrated_") for k in out.verdicts)


def test_star_fails():
    """Simulation off by +0.1 after round 0 (>> 4 SE at N = 8192) and never long in the recorded
    rounds (the last q 0.827 goes long: switch 3, |3 - 1| = 2 > 0). Learned arms stuck at p0: never
    switch (inf > 1), final acc 0.5 < 0.95, no growth (0 with SE 0: a tie fails)."""
    out = pst.analyze(STAR_CFG, _star_runs(STAR_CFG, calib_shift=0.1, calib_greedy=[0, 0, 0], learned=STUCK, pg=STUCK))
    for claim in SIM + LEARNED:
        assert _status(out, claim) == V.FAIL, claim
    assert out.verdicts["learned_cot_switch_within_1[p0=0.25]"].value == float("inf")
    assert out.verdicts[SIM[1]].value == 2


def test_star_not_judged_when_nothing_learned():
    """Pre-training learned nothing (pi(long correct) 0 < p0/2 = 0.125): every learned claim is not
    judged and none passes. The simulation's switch is not judged when the rounds (3) do not reach
    the formula's round (p0 = 0.01: 6)."""
    out = pst.analyze(STAR_CFG, _star_runs(STAR_CFG, learned=UNLEARNED, pg=UNLEARNED))
    for claim in LEARNED:
        assert _status(out, claim) == V.NOT_JUDGED and "learned the chain" in out.not_judged[claim], claim
    assert all(not out.verdicts[c].passed for c in LEARNED)
    low = dataclasses.replace(STAR_CFG, p0s=(0.01,))
    stuck_low = [{"long": [0.01] * 4, "acc": [0.5] * 4, "greedy_long": [0] * 4}] * 2
    out = pst.analyze(low, _star_runs(low, learned=stuck_low, pg=stuck_low))
    assert _status(out, "sim_calibrated_switch_round_equals_formula[p0=0.01]") == V.NOT_JUDGED
    assert _status(out, "sim_calibrated_long_fraction_within_4se[p0=0.01]") == V.PASS


def test_star_sim_fails_when_the_long_fraction_stays_at_p0():
    """The calibrated arm's STaR refits are its learning; here they learn nothing: q_n = p0 = 0.25 at
    every round. Delta-method SEs at N = 8192 (theory.star_long_fraction_se): round 1 var =
    f(1-f)/(N(1+p)/2) = 0.24/5120 = 4.6875e-5 (SE 0.006847), f = 0.4; round 2 var =
    (2/(1+0.4)^2)^2 4.6875e-5 + 0.2449/5734.4 = 9.1515e-5 (SE 0.009566); round 3 var =
    (2/(1+0.5714)^2)^2 9.1515e-5 + 0.19835/6436.6 = 9.0847e-5 (SE 0.009531). Deviations from the
    closed form 0.15, 0.3214, 0.4773: 21.9, 33.6, 50.07 SE; max 50.07 > 4: fail (margin -46.07). The
    greedy output never goes long (q = 0.25 < 1/3): no switch, |inf - 1|: fail."""
    stuck = dataclasses.replace(STAR_CFG, arms=("calibrated",))
    runs = Runs([Run("main", {"arm": "calibrated", "variant": "cot", "p0": 0.25, "seed": s},
                     {"history/long_fraction": np.full(3, 0.25), "history/next_long_fraction": np.full(3, 0.25),
                      "history/greedy_long": np.zeros(3), "history/acc": np.full(3, 0.5)}) for s in stuck.seeds])
    out = pst.analyze(stuck, runs)
    v = out.verdicts[SIM[0]]
    assert v.status == V.FAIL and v.value == pytest.approx(50.07, abs=0.01) and v.margin == pytest.approx(-46.07, abs=0.01)
    v = out.verdicts[SIM[1]]
    assert v.status == V.FAIL and v.value == float("inf")


def test_star_sim_not_judged_when_no_round_was_simulated():
    """rounds = 0 (issue 20): the calibrated arm's histories are empty, nothing was simulated (its
    refits are its learning): sim_calibrated_long_fraction_within_4se and the switch are not judged
    ("no round was simulated"), nothing passes."""
    none = dataclasses.replace(STAR_CFG, arms=("calibrated",), rounds=0)
    empty = np.zeros(0)
    runs = Runs([Run("main", {"arm": "calibrated", "variant": "cot", "p0": 0.25, "seed": s},
                     {f"history/{k}": empty for k in ("long_fraction", "next_long_fraction", "greedy_long", "acc")})
                 for s in none.seeds])
    out = pst.analyze(none, runs)
    for claim in SIM:
        v = out.verdicts[claim]
        assert v.status == V.NOT_JUDGED and "no round was simulated" in v.reason, claim
    assert set(out.verdicts) == set(SIM)
    _never_passes_anything(out)


def test_star_learning_off_is_legal():
    """pg_lr=0 (learning rates of 0) are accepted knob values (issue 20). This test only validates the
    config; that such a run passes no claim is checked by running it, in
    tests/integration/test_learning_off_parity.py (test_star_lr_0, test_star_zero_rounds_and_samples)."""
    from theoryrl.core.config import apply_overrides, validate
    validate(apply_overrides(pst.TIERS["quick"], ["pg_lr=0"]))


def test_rl_early_checkpoint_is_chosen_by_chain_q_window():
    """parity_lm_common._update_snapshots (issue 20): "early" is the first chunk with 0.5 <= chain_q
    <= 0.99, independent of "good". Chunks (chain_token_acc, chain_q): step 10 (0.6, 0.03): too early
    to be useful, not taken; step 20 (0.995, 0.63): good (acc >= 0.99) and early (q in the window),
    as in the quick tier where argmax accuracy leads q; step 30 (1.0, 0.93): still in the window,
    but early stays at 20 (the first); step 40 (1.0, 0.995): above the window."""
    import jax.numpy as jnp
    state = plm.PretrainState(params=jnp.float32(0), opt=None, step=jnp.int32(0), good=jnp.float32(0),
                              good_step=jnp.int32(-1), early=jnp.float32(0), early_step=jnp.int32(0),
                              early_chain_acc=jnp.float32(0), early_q=jnp.float32(0))
    for step, (acc, q) in zip((10, 20, 30, 40), ((0.6, 0.03), (0.995, 0.63), (1.0, 0.93), (1.0, 0.995))):
        new = plm.PretrainState(params=jnp.float32(step), opt=None, step=jnp.int32(step))
        ev = {"chain_token_acc": jnp.float32(acc), "chain_q": jnp.float32(q), "pi_long_correct": jnp.float32(0.3)}
        state = plm._update_snapshots(state, new, ev, 0.25, good_acc=0.99, good_pi_frac=0.0, early_q_min=0.5,
                                      early_q_max=0.99)
        if step == 10:
            assert int(state.early_step) == 0  # q = 0.03: not an early checkpoint
    assert int(state.early_step) == 20 and float(state.early_q) == pytest.approx(0.63)
    assert float(state.early) == 20.0 and int(state.good_step) == 20
