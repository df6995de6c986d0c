"""rlvr-passk-crossing: RL raises pass@1 above the base but the base wins at large k.

Yue et al. (arXiv 2504.13837) Figs. 1-2 (spec `rlvr_limits.md` §2.1, §6), at theory scale on DAG-lite
(`rl/rlvr_runs.py`). From the shared stored base: a fixed train set of the op band where the base's
process-verified pass@1 is near 10% and pass@k near 65% (calibrated on the base's own table), an
in-domain test set of the same band and an easier out-of-domain set one op lower (pass@1 nearest
35%). GRPO with the process-verified ("strict") reward and no KL trains on the train set; then the
base and the final RL model sample n = eval_samples completions of every problem of the three sets
with the same keys (T = 0.6, top-p 0.95), and the unbiased pass@k curves (k = 1..k_max) are compared.
Claims, per set (paired per problem, cluster bootstrap over seeds, 95% intervals):
`rl_above_base_at_1_<set>` (RL minus base pass@1 above 0) and `base_above_rl_at_kmax_<set>` (base
minus RL pass@k_max above 0, beyond the interval; judged only where RL raised pass@1 on that set,
the paper's premise: a collapsed RL model would pass it trivially). The crossing k* (the smallest k
where the base catches up) is reported with a bootstrap interval, not judged. n = 2 k_max at the quick tier, since
the official code's users could not see the crossing at n = 128 (spec §5). Learning off (lr 0)
makes the RL model the base: identical samples, every gain 0, no claim passes; steps 0 judges none.
Outcome-only (answer-correct) curves are reported next to the process-verified ones.
Measurements by run id: docs/results/rlvr-passk-crossing.md.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from theoryrl.core.config import check_seeds
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, Runs, Stage
from theoryrl.core.verdicts import FAIL, PASS, Verdict, judged_if, not_judged
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import rlvr_metrics as rm
from theoryrl.rl import rlvr_runs as rr

ID = "rlvr-passk-crossing"
TITLE = "RLVR limits: RL beats the base at pass@1, the base catches up and wins at large k"
PAPER = "Yue et al. 2504.13837, Figs. 1-2"
ARMS = ("base", "grpo")


def claim_names(sets=rr.SPLITS) -> tuple[str, ...]:
    return tuple(f"{c}_{s}" for s in sets for c in ("rl_above_base_at_1", "base_above_rl_at_kmax"))


@dataclasses.dataclass(frozen=True)
class Config:
    base: dr.BaseSpec = dr.BaseSpec()
    rlvr: rr.RLVRKnobs = rr.RLVRKnobs()
    seeds: tuple[int, ...] = (42,)

    def validate(self) -> None:
        self.base.validate()
        self.rlvr.validate()
        check_seeds(self.seeds)


TIERS = {
    "quick": Config(),
    "paper": Config(base=dr.PAPER_BASE, rlvr=dataclasses.replace(rr.PAPER_RLVR, eval_samples=512, checkpoints=(450,)),
                    seeds=(42, 43, 44)),
}


def stages(cfg: Config) -> list[Stage]:
    return [dr.pretrain_stage(cfg.base, cfg.seeds),
            Stage("rlvr", lambda runs: rr.plans(cfg.base, cfg.rlvr, ARMS, cfg.seeds, runs, rr.stage_static(cfg)))]


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: per arm and set, pass@1 / pass@k_max (process-verified, with intervals; outcome-only
    next to them). Arrays: the pooled pass@k curves of both arms on every set, with the RL-minus-base
    interval per k, and k* per set."""
    knobs = cfg.rlvr
    col = rm.collect(cfg.base, knobs, ARMS, cfg.seeds, runs)
    verdicts, metrics, arrays = _judge(cfg, col)
    rows = [r for s in rr.SPLITS if rm.has_set(col, s) for a in ARMS for r in rm.arm_rows(col, knobs, a, s)]
    paper = {"claim": "RL-trained models beat their base at pass@1 but the base reaches a higher pass@k at large k "
                      "(crossing at k of tens)", "figure": "Figs. 1-2", "seeds_judged": col.seeds,
             "seeds_left_out": col.skipped, "splits": rm.split_record(col), "gate": dr.gates(runs, cfg.seeds)}
    return Outcome.judged(metrics, rows, paper, verdicts, arrays)


