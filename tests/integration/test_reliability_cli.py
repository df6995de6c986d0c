"""The CLI's reliability promises (issue 21), case by case, in-process through `cli.main`.

Every failure a user can cause ends with exactly one `error:` line on stderr naming the knob or
file, exit status 2, and no run folder left behind; `--debug` shows the traceback instead.
Cases: the issue's bad inputs (sizes past what the code can run, inf/NaN rates, duplicate seeds),
the sweep grid's repeated keys and values, refused or unreadable folders, a NaN stop, an unknown
benchmark, and `plot` / `report` on read-only, broken, foreign or missing folders. The folder
machinery itself (locks, checksums, metrics, checkpoints, kills) is tested in
test_reliability_folders.py.
"""
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from theoryrl import cli

TINY = ["--set", "m=3", "--set", "attention=softmax", "--set", "seeds=1",
        "--set", "softmax.batch=64", "--set", "softmax.dataset_size=0", "--set", "softmax.steps_per_epoch=2",
        "--set", "softmax.eval_size=64", "--set", "softmax.early_stop=false",
        "--set", "softmax.epochs_per_chunk=1", "--set", "softmax.epochs=2"]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("THEORYRL_BASES", str(tmp_path / "bases"))
    (tmp_path / "afile").write_text("a file, not a folder")
    return tmp_path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


def run_dirs(root: Path) -> list[Path]:
    return [p.parent for p in root.rglob("config.json")]


@pytest.mark.parametrize("args, named", [
    # sizes past what the code can run: refused in validation, naming the knob the user set
    (["run", "chain-emergence", "--set", "m=200"], "'m'"),
    (["run", "chain-emergence", "--set", "m=1e12"], "'m'"),
    (["run", "chain-emergence", "--set", "seeds=3000000000"], "'seeds'"),
    (["run", "bandit-regret", "--set", "arms=1e12"], "'arms'"),
    (["run", "parity-rl", "--set", "d=1e12"], "'d'"),
    (["run", "parity-threshold", "--set", "ds=1e12"], "'ds'"),
    (["run", "parity-threshold", "--set", "lam=1e-300"], "'lam'"),
    # every > 0 check rejects inf and NaN; a non-positive interval is an error
    (["run", "parity-threshold", "--set", "lam=inf"], "'lam'"),
    (["run", "chain-emergence", "--set", "softmax.lr=inf"], "'softmax.lr'"),
    (["run", "chain-emergence", "--set", "softmax.tmp=nan"], "'softmax.tmp'"),
    (["run", "chain-flow-vs-reinforce", "--set", "record_every=0"], "'record_every'"),
    (["run", "chain-flow-vs-reinforce", "--set", "record_every=-3"], "'record_every'"),
    # duplicate seeds would be averaged as two seeds
    (["run", "chain-emergence", "--set", "seeds=5,5"], "'seeds'"),
    (["run", "parity-threshold", "--set", "seeds=1,2,1"], "'seeds'"),
    # harness knobs
    (["run", "chain-emergence", *TINY, "--ckpt-every", "0"], "'--ckpt-every'"),
    (["run", "chain-emergence", *TINY, "--data", "3"], "'--data'"),
])
def test_bad_knob_is_one_line_naming_it_and_leaves_no_folder(in_tmp, capsys, args, named):
    assert cli.main(args) == 2
    assert named in one_error_line(capsys)
    assert not (in_tmp / "results").exists()  # not even an empty results/<id>/


@pytest.mark.parametrize("grid, message", [
    (["--grid", "softmax.lr=0.1", "--grid", "softmax.lr=0.2"], "each key once"),
    (["--grid", "softmax.lr=0.1,0.1"], "0.1 repeated"),
    (["--grid", "softmax.lr=0.1,0.10"], "same config"),
    (["--grid", "seeds=1,2", "--seeds", "2"], "--seeds"),
    (["--grid", "softmax.lr=0.1", "--seeds", "3000000000"], "'--seeds'"),
    (["--grid", "softmax.lr="], "at least one value"),
])
def test_sweep_grid_that_would_drop_or_double_runs_is_refused(in_tmp, capsys, grid, message):
    assert cli.main(["sweep", "chain-emergence", *TINY, *grid]) == 2
    assert message in one_error_line(capsys)
    assert not (in_tmp / "results").exists()


@pytest.mark.parametrize("out, word", [
    ("afile/run", "afile"),                    # NotADirectoryError / FileExistsError under a file
    ("/sys/theoryrl-reliability/run", "/sys"),  # PermissionError, even as root
])
def test_unwritable_run_folder_is_one_line_naming_it(in_tmp, capsys, out, word):
    assert cli.main(["run", "chain-emergence", *TINY, "--no-plot", "--out", out]) == 2
    assert word in one_error_line(capsys)


