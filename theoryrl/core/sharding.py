"""Meshes, the run axis and the data axis, and multi-host start-up: the only file that builds a Mesh.

The mesh always has two axes, ("runs", "data"), of shape (device_count // data, data):

* "runs": a sweep's stacked runs (seeds x hparams, flattened) live on the leading axis of every
  leaf and are split over this axis; `jit(vmap(run_chunk, spmd_axis_name="runs"))` then trains
  R / n_runs_devices runs per device with no collectives.
* "data": inside one run, the leading (example) axis of a training batch is split over this axis
  by `constrain_batch`; params stay replicated and the compiler mean-reduces gradients.

Usage (one host or many)::

    initialize_distributed()                 # first, before any JAX op (no-op on one host)
    mesh = make_mesh(data=1)
    hp, n_pad = pad_runs(hp, mesh.shape["runs"])
    with use_mesh(mesh):
        hp = shard_runs(hp, mesh)
        run = jax.jit(jax.vmap(partial(run_chunk, spec), spmd_axis_name="runs"),
                      out_shardings=runs_sharding(mesh))   # else hp-independent leaves (epoch,
        state, metrics = run(state, hp, data)               # Adam count) come out replicated
    metrics = unpad_runs(gather_runs(metrics), n_pad)

Axis types: the mesh axes are `AxisType.Auto`, not the `jax.make_mesh` default `Explicit`. With
all-Explicit axes (a) `with_sharding_constraint` only *asserts* that the sharding-in-types
already matches (jax/_src/pjit.py, `are_all_axes_explicit`), so `constrain_batch` could not move
the batch onto "data" without `reshard` and a sharding rule for every op on the way; and (b) a
jitted sweep traced outside a mesh context fails at advanced-indexing gathers with "Resource axis:
runs ... is not found in mesh: ()" (specs/jax_practice.md §9.2). Auto axes keep the propagate-from-
inputs behaviour: outputs follow the input shardings whether or not a mesh is set. Still, run jitted
entry points inside `with use_mesh(mesh):`: `constrain_batch` reads the mesh from that context
(jax.sharding.get_abstract_mesh) and does nothing without it.

Numerics: a different layout (device count, data split) gives statistically equal, not bitwise
equal, results (specs/jax_practice.md §12.1).
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

RUNS = "runs"
DATA = "data"
ENV_COORDINATOR = "THEORYRL_COORDINATOR"
ENV_NUM_PROCESSES = "THEORYRL_NUM_PROCESSES"
ENV_PROCESS_ID = "THEORYRL_PROCESS_ID"

_initialized = False


# ------------------------------------------------------------------ multi-host start-up

def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Join a multi-process JAX job; call first, before any JAX op.

    Arguments win over the environment variables THEORYRL_COORDINATOR ("host:port"),
    THEORYRL_NUM_PROCESSES and THEORYRL_PROCESS_ID. With neither, this is a no-op (one process).
    Calling it again after a successful start does nothing.
    """
    global _initialized
    if _initialized or jax.distributed.is_initialized():
        _initialized = True
        return
    env = os.environ
    coordinator_address = coordinator_address or env.get(ENV_COORDINATOR) or None
    if num_processes is None and env.get(ENV_NUM_PROCESSES):
        num_processes = int(env[ENV_NUM_PROCESSES])
    if process_id is None and env.get(ENV_PROCESS_ID):
        process_id = int(env[ENV_PROCESS_ID])
    if coordinator_address is None and num_processes is None and process_id is None:
        return
    if coordinator_address is None or num_processes is None or process_id is None:
        raise ValueError(
            "initialize_distributed: coordinator_address, num_processes and process_id must all be given "
            f"(arguments or {ENV_COORDINATOR}/{ENV_NUM_PROCESSES}/{ENV_PROCESS_ID}); got "
            f"{coordinator_address!r}, {num_processes!r}, {process_id!r}")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"initialize_distributed: process_id={process_id} must be in [0, {num_processes})")
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id)
    _initialized = True


# ------------------------------------------------------------------ meshes

