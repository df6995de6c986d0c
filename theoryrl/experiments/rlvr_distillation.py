"""rlvr-distillation: SFT on a teacher's traces lifts pass@k at every k; RL does not lift it at large k.

Yue et al. (arXiv 2504.13837), distillation vs RLVR (spec `rlvr_limits.md` §3.6, §6.3), at theory scale on
DAG-lite (`rl/rlvr_runs.py`, `rl/rlvr_traces.py`). From the shared stored base and the splits of
`rlvr-passk-crossing`, three arms: the base (sampled only), GRPO on the fixed train set (process-verified
reward, no KL), and SFT from the base on the same train problems' gold solutions written in the
"latest" order: valid traces the base would not write, the stand-in for a stronger teacher's
(DeepSeek-R1 distilled into Qwen2.5-Math-7B in the paper). All arms sample n = eval_samples completions
of every problem of every set with the same keys (T = 0.6, top-p 0.95); pass@k is the unbiased estimate.
Claims (ID test set, paired per problem, cluster bootstrap over seeds, 95% intervals):
`sft_above_base_every_k`: SFT minus base pass@k has its interval above 0 at every k = 1..k_max
(the paper: the distilled curve lies above the base's at every k; k = 1, round(sqrt(k_max)) and
k_max are reported).
`rl_not_above_base_at_kmax`: RL minus base pass@k_max has its interval's lower end at or below 0 (RL
does not expand the boundary). It is judged only with its positive control, SFT's pass@k_max gain
above 0 in the same run (the measurement can see a gain at k_max), and only if RL learned (RL minus
base pass@1 above 0). SFT steps 0 makes SFT the base (identical samples, gains 0): the first claim
fails; RL steps 0 leaves the second not judged; no usable seed judges neither.
Curves of all three arms on every set, with SFT-minus-base intervals per k, are in the arrays.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from theoryrl.core.config import check_seeds, require
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, Runs, Stage
from theoryrl.core.verdicts import FAIL, PASS, Verdict, not_judged
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import rlvr_metrics as rm
from theoryrl.rl import rlvr_runs as rr
from theoryrl.rl import rlvr_traces as rt

ID = "rlvr-distillation"
TITLE = "RLVR limits: SFT on a teacher's traces lifts pass@k at every k, RL does not lift pass@k_max"
PAPER = "Yue et al. 2504.13837, distillation vs RLVR (spec §3.6)"
RL_ARMS = ("base", "grpo")
ARMS = RL_ARMS + ("sft",)
CLAIMS = ("sft_above_base_every_k", "rl_not_above_base_at_kmax")


@dataclasses.dataclass(frozen=True)
class Config:
    base: dr.BaseSpec = dr.BaseSpec()
    rlvr: rr.RLVRKnobs = rr.RLVRKnobs()
    sft: rt.SFTKnobs = rt.SFTKnobs()
    seeds: tuple[int, ...] = (42,)

    def validate(self) -> None:
        self.base.validate()
        self.rlvr.validate()
        self.sft.validate()
        require("id" in self.rlvr.eval_splits, "rlvr.eval_splits", self.rlvr.eval_splits,
                "a list with id: every claim is judged on the ID set")
        require(self.sft.batch <= self.sft.pool_size(self.rlvr), "sft.batch", self.sft.batch,
                f"at most the SFT pool's {self.sft.pool_size(self.rlvr)} problems (sft.pool, or rlvr.train_problems "
                "when 0; each step draws distinct ones)")
        check_seeds(self.seeds)


# spec §6.3: the crossing experiment's paper tier; SFT 2,000 steps of 128 traces (~128 epochs of the 2,000 problems)
TIERS = {
    "quick": Config(),
    "paper": Config(base=dr.PAPER_BASE, rlvr=dataclasses.replace(rr.PAPER_RLVR, checkpoints=(450,)),
                    sft=rt.SFTKnobs(steps=2000, chunk=100, batch=128, lr=1e-4, warmup=100), seeds=(42, 43, 44)),
}


def stages(cfg: Config) -> list[Stage]:
    static = rr.stage_static(cfg)

    def plans(runs):
        return (rr.plans(cfg.base, cfg.rlvr, RL_ARMS, cfg.seeds, runs, static)
                + rt.sft_plans(cfg.base, cfg.rlvr, cfg.sft, cfg.seeds, runs, static))

    return [dr.pretrain_stage(cfg.base, cfg.seeds), Stage("rlvr", plans)]


def judged_ks(k_max: int) -> tuple[int, ...]:
    """k = 1, round(sqrt(k_max)) and k_max, distinct and increasing (the reported ones)."""
    return tuple(sorted({1, max(1, round(math.sqrt(k_max))), k_max}))


def sft_verdict(gains: dict, shown=None) -> Verdict:
    """gains: k -> SFT minus base Gain (every k judged); pass iff every interval lies above 0 (margin:
    the smallest lo). The reason lists the `shown` ks and the worst one."""
    worst = min(gains, key=lambda k: gains[k].lo)
    ks = sorted(set(shown or gains) | {worst})
    text = "; ".join(f"k={k}: {gains[k].diff:+.3f} [{gains[k].lo:+.3f}, {gains[k].hi:+.3f}]" for k in ks)
    ok = all(g.lo > 0 for g in gains.values())
    return Verdict(PASS if ok else FAIL, gains[worst].diff, 0.0, gains[worst].lo, gains[worst].se,
                   f"ID: SFT minus base pass@k, {text} (every interval must be above 0)",
                   paper="the distilled model's pass@k lies above the base's at every k (spec §3.6)")


def rl_verdict(g_rl: dr.Gain, g_sft: dr.Gain, g_pass1: dr.Gain, k_max: int) -> Verdict:
    """Pass iff RL minus base pass@k_max has lo <= 0; needs SFT's pass@k_max gain above 0 (positive
    control) and RL's pass@1 gain above 0 (RL learned)."""
    if not g_sft.lo > 0:
        return not_judged(f"no positive control: SFT minus base pass@{k_max} {g_sft.diff:+.3f}, 95% interval "
                          f"[{g_sft.lo:+.3f}, {g_sft.hi:+.3f}] is not above 0", g_rl.diff, 0.0)
    if not g_pass1.lo > 0:
        return not_judged(f"RL did not learn: RL minus base pass@1 {g_pass1.diff:+.3f}, 95% interval "
                          f"[{g_pass1.lo:+.3f}, {g_pass1.hi:+.3f}] (must be above 0)", g_rl.diff, 0.0)
    return Verdict(PASS if g_rl.lo <= 0 else FAIL, g_rl.diff, 0.0, -g_rl.lo, g_rl.se,
                   f"ID: RL minus base pass@{k_max}: {g_rl.diff:+.3f}, 95% interval [{g_rl.lo:+.3f}, {g_rl.hi:+.3f}] "
                   f"(lower end must be <= 0; SFT's gain there {g_sft.diff:+.3f} [{g_sft.lo:+.3f}, {g_sft.hi:+.3f}])",
                   paper="RLVR models fall below the base at large k while the distilled model stays above")


