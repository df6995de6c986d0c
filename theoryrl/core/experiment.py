"""The harness: config -> run folder -> stages of vmapped runs (bases from the store) -> summary.

An experiment module defines ID, TITLE, PAPER, `Config` (frozen dataclass), TIERS
({"quick": Config, "paper": Config}), `stages(cfg) -> [Stage]` (core/stages.py; a module with a
single `plan(cfg) -> [RunPlan]` is one stage), `analyze(cfg, runs: Runs) -> Outcome` and
`plot(run_dir, out_dir)`. `execute` resolves the tier and `--set` overrides, validates every
config and plans every grid point's first stage before the run folder is created (bad input leaves
no folder), then takes the folder's lock and skips a finished folder (after verifying DONE's
checksums, see core/results.py), resumes an unfinished one, or starts one. A run that fails before
it saved anything (no metrics, bucket or checkpoint) removes the folder it created; one that fails
later keeps it, resumable.
A run and a sweep go through the same path: every grid point's stage k is planned from that
point's earlier runs, the plans of all points are trained together (equal programs form one
vmapped bucket whose run axis is sharded over the devices; a finished bucket is kept in
`buckets/<name>.npz`, an unfinished one resumes from its checkpoint), and each point is analysed
from its own runs. Plans of a base-storing stage are looked up in the base store first; equal
base keys are trained once, published with their gate, and reused by every later run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from theoryrl.core import config as cfglib
from theoryrl.core import sharding
from theoryrl.core.bases import BaseStore, base_id
from theoryrl.core.ckpt import Checkpointer
from theoryrl.core.loop import ChunkPlan, Progress, drive
from theoryrl.core.results import NPZ_ERRORS, ResultsError, RunDir, environment, make_summary, metric_records
from theoryrl.core.stages import Outcome, Program, Run, RunPlan, Runs, Stage

__all__ = ["Outcome", "Program", "Run", "RunPlan", "Runs", "Stage", "RunContext", "ResultsError", "execute",
           "execute_sweep", "stages_of", "resolve_config"]


def stages_of(module, cfg) -> list[Stage]:
    """The module's stages; a `plan(cfg)` module is the single stage "train"."""
    if hasattr(module, "stages"):
        return list(module.stages(cfg))
    return [Stage("train", lambda runs: module.plan(cfg))]


@dataclasses.dataclass
class Planned:
    """A config's stages and its first stage's plans, made before the run folder exists."""

    stages: list[Stage]
    first: list[RunPlan]


def plan_first_stages(module, cfgs: list) -> list[Planned]:
    """Every config's stages and first-stage plans (what --dry-run shows): a config that cannot
    be planned fails here, before any folder or device work. Grid points must share stage names."""
    planned = []
    for cfg in cfgs:
        stages = stages_of(module, cfg)
        if not stages:
            raise cfglib.ConfigError(f"'{module.ID}' declares no stages")
        planned.append(Planned(stages, list(stages[0].plans(Runs()))))
    names = [s.name for s in planned[0].stages]
    for p in planned[1:]:
        if [s.name for s in p.stages] != names:
            raise cfglib.ConfigError(f"'{module.ID}': grid points declare different stages "
                                     f"({names} vs {[s.name for s in p.stages]}); sweep them one by one")
    return planned


def run_stages(ctx: "RunContext", module, cfgs: list, planned: list[Planned] | None = None) -> list[Runs]:
    """Every stage of every config, stage by stage; returns each config's table of finished runs."""
    planned = planned or plan_first_stages(module, cfgs)
    tables = [Runs() for _ in cfgs]
    for k in range(len(planned[0].stages)):
        owned = [(i, p.stages[k], plan) for i, p in enumerate(planned)
                 for plan in (p.first if k == 0 else p.stages[k].plans(tables[i]))]
        runs = run_stage(ctx, [stage for _, stage, _ in owned], [plan for _, _, plan in owned])
        for (i, _, _), run in zip(owned, runs, strict=True):
            tables[i] = tables[i] + [run]
    return tables