def _judge(cfg: Config, col: rm.Collected) -> tuple[dict, dict, dict]:
    knobs = cfg.rlvr
    why = rm.why_not_judged(col, knobs)
    arrays = {"k_K": np.arange(1, knobs.k_max + 1)}
    if why is not None:
        return {n: not_judged(why) for n in claim_names()}, {}, arrays
    verdicts, metrics, n = {}, {}, knobs.eval_samples
    for s in rr.SPLITS:
        if not rm.has_set(col, s):
            for name in claim_names((s,)):
                verdicts[name] = not_judged(f"no {s} set: no op lies below the train band {col.splits[col.seeds[0]].train}")
            continue
        g1 = rm.gain(col, "grpo", "base", s, 1, n=n)
        gk = rm.gain(col, "base", "grpo", s, knobs.k_max, n=n)
        verdicts[f"rl_above_base_at_1_{s}"] = _above(g1, f"{s}: RL minus base pass@1", "RL raises pass@1")
        verdicts[f"base_above_rl_at_kmax_{s}"] = judged_if(rm.raised_pass1(col, "grpo", s, n)[0], _above(
            gk, f"{s}: base minus RL pass@{knobs.k_max}", "the base wins at large k"))
        rr.gain_metrics(metrics, f"{s}_rl_minus_base_pass1", g1)
        rr.gain_metrics(metrics, f"{s}_base_minus_rl_pass{knobs.k_max}", gk)
        cb, cl = col.pooled("base", s)
        cr, _ = col.pooled("grpo", s)
        base_NxK, rl_NxK = rm.curve_rows(cb, n, knobs.k_max), rm.curve_rows(cr, n, knobs.k_max)
        cross = rm.crossing_ci(base_NxK, rl_NxK, cl)
        metrics.update({f"{s}_k_star": cross["k_star"], f"{s}_k_star_lo": cross["lo"], f"{s}_k_star_hi": cross["hi"],
                        f"{s}_frac_resamples_crossing": cross["frac_crossing"]})
        diff = rm.diff_curve_ci(rl_NxK, base_NxK, cl)
        arrays.update({f"{s}_base_K": base_NxK.mean(axis=0), f"{s}_grpo_K": rl_NxK.mean(axis=0),
                       f"{s}_diff_lo_K": diff[1], f"{s}_diff_hi_K": diff[2],
                       f"{s}_k_star_ci": np.array([cross["k_star"], cross["lo"], cross["hi"]])})
        for arm in ARMS:
            co, _ = col.pooled(arm, s, kind="answer_correct")
            arrays[f"{s}_{arm}_outcome_K"] = rm.curve_rows(co, n, knobs.k_max).mean(axis=0)
    return verdicts, metrics, arrays


def _above(g: dr.Gain, what: str, paper: str) -> Verdict:
    return Verdict(PASS if g.lo > 0 else FAIL, g.diff, 0.0, g.lo, g.se,
                   f"{what}: {g.diff:+.3f}, 95% interval [{g.lo:+.3f}, {g.hi:+.3f}] (must be above 0)", paper=paper)


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    k = arrays["k_K"]
    sets = [s for s in rr.SPLITS if f"{s}_base_K" in arrays]
    fig, axes = plotting.subplots(1, max(len(sets), 1), width=4.2, height=3.8)
    titles = {"train": "train set", "id": "in-domain test", "ood": "easier out-of-domain test"}
    for j, s in enumerate(sets):
        ax = axes[0, j]
        ax.plot(k, arrays[f"{s}_base_K"], color="k", ls="--", label="base (process-verified)")
        ax.plot(k, arrays[f"{s}_grpo_K"], color="C0", label="GRPO (process-verified)")
        ax.plot(k, arrays[f"{s}_base_outcome_K"], color="k", ls=":", alpha=0.5, label="base (outcome only)")
        ax.plot(k, arrays[f"{s}_grpo_outcome_K"], color="C0", ls=":", alpha=0.5, label="GRPO (outcome only)")
        ks, lo, hi = arrays[f"{s}_k_star_ci"]
        if np.isfinite(ks):
            ax.axvline(ks, color="C3", lw=0.8, label=f"k* = {ks:g} [{lo:g}, {hi:g}]")
        else:
            ax.text(0.03, 0.03, f"no crossing for k <= {k[-1]} (k* interval [{lo:g}, {hi:g}])", fontsize=7,
                    transform=ax.transAxes)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(titles[s])
        ax.legend(fontsize=6)
    fig.suptitle(f"{ID}: base vs GRPO pass@k")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
