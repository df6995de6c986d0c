"""Running an experiment module: config -> run folder -> buckets of vmapped runs -> summary.

An experiment module defines ID, TITLE, PAPER, `Config` (frozen dataclass), TIERS
({"quick": Config, "paper": Config}), `plan(cfg) -> list[RunPlan]` (every training run: its row
knobs, its static program and its traced hyperparameters), `analyze(cfg, results) -> Outcome`
and `plot(run_dir, out_dir)`. Runs whose programs are equal (same static shapes) form one bucket
and are trained together as one vmapped program, also across the points of a `sweep` grid.
`execute` resolves the tier and `--set` overrides, validates everything before any compute,
and then either skips a finished run folder, resumes an unfinished one, or starts a new one.

Inside `run`, `ctx.train_runs(...)` trains one shape-homogeneous bucket of runs as a single
vmapped program whose run axis is sharded over the devices; a finished bucket is saved to
`buckets/<name>.npz` and never recomputed, an unfinished one resumes from its checkpoint.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from theoryrl.core import config as cfglib
from theoryrl.core import sharding
from theoryrl.core.ckpt import Checkpointer
from theoryrl.core.loop import ChunkPlan, Progress, drive
from theoryrl.core.results import RunDir, make_summary


@dataclasses.dataclass
class Outcome:
    """What `run` returns: summary pieces and the arrays for plots."""

    metrics: dict[str, float]
    rows: list[dict]
    paper: dict[str, Any]
    verdict: dict[str, bool]
    arrays: dict[str, np.ndarray]


@dataclasses.dataclass
class Program:
    """The pure functions of one training run (for one run; the driver vmaps them)."""

    data_fn: Callable  # hp -> data
    init_fn: Callable  # hp -> state
    chunk_fn: Callable  # (state, hp, data) -> (state, metrics)
    num_chunks: int
    steps_per_chunk: int
    summarize: Callable[[dict], dict] | None = None
    all_stopped: Callable[[dict], Any] | None = None
    final_fn: Callable | None = None


@dataclasses.dataclass
class RunPlan:
    """One training run: `row` knobs for tables, `bucket` (hashable) equal for equal programs."""

    row: dict
    bucket: Any
    label: str
    hp: dict
    build: Callable[[], Program]


def train_plans(ctx: "RunContext", plans: list[RunPlan]) -> list[dict[str, np.ndarray]]:
    """Train every plan, one vmapped program per bucket; returns each plan's arrays, in order."""
    groups: dict[Any, list[int]] = {}
    for i, p in enumerate(plans):
        groups.setdefault(p.bucket, []).append(i)
    results: list[dict | None] = [None] * len(plans)
    for g, (bucket, idx) in enumerate(groups.items()):
        program = plans[idx[0]].build()
        arrays = ctx.train_runs(
            f"{g:02d}-{plans[idx[0]].label}", data_fn=program.data_fn, init_fn=program.init_fn,
            chunk_fn=program.chunk_fn, hps=[plans[i].hp for i in idx], num_chunks=program.num_chunks,
            steps_per_chunk=program.steps_per_chunk, summarize=program.summarize,
            all_stopped=program.all_stopped, final_fn=program.final_fn)
        for j, i in enumerate(idx):
            results[i] = {k: v[j] for k, v in arrays.items()}
    return results


def run_module(module, cfg, ctx: "RunContext") -> "Outcome":
    """Modules whose work is not a set of chunked training runs (e.g. ODE integrations) define
    `run(cfg, ctx) -> Outcome` instead of plan/analyze."""
    if hasattr(module, "run"):
        return module.run(cfg, ctx)
    return module.analyze(cfg, train_plans(ctx, module.plan(cfg)))