def run_stage(ctx: "RunContext", stages: list[Stage], plans: list[RunPlan]) -> list[Run]:
    """Finished runs of `plans`, in order (`stages[i]` is plan i's own grid point's stage, whose gate
    judges it): stored bases are reused, equal base keys trained once, the rest trained one
    vmapped program per bucket."""
    if not plans:  # a stage with nothing to run at this config (e.g. an arm that is not selected)
        return []
    out: list[Run | None] = [None] * len(plans)
    ids = [_base_id(stage, p) for stage, p in zip(stages, plans, strict=True)]
    todo: dict[Any, int] = {}  # base id (or plan index) -> the plan that trains it
    loaded: dict[str, Any] = {}  # base id -> the stored base (loaded and logged once, however many points ask)
    for i, (stage, plan, bid) in enumerate(zip(stages, plans, ids)):
        if bid and bid not in loaded:
            loaded[bid] = ctx.store.load(bid)
            if loaded[bid] is not None:
                meta = loaded[bid].meta
                ctx.log(f"[{ctx.experiment}:{stage.name}] reusing stored base {bid} ({plan.label}, {plan.row}; "
                        f"trained in {meta['wall_s']:.0f}s on {meta['created']}; stored gate {_gate_word(loaded[bid].gate)})")
        stored = loaded.get(bid) if bid else None
        if stored is not None:
            run = Run(stage.name, {**plan.row}, stored.arrays, bid, stored.gate, reused=True)
            # judged again, by this point's gate: the stored verdict is the one in force when it was trained
            out[i] = dataclasses.replace(run, gate=stage.gate(run)) if stage.gate else run
        else:
            todo.setdefault(bid or i, i)
    trained = _train(ctx, stages[0].name, [plans[i] for i in todo.values()])
    finished = {key: _finish(ctx, stages[i], plans[i], ids[i], *result)
                for (key, i), result in zip(todo.items(), trained)}
    for i, (stage, plan, bid) in enumerate(zip(stages, plans, ids)):
        if out[i] is None:  # a plan sharing another's base key gets that run under its own row and gate
            run = finished[bid or i]
            if run.row != plan.row:
                run = dataclasses.replace(run, row={**plan.row})
            if bid and stage.gate and stage is not stages[todo[bid]]:
                run = dataclasses.replace(run, gate=stage.gate(run))
            out[i] = run
    return out


def _base_id(stage: Stage, plan: RunPlan) -> str | None:
    if not stage.store_bases:
        return None
    if plan.base_key is None:
        raise ValueError(f"stage '{stage.name}' stores bases, but plan {plan.label} {plan.row} has no base_key")
    return base_id(plan.base_key)


def _gate_word(gate) -> str:
    return "none" if gate is None else ("passed" if gate.passed else "FAILED")


def _finish(ctx: "RunContext", stage: Stage, plan: RunPlan, bid: str | None, arrays: dict, wall_s: float) -> Run:
    """A trained plan as a Run with its lineage; a base's gate is judged and the base published."""
    parent = plan.parent
    run = Run(stage.name, {**plan.row}, arrays, bid or (parent.base_id if parent else None),
              parent.gate if parent else None)
    if bid is None:
        return run
    gate = stage.gate(run) if stage.gate else None
    run = dataclasses.replace(run, gate=gate)
    if jax.process_index() == 0:
        ctx.store.save(bid, key=plan.base_key, stage=stage.name, experiment=ctx.experiment, row=plan.row,
                       arrays=arrays, gate=gate, wall_s=wall_s, env=environment())
    ctx.log(f"[{ctx.experiment}:{stage.name}] stored base {bid} ({plan.label}, {plan.row}; gate {_gate_word(gate)})")
    return run


def _bucket_name(stage_name: str, bucket: Any, plans: list[RunPlan]) -> str:
    """`<stage>-<label>-<hash>`: the hash names the program and exactly which runs it trains, in
    order, so a resumed run never loads a cached bucket or checkpoint of another set of runs (e.g.
    when some bases of the bucket were published before a crash)."""
    content = cfglib.canonical_json({"bucket": repr(bucket), "rows": [repr(p.row) for p in plans],
                                     "bases": [repr(p.base_key) for p in plans]})
    return f"{stage_name}-{plans[0].label}-{cfglib.run_id(content)[:8]}"


