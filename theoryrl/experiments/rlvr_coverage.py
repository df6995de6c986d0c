"""rlvr-coverage: RL's solvable problems lie within the base's, and its samples are likely under the base.

Yue et al. (arXiv 2504.13837) Figs. 4-6, Tables 4-5 (spec `rlvr_limits.md` §2.2-2.4, §6.3), at theory
scale on DAG-lite (`rl/rlvr_runs.py`): the splits, base and GRPO run of `rlvr-passk-crossing`, keeping
`keep_samples` sampled responses per ID problem (T = 0.6, top-p 0.95), then a compute stage that scores
under the BASE (`rl/rlvr_traces.trace_nll`): the base's own samples, the RL samples, and the gold
solutions of the same ID problems in the "latest" order (valid traces the base would not write) and in
the base's own "earliest" order (reference). Reported per set: solvable sets S = {problems with >= 1
process-verified sample of n} (|S_RL \\ S_base|, |S_base \\ S_RL|, both), accuracy histograms of base
and RL (bins 0, (0, .1], ..., (.9, 1), 1), and the perplexity distributions. Claims (ID set, problems
paired, cluster bootstrap over seeds, 95% intervals):
`rl_solvable_within_base`: D = |S_base \\ S_RL| / N - |S_RL \\ S_base| / N, the share of problems only
the base solves minus the share only RL solves; "RL-only is small next to base-only" means D's interval
lies above 0 (judged only where RL raised pass@1 over the base: a collapsed model would pass it).
`rl_samples_low_base_ppl`: with d_RL = mean over problems of [mean token NLL_base(RL
samples) - NLL_base(base samples)] and d_GT the same for the latest-order traces, passes iff d_RL's
interval reaches 0 or below (not higher beyond the interval) and the upper end of d_RL / d_GT's interval
is below `far_ratio` (far below the latest-order traces). Judged only if d_GT's interval is above 0
(the ruler sees traces the base would not write) and RL learned (RL minus base pass@1 above 0).
RL steps 0, or no usable seed, judges neither; learning off (lr 0) fails the first (D = 0) and leaves
the second not judged. PPL_RL(Y_RL) needs the RL parameters, which `rlvr_runs` does not keep.
"""
from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import numpy as np

from theoryrl.core.config import check_seeds, require, require_float, require_int
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, RunPlan, Runs, Stage
from theoryrl.core.verdicts import FAIL, PASS, Verdict, judged_if, not_judged
from theoryrl.eval import passk
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import lm_runs
from theoryrl.rl import rlvr_metrics as rm
from theoryrl.rl import rlvr_runs as rr
from theoryrl.rl import rlvr_traces as rt

ID = "rlvr-coverage"
TITLE = "RLVR limits: RL's solvable set lies within the base's, its samples are high-likelihood base samples"
PAPER = "Yue et al. 2504.13837, Figs. 4-6, Tables 4-5"
ARMS = ("base", "grpo")
CLAIMS = ("rl_solvable_within_base", "rl_samples_low_base_ppl")
TRACES = ("base_samples", "rl_samples", "gold_latest", "gold_earliest")


@dataclasses.dataclass(frozen=True)
class Config:
    base: dr.BaseSpec = dr.BaseSpec()
    rlvr: rr.RLVRKnobs = rr.RLVRKnobs(keep_samples=16)
    far_ratio: float = 0.5  # d_RL / d_GT must stay below this (upper end of its 95% interval)
    score_rows: int = 512  # sequences per jitted scoring call
    seeds: tuple[int, ...] = (42,)

    def validate(self) -> None:
        self.base.validate()
        self.rlvr.validate()
        require("id" in self.rlvr.eval_splits, "rlvr.eval_splits", self.rlvr.eval_splits,
                "a list with id: every claim is judged on the ID set")
        require(self.rlvr.keep_samples >= 1, "rlvr.keep_samples", self.rlvr.keep_samples,
                f"1..eval_samples = {self.rlvr.eval_samples}: the perplexity stage scores the kept samples")
        require_float(self.far_ratio, "far_ratio", 0.0, 1.0, lo_open=True)
        require_int(self.score_rows, "score_rows", 1, rt.MAX_ROWS)
        check_seeds(self.seeds)


# spec §6.3: the crossing experiment's paper tier (450 GRPO steps, n = 256), 32 kept samples per ID problem
TIERS = {
    "quick": Config(),
    "paper": Config(base=dr.PAPER_BASE, rlvr=dataclasses.replace(rr.PAPER_RLVR, checkpoints=(450,), keep_samples=32),
                    seeds=(42, 43, 44)),
}


