"""python -m theoryrl list | run | sweep | plot | report | bench

  list                                  every experiment id with its paper reference
  run ID [--tier quick|paper] [--set k=v ...] [--out DIR] [--quiet] [--no-plot] [--dry-run]
  sweep ID --grid k=v1,v2 [--grid ...] [--seeds N] [--tier ...] [--set ...] [--out DIR]
  plot ID [--run-dir DIR] [--figures DIR]     figures from saved results only (no training)
  report [--results DIR] [--figures DIR] [--page FILE]
                                        every figure whose results exist (lists missing and broken
                                        ones) and RESULTS.md: every claim, pass / fail / not judged
  compare RUN_DIR [--reference DIR]     a finished run beside the reference run, claim by claim
  reference RUN_DIR [...] [--into DIR]  keep finished runs' summaries (no arrays) in the reference folder
  bases [--results DIR]                 the stored trained bases: id, stage, experiment, gate, size, time
  bench NAME [args]                     throughput benchmarks (NAME: chain | lm | bandit | dag)

Every failure the user can cause (a bad knob, a folder that holds another run, a corrupt or
unreadable file, a run stopped by the NaN tripwire, a locked folder) ends with one `error:` line on
stderr naming the knob or file, and exit status 2; `--debug` shows the traceback instead. Any other
exception is a bug in theoryrl and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import zipfile
from pathlib import Path

from theoryrl.core.config import ConfigError


RESULTS = Path("results")
FIGURES = Path("figures")
REFERENCE = Path(__file__).resolve().parents[1] / "reference"  # committed summaries of the quick tiers


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one `error:` line (exit 2) instead of usage + error."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's default must not overwrite `--debug` given before the subcommand
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    p = _OneLineParser(prog="python -m theoryrl", description=__doc__, parents=[common],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)

    def add(name, **kw):
        return sub.add_parser(name, parents=[common], **kw)

    add("list", help="list experiments")
    run = add("run", help="run one experiment")
    run.add_argument("experiment")
    sweep = add("sweep", help="run a grid of configs x seeds, vmapped where shapes agree")
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
        sp.add_argument("--force", action="store_true",
                        help="recompute a finished folder whose files fail their DONE checksums")
    run.add_argument("--no-plot", action="store_true", help="do not draw the figure after the run")
    run.add_argument("--dry-run", action="store_true", help="print the resolved config and run folder, then stop")
    run.add_argument("--figures", type=Path, default=FIGURES)
    plot = add("plot", help="figures of one experiment from saved results")
    plot.add_argument("experiment")
    plot.add_argument("--run-dir", type=Path, default=None, help="default: newest finished run of the experiment")
    plot.add_argument("--figures", type=Path, default=FIGURES)
    report = add("report", help="figures of every experiment with saved results")
    report.add_argument("--results", type=Path, default=RESULTS)
    report.add_argument("--figures", type=Path, default=FIGURES)
    report.add_argument("--page", type=Path, default=Path("RESULTS.md"), help="the results page to write")
    compare = add("compare", help="a finished run beside the reference run of its experiment, claim by claim")
    compare.add_argument("run_dir", type=Path)
    compare.add_argument("--reference", type=Path, default=REFERENCE)
    keep = add("reference", help="keep finished runs' summaries (config, summary, env; no arrays) as the reference")
    keep.add_argument("run_dirs", type=Path, nargs="+")
    keep.add_argument("--into", type=Path, default=REFERENCE)
    bases = add("bases", help="list the stored trained bases (pre-/mid-training runs)")
    bases.add_argument("--results", type=Path, default=RESULTS)
    bench = add("bench", help="throughput benchmarks")
    bench.add_argument("name")
    bench.add_argument("args", nargs=argparse.REMAINDER)
    return p


def _list() -> int:
    from theoryrl import experiments

    width = max(map(len, experiments.MODULES)) + 1  # the ids' column, as wide as the longest id
    for eid in experiments.MODULES:
        mod = experiments.get(eid)
        print(f"{eid:{width}s} {mod.PAPER}\n{'':{width}s} {mod.TITLE}")
    return 0


def _parse_grid(items: list[str], seeds: int | None) -> list[tuple[str, list[str]]]:
    """`--grid key=v1,v2` items, checked by core's `check_grid` (a repeated key or value, an empty
    list, or `seeds` in the grid together with `--seeds` would silently drop or double-count runs)."""
    from theoryrl.core.experiment import check_grid

    grid: list[tuple[str, list[str]]] = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--grid expects key=v1,v2,..., got {item!r}")
        key, values = item.split("=", 1)
        grid.append((key.strip(), [v.strip() for v in values.split(",") if v.strip() != ""]))
    check_grid(grid, seeds)
    return grid


def _check_grid_points(mod, tier: str, grid: list[tuple[str, list[str]]], sets: list[str]) -> None:
    """Two values of one grid key that parse to the same config (e.g. 0.1 and 0.10) are an error."""
    from theoryrl.core import experiment as runner

    for key, vals in grid:
        seen: dict[str, str] = {}
        for v in vals:
            cfg = runner.resolve_config(mod, tier, [*sets, f"{key}={v}"])
            ident = json.dumps(runner.config_record(mod, tier, cfg), sort_keys=True)
            if ident in seen:
                raise ConfigError(f"--grid {key}: values {seen[ident]} and {v} give the same config")
            seen[ident] = v


def _latest_run(experiment_id: str, root: Path = RESULTS) -> Path | None:
    folder = root / experiment_id
    done = [p.parent for p in folder.glob("*/DONE")] if folder.exists() else []
    return max(done, key=lambda p: (p / "DONE").stat().st_mtime) if done else None


def _run_experiment_id(run_dir: Path) -> str | None:
    """The experiment a finished folder holds, from its config.json (None when unreadable)."""
    try:
        return json.loads((Path(run_dir) / "config.json").read_text()).get("experiment")
    except (OSError, ValueError, AttributeError):
        return None


def _verify_finished(run_dir: Path) -> None:
    """The folder's files against the checksums its DONE recorded (ResultsError names a missing,
    changed or unreadable file); the folder's own program version is taken as given, since a figure
    of an older run is still a figure of that run."""
    from theoryrl.core.results import RunDir

    try:
        version = json.loads((run_dir / "DONE").read_text() or "{}").get("program_version")
    except (OSError, ValueError, AttributeError):
        version = None  # verify_done reports the unreadable DONE
    RunDir(run_dir).verify_done(version)


def _plot(experiment_id: str, run_dir: Path | None, figures: Path) -> list[Path]:
    """Figures of a finished run, drawn from its saved results straight into `figures` (the run
    folder is only read, so a read-only or shared results folder can be plotted)."""
    from theoryrl import experiments

    mod = experiments.get(experiment_id)
    run_dir = run_dir or _latest_run(experiment_id)
    if run_dir is None or not (Path(run_dir) / "DONE").exists():
        where = f"{run_dir} is not a finished run" if run_dir is not None else f"no finished run of {experiment_id}"
        raise FileNotFoundError(f"{where} (run `python -m theoryrl run {experiment_id}` first)")
    _verify_finished(Path(run_dir))
    held = _run_experiment_id(run_dir)
    if held != experiment_id:
        raise ConfigError(f"{run_dir} holds a run of {held or 'an unknown experiment'}, not {experiment_id} "
                          f"(`python -m theoryrl plot {held} --run-dir {run_dir}`)" if held else
                          f"{run_dir}/config.json is missing or unreadable; cannot tell which experiment it holds")
    try:
        return [Path(p) for p in mod.plot(Path(run_dir), Path(figures))]
    except (ValueError, KeyError, OSError, zipfile.BadZipFile, EOFError) as err:
        if isinstance(err, OSError) and Path(figures) in Path(err.filename or "/").parents:
            raise  # the figures folder is not writable: the error names it already
        raise ConfigError(f"cannot plot {run_dir}: {_one_line(err)}") from err


def _report(results: Path, figures: Path, page: Path) -> int:
    """Every experiment's figure from its newest finished run (missing ones and broken folders are
    listed and skipped), then the results page. Exit 1 when some folder was broken, else 0."""
    from theoryrl import experiments, results_page

    if not results.is_dir():
        raise FileNotFoundError(f"--results {results}: no such folder")
    broken = 0
    for eid in experiments.MODULES:
        run_dir = _latest_run(eid, results)
        if run_dir is None:
            print(f"{eid}: missing (no finished run under {results / eid})")
            continue
        if not (run_dir / "arrays.npz").exists() and json.loads((run_dir / "DONE").read_text() or "{}").get("reference"):
            print(f"{eid}: summary only (a reference folder keeps no arrays): no figure")
            continue
        try:
            for path in _plot(eid, run_dir, figures):
                print(f"{eid}: {path}")
        except Exception as err:  # noqa: BLE001 - a broken folder is reported and the report goes on
            broken += 1
            print(f"{eid}: BROKEN {run_dir}: {_one_line(err)}")
    runs = results_page.write_page(results, page)
    print(f"results page: {page} ({sum(len(r.claims) for r in runs.values())} claims of {len(runs)} experiments)")
    if broken:
        print(f"error: {broken} broken run folder(s) listed above", file=sys.stderr)
    return 1 if broken else 0


def _bench_names() -> list[str]:
    import theoryrl.benchmarks as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)
                  if not m.name.startswith("_") and hasattr(importlib.import_module(f"{pkg.__name__}.{m.name}"), "main"))


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
        return _dispatch(args)
    except KeyboardInterrupt:
        print("error: interrupted; an unfinished run resumes from its last checkpoint when started again",
              file=sys.stderr)
        return 130
    except _user_errors() as err:
        if getattr(args, "debug", False):
            raise
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2


def _user_errors() -> tuple[type[BaseException], ...]:
    """Failures a user can cause: a bad knob, a refused / locked / damaged folder, a checkpoint of
    another structure, the NaN stop, a file the OS refuses, a corrupt array file. Anything else is a
    bug and keeps its traceback. (Imported here, not at module level: `list` and `--help` stay
    free of JAX.)"""
    from theoryrl.core.results import ResultsError
    from theoryrl.core.treepath import StructureMismatch

    return (ConfigError, ResultsError, StructureMismatch, FloatingPointError, OSError, zipfile.BadZipFile, EOFError)


def _one_line(err: BaseException) -> str:
    """The error as one line; an OSError names its file."""
    if isinstance(err, OSError) and err.filename is not None:
        text = f"{err.strerror or type(err).__name__}: {err.filename}"
    else:
        text = str(err) or type(err).__name__
    if isinstance(err, (zipfile.BadZipFile, EOFError)):
        text = f"a saved array file is corrupt ({text}); delete it or rerun with --force"
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())


def _dispatch(args) -> int:
    if args.command == "list":
        return _list()
    if args.command == "bases":
        return _bases(args.results)
    if args.command == "bench":
        names = _bench_names()
        if args.name not in names:
            raise ConfigError(f"unknown benchmark '{args.name}' (known: {', '.join(names)})")
        return importlib.import_module(f"theoryrl.benchmarks.{args.name}").main(args.args)
    if args.command == "report":
        return _report(args.results, args.figures, args.page)
    if args.command == "compare":
        from theoryrl import results_page

        print(results_page.compare(args.run_dir, args.reference), end="")
        return 0
    if args.command == "reference":
        from theoryrl import results_page

        for run_dir in args.run_dirs:
            print(f"kept {results_page.keep_reference(run_dir, args.into)}")
        return 0
    if args.command == "plot":
        for path in _plot(args.experiment, args.run_dir, args.figures):
            print(path)
        return 0

    from theoryrl import experiments
    from theoryrl.core import experiment as runner
    from theoryrl.core import sharding

    mod = experiments.get(args.experiment)
    if args.ckpt_every < 1:
        raise ConfigError(f"invalid value for '--ckpt-every': {args.ckpt_every} (allowed: an integer >= 1)")
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
                              data_axis=args.data, force=args.force)
        _print_summary(path)
        if not args.no_plot:
            for fig in _plot(args.experiment, path, args.figures):
                print(f"figure: {fig}")
        return 0
    grid = _parse_grid(args.grid, args.seeds)
    _check_grid_points(mod, args.tier, grid, args.set)
    sharding.initialize_distributed()
    path = runner.execute_sweep(mod, args.tier, grid, args.seeds, args.set, args.out, args.quiet,
                                ckpt_every_chunks=args.ckpt_every, data_axis=args.data, force=args.force)
    _print_summary(path)
    print(f"runs table: {path / 'runs.csv'}")
    return 0


def _print_summary(path: Path) -> None:
    summary = json.loads((Path(path) / "summary.json").read_text())
    print(f"results: {path}")
    for k, v in summary["metrics"].items():
        print(f"  {k} = {v if v is None else round(v, 4)}")
    for k, v in summary["verdict"].items():
        print(f"  verdict {k}: {'PASS' if v else 'FAIL'}")
    for k, reason in summary.get("not_judged", {}).items():
        print(f"  verdict {k}: NOT JUDGED ({reason})")
