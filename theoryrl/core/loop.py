"""The chunked-scan driver: compile once, run chunks, checkpoint, report, resume.

A training program is two pure functions over a *stacked* state (leading run axis):
`init(hp) -> state` and `chunk(state, hp) -> (state, metrics)`, where `chunk` is a
`lax.scan` over a fixed number of steps. This module drives the chunks from Python:

- ahead-of-time compile (compile time reported on its own line), donated state;
- metrics of chunk c are read while chunk c+1 runs (one chunk late: no host sync on the hot path);
- checkpoints (state + metric history) every N chunks or T seconds, written *before* the donated
  call consumes the state; a resumed run replays the same compiled program from the same state,
  so it equals an uninterrupted run bit for bit. An unreadable newest checkpoint is removed and
  the previous one restored (or, when none is intact, the run starts afresh), with one log line;
- a NaN tripwire on every program: after each chunk a separate small compiled check reduces every
  float leaf of the new state to one finite flag per run (the chunk's own program, and so every
  metric, is untouched), and the metrics the program declares (`finite_metrics`) are checked on
  the host. A non-finite value stops the run naming the chunk, the leaves or metrics and the runs;
  no checkpoint is written after it, so the last good one is kept.
"""
from __future__ import annotations

import dataclasses
import logging
import sys
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core.ckpt import Checkpointer
from theoryrl.core.treepath import StructureMismatch, key_name


@dataclasses.dataclass
class Progress:
    """One stderr line per chunk: step/total, steps/s, ETA, key metrics."""

    label: str
    total_steps: int
    quiet: bool = False
    stream: Any = None

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream or sys.stderr, flush=True)

    def note(self, text: str) -> None:
        self._print(f"[{self.label}] {text}")

    def compiled(self, seconds: float) -> None:
        self._print(f"[{self.label}] compiled in {seconds:.1f}s")

    def resumed(self, chunk: int, steps: int) -> None:
        self._print(f"[{self.label}] resuming from checkpoint at chunk {chunk} (step {steps})")

    def chunk(self, steps_done: int, rate: float, scalars: dict[str, float]) -> None:
        pct = 100.0 * steps_done / max(self.total_steps, 1)
        eta = (self.total_steps - steps_done) / rate if rate > 0 else float("nan")
        shown = " ".join(f"{k}={v:.4g}" for k, v in scalars.items())
        self._print(f"[{self.label}] step {steps_done}/{self.total_steps} ({pct:.0f}%) "
                    f"{rate:.3g} steps/s ETA {_fmt_seconds(eta)} | {shown}")


def _fmt_seconds(s: float) -> str:
    if not np.isfinite(s):
        return "?"
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclasses.dataclass
class ChunkPlan:
    num_chunks: int
    steps_per_chunk: int
    ckpt_every_chunks: int = 10
    ckpt_every_s: float = 300.0


def drive(
    chunk_fn: Callable,
    state,
    hp,
    plan: ChunkPlan,
    *,
    ckpt: Checkpointer | None,
    progress: Progress,
    summarize: Callable[[dict], dict[str, float]],
    on_chunk: Callable[[int, dict], None] = lambda c, m: None,
    on_start: Callable[[int, dict], None] = lambda start, history: None,
    all_stopped: Callable[[dict], bool] = lambda m: False,
    finite_metrics: Sequence[str] = ("loss",),
    out_shardings=None,
    to_host: Callable = jax.device_get,
):
    """Run `plan.num_chunks` chunks of `chunk_fn` from `state`; returns (state, history).

    `to_host` brings a metrics pytree to numpy (multi-host: an all-gather over processes).
    `history` maps each metric name to an array [chunks_run, *metric_shape]. `summarize` turns
    one chunk's metrics into the scalars of the progress line; `on_start(start, history)` is told
    the chunk the run starts from and the history restored with it (before any chunk runs);
    `on_chunk(c, metrics)` receives host metrics in order (used for metrics.jsonl);
    `all_stopped(metrics)` ends the run early. State leaves carry the leading run axis.
    """
    if plan.num_chunks > 0:  # a program of 0 chunks (learning switched off) needs no compiled chunk
        compiled, compile_s = _compile(chunk_fn, state, hp, out_shardings)
        progress.compiled(compile_s)
    metrics_shape = jax.eval_shape(chunk_fn, state, hp)[1]
    start, state, history = _restore(ckpt, state, metrics_shape, plan, progress)
    on_start(start, _stack(history))
    watch = _FiniteWatch(state, out_shardings)
    report = _Reporter(progress, plan, summarize, on_chunk, tuple(finite_metrics), watch.names, to_host, history)

    last_save_t, last_save_c = time.time(), start
    pending = None
    for c in range(start, plan.num_chunks):
        if ckpt is not None and c > start and (c - last_save_c >= plan.ckpt_every_chunks
                                               or time.time() - last_save_t >= plan.ckpt_every_s):
            pending = report.flush(pending)  # the state saved below has passed the tripwire
            ckpt.save(c, {"state": state, "history": _stack(history)})
            last_save_t, last_save_c = time.time(), c
        t_dispatch = time.perf_counter()
        state, metrics = compiled(state, hp)
        finite = watch(state)  # reads the new state before the next chunk consumes it
        pending = report.flush(pending)
        pending = (c, metrics, finite, t_dispatch)
        if len(history) > 0 and all_stopped(history[-1]):
            break
    report.flush(pending)
    if ckpt is not None:
        ckpt.wait()
    return state, _stack(history, metrics_shape)


