"""Pytrees as flat {key path: leaf} dicts, and back, matched by name and never by leaf index.

Trained parameters travel between stages and into the base store as named host arrays
("final/params/blocks/0/wq/value"). Restoring them into a model of another shape or layout must
fail loudly: `unflatten` checks that the saved names are exactly the names of the target structure
and raises `StructureMismatch` naming the missing and the extra keys. Loading by leaf index, as
before, silently assigned one layer's weights to another whenever the structure changed.
"""
from __future__ import annotations

from typing import Any

import jax
import numpy as np


class StructureMismatch(KeyError):
    """Saved arrays do not match the target pytree's key paths (the message names them)."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def key_name(path) -> str:
    """'blocks/0/wq/value' for a jax key path."""
    return jax.tree_util.keystr(path, simple=True, separator="/")


def flatten(tree, prefix: str = "") -> dict[str, Any]:
    """{prefix + key path: leaf} for every leaf of `tree` (prefix ends with '/' or is empty)."""
    return {prefix + key_name(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def unflatten(like, arrays: dict[str, Any], prefix: str = "", *, what: str = "arrays"):
    """The pytree of `like`'s structure whose leaves are `arrays[prefix + key path]`.

    Only keys under `prefix` take part. Missing or extra keys, or a leaf whose shape differs from
    `like`'s (when `like` has shapes), raise StructureMismatch naming them."""
    paths = [(key_name(p), leaf) for p, leaf in jax.tree_util.tree_flatten_with_path(like)[0]]
    wanted = [name for name, _ in paths]
    saved = {k[len(prefix):] for k in arrays if k.startswith(prefix)}
    missing, extra = sorted(set(wanted) - saved), sorted(saved - set(wanted))
    if missing or extra:
        raise StructureMismatch(
            f"{what} do not match the expected structure under '{prefix}': "
            f"missing {_few(missing)}, unexpected {_few(extra)}")
    leaves = []
    for name, ref in paths:
        value = arrays[prefix + name]
        ref_shape = getattr(ref, "shape", None)
        if ref_shape is not None and tuple(np.shape(value)) != tuple(ref_shape):
            raise StructureMismatch(f"{what}: '{prefix}{name}' has shape {tuple(np.shape(value))}, "
                                    f"expected {tuple(ref_shape)}")
        leaves.append(value)
    return jax.tree.unflatten(jax.tree.structure(like), leaves)


def _few(names: list[str], n: int = 5) -> str:
    if not names:
        return "none"
    shown = ", ".join(repr(x) for x in names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")
