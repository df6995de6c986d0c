"""explore-historical: GRPO with historical (UCB) exploration bonuses over outcomes.

Song, Kempe and Munos (arXiv 2509.06941) §3.1 and Table 1 (spec `outcome_exploration.md` §3.1,
§7.3-7.5), at theory scale on DAG-lite (`rl/explore_runs.py`): from the shared stored base, on a
fixed training set of the calibrated edge band, GRPO and GRPO plus c * bonus with naive UCB
min(1, 1/sqrt(N)), UCB-Mean (leave-one-out baseline) and UCB-Con (b - b0) at b0 = 0.5 and 1, with
per-question count tables over all of training updated with the batch before the bonus (N >= 1),
gating and answer-token masking on and the bonus added after group normalisation (spec §8's
defaults). All arms share the questions, their order and the first step's samples; they differ only
in traced weights, so they are one vmapped program.
Claims (paired per test problem or per training question, pooled over judged seeds, cluster
bootstrap 95% intervals): `<arm>_beats_grpo_every_k` for each UCB arm: its test pass@k minus GRPO's
is above 0 at every k of (1, 8, k_max); `ucb_con_best_overall`: UCB-Con's (b0 of the config) mean
pass@k over k = 1..k_max beats GRPO's, naive UCB's and UCB-Mean's (interval above 0 against each;
the b0 = 1 arm is UCB-Con too); `ucb_solves_more_train` and
`ucb_con_solves_more_train`: more training questions solved at least once than GRPO at the final
budget; `ucb_rewards_new_wrong_answers`: naive UCB states more distinct answers than GRPO over
training on the questions neither ever solved (the paper's "keeps rewarding new wrong answers"),
judged with at least `min_unsolved` such questions. Learning off (lr 0) leaves every arm at the
base with the same test samples: every difference is 0 and no claim passes; epochs 0 judges nothing.
Measurements by run id: docs/results/explore-historical.md.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from theoryrl.core.config import check_seeds, require_int
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, Runs, Stage
from theoryrl.core.verdicts import FAIL, PASS, Verdict, judged_if, not_judged
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import explore_runs as er

ID = "explore-historical"
TITLE = "LM exploration: UCB bonuses over outcomes (naive, UCB-Mean, UCB-Con) against GRPO on test pass@k"
PAPER = "Song, Kempe, Munos 2509.06941, §3.1 / Table 1"
ARMS = ("grpo", "ucb", "ucb_mean", "ucb_con", "ucb_con:b0=1")
UCB_ARMS = ARMS[1:]


def claim_name(arm: str) -> str:
    return arm.replace(":b0=1", "_b0_1") + "_beats_grpo_every_k"


NAMES = tuple(claim_name(a) for a in UCB_ARMS) + ("ucb_con_best_overall", "ucb_solves_more_train",
                                                 "ucb_con_solves_more_train", "ucb_rewards_new_wrong_answers")


@dataclasses.dataclass(frozen=True)
class Config:
    base: dr.BaseSpec = dr.BaseSpec()
    explore: er.ExploreKnobs = er.ExploreKnobs()
    seeds: tuple[int, ...] = (42,)
    min_unsolved: int = 5

    def validate(self) -> None:
        self.base.validate()
        self.explore.validate()
        require_int(self.min_unsolved, "min_unsolved", 1, 1_000_000)
        check_seeds(self.seeds)


TIERS = {
    "quick": Config(),
    # spec §7.2-7.3: M = 1,024 edge questions, 30 epochs at G = 8, c = 0.2, b0 = 0.5 / 1, KL k3 1e-3
    "paper": Config(base=dr.PAPER_BASE,
                    explore=er.PAPER_EXPLORE,
                    seeds=(42, 43, 44)),
}


def stages(cfg: Config) -> list[Stage]:
    return er.stages(cfg, ARMS)


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: one per (seed, arm) (`explore_runs.arm_row`). Arrays: each arm's test pass@k curve
    (k = 1..k_max) and training solved share per budget."""
    col = er.collect(cfg.base, ARMS, cfg.seeds, runs)
    verdicts, metrics = _verdicts(cfg, col)
    paper = {"claim": "UCB variants beat GRPO on test pass@k at every k; UCB-Con is best overall; naive UCB "
                      "improves training coverage but can keep rewarding new wrong answers",
             "table": "Table 1", "seeds_judged": col.seeds, "seeds_left_out": col.skipped, "edge_bands": col.bands,
             "gate": dr.gates(runs, cfg.seeds)}
    return Outcome.judged(metrics, er.summary_rows(col, cfg.explore), paper, verdicts,
                          er.curve_arrays(col, ARMS, cfg.explore))


