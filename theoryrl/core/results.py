"""Run folders: config.json, env.json, metrics.jsonl, arrays.npz, summary.json, runs.csv, DONE.

Layout (DESIGN.md): results/<experiment>/<run_id>/, run_id hashing the canonical config. Writes are
atomic (temp file + rename). A folder of another config (or with an unreadable config.json), or a
non-empty folder without one, is refused: never silently overwritten.
- `.lock`: process 0 holds an exclusive flock on it for the whole run, with its pid inside; a second
  run into the folder is refused at once, naming that pid. The kernel drops the lock when the
  process dies, so a SIGKILLed run leaves no stale lock (on NFS, flock may be local to one host).
- `DONE` (written last) records the sha256 of config.json, summary.json, arrays.npz and runs.csv,
  the program version, the git state and the metrics.jsonl line count. A reopened finished folder is
  verified: a missing, changed or unreadable file, or another program version, is a ResultsError
  naming it (`--force` recomputes). Another git commit with the same program version is reused and
  summary.json gets `reused_from`. An empty DONE (made before checksums) is accepted as legacy.
- `metrics.jsonl` (one line per chunk and run, a chunk's lines in one write) follows the bucket's
  history: the finished bucket's arrays, or the history saved in the checkpoint it resumes from.
  Whenever a bucket starts, resumes or is loaded from the cache, `reconcile_metrics` makes the file
  hold exactly that history's lines for it: unparseable lines (a kill mid-write), lines past the
  resume point and repeats are dropped, missing lines rebuilt from the history (`"wall_s": null`).
  A finished folder whose file lost lines says so in one log line; `--force` rebuilds it.
"""
from __future__ import annotations

import csv
import errno
import datetime
import fcntl
import hashlib
import io
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from theoryrl.core.config import canonical_json

LOCK = ".lock"
DONE_FORMAT = 2
CHECKED_FILES = ("config.json", "summary.json", "arrays.npz", "runs.csv")  # runs.csv only when written
FORCE_HINT = "rerun with --force to recompute it"
# what a failed read of a saved .npz raises (truncated, overwritten or half-written file)
NPZ_ERRORS = (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError)


class ResultsError(RuntimeError):
    pass


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, _json_bytes(data))


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n").encode()


def _with_digest(record: dict, name: str, digest) -> dict:
    return {**record, "files": {**record["files"], name: digest}}


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def clean_number(x):
    """JSON-safe float: NaN/inf become None."""
    x = float(x)
    return x if np.isfinite(x) else None


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buf.getvalue())


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def git_state(cwd: Path | None = None) -> dict:
    here = cwd or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return {"sha": None, "dirty": None}
        return {"sha": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "dirty": None}


def environment() -> dict:
    """Versions, backend, devices and precision: what a number in this folder depends on."""
    import jax

    def version(name):
        try:
            from importlib.metadata import version as v

            return v(name)
        except Exception:  # noqa: BLE001 - a missing optional package is simply recorded as None
            return None

    devices = jax.devices()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {n: version(n) for n in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "chex", "numpy", "matplotlib", "diffrax")},
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "process_count": jax.process_count(),
        "process_index": jax.process_index(),
        "x64": bool(jax.config.jax_enable_x64),
        "matmul_precision": str(jax.config.jax_default_matmul_precision),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "git": git_state(),
        "argv": sys.argv,
        "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


