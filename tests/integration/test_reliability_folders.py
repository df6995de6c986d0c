"""Run folders that never lie (issue 21): validation before the folder, locks, self-healing
metrics.jsonl, verified DONE, checkpoint fallback, a NaN tripwire on every program, true steps/s.

Most cases drive the real harness with a tiny hand-written experiment whose one program relaxes a
scalar, `w <- w + lr (target - w)` per step, so after T steps `w_T = target + (w_0 - target)
(1 - lr)^T` in closed form; it has no metric named `loss`. The kill and lock cases run the real
CLI (`python -m theoryrl run chain-emergence` at a tiny size) in a subprocess and compare the
interrupted-then-resumed folder with an uninterrupted one.
"""
import collections
import dataclasses
import functools
import glob
import io
import json
import os
import shutil
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import theoryrl
from theoryrl import experiments
from theoryrl.core import loop
from theoryrl.core.ckpt import Checkpointer
from theoryrl.core.config import ConfigError
from theoryrl.core.experiment import execute, execute_sweep
from theoryrl.core.results import ResultsError, RunDir, git_state
from theoryrl.core.stages import Outcome, Program, RunPlan, Stage
from theoryrl.core.treepath import StructureMismatch

CODE_ROOT = Path(theoryrl.__file__).resolve().parents[1]  # the code under test (PYTHONPATH may point elsewhere)
TRACES: collections.Counter = collections.Counter()  # traces of the chunk program: > 0 iff something trained


@pytest.fixture(autouse=True)
def _count_traces():
    TRACES.clear()


# ---- a tiny experiment: one relaxation program, no `loss` metric ------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (42, 43)
    target: float = 1.0
    lr: float = 0.1
    steps: int = 3  # per chunk
    chunks: int = 6
    nan_state_at: int = -1  # the chunk after which the state holds NaN (-1: never)
    nan_metric_at: int = -1  # the chunk whose metric 'ratio' is NaN while the state stays finite
    bad_plan: bool = False  # planning the first stage fails (a config that validate() cannot judge)
    bad_build: bool = False  # building the program fails (before any compute)


def w0_of(seed: int) -> float:
    return -float(seed - 41)


def closed_form(w0: float, cfg: Config, chunks: int) -> float:
    return cfg.target + (w0 - cfg.target) * (1.0 - cfg.lr) ** (chunks * cfg.steps)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Hp:
    w0: np.ndarray
    lr: np.ndarray


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class State:
    w: jax.Array  # float32 []
    chunk: jax.Array  # int32 []


def _program(cfg: Config) -> Program:
    if cfg.bad_build:
        raise RuntimeError("the program cannot be built")

    def chunk_fn(state: State, hp: Hp, target):
        TRACES["train"] += 1
        w, _ = jax.lax.scan(lambda w, _: (w + hp.lr * (target - w), None), state.w, None, length=cfg.steps)
        if cfg.nan_state_at >= 0:
            w = jnp.where(state.chunk == cfg.nan_state_at, jnp.nan, w)
        ratio = w / w
        if cfg.nan_metric_at >= 0:
            ratio = jnp.where(state.chunk == cfg.nan_metric_at, jnp.nan, ratio)
        return State(w, state.chunk + 1), {"w": w, "ratio": ratio}

    declared = {"finite_metrics": ("ratio",)} if cfg.nan_metric_at >= 0 else {}
    return Program(data_fn=lambda hp: jnp.float32(cfg.target), init_fn=lambda hp: State(hp.w0, jnp.int32(0)),
                   chunk_fn=chunk_fn, num_chunks=cfg.chunks, steps_per_chunk=cfg.steps,
                   final_fn=lambda state: {"w": state.w}, **declared)


def _plans(cfg: Config, runs) -> list[RunPlan]:
    if cfg.bad_plan:
        raise ConfigError("invalid value for 'bad_plan': True (this grid point cannot be planned)")
    build = functools.partial(_program, cfg)
    return [RunPlan(row={"seed": s}, bucket=("train", cfg.steps, cfg.chunks), label="relax",
                    hp=Hp(np.float32(w0_of(s)), np.float32(cfg.lr)), build=build) for s in cfg.seeds]


