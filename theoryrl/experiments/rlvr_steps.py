"""rlvr-steps: with more GRPO steps pass@1 rises while pass@k_max falls.

Yue et al. (arXiv 2504.13837) Table 3 (spec `rlvr_limits.md` §3.4, §6.2: checkpoints at 150 / 300 /
450 steps), at theory scale on DAG-lite (`rl/rlvr_runs.py`). One GRPO run (process-verified reward,
no KL) on the fixed train set of the base's calibrated band keeps its parameters at three step
counts; each checkpoint and the base sample n completions of every train and in-domain test problem
with the same keys. Claims, per set (paired per problem, cluster bootstrap over seeds, 95%
intervals): `pass1_rises_<set>`: pass@1 does not fall from one checkpoint to the next (point
estimates) and the last checkpoint minus the first is above 0; `passk_falls_<set>`: pass@k_max
does not rise from one checkpoint to the next and the last minus the first is below 0 (judged only
where the last checkpoint raised pass@1 over the base: a collapsing run would pass it). A run with
learning off has equal checkpoints, so every difference is 0 and no claim passes; steps 0 judges
none. The base's numbers are reported next to the checkpoints.
Measurements by run id: docs/results/rlvr-steps.md.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from theoryrl.core.config import check_seeds, require
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, Runs, Stage
from theoryrl.core.verdicts import FAIL, PASS, Verdict, judged_if, not_judged
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import rlvr_metrics as rm
from theoryrl.rl import rlvr_runs as rr

ID = "rlvr-steps"
TITLE = "RLVR limits: more RL steps raise pass@1 and lower pass@k_max"
PAPER = "Yue et al. 2504.13837, Table 3"
ARMS = ("base", "grpo")
SETS = ("train", "id")


def claim_names() -> tuple[str, ...]:
    return tuple(f"{c}_{s}" for s in SETS for c in ("pass1_rises", "passk_falls"))


@dataclasses.dataclass(frozen=True)
class Config:
    base: dr.BaseSpec = dr.BaseSpec()
    rlvr: rr.RLVRKnobs = rr.RLVRKnobs(checkpoints=(32, 64, 96), eval_splits=SETS)
    seeds: tuple[int, ...] = (42,)

    def validate(self) -> None:
        self.base.validate()
        self.rlvr.validate()
        require(len(self.rlvr.checkpoints) >= 2, "rlvr.checkpoints", self.rlvr.checkpoints,
                "at least two step counts (a trend needs two checkpoints)")
        check_seeds(self.seeds)


TIERS = {
    "quick": Config(),
    # spec §6.2: 150 / 300 / 450 steps of 128 prompts x 8 rollouts on 2,000 problems, n = 256
    "paper": Config(base=dr.PAPER_BASE,
                    rlvr=dataclasses.replace(rr.PAPER_RLVR, eval_splits=SETS),
                    seeds=(42, 43, 44)),
}


def stages(cfg: Config) -> list[Stage]:
    return [dr.pretrain_stage(cfg.base, cfg.seeds),
            Stage("rlvr", lambda runs: rr.plans(cfg.base, cfg.rlvr, ARMS, cfg.seeds, runs, rr.stage_static(cfg)))]


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: the base and every checkpoint on the train and ID sets (pass@1 / pass@k_max with
    intervals, outcome-only next to them). Arrays: pass@1 and pass@k_max per checkpoint and set."""
    knobs = cfg.rlvr
    col = rm.collect(cfg.base, knobs, ARMS, cfg.seeds, runs)
    ckpts = tuple(range(len(knobs.checkpoints)))
    rows = [r for s in SETS if col.seeds for r in rm.arm_rows(col, knobs, "base", s)
            + rm.arm_rows(col, knobs, "grpo", s, ckpts)]
    verdicts, metrics, arrays = _judge(cfg, col)
    paper = {"claim": "pass@1 rises with RL steps while pass@256 falls (Table 3: 150 / 300 / 450 steps)",
             "figure": "Table 3", "seeds_judged": col.seeds, "seeds_left_out": col.skipped,
             "splits": rm.split_record(col), "gate": dr.gates(runs, cfg.seeds)}
    return Outcome.judged(metrics, rows, paper, verdicts, arrays)


