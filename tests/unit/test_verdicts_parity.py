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
    out = pt.analyze(THRESHOLD_CFG, _threshold_runs(THRESHOLD_CFG, lambda f, p: _calibrated(p, 0.5 if p < 1 / 3 else 1.0)))
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


def test_threshold_ar_linear_chain_learned_rule():
    """AR-linear has no chain-token metric: learned iff pi_long_correct >= p/2 (0.049 at p = 0.1 fails,
    0.05 passes)."""
    ps = np.array([0.1])
    assert not pt.chain_learned("ar_linear", {"pi_long_correct": np.array([[0.049]])}, ps).any()
    assert pt.chain_learned("ar_linear", {"pi_long_correct": np.array([[0.05]])}, ps).all()


def test_threshold_learning_off_is_legal():
    """lm.lr = 0 (AdamW steps of size 0) is an accepted knob value (issue 20); a tiny lr = 0 run
    judged no claim as passed (checked by hand: greedy_long fails, the rest not judged)."""
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
    assert out.verdicts["chain_learned[leap2]"].margin == pytest.approx(0.01)
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
    """Nothing learned (chain_token_acc 0.5, acc 0.5): chain_learned fails (margin -0.49), the three
    claims are not judged, nothing passes. Only the leap-2 chain unlearned (the quick tier's case):
    leap-2's claim and the comparison are not judged, full's is judged. One seed: no SE, the
    comparison is not judged."""
    out = pl.analyze(LEAP_CFG, _leap_runs(LEAP_CFG, {"leap2": (0.5, (0.5, 0.5)), "full": (0.5, (0.5, 0.5))}))
    assert out.verdicts["chain_learned[full]"].margin == pytest.approx(-0.49)
    for claim in ("leap2_generalises_below_1/3", "full_stays_short_below_1/3", "leap2_beats_full_below_1/3"):
        assert _status(out, claim) == V.NOT_JUDGED and "was learned" in out.not_judged[claim], claim
    _never_passes_anything(out)
    out = pl.analyze(LEAP_CFG, _leap_runs(LEAP_CFG, {"leap2": (0.62, (0.5, 0.5)), "full": (1.0, (0.49, 0.51))}))
    assert _status(out, "leap2_generalises_below_1/3") == V.NOT_JUDGED
    assert _status(out, "leap2_beats_full_below_1/3") == V.NOT_JUDGED
    assert _status(out, "full_stays_short_below_1/3") == V.PASS
    one = pl.Config(d=8, p_cots=(0.2, 0.4), seeds=(1,))
    out = pl.analyze(one, _leap_runs(one, {"leap2": (1.0, (1.0,)), "full": (1.0, (0.5,))}))
    v = out.verdicts["leap2_beats_full_below_1/3"]
    assert v.status == V.NOT_JUDGED and "standard error" in v.reason
    assert _status(out, "leap2_generalises_below_1/3") == V.PASS


def test_leap2_learning_off_is_legal():
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
    """No run learns: ntp_rl_learns_every_d fails (0 < 1; a positive claim has no precondition);
    ntp_fails_at_largest_d lacks its control (NTP never learned at d = 4): not judged; at every d
    both arms are lower bounds: not judged; the growth needs learned end points: not judged. With
    one seed the comparisons have no SE: not judged."""
    none_ntp, none_rl = {k: None for k in HOLDS_NTP}, {k: None for k in HOLDS_RL}
    out = psep.analyze(SEP_CFG, _sep_runs(SEP_CFG, none_ntp, none_rl))
    assert _status(out, "ntp_rl_learns_every_d") == V.FAIL
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


def test_separation_learning_off_is_legal():
    from theoryrl.core.config import apply_overrides, validate
    validate(apply_overrides(psep.TIERS["quick"], ["lm.lr=0", "rl_lr=0"]))
