"""Typed PRNG keys and named streams.

One root key per run (`jax.random.key(seed)`); independent streams are derived with `fold_in`
so that changing, say, the data mixture never changes the initialisation, and the key of step t
is `fold_in(stream, t)`: it does not depend on chunking or on where a run was resumed.
"""
from __future__ import annotations

import enum

import jax


class Stream(enum.IntEnum):
    """Fixed stream ids: never reorder (that would change every result for a given seed)."""

    INIT = 0
    DATA = 1
    POLICY = 2
    EVAL = 3
    DATA_ORDER = 4


def root_key(seed) -> jax.Array:
    """Typed key for a run seed (int or traced int32)."""
    return jax.random.key(seed)


def stream_key(key: jax.Array, stream: Stream) -> jax.Array:
    return jax.random.fold_in(key, int(stream))


def step_key(key: jax.Array, stream: Stream, t) -> jax.Array:
    """Key of stream `stream` at step `t` (t may be traced)."""
    return jax.random.fold_in(stream_key(key, stream), t)
