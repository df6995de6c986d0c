"""explore-batch: GRPO with the batch exploration penalty, alone and with historical UCB-Con.

Song, Kempe and Munos (arXiv 2509.06941) §3.2 and Table 2 (spec `outcome_exploration.md` §3.2, §5,
§7.3-7.5), at theory scale on DAG-lite (`rl/explore_runs.py`): from the shared stored base, on a
fixed training set of the calibrated edge band, GRPO; GRPO plus the batch penalty
-(c_batch / G) #{j != i: a_j = a_i}; GRPO plus UCB-Con; and both together (the issue's
combination). Gating and answer-token masking on, the term after group normalisation. Every arm is
then sampled on the same held-out test problems with the same keys.
Claims (batch vs GRPO, paired per test problem, pooled over judged seeds, cluster-bootstrap 95%
intervals): `batch_more_distinct_unsolved`: more distinct answers in a batch of diff_k (the unbiased
E[diff@k] from n samples) on the test problems neither arm solved in its n samples (interval above
0; judged with at least `min_unsolved` such problems); `batch_higher_pass_at_kmax`: pass@k_max above
GRPO's; `batch_pass1_unchanged`: pass@1 within +-`flat_margin` of GRPO's (the interval inside), an
equivalence judged only where the penalty changed the model (batch_higher_pass_at_kmax or
batch_more_distinct_unsolved passes), since two arms that learned nothing are equal too, and only
where the interval is narrower than the margin (a wide one cannot show equality);
`batch_entropy_incorrect_higher`: mean token entropy of incorrect samples above GRPO's (paper Table
1: 0.153 vs 0.096). UCB-Con and the combination are measured (rows, metrics), with no claim of
their own here. Learning off (lr 0): every arm is the base with the same test samples, every
difference is 0, the two "more" claims fail and the equivalence is not judged; epochs 0 judges
nothing.
Measurements by run id: docs/results/explore-batch.md.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from theoryrl.core.config import check_seeds, require_float, require_int
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, Runs, Stage
from theoryrl.core.verdicts import FAIL, PASS, Verdict, judged_if, not_judged
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import explore_runs as er

ID = "explore-batch"
TITLE = "LM exploration: the batch penalty keeps test answers diverse and raises large-k pass@k at equal pass@1"
PAPER = "Song, Kempe, Munos 2509.06941, §3.2 / Table 2"
ARMS = ("grpo", "batch", "ucb_con", "ucb_con+batch")
NAMES = ("batch_more_distinct_unsolved", "batch_higher_pass_at_kmax", "batch_pass1_unchanged",
         "batch_entropy_incorrect_higher")


@dataclasses.dataclass(frozen=True)
class Config:
    base: dr.BaseSpec = dr.BaseSpec()
    explore: er.ExploreKnobs = er.ExploreKnobs()
    seeds: tuple[int, ...] = (42,)
    min_unsolved: int = 5
    flat_margin: float = 0.05  # "about the same" pass@1: the interval of the difference inside +-this

    def validate(self) -> None:
        self.base.validate()
        self.explore.validate()
        require_int(self.min_unsolved, "min_unsolved", 1, 1_000_000)
        require_float(self.flat_margin, "flat_margin", 0.0, 1.0, lo_open=True)
        check_seeds(self.seeds)


TIERS = {
    "quick": Config(),
    "paper": Config(base=dr.PAPER_BASE,
                    explore=er.PAPER_EXPLORE,
                    seeds=(42, 43, 44)),
}


def stages(cfg: Config) -> list[Stage]:
    return er.stages(cfg, ARMS)


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: one per (seed, arm) (`explore_runs.arm_row`: E[diff@diff_k] on solved / unsolved / all
    test problems, entropies on correct / incorrect / all samples, pass@k). Arrays: test pass@k
    curves and training curves per arm."""
    col = er.collect(cfg.base, ARMS, cfg.seeds, runs)
    verdicts, metrics = _verdicts(cfg, col)
    paper = {"claim": "the batch penalty gives the most distinct answers on unsolved questions and better large-k "
                      "pass@k at about the same pass@1, with higher entropy on incorrect generations",
             "table": "Table 2 (and Table 1's entropies)", "seeds_judged": col.seeds, "seeds_left_out": col.skipped,
             "edge_bands": col.bands, "gate": dr.gates(runs, cfg.seeds)}
    return Outcome.judged(metrics, er.summary_rows(col, cfg.explore), paper, verdicts,
                          er.curve_arrays(col, ARMS, cfg.explore))


