"""Run folders: config.json, env.json, metrics.jsonl, arrays.npz, summary.json, runs.csv, DONE.

Layout (DESIGN.md): results/<experiment>/<run_id>/ where run_id hashes the canonical config.
A folder with DONE is finished and is never redone; a folder without it is resumed. A folder
whose config.json differs from the requested config is refused (no silent overwrite).
Writes are atomic (temp file + rename) so a SIGKILL never leaves a half-written file behind.
"""
from __future__ import annotations

import csv
import datetime
import io
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from theoryrl.core.config import canonical_json


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
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n").encode())


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

    # ---- lifecycle -------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return (self.path / "DONE").exists()

    def prepare(self, config: dict) -> str:
        """Create or reopen the folder for `config`. Returns 'done', 'resume' or 'new'."""
        cfg_path = self.path / "config.json"
        if cfg_path.exists():
            old = json.loads(cfg_path.read_text())
            if canonical_json(old) != canonical_json(config):
                raise ResultsError(
                    f"{self.path} holds a run of a different config; refusing to overwrite it "
                    "(choose another --out, or delete the folder)")
            if self.done:
                return "done"
            return "resume"
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(cfg_path, config)
        return "new"

    def write_env(self) -> None:
        atomic_write_json(self.path / "env.json", environment())

    def mark_done(self) -> None:
        atomic_write_bytes(self.path / "DONE", b"")

    # ---- streaming metrics -------------------------------------------------------------------
    def append_metrics(self, records: Iterable[dict]) -> None:
        with open(self.path / "metrics.jsonl", "a") as fh:
            for rec in records:
                fh.write(json.dumps(rec, sort_keys=True, default=_json_default) + "\n")

    def truncate_metrics(self, bucket: str, keep_chunks_below: int) -> None:
        """Drop `bucket`'s lines from chunk `keep_chunks_below` on (they are recomputed on resume)."""
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return
        kept = [line for line in path.read_text().splitlines()
                if line and not (json.loads(line).get("bucket") == bucket
                                 and json.loads(line).get("chunk", -1) >= keep_chunks_below)]
        atomic_write_bytes(path, ("\n".join(kept) + ("\n" if kept else "")).encode())

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
        """Wall seconds the finished bucket took to train (None when not recorded)."""
        path = self.bucket_path(bucket).with_suffix(".json")
        return float(json.loads(path.read_text())["wall_s"]) if path.exists() else None

    def load_bucket(self, bucket: str) -> dict[str, np.ndarray] | None:
        path = self.bucket_path(bucket)
        return load_npz(path) if path.exists() else None

    # ---- final artefacts ---------------------------------------------------------------------
    def write_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        save_npz(self.path / "arrays.npz", arrays)

    def write_summary(self, summary: dict) -> None:
        atomic_write_json(self.path / "summary.json", summary)

    def write_runs_csv(self, rows: list[dict]) -> None:
        if not rows:
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


def _csv_cell(v):
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        return json.dumps(list(v))
    return v


def make_summary(experiment: str, tier: str, metrics: dict, rows: list[dict], paper: dict, verdict: dict,
                 not_judged: dict | None = None) -> dict:
    """The summary.json contract of DESIGN.md; `not_judged` (claim -> the precondition that failed)
    only when some claim could not be judged."""
    extra = {"not_judged": dict(not_judged)} if not_judged else {}
    return {**extra,
        "experiment": experiment,
        "tier": tier,
        "metrics": {k: (clean_number(v) if v is not None else None) for k, v in metrics.items()},
        "rows": rows,
        "paper": paper,
        "verdict": {k: bool(v) for k, v in verdict.items()},
    }
