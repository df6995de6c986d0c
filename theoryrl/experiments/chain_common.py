"""Shared recipe, run plans and curve extraction for the chain-traversal experiments (Ran-Milo et al.).

Each chain experiment is one stage "train" (`plan(cfg)`): every (knob, seed) is a RunPlan whose row
carries the knobs analyze selects it by; runs of one static TrainSpec form one vmapped program.
The verdict helpers at the end (issue 20) are shared by the chain experiments' analyze: accuracy
claims judged over both denominators (a rollout that never reaches a sink counts as wrong, so
timeouts cannot inflate a pass) with the SE over seeds, and "time falls as the training mix gets
easier" judged beyond noise, with censored runs charged a lower bound.
"""
from __future__ import annotations

import dataclasses
from functools import partial
from typing import Iterable

import numpy as np

from theoryrl.core.config import (is_int, require, require_finite_nonneg, require_finite_positive, require_float,
                                  require_int, require_ints)
from theoryrl.core.stages import Program, Run, RunPlan
from theoryrl.core import verdicts as V
from theoryrl.models.chain_attention import ModelSpec
from theoryrl.rl import chain_trainer as trainer
from theoryrl.tasks.chain import ChainSpec, uniform_over, validate_dist_probs

MAX_M = 128  # n = 2m vertices and n <= 256 (tasks/chain.py's permutation packing): a fact of the task
ACC_KEYS = ("acc", "acc_all", "traversal", "traversal_all", "reached", "len_correct")  # per eval set
TRAIN_KEYS = ("loss", "train_acc", "train_len", "stopped")  # chain_trainer.run_epoch's own metrics


@dataclasses.dataclass(frozen=True)
class ChainRecipe:
    """One attention type's training settings (spec §3.2)."""

    batch: int = 50_000
    dataset_size: int = 1_000_000  # 0: fresh instances every step
    epochs: int = 300
    steps_per_epoch: int = 20  # used in fresh mode; dataset mode uses dataset_size // batch
    lr: float = 1e-2
    tmp: float = 1.0 / 20.0
    horizon: int | None = None  # None: m + 1
    baseline_groups: int = 1
    early_stop: bool = True
    early_stop_level: float = 1.0  # stop when epoch train accuracy and val accuracy both reach it
    fixed_v: bool = False
    eval_size: int = 1000
    epochs_per_chunk: int = 1

    def validate(self):
        # bounds: about 5x the paper recipe (batch 200k, dataset 2M); the step count
        # epochs x steps_per_epoch stays below 2^31 (int32 step counters and fold_in)
        require_int(self.batch, "batch", 1, 1_000_000)
        require(self.dataset_size == 0 or self.dataset_size >= self.batch, "dataset_size", self.dataset_size,
                "0 (fresh sampling) or >= batch")
        require_int(self.dataset_size, "dataset_size", 0, 10_000_000, "0 (fresh sampling) or batch..10000000")
        require_int(self.epochs, "epochs", 0, 100_000, "0 (no training: nothing is evaluated) or 1..100000")
        require_int(self.steps_per_epoch, "steps_per_epoch", 1, 10_000)
        require_finite_nonneg(self.lr, "lr")  # 0: learning switched off (Adam steps of size 0)
        require_finite_positive(self.tmp, "tmp")
        # 1024 > 4m + 1 at the largest m (128): every horizon a chain can use
        require(self.horizon is None or (is_int(self.horizon) and 1 <= self.horizon <= 1024), "horizon", self.horizon,
                "1..1024 (or none for m+1)")
        require_int(self.baseline_groups, "baseline_groups", 1, self.batch, "1..batch")
        require_int(self.eval_size, "eval_size", 1, 1_000_000)
        require_float(self.early_stop_level, "early_stop_level", 0.0, 1.0, lo_open=True)
        require(is_int(self.epochs_per_chunk) and 1 <= self.epochs_per_chunk
                and (self.epochs == 0 or (self.epochs_per_chunk <= self.epochs and self.epochs % self.epochs_per_chunk == 0)),
                "epochs_per_chunk",
                self.epochs_per_chunk, f"1..epochs dividing epochs = {self.epochs}")

    @property
    def num_steps_per_epoch(self) -> int:
        return self.dataset_size // self.batch if self.dataset_size else self.steps_per_epoch

    def num_chunks(self) -> int:
        return self.epochs // self.epochs_per_chunk


