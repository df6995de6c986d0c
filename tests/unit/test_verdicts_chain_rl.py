"""Every verdict of chain-emergence, chain-ood, chain-simple-vs-hard and chain-simple-mass fed
hand-made finished runs: the claim holds -> pass, the claim fails -> fail, nothing learned (or a
precondition fails) -> not judged (issue 20 §3). Each section's docstring derives the expected
values by hand.

Common construction: two seeds per arm whose per-seed values are the arm's value -+ d. The sample
SD of {v - d, v + d} (ddof 1) is d sqrt(2), so the SE over the two seeds is d sqrt(2) / sqrt(2) = d.
"""
import dataclasses
import math

import numpy as np
import pytest

from theoryrl.core.stages import Run, Runs
from theoryrl.core.verdicts import FAIL, NOT_JUDGED, PASS
from theoryrl.experiments import chain_emergence as emergence
from theoryrl.experiments import chain_ood as ood
from theoryrl.experiments import chain_simple_mass as mass
from theoryrl.experiments import chain_simple_vs_hard as svh

EPOCHS = 3  # synthetic curves are this long; analyze NaN-pads them to the recipe's epochs


def _eval_curves(prefix: str, acc, acc_all, traversal=None, traversal_all=None) -> dict:
    """history/<prefix>/<metric> curves, constant over EPOCHS except where a list gives them."""
    traversal = acc if traversal is None else traversal
    traversal_all = acc_all if traversal_all is None else traversal_all

    def curve(v):
        return np.asarray(v, np.float64) if np.ndim(v) else np.full(EPOCHS, float(v))

    vals = {"acc": acc, "acc_all": acc_all, "traversal": traversal, "traversal_all": traversal_all,
            "reached": 1.0, "len_correct": 3.0}
    return {f"history/{prefix}/{k}": curve(v) for k, v in vals.items()}


def _common(train_acc=1.0) -> dict:
    return {"history/train_acc": np.full(EPOCHS, train_acc), "history/loss": np.zeros(EPOCHS),
            "final/stop_epoch": np.array(-1), "final/epoch": np.array(EPOCHS)}


# ---------------------------------------------------------------- chain-emergence
"""chain-emergence, m in {4, 12}, both attentions, seeds 42 / 43 (d = 0.005: SE 0.005).
Each verdict's value is the mean over seeds of min(conditional, over-all-rollouts) accuracy; over all
rollouts is never above the conditional one, so it is the all-rollouts mean.
- holds: conditional test accuracy 1.0, over all 0.99 -+ 0.005 -> value 0.99, margin 0.99 - 0.98 =
  0.01, SE 0.005. Traversal at m = 12: softmax over all 0.93 -+ 0.005 (conditional 0.95) -> margin
  0.93 - 0.90 = 0.03; linear over all 0.995 -+ 0.003 (conditional 1.0) -> margin 0.005.
- fails (timeouts): conditional accuracy 0.99 (the paper's metric alone would pass) but over all
  rollouts 0.95 -+ 0.005 -> value 0.95, margin -0.03; traversal conditional 0.99, over all 0.85 ->
  softmax margin 0.85 - 0.90 = -0.05, linear 0.85 - 0.99 = -0.14.
- nothing learned (lr = 0: greedy guessing of a sink, accuracy 0.5, traversal 0): an "it learns"
  claim fails, value 0.5 (margin -0.48) and traversal 0 (margin -0.90 / -0.99): never a pass.
- never evaluated (NaN curves): not judged.
"""

EM_CFG = emergence.Config(m=(4, 12), attention=("softmax", "linear"), seeds=(42, 43))


def _pick(spec, attention: str, sign: float) -> float:
    spec = spec[attention] if isinstance(spec, dict) else spec
    mean, d = spec if isinstance(spec, tuple) else (spec, 0.0)
    return mean + sign * d