def _compile(chunk_fn, state, hp, out_shardings=None):
    t0 = time.time()
    kwargs = {} if out_shardings is None else {"out_shardings": out_shardings}
    compiled = jax.jit(chunk_fn, donate_argnums=0, **kwargs).lower(state, hp).compile()
    return compiled, time.time() - t0


def _unreadable(err: Exception) -> bool:
    """Whether a failed restore means the step's files are damaged (then the step before is tried),
    rather than a fault of this process or a different layout, which must stop the run with every
    checkpoint kept: out of memory, a permission error, or a state whose shapes differ from the saved
    ones (e.g. the run axis padded for another device count: resume on the layout it was saved with)."""
    if isinstance(err, (MemoryError, PermissionError)):
        return False
    text = str(err)
    if "not compatible with the stored shape" in text or "RESOURCE_EXHAUSTED" in text:
        if "not compatible with the stored shape" in text:
            raise StructureMismatch(f"the checkpoint was saved with other array shapes ({_first_line(err)}); resume "
                                    "with the device count and --data it was saved with") from err
        return False
    return True


def _restore(ckpt: Checkpointer | None, state, metrics_shape, plan: ChunkPlan, progress: Progress):
    """(start chunk, state, history) from the newest intact checkpoint. An unreadable checkpoint
    (garbage metadata, missing data files, a truncated manifest) is removed and the one before it
    tried; a state whose structure changed (StructureMismatch) is an error, not a fallback."""
    if ckpt is None:
        return 0, state, []
    failed = []
    for step in sorted(ckpt.all_steps(), reverse=True):
        like = {"state": state,
                "history": {k: np.zeros((step,) + v.shape, v.dtype) for k, v in metrics_shape.items()}}
        try:
            with _quiet_loggers("absl", "asyncio"):
                restored = ckpt.restore(step, like)
        except StructureMismatch:
            raise
        except Exception as err:  # noqa: BLE001 - sorted below: unreadable, or a fault of this process
            if not _unreadable(err):
                raise
            moved = ckpt.quarantine(step)
            failed.append(f"chunk {step} (moved to {moved.name}): {_first_line(err)}")
            continue
        history = [{k: np.asarray(v[i]) for k, v in restored["history"].items()} for i in range(step)]
        if failed:
            progress.note(f"resuming from checkpoint at chunk {step} (step {step * plan.steps_per_chunk}), the "
                          f"newest intact one; set aside the unreadable {'; '.join(failed)}")
        else:
            progress.resumed(step, step * plan.steps_per_chunk)
        return step, restored["state"], history
    if failed:
        progress.note(f"no intact checkpoint (set aside the unreadable {'; '.join(failed)}); starting the bucket "
                      "from scratch")
    return 0, state, []


class _quiet_loggers:
    """Silence third-party loggers while a possibly corrupt checkpoint is read (orbax logs each
    failure at ERROR level; the driver reports it in one line)."""

    def __init__(self, *names: str):
        self.loggers = [logging.getLogger(n) for n in names]

    def __enter__(self):
        self.levels = [lg.level for lg in self.loggers]
        for lg in self.loggers:
            lg.setLevel(logging.CRITICAL + 1)

    def __exit__(self, *exc):
        for lg, level in zip(self.loggers, self.levels):
            lg.setLevel(level)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = f"{type(err).__name__}: {text}"
    return text if len(text) <= 160 else text[:157] + "..."