def _train(ctx: "RunContext", stage_name: str, plans: list[RunPlan]) -> list[tuple[dict, float]]:
    """(arrays, wall seconds of its bucket) of every plan, one vmapped program per bucket."""
    groups: dict[Any, list[int]] = {}
    for i, p in enumerate(plans):
        groups.setdefault(("compute", i) if p.compute else ("train", p.bucket), []).append(i)
    results: list[tuple[dict, float] | None] = [None] * len(plans)
    for key, idx in groups.items():
        first = plans[idx[0]]
        name = _bucket_name(stage_name, key, [plans[i] for i in idx])
        t0 = time.time()
        if first.compute is not None:
            arrays = ctx.computed(name, first.compute)
            results[idx[0]] = (arrays, time.time() - t0)
            continue
        program = first.build()
        arrays = ctx.train_runs(
            name, data_fn=program.data_fn, init_fn=program.init_fn, chunk_fn=program.chunk_fn,
            hps=[plans[i].hp for i in idx], num_chunks=program.num_chunks,
            steps_per_chunk=program.steps_per_chunk, summarize=program.summarize,
            all_stopped=program.all_stopped, final_fn=program.final_fn, finite_metrics=program.finite_metrics)
        # a bucket loaded from this folder's cache keeps the wall time it took to train
        recorded = ctx.run_dir.bucket_wall_s(name)
        wall_s = time.time() - t0 if recorded is None else recorded
        for j, i in enumerate(idx):
            results[i] = ({k: v[j] for k, v in arrays.items()}, wall_s)
    return results


@dataclasses.dataclass
class RunContext:
    experiment: str
    tier: str
    run_dir: RunDir
    quiet: bool = False
    ckpt_every_chunks: int = 10
    ckpt_every_s: float = 300.0
    data_axis: int = 1  # devices per run: each run's batch is split over a "data" mesh axis of this size
    store: BaseStore | None = None  # the base store (results root/bases)

    def log(self, text: str) -> None:
        if not self.quiet:
            import sys

            print(text, file=sys.stderr, flush=True)

    def computed(self, bucket: str, compute: Callable[[], dict]) -> dict[str, np.ndarray]:
        """A run that is not a training loop: `compute()` once, kept in buckets/<bucket>.npz."""
        cached = self._cached(bucket)
        if cached is not None:
            self.log(f"[{self.experiment}:{bucket}] already finished; loaded")
            return cached
        t0 = time.time()
        arrays = {k: np.asarray(v) for k, v in compute().items()}
        self.log(f"[{self.experiment}:{bucket}] computed in {time.time() - t0:.1f}s")
        if jax.process_index() == 0:
            self.run_dir.save_bucket(bucket, arrays, wall_s=time.time() - t0)
        return arrays

    def train_runs(self, bucket: str, *, data_fn: Callable, init_fn: Callable, chunk_fn: Callable,
                   hps: list[Any], num_chunks: int, steps_per_chunk: int,
                   summarize: Callable[[dict], dict] | None = None,
                   all_stopped: Callable[[dict], bool] | None = None,
                   final_fn: Callable | None = None,
                   finite_metrics: tuple[str, ...] = ("loss",)) -> dict[str, np.ndarray]:
        """Train len(hps) runs of identical shapes as one vmapped, run-sharded program.

        `data_fn(hp) -> data`, `init_fn(hp) -> state` and `chunk_fn(state, hp, data) ->
        (state, metrics)` are written for one run. Returns host arrays: every metric as
        [runs, chunks, ...] under "history/<name>", and `final_fn(state)` leaves as "final/<name>".
        Every float leaf of the state, and the metrics in `finite_metrics`, must stay finite.
        """
        cached = self._cached(bucket)
        if cached is not None:
            self.log(f"[{self.experiment}:{bucket}] already finished; loaded")
            pre = "history/"
            self._reconcile(bucket, {k[len(pre):]: v for k, v in cached.items() if k.startswith(pre)}, steps_per_chunk)
            return cached
        t_start, num_runs = time.time(), len(hps)
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

            def on_start(start, history_CxR):  # metrics.jsonl := the lines of the history resumed from
                self._reconcile(bucket, {k: np.swapaxes(v, 0, 1)[:num_runs] for k, v in history_CxR.items()},
                                steps_per_chunk)

            progress = Progress(f"{self.experiment}:{bucket}", num_chunks * steps_per_chunk, quiet=self.quiet)
            plan = ChunkPlan(num_chunks, steps_per_chunk, self.ckpt_every_chunks, self.ckpt_every_s)
            t0 = time.time()
            with Checkpointer(self.run_dir.ckpt_path(bucket)) as ckpt:
                state, history = drive(
                    chunk, state, (hp, data), plan, ckpt=ckpt, progress=progress,
                    summarize=summarize or _default_summary, on_start=on_start,
                    on_chunk=lambda c, m: self._log_chunk(bucket, c, m, num_runs, steps_per_chunk, t0),
                    all_stopped=(lambda m: bool(np.all(all_stopped(m)))) if all_stopped else (lambda m: False),
                    finite_metrics=finite_metrics, out_shardings=on_runs, to_host=sharding.gather_runs)
            final = sharding.gather_runs(final_fn(state)) if final_fn else {}
        arrays = {f"history/{k}": np.swapaxes(v, 0, 1)[:num_runs] for k, v in history.items()}
        arrays.update({f"final/{k}": np.asarray(v)[:num_runs] for k, v in final.items()})
        if jax.process_index() == 0:
            self.run_dir.save_bucket(bucket, arrays, wall_s=time.time() - t_start)
        return arrays

    def _cached(self, bucket: str) -> dict[str, np.ndarray] | None:
        """The finished bucket's arrays; None when it is not finished or its file is unreadable
        (then it is trained or computed again, which gives the same arrays)."""
        try:
            return self.run_dir.load_bucket(bucket)
        except NPZ_ERRORS as err:
            self.log(f"[{self.experiment}:{bucket}] {self.run_dir.bucket_path(bucket)} is unreadable "
                     f"({type(err).__name__}: {err}); computing the bucket again")
            return None

    def _reconcile(self, bucket: str, history_RxC: dict[str, np.ndarray], steps_per_chunk: int) -> None:
        if jax.process_index() != 0:
            return
        counts = self.run_dir.reconcile_metrics(bucket, history_RxC, steps_per_chunk)
        if counts["partial"] or counts["rebuilt"] or counts["duplicate"]:
            self.log(f"[{self.experiment}:{bucket}] metrics.jsonl repaired: dropped {counts['partial']} unreadable "
                     f"and {counts['duplicate']} repeated line(s), rebuilt {counts['rebuilt']} line(s) from the "
                     "bucket's saved history")

    def _log_chunk(self, bucket, chunk, metrics, num_runs, steps_per_chunk, t0):
        if jax.process_index() != 0:
            return
        self.run_dir.append_metrics(metric_records(bucket, chunk, metrics, num_runs, steps_per_chunk,
                                                   wall_s=round(time.time() - t0, 3)))


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


