"""The LM-exploration experiments end to end at a tiny size, with learning off.

A 4-step base is trained into an empty store; its calibration finds no edge band (it never solves
anything), so the band is fixed (`dag_runs.seed_status` patched: edge op 4, seed judged) to reach
the exploration stage. explore-historical then runs its five arms as one vmapped program with
explore.lr = 0: every arm stays the base and, with the same questions, order and keys, samples the
same training answers and the same test table, so no claim may pass. explore-rl-as-sampling runs
its two arms (base sampling without an update, GRPO) from the same store: the base is reused and
with lr = 0 both arms' coverage histories are identical. Both figures are drawn.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from theoryrl.core.experiment import execute
from theoryrl.core.results import load_npz
from theoryrl.experiments import explore_historical as his
from theoryrl.experiments import explore_rl_as_sampling as ras
from theoryrl.rl import dag_runs as dr

TINY = ["seeds=42", "base.op_max=6", "base.id_hi=3", "base.medium_max=3", "base.mix=0.5,0.5,0.0", "base.steps=4",
        "base.chunk=2", "base.d_model=32", "base.n_layers=1", "base.n_heads=2", "base.d_ff=64",
        "base.eval_problems=4", "base.eval_samples=8", "base.k_max=4", "base.curve_problems=2", "base.curve_samples=2",
        "explore.num_questions=4", "explore.prompts_per_step=2", "explore.group_size=2", "explore.epochs=2",
        "explore.epochs_per_chunk=1", "explore.test_problems=4", "explore.test_samples=4", "explore.k_max=4",
        "explore.diff_k=2", "explore.curve_samples=1", "explore.lr=0"]


@pytest.fixture
def forced_band(monkeypatch, tmp_path_factory):
    real = dr.seed_status

    def forced(base, run, need=("edge", "hard")):
        bands, _ = real(base, run, need)
        return dataclasses.replace(bands, edge=(4, 4), hard=(5, 6)), None

    monkeypatch.setattr(dr, "seed_status", forced)
    monkeypatch.setenv("THEORYRL_BASES", str(tmp_path_factory.mktemp("explore_bases")))


def test_learning_off_every_arm_is_the_base_and_no_claim_passes(forced_band, tmp_path, capsys):
    folder = execute(his, "quick", TINY, out=tmp_path / "his", quiet=True)
    summary = json.loads((folder / "summary.json").read_text())
    assert {r["arm"] for r in summary["rows"]} == set(his.ARMS)
    assert set(summary["verdicts"]) == set(his.NAMES)
    assert all(v["status"] != "pass" for v in summary["verdicts"].values())
    arrays = load_npz(folder / "arrays.npz")
    assert np.all(arrays["test_passk_AxK"] == arrays["test_passk_AxK"][0])
    assert his.plot(folder, folder)[0].exists()

    folder = execute(ras, "quick", TINY + ["early_epochs=1", "explore.train_samples=4"], out=tmp_path / "ras",
                     quiet=False)
    assert "reusing stored base" in capsys.readouterr().err
    arrays = load_npz(folder / "arrays.npz")
    for name in ("solved_C", "distinct_C"):
        np.testing.assert_array_equal(arrays[f"grpo_{name}"], arrays[f"base_{name}"])
    summary = json.loads((folder / "summary.json").read_text())
    assert all(v["status"] != "pass" for v in summary["verdicts"].values())
    assert ras.plot(folder, folder)[0].exists()
