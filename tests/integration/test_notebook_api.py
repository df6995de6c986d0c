"""The notebook entry point (theoryrl.run / theoryrl.load): the README's example at tiny sizes.

The example is read from README.md and executed as written; only `theoryrl.run` is wrapped to add
the tiny sizes of tests/integration/test_cli.py. What `load` returns is checked against the files
on disk, the run folder against the CLI's own for the same knobs, and a second call against a
retrain (it must find the folder DONE).
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import theoryrl
from theoryrl.core.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
# the tiny chain-emergence run of test_cli.py, once as keywords (all three spellings of a nested knob)
# and once as the CLI's --set strings
TINY_KWARGS = {"m": 3, "attention": "softmax", "seeds": (1,), "softmax__batch": 64, "softmax__dataset_size": 0,
               "softmax__steps_per_epoch": 2, "softmax": {"early_stop": False, "epochs_per_chunk": 1},
               "softmax.eval_size": 64, "softmax__epochs": 3}
TINY_SETS = ["m=3", "attention=softmax", "seeds=1", "softmax.batch=64", "softmax.dataset_size=0",
             "softmax.steps_per_epoch=2", "softmax.early_stop=false", "softmax.epochs_per_chunk=1",
             "softmax.eval_size=64", "softmax.epochs=3"]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"\*\*From a notebook\.\*\*.*?```python\n(.*?)```", text, re.S)
    assert match, "README.md has no 'From a notebook' example"
    return match.group(1)


def cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-m", "theoryrl", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_readme_example_runs_loads_and_is_not_retrained(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "pandas", None)  # rows as a list of dicts, with or without pandas
    calls = []
    real_run = theoryrl.run

    def tiny_run(experiment_id, tier="quick", out=None, **overrides):
        calls.append((experiment_id, tier, out, overrides))
        return real_run(experiment_id, tier, out, quiet=True, **{**overrides, **TINY_KWARGS})

    monkeypatch.setattr(theoryrl, "run", tiny_run)
    example = {}
    exec(readme_example(), example)
    ((experiment_id, tier, out, readme_knobs),) = calls
    run_dir, res = Path(example["run_dir"]), example["res"]
    assert run_dir.parent == Path("results") / experiment_id and (run_dir / "DONE").exists()

    # load == the files on disk
    summary = json.loads((run_dir / "summary.json").read_text())
    assert res.summary == summary and res.experiment == experiment_id and res.tier == tier
    assert res.rows == summary["rows"] and len(res.rows) == 1  # m=3 x softmax x one seed
    assert res.verdicts == summary["verdict"] and res.not_judged == summary.get("not_judged", {})
    assert res.metrics == summary["metrics"]
    with np.load(run_dir / "arrays.npz") as saved:
        assert set(res.arrays) == set(saved.files) and res.arrays
        for k in saved.files:
            np.testing.assert_array_equal(res.arrays[k], saved[k])
    # every spelling of a knob reached the config the run recorded
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert config == res.config
    assert (config["m"], config["attention"], config["seeds"]) == ([3], ["softmax"], [1])
    assert {k: config["softmax"][k] for k in ("batch", "eval_size", "epochs", "early_stop", "epochs_per_chunk")} \
        == {"batch": 64, "eval_size": 64, "epochs": 3, "early_stop": False, "epochs_per_chunk": 1}
    assert config["softmax"]["lr"] == readme_knobs["softmax__lr"]

    # the CLI with the same knobs finds the same, finished folder
    assert all(isinstance(v, (int, float, str)) for v in readme_knobs.values())
    readme_sets = [f"{k.replace('__', '.')}={v}" for k, v in readme_knobs.items()]
    proc = cli("run", experiment_id, "--tier", tier, *[a for s in readme_sets + TINY_SETS for a in ("--set", s)],
               "--no-plot", cwd=tmp_path)
    assert "nothing to do" in proc.stderr and f"results: {run_dir}" in proc.stdout

    # a second run returns the same folder and trains nothing
    done_mtime, metrics = (run_dir / "DONE").stat().st_mtime_ns, (run_dir / "metrics.jsonl").read_bytes()
    capfd.readouterr()
    again = real_run(experiment_id, tier, **{**readme_knobs, **TINY_KWARGS})
    assert again == run_dir and "nothing to do" in capfd.readouterr().err
    assert (run_dir / "DONE").stat().st_mtime_ns == done_mtime and (run_dir / "metrics.jsonl").read_bytes() == metrics

    # with pandas installed, rows are a DataFrame of the same records
    monkeypatch.delitem(sys.modules, "pandas")
    try:
        import pandas
    except ImportError:
        return
    table = theoryrl.load(run_dir).rows
    assert isinstance(table, pandas.DataFrame) and table.equals(pandas.DataFrame(summary["rows"]))


def test_bad_knobs_fail_before_any_folder_is_made(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        theoryrl.run("chain-emergence", colour="red")
    with pytest.raises(ConfigError, match="'softmax.horizon'"):
        theoryrl.run("chain-emergence", softmax__horizon=0)
    with pytest.raises(ConfigError, match="'tier'"):
        theoryrl.run("chain-emergence", tier="huge")
    with pytest.raises(KeyError, match="unknown experiment"):
        theoryrl.run("no-such-experiment")
    assert not (tmp_path / "results").exists()
    with pytest.raises(FileNotFoundError, match="no DONE"):
        theoryrl.load(tmp_path)


def test_import_stays_light_and_still_sets_the_xla_flag():
    code = ("import os, sys, theoryrl; print(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'numpy', 'orbax'}),"
            " os.environ['XLA_FLAGS'])")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # this process's flag must not leak in
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**env, "PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "[] --xla_cpu_experimental_ynn_fusion_type=-reduce"