def _em_runs(acc_all, acc=1.0, trav_all=None, trav=None) -> Runs:
    """Each of acc_all / trav_all / trav: (mean, d), a float (d = 0), or attention -> either; the
    seeds get mean -+ d. acc (conditional test accuracy) is a float shared by every run."""
    runs = []
    for attention in EM_CFG.attention:
        for m in EM_CFG.m:
            for i, seed in enumerate(EM_CFG.seeds):
                sign = (-1.0, 1.0)[i]
                a_all = _pick(acc_all, attention, sign)
                t_all = a_all if trav_all is None else _pick(trav_all, attention, sign)
                t = acc if trav is None else _pick(trav, attention, sign)
                arrays = {**_common(), **_eval_curves("test", acc, a_all, t, t_all),
                          **_eval_curves("val", acc, a_all)}
                runs.append(Run("train", {"attention": attention, "m": m, "seed": seed}, arrays))
    return Runs(runs)


def test_emergence_holds_passes_with_margin_and_se():
    out = emergence.analyze(EM_CFG, _em_runs(acc_all=(0.99, 0.005), trav_all={"softmax": (0.93, 0.005),
                                                                               "linear": (0.995, 0.003)},
                                             trav={"softmax": (0.95, 0.0), "linear": (1.0, 0.0)}))
    v = out.verdicts
    assert set(v) == {"softmax_m4_test_ge_98", "softmax_m12_test_ge_98", "linear_m4_test_ge_98",
                      "linear_m12_test_ge_98", "softmax_m12_traversal_ge_90", "linear_m12_traversal_ge_99"}
    for a in ("softmax", "linear"):
        for m in (4, 12):
            t = v[f"{a}_m{m}_test_ge_98"]
            assert t.status == PASS and t.value == pytest.approx(0.99) and t.margin == pytest.approx(0.01)
            assert t.se == pytest.approx(0.005) and t.threshold == 0.98 and "Table 1" in t.paper
    assert v["softmax_m12_traversal_ge_90"].status == PASS
    assert v["softmax_m12_traversal_ge_90"].margin == pytest.approx(0.03)
    assert "93.2" in v["softmax_m12_traversal_ge_90"].paper
    assert v["linear_m12_traversal_ge_99"].status == PASS
    assert v["linear_m12_traversal_ge_99"].margin == pytest.approx(0.005)
    assert out.verdict["softmax_m4_test_ge_98"] is True and not out.not_judged


def test_emergence_timeouts_fail_though_the_conditional_accuracy_passes():
    out = emergence.analyze(EM_CFG, _em_runs(acc=0.99, acc_all=(0.95, 0.005), trav=(0.99, 0.0),
                                             trav_all=(0.85, 0.0)))
    v = out.verdicts
    assert out.metrics["softmax_m4_test_acc"] == pytest.approx(0.99)  # the paper's metric alone: >= 0.98
    assert v["softmax_m4_test_ge_98"].status == FAIL
    assert v["softmax_m4_test_ge_98"].margin == pytest.approx(-0.03)
    assert v["softmax_m12_traversal_ge_90"].status == FAIL
    assert v["softmax_m12_traversal_ge_90"].margin == pytest.approx(-0.05)
    assert v["linear_m12_traversal_ge_99"].status == FAIL
    assert v["linear_m12_traversal_ge_99"].value == pytest.approx(0.85)
    assert v["linear_m12_traversal_ge_99"].margin == pytest.approx(-0.14)
    assert out.verdict["linear_m12_test_ge_98"] is False and out.verdict["linear_m12_traversal_ge_99"] is False


def test_emergence_nothing_learned_never_passes_and_unmeasured_is_not_judged():
    out = emergence.analyze(EM_CFG, _em_runs(acc=0.5, acc_all=(0.5, 0.0), trav=(0.0, 0.0), trav_all=(0.0, 0.0)))
    assert {k: v.status for k, v in out.verdicts.items()} == {k: FAIL for k in out.verdicts}
    assert out.verdicts["linear_m4_test_ge_98"].margin == pytest.approx(-0.48)
    assert out.verdicts["softmax_m12_traversal_ge_90"].margin == pytest.approx(-0.90)
    nan = emergence.analyze(EM_CFG, _em_runs(acc=math.nan, acc_all=(math.nan, 0.0)))
    assert all(v.status == NOT_JUDGED for v in nan.verdicts.values())
    assert nan.verdict == {} and set(nan.not_judged) == set(nan.verdicts)
    for a in ("softmax", "linear"):
        for m in (4, 12):
            assert nan.verdicts[f"{a}_m{m}_test_ge_98"].status == NOT_JUDGED
            assert "not measured (NaN)" in nan.verdicts[f"{a}_m{m}_test_ge_98"].reason


