"""Verdicts of the RLVR-limits experiments on hand-built count tables: each claim passes where the
tables say it holds, fails where they say it does not (in particular when RL equals the base, i.e.
nothing was learned), and is not judged without a usable seed or the sets it needs.

Exact pass@k with n = 8 samples, k_max = 4 (1 - C(8 - c, k) / C(8, k)):
c = 0: (0, 0); c = 2: pass@1 0.25, pass@2 0.4643, pass@3 0.6429, pass@4 0.7857; c = 4: (0.5, 0.9857);
c = 6: (0.75, 1); c = 8: (1, 1)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from theoryrl.core.stages import Run
from theoryrl.core.verdicts import NOT_JUDGED as NJ
from theoryrl.experiments import rlvr_ablations as abl
from theoryrl.experiments import rlvr_algorithms as alg
from theoryrl.experiments import rlvr_passk_crossing as cross
from theoryrl.experiments import rlvr_steps as stp
from theoryrl.experiments import rlvr_vs_edge as edge
from theoryrl.rl import rlvr_metrics as rm
from theoryrl.rl import rlvr_runs as rr

N, SEED = 400, 42
KNOBS = rr.RLVRKnobs(eval_samples=8, k_max=4)
SPLITS = rr.Splits(train=(6, 6), ood=(4, 4), pass1={}, passk={}, rule="hand-built")


def counts(*parts) -> np.ndarray:
    """Per-problem correct counts: parts = (share, c) pairs over N problems, in order."""
    out = np.concatenate([np.full(int(round(share * N)), c) for share, c in parts])
    assert out.size == N
    return out


ALL2, HALF8, HALF4, ALL8 = counts((1, 2)), counts((0.5, 8), (0.5, 0)), counts((0.5, 4), (0.5, 0)), counts((1, 8))


def run(arm: str, tables: dict, entropy: dict | None = None) -> Run:
    """tables: set -> [C][T] list of count vectors (C checkpoints x T temperatures)."""
    arrays = {}
    for name, by_ckpt in tables.items():
        for ti in range(len(by_ckpt[0])):
            cnt = np.stack([by_ckpt[c][ti] for c in range(len(by_ckpt))])
            arrays[f"final/{name}/t{ti}/perfect_CxN"] = cnt
            arrays[f"final/{name}/t{ti}/answer_correct_CxN"] = cnt
            if entropy is not None:
                arrays[f"final/{name}/t{ti}/entropy_CxN"] = np.full(cnt.shape, entropy[ti])
    return Run(stage="rlvr", row={"seed": SEED, "arm": arm}, arrays=arrays)


def collected(runs: dict) -> rm.Collected:
    return rm.Collected({(SEED, a): r for a, r in runs.items()}, [SEED], {}, {SEED: SPLITS})


EMPTY = rm.Collected({}, [], {SEED: "base failed its gate"}, {})


def statuses(verdicts: dict) -> dict:
    return {k: v.status for k, v in verdicts.items()}


# ---------------------------------------------------------------- rlvr-passk-crossing


def crossing_col(rl_counts) -> rm.Collected:
    sets = lambda c: {s: [[c]] for s in rr.SPLITS}  # noqa: E731
    return collected({"base": run("base", sets(ALL2)), "grpo": run("grpo", sets(rl_counts))})


def test_crossing_passes_fails_and_is_not_judged():
    """Base c = 2 everywhere, RL c = 8 on half and 0 on half: RL - base pass@1 = 0.5 - 0.25 = +0.25
    (per-problem +0.75 / -0.25, sd 0.5 / sqrt(400) = 0.025: above 0); base - RL pass@4 = 0.786 - 0.5
    = +0.286 (above 0); the mean curves cross at k* = 3 (0.464 < 0.5 <= 0.643). RL = base: every gain
    is exactly 0: RL's pass@1 claims fail, the base's are not judged (RL did not raise pass@1), k* = 1."""
    cfg = cross.Config(rlvr=KNOBS)
    v, metrics, arrays = cross._judge(cfg, crossing_col(HALF8))
    assert set(statuses(v).values()) == {"pass"} and set(v) == set(cross.claim_names())
    assert metrics["id_rl_minus_base_pass1"] == pytest.approx(0.25)
    assert metrics["id_base_minus_rl_pass4"] == pytest.approx(1 - 15 / 70 - 0.5)
    assert metrics["id_k_star"] == 3.0
    np.testing.assert_allclose(arrays["id_base_K"][:2], [0.25, 1 - 15 / 28])
    v, metrics, _ = cross._judge(cfg, crossing_col(ALL2))
    assert metrics["id_k_star"] == 1.0
    assert {k: s for k, s in statuses(v).items() if k.startswith("rl_above")} == {
        f"rl_above_base_at_1_{s}": "fail" for s in rr.SPLITS}
    # "the base wins at k_max" presumes RL raised pass@1: with RL = base (or worse) it is not judged
    assert {s for k, s in statuses(v).items() if k.startswith("base_above")} == {NJ}
    v, _, _ = cross._judge(cfg, EMPTY)
    assert set(statuses(v).values()) == {NJ}
    v, _, _ = cross._judge(dataclasses.replace(cfg, rlvr=dataclasses.replace(KNOBS, steps=0)), crossing_col(HALF8))
    assert set(statuses(v).values()) == {NJ}


# ---------------------------------------------------------------- rlvr-steps


def test_steps_trends_pass_fail_and_not_judged():
    """Checkpoints c = 2 / half 6 / half 8: pass@1 0.25, 0.375, 0.5 (rises, last - first +0.25);
    pass@4 0.786, 0.5, 0.5 (never rises, last - first -0.286): both pass. Equal checkpoints: every
    difference 0: the pass@1 trend fails, the pass@k trend is not judged (it presumes RL raised pass@1)."""
    knobs = dataclasses.replace(KNOBS, checkpoints=(32, 64, 96))
    cfg = stp.Config(rlvr=knobs)
    half6 = counts((0.5, 6), (0.5, 0))
    base = run("base", {s: [[ALL2]] for s in stp.SETS})
    rising = run("grpo", {s: [[ALL2], [half6], [HALF8]] for s in stp.SETS})
    v, metrics, _ = stp._judge(cfg, collected({"base": base, "grpo": rising}))
    assert set(statuses(v).values()) == {"pass"}
    assert [metrics[f"id_pass1_step{s}"] for s in (32, 64, 96)] == pytest.approx([0.25, 0.375, 0.5])
    flat = run("grpo", {s: [[ALL2]] * 3 for s in stp.SETS})
    v, _, _ = stp._judge(cfg, collected({"base": base, "grpo": flat}))
    assert {k: s for k, s in statuses(v).items() if k.startswith("pass1")} == {f"pass1_rises_{s}": "fail"
                                                                               for s in stp.SETS}
    assert {s for k, s in statuses(v).items() if k.startswith("passk")} == {NJ}  # RL did not raise pass@1
    # not monotone: pass@1 0.375 -> 0.25 -> 0.5 has last - first above 0 but falls on the way
    dip = run("grpo", {s: [[half6], [ALL2], [HALF8]] for s in stp.SETS})
    v, _, _ = stp._judge(cfg, collected({"base": base, "grpo": dip}))
    assert v["pass1_rises_id"].status == "fail" and "not monotone" in v["pass1_rises_id"].reason
    assert set(statuses(stp._judge(cfg, EMPTY)[0]).values()) == {NJ}


# ---------------------------------------------------------------- rlvr-algorithms


def algorithms_col(grpo, rloo) -> rm.Collected:
    sets = lambda c: {s: [[c]] for s in alg.SETS}  # noqa: E731
    return collected({"base": run("base", sets(ALL2)), "grpo": run("grpo", sets(grpo)), "rloo": run("rloo", sets(rloo))})


def test_algorithms_pass_fail_and_not_judged():
    """Base c = 2: pass@1 0.25, pass@4 0.786, half its gap (0.786 - 0.25) / 2 = 0.268. Both RL arms
    c = 8 on 3/8 of the problems, 0 elsewhere: pass@1 0.375 (moved: per-problem +0.75 / -0.25, mean
    +0.125), pass@4 0.375, so base - RL pass@4 = +0.411 (above 0), ΔSE = 0.411 (0.143 above half the
    gap) and the spread between the two is 0: all pass. RLOO solving everything (c = 8): pass@4 1 >
    0.786 and ΔSE -0.214 < 0.268, so the "every algorithm" claims fail, and the spread 0.625 over a
    mean ΔSE 0.099 (ratio 6.3) fails. RL = base: RL did not raise pass@1, so no claim is judged
    (each would hold trivially for a model that learned nothing or collapsed)."""
    cfg = alg.Config(rlvr=KNOBS, algorithms=("grpo", "rloo"))
    r38 = counts((0.375, 8), (0.625, 0))
    v, metrics, _ = alg._judge(cfg, algorithms_col(r38, r38))
    assert set(statuses(v).values()) == {"pass"}
    assert metrics["id_grpo_delta_se"] == pytest.approx(1 - 15 / 70 - 0.375)
    assert metrics["id_spread_ratio"] == pytest.approx(0.0)
    v, metrics, _ = alg._judge(cfg, algorithms_col(r38, ALL8))
    assert set(statuses(v).values()) == {"fail"}
    assert "rloo" in v["all_below_base_at_kmax_id"].reason
    assert metrics["id_spread_ratio"] == pytest.approx(0.625 / ((0.411 - 0.214) / 2), rel=1e-2)
    v, _, _ = alg._judge(cfg, algorithms_col(ALL2, ALL2))
    assert set(statuses(v).values()) == {NJ}
    # every arm solves everything: mean ΔSE = 0.786 - 1 < 0, the spread ratio is not judged
    v, _, _ = alg._judge(cfg, algorithms_col(ALL8, ALL8))
    assert v["delta_se_spread_small_id"].status == NJ
    assert set(statuses(alg._judge(cfg, EMPTY)[0]).values()) == {NJ}


# ---------------------------------------------------------------- rlvr-ablations


def ablation_col(base_t, g8, g32, kl, ent_base=(0.5, 0.6, 0.7), ent_rl=(0.1, 0.3, 0.45)) -> rm.Collected:
    arm = lambda name, by_t, e: run(name, {"id": [by_t]}, e)  # noqa: E731
    return collected({"base": arm("base", base_t, ent_base), "grpo": arm("grpo", g8, ent_rl),
                      "grpo:G=32": arm("grpo:G=32", g32, ent_rl), "grpo:kl=0.001": arm("grpo:kl=0.001", kl, ent_rl)})


def test_ablations_pass_fail_and_not_judged():
    """Base c = 3 at T = 0.6 (pass@1 0.375, pass@4 1 - 5/70 = 0.929), c = 8 at 1.0, c = 2 at 1.2 (pass@4
    1 -> 0.786: degrades). GRPO (G = 8) at every T: c = 8 on the first half, 4 on the next quarter, 0
    on the last (pass@1 0.625, raised; pass@4 0.5 + 0.25 x 0.986 = 0.746). G = 32: c = 4 on the first
    7/8 (pass@1 0.4375, raised; pass@4 0.863): +0.116 over G = 8, 0.066 below the base. KL: c = 8 on
    the first 5/8 (pass@1 0.625, equal to G = 8's; per-problem sd 0.25 / 20, interval about ±0.025,
    inside ±0.05; pass@4 0.625, -0.121). GRPO's change 1.0 -> 1.2 is 0, the base's -0.214: +0.214.
    GRPO's entropy nearest the base's 0.5 at T = 0.6 is 0.45 at T = 1.2 (within 0.25 x 0.5), where
    base - GRPO pass@4 = 0.929 - 0.746."""
    cfg = abl.Config(rlvr=dataclasses.replace(KNOBS, eval_temperatures=(0.6, 1.0, 1.2), with_entropy=True))
    all3 = counts((1, 3))
    g8 = counts((0.5, 8), (0.25, 4), (0.25, 0))
    g32, kl = counts((0.875, 4), (0.125, 0)), counts((0.625, 8), (0.375, 0))
    col = ablation_col([all3, ALL8, ALL2], [g8] * 3, [g32] * 3, [kl] * 3)
    v, metrics, _ = abl._judge(cfg, col)
    assert statuses(v) == {n: "pass" for n in abl.NAMES}
    assert metrics["entropy_matched_rl_temperature"] == 1.2
    assert metrics["kl_minus_nokl_pass4"] == pytest.approx(0.625 - (0.5 + 0.25 * (1 - 1 / 70)))
    # no evaluation temperature brings GRPO's entropy near the base's: not judged
    far = ablation_col([all3, ALL8, ALL2], [g8] * 3, [g32] * 3, [kl] * 3, ent_rl=(0.1, 0.2, 0.3))
    assert abl._judge(cfg, far)[0]["base_wins_entropy_matched"].status == NJ
    # nothing learned: every arm is the base at every temperature; no claim passes, and the claims
    # that presume RL raised pass@1 (the KL equivalence, "the base wins") are not judged
    same = ablation_col([ALL2] * 3, [ALL2] * 3, [ALL2] * 3, [ALL2] * 3)
    v, _, _ = abl._judge(cfg, same)
    assert "pass" not in statuses(v).values()
    assert {v[n].status for n in ("kl_pass1_unchanged", "kl_lowers_kmax", "base_wins_over_rollouts32",
                                  "base_wins_entropy_matched")} == {NJ}
    # without T = 1.0 / 1.2 the temperature claims are not judged
    cfg2 = abl.Config(rlvr=dataclasses.replace(KNOBS, eval_temperatures=(0.6,), with_entropy=True))
    col2 = ablation_col([all3], [g8], [g32], [kl], (0.5,), (0.45,))
    v, _, _ = abl._judge(cfg2, col2)
    assert v["base_degrades_above_1"].status == v["rl_degrades_less_than_base"].status == NJ
    assert v["base_wins_entropy_matched"].status == "pass"
    assert set(statuses(abl._judge(cfg, EMPTY)[0]).values()) == {NJ}


# ---------------------------------------------------------------- rlvr-vs-edge


def test_vs_edge_pass_fail_and_not_judged():
    """Ops 2..7, ID 2..5, edge (6, 6), so "deeper" is op 7. Base c = 3 on ID ops (pass@1 0.375,
    pass@4 1 - C(5,4)/C(8,4) = 0.929) and 0 above; ID-band RL c = 8 on 5/8 of the ID problems
    (pass@1 0.625, raised; pass@4 0.625): base - RL pass@4 = +0.304; edge-band RL c = 2 on op 7:
    +0.786 over the base. RL = base: the edge gain is 0 and fails; the narrowing is not judged (ID-RL
    did not raise pass@1)."""
    cfg = edge.Config(rlvr=dataclasses.replace(KNOBS, eval_splits=()), op_top=7, op_problems=N)

    def tables(id_c, deep_c):
        return {f"op{o}": [[id_c if o <= 5 else deep_c]] for o in range(2, 8)}

    zero = counts((1, 0))
    all3, r58 = counts((1, 3)), counts((0.625, 8), (0.375, 0))
    good = collected({"base": run("base", tables(all3, zero)), "grpo:train=id": run("x", tables(r58, zero)),
                      "grpo:train=edge": run("y", tables(all3, ALL2))})
    v, metrics = edge._judge(cfg, good, {SEED: (6, 6)})
    assert statuses(v) == {n: "pass" for n in edge.NAMES}
    assert metrics["deep_ops_edge_rl_minus_base_pass4"] == pytest.approx(1 - 15 / 70)
    same = collected({a: run(a, tables(all3, zero)) for a in edge.ARMS})
    v, _ = edge._judge(cfg, same, {SEED: (6, 6)})
    assert statuses(v) == {"edge_rl_widens_deeper": "fail", "id_rl_narrows_kmax": NJ}
    # op_top at the edge band: no deeper op, not judged
    v, _ = edge._judge(dataclasses.replace(cfg, op_top=6), good, {SEED: (6, 6)})
    assert v["edge_rl_widens_deeper"].status == NJ
    assert set(statuses(edge._judge(cfg, EMPTY, {})[0]).values()) == {NJ}
