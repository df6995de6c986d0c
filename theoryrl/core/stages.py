"""The experiment protocol: stages of run plans, and the table of finished runs analyze reads.

An experiment module declares `stages(cfg) -> [Stage]` (pre-train -> mid-train -> RL -> evaluate)
and `analyze(cfg, runs: Runs) -> Outcome`. A Stage maps the finished runs of the earlier stages to
its own `RunPlan`s; a plan whose program starts from an earlier run's trained parameters names that
run as its `parent` (its hp carries the parameters), so lineage and the base's gate travel with it.
The harness (core/experiment.py) alone trains plans: equal programs form one vmapped bucket, also
across the points of a sweep, and a stage with `store_bases=True` is content-addressed in the base
store (core/bases.py) and trained once. `analyze` selects runs by their row knobs,
`runs.where(stage="rl", arm="uniform", seed=43)`, never by position. A module with a single
`plan(cfg)` is one stage named "train".
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from theoryrl.core import treepath
from theoryrl.core.bases import Gate
from theoryrl.core.verdicts import Verdict
from theoryrl.core.verdicts import split as split_verdicts


@dataclasses.dataclass
class Outcome:
    """What `analyze` returns: summary pieces and the arrays for plots. `not_judged` maps a claim to
    the precondition that failed (such a claim has no boolean verdict). `verdicts` holds the full
    three-valued records (core/verdicts.py) when the experiment builds them: use `Outcome.judged`,
    which derives `verdict` and `not_judged` from them so that the three always agree."""

    metrics: dict[str, float]
    rows: list[dict]
    paper: dict[str, Any]
    verdict: dict[str, bool]
    arrays: dict[str, np.ndarray]
    not_judged: dict[str, str] = dataclasses.field(default_factory=dict)
    verdicts: dict[str, Verdict] = dataclasses.field(default_factory=dict)

    @classmethod
    def judged(cls, metrics: dict[str, float], rows: list[dict], paper: dict[str, Any],
               verdicts: dict[str, Verdict], arrays: dict[str, np.ndarray]) -> "Outcome":
        booleans, reasons, _ = split_verdicts(verdicts)
        return cls(metrics, rows, paper, booleans, arrays, reasons, dict(verdicts))


@dataclasses.dataclass
class Program:
    """The pure functions of one training run (for one run; the driver vmaps them).
    `finite_metrics`: metrics that must stay finite (the NaN tripwire also watches every float
    leaf of the state, whatever the program's metrics)."""

    data_fn: Callable  # hp -> data
    init_fn: Callable  # hp -> state
    chunk_fn: Callable  # (state, hp, data) -> (state, metrics)
    num_chunks: int
    steps_per_chunk: int
    summarize: Callable[[dict], dict] | None = None
    all_stopped: Callable[[dict], Any] | None = None
    final_fn: Callable | None = None
    finite_metrics: tuple[str, ...] = ("loss",)


@dataclasses.dataclass
class RunPlan:
    """One run: `row` knobs (how analyze finds it), `bucket` (hashable, equal for equal programs),
    traced `hp`, and either `build() -> Program` (a chunked training loop) or `compute() -> arrays`
    (a run that is not a training loop, e.g. an ODE integration). `parent`: the earlier run whose
    trained state this one starts from. `base_key`: its content address in a base-storing stage."""

    row: dict
    bucket: Any
    label: str
    hp: Any = None  # a frozen pytree dataclass of the run's traced knobs
    build: Callable[[], Program] | None = None
    compute: Callable[[], dict[str, np.ndarray]] | None = None
    parent: "Run | None" = None
    base_key: dict | None = None


@dataclasses.dataclass(frozen=True)
class Stage:
    """`plans(runs_so_far) -> [RunPlan]`. `store_bases`: every plan carries a base_key and is kept in
    the base store; `gate(run) -> Gate`: what such a base must be able to do."""

    name: str
    plans: Callable[["Runs"], list[RunPlan]]
    store_bases: bool = False
    gate: Callable[["Run"], Gate] | None = None


@dataclasses.dataclass(frozen=True)
class Run:
    """A finished run: its stage, row knobs, arrays ("history/<metric>" [chunks, ...] and
    "final/<name>"), and its lineage: the base it is or descends from, with that base's gate."""

    stage: str
    row: dict
    arrays: dict[str, np.ndarray]
    base_id: str | None = None
    gate: Gate | None = None
    reused: bool = False  # a base loaded from the store, not trained by this run

    def history(self, name: str) -> np.ndarray:
        return self.arrays[f"history/{name}"]

    def final(self, name: str) -> np.ndarray:
        return self.arrays[f"final/{name}"]

    def tree(self, like, prefix: str = "final/params/"):
        """A pytree of `like`'s structure from this run's arrays, matched by key path."""
        return treepath.unflatten(like, self.arrays, prefix, what=f"{self.stage} run {self.row}")

    def base_info(self) -> dict:
        """Row fields that carry the base's identity and gate into every downstream row."""
        if self.base_id is None:
            return {}
        return {"base_id": self.base_id, "base_gate_passed": None if self.gate is None else self.gate.passed}


class Runs(Sequence):
    """An ordered table of finished runs, selected by row knobs."""

    def __init__(self, runs: Sequence[Run] = ()):
        self._runs = list(runs)

    def __len__(self) -> int:
        return len(self._runs)

    def __getitem__(self, i):
        return self._runs[i]

    def __iter__(self) -> Iterator[Run]:
        return iter(self._runs)

    def __add__(self, other: "Runs | Sequence[Run]") -> "Runs":
        return Runs(self._runs + list(other))

    def where(self, **knobs) -> "Runs":
        """The runs whose row has every given knob at the given value (`stage` is a knob)."""
        return Runs([r for r in self._runs if all(_knob(r, k) == v for k, v in knobs.items())])

    def one(self, **knobs) -> Run:
        """The single run matching `knobs`; a LookupError when there are none or several."""
        found = self.where(**knobs)
        if len(found) != 1:
            raise LookupError(f"{len(found)} runs match {knobs} (expected exactly one)")
        return found[0]

    def values(self, knob: str) -> list:
        """The distinct values of `knob` among the runs that have it, in order of appearance."""
        out = []
        for r in self._runs:
            if knob in r.row or knob == "stage":
                v = _knob(r, knob)
                if v not in out:
                    out.append(v)
        return out

    def stack(self, key: str) -> np.ndarray:
        """arrays[key] of every run, stacked on a new leading axis (in table order)."""
        return np.stack([r.arrays[key] for r in self._runs])


_MISSING = object()


def _knob(run: Run, knob: str):
    return run.stage if knob == "stage" else run.row.get(knob, _MISSING)