def test_emergence_early_stops_on_val_and_tests_on_an_independent_set():
    """plan: the trainer early-stops on its first eval set, which must be "val", not "test"."""
    (plan0,) = emergence.plan(emergence.Config(m=(4,), attention=("softmax",), seeds=(42,)))
    spec = plan0.bucket[0]  # the bucket is (TrainSpec, chunks, epochs per chunk)
    assert [e.name for e in spec.evals] == ["val", "test"]
    assert set(plan0.hp.eval_dist_probs) == {"val", "test"}


# ---------------------------------------------------------------- chain-ood
"""chain-ood at the paper tier's recipe (budget: linear 200k x 200 x 10 = 4e8 rollouts, softmax
50k x 300 x 20 = 3e8), seeds 42 / 43, test m = 4, 8, 12; per seed mean -+ d.
- holds: val (m = 4) accuracy 1.0; at every m test accuracy 1.0 conditional, 0.99 -+ 0.005 over all
  rollouts -> value 0.99, margin 0.01, SE 0.005; traversal the same -> margin 0.99 - 0.98 = 0.01
  (linear), 0.99 - 0.90 = 0.09 (softmax).
- fails (the issue's quick-tier linear numbers, at m = 12): conditional 0.963, over all 0.951 -+ 0.005
  -> value 0.951, margin -0.029; traversal conditional 0.938, over all 0.93 -> margin -0.05. m = 4, 8
  and softmax still pass.
- softmax fails (linear as in holds): m = 12 test conditional 0.97, over all 0.95 -+ 0.005 -> value
  0.95, margin -0.03; m = 8 traversal conditional 0.93, over all 0.89 -+ 0.005 -> value 0.89, SE
  0.005, margin 0.89 - 0.90 = -0.01 (its own threshold 0.90: fail by 0.01). The threshold is
  softmax's own: traversal 0.95 / 0.92 at m = 4 in both attentions -> softmax 0.92 - 0.90 = +0.02
  (pass), linear 0.92 - 0.98 = -0.06 (fail); softmax m = 12 traversal 0.96 / 0.94 -> +0.04 (pass).
- nothing learned: val accuracy 0.5 (and test 0.5) -> not judged: the training length was not learned.
- the "holds" runs under the quick tier's recipe (5000 x 30 x 10 = 1.5e6 rollouts) -> not judged:
  the paper's claim is judged at the paper tier; the value (0.99) and threshold stay in the record.
"""

OOD_CFG = ood.Config(seeds=(42, 43))


def _ood_runs(cfg, val=1.0, test=None) -> Runs:
    """test: (attention, m) -> (cond acc, (acc_all mean, d), cond traversal, (traversal_all mean, d));
    default 1.0 / 0.99 -+ 0.005 for both."""
    default = (1.0, (0.99, 0.005), 1.0, (0.99, 0.005))
    runs = []
    for attention in cfg.attention:
        for i, seed in enumerate(cfg.seeds):
            sign = (-1.0, 1.0)[i]
            arrays = {**_common(), **_eval_curves("val", val, val)}
            for m in cfg.m_test:
                acc, (a_all, da), trav, (t_all, dt) = (test or {}).get((attention, m), default)
                arrays.update(_eval_curves(f"test_m{m}", acc, a_all + sign * da, trav, t_all + sign * dt))
            runs.append(Run("train", {"attention": attention, "seed": seed}, arrays))
    return Runs(runs)