@dataclasses.dataclass
class RunContext:
    experiment: str
    tier: str
    run_dir: RunDir
    quiet: bool = False
    ckpt_every_chunks: int = 10
    ckpt_every_s: float = 300.0
    data_axis: int = 1  # devices per run: each run's batch is split over a "data" mesh axis of this size

    def log(self, text: str) -> None:
        if not self.quiet:
            import sys

            print(text, file=sys.stderr, flush=True)

    def train_runs(self, bucket: str, *, data_fn: Callable, init_fn: Callable, chunk_fn: Callable,
                   hps: list[dict], num_chunks: int, steps_per_chunk: int,
                   summarize: Callable[[dict], dict] | None = None,
                   all_stopped: Callable[[dict], bool] | None = None,
                   final_fn: Callable | None = None) -> dict[str, np.ndarray]:
        """Train len(hps) runs of identical shapes as one vmapped, run-sharded program.

        `data_fn(hp) -> data`, `init_fn(hp) -> state` and `chunk_fn(state, hp, data) ->
        (state, metrics)` are written for one run. Returns host arrays: every metric as
        [runs, chunks, ...] under "history/<name>", and `final_fn(state)` leaves as "final/<name>".
        """
        cached = self.run_dir.load_bucket(bucket)
        if cached is not None:
            self.log(f"[{self.experiment}:{bucket}] already finished; loaded")
            return cached
        num_runs = len(hps)
        hp = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *hps)
        mesh = sharding.make_mesh(data=self.data_axis)
        hp, n_pad = sharding.pad_runs(hp, mesh.shape["runs"])
        with sharding.use_mesh(mesh):
            hp = sharding.shard_runs(hp, mesh)
            # every output keeps its leading run axis on "runs", so chunk c+1 sees chunk c's layout
            on_runs = sharding.runs_sharding(mesh)
            data = jax.jit(jax.vmap(data_fn), out_shardings=on_runs)(hp)
            state = jax.jit(jax.vmap(init_fn), out_shardings=on_runs)(hp)
            batched_chunk = jax.vmap(chunk_fn, spmd_axis_name="runs")

            def chunk(state, inputs):
                return batched_chunk(state, inputs[0], inputs[1])

            self.run_dir.truncate_metrics(bucket, _resume_chunk(self.run_dir.ckpt_path(bucket)))
            progress = Progress(f"{self.experiment}:{bucket}", num_chunks * steps_per_chunk, quiet=self.quiet)
            plan = ChunkPlan(num_chunks, steps_per_chunk, self.ckpt_every_chunks, self.ckpt_every_s)
            t0 = time.time()
            with Checkpointer(self.run_dir.ckpt_path(bucket)) as ckpt:
                state, history = drive(
                    chunk, state, (hp, data), plan, ckpt=ckpt, progress=progress,
                    summarize=summarize or _default_summary,
                    on_chunk=lambda c, m: self._log_chunk(bucket, c, m, num_runs, steps_per_chunk, t0),
                    all_stopped=(lambda m: bool(np.all(all_stopped(m)))) if all_stopped else (lambda m: False),
                    out_shardings=on_runs, to_host=sharding.gather_runs)
            final = sharding.gather_runs(final_fn(state)) if final_fn else {}
        arrays = {f"history/{k}": np.swapaxes(v, 0, 1)[:num_runs] for k, v in history.items()}
        arrays.update({f"final/{k}": np.asarray(v)[:num_runs] for k, v in final.items()})
        if jax.process_index() == 0:
            self.run_dir.save_bucket(bucket, arrays)
        return arrays

    def _log_chunk(self, bucket, chunk, metrics, num_runs, steps_per_chunk, t0):
        if jax.process_index() != 0:
            return
        records = []
        for r in range(num_runs):
            rec = {"bucket": bucket, "chunk": chunk, "run": r, "step": (chunk + 1) * steps_per_chunk,
                   "wall_s": round(time.time() - t0, 3)}
            for k, v in metrics.items():
                v = np.asarray(v)[r]
                rec[k] = v.tolist() if v.ndim else v.item()
            records.append(rec)
        self.run_dir.append_metrics(records)