SOFTMAX_PAPER = ChainRecipe()
LINEAR_PAPER = ChainRecipe(batch=200_000, dataset_size=2_000_000, epochs=200, tmp=1.0 / 5.0)


def check_choices(knob: str, values, allowed) -> None:
    require(len(values) > 0 and all(v in allowed for v in values), knob, values, f"a non-empty subset of {list(allowed)}")


def check_ms(values, knob: str = "m", lo: int = 2, hi: int = MAX_M) -> None:
    """Chain length(s) (an int or a tuple): lo..hi, where hi = 128 is the largest m of the two-chain
    graph (n = 2m <= 256 vertices, tasks/chain.py's packed permutations); checked before any O(m) work."""
    if isinstance(values, (tuple, list)):
        require_ints(values, knob, lo, hi, allowed=f"integers in {lo}..{hi}")
    else:
        require_int(values, knob, lo, hi)


def train_spec(recipe: ChainRecipe, task: ChainSpec, attention: str, evals: tuple[trainer.EvalSet, ...],
               horizon: int | None = None) -> trainer.TrainSpec:
    model = ModelSpec(n=task.n, attention=attention, tmp=recipe.tmp, fixed_v=recipe.fixed_v)
    return trainer.TrainSpec(
        task=task, model=model, batch=recipe.batch,
        horizon=horizon or recipe.horizon or task.m + 1,
        steps_per_epoch=recipe.num_steps_per_epoch, epochs_per_chunk=recipe.epochs_per_chunk,
        dataset_size=recipe.dataset_size, evals=evals, baseline_groups=recipe.baseline_groups,
        early_stop=recipe.early_stop, early_stop_level=recipe.early_stop_level)


def program(spec: trainer.TrainSpec, recipe: ChainRecipe) -> Program:
    """The chain trainer's pure functions, with the driver's progress and early-exit hooks."""
    first = spec.evals[0].name

    def summarize(m):
        return {"loss": float(np.mean(m["loss"])), "train_acc": float(np.mean(m["train_acc"][:, -1])),
                f"{first}_acc": float(np.mean(m[f"{first}/acc"][:, -1])),
                f"{first}_traversal": float(np.mean(m[f"{first}/traversal"][:, -1]))}

    return Program(
        data_fn=partial(trainer.make_data, spec), init_fn=partial(trainer.init_state, spec),
        chunk_fn=partial(trainer.run_chunk, spec), num_chunks=recipe.num_chunks(),
        steps_per_chunk=recipe.epochs_per_chunk * spec.steps_per_epoch, summarize=summarize,
        all_stopped=(lambda m: m["stopped"][:, -1]) if spec.early_stop else None,
        final_fn=lambda st: {"stop_epoch": st.stop_epoch, "epoch": st.epoch})


def plan_run(row: dict, label: str, spec: trainer.TrainSpec, recipe: ChainRecipe, hp: trainer.ChainHp) -> RunPlan:
    """A chain run; runs with the same static spec and schedule share one compiled program."""
    return RunPlan(row=row, bucket=(spec, recipe.num_chunks(), recipe.epochs_per_chunk), label=label, hp=hp,
                   build=lambda: program(spec, recipe))


def curves(arrays: dict, epochs: int) -> dict:
    """One run's arrays from the driver -> {metric: [epochs]} (NaN after an early exit) + finals."""
    out = {}
    for k, v in arrays.items():
        if k.startswith("history/"):
            flat = np.asarray(v, dtype=np.float64).reshape(-1)
            if flat.shape[0] < epochs:
                flat = np.concatenate([flat, np.full(epochs - flat.shape[0], np.nan)])
            out[k[len("history/"):]] = flat
        else:
            out[k] = np.asarray(v)
    return out