def _verdicts(cfg: Config, col: er.Collected) -> tuple[dict, dict]:
    knobs = cfg.explore
    why = er.why_not_judged(col, knobs)
    if why is not None:
        return {n: not_judged(why) for n in NAMES}, {}
    ks = sorted({1, min(8, knobs.k_max), knobs.k_max})
    metrics, v = {}, {}
    for arm in UCB_ARMS:
        gains = {k: er.test_gain(col, arm, "grpo", lambda t, k=k: er.pass_rows(t, k)) for k in ks}
        for k, g in gains.items():
            er.gain_metrics(metrics, f"{arm}_minus_grpo_pass{k}", g)
        worst = min(gains.values(), key=lambda g: g.lo)
        text = "; ".join(f"pass@{k} {g.diff:+.3f} [{g.lo:+.3f}, {g.hi:+.3f}]" for k, g in gains.items())
        v[claim_name(arm)] = Verdict(PASS if worst.lo > 0 else FAIL, worst.diff, 0.0, worst.lo, worst.se,
                                     f"{arm} minus GRPO, test pass@k (every interval must be above 0): {text}",
                                     paper="UCB variants beat GRPO on test pass@k at every k")
    auc = lambda t: er.pass_auc_rows(t, knobs.k_max)  # noqa: E731
    others = {a: er.test_gain(col, "ucb_con", a, auc) for a in ("grpo", "ucb", "ucb_mean")}
    for a, g in others.items():
        er.gain_metrics(metrics, f"ucb_con_minus_{a}_pass_auc", g)
    worst = min(others.values(), key=lambda g: g.lo)
    v["ucb_con_best_overall"] = Verdict(
        PASS if worst.lo > 0 else FAIL, worst.diff, 0.0, worst.lo, worst.se,
        f"UCB-Con (b0 = {knobs.b0}) minus each other arm, mean test pass@k over k = 1..{knobs.k_max} (every interval "
        "must be above 0): " + "; ".join(f"vs {a} {g.diff:+.3f} [{g.lo:+.3f}, {g.hi:+.3f}]" for a, g in others.items()),
        paper="UCB-Con is the best variant overall")
    last = {arm: {s: er.coverage(col.runs[(s, arm)]) for s in col.seeds} for arm in ("grpo", "ucb", "ucb_con")}
    for arm, name in (("ucb", "ucb_solves_more_train"), ("ucb_con", "ucb_con_solves_more_train")):
        g = er.paired({s: last[arm][s]["solved"][-1] for s in col.seeds},
                      {s: last["grpo"][s]["solved"][-1] for s in col.seeds}, col.seeds)
        er.gain_metrics(metrics, f"{arm}_minus_grpo_train_solved", g)
        v[name] = er.above_zero(g, f"{arm} minus GRPO, share of training questions solved at least once",
                                "UCB improves training coverage (more questions solved)")
    neither = {s: (last["ucb"][s]["solved"][-1] < 0.5) & (last["grpo"][s]["solved"][-1] < 0.5) for s in col.seeds}
    g = er.paired({s: np.where(neither[s], last["ucb"][s]["distinct"][-1], np.nan) for s in col.seeds},
                  {s: np.where(neither[s], last["grpo"][s]["distinct"][-1], np.nan) for s in col.seeds}, col.seeds)
    er.gain_metrics(metrics, "ucb_minus_grpo_train_distinct_never_solved", g)
    v["ucb_rewards_new_wrong_answers"] = judged_if(
        {f"at least {cfg.min_unsolved} training questions neither naive UCB nor GRPO ever solved (there are "
         f"{g.num_problems})": g.num_problems >= cfg.min_unsolved},
        er.above_zero(g, "naive UCB minus GRPO, distinct answers over training on questions neither ever solved",
                      "naive UCB can keep rewarding new wrong answers"))
    return v, metrics


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
    fig, axes = plotting.subplots(1, 2, width=4.6, height=3.8)
    for j, arm in enumerate(arrays["arms_A"]):
        if "test_passk_AxK" not in arrays:
            break
        style = dict(color="k", ls="--") if arm == "grpo" else dict(color=f"C{j}")
        curve = arrays["test_passk_AxK"][j]
        axes[0, 0].plot(np.arange(1, curve.size + 1), curve, label=str(arm), **style)
        axes[0, 1].plot(arrays["budget_C"], arrays["train_solved_AxC"][j], marker="o", label=str(arm), **style)
    axes[0, 0].set(xscale="log", xlabel="k", ylabel="test pass@k (process-verified)")
    axes[0, 1].set(xlabel="samples per training question k = G x epochs", ylabel="training questions solved")
    for ax in axes[0]:
        ax.legend(fontsize=7)
    fig.suptitle(f"{ID}: c = {cfg['explore']['c']}, b0 = {cfg['explore']['b0']} (and 1)")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
