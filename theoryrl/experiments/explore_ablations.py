"""explore-ablations: gating, answer-token masking and the bonus's place, on one exploration variant.

Song, Kempe and Munos (arXiv 2509.06941) §3.3 (spec `outcome_exploration.md` §3.3 and §8's open
decisions), at theory scale on DAG-lite (`rl/explore_runs.py`): from the shared stored base, on a
fixed training set of the calibrated edge band, one variant (`variant`, UCB-Con by default: the
paper's best) with spec §8's defaults (gating on, masking on, the term after group normalisation)
and three single changes: gating off (":nogate"), masking off (":nomask": the term also reaches the
answer tokens) and the term before normalisation (":before": A = norm(r + c b)). All four share
questions, order and keys and differ only in traced weights (one vmapped program).
Claim: `masking_off_games_answer`: with masking off the model can game the bonus by changing only
the stated answer, measured on the held-out test samples as the share of sample pairs with the
same reasoning (tokens before the answer marker) and different answers, per test problem, masking
off minus on (paired, pooled over judged seeds, cluster bootstrap; interval above 0).
Gating and the bonus's place have no claim in the paper (§3.3 gives them as implementation details
and §8 calls the place unclear); their effects on test pass@1 / pass@k_max / mean pass@k, training
coverage and the answer-only rate are reported as paired differences with intervals.
Learning off (lr 0): every arm is the base with the same samples, the difference is 0 and the claim
fails; epochs 0 judges nothing.
Measurements by run id: docs/results/explore-ablations.md.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from theoryrl.core.config import check_seeds, require
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, Runs, Stage
from theoryrl.core.verdicts import not_judged
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import explore_runs as er
from theoryrl.rl import lm_exploration as lx

ID = "explore-ablations"
TITLE = "LM exploration: gating, answer-token masking and the bonus before / after normalisation"
PAPER = "Song, Kempe, Munos 2509.06941, §3.3"
CHANGES = ("nogate", "nomask", "before")
NAMES = ("masking_off_games_answer",)


@dataclasses.dataclass(frozen=True)
class Config:
    base: dr.BaseSpec = dr.BaseSpec()
    explore: er.ExploreKnobs = er.ExploreKnobs()
    variant: str = "ucb_con"
    seeds: tuple[int, ...] = (42,)

    @property
    def arms(self) -> tuple[str, ...]:
        return (self.variant,) + tuple(f"{self.variant}:{c}" for c in CHANGES)

    def validate(self) -> None:
        self.base.validate()
        self.explore.validate()
        require(self.variant in lx.VARIANTS and self.variant != "grpo", "variant", self.variant,
                " | ".join(v for v in lx.VARIANTS if v != "grpo") + " (an exploration variant to ablate)")
        er.check_arms(self.arms)
        check_seeds(self.seeds)


TIERS = {
    "quick": Config(),
    "paper": Config(base=dr.PAPER_BASE,
                    explore=er.PAPER_EXPLORE,
                    seeds=(42, 43, 44)),
}


def stages(cfg: Config) -> list[Stage]:
    return er.stages(cfg, cfg.arms)


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: one per (seed, arm) (`explore_runs.arm_row`, with the answer-only rate). Metrics: each
    change minus the default on test pass@1, pass@k_max, mean pass@k, training solved share and the
    answer-only rate. Arrays: test pass@k and training curves per arm."""
    col = er.collect(cfg.base, cfg.arms, cfg.seeds, runs)
    verdicts, metrics = _verdicts(cfg, col)
    paper = {"claim": "masking the exploration advantage off the answer tokens stops the model gaming the bonus by "
                      "changing only the final answer; gating spares all-correct groups; before/after normalisation "
                      "is unclear", "section": "§3.3", "variant": cfg.variant, "seeds_judged": col.seeds,
             "seeds_left_out": col.skipped, "edge_bands": col.bands, "gate": dr.gates(runs, cfg.seeds)}
    return Outcome.judged(metrics, er.summary_rows(col, cfg.explore), paper, verdicts,
                          er.curve_arrays(col, cfg.arms, cfg.explore))


def _verdicts(cfg: Config, col: er.Collected) -> tuple[dict, dict]:
    knobs = cfg.explore
    why = er.why_not_judged(col, knobs)
    if why is not None:
        return {n: not_judged(why) for n in NAMES}, {}
    metrics, default = {}, cfg.variant
    measures = {"pass1": lambda t: er.pass_rows(t, 1), f"pass{knobs.k_max}": lambda t: er.pass_rows(t, knobs.k_max),
                "pass_auc": lambda t: er.pass_auc_rows(t, knobs.k_max), "answer_only": er.answer_only_rows}
    gains = {}
    for change in CHANGES:
        arm = f"{default}:{change}"
        for name, fn in measures.items():
            gains[(change, name)] = er.test_gain(col, arm, default, fn)
            er.gain_metrics(metrics, f"{change}_minus_default_{name}", gains[(change, name)])
        er.gain_metrics(metrics, f"{change}_minus_default_train_solved", er.paired(
            {s: er.coverage(col.runs[(s, arm)])["solved"][-1] for s in col.seeds},
            {s: er.coverage(col.runs[(s, default)])["solved"][-1] for s in col.seeds}, col.seeds))
    v = {"masking_off_games_answer": er.above_zero(
        gains[("nomask", "answer_only")],
        f"{default} masking off minus on, share of test sample pairs with the same reasoning and different answers",
        "without masking the model games the bonus by changing only the final answer")}
    return v, metrics


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    fig, axes = plotting.subplots(1, 2, width=4.6, height=3.8)
    arms = [str(a) for a in arrays["arms_A"]]
    for j, arm in enumerate(arms):
        if "test_passk_AxK" not in arrays:
            break
        curve = arrays["test_passk_AxK"][j]
        axes[0, 0].plot(np.arange(1, curve.size + 1), curve, label=arm, color="k" if j == 0 else f"C{j}")
    axes[0, 0].set(xscale="log", xlabel="k", ylabel="test pass@k (process-verified)")
    axes[0, 0].legend(fontsize=7)
    rates = [np.nanmean([r["test_answer_only_rate"] for r in summary["rows"] if r["arm"] == arm] or [np.nan])
             for arm in arms]
    axes[0, 1].bar(np.arange(len(arms)), rates, color=["k"] + [f"C{j}" for j in range(1, len(arms))])
    axes[0, 1].set_xticks(np.arange(len(arms)), arms, rotation=20, fontsize=7)
    axes[0, 1].set_ylabel("same reasoning, other answer (share)")
    fig.suptitle(f"{ID}: one change at a time from {arms[0] if arms else ''}")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