def test_ood_holds_passes_at_the_paper_budget():
    out = ood.analyze(OOD_CFG, _ood_runs(OOD_CFG))
    v = out.verdicts
    assert len(v) == 12 and all(r.status == PASS for r in v.values())
    assert v["linear_test_m12_acc_ge_98"].margin == pytest.approx(0.01)
    assert v["linear_test_m12_acc_ge_98"].se == pytest.approx(0.005)
    assert v["linear_test_m12_traversal_ge_98"].margin == pytest.approx(0.01)
    assert v["softmax_test_m8_traversal_ge_90"].margin == pytest.approx(0.09)
    assert "Table 2" in v["linear_test_m12_acc_ge_98"].paper


def test_ood_on_the_threshold_fails_at_the_paper_budget():
    out = ood.analyze(OOD_CFG, _ood_runs(OOD_CFG, test={("linear", 12): (0.963, (0.951, 0.005), 0.938, (0.93, 0.0))}))
    v = out.verdicts
    assert v["linear_test_m12_acc_ge_98"].status == FAIL
    assert v["linear_test_m12_acc_ge_98"].value == pytest.approx(0.951)
    assert v["linear_test_m12_acc_ge_98"].margin == pytest.approx(-0.029)
    assert v["linear_test_m12_traversal_ge_98"].status == FAIL
    assert v["linear_test_m12_traversal_ge_98"].margin == pytest.approx(-0.05)
    assert v["linear_test_m8_acc_ge_98"].status == PASS and v["softmax_test_m12_acc_ge_98"].status == PASS
    assert out.verdict["linear_test_m12_acc_ge_98"] is False


def test_ood_softmax_fails_at_the_paper_budget_against_its_own_traversal_threshold():
    low = (1.0, (0.99, 0.005), 0.95, (0.92, 0.0))  # traversal 0.92 at m = 4, both attentions
    out = ood.analyze(OOD_CFG, _ood_runs(OOD_CFG, test={("softmax", 12): (0.97, (0.95, 0.005), 0.96, (0.94, 0.0)),
                                                        ("softmax", 8): (1.0, (0.99, 0.005), 0.93, (0.89, 0.005)),
                                                        ("softmax", 4): low, ("linear", 4): low}))
    v = out.verdicts
    acc = v["softmax_test_m12_acc_ge_98"]
    assert acc.status == FAIL and acc.value == pytest.approx(0.95) and acc.margin == pytest.approx(-0.03)
    assert acc.se == pytest.approx(0.005)
    trav = v["softmax_test_m8_traversal_ge_90"]
    assert trav.status == FAIL and trav.threshold == 0.90 and trav.value == pytest.approx(0.89)
    assert trav.margin == pytest.approx(-0.01) and trav.se == pytest.approx(0.005)
    assert v["softmax_test_m12_traversal_ge_90"].status == PASS
    assert v["softmax_test_m12_traversal_ge_90"].margin == pytest.approx(0.04)
    assert v["softmax_test_m8_acc_ge_98"].status == PASS
    # the same traversal (0.92) passes softmax's 0.90 and fails linear's 0.98
    assert v["softmax_test_m4_traversal_ge_90"].status == PASS
    assert v["softmax_test_m4_traversal_ge_90"].margin == pytest.approx(0.02)
    assert v["linear_test_m4_traversal_ge_98"].status == FAIL
    assert v["linear_test_m4_traversal_ge_98"].threshold == 0.98
    assert v["linear_test_m4_traversal_ge_98"].margin == pytest.approx(-0.06)
    assert v["linear_test_m12_acc_ge_98"].status == PASS and v["linear_test_m12_traversal_ge_98"].status == PASS
    assert out.verdict["softmax_test_m12_acc_ge_98"] is False
    assert out.verdict["softmax_test_m8_traversal_ge_90"] is False