def stages(cfg: Config) -> list[Stage]:
    static = rr.stage_static(cfg)
    return [dr.pretrain_stage(cfg.base, cfg.seeds),
            Stage("rlvr", lambda runs: rr.plans(cfg.base, cfg.rlvr, ARMS, cfg.seeds, runs, static)),
            Stage("ppl", lambda runs: ppl_plans(cfg, runs, static))]


# ---------------------------------------------------------------- the scoring stage


def ppl_plans(cfg: Config, runs: Runs, static: str) -> list[RunPlan]:
    """Per seed with both arms run: one compute run scoring the kept ID samples and gold traces."""
    out = []
    for seed in cfg.seeds:
        base_run = runs.one(stage="pretrain", seed=int(seed))
        splits, why = rr.seed_splits(cfg.base, cfg.rlvr, base_run)
        arms = {a: runs.where(stage="rlvr", seed=int(seed), arm=a) for a in ARMS}
        if why is not None or any(len(r) != 1 for r in arms.values()):
            continue
        params = lm_runs.params_from_arrays(dr.model(cfg.base), base_run.arrays)
        responses = {a: np.asarray(arms[a][0].final("id/response_NxKxT")) for a in ARMS}
        out.append(RunPlan(row={"seed": int(seed)}, bucket=("rlvr-ppl", static, seed), label="rlvr-ppl",
                           parent=base_run, compute=partial(ppl_arrays, cfg, splits.train, params, responses)))
    return out


def ppl_arrays(cfg: Config, band, params, responses: dict) -> dict:
    """"final/<traces>/{nll,ppl,length}_NxK" under the base for every TRACES source (gold: K = 1)."""
    base, knobs, spec_m = cfg.base, cfg.rlvr, dr.model(cfg.base)
    problems = rr.set_problems(base, band, knobs.id_problems, rr.SPLIT_KEYS["id"])
    sources = {"base_samples": (problems, responses["base"]), "rl_samples": (problems, responses["grpo"])}
    for order in ("latest", "earliest"):
        sources[f"gold_{order}"] = rt.gold_traces(base, band, knobs.id_problems, rr.SPLIT_KEYS["id"], order)
    out = {}
    for name, (probs, resp) in sources.items():
        scored = rt.problem_trace_nll(spec_m, params, probs, resp, rows=cfg.score_rows)
        out.update({f"final/{name}/{k[:-4]}_NxK": v for k, v in scored.items()})
    return out


# ---------------------------------------------------------------- verdicts


def containment_gain(base_c, rl_c, clusters=None) -> dr.Gain:
    """Share of problems only the base solves minus share only RL solves (paired per problem)."""
    base_s, rl_s = passk.solvable_set(base_c), passk.solvable_set(rl_c)
    return rm.paired((base_s & ~rl_s).astype(float), (rl_s & ~base_s).astype(float), clusters=clusters)


def containment_verdict(g: dr.Gain) -> Verdict:
    return Verdict(PASS if g.lo > 0 else FAIL, g.diff, 0.0, g.lo, g.se,
                   f"ID: share solved only by the base minus only by RL: {g.diff:+.3f}, 95% interval "
                   f"[{g.lo:+.3f}, {g.hi:+.3f}] (must be above 0)",
                   paper="AIME24: RL solves 19 problems, all within the base's 23 (Table 4)")


def ppl_stats(nll_base_NxK, nll_rl_NxK, nll_gold_N, clusters=None, *, num_resamples: int = 2000,
              alpha: float = 0.05, seed: int = 0) -> dict:
    """d_RL, d_GT (per problem: mean NLL of RL samples / gold trace minus mean NLL of base samples,
    averaged over problems) with paired bootstrap intervals, and the ratio d_RL / d_GT's interval
    (both from the same resampled problems; a resample with d_GT <= 0 has ratio +inf)."""
    nb = np.asarray(nll_base_NxK, np.float64).mean(axis=1)
    d_rl = np.asarray(nll_rl_NxK, np.float64).mean(axis=1) - nb
    d_gt = np.asarray(nll_gold_N, np.float64).reshape(-1) - nb
    w = dr.crossed_weights(nb.size, clusters, num_resamples, np.random.default_rng(seed))
    w = w / w.sum(axis=1, keepdims=True)
    b_rl, b_gt = w @ d_rl, w @ d_gt
    ratio = np.where(b_gt > 0, b_rl / np.where(b_gt > 0, b_gt, 1.0), np.inf)
    q = [alpha / 2, 1 - alpha / 2]
    (rl_lo, rl_hi), (gt_lo, gt_hi) = (np.quantile(x, q) for x in (b_rl, b_gt))
    r_lo, r_hi = np.quantile(ratio, q, method="inverted_cdf")  # an order statistic: +inf entries stay +inf
    gt = float(d_gt.mean())
    return {"d_rl": float(d_rl.mean()), "d_rl_lo": float(rl_lo), "d_rl_hi": float(rl_hi), "d_gt": gt,
            "d_gt_lo": float(gt_lo), "d_gt_hi": float(gt_hi),
            "ratio": float(d_rl.mean() / gt) if gt > 0 else float("inf"), "ratio_lo": float(r_lo),
            "ratio_hi": float(r_hi), "se": float(b_rl.std(ddof=1)), "num_problems": int(nb.size)}