def _verdicts(cfg: Config, col: er.Collected) -> tuple[dict, dict]:
    knobs = cfg.explore
    why = er.why_not_judged(col, knobs)
    if why is not None:
        return {n: not_judged(why) for n in NAMES}, {}
    metrics, v = {}, {}
    k, m = knobs.diff_k, cfg.flat_margin

    def diff_unsolved(t, other):
        return np.where(er.solved_rows(t) | er.solved_rows(other), np.nan, er.diff_rows(t, k))

    tables = {a: {s: er.table_of(col.runs[(s, a)]) for s in col.seeds} for a in ("grpo", "batch")}
    g_div = er.paired({s: diff_unsolved(tables["batch"][s], tables["grpo"][s]) for s in col.seeds},
                      {s: diff_unsolved(tables["grpo"][s], tables["batch"][s]) for s in col.seeds}, col.seeds)
    er.gain_metrics(metrics, f"batch_minus_grpo_diff{k}_unsolved", g_div)
    v["batch_more_distinct_unsolved"] = judged_if(
        {f"at least {cfg.min_unsolved} test problems neither arm solved (there are {g_div.num_problems})":
         g_div.num_problems >= cfg.min_unsolved},
        er.above_zero(g_div, f"batch minus GRPO, E[diff@{k}] on test problems neither solved",
                      "Batch: 5.39 vs 4.81 distinct answers in 8 on unsolved questions"))
    g_k = er.test_gain(col, "batch", "grpo", lambda t: er.pass_rows(t, knobs.k_max))
    er.gain_metrics(metrics, f"batch_minus_grpo_pass{knobs.k_max}", g_k)
    v["batch_higher_pass_at_kmax"] = er.above_zero(g_k, f"batch minus GRPO, test pass@{knobs.k_max}",
                                                   "Batch has better large-k pass@k late in training")
    g_1 = er.test_gain(col, "batch", "grpo", lambda t: er.pass_rows(t, 1))
    er.gain_metrics(metrics, "batch_minus_grpo_pass1", g_1)
    inside = -m < g_1.lo and g_1.hi < m
    v["batch_pass1_unchanged"] = judged_if(
        {"the batch penalty changed the model: batch_higher_pass_at_kmax or batch_more_distinct_unsolved passes":
         v["batch_higher_pass_at_kmax"].passed or bool(v["batch_more_distinct_unsolved"].passed),
         # an interval wider than the margin cannot show "about the same" whatever the truth
         f"the test set resolves +-{m} (the interval's half-width must be below {m}; it is "
         f"{(g_1.hi - g_1.lo) / 2:.3f})":
         (g_1.hi - g_1.lo) / 2 < m},
        Verdict(PASS if inside else FAIL, g_1.diff, m, m - max(abs(g_1.lo), abs(g_1.hi)), g_1.se,
                er.gain_text(g_1, "batch minus GRPO, test pass@1", f"inside +-{m}"),
                paper="pass@1 about the same as GRPO"))
    g_e = er.test_gain(col, "batch", "grpo", er.entropy_incorrect_rows)
    er.gain_metrics(metrics, "batch_minus_grpo_entropy_incorrect", g_e)
    v["batch_entropy_incorrect_higher"] = er.above_zero(
        g_e, "batch minus GRPO, mean token entropy of incorrect test samples",
        "Batch: entropy 0.153 on incorrect generations vs GRPO's 0.096")
    for arm in ("ucb_con", "ucb_con+batch"):
        for kk in (1, knobs.k_max):
            er.gain_metrics(metrics, f"{arm}_minus_grpo_pass{kk}",
                            er.test_gain(col, arm, "grpo", lambda t, kk=kk: er.pass_rows(t, kk)))
    return v, metrics


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
    k = cfg["explore"]["diff_k"]
    fig, axes = plotting.subplots(1, 3, width=4.2, height=3.8)
    arms = [str(a) for a in arrays["arms_A"]]
    for j, arm in enumerate(arms):
        if "test_passk_AxK" not in arrays:
            break
        style = dict(color="k", ls="--") if arm == "grpo" else dict(color=f"C{j}")
        curve = arrays["test_passk_AxK"][j]
        axes[0, 0].plot(np.arange(1, curve.size + 1), curve, label=arm, **style)
    axes[0, 0].set(xscale="log", xlabel="k", ylabel="test pass@k (process-verified)")
    axes[0, 0].legend(fontsize=7)
    rows = [r for r in summary["rows"]]
    width = 0.8 / max(len(arms), 1)
    for panel, (keys, label) in enumerate(((("solved", "unsolved", "all"), f"E[distinct answers in {k}]"),
                                           (("correct", "incorrect", "all"), "mean token entropy"))):
        ax = axes[0, panel + 1]
        for j, arm in enumerate(arms):
            vals = [np.nanmean([r[f"test_diff{k}_{x}" if panel == 0 else f"test_entropy_{x}"] for r in rows
                                if r["arm"] == arm] or [np.nan]) for x in keys]
            ax.bar(np.arange(len(keys)) + j * width, vals, width, label=arm, color="0.3" if arm == "grpo" else f"C{j}")
        ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, keys)
        ax.set_ylabel(label)
        ax.legend(fontsize=6)
    fig.suptitle(f"{ID}: test problems of the edge band")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