def test_ood_nothing_learned_is_not_judged():
    out = ood.analyze(OOD_CFG, _ood_runs(OOD_CFG, val=0.5, test={(a, m): (0.5, (0.5, 0.0), 0.0, (0.0, 0.0))
                                                                  for a in ("softmax", "linear") for m in (4, 8, 12)}))
    assert all(r.status == NOT_JUDGED for r in out.verdicts.values()) and out.verdict == {}
    assert "training length m = 4 was learned" in out.not_judged["linear_test_m12_acc_ge_98"]


def test_ood_quick_tier_is_not_judged_and_says_so_with_its_value():
    cfg = ood.TIERS["quick"]
    out = ood.analyze(cfg, _ood_runs(cfg))
    rec = out.verdicts["linear_test_m12_acc_ge_98"]
    assert all(r.status == NOT_JUDGED for r in out.verdicts.values())
    assert "quick tier: the paper's claim is judged at the paper tier" in rec.reason
    assert "learned" not in rec.reason  # only the budget precondition failed
    assert rec.value == pytest.approx(0.99) and rec.threshold == 0.98


# ---------------------------------------------------------------- chain-simple-vs-hard
"""chain-simple-vs-hard, quick recipe (80 epochs: a run that never reaches 90% is charged 81), k = 1..4,
seeds 42 / 43. A run "reaching at epoch e" has test accuracy (both denominators) 0.5 before epoch e and
1.0 from it; epochs_to_90 = e.
- holds: k = 1 never (flat 0.48 / 0.50: mean 0.49, SE 0.01 -> hard_only_stalls margin 0.75 - 0.49 =
  0.26); k = 2 at 12 / 14 (13, SE 1), k = 3 at 9 / 11 (10, SE 1), k = 4 at 5 / 7 (6, SE 1).
  Speed: 81 - 6 = 75 against a band 2 sqrt(0 + 1) = 2 -> margin 73; each next k is faster: pass.
  most_starts_solves_hardest: 1.0 -> margin 0.02.
- fails: (a) k = 1 learns as well (at 6 / 8: mean 7, final 1.0 -> stall margin 0.75 - 1.0 = -0.25) and
  is only 1 epoch slower than k = 4 (6): band 2 sqrt(1 + 1) = 2.828 -> inside the noise: fail;
  (b) k = 1 never, k = 2 at 5 / 7 (6), k = 3 at 40 / 42 (41), k = 4 at 5 / 7: first vs last passes,
  but k = 3 is slower than k = 2 by 35 > 2.828: not monotone -> fail;
  (c) k = 4 levels off at 0.95 (reached 90% at 5 / 7) -> solves fails with margin -0.03, so
  hard_only_stalls and the speed comparison (positive control failed) are not judged.
- nothing learned (every arm flat at 0.5): solves fails (margin -0.48); the two others not judged.
- one seed: no SE, the speed comparison is not judged.
"""

def _svh_cfg(seeds=(42, 43)):
    return svh.Config(seeds=seeds, recipe=svh.TIERS["quick"].recipe)


def _step(reach, hi=1.0, lo=0.5, n=20):
    curve = np.full(n, lo)
    if reach is not None:
        curve[reach - 1:] = hi
    return curve


def _svh_runs(cfg, arms: dict) -> Runs:
    """arms: k -> per-seed list of (reach epoch or None, final level, flat level when never)."""
    runs = []
    for k in cfg.num_start_positions:
        for i, seed in enumerate(cfg.seeds):
            reach, hi, lo = arms[k][i]
            curve = _step(reach, hi, lo)
            runs.append(Run("train", {"num_start_positions": k, "seed": seed},
                            {**_common(), **_eval_curves("test", curve, curve, curve, curve)}))
    return Runs(runs)


NEVER = (None, 1.0, 0.5)
SVH_HOLDS = {1: [(None, 1.0, 0.48), (None, 1.0, 0.50)], 2: [(12, 1.0, 0.5), (14, 1.0, 0.5)],
             3: [(9, 1.0, 0.5), (11, 1.0, 0.5)], 4: [(5, 1.0, 0.5), (7, 1.0, 0.5)]}