class _FiniteWatch:
    """One finite flag per (run, float leaf) of the stacked state, from its own compiled check."""

    def __init__(self, state, out_shardings=None):
        leaves = jax.tree_util.tree_flatten_with_path(jax.eval_shape(lambda s: s, state))[0]
        self.names = [key_name(path) for path, x in leaves if _is_float(x)]
        self._fn = None
        if self.names:
            kwargs = {} if out_shardings is None else {"out_shardings": out_shardings}
            self._fn = jax.jit(_finite_flags, **kwargs).lower(state).compile()

    def __call__(self, state):
        return None if self._fn is None else self._fn(state)


def _is_float(x) -> bool:
    return jnp.issubdtype(x.dtype, jnp.inexact)


def _finite_flags(state):
    """bool [runs, float leaves]: whether every value of the leaf is finite, per run (a leaf
    without a run axis counts for every run)."""
    leaves = [x for x in jax.tree.leaves(state) if _is_float(x)]
    runs = max((x.shape[0] for x in leaves if x.ndim), default=1)
    flags = [jnp.all(jnp.isfinite(x).reshape(x.shape[0], -1), axis=1) if x.ndim
             else jnp.broadcast_to(jnp.isfinite(x), (runs,)) for x in leaves]
    return jnp.stack(flags, axis=1)


class _Reporter:
    """Brings each chunk's metrics to the host in order: checks them, keeps them, reports them.

    The steps/s of chunk c measures its compute as the host sees it: from the moment chunk c could
    start on the device (its dispatch, or the arrival of chunk c-1's results if that came later)
    to the arrival of chunk c's results. Checkpoint writes, compile and host work done while no
    chunk was queued fall outside every chunk's interval, so they never lower the rate."""

    def __init__(self, progress, plan, summarize, on_chunk, finite_metrics, leaf_names, to_host, history):
        self.progress, self.plan, self.summarize, self.on_chunk = progress, plan, summarize, on_chunk
        self.finite_metrics, self.leaf_names, self.to_host = finite_metrics, leaf_names, to_host
        self.history = history
        self.last_ready = -float("inf")

    def flush(self, pending):
        if pending is None:
            return None
        c, metrics, finite, t_dispatch = pending
        host_all = self.to_host({"metrics": metrics, "finite": finite})
        t_ready = time.perf_counter()
        host = {k: np.asarray(v) for k, v in host_all["metrics"].items()}
        self._check(c, host, None if finite is None else np.asarray(host_all["finite"]))
        self.history.append(host)
        self.on_chunk(c, host)
        elapsed = max(t_ready - max(t_dispatch, self.last_ready), 1e-9)
        self.last_ready = t_ready
        spc = self.plan.steps_per_chunk
        self.progress.chunk((c + 1) * spc, spc / elapsed, self.summarize(host))
        return None

    def _check(self, c: int, host: dict, flags_RxL: np.ndarray | None) -> None:
        bad = []
        if flags_RxL is not None and not flags_RxL.all():
            for j in np.flatnonzero(~flags_RxL.all(axis=0)):
                bad.append(f"state leaf '{self.leaf_names[j]}' (runs {_runs(~flags_RxL[:, j])})")
        for k in self.finite_metrics:
            v = host.get(k)
            if v is not None and v.dtype.kind in "fc" and not np.all(np.isfinite(v)):
                bad.append(f"metric '{k}' (runs {_runs(~np.isfinite(v).reshape(v.shape[0] if v.ndim else 1, -1).all(axis=1))})")
        if bad:
            shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
            spc = self.plan.steps_per_chunk
            raise FloatingPointError(
                f"[{self.progress.label}] non-finite values after chunk {c} (steps {c * spc}..{(c + 1) * spc}): "
                f"{shown}; the run is stopped, and its last checkpoint (if one was saved) is kept: no checkpoint "
                "holds a non-finite state")


def _runs(mask: np.ndarray) -> str:
    idx = np.flatnonzero(mask)
    return ", ".join(map(str, idx[:8])) + (", ..." if idx.size > 8 else "")


def _stack(history: list[dict], metrics_shape: dict | None = None) -> dict[str, np.ndarray]:
    """Chunk metrics stacked on a leading chunk axis. With no chunk run (a program of 0 chunks:
    learning switched off) and `metrics_shape` given, every metric is an empty [0, ...] array of its
    own trailing shape, so downstream code sees the metric and can tell that nothing was trained."""
    if not history:
        if metrics_shape is None:
            return {}
        return {k: np.zeros((0,) + tuple(v.shape), v.dtype) for k, v in metrics_shape.items()}
    return {k: np.stack([h[k] for h in history]) for k in history[0]}