def ppl_verdict(st: dict, far_ratio: float, pass1_gain: dr.Gain) -> Verdict:
    if not st["d_gt_lo"] > 0:
        return not_judged(f"the latest-order traces are not measurably less likely under the base than its own "
                          f"samples (d_GT = {st['d_gt']:+.3f} nats/token, 95% interval [{st['d_gt_lo']:+.3f}, "
                          f"{st['d_gt_hi']:+.3f}]): no positive control", st["d_rl"], 0.0)
    if not pass1_gain.lo > 0:
        return not_judged(f"RL did not learn: RL minus base pass@1 on ID {pass1_gain.diff:+.3f}, 95% interval "
                          f"[{pass1_gain.lo:+.3f}, {pass1_gain.hi:+.3f}] (must be above 0)", st["d_rl"], 0.0)
    ok = st["d_rl_lo"] <= 0 and st["ratio_hi"] < far_ratio
    margin = min(-st["d_rl_lo"], far_ratio - st["ratio_hi"])
    text = (f"ID, base's mean token NLL: RL samples minus base samples d_RL = {st['d_rl']:+.4f} [{st['d_rl_lo']:+.4f}, "
            f"{st['d_rl_hi']:+.4f}] (lower end must be <= 0); d_RL / d_GT = {st['ratio']:+.3f} [{st['ratio_lo']:+.3f}, "
            f"{st['ratio_hi']:+.3f}] (upper end must be < {far_ratio}; d_GT = {st['d_gt']:+.4f})")
    return Verdict(PASS if ok else FAIL, st["d_rl"], 0.0, margin, st["se"], text,
                   paper="PPL_Base(Y_RL) matches the low end of PPL_Base(Y_Base); PPL_Base(Y_GT) is higher "
                         "(spec §2.4)")


def _ppl_rows(col: rm.Collected, ppl: dict, name: str) -> np.ndarray:
    return np.concatenate([np.asarray(ppl[s].final(f"{name}/nll_NxK")) for s in col.seeds])


