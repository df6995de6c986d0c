"""The experiment runner on 8 devices: 3 runs padded to the 8-wide run axis, results unpadded."""
import json

import numpy as np

from theoryrl import experiments
from theoryrl.core.experiment import execute

TINY = ["m=3", "attention=softmax", "seeds=42,43,44", "softmax.batch=64", "softmax.dataset_size=0",
        "softmax.steps_per_epoch=2", "softmax.eval_size=64", "softmax.early_stop=false", "softmax.epochs=2",
        "softmax.epochs_per_chunk=1"]


def test_run_with_padding_to_the_device_count(tmp_path, devices8):
    path = execute(experiments.get("chain-emergence"), "quick", [f"{s}" for s in TINY], out=tmp_path / "run",
                   quiet=True)
    summary = json.loads((path / "summary.json").read_text())
    assert [r["seed"] for r in summary["rows"]] == [42, 43, 44]
    arrays = np.load(path / "arrays.npz")
    assert arrays["softmax/m3/test/acc"].shape == (3, 2)
    assert np.all(np.isfinite(arrays["softmax/m3/loss"]))
    # distinct seeds give distinct runs (padding repeats the last run; it must not leak into results)
    assert len({round(r["train_acc"], 6) for r in summary["rows"]}) > 1
    lines = (path / "metrics.jsonl").read_text().splitlines()
    assert sorted({json.loads(ln)["run"] for ln in lines}) == [0, 1, 2]


def test_one_run_split_over_a_data_axis_of_eight(tmp_path, devices8):
    sets = [s for s in TINY if not s.startswith("seeds=")] + ["seeds=42", "softmax.batch=256"]
    path = execute(experiments.get("chain-emergence"), "quick", sets, out=tmp_path / "run", quiet=True, data_axis=8)
    summary = json.loads((path / "summary.json").read_text())
    assert len(summary["rows"]) == 1 and 0.0 <= summary["rows"][0]["test_acc"] <= 1.0