def test_unknown_benchmark_lists_the_known_ones(in_tmp, capsys):
    assert cli.main(["bench", "nosuch"]) == 2
    line = one_error_line(capsys)
    assert "nosuch" in line and "chain" in line and "lm" in line


def test_usage_error_is_one_line(in_tmp, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "chain-emergence", "--no-such-flag"])
    assert exc.value.code == 2
    assert "--no-such-flag" in one_error_line(capsys)


def test_debug_shows_the_traceback(in_tmp):
    from theoryrl.core.config import ConfigError

    with pytest.raises(ConfigError, match="'m'"):
        cli.main(["--debug", "run", "chain-emergence", "--set", "m=1"])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One tiny finished chain-emergence run (a few seconds), shared by the plot/report cases."""
    root = tmp_path_factory.mktemp("finished")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        os.environ["THEORYRL_BASES"] = str(root / "bases")
        assert cli.main(["run", "chain-emergence", *TINY, "--no-plot", "--quiet",
                         "--out", str(root / "results" / "chain-emergence" / "r1")]) == 0
    finally:
        os.chdir(cwd)
        os.environ.pop("THEORYRL_BASES", None)
    return root / "results" / "chain-emergence" / "r1"


def test_folder_of_another_config_is_refused_in_one_line(in_tmp, capsys, finished):
    out = in_tmp / "copy"
    shutil.copytree(finished, out)
    assert cli.main(["run", "chain-emergence", *TINY, "--set", "softmax.epochs=3", "--no-plot",
                     "--out", str(out)]) == 2
    assert "refusing to overwrite" in one_error_line(capsys)


def _fingerprint(folder: Path) -> dict:
    """Every file's bytes and mtime: as root, chmod blocks nothing, so the test compares contents."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_plot_reads_a_read_only_folder_and_writes_only_figures(in_tmp, capsys, finished):
    run = in_tmp / "ro"
    shutil.copytree(finished, run)
    before = _fingerprint(run)
    for p in [run, *run.rglob("*")]:
        os.chmod(p, 0o555 if p.is_dir() else 0o444)
    try:
        assert cli.main(["plot", "chain-emergence", "--run-dir", str(run), "--figures", str(in_tmp / "figs")]) == 0
    finally:
        for p in [run, *run.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
    assert (in_tmp / "figs" / "chain-emergence.png").stat().st_size > 0
    assert _fingerprint(run) == before and sorted(p.name for p in run.iterdir()) == sorted(p.name for p in finished.iterdir())


def test_plot_of_a_folder_of_another_experiment_says_so(in_tmp, capsys, finished):
    assert cli.main(["plot", "chain-ood", "--run-dir", str(finished)]) == 2
    line = one_error_line(capsys)
    assert "chain-emergence" in line and "chain-ood" in line


def test_plot_of_a_corrupt_arrays_file_names_it(in_tmp, capsys, finished):
    """The chain-emergence figure reads arrays.npz; garbage there is a BadZipFile, reported in one line."""
    run = in_tmp / "corrupt"
    shutil.copytree(finished, run)
    (run / "arrays.npz").write_bytes(b"garbage")
    assert cli.main(["plot", "chain-emergence", "--run-dir", str(run), "--figures", str(in_tmp / "f")]) == 2
    assert "corrupt" in one_error_line(capsys)


def test_report_lists_broken_folders_and_goes_on(in_tmp, capsys, finished):
    results = in_tmp / "res"
    shutil.copytree(finished, results / "chain-emergence" / "good")
    shutil.copytree(finished, results / "chain-ood" / "broken")  # a chain-emergence run filed as chain-ood
    assert cli.main(["report", "--results", str(results), "--figures", str(in_tmp / "figs")]) == 1
    out = capsys.readouterr().out
    assert "chain-ood: BROKEN" in out and "chain-simple-mass: missing" in out
    assert (in_tmp / "figs" / "chain-emergence.png").exists()


def test_report_of_a_missing_results_folder_is_an_error(in_tmp, capsys):
    assert cli.main(["report", "--results", "no/such/folder"]) == 2
    assert "no/such/folder" in one_error_line(capsys)


def test_summary_json_unreadable_is_one_line_naming_it(in_tmp, capsys, finished):
    """A plot of a finished folder whose summary.json is not JSON (the figure reads it)."""
    run = in_tmp / "badjson"
    shutil.copytree(finished, run)
    (run / "summary.json").write_text("{")
    rc = cli.main(["plot", "chain-emergence", "--run-dir", str(run), "--figures", str(in_tmp / "f")])
    assert rc == 2
    one_error_line(capsys)
    assert json.loads((finished / "summary.json").read_text())  # the original is untouched