def test_simple_vs_hard_holds_passes():
    cfg = _svh_cfg()
    out = svh.analyze(cfg, _svh_runs(cfg, SVH_HOLDS))
    v = out.verdicts
    assert {k: r.status for k, r in v.items()} == {"most_starts_solves_hardest": PASS, "hard_only_stalls": PASS,
                                                  "more_easy_starts_learn_no_slower": PASS}
    assert v["hard_only_stalls"].value == pytest.approx(0.49) and v["hard_only_stalls"].se == pytest.approx(0.01)
    assert v["hard_only_stalls"].margin == pytest.approx(0.26)
    speed = v["more_easy_starts_learn_no_slower"]
    assert speed.value == pytest.approx(75) and speed.threshold == pytest.approx(2.0)
    assert speed.margin == pytest.approx(73)
    assert v["most_starts_solves_hardest"].margin == pytest.approx(0.02)
    assert [r["epochs_to_90"] for r in out.rows] == [None, None, 12, 14, 9, 11, 5, 7]


def test_simple_vs_hard_fails():
    cfg = _svh_cfg()
    a = svh.analyze(cfg, _svh_runs(cfg, {**SVH_HOLDS, 1: [(6, 1.0, 0.5), (8, 1.0, 0.5)]})).verdicts
    assert a["hard_only_stalls"].status == FAIL and a["hard_only_stalls"].margin == pytest.approx(-0.25)
    assert a["more_easy_starts_learn_no_slower"].status == FAIL
    assert a["more_easy_starts_learn_no_slower"].value == pytest.approx(1.0)
    assert a["more_easy_starts_learn_no_slower"].threshold == pytest.approx(2 * math.sqrt(2))
    b = svh.analyze(cfg, _svh_runs(cfg, {**SVH_HOLDS, 2: [(5, 1.0, 0.5), (7, 1.0, 0.5)],
                                         3: [(40, 1.0, 0.5), (42, 1.0, 0.5)]})).verdicts
    assert b["more_easy_starts_learn_no_slower"].status == FAIL
    assert "not monotone" in b["more_easy_starts_learn_no_slower"].reason
    assert "k = 3" in b["more_easy_starts_learn_no_slower"].reason
    c = svh.analyze(cfg, _svh_runs(cfg, {**SVH_HOLDS, 4: [(5, 0.95, 0.5), (7, 0.95, 0.5)]})).verdicts
    assert c["most_starts_solves_hardest"].status == FAIL
    assert c["most_starts_solves_hardest"].margin == pytest.approx(-0.03)
    assert c["hard_only_stalls"].status == NOT_JUDGED and "most-starts arm" in c["hard_only_stalls"].reason
    assert c["more_easy_starts_learn_no_slower"].status == NOT_JUDGED


def test_simple_vs_hard_nothing_learned_is_not_judged_and_one_seed_has_no_se():
    cfg = _svh_cfg()
    out = svh.analyze(cfg, _svh_runs(cfg, {k: [NEVER, NEVER] for k in (1, 2, 3, 4)}))
    v = out.verdicts
    assert v["most_starts_solves_hardest"].status == FAIL
    assert v["most_starts_solves_hardest"].margin == pytest.approx(-0.48)
    assert v["hard_only_stalls"].status == NOT_JUDGED and v["more_easy_starts_learn_no_slower"].status == NOT_JUDGED
    assert set(out.verdict) == {"most_starts_solves_hardest"}
    one = _svh_cfg(seeds=(42,))
    single = svh.analyze(one, _svh_runs(one, {k: arms[:1] for k, arms in SVH_HOLDS.items()})).verdicts
    assert single["hard_only_stalls"].status == PASS
    assert single["more_easy_starts_learn_no_slower"].status == NOT_JUDGED
    assert "no standard error" in single["more_easy_starts_learn_no_slower"].reason