def make_mesh(data: int = 1) -> Mesh:
    """All global devices as a ("runs", "data") mesh of shape (device_count // data, data), Auto axes."""
    n = jax.device_count()
    if not (isinstance(data, int) and data >= 1 and n % data == 0):
        raise ValueError(f"make_mesh: data={data!r} must be a positive integer dividing the device count {n}")
    return jax.make_mesh((n // data, data), (RUNS, DATA), axis_types=(AxisType.Auto, AxisType.Auto))


@contextlib.contextmanager
def use_mesh(mesh: Mesh) -> Iterator[Mesh]:
    """`with use_mesh(mesh):` makes `mesh` the current mesh (jax.set_mesh) for jit and constrain_batch."""
    with jax.set_mesh(mesh):
        yield mesh


def runs_sharding(mesh: Mesh) -> NamedSharding:
    """Leading axis on "runs", every other axis replicated (also over "data")."""
    return NamedSharding(mesh, P(RUNS))


# ------------------------------------------------------------------ the run axis on the host

def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def num_runs(tree) -> int:
    """The common leading (run) axis size of every leaf."""
    sizes = {np.shape(x)[0] if np.ndim(x) else None for x in jax.tree.leaves(tree)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"expected every leaf to have the same leading run axis, got sizes {sorted(map(str, sizes))}")
    return sizes.pop()


def pad_runs(tree, multiple: int) -> tuple[Any, int]:
    """Pad the run axis to a multiple of `multiple` by repeating the last run; returns (tree, n_pad).

    Padded runs are real, finite copies of the last run (no NaN/0 dummies that could trip a NaN
    guard); drop them with `unpad_runs` and record n_pad (e.g. in runs.csv).
    """
    if not (isinstance(multiple, int) and multiple >= 1):
        raise ValueError(f"pad_runs: multiple={multiple!r} must be a positive integer")
    n = num_runs(tree)
    n_pad = -n % multiple
    if n_pad == 0:
        return tree, 0

    def pad(x):
        if isinstance(x, np.ndarray):
            return np.concatenate([x, np.repeat(x[-1:], n_pad, axis=0)])
        return jnp.concatenate([x, jnp.repeat(x[-1:], n_pad, axis=0)])

    return jax.tree.map(pad, tree), n_pad


def unpad_runs(tree, n_pad: int):
    """Drop the last `n_pad` runs added by `pad_runs`."""
    if n_pad == 0:
        return tree
    n = num_runs(tree)
    if not 0 <= n_pad < n:
        raise ValueError(f"unpad_runs: n_pad={n_pad} must be in [0, {n})")
    return jax.tree.map(lambda x: x[: n - n_pad], tree)


# ------------------------------------------------------------------ placing and gathering runs

def process_run_slice(n_runs: int, mesh: Mesh) -> slice:
    """The rows of a run axis of length `n_runs` whose shards live on this process's devices."""
    index_map = runs_sharding(mesh).addressable_devices_indices_map((n_runs,))
    starts = sorted({idx[0].indices(n_runs)[:2] for idx in index_map.values()})
    lo, hi = starts[0][0], starts[-1][1]
    if sum(b - a for a, b in starts) != hi - lo:
        raise ValueError(f"this process's run rows are not contiguous: {starts}")
    return slice(lo, hi)


def _place(x, sharding: NamedSharding, process_local: bool):
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    x = np.asarray(x)
    if process_local:  # this process's rows only: the global run axis is process_count times longer
        global_shape = (x.shape[0] * jax.process_count(),) + x.shape[1:]
    else:  # the full run axis, identical on every process
        global_shape = x.shape
    return jax.make_array_from_process_local_data(sharding, x, global_shape)


def shard_runs(tree, mesh: Mesh, *, process_local: bool = False):
    """Put every leaf on the mesh with its leading (run) axis on "runs", other axes replicated.

    The run count must be a multiple of mesh.shape["runs"] (use `pad_runs`). Typed PRNG key
    leaves are supported (their raw key data is placed, then re-wrapped).

    Multi-host convention: by default every process passes the FULL run axis, with identical
    values (sweeps are built deterministically from the config), and each process places only the
    rows its devices own. With `process_local=True`, each process passes only its own rows,
    `tree[process_run_slice(R, mesh)]`, and the global run axis is process_count times as long.
    Either way the result is one global jax.Array per leaf (`jax.make_array_from_process_local_data`).
    """
    n_dev = mesh.shape[RUNS]
    n = num_runs(tree) * (jax.process_count() if process_local else 1)
    if n % n_dev:
        raise ValueError(f"shard_runs: {n} runs do not divide over {n_dev} 'runs' devices; use pad_runs first")
    sharding = runs_sharding(mesh)

    def put(x):
        if _is_key(x):
            impl = jax.random.key_impl(x)
            return jax.random.wrap_key_data(_place(jax.random.key_data(x), sharding, process_local), impl=impl)
        return _place(x, sharding, process_local)

    return jax.tree.map(put, tree)


def gather_runs(tree):
    """Every leaf as host numpy with the full run axis, on every process.

    Multi-process: `process_allgather(tiled=True)` (a collective: every process must call it).
    Typed PRNG key leaves come back as their raw key data (`jax.random.key_data`, uint32[..., 2]).
    """
    tree = jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)
    if jax.process_count() > 1:
        return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.tree.map(np.asarray, jax.device_get(tree))


# ------------------------------------------------------------------ the data axis inside a run

def constrain_batch(tree):
    """Inside jitted code: put the leading (example) axis of every leaf on "data".

    Active only when the current mesh (`use_mesh`) has a "data" axis of size > 1 that is not
    manual (inside a shard_map over it the data is already local); otherwise returns `tree`
    unchanged. Under `jax.vmap(..., spmd_axis_name="runs")` the vmap batching rule prepends
    "runs" to the spec, giving P("runs", "data"); under a plain vmap the run axis is left
    unconstrained.
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or DATA not in mesh.axis_names or mesh.shape[DATA] == 1 or DATA in mesh.manual_axes:
        return tree

    def constrain(x):
        if np.ndim(x) == 0:
            return x
        if _is_key(x):
            return jax.random.wrap_key_data(constrain(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P(DATA)))

    return jax.tree.map(constrain, tree)