def _judge(cfg: Config, col: rm.Collected) -> tuple[dict, dict, dict]:
    knobs, n = cfg.rlvr, cfg.rlvr.eval_samples
    arrays = {"k_K": np.arange(1, knobs.k_max + 1)}
    if not col.seeds:
        why = rm.why_not_judged(col, knobs)
        return {c: not_judged(why) for c in CLAIMS}, {}, arrays
    metrics = {}
    gains = {k: rm.gain(col, "sft", "base", "id", k, n=n) for k in range(1, knobs.k_max + 1)}
    for k in judged_ks(knobs.k_max):
        rr.gain_metrics(metrics, f"id_sft_minus_base_pass{k}", gains[k])
    verdicts = {"sft_above_base_every_k": sft_verdict(gains, judged_ks(knobs.k_max))}
    g_rl = rm.gain(col, "grpo", "base", "id", knobs.k_max, n=n)
    g1 = rm.gain(col, "grpo", "base", "id", 1, n=n)
    rr.gain_metrics(metrics, f"id_rl_minus_base_pass{knobs.k_max}", g_rl)
    rr.gain_metrics(metrics, "id_rl_minus_base_pass1", g1)
    if knobs.steps == 0:
        verdicts["rl_not_above_base_at_kmax"] = not_judged("rlvr.steps = 0: no RL step was taken")
    else:
        verdicts["rl_not_above_base_at_kmax"] = rl_verdict(g_rl, gains[knobs.k_max], g1, knobs.k_max)
    for s in rr.SPLITS:
        if not rm.has_set(col, s):
            continue
        per = {}
        for arm in ARMS:
            c, cl = col.pooled(arm, s)
            per[arm] = rm.curve_rows(c, n, knobs.k_max)
            arrays[f"{s}_{arm}_K"] = per[arm].mean(axis=0)
        _, lo, hi = rm.diff_curve_ci(per["sft"], per["base"], cl)
        arrays.update({f"{s}_sft_diff_lo_K": lo, f"{s}_sft_diff_hi_K": hi})
    return verdicts, metrics, arrays


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: per arm and set, pass@1 / pass@k_max (process-verified, with intervals; outcome-only
    next to them). Arrays: pooled pass@k curves of the three arms per set, SFT-minus-base intervals."""
    knobs = cfg.rlvr
    col = rm.collect(cfg.base, knobs, ARMS, cfg.seeds, runs)
    verdicts, metrics, arrays = _judge(cfg, col)
    rows = []
    for s in rr.SPLITS:
        for arm in ARMS if rm.has_set(col, s) else ():
            for row in rm.arm_rows(col, knobs, arm, s):
                rows.append({**row, "step": cfg.sft.steps} if arm == "sft" else row)
    paper = {"claim": "distillation from a stronger teacher lifts pass@k above the base at every k; RLVR does not "
                      "lift pass@k at large k", "figure": "spec §3.6", "seeds_judged": col.seeds,
             "seeds_left_out": col.skipped, "splits": rm.split_record(col), "gate": dr.gates(runs, cfg.seeds)}
    return Outcome.judged(metrics, rows, paper, verdicts, arrays)


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    k = arrays["k_K"]
    sets = [s for s in rr.SPLITS if f"{s}_base_K" in arrays]
    fig, axes = plotting.subplots(1, max(len(sets), 1), width=4.2, height=3.8)
    titles = {"train": "train set", "id": "in-domain test", "ood": "easier out-of-domain test"}
    for j, s in enumerate(sets):
        ax = axes[0, j]
        ax.plot(k, arrays[f"{s}_base_K"], color="k", ls="--", label="base")
        ax.plot(k, arrays[f"{s}_grpo_K"], color="C0", label="GRPO")
        ax.plot(k, arrays[f"{s}_sft_K"], color="C2", label="SFT on latest-order traces")
        ax.fill_between(k, arrays[f"{s}_base_K"] + arrays[f"{s}_sft_diff_lo_K"],
                        arrays[f"{s}_base_K"] + arrays[f"{s}_sft_diff_hi_K"], color="C2", alpha=0.15, lw=0)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k (process-verified)")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(titles[s])
        ax.legend(fontsize=6)
    fig.suptitle(f"{ID}: base vs GRPO vs SFT pass@k")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