def _resume_chunk(ckpt_dir: Path) -> int:
    """Chunk a bucket will resume from (0 when it has no checkpoint), read without orbax."""
    if not ckpt_dir.exists():
        return 0
    steps = [int(p.name) for p in ckpt_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(steps, default=0)


def _default_summary(metrics: dict) -> dict:
    return {k: float(np.mean(v)) for k, v in metrics.items() if np.asarray(v).dtype.kind == "f"}


def check_data_axis(data_axis: int) -> None:
    n = jax.device_count()
    cfglib.require(isinstance(data_axis, int) and data_axis >= 1 and n % data_axis == 0, "--data", data_axis,
                   f"a positive divisor of the device count {n}")


def resolve_config(module, tier: str, sets: list[str]):
    """Tier recipe + overrides, validated. Raises ConfigError before any compute."""
    if tier not in module.TIERS:
        raise cfglib.ConfigError(f"invalid value for 'tier': {tier!r} (allowed: {', '.join(module.TIERS)})")
    return resolve_config_from(module, module.TIERS[tier], sets)


def config_record(module, tier: str, cfg) -> dict:
    return {"experiment": module.ID, "tier": tier, "config": cfglib.to_dict(cfg)}


def default_run_dir(module, tier: str, cfg, root: Path = Path("results")) -> Path:
    return root / module.ID / cfglib.run_id(config_record(module, tier, cfg))


def execute(module, tier: str, sets: list[str], out: Path | None = None, quiet: bool = False,
            results_root: Path = Path("results"), ckpt_every_chunks: int = 10, data_axis: int = 1) -> Path:
    """Run (or resume, or skip) one experiment; returns its run folder."""
    cfg = resolve_config(module, tier, sets)
    check_data_axis(data_axis)
    path = Path(out) if out else default_run_dir(module, tier, cfg, results_root)
    ctx = _open_run(module, tier, config_record(module, tier, cfg), path, quiet, ckpt_every_chunks, data_axis)
    if ctx is not None:
        _finish_run(ctx, module, run_module(module, cfg, ctx))
    return path


def _open_run(module, tier: str, record: dict, path: Path, quiet: bool, ckpt_every_chunks: int,
              data_axis: int) -> "RunContext | None":
    """Create or reopen the run folder; None when it is already finished (nothing to do)."""
    run_dir = RunDir(path)
    status = run_dir.prepare(record)
    ctx = RunContext(module.ID, tier, run_dir, quiet=quiet, ckpt_every_chunks=ckpt_every_chunks, data_axis=data_axis)
    if status == "done":
        ctx.log(f"[{module.ID}] {path} is finished (DONE); nothing to do")
        return None
    ctx.log(f"[{module.ID}] {'resuming' if status == 'resume' else 'starting'} {path}")
    run_dir.write_env()
    return ctx


def _finish_run(ctx: "RunContext", module, outcome: Outcome) -> None:
    """Process 0 writes arrays, runs.csv and summary.json, then DONE (last)."""
    if jax.process_index() != 0:
        return
    run_dir = ctx.run_dir
    run_dir.write_arrays(outcome.arrays)
    run_dir.write_runs_csv(outcome.rows)
    run_dir.write_summary(make_summary(module.ID, ctx.tier, outcome.metrics, outcome.rows, outcome.paper,
                                       outcome.verdict))
    run_dir.mark_done()


def execute_sweep(module, tier: str, grid: list[tuple[str, list[str]]], seeds: int | None, sets: list[str],
                  out: Path | None = None, quiet: bool = False, results_root: Path = Path("results"),
                  ckpt_every_chunks: int = 10, data_axis: int = 1) -> Path:
    """Run a grid of configs (x seeds); runs of equal shapes across grid points share one program."""
    import itertools

    base = resolve_config(module, tier, sets)
    check_data_axis(data_axis)
    if not hasattr(module, "plan"):
        raise cfglib.ConfigError(f"'{module.ID}' has no plan(); sweep it by running one config per grid point")
    if seeds is not None:
        cfglib.require(seeds >= 1, "--seeds", seeds, ">= 1")
        cfglib.require(any(f.name == "seeds" for f in dataclasses.fields(base)), "--seeds", seeds,
                       f"only for experiments with a 'seeds' knob ({module.ID} has none)")
        base = dataclasses.replace(base, seeds=tuple(range(42, 42 + seeds)))
    points = [dict(zip([k for k, _ in grid], combo)) for combo in itertools.product(*[v for _, v in grid])]
    configs = [resolve_config_from(module, base, [f"{k}={v}" for k, v in p.items()]) for p in points]
    record = {"experiment": module.ID, "tier": tier, "sweep": {"grid": [[k, v] for k, v in grid], "seeds": seeds},
              "config": cfglib.to_dict(base)}
    path = Path(out) if out else results_root / module.ID / f"sweep-{cfglib.run_id(record)}"
    ctx = _open_run(module, tier, record, path, quiet, ckpt_every_chunks, data_axis)
    if ctx is None:
        return path
    per_point = [module.plan(c) for c in configs]
    flat = [p for plans in per_point for p in plans]
    ctx.log(f"[{module.ID}] sweep: {len(points)} grid points, {len(flat)} runs, "
            f"{len({p.bucket for p in flat})} compiled program(s)")
    results = train_plans(ctx, flat)
    rows, metrics, verdict, arrays, start = [], {}, {}, {}, 0
    for i, (point, cfg, plans) in enumerate(zip(points, configs, per_point)):
        outcome = module.analyze(cfg, results[start:start + len(plans)])
        start += len(plans)
        tag = ",".join(f"{k}={v}" for k, v in point.items())
        rows += [{**point, **row} for row in outcome.rows]
        metrics.update({f"{tag}|{k}": v for k, v in outcome.metrics.items()})
        verdict.update({f"{tag}|{k}": v for k, v in outcome.verdict.items()})
        arrays.update({f"point{i}/{k}": v for k, v in outcome.arrays.items()})
        paper = outcome.paper
    _finish_run(ctx, module, Outcome(metrics, rows, paper, verdict, arrays))
    return path


def resolve_config_from(module, base, sets: list[str]):
    """`base` with the overrides applied, validated (ConfigError before any compute)."""
    cfg = cfglib.apply_overrides(base, sets)
    cfglib.validate(cfg)
    return cfg
