"""Checkpoints: the only module that imports orbax.

Orbax saves a pytree by key path; a restore into a changed structure is a StructureMismatch that
names the keys. The stable v0 `CheckpointManager` API with `StandardSave` / `StandardRestore` against an
abstract target built from the current state (so shardings of the current mesh are used).
Saves are awaited before `close()` so that a final checkpoint is never lost at exit. The driver
(core/loop.py) restores the newest intact step and deletes unreadable newer ones.
"""
from __future__ import annotations

import logging
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from theoryrl.core.treepath import StructureMismatch

# orbax logs every save at INFO; our own progress line already says what happens
logging.getLogger("absl").setLevel(logging.WARNING)


class Checkpointer:
    def __init__(self, directory: Path, max_to_keep: int = 2):
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._max_to_keep = max_to_keep
        self._mngr = self._open()

    def _open(self) -> ocp.CheckpointManager:
        return ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=self._max_to_keep, enable_async_checkpointing=True),
        )

    def latest_step(self) -> int | None:
        return self._mngr.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._mngr.all_steps())

    def quarantine(self, step: int) -> Path:
        """Move an unreadable step aside, to `<step>.unreadable[-k]` (kept for inspection, never
        deleted: a misjudged step can be renamed back), and reopen the manager: after a failed
        restore of a damaged step (e.g. its item folder deleted) orbax's manager guesses a multi-item
        layout, and its next save would be refused."""
        self._mngr.wait_until_finished()
        self._mngr.close()
        src = self.directory / str(step)
        dst = self.directory / f"{step}.unreadable"
        k = 1
        while dst.exists():
            k += 1
            dst = self.directory / f"{step}.unreadable-{k}"
        src.rename(dst)
        self._mngr = self._open()
        return dst

    def save(self, step: int, tree) -> None:
        self._mngr.save(step, args=ocp.args.StandardSave(tree), force=True)

    def restore(self, step: int, like):
        """Restore `step` into the structure, dtypes, shapes and shardings of `like`. Leaves are
        matched by key path; a changed structure raises StructureMismatch naming the keys."""
        abstract = jax.tree.map(_abstract, like)
        try:
            return self._mngr.restore(step, args=ocp.args.StandardRestore(abstract))
        except ValueError as err:
            if "structures do not match" not in str(err):
                raise
            lines = [ln.rstrip(":") for ln in str(err).splitlines() if ln and not ln.startswith((" ", "User", "If"))]
            raise StructureMismatch(f"checkpoint {self.directory} step {step} does not match the program's state "
                                    f"(keys that differ: {', '.join(lines)})") from None

    def wait(self) -> None:
        self._mngr.wait_until_finished()

    def close(self) -> None:
        self._mngr.wait_until_finished()
        self._mngr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _abstract(x):
    if isinstance(x, jax.Array):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    return ocp.utils.to_shape_dtype_struct(x)