class RunDir:
    """One experiment run folder."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock_fd: int | None = None
        self._created: Path | None = None  # the top-most folder this object created (None: it existed)
        self._fresh = False  # this object wrote config.json into the folder (status 'new')

    # ---- lifecycle -------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return (self.path / "DONE").exists()

    def prepare(self, config: dict, *, lock: bool = True) -> str:
        """Create or reopen the folder for `config` and (with `lock`) hold its lock until `release()`.
        Returns 'done', 'resume' or 'new'. Raises ResultsError for a folder of another config, an
        unreadable config.json, a non-empty folder that is not a run folder, or a folder in use."""
        self._check_folder(config)  # before touching anything: a refused folder gets no lock file
        self._created = self._mkdirs()
        try:
            if lock:
                self._lock()
            if self._check_folder(config):  # again, under the lock
                return "done" if self.done else "resume"
            atomic_write_json(self.path / "config.json", config)
            self._fresh = True
            return "new"
        except BaseException:
            # Undo only under our own lock: a run refused because another holds the lock must not
            # touch the folder, even if it saw the folder missing a moment before the other made it.
            if self._lock_fd is not None:
                self._remove_created()
            self.release()
            raise

    def _mkdirs(self) -> Path | None:
        """Create the run folder and its missing parents one level at a time; returns the top-most
        folder this call itself created (None: all existed). A level another process creates in the
        meantime is theirs (FileExistsError), so only what we made can ever be removed by us."""
        created = None
        for level in [*reversed(self.path.parents), self.path]:
            try:
                os.mkdir(level)
            except FileExistsError:
                if not level.is_dir():
                    raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(level)) from None
                continue
            created = created or level
        return created

    def _check_folder(self, config: dict) -> bool:
        """True when the folder holds `config`'s run; False when it is new (absent, or empty but
        for a lock file); else ResultsError."""
        if self._check_config(config):
            return True
        if self.path.is_dir():
            stray = [p.name for p in self.path.iterdir() if p.name != LOCK and not p.name.endswith(".tmp")]
            if stray:
                raise ResultsError(f"{self.path} is not empty and holds no config.json (it is not a run folder: "
                                   f"{', '.join(sorted(stray)[:3])}); choose another --out")
        return False

    def _check_config(self, config: dict) -> bool:
        """True when config.json holds `config`; False when there is none; else ResultsError."""
        cfg_path = self.path / "config.json"
        if not cfg_path.exists():
            return False
        try:
            old = json.loads(cfg_path.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise ResultsError(f"{cfg_path} is unreadable ({err}); cannot tell which run this folder holds "
                               "(choose another --out, or delete the folder)") from None
        if canonical_json(old) != canonical_json(config):
            raise ResultsError(
                f"{self.path} holds a run of a different config; refusing to overwrite it "
                "(choose another --out, or delete the folder)")
        return True

    def _lock(self) -> None:
        """Take the folder's exclusive flock (held until release() or process death)."""
        try:
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            if self.done:  # a finished folder we cannot write to: nobody else can write it either
                return
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "pid not yet written"
            os.close(fd)
            raise ResultsError(f"{self.path} is in use by another run ({holder}); wait for it to finish, "
                               "or stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._lock_fd = fd

    def release(self) -> None:
        """Drop the folder's lock (the lock file stays: removing it would race with a new holder)."""
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def discard_if_empty(self) -> bool:
        """Undo a new folder that holds nothing but what `prepare` and `write_env` wrote (config.json,
        env.json, the lock file; no metrics, bucket, checkpoint file or result), so that a run that
        failed before any compute leaves no half-made folder. Only a folder this object started
        (status 'new') is touched, and only the folders it created are removed (when empty).
        Returns whether anything was removed."""
        if not self._fresh or not self.path.is_dir():
            return False
        ours = {"config.json", "env.json", LOCK}
        for root, _, files in os.walk(self.path):
            if (Path(root) != self.path and files) or (Path(root) == self.path and set(files) - ours):
                return False
        for name in ("config.json", "env.json"):
            (self.path / name).unlink(missing_ok=True)
        if self._created is None:
            (self.path / LOCK).unlink(missing_ok=True)  # a folder the user made: leave it as it was
        self._remove_created()
        self._fresh = False
        return True

    def _remove_created(self) -> None:
        """Remove the run folder and the parents this object created, each only while it holds
        nothing but the lock file (another run may have put something there since)."""
        if self._created is None:
            return
        if self.path.is_dir():
            if any(p.name != LOCK for p in self.path.iterdir()):
                return
            (self.path / LOCK).unlink(missing_ok=True)
            try:
                self.path.rmdir()
            except OSError:
                return
        for parent in self.path.parents:
            if parent == self._created.parent:
                break
            try:
                parent.rmdir()
            except OSError:
                break
        self._created = None

    def write_env(self) -> None:
        atomic_write_json(self.path / "env.json", environment())

    # ---- DONE: the finished run, verified ------------------------------------------------------
    def mark_done(self, program_version: int) -> None:
        """DONE, written last: checksums of the results, the program version and git state."""
        files = {name: sha256_file(self.path / name) for name in CHECKED_FILES if (self.path / name).exists()}
        atomic_write_json(self.path / "DONE", {"format": DONE_FORMAT, "files": files,
                                               "program_version": program_version, "git": git_state(),
                                               "metrics_lines": self.metrics_line_count()})

    def verify_done(self, program_version: int) -> dict:
        """DONE's record after checking every file it names ({} for a legacy empty DONE, whose
        summary.json and arrays.npz are only checked to exist and parse). ResultsError names the
        first missing, changed or unreadable file, or the other program version."""
        done = self.path / "DONE"
        try:
            raw = done.read_bytes()
        except OSError as err:
            raise ResultsError(f"{done} is unreadable ({err}); {FORCE_HINT}") from None
        if not raw.strip():
            self._check_file("summary.json", None)
            self._check_file("arrays.npz", None)
            return {}
        try:
            record = json.loads(raw)
            files = dict(record["files"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
            raise ResultsError(f"{done} is unreadable ({type(err).__name__}: {err}); {FORCE_HINT}") from None
        for name, digest in files.items():
            self._check_file(name, digest)
        if record.get("program_version") != program_version:
            raise ResultsError(f"{self.path} was computed by program version {record.get('program_version')} of "
                               f"this experiment, the code's is {program_version}: its results are not reused; "
                               f"{FORCE_HINT}")
        return record

    def _check_file(self, name: str, digest: str | None) -> None:
        path = self.path / name
        if not path.is_file():
            raise ResultsError(f"{path} is missing; {FORCE_HINT}")
        if name.endswith(".json"):
            try:
                json.loads(path.read_text())
            except (ValueError, UnicodeDecodeError) as err:
                raise ResultsError(f"{path} is not valid JSON ({err}); {FORCE_HINT}") from None
        if digest is None:
            return
        if sha256_file(path) not in (digest if isinstance(digest, list) else [digest]):
            raise ResultsError(f"{path} has changed since the run finished (its sha256 differs from the one in "
                               f"DONE); {FORCE_HINT}")

    def note_reuse(self, record: dict, program_version: int) -> dict | None:
        """When the finished run was computed at another git commit (same program version): mark
        summary.json with `reused_from` and re-record its checksum. Returns that mark (None: same
        commit, unknown, or legacy). A read-only folder is left as it is."""
        then, now = (record.get("git") or {}).get("sha"), git_state()["sha"]
        if not then or not now or then == now:
            return None
        mark = {"git": then, "program_version": program_version}
        summary_path = self.path / "summary.json"
        summary = json.loads(summary_path.read_text())
        if summary.get("reused_from") != mark:
            # DONE first accepts both the old and the marked summary, then the summary is marked,
            # then DONE keeps only the new checksum: a kill between any two writes leaves a folder
            # that still verifies.
            marked = _json_bytes({**summary, "reused_from": mark})
            old_digest, new_digest = sha256_file(summary_path), hashlib.sha256(marked).hexdigest()
            try:
                atomic_write_json(self.path / "DONE", _with_digest(record, "summary.json", [old_digest, new_digest]))
                atomic_write_bytes(summary_path, marked)
                atomic_write_json(self.path / "DONE", _with_digest(record, "summary.json", new_digest))
            except OSError:
                pass  # a read-only folder is reused as it is
        return mark

    def metrics_note(self, record: dict) -> str | None:
        """A line when metrics.jsonl no longer holds the lines DONE counted (None when it does)."""
        want = record.get("metrics_lines")
        if want is None:
            return None
        have = self.metrics_line_count()
        if have == want:
            return None
        what = "is missing" if not (self.path / "metrics.jsonl").exists() else f"holds {have} lines"
        return (f"{self.path / 'metrics.jsonl'} {what} (DONE recorded {want}); the results are intact, "
                "--force rebuilds it from the cached buckets")

    def unfinish(self, *, clear_compute: bool) -> None:
        """Make a finished folder unfinished (for --force): DONE goes first; with `clear_compute`
        (another program version) the cached buckets, checkpoints and metrics go too."""
        (self.path / "DONE").unlink(missing_ok=True)
        if clear_compute:
            for name in ("buckets", "ckpt"):
                shutil.rmtree(self.path / name, ignore_errors=True)
            for name in ("metrics.jsonl", "summary.json", "arrays.npz", "runs.csv"):
                (self.path / name).unlink(missing_ok=True)

    # ---- streaming metrics -------------------------------------------------------------------
    def append_metrics(self, records: Iterable[dict]) -> None:
        """One chunk's lines, in one write (a kill leaves at most one partial last line)."""
        text = "".join(_metrics_line(rec) for rec in records)
        with open(self.path / "metrics.jsonl", "a") as fh:
            fh.write(text)

    def metrics_line_count(self) -> int:
        path = self.path / "metrics.jsonl"
        return path.read_bytes().count(b"\n") if path.exists() else 0

    def reconcile_metrics(self, bucket: str, history: dict[str, np.ndarray], steps_per_chunk: int) -> dict[str, int]:
        """Make metrics.jsonl hold exactly `history`'s lines for `bucket` (history: metric ->
        [runs, chunks, ...], {} for none); other buckets' lines are kept as they are. Returns the
        counts of lines dropped as unparseable ("partial"), past the history ("stale"), repeated
        ("duplicate"), and rebuilt from the history ("rebuilt")."""
        path = self.path / "metrics.jsonl"
        raw = path.read_bytes() if path.exists() else b""
        first = next(iter(history.values()), np.zeros((0, 0)))
        num_runs, chunks = (first.shape[0], first.shape[1]) if history else (0, 0)
        counts = {"partial": 0, "stale": 0, "duplicate": 0, "rebuilt": 0}
        per_chunk: dict[int, list[dict]] = {}

        def expected(c: int, r: int) -> dict:
            if c not in per_chunk:
                per_chunk[c] = metric_records(bucket, c, {k: v[:, c] for k, v in history.items()}, num_runs,
                                              steps_per_chunk, wall_s=None)
            return per_chunk[c][r]

        others: list[bytes] = []
        mine: dict[tuple[int, int], bytes] = {}
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key = (int(rec["chunk"]), int(rec["run"])) if rec.get("bucket") == bucket else None
            except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
                counts["partial"] += 1  # unparseable, or not a record (e.g. a bare number)
                continue
            if key is None:
                others.append(line)
            elif not (0 <= key[0] < chunks and 0 <= key[1] < num_runs):
                counts["stale"] += 1
            elif key in mine:
                counts["duplicate"] += 1
            elif not _same_values(rec, expected(*key)):
                counts["stale"] += 1  # a line of another computation of this chunk: the history wins
            else:
                mine[key] = line
        for c in range(chunks):
            for r in range(num_runs):
                if (c, r) not in mine:
                    mine[(c, r)] = _metrics_line(expected(c, r)).rstrip("\n").encode()
                    counts["rebuilt"] += 1
        lines = others + [mine[k] for k in sorted(mine)]
        text = b"".join(line + b"\n" for line in lines)
        if text != raw and (path.exists() or text):
            atomic_write_bytes(path, text)
        return counts

    # ---- buckets (shape-homogeneous groups of runs) ------------------------------------------
    def bucket_path(self, bucket: str) -> Path:
        return self.path / "buckets" / f"{bucket}.npz"

    def ckpt_path(self, bucket: str) -> Path:
        return self.path / "ckpt" / bucket

    def save_bucket(self, bucket: str, arrays: dict[str, np.ndarray], wall_s: float | None = None) -> None:
        """The bucket's arrays, and beside them the wall time of the session that finished it (written
        first: the npz marks the bucket finished)."""
        if wall_s is not None:
            atomic_write_json(self.bucket_path(bucket).with_suffix(".json"), {"wall_s": round(float(wall_s), 3)})
        save_npz(self.bucket_path(bucket), arrays)

    def bucket_wall_s(self, bucket: str) -> float | None:
        """Wall seconds the finished bucket took to train (None when not recorded or unreadable)."""
        path = self.bucket_path(bucket).with_suffix(".json")
        try:
            return float(json.loads(path.read_text())["wall_s"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def load_bucket(self, bucket: str) -> dict[str, np.ndarray] | None:
        """The finished bucket's arrays (None when not finished). A corrupt file raises one of
        NPZ_ERRORS; the harness then trains the bucket again."""
        path = self.bucket_path(bucket)
        return load_npz(path) if path.exists() else None

    # ---- final artefacts ---------------------------------------------------------------------
    def write_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        save_npz(self.path / "arrays.npz", arrays)

    def write_summary(self, summary: dict) -> None:
        atomic_write_json(self.path / "summary.json", summary)

    def write_runs_csv(self, rows: list[dict]) -> None:
        if not rows:
            (self.path / "runs.csv").unlink(missing_ok=True)  # not a stale table of an earlier computation
            return
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(row.get(k)) for k in columns})
        atomic_write_bytes(self.path / "runs.csv", buf.getvalue().encode())


def metric_records(bucket: str, chunk: int, metrics: dict[str, np.ndarray], num_runs: int, steps_per_chunk: int,
                   wall_s: float | None) -> list[dict]:
    """metrics.jsonl records of one chunk: one per run (metrics: name -> [runs, ...])."""
    records = []
    for r in range(num_runs):
        rec = {"bucket": bucket, "chunk": chunk, "run": r, "step": (chunk + 1) * steps_per_chunk, "wall_s": wall_s}
        for k, v in metrics.items():
            v = np.asarray(v)[r]
            rec[k] = v.tolist() if v.ndim else v.item()
        records.append(rec)
    return records


def _same_values(line_rec: dict, want: dict) -> bool:
    """A metrics line holds the history's values (wall_s aside), compared as serialised JSON so that
    NaN equals NaN and float32 values compare exactly."""
    return _metrics_line({**line_rec, "wall_s": None}) == _metrics_line({**want, "wall_s": None})


def _metrics_line(rec: dict) -> str:
    return json.dumps(rec, sort_keys=True, default=_json_default) + "\n"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _csv_cell(v):
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        return json.dumps(list(v))
    return v


def make_summary(experiment: str, tier: str, metrics: dict, rows: list[dict], paper: dict, verdict: dict,
                 not_judged: dict | None = None, verdicts: dict | None = None) -> dict:
    """The summary.json contract of DESIGN.md; `not_judged` (claim -> the precondition that failed)
    only when some claim could not be judged; `verdicts` (claim -> core/verdicts.Verdict: status,
    value, threshold, margin, SE, reason, the paper's number) only when the experiment builds them."""
    extra = {"not_judged": dict(not_judged)} if not_judged else {}
    if verdicts:
        extra["verdicts"] = {k: v.to_json() for k, v in verdicts.items()}
    return {**extra,
        "experiment": experiment,
        "tier": tier,
        "metrics": {k: (clean_number(v) if v is not None else None) for k, v in metrics.items()},
        "rows": rows,
        "paper": paper,
        "verdict": {k: bool(v) for k, v in verdict.items()},
    }
