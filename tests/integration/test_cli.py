"""End-to-end CLI behaviour at tiny sizes: bad input, run/plot/report, sweep, SIGKILL resume."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--set", "m=3", "--set", "attention=softmax", "--set", "seeds=1",
        "--set", "softmax.batch=64", "--set", "softmax.dataset_size=0", "--set", "softmax.steps_per_epoch=2",
        "--set", "softmax.eval_size=64", "--set", "softmax.early_stop=false",
        "--set", "softmax.epochs_per_chunk=1"]


def cli(*args, cwd, check=True, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-m", "theoryrl", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.mark.parametrize("args, knob", [
    (["run", "chain-emergence", "--set", "m=1"], "'m'"),
    (["run", "chain-ood", "--set", "n=20"], "'n'"),
    (["run", "chain-emergence", "--set", "m=4", "--set", "train_probs=0.5,0.7,-0.2"], "'train_probs'"),
    (["run", "chain-emergence", "--set", "m=4", "--set", "train_probs=0.2,0.2,0.2"], "'train_probs'"),
    (["run", "chain-emergence", "--set", "colour=red"], "unknown key 'colour'"),
    (["run", "chain-emergence", "--set", "softmax.horizon=0"], "'softmax.horizon'"),
    (["run", "chain-emergence", "--tier", "huge"], "'tier'"),
    (["run", "no-such-experiment"], "unknown experiment"),
])
def test_bad_input_is_one_line_naming_the_knob_before_compute(tmp_path, args, knob):
    proc = cli(*args, cwd=tmp_path, check=False, timeout=120)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and knob in lines[0], proc.stderr
    assert not (tmp_path / "results").exists()  # nothing was started


def test_list_names_every_experiment(tmp_path):
    out = cli("list", cwd=tmp_path).stdout
    for eid in ("chain-emergence", "chain-ood", "chain-simple-vs-hard", "chain-simple-mass"):
        assert eid in out


def test_run_writes_the_results_contract_then_skips_when_done(tmp_path):
    cli("run", "chain-emergence", *TINY, "--set", "softmax.epochs=3", "--quiet", cwd=tmp_path)
    (run_dir,) = list((tmp_path / "results" / "chain-emergence").iterdir())
    for name in ("config.json", "env.json", "metrics.jsonl", "arrays.npz", "summary.json", "runs.csv", "DONE"):
        assert (run_dir / name).exists(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    contract = {"experiment", "tier", "metrics", "rows", "paper", "verdict"}
    assert contract <= set(summary) <= contract | {"verdicts", "not_judged"}  # issue 20: records beside the booleans
    assert set(summary["verdicts"]) >= set(summary["verdict"])
    assert summary["experiment"] == "chain-emergence" and len(summary["rows"]) == 1
    assert 0.0 <= summary["rows"][0]["test_acc"] <= 1.0
    env = json.loads((run_dir / "env.json").read_text())
    assert env["backend"] == "cpu" and "jax" in env["packages"]
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 3  # one line per chunk and run
    assert (tmp_path / "figures" / "chain-emergence.png").stat().st_size > 0
    again = cli("run", "chain-emergence", *TINY, "--set", "softmax.epochs=3", cwd=tmp_path)
    assert "nothing to do" in again.stderr
    # plot and report rebuild figures from saved results only
    (tmp_path / "figures" / "chain-emergence.png").unlink()
    cli("plot", "chain-emergence", cwd=tmp_path)
    assert (tmp_path / "figures" / "chain-emergence.png").exists()
    report = cli("report", cwd=tmp_path).stdout
    assert "chain-ood: missing" in report


def test_out_dir_holding_another_config_is_refused(tmp_path):
    out = tmp_path / "run"
    cli("run", "chain-emergence", *TINY, "--set", "softmax.epochs=1", "--out", str(out), "--quiet", "--no-plot",
        cwd=tmp_path)
    proc = cli("run", "chain-emergence", *TINY, "--set", "softmax.epochs=2", "--out", str(out), "--quiet",
               cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "refusing to overwrite" in proc.stderr


def test_sweep_writes_one_row_per_run_and_shares_programs(tmp_path):
    proc = cli("sweep", "chain-emergence", *TINY, "--set", "softmax.epochs=2", "--grid", "softmax.lr=0.01,0.03",
               "--seeds", "2", cwd=tmp_path)
    assert "2 grid points" in proc.stderr
    (run_dir,) = list((tmp_path / "results" / "chain-emergence").iterdir())
    assert len(list((run_dir / "buckets").glob("*.npz"))) == 1  # the 4 runs were one vmapped program
    lines = (run_dir / "runs.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert "softmax.lr" in header and "seed" in header and "test_acc" in header
    rows = [dict(zip(header, ln.split(","))) for ln in lines[1:]]
    assert sorted((r["softmax.lr"], r["seed"]) for r in rows) == [("0.01", "42"), ("0.01", "43"),
                                                                   ("0.03", "42"), ("0.03", "43")]


def test_sigkill_then_rerun_equals_uninterrupted(tmp_path):
    args = ["run", "chain-emergence", *TINY, "--set", "softmax.epochs=30", "--ckpt-every", "1", "--no-plot"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "theoryrl", *args, "--out", str(killed)], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True)
    progress = 0
    for line in proc.stderr:
        progress += " step " in line
        if progress >= 8:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL and not (killed / "DONE").exists()
    resumed = cli(*args, "--out", str(killed), cwd=tmp_path)
    assert "resuming from checkpoint" in resumed.stderr
    cli(*args, "--out", str(tmp_path / "straight"), "--quiet", cwd=tmp_path)
    a = np.load(killed / "arrays.npz")
    b = np.load(tmp_path / "straight" / "arrays.npz")
    assert sorted(a.files) == sorted(b.files)
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    sa = json.loads((killed / "summary.json").read_text())
    sb = json.loads((tmp_path / "straight" / "summary.json").read_text())
    assert sa == sb
    # metrics.jsonl has exactly one line per chunk after the resume (no duplicates)
    chunks = [json.loads(ln)["chunk"] for ln in (killed / "metrics.jsonl").read_text().splitlines()]
    assert sorted(chunks) == list(range(30))
