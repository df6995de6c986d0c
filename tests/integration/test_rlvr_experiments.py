"""The RLVR-limits experiments end to end at a tiny size, with learning off.

A 4-step base is trained into an empty store; it never solves anything, so its calibration finds
no train band and the splits are fixed (`rlvr_runs.seed_splits` patched: train op 4, OOD op 3) to
reach the RL stage. rlvr-passk-crossing then runs the base (a compute run) and GRPO with rlvr.lr = 0:
the RL model stays the base and, with the same problems and evaluation keys, samples exactly the
base's tables, so every count table is equal and no claim passes. rlvr-algorithms runs all six
algorithms (PPO with its value head, DAPO oversampling, ReMax's greedy rollout) through the harness
from the same store, with the same result. rlvr-coverage scores the kept samples and gold traces
under the base (both claims need RL to have raised pass@1, so neither is judged); rlvr-distillation with SFT steps 0 has an SFT arm equal to
the base (its claim fails, and the RL claim, which needs SFT's positive control, is not judged).
Every figure is drawn.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from theoryrl.core.experiment import execute
from theoryrl.core.results import load_npz
from theoryrl.experiments import rlvr_algorithms as alg
from theoryrl.experiments import rlvr_coverage as cov
from theoryrl.experiments import rlvr_distillation as dis
from theoryrl.experiments import rlvr_passk_crossing as cross
from theoryrl.rl import rlvr_runs as rr

TINY = ["seeds=42", "base.op_max=6", "base.id_hi=3", "base.medium_max=3", "base.mix=0.5,0.5,0.0", "base.steps=4",
        "base.chunk=2", "base.d_model=32", "base.n_layers=1", "base.n_heads=2", "base.d_ff=64",
        "base.eval_problems=4", "base.eval_samples=8", "base.k_max=4", "base.curve_problems=2", "base.curve_samples=2",
        "rlvr.steps=2", "rlvr.checkpoints=1,2", "rlvr.prompts_per_step=2", "rlvr.group_size=2", "rlvr.train_problems=6",
        "rlvr.id_problems=3", "rlvr.ood_problems=2", "rlvr.eval_samples=4", "rlvr.k_max=4", "rlvr.lr=0"]


@pytest.fixture
def forced_splits(monkeypatch, tmp_path_factory):
    def forced(base, knobs, run):
        return rr.Splits(train=(4, 4), ood=(3, 3), pass1={}, passk={}, rule="forced by the test"), None

    monkeypatch.setattr(rr, "seed_splits", forced)
    monkeypatch.setenv("THEORYRL_BASES", str(tmp_path_factory.mktemp("rlvr_bases")))


def test_learning_off_rl_is_the_base_and_no_claim_passes(forced_splits, tmp_path):
    folder = execute(cross, "quick", TINY, out=tmp_path / "cross", quiet=True)
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["verdicts"]) == set(cross.claim_names())
    assert all(v["status"] != "pass" for v in summary["verdicts"].values())
    arrays = load_npz(folder / "arrays.npz")
    for s in rr.SPLITS:
        np.testing.assert_array_equal(arrays[f"{s}_grpo_K"], arrays[f"{s}_base_K"])
    assert cross.plot(folder, folder)[0].exists()

    folder = execute(alg, "quick", TINY + ["rlvr.checkpoints=2"], out=tmp_path / "alg", quiet=True)
    summary = json.loads((folder / "summary.json").read_text())
    assert {r["arm"] for r in summary["rows"]} == {"base", *rr.ALGORITHMS}
    assert all(v["status"] != "pass" for v in summary["verdicts"].values())
    arrays = load_npz(folder / "arrays.npz")
    for s in alg.SETS:  # every algorithm with lr 0 is the base: the same pass@1 for all of them
        assert np.ptp(arrays[f"{s}_pass1_A"]) == 0.0 and arrays[f"{s}_pass1_A"][0] == arrays[f"{s}_base_pass1"]
    assert alg.plot(folder, folder)[0].exists()


def test_coverage_and_distillation_with_learning_off(forced_splits, tmp_path):
    folder = execute(cov, "quick", TINY + ["rlvr.checkpoints=2", "rlvr.keep_samples=2"], out=tmp_path / "cov", quiet=True)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["verdicts"]["rl_solvable_within_base"]["status"] == "not judged"  # RL did not raise pass@1
    assert summary["verdicts"]["rl_samples_low_base_ppl"]["status"] == "not judged"
    assert cov.plot(folder, folder)[0].exists()
    folder = execute(dis, "quick", TINY + ["rlvr.checkpoints=2", "sft.steps=0", "sft.batch=2"], out=tmp_path / "dis",
                     quiet=True)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["verdicts"]["sft_above_base_every_k"]["status"] == "fail"
    assert summary["verdicts"]["rl_not_above_base_at_kmax"]["status"] == "not judged"
    assert dis.plot(folder, folder)[0].exists()
