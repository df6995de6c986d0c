"""The chunked-scan driver: compile once, run chunks, checkpoint, report, resume.

A training program is two pure functions over a *stacked* state (leading run axis):
`init(hp) -> state` and `chunk(state, hp) -> (state, metrics)`, where `chunk` is a
`lax.scan` over a fixed number of steps. This module drives the chunks from Python:

- ahead-of-time compile (compile time reported on its own line), donated state;
- metrics of chunk c are read while chunk c+1 runs (one chunk late: no host sync on the hot path);
- checkpoints (state + metric history) every N chunks or T seconds, written *before* the donated
  call consumes the state; a resumed run replays the same compiled program from the same state,
  so it equals an uninterrupted run bit for bit;
- a NaN tripwire that stops the run, names the chunk, and keeps the last good checkpoint.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any, Callable

import jax
import numpy as np

from theoryrl.core.ckpt import Checkpointer


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
    all_stopped: Callable[[dict], bool] = lambda m: False,
    finite_key: str = "loss",
    out_shardings=None,
    to_host: Callable = jax.device_get,
):
    """Run `plan.num_chunks` chunks of `chunk_fn` from `state`; returns (state, history).

    `to_host` brings a metrics pytree to numpy (multi-host: an all-gather over processes).
    `history` maps each metric name to an array [chunks_run, *metric_shape]. `summarize` turns
    one chunk's metrics into the scalars of the progress line; `on_chunk(c, metrics)` receives
    host metrics in order (used for metrics.jsonl); `all_stopped(metrics)` ends the run early.
    """
    compiled, compile_s = _compile(chunk_fn, state, hp, out_shardings)
    progress.compiled(compile_s)
    metrics_shape = jax.eval_shape(chunk_fn, state, hp)[1]

    history: list[dict] = []
    start = 0
    if ckpt is not None and ckpt.latest_step() is not None:
        start = ckpt.latest_step()
        like = {"state": state,
                "history": {k: np.zeros((start,) + v.shape, v.dtype) for k, v in metrics_shape.items()}}
        restored = ckpt.restore(start, like)
        state = restored["state"]
        history = [{k: np.asarray(v[i]) for k, v in restored["history"].items()} for i in range(start)]
        progress.resumed(start, start * plan.steps_per_chunk)

    last_save_t, last_save_c = time.time(), start
    pending = None
    t_prev = time.time()
    for c in range(start, plan.num_chunks):
        if ckpt is not None and c > start and (c - last_save_c >= plan.ckpt_every_chunks
                                               or time.time() - last_save_t >= plan.ckpt_every_s):
            pending = _flush(pending, history, progress, plan, summarize, on_chunk, finite_key, t_prev, to_host)
            ckpt.save(c, {"state": state, "history": _stack(history)})
            last_save_t, last_save_c = time.time(), c
        state, metrics = compiled(state, hp)
        if pending is not None:
            pending = _flush(pending, history, progress, plan, summarize, on_chunk, finite_key, t_prev, to_host)
            t_prev = time.time()
        pending = (c, metrics)
        if len(history) > 0 and all_stopped(history[-1]):
            break
    _flush(pending, history, progress, plan, summarize, on_chunk, finite_key, t_prev, to_host)
    if ckpt is not None:
        ckpt.wait()
    return state, _stack(history)


def _compile(chunk_fn, state, hp, out_shardings=None):
    t0 = time.time()
    kwargs = {} if out_shardings is None else {"out_shardings": out_shardings}
    compiled = jax.jit(chunk_fn, donate_argnums=0, **kwargs).lower(state, hp).compile()
    return compiled, time.time() - t0


def _flush(pending, history, progress, plan, summarize, on_chunk, finite_key, t_prev, to_host):
    """Bring one chunk's metrics to the host, check them, report them."""
    if pending is None:
        return None
    c, metrics = pending
    host = {k: np.asarray(v) for k, v in to_host(metrics).items()}
    if finite_key in host and not np.all(np.isfinite(host[finite_key])):
        raise FloatingPointError(
            f"non-finite '{finite_key}' in chunk {c} (steps {c * plan.steps_per_chunk}.."
            f"{(c + 1) * plan.steps_per_chunk}); the last good checkpoint is kept")
    history.append(host)
    on_chunk(c, host)
    elapsed = max(time.time() - t_prev, 1e-9)
    progress.chunk((c + 1) * plan.steps_per_chunk, plan.steps_per_chunk / elapsed, summarize(host))
    return None


def _stack(history: list[dict]) -> dict[str, np.ndarray]:
    if not history:
        return {}
    return {k: np.stack([h[k] for h in history]) for k in history[0]}
