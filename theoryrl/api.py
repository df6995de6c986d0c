"""The notebook entry point: `theoryrl.run(experiment_id, ...)` and `theoryrl.load(run_dir)`.

Researchers script in notebooks as well as in shells (issue 19, item 6). `run` is `python -m
theoryrl run` without the shell: the same tier recipe, `--set` parsing and validation (a bad knob
is a ConfigError naming it, raised before any compute), the same run folder (`out`, else
results/<id>/<run_id>, so the CLI and a notebook share finished runs), the same skip when the
folder is DONE and resume when it is not. It does not draw the figure: call the module's `plot`,
or `python -m theoryrl plot ID`.

Overrides are keyword arguments, each turned into one `--set knob=value`: `m=3`,
`attention="softmax"`, `seeds=(42, 43)`, `softmax__early_stop=False`. A nested knob is named with a
double underscore (`softmax__lr=0.03`), or by its dotted CLI name through a dict
(`**{"softmax.lr": 0.03}`), or as a dict of its group (`softmax={"lr": 0.03}`).

`load` reads a finished run folder back as a `Results`: the summary, the rows (a pandas DataFrame
when pandas is installed, else a list of dicts), the verdicts and the claims not judged, and the
arrays. Heavy modules (jax, the experiments) are imported inside the functions, so `import
theoryrl` stays light.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

__all__ = ["Results", "load", "run"]


def run(experiment_id: str, tier: str = "quick", out: str | Path | None = None, *, quiet: bool = False,
        results_root: str | Path = "results", ckpt_every_chunks: int = 10, data_axis: int = 1,
        force: bool = False, **overrides: Any) -> Path:
    """Run, resume or skip one experiment as `python -m theoryrl run` does; returns its run folder.

    `quiet`, `ckpt_every_chunks`, `data_axis` and `force` are the CLI's --quiet, --ckpt-every, --data
    and --force (recompute a finished folder whose files no longer match the checksums in its DONE).
    """
    from theoryrl import experiments
    from theoryrl.core import experiment as runner
    from theoryrl.core import sharding

    module = experiments.get(experiment_id)
    sets = override_sets(overrides)
    runner.resolve_config(module, tier, sets)  # a bad knob fails here, before any device is touched
    sharding.initialize_distributed()
    return runner.execute(module, tier, sets, Path(out) if out is not None else None, quiet,
                          results_root=Path(results_root), ckpt_every_chunks=ckpt_every_chunks, data_axis=data_axis,
                          force=force)


def override_sets(overrides: dict[str, Any]) -> list[str]:
    """Keyword overrides as the CLI's `--set knob=value` strings (see the module docstring)."""
    sets = []
    for key, value in overrides.items():
        knob = key.replace("__", ".")
        if isinstance(value, dict):
            sets += override_sets({f"{knob}.{k}": v for k, v in value.items()})
        else:
            sets.append(f"{knob}={_set_text(value)}")
    return sets


def _set_text(value: Any) -> str:
    """A Python value as `--set` text that config.parse_value reads back to the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):  # a JSON list of item texts: an item may hold a comma
        return json.dumps([_set_text(v) for v in value])
    return str(value)  # the shortest text that reads back as the same float (numpy scalars too)


@dataclasses.dataclass(frozen=True)
class Results:
    """A finished run folder, read back. `rows`: one row per run (a pandas DataFrame when pandas is
    installed, else a list of dicts); `verdicts`: claim -> passed; `not_judged`: claim -> the
    precondition that failed; `arrays`: the curves of arrays.npz."""

    path: Path
    experiment: str
    tier: str
    config: dict = dataclasses.field(repr=False)
    summary: dict = dataclasses.field(repr=False)
    metrics: dict = dataclasses.field(repr=False)
    rows: Any = dataclasses.field(repr=False)
    verdicts: dict = dataclasses.field(default_factory=dict)
    not_judged: dict = dataclasses.field(default_factory=dict)
    arrays: dict = dataclasses.field(default_factory=dict, repr=False)


def load(run_dir: str | Path) -> Results:
    """The results of a finished run folder (one with DONE)."""
    from theoryrl.core.results import load_npz

    path = Path(run_dir)
    if not (path / "DONE").exists():
        raise FileNotFoundError(f"{path} is not a finished run folder (no DONE); run it first, e.g. with theoryrl.run")
    summary = json.loads((path / "summary.json").read_text())
    record = json.loads((path / "config.json").read_text())
    arrays = load_npz(path / "arrays.npz") if (path / "arrays.npz").exists() else {}
    return Results(path=path, experiment=summary["experiment"], tier=summary["tier"], config=record["config"],
                   summary=summary, metrics=summary["metrics"], rows=_table(summary["rows"]),
                   verdicts=dict(summary["verdict"]), not_judged=dict(summary.get("not_judged", {})), arrays=arrays)


def _table(rows: list[dict]):
    try:
        import pandas
    except ImportError:
        return list(rows)
    return pandas.DataFrame(rows)