def _judge(cfg: Config, col: rm.Collected, ppl: dict) -> tuple[dict, dict, dict]:
    knobs = cfg.rlvr
    why = rm.why_not_judged(col, knobs)
    if why is None and any(s not in ppl for s in col.seeds):
        why = "the perplexity stage did not run for every judged seed"
    if why is not None:
        return {c: not_judged(why) for c in CLAIMS}, {}, {}
    metrics, arrays, n = {}, {}, knobs.eval_samples
    for s in rr.SPLITS:
        if not rm.has_set(col, s):
            continue
        cb, cl = col.pooled("base", s)
        cr, _ = col.pooled("grpo", s)
        c = passk.coverage_containment(cb, cr)
        metrics.update({f"{s}_solved_base": c["solved_a"], f"{s}_solved_rl": c["solved_b"],
                        f"{s}_solved_both": c["both"],
                        f"{s}_only_base": c["only_a"], f"{s}_only_rl": c["only_b"], f"{s}_num_problems": int(cb.size)})
        rr.gain_metrics(metrics, f"{s}_only_base_minus_only_rl_share", containment_gain(cb, cr, cl))
        for arm, counts in (("base", cb), ("grpo", cr)):
            hist, _ = passk.accuracy_histogram(np.full(counts.shape, n), counts)
            arrays[f"{s}_{arm}_hist"] = hist
            metrics.update({f"{s}_{arm}_share_acc0": float(hist[0] / max(counts.size, 1)),
                            f"{s}_{arm}_share_acc1": float(hist[-1] / max(counts.size, 1))})
    cb, cl = col.pooled("base", "id")
    cr, _ = col.pooled("grpo", "id")
    g = containment_gain(cb, cr, cl)
    # a collapsed RL model solves nothing the base does not: judged only where RL raised pass@1
    verdicts = {"rl_solvable_within_base": judged_if(rm.raised_pass1(col, "grpo", "id", n)[0], containment_verdict(g))}
    nll = {t: _ppl_rows(col, ppl, t) for t in TRACES}
    st = ppl_stats(nll["base_samples"], nll["rl_samples"], nll["gold_latest"][:, 0], cl)
    g1 = rm.gain(col, "grpo", "base", "id", 1, n=n)
    verdicts["rl_samples_low_base_ppl"] = ppl_verdict(st, cfg.far_ratio, g1)
    rr.gain_metrics(metrics, "id_rl_minus_base_pass1", g1)
    metrics.update({f"ppl_{k}": v for k, v in st.items()})
    for t in TRACES:
        ppl_t = np.exp(nll[t])
        arrays[f"ppl_{t}"] = ppl_t.ravel()
        metrics.update({f"{t}_mean_nll": float(nll[t].mean()), f"{t}_median_ppl": float(np.median(ppl_t))})
    rr.gain_metrics(metrics, "gold_latest_minus_earliest_nll",
                    rm.paired(nll["gold_latest"][:, 0], nll["gold_earliest"][:, 0], clusters=cl))
    metrics["rl_median_ppl_quantile_in_base"] = float(np.mean(arrays["ppl_base_samples"]
                                                              <= metrics["rl_samples_median_ppl"]))
    return verdicts, metrics, arrays


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: per arm and set, pass@1 / pass@k_max (with intervals), solved and only-this-arm counts,
    accuracy-histogram shares at 0 and 1. Arrays: histograms per set and arm, base perplexities of
    every trace source (flattened), for the figure."""
    knobs = cfg.rlvr
    col = rm.collect(cfg.base, knobs, ARMS, cfg.seeds, runs)
    ppl = {s: runs.one(stage="ppl", seed=s) for s in col.seeds if len(runs.where(stage="ppl", seed=s)) == 1}
    verdicts, metrics, arrays = _judge(cfg, col, ppl)
    rows = []
    for s in rr.SPLITS:
        if not rm.has_set(col, s):
            continue
        for arm, short in (("base", "base"), ("grpo", "rl")):
            for row in rm.arm_rows(col, knobs, arm, s):
                rows.append({**row, "solved": metrics.get(f"{s}_solved_{short}"),
                             "solved_only_by_this_arm": metrics.get(f"{s}_only_{short}"),
                             "share_acc0": metrics.get(f"{s}_{arm}_share_acc0"),
                             "share_acc1": metrics.get(f"{s}_{arm}_share_acc1")})
    paper = {"claim": "RLVR's solvable problems are (nearly) a subset of the base's; RL samples are high-likelihood "
                      "base samples, while traces the base would not write have high base perplexity",
             "figure": "Figs. 4-6, Tables 4-5", "seeds_judged": col.seeds, "seeds_left_out": col.skipped,
             "splits": rm.split_record(col), "gate": dr.gates(runs, cfg.seeds)}
    return Outcome.judged(metrics, rows, paper, verdicts, arrays)


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    fig, axes = plotting.subplots(1, 2, width=5.0, height=3.8)
    ax = axes[0, 0]
    x = np.arange(len(passk.HISTOGRAM_LABELS))
    for j, (arm, color) in enumerate((("base", "k"), ("grpo", "C0"))):
        if f"id_{arm}_hist" in arrays:
            h = arrays[f"id_{arm}_hist"]
            ax.bar(x + (j - 0.5) * 0.4, h / max(h.sum(), 1), width=0.4, color=color, label=arm)
    ax.set_xticks(x, passk.HISTOGRAM_LABELS, rotation=60, fontsize=6)
    ax.set_xlabel("per-problem accuracy (ID)")
    ax.set_ylabel("share of problems")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    present = [t for t in TRACES if f"ppl_{t}" in arrays]
    if present:
        ax.boxplot([arrays[f"ppl_{t}"] for t in present], showfliers=True)
        ax.set_xticks(np.arange(1, len(present) + 1), [t.replace("_", "\n") for t in present], fontsize=7)
        ax.set_yscale("log")
    ax.set_ylabel("perplexity under the base")
    fig.suptitle(f"{ID}: accuracy histograms and base perplexities")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