def base_store(results_root: Path) -> BaseStore:
    """The base store: $THEORYRL_BASES when set (tests give each test its own), else <results root>/bases."""
    return BaseStore(Path(os.environ.get("THEORYRL_BASES") or Path(results_root) / "bases"))


def program_version(module) -> int:
    """The experiment's program version (`PROGRAM_VERSION`, default 1): a finished run is reused by
    another code version only when this is unchanged."""
    return getattr(module, "PROGRAM_VERSION", 1)


def execute(module, tier: str, sets: list[str], out: Path | None = None, quiet: bool = False,
            results_root: Path = Path("results"), ckpt_every_chunks: int = 10, data_axis: int = 1,
            force: bool = False) -> Path:
    """Run (or resume, or skip) one experiment; returns its run folder.

    Raises ConfigError (bad knob, before any folder exists), ResultsError (a folder of another
    config, in use by another run, or finished but failing verification), FloatingPointError (the
    NaN tripwire). `force`: recompute a finished folder (analysis from its cached buckets, training
    what is missing) and write DONE afresh."""
    cfg = resolve_config(module, tier, sets)
    _check_run_knobs(data_axis, ckpt_every_chunks)
    planned = plan_first_stages(module, [cfg])
    path = Path(out) if out else default_run_dir(module, tier, cfg, results_root)
    with _opened(module, tier, config_record(module, tier, cfg), path, quiet, ckpt_every_chunks, data_axis,
                 results_root, force) as ctx:
        if ctx is not None:
            (runs,) = run_stages(ctx, module, [cfg], planned)
            _finish_run(ctx, module, module.analyze(cfg, runs))
    return path


