"""parity-threshold and parity-star end to end at tiny sizes: run folder, summary contract, figures."""
import json

import numpy as np

from theoryrl.core.experiment import execute
from theoryrl.core.results import load_npz
from theoryrl.experiments import parity_star, parity_threshold
from theoryrl.theory import parity as th


def test_parity_threshold_tiny_run_summary_and_plot(tmp_path):
    sets = ["families=ar_linear", "ds=4", "p_cots=0.1,0.6", "seeds=42,43", "head_samples=4000", "chain_samples=400", "chunks=2",
            "eval_prompts=64"]
    folder = execute(parity_threshold, "quick", sets, out=tmp_path / "t", quiet=True)
    summary = json.loads((folder / "summary.json").read_text())
    assert [(r["d"], r["p_cot"]) for r in summary["rows"]] == [(4, 0.1), (4, 0.6)]
    for r in summary["rows"]:
        assert r["theory_p_eos_x1"] == th.p_eos_given_first_x1(r["p_cot"])
        assert 0.0 <= r["acc_min_seed"] <= r["acc"] <= r["acc_max_seed"] <= 1.0
    # 400 chain samples do not teach the chain at p = 0.1 (pi_long_correct ~0.03 < p/2): the transition
    # presupposes it, so it is a record in `verdicts` and, not judged, absent from the booleans
    assert "transition_brackets_1/3[ar_linear,d=4]" in summary["verdicts"]
    assert all(isinstance(v, bool) for v in summary["verdict"].values())
    assert set(summary["verdict"]) | set(summary["not_judged"]) == set(summary["verdicts"])
    arrays = load_npz(folder / "arrays.npz")
    assert arrays["hist_acc"].shape == (1, 1, 2, 2, 2)  # [families, d, p, seeds, chunks]
    # the chain heads learn y_l = y_{l-1} x_l, so above the threshold greedy is right on every prompt
    assert np.all(arrays["final_acc"][0, 0, 1] == 1.0)
    assert [p.name for p in parity_threshold.plot(folder, tmp_path / "fig")] == ["parity-threshold.png"]


def test_parity_star_tiny_run_summary_and_plot(tmp_path):
    sets = ["p0s=0.25", "seeds=42", "rounds=2", "calib_prompts=512", "learned_d=4", "learned_prompts=1024",
            "learned_batch=8", "head_samples=4000", "chain_samples=400", "pg_steps=4", "pg_steps_per_chunk=2",
            "pg_prompts=8", "pg_group=4", "eval_prompts=64"]
    folder = execute(parity_star, "quick", sets, out=tmp_path / "s", quiet=True)
    summary = json.loads((folder / "summary.json").read_text())
    assert [(r["arm"], r["variant"]) for r in summary["rows"]] == [
        ("calibrated", "cot"), ("star", "cot"), ("star", "e2e"), ("pg", "reinforce"), ("pg", "grpo")]
    assert summary["metrics"]["formula_rounds[p0=0.25]"] == 1
    assert summary["metrics"]["kept_long_wrong_mean[star,cot,p0=0.25]"] == 0.0  # r_cot keeps correct chains only
    assert {"sim_calibrated_switch_round_equals_formula[p0=0.25]", "learned_cot_switch_within_1[p0=0.25]",
            "pg_reaches_acc_target[pg,grpo,p0=0.25]"} <= set(summary["verdicts"])
    assert "sim_calibrated_switch_round_equals_formula[p0=0.25]" in summary["verdict"]  # a simulation: judged
    calibrated_row = summary["rows"][0]  # the theory's value, not a measured accuracy
    assert calibrated_row["kind"] == "simulation" and "final_acc" not in calibrated_row
    assert calibrated_row["theory_final_acc"] == th.greedy_accuracy(calibrated_row["final_long"])
    arrays = load_npz(folder / "arrays.npz")
    calibrated = arrays["calibrated,cot,0/long"]
    assert calibrated.shape == (1, 3) and np.isclose(calibrated[0, 0], 0.25)  # round 0 is the pretrained p0
    assert arrays["pg,grpo,0/acc"].shape == (1, 3)
    assert [p.name for p in parity_star.plot(folder, tmp_path / "fig")] == ["parity-star.png"]