def _series(col: rm.Collected, knobs: rr.RLVRKnobs, s: str, k: int) -> list[float]:
    n = knobs.eval_samples
    return [float(rm.pass_rows(col.pooled("grpo", s, ckpt=c)[0], n, k).mean()) for c in range(len(knobs.checkpoints))]


def _trend(col, knobs, s: str, k: int, sign: float, what: str, paper: str, metrics: dict) -> Verdict:
    """sign +1: rises (steps >= 0, last - first above 0); -1: falls."""
    n, last = knobs.eval_samples, len(knobs.checkpoints) - 1
    series = _series(col, knobs, s, k)
    ca, cl = col.pooled("grpo", s, ckpt=last)
    cf, _ = col.pooled("grpo", s, ckpt=0)
    g = rm.paired(sign * rm.pass_rows(ca, n, k), sign * rm.pass_rows(cf, n, k), clusters=cl)
    monotone = all(sign * (b - a) >= 0 for a, b in zip(series, series[1:]))
    metrics.update({f"{s}_pass{k}_step{st}": v for st, v in zip(knobs.checkpoints, series)})
    rr.gain_metrics(metrics, f"{s}_pass{k}_last_minus_first", dataclasses.replace(
        g, diff=sign * g.diff, lo=min(sign * g.lo, sign * g.hi), hi=max(sign * g.lo, sign * g.hi)))
    ok = monotone and g.lo > 0
    text = (f"{what} at steps {list(knobs.checkpoints)}: {', '.join(f'{v:.3f}' for v in series)} "
            f"({'monotone' if monotone else 'not monotone'}); last minus first {sign * g.diff:+.3f}, 95% interval "
            f"[{min(sign * g.lo, sign * g.hi):+.3f}, {max(sign * g.lo, sign * g.hi):+.3f}] "
            f"(must be {'above' if sign > 0 else 'below'} 0, each step {'>=' if sign > 0 else '<='} the last)")
    return Verdict(PASS if ok else FAIL, g.diff, 0.0, g.lo, g.se, text, paper=paper)


def _judge(cfg: Config, col: rm.Collected) -> tuple[dict, dict, dict]:
    knobs = cfg.rlvr
    arrays = {"steps_C": np.asarray(knobs.checkpoints)}
    why = rm.why_not_judged(col, knobs)
    if why is not None:
        return {n: not_judged(why) for n in claim_names()}, {}, arrays
    verdicts, metrics, n = {}, {}, knobs.eval_samples
    for s in SETS:
        verdicts[f"pass1_rises_{s}"] = _trend(col, knobs, s, 1, +1.0, f"{s}: pass@1", "pass@1 rises with steps", metrics)
        verdicts[f"passk_falls_{s}"] = judged_if(rm.raised_pass1(col, "grpo", s, n)[0], _trend(
            col, knobs, s, knobs.k_max, -1.0, f"{s}: pass@{knobs.k_max}", "pass@k_max falls with steps", metrics))
        for k, name in ((1, "pass1"), (knobs.k_max, "passk")):
            arrays[f"{s}_{name}_C"] = np.asarray(_series(col, knobs, s, k))
            arrays[f"{s}_{name}_base"] = np.asarray(rm.pass_rows(col.pooled("base", s)[0], n, k).mean())
            metrics[f"{s}_base_{name}"] = float(arrays[f"{s}_{name}_base"])
    return verdicts, metrics, arrays


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    steps = arrays["steps_C"]
    fig, axes = plotting.subplots(1, 2, width=4.2, height=3.6)
    for j, (name, label) in enumerate((("pass1", "pass@1"), ("passk", "pass@k_max"))):
        ax = axes[0, j]
        for i, s in enumerate(SETS):
            if f"{s}_{name}_C" not in arrays:
                continue
            ax.plot(steps, arrays[f"{s}_{name}_C"], marker="o", color=f"C{i}", label=f"GRPO, {s}")
            ax.axhline(float(arrays[f"{s}_{name}_base"]), color=f"C{i}", ls="--", lw=0.8, label=f"base, {s}")
        ax.set_xlabel("GRPO steps")
        ax.set_ylabel(f"process-verified {label}")
        ax.legend(fontsize=6)
    fig.suptitle(f"{ID}: pass@1 and pass@k_max over RL steps")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