def _check_run_knobs(data_axis: int, ckpt_every_chunks: int) -> None:
    check_data_axis(data_axis)
    cfglib.require(isinstance(ckpt_every_chunks, int) and ckpt_every_chunks >= 1, "--ckpt-every",
                   ckpt_every_chunks, "an integer >= 1")


@contextlib.contextmanager
def _opened(module, tier: str, record: dict, path: Path, quiet: bool, ckpt_every_chunks: int, data_axis: int,
            results_root: Path, force: bool):
    """The locked run folder as a RunContext; None when it is finished and verified (nothing to
    do). The lock (process 0 only: the other processes of a multi-host run write nothing) is held
    until the block ends. A new folder that holds nothing of value when an exception escapes is
    removed; anything saved (metrics, a bucket, a checkpoint) keeps it, resumable."""
    run_dir = RunDir(path)
    status = run_dir.prepare(record, lock=jax.process_index() == 0)
    ctx = None
    try:
        ctx = RunContext(module.ID, tier, run_dir, quiet=quiet, ckpt_every_chunks=ckpt_every_chunks,
                         data_axis=data_axis, store=base_store(results_root))
        if status == "done" and not force:
            _reuse(ctx, module)
            yield None
            return
        if status == "done":
            _reopen_forced(ctx, module)
        ctx.log(f"[{module.ID}] {'starting' if status == 'new' else 'resuming'} {path}")
        if jax.process_index() == 0:
            run_dir.write_env()
        yield ctx
    except BaseException:
        if run_dir.discard_if_empty() and ctx is not None:
            ctx.log(f"[{module.ID}] removed {path}: the run failed before it saved anything")
        raise
    finally:
        run_dir.release()


def _reuse(ctx: "RunContext", module) -> None:
    """A finished folder, verified (ResultsError names a missing, changed or unreadable file)."""
    run_dir, version = ctx.run_dir, program_version(module)
    record = run_dir.verify_done(version)
    if not record:
        ctx.log(f"[{module.ID}] {run_dir.path} is finished (legacy DONE without checksums, accepted as is; "
                "--force recomputes it); nothing to do")
        return
    mark = run_dir.note_reuse(record, version) if jax.process_index() == 0 else None
    if mark is None:
        ctx.log(f"[{module.ID}] {run_dir.path} is finished (DONE, checksums verified); nothing to do")
    else:
        ctx.log(f"[{module.ID}] {run_dir.path} is finished: computed at git {str(mark['git'])[:12]}, program version "
                f"{version} (unchanged), checksums verified; reused (summary.json records reused_from)")
    note = run_dir.metrics_note(record)
    if note:
        ctx.log(f"[{module.ID}] {note}")


def _reopen_forced(ctx: "RunContext", module) -> None:
    """--force on a finished folder: DONE goes; another program version also discards the cached
    buckets and checkpoints (they hold the old program's numbers)."""
    run_dir, version = ctx.run_dir, program_version(module)
    try:
        recorded = json.loads((run_dir.path / "DONE").read_text() or "{}").get("program_version", version)
    except (OSError, ValueError, AttributeError):
        recorded = version  # unreadable DONE: nothing says the cached buckets are stale
    stale = recorded != version
    if jax.process_index() == 0:
        run_dir.unfinish(clear_compute=stale)
    ctx.log(f"[{module.ID}] --force: recomputing {run_dir.path} "
            + (f"from scratch (it was computed by program version {recorded}, the code's is {version})" if stale
               else "(analysis from the cached buckets; missing ones are trained)"))


def _finish_run(ctx: "RunContext", module, outcome: Outcome) -> None:
    """Process 0 writes arrays, runs.csv and summary.json, then DONE (last, with their checksums)."""
    if jax.process_index() != 0:
        return
    run_dir = ctx.run_dir
    run_dir.write_arrays(outcome.arrays)
    run_dir.write_runs_csv(outcome.rows)
    run_dir.write_summary(make_summary(module.ID, ctx.tier, outcome.metrics, outcome.rows, outcome.paper,
                                       outcome.verdict, outcome.not_judged, outcome.verdicts))
    run_dir.mark_done(program_version(module))