def _analyze(cfg: Config, runs) -> Outcome:
    rows = [{**r.row, "w": float(r.final("w")), "chunks": len(r.history("w"))} for r in runs]
    return Outcome({"w_mean": float(np.mean([r["w"] for r in rows]))}, rows, {}, {"converges": True},
                   {"w": runs.stack("final/w")})


def make_module(eid: str = "relax", **quick) -> types.SimpleNamespace:
    return types.SimpleNamespace(ID=eid, TITLE=eid, PAPER="-", Config=Config, TIERS={"quick": Config(**quick)},
                                 stages=lambda cfg: [Stage("train", functools.partial(_plans, cfg))],
                                 analyze=_analyze, plot=lambda run_dir, out_dir: [])


def run(tmp_path, name="run", module=None, sets=(), **kw) -> Path:
    return execute(module or make_module(), "quick", list(sets), out=tmp_path / name, quiet=True,
                   ckpt_every_chunks=kw.pop("ckpt_every_chunks", 1), **kw)


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def metric_lines(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the wall time (which a rebuilt or resumed line cannot reproduce)."""
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return sorted(({k: v for k, v in rec.items() if k != "wall_s"} for rec in lines),
                  key=lambda r: (r["bucket"], r["chunk"], r["run"]))


def check_closed_form(run_dir: Path, cfg: Config = Config()) -> None:
    rows = summary(run_dir)["rows"]
    for r in rows:
        np.testing.assert_allclose(r["w"], closed_form(w0_of(r["seed"]), cfg, cfg.chunks), rtol=1e-5)
        assert r["chunks"] == cfg.chunks
    for rec in metric_lines(run_dir):  # every line holds the closed form at its chunk
        w0 = w0_of(cfg.seeds[rec["run"]])
        np.testing.assert_allclose(rec["w"], closed_form(w0, cfg, rec["chunk"] + 1), rtol=1e-5)
    assert len(metric_lines(run_dir)) == cfg.chunks * len(cfg.seeds)


def unfinish(run_dir: Path, *, bucket: bool = False) -> None:
    """Turn a finished folder back into one a crash left behind (after its last checkpoint when
    `bucket`, after its buckets otherwise)."""
    for name in ("DONE", "summary.json", "arrays.npz", "runs.csv"):
        (run_dir / name).unlink(missing_ok=True)
    if bucket:
        for p in (run_dir / "buckets").iterdir():
            p.unlink()


def ckpt_steps(run_dir: Path) -> list[int]:
    (bucket,) = (run_dir / "ckpt").iterdir()
    return sorted(int(p.name) for p in bucket.iterdir() if p.name.isdigit())


# ---- 1. validation completes before the folder exists ----------------------------------------------
def test_a_config_that_cannot_be_planned_leaves_no_folder(tmp_path):
    with pytest.raises(ConfigError, match="bad_plan"):
        execute(make_module(), "quick", ["bad_plan=true"], out=tmp_path / "results" / "x" / "run", quiet=True)
    with pytest.raises(ConfigError, match="bad_plan"):  # one bad grid point stops the whole sweep
        execute_sweep(make_module(), "quick", [("bad_plan", ["false", "true"])], None, [],
                      out=tmp_path / "results" / "sweep", quiet=True)
    assert not (tmp_path / "results").exists()


def test_a_run_failing_before_any_compute_removes_its_new_folder_but_keeps_a_computed_one(tmp_path):
    with pytest.raises(RuntimeError, match="cannot be built"):
        execute(make_module(), "quick", ["bad_build=true"], out=tmp_path / "results" / "run", quiet=True)
    assert not (tmp_path / "results").exists()
    (tmp_path / "mine").mkdir()  # a folder the user made: kept, but not left holding a config
    with pytest.raises(RuntimeError, match="cannot be built"):
        execute(make_module(), "quick", ["bad_build=true"], out=tmp_path / "mine", quiet=True)
    assert (tmp_path / "mine").is_dir() and not (tmp_path / "mine" / "config.json").exists()
    # a failure after chunks were saved keeps the folder, resumable
    with pytest.raises(FloatingPointError):
        run(tmp_path, sets=["nan_state_at=3"])
    assert (tmp_path / "run" / "config.json").exists() and ckpt_steps(tmp_path / "run")


def test_a_non_empty_folder_that_is_not_a_run_folder_is_refused(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("precious")
    with pytest.raises(ResultsError, match="not a run folder"):
        run(tmp_path, "notes")
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["thesis.tex"]


# ---- 3. metrics.jsonl heals ------------------------------------------------------------------------
def test_reconcile_drops_a_partial_line_and_stale_lines_and_rebuilds_missing_ones(tmp_path):
    rd = RunDir(tmp_path)
    line = lambda b, c, r, w: json.dumps({"bucket": b, "chunk": c, "run": r, "step": 2 * (c + 1), "wall_s": 0.5,
                                          "w": w}, sort_keys=True)
    kept = [line("b", 0, 0, 1.0), line("other", 0, 0, 9.0), line("b", 0, 1, 2.0), line("b", 2, 0, 5.0),
            line("b", 0, 1, 2.0)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(kept) + "\n" + line("b", 1, 0, 3.0)[:17])
    history = {"w": np.array([[1.0, 3.0], [2.0, 4.0]], np.float32)}  # [runs, chunks]: 2 chunks of 2 runs
    counts = rd.reconcile_metrics("b", history, steps_per_chunk=2)
    assert counts == {"partial": 1, "stale": 1, "duplicate": 1, "rebuilt": 2}
    recs = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert recs[0] == json.loads(kept[1])  # other buckets' lines untouched
    got = {(r["chunk"], r["run"]): (r["w"], r["step"], r["wall_s"]) for r in recs[1:]}
    assert got == {(0, 0): (1.0, 2, 0.5), (0, 1): (2.0, 2, 0.5), (1, 0): (3.0, 4, None), (1, 1): (4.0, 4, None)}
    # a bucket starting afresh owns no lines
    assert rd.reconcile_metrics("b", {}, 2)["stale"] == 4
    assert [json.loads(ln)["bucket"] for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()] == ["other"]


def test_reconcile_replaces_a_line_whose_values_differ_and_drops_non_records(tmp_path):
    """The history (w = 1 at chunk 0) wins over a line of another computation (w = 5), whichever copy
    of a repeated line comes first; a bare JSON number is not a record and is dropped."""
    rd = RunDir(tmp_path)
    wrong = json.dumps({"bucket": "b", "chunk": 0, "run": 0, "step": 2, "wall_s": 0.5, "w": 5.0}, sort_keys=True)
    right = json.dumps({"bucket": "b", "chunk": 0, "run": 0, "step": 2, "wall_s": 0.7, "w": 1.0}, sort_keys=True)
    (tmp_path / "metrics.jsonl").write_text("\n".join([wrong, "12", right]) + "\n")
    counts = rd.reconcile_metrics("b", {"w": np.array([[1.0]], np.float32)}, steps_per_chunk=2)
    assert counts == {"partial": 1, "stale": 1, "duplicate": 0, "rebuilt": 0}
    (rec,) = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rec["w"] == 1.0 and rec["wall_s"] == 0.7  # the matching line is kept as it was


def test_a_partial_last_metrics_line_is_dropped_on_resume(tmp_path):
    run_dir = run(tmp_path)
    unfinish(run_dir, bucket=True)  # resumes from the checkpoint at chunk 5
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write('{"bucket": "train-relax-0", "chunk": 5, "run": 0, "w": 0.12')
    run(tmp_path)
    check_closed_form(run_dir)


def test_a_deleted_or_shortened_metrics_file_is_rebuilt(tmp_path, capsys):
    run_dir = run(tmp_path)
    want = metric_lines(run_dir)
    # every bucket cached (killed while writing the results): the file is reconciled anyway
    unfinish(run_dir)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    (run_dir / "metrics.jsonl").write_text("\n".join(lines[:7]) + "\n")
    TRACES.clear()
    run(tmp_path)
    assert metric_lines(run_dir) == want and not TRACES
    # deleted, bucket cached
    unfinish(run_dir)
    (run_dir / "metrics.jsonl").unlink()
    run(tmp_path)
    assert metric_lines(run_dir) == want
    # deleted, resuming from a checkpoint: the checkpoint's history rebuilds the chunks before it
    unfinish(run_dir, bucket=True)
    (run_dir / "metrics.jsonl").unlink()
    capsys.readouterr()
    execute(make_module(), "quick", [], out=run_dir, ckpt_every_chunks=1)
    assert "rebuilt 10 line(s)" in capsys.readouterr().err  # chunks 0-4 of 2 runs; chunk 5 recomputed
    assert metric_lines(run_dir) == want
    check_closed_form(run_dir)
    # deleted in a finished folder: said in one line; --force rebuilds it
    (run_dir / "metrics.jsonl").unlink()
    capsys.readouterr()
    execute(make_module(), "quick", [], out=run_dir)
    err = capsys.readouterr().err
    assert "metrics.jsonl is missing (DONE recorded 12)" in err and "--force" in err
    TRACES.clear()
    run(tmp_path, force=True)
    assert metric_lines(run_dir) == want and not TRACES


# ---- 4. DONE is verified ---------------------------------------------------------------------------
@pytest.mark.parametrize("damage, file, says", [
    (lambda d: (d / "summary.json").write_text((d / "summary.json").read_text().replace("converges", "diverges")),
     "summary.json", "has changed"),
    (lambda d: (d / "arrays.npz").unlink(), "arrays.npz", "is missing"),
    (lambda d: (d / "runs.csv").write_text("seed,w\n42,1.0\n"), "runs.csv", "has changed"),
    (lambda d: (d / "summary.json").write_text('{"metrics": '), "summary.json", "is not valid JSON"),
    (lambda d: (d / "DONE").write_text("{garbage"), "DONE", "is unreadable"),
])
def test_a_damaged_finished_folder_is_an_error_naming_the_file_and_force_recomputes(tmp_path, damage, file, says):
    run_dir = run(tmp_path)
    want = summary(run_dir)
    damage(run_dir)
    TRACES.clear()
    with pytest.raises(ResultsError, match=re.escape(str(run_dir / file)) + f" {says}.*--force"):
        run(tmp_path)
    run(tmp_path, force=True)  # analysis again from the cached bucket: no training
    assert not TRACES and summary(run_dir) == want
    run(tmp_path)  # the new DONE verifies
    check_closed_form(run_dir)


def test_force_retrains_a_bucket_whose_cache_is_corrupt(tmp_path, capsys):
    run_dir = run(tmp_path)
    want = summary(run_dir)
    (bucket,) = (run_dir / "buckets").glob("*.npz")
    bucket.write_bytes(bucket.read_bytes()[:40])
    TRACES.clear()
    capsys.readouterr()
    execute(make_module(), "quick", [], out=run_dir, force=True)
    assert "is unreadable" in capsys.readouterr().err
    assert TRACES and summary(run_dir) == want


def test_a_legacy_empty_done_is_accepted(tmp_path, capsys):
    run_dir = run(tmp_path)
    (run_dir / "DONE").write_bytes(b"")  # folders finished before DONE held checksums
    TRACES.clear()
    capsys.readouterr()
    assert execute(make_module(), "quick", [], out=run_dir) == run_dir
    assert "legacy DONE" in capsys.readouterr().err and not TRACES
    (run_dir / "summary.json").unlink()
    with pytest.raises(ResultsError, match=re.escape(str(run_dir / "summary.json")) + " is missing"):
        run(tmp_path)


def test_a_run_of_another_program_version_is_not_reused_and_force_recomputes_it(tmp_path):
    run_dir = run(tmp_path)
    newer = make_module()
    newer.PROGRAM_VERSION = 2
    with pytest.raises(ResultsError, match="program version 1 .*the code's is 2.*--force"):
        run(tmp_path, module=newer)
    TRACES.clear()
    run(tmp_path, module=newer, force=True)
    assert TRACES  # retrained: the cached bucket held version 1's numbers
    assert json.loads((run_dir / "DONE").read_text())["program_version"] == 2
    run(tmp_path, module=newer)


@pytest.mark.skipif(git_state()["sha"] is None, reason="not a git checkout")
def test_a_run_of_another_commit_with_the_same_program_version_is_reused_and_says_so(tmp_path, capsys):
    run_dir = run(tmp_path)
    done = json.loads((run_dir / "DONE").read_text())
    done["git"]["sha"] = "f" * 40
    (run_dir / "DONE").write_text(json.dumps(done))
    TRACES.clear()
    capsys.readouterr()
    execute(make_module(), "quick", [], out=run_dir)
    assert "computed at git ffffffffffff, program version 1 (unchanged)" in capsys.readouterr().err
    assert summary(run_dir)["reused_from"] == {"git": "f" * 40, "program_version": 1}
    run(tmp_path)  # the marked summary.json still verifies
    assert not TRACES


# ---- 5. checkpoint fallback -------------------------------------------------------------------------
def _garbage_metadata(step_dir: Path) -> None:
    (step_dir / "default" / "_METADATA").write_text("garbage{")


def _deleted_data_files(step_dir: Path) -> None:
    files = glob.glob(str(step_dir / "default" / "d" / "*")) + glob.glob(str(step_dir / "default" / "ocdbt.*" / "d" / "*"))
    assert files
    for f in files:
        os.remove(f)


def _deleted_item_folder(step_dir: Path) -> None:
    """The whole item folder gone: orbax's manager then guesses a multi-item layout, and unless it is
    reopened after the fallback its next save is refused ("Must provide `args` of type Composite")."""
    shutil.rmtree(step_dir / "default")


def _truncated_manifest(step_dir: Path) -> None:
    with open(step_dir / "default" / "manifest.ocdbt", "r+b") as fh:
        fh.truncate(10)


@pytest.mark.parametrize("corrupt", [_garbage_metadata, _deleted_data_files, _deleted_item_folder,
                                     _truncated_manifest])
def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys, corrupt):
    run_dir = run(tmp_path)
    want = metric_lines(run_dir)
    unfinish(run_dir, bucket=True)
    assert ckpt_steps(run_dir) == [4, 5]  # max_to_keep = 2
    (bucket,) = (run_dir / "ckpt").iterdir()
    corrupt(bucket / "5")
    capsys.readouterr()
    execute(make_module(), "quick", [], out=run_dir, ckpt_every_chunks=1)
    err = capsys.readouterr().err
    assert re.search(r"resuming from checkpoint at chunk 4 .*newest intact one; set aside the unreadable chunk 5 \(moved to 5.unreadable\)", err)
    check_closed_form(run_dir)
    assert metric_lines(run_dir) == want


def test_no_intact_checkpoint_starts_the_bucket_from_scratch(tmp_path, capsys):
    run_dir = run(tmp_path)
    unfinish(run_dir, bucket=True)
    (bucket,) = (run_dir / "ckpt").iterdir()
    _truncated_manifest(bucket / "5")
    _garbage_metadata(bucket / "4")
    capsys.readouterr()
    execute(make_module(), "quick", [], out=run_dir, ckpt_every_chunks=1)
    assert "no intact checkpoint" in capsys.readouterr().err
    check_closed_form(run_dir)


def test_a_restore_error_that_is_not_damage_keeps_every_checkpoint():
    """A state of other shapes (e.g. the run axis padded for another device count) and running out
    of memory stop the resume with the checkpoints in place; only damage is set aside."""
    class Fake:
        def __init__(self, err):
            self.err, self.moved = err, []

        def all_steps(self):
            return [4, 5]

        def restore(self, step, like):
            raise self.err

        def quarantine(self, step):
            self.moved.append(step)
            return Path(f"{step}.unreadable")

    progress = loop.Progress("t", 10, quiet=True)
    plan = loop.ChunkPlan(10, 1)
    shape = Fake(ValueError("Requested shape: (3,) is not compatible with the stored shape: (4,)."))
    with pytest.raises(StructureMismatch, match="device count"):
        loop._restore(shape, {}, {}, plan, progress)
    oom = Fake(MemoryError("out of memory"))
    with pytest.raises(MemoryError):
        loop._restore(oom, {}, {}, plan, progress)
    assert shape.moved == [] and oom.moved == []
    damaged = Fake(ValueError("Unexpected end of data in manifest"))
    assert loop._restore(damaged, {}, {}, plan, progress)[0] == 0 and damaged.moved == [5, 4]


def test_two_runs_racing_into_a_new_folder_never_remove_the_winner(tmp_path, monkeypatch):
    """B creates the new folder, A then takes the lock and writes its config before B tries to lock:
    B is refused, and A's folder (config, lock) stays whole, so a third run is refused too."""
    config = {"experiment": "relax", "tier": "quick", "config": {}}
    path = tmp_path / "results" / "relax" / "r"
    a, b = RunDir(path), RunDir(path)
    real_lock = RunDir._lock

    def a_wins_first(self):
        if self is b:
            assert a.prepare(config) == "new"
        real_lock(self)

    monkeypatch.setattr(RunDir, "_lock", a_wins_first)
    with pytest.raises(ResultsError, match="in use by another run"):
        b.prepare(config)
    monkeypatch.setattr(RunDir, "_lock", real_lock)
    assert (path / "config.json").exists() and (path / ".lock").exists()
    with pytest.raises(ResultsError, match="in use by another run"):
        RunDir(path).prepare(config)
    a.release()


def test_marking_a_reused_summary_survives_a_kill_between_its_writes(tmp_path, monkeypatch):
    """note_reuse writes DONE (old or new summary accepted), then summary.json, then DONE (new only).
    Stopping after the first or the second write leaves a folder that still verifies."""
    from theoryrl.core import results as results_mod

    for stop_after in (1, 2):
        run_dir = run(tmp_path, name=f"r{stop_after}")
        record = json.loads((run_dir / "DONE").read_text())
        record["git"] = {"sha": "f" * 40, "dirty": False}
        (run_dir / "DONE").write_text(json.dumps(record))
        writes = {"n": 0}
        real = results_mod.atomic_write_bytes

        def killed_after(path, data, stop_after=stop_after):
            if writes["n"] == stop_after:
                raise KeyboardInterrupt("killed")
            writes["n"] += 1
            real(path, data)

        monkeypatch.setattr(results_mod, "atomic_write_bytes", killed_after)
        with pytest.raises(KeyboardInterrupt):
            RunDir(run_dir).note_reuse(record, 1)
        monkeypatch.setattr(results_mod, "atomic_write_bytes", real)
        RunDir(run_dir).verify_done(1)  # raises ResultsError if summary.json no longer matches DONE


# ---- 6. the NaN tripwire watches every program -----------------------------------------------------
def test_a_non_finite_state_stops_a_program_without_a_loss_metric(tmp_path):
    with pytest.raises(FloatingPointError) as err:
        run(tmp_path, sets=["nan_state_at=3"])
    run_dir = tmp_path / "run"
    (bucket,) = (run_dir / "ckpt").iterdir()
    msg = str(err.value)
    assert f"relax:{bucket.name}" in msg and "after chunk 3 " in msg and "state leaf 'w' (runs 0, 1)" in msg
    assert ckpt_steps(run_dir)[-1] == 3  # no checkpoint was written after the bad chunk
    like = {"state": State(jnp.zeros(2), jnp.zeros(2, jnp.int32)), "history": {"w": np.zeros((3, 2), np.float32),
                                                                                "ratio": np.zeros((3, 2), np.float32)}}
    with Checkpointer(bucket) as ckpt:
        kept = ckpt.restore(3, like)
    for r, s in enumerate(Config().seeds):  # the kept checkpoint is the good state after chunk 2
        np.testing.assert_allclose(np.asarray(kept["state"].w)[r], closed_form(w0_of(s), Config(), 3), rtol=1e-5)
    assert sorted({rec["chunk"] for rec in metric_lines(run_dir)}) == [0, 1, 2]


def test_a_declared_metric_that_goes_non_finite_stops_the_run(tmp_path):
    with pytest.raises(FloatingPointError, match=r"after chunk 2 .*metric 'ratio' \(runs 0, 1\)"):
        run(tmp_path, sets=["nan_metric_at=2"])


# ---- 7. steps/s measures the chunk, not the checkpoint ---------------------------------------------
def test_steps_per_second_excludes_checkpoint_writes(monkeypatch):
    """Each chunk sleeps 0.05 s inside the compiled program (its known cost); each checkpoint write
    advances the driver's clock by 100 s. 10 steps per chunk: the true rate is at most 200 steps/s;
    one that counted a checkpoint would be below 0.1."""
    offset = [0.0]
    fake_time = types.SimpleNamespace(time=lambda: time.time() + offset[0],
                                      perf_counter=lambda: time.perf_counter() + offset[0])
    monkeypatch.setattr(loop, "time", fake_time)

    class SlowCheckpoint:
        def latest_step(self):
            return None

        def all_steps(self):
            return []

        def save(self, step, tree):
            offset[0] += 100.0

        def wait(self):
            pass

    def slow(w):
        time.sleep(0.05)
        return w

    def chunk_fn(w, hp):
        w = jax.pure_callback(slow, jax.ShapeDtypeStruct(w.shape, w.dtype), w + hp)
        return w, {"w": w}

    stream = io.StringIO()
    progress = loop.Progress("rate", 60, stream=stream)
    loop.drive(chunk_fn, jnp.zeros(2), jnp.ones(2), loop.ChunkPlan(6, 10, ckpt_every_chunks=1), ckpt=SlowCheckpoint(),
               progress=progress, summarize=lambda m: {})
    rates = [float(x) for x in re.findall(r"([0-9.e+]+) steps/s", stream.getvalue())]
    assert len(rates) == 6 and offset[0] == 500.0
    assert all(20.0 <= r <= 210.0 for r in rates), rates


# ---- the real CLI: kills and a second run into a busy folder ---------------------------------------
TINY = ["m=3", "attention=softmax", "seeds=1", "softmax.batch=64", "softmax.dataset_size=0",
        "softmax.steps_per_epoch=2", "softmax.eval_size=64", "softmax.early_stop=false", "softmax.epochs_per_chunk=1",
        "softmax.epochs=8"]

# the CLI with one method wrapped: `metrics N` writes half of the N-th chunk's metrics lines and is
# SIGKILLed; `ckpt N` is SIGKILLed right after the N-th checkpoint save was started (orbax writes it
# in the background); `slow N` sleeps N/10 s after each chunk's metrics (a run that lasts)
WRAPPER = """
import json, os, signal, sys, time
from theoryrl.core import ckpt, results
from theoryrl import cli
mode, n = sys.argv[1], int(sys.argv[2])
calls = [0]
if mode == "metrics":
    append = results.RunDir.append_metrics
    def wrapped(self, records):
        records = list(records)
        calls[0] += 1
        if calls[0] == n:
            text = "".join(json.dumps(r, sort_keys=True) + "\\n" for r in records)
            with open(self.path / "metrics.jsonl", "a") as fh:
                fh.write(text[: len(text) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        return append(self, records)
    results.RunDir.append_metrics = wrapped
elif mode == "ckpt":
    save = ckpt.Checkpointer.save
    def wrapped(self, step, tree):
        save(self, step, tree)
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
    ckpt.Checkpointer.save = wrapped
elif mode == "slow":
    append = results.RunDir.append_metrics
    def wrapped(self, records):
        append(self, records)
        time.sleep(n / 10)
    results.RunDir.append_metrics = wrapped
sys.exit(cli.main(sys.argv[3:]))
"""


def cli_run(mode: str, n: int, out: Path, cwd: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(CODE_ROOT), "MPLBACKEND": "Agg"}
    sets = [a for s in TINY for a in ("--set", s)]
    return subprocess.Popen([sys.executable, "-c", WRAPPER, mode, str(n), "run", "chain-emergence", *sets, "--out",
                             str(out), "--ckpt-every", "1", "--no-plot", "--quiet", *extra],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def chain_run(out: Path) -> Path:
    return execute(experiments.get("chain-emergence"), "quick", TINY, out=out, quiet=True, ckpt_every_chunks=1)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The tiny chain-emergence run, uninterrupted."""
    return chain_run(tmp_path_factory.mktemp("straight") / "run")


def assert_same_results(a: Path, b: Path) -> None:
    assert summary(a) == summary(b)
    with np.load(a / "arrays.npz") as x, np.load(b / "arrays.npz") as y:
        assert sorted(x.files) == sorted(y.files)
        for key in x.files:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)
    assert metric_lines(a) == metric_lines(b)


def test_sigkill_during_a_metrics_write_then_rerun_equals_an_uninterrupted_run(tmp_path, straight):
    out = tmp_path / "killed"
    proc = cli_run("metrics", 5, out, tmp_path)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "metrics.jsonl").read_text().endswith("\n")  # killed mid-line
    chain_run(out)
    assert_same_results(out, straight)


def test_sigkill_during_a_checkpoint_write_then_rerun_equals_an_uninterrupted_run(tmp_path, straight):
    out = tmp_path / "killed"
    proc = cli_run("ckpt", 5, out, tmp_path)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL and not (out / "DONE").exists()
    (bucket,) = (out / "ckpt").iterdir()
    assert any(p.name.endswith("orbax-checkpoint-tmp") for p in bucket.iterdir())  # killed mid-write
    chain_run(out)
    assert_same_results(out, straight)


def test_a_second_run_into_a_busy_folder_is_refused_and_the_first_finishes_intact(tmp_path, straight):
    out = tmp_path / "busy"
    first = cli_run("slow", 3, out, tmp_path)  # 0.3 s per chunk: the run lasts about 2.4 s
    deadline = time.time() + 240
    while not (out / "metrics.jsonl").exists():  # its first chunk is done: it holds the folder
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.05)
    with pytest.raises(ResultsError, match=re.escape(str(out)) + rf" is in use by another run \(pid {first.pid} "):
        chain_run(out)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 8  # one line per chunk: nobody else wrote
    assert_same_results(out, straight)
    chain_run(out)  # the lock went with the first run: now it is simply finished


# ---- learning switched off: a program of 0 chunks is legal (issue 20) -------------------------------
def test_a_program_of_zero_chunks_returns_the_initial_state_and_empty_histories(tmp_path):
    """chunks = 0 trains nothing: final w is each seed's w0 (the closed form at T = 0, since
    (1 - lr)^0 = 1), every history is an empty [runs, 0] array of the metric's dtype (so analyze
    sees the metric and can tell nothing trained), metrics.jsonl has no line, and the folder is
    DONE and reopens from its cache."""
    assert Config().chunks > 0  # the default trains; 0 is the setting under test
    cfg = Config(chunks=0)
    run_dir = run(tmp_path, sets=["chunks=0"])
    assert [r["chunks"] for r in summary(run_dir)["rows"]] == [0, 0]
    assert [r["w"] for r in summary(run_dir)["rows"]] == [w0_of(s) for s in cfg.seeds]
    bucket = np.load(next((run_dir / "buckets").glob("*.npz")))
    assert bucket["history/w"].shape == (len(cfg.seeds), 0) and bucket["history/w"].dtype == np.float32
    assert not (run_dir / "metrics.jsonl").exists() or (run_dir / "metrics.jsonl").read_text() == ""
    again = run(tmp_path, sets=["chunks=0"])  # reopened: the cached bucket, same summary
    assert summary(again)["rows"] == summary(run_dir)["rows"]


def test_a_stage_with_no_plans_at_this_config_is_skipped(tmp_path):
    """A later stage that plans nothing here (an arm the config does not select) adds no run: the
    table holds the first stage's runs only, and the analysis sees exactly them."""
    module = make_module()
    module.stages = lambda cfg: [Stage("train", functools.partial(_plans, cfg)), Stage("unused", lambda runs: [])]
    rows = summary(run(tmp_path, module=module))["rows"]
    assert [r["seed"] for r in rows] == list(Config().seeds)
