"""The store of trained bases: pre- and mid-training runs, content-addressed and trained once.

A base is one run of a stage declared `store_bases=True` (DESIGN.md, "Base store"). Its address is
the hash of its `base_key`: the canonical config of everything its training program reads, plus
the program's name and version (bump the version when the program's numerics change). Any run,
experiment or sweep that asks for the same key reuses the stored base instead of training it.
The key leaves out the jax version and backend on purpose: a base trained on a GPU serves a CPU
run, and its gate is judged again on every reuse; env.json records where it was trained.

Layout: <store>/<base id>/ (the store is <results root>/bases unless $THEORYRL_BASES names one)
with config.json (the key, the producing stage and experiment, the run's row knobs), arrays.npz
(the run's metric history and final arrays, trained parameters by key path: its checkpoint),
gate.json (what the base must be able to do, and whether it can), env.json, meta.json (wall time
of its training bucket, size, creation date) and DONE, written last.
A base is published by renaming a finished temporary folder, so a reader never sees half of one.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from theoryrl.core.config import run_id
from theoryrl.core.results import atomic_write_bytes, atomic_write_json, load_npz, save_npz


@dataclasses.dataclass(frozen=True)
class Gate:
    """A base's quality gate: `requirement` in words, the `measured` values it was judged on."""

    passed: bool
    requirement: str
    measured: dict

    def to_dict(self) -> dict:
        return {"passed": bool(self.passed), "requirement": self.requirement, "measured": self.measured}

    @classmethod
    def from_dict(cls, data: dict) -> "Gate":
        return cls(bool(data["passed"]), data["requirement"], dict(data["measured"]))


@dataclasses.dataclass(frozen=True)
class StoredBase:
    base_id: str
    path: Path
    config: dict
    arrays: dict[str, np.ndarray]
    gate: Gate | None
    meta: dict


def base_id(key: dict) -> str:
    """The content address of a base: run_id of its canonical key (which names program and version)."""
    if "program" not in key:
        raise ValueError("a base_key must name its training program and version under 'program'")
    return run_id({"base": key})


class BaseStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, bid: str) -> Path:
        return self.root / bid

    def has(self, bid: str) -> bool:
        return (self.path(bid) / "DONE").exists()

    def load(self, bid: str) -> StoredBase | None:
        path = self.path(bid)
        if not (path / "DONE").exists():
            return None
        gate_path = path / "gate.json"
        gate = Gate.from_dict(json.loads(gate_path.read_text())) if gate_path.exists() else None
        return StoredBase(bid, path, json.loads((path / "config.json").read_text()), load_npz(path / "arrays.npz"),
                          gate, json.loads((path / "meta.json").read_text()))

    def save(self, bid: str, *, key: dict, stage: str, experiment: str, row: dict, arrays: dict[str, np.ndarray],
             gate: Gate | None, wall_s: float, env: dict | None = None) -> Path:
        """Publish one trained base (no-op when an identical base is already stored)."""
        final = self.path(bid)
        if self.has(bid):
            return final
        tmp = self.root / f".tmp-{bid}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        atomic_write_json(tmp / "config.json", {"key": key, "stage": stage, "experiment": experiment, "row": row})
        save_npz(tmp / "arrays.npz", arrays)
        if gate is not None:
            atomic_write_json(tmp / "gate.json", gate.to_dict())
        if env is not None:
            atomic_write_json(tmp / "env.json", env)
        size = sum(p.stat().st_size for p in tmp.iterdir())
        atomic_write_json(tmp / "meta.json", {
            "wall_s": round(float(wall_s), 3), "bytes": size,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
        atomic_write_bytes(tmp / "DONE", b"")
        if self.has(bid):  # another process published it meanwhile: keep theirs, never delete a finished base
            shutil.rmtree(tmp, ignore_errors=True)
            return final
        if final.exists():  # an unfinished leftover (no DONE): replace it
            shutil.rmtree(final)
        try:
            os.replace(tmp, final)
        except OSError:  # another process published the same base first
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def list(self) -> list[dict[str, Any]]:
        """One record per stored base, oldest first."""
        out = []
        if not self.root.exists():
            return out
        for path in sorted(self.root.iterdir()):
            if path.name.startswith(".") or not (path / "DONE").exists():
                continue
            stored = self.load(path.name)
            out.append({"base_id": path.name, "experiment": stored.config["experiment"],
                        "stage": stored.config["stage"], "row": stored.config["row"],
                        "gate": None if stored.gate is None else stored.gate.passed,
                        "bytes": stored.meta["bytes"], "wall_s": stored.meta["wall_s"],
                        "created": stored.meta["created"]})
        return sorted(out, key=lambda r: r["created"])