def check_grid(grid: list[tuple[str, list[str]]], seeds: int | None) -> None:
    """A sweep grid that would silently drop or double-count runs is a ConfigError: a key given twice,
    a repeated value, an empty value list, `seeds` both in the grid and as `--seeds`, or a seed count
    out of 1..MAX_SEEDS (checked before the seed tuple is built)."""
    keys = [k for k, _ in grid]
    for key, values in grid:
        cfglib.require(keys.count(key) == 1, "--grid", key, "each key once (put all its values in one --grid)")
        cfglib.require(len(values) > 0, f"--grid {key}", values, "at least one value")
        repeated = sorted({v for v in values if values.count(v) > 1})
        cfglib.require(not repeated, f"--grid {key}", ",".join(values), f"distinct values ({', '.join(repeated)} repeated)")
    if seeds is not None:
        cfglib.require("seeds" not in keys, "--seeds", seeds, "either --grid seeds=... or --seeds N, not both")
        cfglib.require(cfglib.is_int(seeds) and 1 <= seeds <= cfglib.MAX_SEEDS, "--seeds", seeds,
                       f"an integer in 1..{cfglib.MAX_SEEDS}")


def execute_sweep(module, tier: str, grid: list[tuple[str, list[str]]], seeds: int | None, sets: list[str],
                  out: Path | None = None, quiet: bool = False, results_root: Path = Path("results"),
                  ckpt_every_chunks: int = 10, data_axis: int = 1, force: bool = False) -> Path:
    """Run a grid of configs (x seeds) through the stages together: equal programs of a stage share
    one vmapped program across grid points, and equal bases are trained once. Every grid point is
    validated and its first stage planned before the folder exists; errors and `force` as `execute`."""
    base = resolve_config(module, tier, sets)
    _check_run_knobs(data_axis, ckpt_every_chunks)
    check_grid(grid, seeds)
    if seeds is not None:
        cfglib.require(any(f.name == "seeds" for f in dataclasses.fields(base)), "--seeds", seeds,
                       f"only for experiments with a 'seeds' knob ({module.ID} has none)")
        base = dataclasses.replace(base, seeds=tuple(range(42, 42 + seeds)))
    points = [dict(zip([k for k, _ in grid], combo)) for combo in itertools.product(*[v for _, v in grid])]
    configs = [resolve_config_from(module, base, [f"{k}={v}" for k, v in p.items()]) for p in points]
    planned = plan_first_stages(module, configs)
    record = {"experiment": module.ID, "tier": tier, "sweep": {"grid": [[k, v] for k, v in grid], "seeds": seeds},
              "config": cfglib.to_dict(base)}
    path = Path(out) if out else results_root / module.ID / f"sweep-{cfglib.run_id(record)}"
    with _opened(module, tier, record, path, quiet, ckpt_every_chunks, data_axis, results_root, force) as ctx:
        if ctx is None:
            return path
        ctx.log(f"[{module.ID}] sweep: {len(points)} grid points, stages "
                f"{', '.join(s.name for s in planned[0].stages)}")
        tables = run_stages(ctx, module, configs, planned)
        rows, metrics, verdict, not_judged, arrays, paper, records = [], {}, {}, {}, {}, {}, {}
        for i, (point, cfg, runs) in enumerate(zip(points, configs, tables)):
            outcome = module.analyze(cfg, runs)
            tag = ",".join(f"{k}={v}" for k, v in point.items())
            rows += [{**point, **row} for row in outcome.rows]
            metrics.update({f"{tag}|{k}": v for k, v in outcome.metrics.items()})
            verdict.update({f"{tag}|{k}": v for k, v in outcome.verdict.items()})
            not_judged.update({f"{tag}|{k}": v for k, v in outcome.not_judged.items()})
            records.update({f"{tag}|{k}": v for k, v in outcome.verdicts.items()})
            arrays.update({f"point{i}/{k}": v for k, v in outcome.arrays.items()})
            paper = outcome.paper
        _finish_run(ctx, module, Outcome(metrics, rows, paper, verdict, arrays, not_judged, records))
    return path


def resolve_config_from(module, base, sets: list[str]):
    """`base` with the overrides applied, validated (ConfigError before any compute)."""
    cfg = cfglib.apply_overrides(base, sets)
    cfglib.validate(cfg)
    return cfg