# ---------------------------------------------------------------- chain-simple-mass
"""chain-simple-mass with the quick recipe (120 epochs x 5 steps: a run that never reaches 90% is
charged 120 x 5 + 5 = 605 steps, a lower bound), c in {0, 0.5, 1}, seeds 42 / 43. A run reaching at
epoch e has steps_to_90 = 5e.
- holds: c = 0 never (605, 605: SE 0); c = 0.5 at epochs 40 / 42 (200 / 210: mean 205, SE 5); c = 1 at
  20 / 22 (100 / 110: 105, SE 5). 605 - 105 = 500 against a band 2 sqrt(0 + 25) = 10: margin 490;
  each larger c is faster: pass.
- fails: (a) reversed: c = 0 at 20 / 22 (105), c = 1 never (605): value -500, fail; (b) inside the
  noise: c = 0 and 0.5 at 20 / 24 (110, SE 10), c = 1 at 19 / 23 (105, SE 10): value 5 against a band
  2 sqrt(200) = 28.28: fail; (c) not monotone: c = 0 never, c = 0.5 at 20 / 22 (105), c = 1 at
  40 / 42 (205): first vs last 400 passes, but c = 1 is 100 slower than c = 0.5 (band 2 sqrt(50) =
  14.1): fail.
- nothing learned (no run reaches 90%): not judged. One seed: no SE, not judged.
"""


def _mass_cfg(seeds=(42, 43)):
    return mass.Config(m=5, c=(0.0, 0.5, 1.0), seeds=seeds, recipe=mass.TIERS["quick"].recipe)


def _mass_runs(cfg, reach: dict) -> Runs:
    """reach: c -> per-seed epoch at which accuracy on distance m-1 jumps 0.5 -> 1.0 (None: never)."""
    runs = []
    for c in cfg.c:
        for i, seed in enumerate(cfg.seeds):
            curve = _step(reach[c][i], n=50)
            runs.append(Run("train", {"c": c, "seed": seed, "simple_k": 1, "rest": "hardest"},
                            {**_common(), **_eval_curves("hard", curve, curve, curve, curve)}))
    return Runs(runs)


MASS_HOLDS = {0.0: [None, None], 0.5: [40, 42], 1.0: [20, 22]}


def test_simple_mass_holds_passes():
    cfg = _mass_cfg()
    out = mass.analyze(cfg, _mass_runs(cfg, MASS_HOLDS))
    v = out.verdicts["steps_to_90_decrease_as_c_grows"]
    assert v.status == PASS and v.value == pytest.approx(500) and v.threshold == pytest.approx(10)
    assert v.margin == pytest.approx(490) and v.se == pytest.approx(5) and "Theorems 2-3" in v.paper
    assert out.metrics["c=0.0_steps_to_90_mean"] == pytest.approx(605)
    assert out.metrics["c=1.0_steps_to_90_se"] == pytest.approx(5)
    assert out.metrics["c=0.0_steps_to_90_median"] is None and out.metrics["c=0.5_reached_frac"] == 1.0
    assert out.verdict == {"steps_to_90_decrease_as_c_grows": True}


def test_simple_mass_fails_reversed_within_noise_or_not_monotone():
    cfg = _mass_cfg()
    reversed_ = mass.analyze(cfg, _mass_runs(cfg, {0.0: [20, 22], 0.5: [40, 42], 1.0: [None, None]}))
    v = reversed_.verdicts["steps_to_90_decrease_as_c_grows"]
    assert v.status == FAIL and v.value == pytest.approx(-500)
    noise = mass.analyze(cfg, _mass_runs(cfg, {0.0: [20, 24], 0.5: [20, 24], 1.0: [19, 23]}))
    v = noise.verdicts["steps_to_90_decrease_as_c_grows"]
    assert v.status == FAIL and v.value == pytest.approx(5) and v.threshold == pytest.approx(2 * math.sqrt(200))
    bump = mass.analyze(cfg, _mass_runs(cfg, {0.0: [None, None], 0.5: [20, 22], 1.0: [40, 42]}))
    v = bump.verdicts["steps_to_90_decrease_as_c_grows"]
    assert v.status == FAIL and v.value == pytest.approx(400) and "not monotone" in v.reason
    assert bump.verdict == {"steps_to_90_decrease_as_c_grows": False}


