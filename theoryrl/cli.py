"""python -m theoryrl list | run | sweep | plot | report | bench

  list                                  every experiment id with its paper reference
  run ID [--tier quick|paper] [--set k=v ...] [--out DIR] [--quiet] [--no-plot] [--dry-run]
  sweep ID --grid k=v1,v2 [--grid ...] [--seeds N] [--tier ...] [--set ...] [--out DIR]
  plot ID [--run-dir DIR] [--figures DIR]     figures from saved results only (no training)
  report [--results DIR] [--figures DIR]      every figure whose results exist; lists missing ones
  bases [--results DIR]                 the stored trained bases: id, stage, experiment, gate, size, time
  bench NAME [args]                     throughput benchmarks (NAME: chain | lm)
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from theoryrl.core.config import ConfigError

RESULTS = Path("results")
FIGURES = Path("figures")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m theoryrl", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list experiments")
    run = sub.add_parser("run", help="run one experiment")
    run.add_argument("experiment")
    sweep = sub.add_parser("sweep", help="run a grid of configs x seeds, vmapped where shapes agree")
    sweep.add_argument("experiment")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="a swept knob")
    sweep.add_argument("--seeds", type=int, default=None, help="seeds 42..42+N-1 for every grid point")
    for sp in (run, sweep):
        sp.add_argument("--tier", default="quick", help="quick (minutes on a CPU) or paper (the paper's settings)")
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config knob")
        sp.add_argument("--out", type=Path, default=None, help="run folder (default results/<id>/<run_id>)")
        sp.add_argument("--quiet", action="store_true", help="no progress lines")
        sp.add_argument("--ckpt-every", type=int, default=10, help="checkpoint every N chunks (and every 5 min)")
        sp.add_argument("--data", type=int, default=1, metavar="D",
                        help="devices per run: split each run's batch over a data axis of D devices")
    run.add_argument("--no-plot", action="store_true", help="do not draw the figure after the run")
    run.add_argument("--dry-run", action="store_true", help="print the resolved config and run folder, then stop")
    run.add_argument("--figures", type=Path, default=FIGURES)
    plot = sub.add_parser("plot", help="figures of one experiment from saved results")
    plot.add_argument("experiment")
    plot.add_argument("--run-dir", type=Path, default=None, help="default: newest finished run of the experiment")
    plot.add_argument("--figures", type=Path, default=FIGURES)
    report = sub.add_parser("report", help="figures of every experiment with saved results")
    report.add_argument("--results", type=Path, default=RESULTS)
    report.add_argument("--figures", type=Path, default=FIGURES)
    bases = sub.add_parser("bases", help="list the stored trained bases (pre-/mid-training runs)")
    bases.add_argument("--results", type=Path, default=RESULTS)
    bench = sub.add_parser("bench", help="throughput benchmarks")
    bench.add_argument("name")
    bench.add_argument("args", nargs=argparse.REMAINDER)
    return p


def _list() -> int:
    from theoryrl import experiments

    for eid in experiments.MODULES:
        mod = experiments.get(eid)
        print(f"{eid:24s} {mod.PAPER}\n{'':24s} {mod.TITLE}")
    return 0


def _parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    grid = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--grid expects key=v1,v2,..., got {item!r}")
        key, values = item.split("=", 1)
        vals = [v for v in values.split(",") if v != ""]
        if not vals:
            raise ConfigError(f"--grid {key}: no values")
        grid.append((key.strip(), vals))
    return grid


def _latest_run(experiment_id: str, root: Path = RESULTS) -> Path | None:
    folder = root / experiment_id
    done = [p.parent for p in folder.glob("*/DONE")] if folder.exists() else []
    return max(done, key=lambda p: (p / "DONE").stat().st_mtime) if done else None


def _plot(experiment_id: str, run_dir: Path | None, figures: Path) -> list[Path]:
    from theoryrl import experiments

    mod = experiments.get(experiment_id)
    run_dir = run_dir or _latest_run(experiment_id)
    if run_dir is None or not (Path(run_dir) / "DONE").exists():
        raise FileNotFoundError(f"no finished run of {experiment_id} (run `python -m theoryrl run {experiment_id}` first)")
    paths = mod.plot(Path(run_dir), Path(run_dir) / "figures")
    out = []
    for path in paths:
        target = Path(figures) / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
        out.append(target)
    return out


def _bases(results: Path) -> int:
    from theoryrl.core.experiment import base_store

    store = base_store(results)
    records = store.list()
    if not records:
        print(f"no stored bases under {store.root}")
        return 0
    print(f"{'base id':12s}  {'experiment':24s} {'stage':10s} {'gate':6s} {'size':>9s} {'wall':>8s}  created  run")
    for r in records:
        gate = {None: "-", True: "pass", False: "FAIL"}[r["gate"]]
        print(f"{r['base_id']:12s}  {r['experiment']:24s} {r['stage']:10s} {gate:6s} {r['bytes'] / 1e6:8.2f}M "
              f"{r['wall_s']:7.0f}s  {r['created']}  {r['row']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return _list()
        if args.command == "bases":
            return _bases(args.results)
        if args.command == "bench":
            module = importlib.import_module(f"theoryrl.benchmarks.{args.name}")
            return module.main(args.args)
        if args.command == "report":
            from theoryrl import experiments

            for eid in experiments.MODULES:
                run_dir = _latest_run(eid, args.results)
                if run_dir is None:
                    print(f"{eid}: missing (no finished run under {args.results / eid})")
                    continue
                for path in _plot(eid, run_dir, args.figures):
                    print(f"{eid}: {path}")
            return 0
        if args.command == "plot":
            for path in _plot(args.experiment, args.run_dir, args.figures):
                print(path)
            return 0

        from theoryrl import experiments
        from theoryrl.core import experiment as runner
        from theoryrl.core import sharding

        mod = experiments.get(args.experiment)
        if args.command == "run":
            cfg = runner.resolve_config(mod, args.tier, args.set)
            if args.dry_run:
                record = runner.config_record(mod, args.tier, cfg)
                print(json.dumps(record, indent=2, sort_keys=True))
                print(f"run folder: {args.out or runner.default_run_dir(mod, args.tier, cfg)}")
                stages = runner.stages_of(mod, cfg)
                first = stages[0].plans(runner.Runs())
                print(f"stages: {', '.join(s.name for s in stages)}; first stage: {len(first)} runs in "
                      f"{len({p.bucket for p in first})} compiled program(s)")
                return 0
            sharding.initialize_distributed()
            path = runner.execute(mod, args.tier, args.set, args.out, args.quiet, ckpt_every_chunks=args.ckpt_every,
                                  data_axis=args.data)
            _print_summary(path)
            if not args.no_plot:
                for fig in _plot(args.experiment, path, args.figures):
                    print(f"figure: {fig}")
            return 0
        if args.command == "sweep":
            grid = _parse_grid(args.grid)
            sharding.initialize_distributed()
            path = runner.execute_sweep(mod, args.tier, grid, args.seeds, args.set, args.out, args.quiet,
                                        ckpt_every_chunks=args.ckpt_every, data_axis=args.data)
            _print_summary(path)
            print(f"runs table: {path / 'runs.csv'}")
            return 0
    except (ConfigError, KeyError, FileNotFoundError, ValueError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {msg}", file=sys.stderr)
        return 2
    return 1


def _print_summary(path: Path) -> None:
    summary = json.loads((Path(path) / "summary.json").read_text())
    print(f"results: {path}")
    for k, v in summary["metrics"].items():
        print(f"  {k} = {v if v is None else round(v, 4)}")
    for k, v in summary["verdict"].items():
        print(f"  verdict {k}: {'PASS' if v else 'FAIL'}")
    for k, reason in summary.get("not_judged", {}).items():
        print(f"  verdict {k}: NOT JUDGED ({reason})")