def stack_curves(runs: Iterable[Run], epochs: int, evals: tuple[str, ...] = ()) -> dict:
    """Curves of the given runs (in their order) stacked on a leading run axis: {metric: [runs, epochs]}.
    A run of 0 epochs (learning switched off) has no history: its trainer metrics and the metrics of
    the eval sets `evals` are all-NaN [runs, 0], so every verdict on them is not judged."""
    per_run = [curves(r.arrays, epochs) for r in runs]
    expected = TRAIN_KEYS + tuple(f"{e}/{k}" for e in evals for k in ACC_KEYS)
    for c in per_run:
        for k in expected:
            c.setdefault(k, np.full(epochs, np.nan))
    return {k: np.stack([c[k] for c in per_run]) for k in per_run[0]}


def last_trained(curve_RxE: np.ndarray, stopped_RxE: np.ndarray | None = None) -> np.ndarray:
    """Value of each run at its last computed epoch (NaN-padded epochs after an early exit)."""
    vals = []
    for r in range(curve_RxE.shape[0]):
        finite = np.flatnonzero(np.isfinite(curve_RxE[r]))
        vals.append(curve_RxE[r, finite[-1]] if finite.size else np.nan)
    return np.asarray(vals)


def uniform_distances(m: int) -> np.ndarray:
    return uniform_over(range(1, m), m)


def hparams(seed: int, recipe: ChainRecipe, dist_probs, eval_probs: dict) -> trainer.ChainHp:
    validate_dist_probs(dist_probs, len(dist_probs) + 1)
    return trainer.make_hparams(seed, recipe.lr, dist_probs, eval_probs)


def mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    if not np.any(np.isfinite(values)):  # never evaluated (e.g. a 0-epoch run): no warning, NaN
        return float("nan"), float("nan")
    return float(np.nanmean(values)), float(np.nanstd(values))


def both_denominators(cond_S: np.ndarray, all_S: np.ndarray) -> np.ndarray:
    """Per seed, the smaller of an accuracy over sink-reaching rollouts (the paper code's metric)
    and over all rollouts: a claim judged on it holds under both denominators. NaN (never
    evaluated) stays NaN, so the claim is then not judged."""
    return np.minimum(np.asarray(cond_S, np.float64), np.asarray(all_S, np.float64))


def accuracy_at_least(cond_S: np.ndarray, all_S: np.ndarray, threshold: float, what: str) -> V.Verdict:
    """Mean over seeds of `both_denominators` >= threshold; SE over seeds recorded (NaN for one seed)."""
    mean, se = V.mean_se(both_denominators(cond_S, all_S))
    return V.at_least(mean, threshold, se=se, what=f"{what}, both denominators (over sink-reaching rollouts "
                                                   f"and over all rollouts), mean over {len(cond_S)} seed(s)")


def charged(values_S, cap: float) -> np.ndarray:
    """Per-seed times with runs that never reached the target (inf / None) charged `cap`, the
    earliest time they could have reached it: a lower bound, so an arm of such runs is at least
    this slow."""
    vals = np.array([np.inf if v is None else v for v in values_S], dtype=np.float64)
    return np.where(np.isfinite(vals), vals, float(cap))


def decreasing_beyond_noise(arms: list[tuple[str, np.ndarray]], what: str) -> V.Verdict:
    """`arms` = [(label, per-seed times)] ordered from the hardest training mix to the easiest.
    Pass iff the first arm is slower than the last beyond 2 SE over seeds (`greater`), and no arm
    is slower than the arm before it beyond 2 SE (monotone within noise). Value, threshold and
    margin are those of the first-vs-last comparison; one seed per arm gives no SE: not judged."""
    stats = [(label, *V.mean_se(t)) for label, t in arms]
    (lo_label, lo, lo_se), (hi_label, hi, hi_se) = stats[0], stats[-1]
    verdict = V.greater(lo, hi, se_a=lo_se, se_b=hi_se, what=f"{what}: {lo_label} minus {hi_label}")
    if not verdict.passed:
        return verdict
    rising = [f"{b[0]} ({b[1]:.4g}) slower than {a[0]} ({a[1]:.4g})" for a, b in zip(stats, stats[1:])
              if V.greater(b[1], a[1], se_a=b[2], se_b=a[2]).passed]
    if rising:
        return dataclasses.replace(verdict, status=V.FAIL,
                                   reason=verdict.reason + "; not monotone beyond noise: " + ", ".join(rising))
    return verdict