def test_simple_mass_nothing_learned_or_one_seed_is_not_judged():
    cfg = _mass_cfg()
    out = mass.analyze(cfg, _mass_runs(cfg, {c: [None, None] for c in cfg.c}))
    v = out.verdicts["steps_to_90_decrease_as_c_grows"]
    assert v.status == NOT_JUDGED and "learned at some c" in v.reason and out.verdict == {}
    one = _mass_cfg(seeds=(42,))
    single = mass.analyze(one, _mass_runs(one, {c: r[:1] for c, r in MASS_HOLDS.items()}))
    v = single.verdicts["steps_to_90_decrease_as_c_grows"]
    assert v.status == NOT_JUDGED and "no standard error" in v.reason


# ---------------------------------------------------------------- learning switched off
"""lr = 0 and epochs = 0 are legal knob values of every chain recipe. A 0-epoch run has no history
(the driver runs no chunk): only final/stop_epoch = -1 and final/epoch = 0. analyze then sees NaN
curves of length 0, and no verdict is judged (so none passes). The lr = 0 case (curves of a run
that never moved) is the "nothing learned" case of each section above."""


def _no_history(row) -> Run:
    return Run("train", row, {"final/stop_epoch": np.array(-1), "final/epoch": np.array(0)})


def test_learning_switched_off_is_legal_and_judges_nothing():
    off = {"lr": 0.0, "epochs": 0}
    for module, cfg in ((emergence, emergence.Config(m=(4,), seeds=(42, 43))), (ood, ood.Config(seeds=(42, 43))),
                        (svh, svh.Config(seeds=(42, 43))), (mass, mass.Config(seeds=(42, 43)))):
        recipes = {f: getattr(cfg, f) for f in ("softmax", "linear", "recipe") if hasattr(cfg, f)}
        cfg = dataclasses.replace(cfg, **{f: dataclasses.replace(r, **off) for f, r in recipes.items()})
        cfg.validate()
        out = module.analyze(cfg, Runs([_no_history(p.row) for p in module.plan(cfg)]))
        assert out.verdicts and all(v.status == NOT_JUDGED for v in out.verdicts.values()), module.ID
        assert out.verdict == {}


def test_learning_claims_are_not_judged_when_nothing_was_trained():
    """The "it learns" claims fail when a trained run learned nothing (sections above) and are not
    judged when nothing was trained: 0 epochs leave no evaluation (NaN), so chain-emergence's
    `*_test_ge_98` and traversal claims at m = 4 and 12, and chain-simple-vs-hard's
    most_starts_solves_hardest (and the two claims it is the positive control of) are not judged."""
    cfg = dataclasses.replace(EM_CFG, softmax=dataclasses.replace(EM_CFG.softmax, epochs=0),
                              linear=dataclasses.replace(EM_CFG.linear, epochs=0))
    v = emergence.analyze(cfg, Runs([_no_history(p.row) for p in emergence.plan(cfg)])).verdicts
    assert set(v) == {"softmax_m4_test_ge_98", "softmax_m12_test_ge_98", "linear_m4_test_ge_98",
                      "linear_m12_test_ge_98", "softmax_m12_traversal_ge_90", "linear_m12_traversal_ge_99"}
    for claim, rec in v.items():
        assert rec.status == NOT_JUDGED and "not measured (NaN)" in rec.reason, claim
    cfg = _svh_cfg()
    cfg = dataclasses.replace(cfg, recipe=dataclasses.replace(cfg.recipe, epochs=0))
    v = svh.analyze(cfg, Runs([_no_history(p.row) for p in svh.plan(cfg)])).verdicts
    solves = v["most_starts_solves_hardest"]
    assert solves.status == NOT_JUDGED and "not measured (NaN)" in solves.reason
    assert v["hard_only_stalls"].status == NOT_JUDGED and "most-starts arm" in v["hard_only_stalls"].reason
    assert v["more_easy_starts_learn_no_slower"].status == NOT_JUDGED
