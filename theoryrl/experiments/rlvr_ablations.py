"""rlvr-ablations: rollouts per prompt, KL, evaluation temperature and entropy matching.

Yue et al. (arXiv 2504.13837) §3.5 (spec `rlvr_limits.md` §3.5, §6.2-6.3), at theory scale on DAG-lite
(`rl/rlvr_runs.py`). From the shared stored base, on the fixed train set of its calibrated band:
GRPO with 8 rollouts per prompt (`grpo`), with 32 (`grpo:G=32`, 4x the samples per step) and with
k3 KL at 1e-3 in the loss (`grpo:kl=0.001`); the base and each final model sample n completions of
every in-domain test problem at T in {0.6, 1.0, 1.2} with the same keys. Claims (ID set, paired per
problem, cluster bootstrap over seeds, 95% intervals; `equiv` = the equivalence margin):
- `rollouts32_raise_kmax`: G=32 minus G=8 pass@k_max above 0 (the paper: "slightly");
- `base_wins_over_rollouts32`: base minus G=32 pass@k_max above 0 (judged only where G=32 raised
  pass@1 over the base; likewise every "the base wins" claim below for its RL arms);
- `kl_pass1_unchanged`: KL minus no-KL pass@1 inside [-equiv, +equiv] (judged only when GRPO moved
  pass@1 from the base: two arms that learned nothing are trivially equal);
- `kl_lowers_kmax`: KL minus no-KL pass@k_max below 0;
- `base_degrades_above_1`: the base's pass@k_max at T = 1.2 minus at T = 1.0 below 0;
- `rl_degrades_less_than_base`: GRPO's change from T = 1.0 to 1.2 minus the base's, above 0;
- `base_wins_entropy_matched`: base at T = 0.6 minus GRPO at the evaluation temperature whose mean
  token entropy is nearest the base's at 0.6, pass@k_max above 0 (the paper raises RL's
  temperature to match the base's entropy; the RL advantage at large k does not come back);
  not judged when no evaluation temperature brings RL within `entropy_tol` (relative) of it.
Temperature claims are not judged when 1.0 and 1.2 (or 0.6) are not among the evaluation
temperatures. The quick tier trains 64 steps and evaluates 64 ID problems only, to stay near 20
minutes on this CPU: the G=32 arm samples 4x the rollouts of the others for the same steps, and
every model is sampled at three temperatures with the entropy pass.
Measurements by run id: docs/results/rlvr-ablations.md.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from theoryrl.core.config import check_seeds, require, require_float
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, Runs, Stage
from theoryrl.core.verdicts import FAIL, PASS, Verdict, judged_if, not_judged
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import rlvr_metrics as rm
from theoryrl.rl import rlvr_runs as rr

ID = "rlvr-ablations"
TITLE = "RLVR limits: more rollouts, KL, evaluation temperature and entropy matching do not let RL pass the base"
PAPER = "Yue et al. 2504.13837, §3.5"
ARMS = ("base", "grpo", "grpo:G=32", "grpo:kl=0.001")
NAMES = ("rollouts32_raise_kmax", "base_wins_over_rollouts32", "kl_pass1_unchanged", "kl_lowers_kmax",
         "base_degrades_above_1", "rl_degrades_less_than_base", "base_wins_entropy_matched")
SET = "id"


@dataclasses.dataclass(frozen=True)
class Config:
    base: dr.BaseSpec = dr.BaseSpec()
    rlvr: rr.RLVRKnobs = rr.RLVRKnobs(steps=64, checkpoints=(64,), id_problems=64, eval_temperatures=(0.6, 1.0, 1.2),
                                      eval_splits=("id",), with_entropy=True)
    seeds: tuple[int, ...] = (42,)
    equiv: float = 0.05
    entropy_tol: float = 0.25  # entropy matching: |H_RL(T*) - H_base(0.6)| <= entropy_tol * H_base(0.6)

    def validate(self) -> None:
        self.base.validate()
        self.rlvr.validate()
        require_float(self.equiv, "equiv", 0.0, 1.0, lo_open=True)
        require_float(self.entropy_tol, "entropy_tol", 0.0, 10.0, lo_open=True)
        require(self.rlvr.with_entropy, "rlvr.with_entropy", self.rlvr.with_entropy,
                "true (the entropy-matched comparison reads every sample's entropy)")
        check_seeds(self.seeds)


TIERS = {
    "quick": Config(),
    "paper": Config(base=dr.PAPER_BASE,
                    rlvr=dataclasses.replace(rr.PAPER_RLVR, checkpoints=(450,), eval_temperatures=(0.6, 1.0, 1.2),
                                             eval_splits=("id",), with_entropy=True),
                    seeds=(42, 43, 44)),
}


def stages(cfg: Config) -> list[Stage]:
    return [dr.pretrain_stage(cfg.base, cfg.seeds),
            Stage("rlvr", lambda runs: rr.plans(cfg.base, cfg.rlvr, ARMS, cfg.seeds, runs, rr.stage_static(cfg)))]


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: every arm at every evaluation temperature on the ID set (pass@1 / pass@k_max with
    intervals, outcome-only next to them, mean token entropy): the ablation table."""
    knobs = cfg.rlvr
    col = rm.collect(cfg.base, knobs, ARMS, cfg.seeds, runs)
    rows = [r for a in ARMS if col.seeds for r in rm.arm_rows(col, knobs, a, SET)]
    verdicts, metrics, arrays = _judge(cfg, col)
    paper = {"claim": "n = 32 rollouts helps large-k pass@k slightly and the base still wins; KL keeps pass@1 and "
                      "lowers large-k pass@k; the base degrades above T = 1.0 and RL does not; entropy matching does "
                      "not close the gap", "figure": "§3.5", "seeds_judged": col.seeds, "seeds_left_out": col.skipped,
             "splits": rm.split_record(col), "gate": dr.gates(runs, cfg.seeds)}
    return Outcome.judged(metrics, rows, paper, verdicts, arrays)


def _rows(col: rm.Collected, knobs: rr.RLVRKnobs, arm: str, k: int, ti: int = 0) -> tuple[np.ndarray, np.ndarray]:
    c, cl = col.pooled(arm, SET, ti=ti)
    return rm.pass_rows(c, knobs.eval_samples, k), cl


def _gain(col, knobs, a: tuple, b: tuple, k: int) -> dr.Gain:
    """(arm, temperature index) a minus b, pass@k per problem."""
    ra, cl = _rows(col, knobs, a[0], k, a[1])
    rb, _ = _rows(col, knobs, b[0], k, b[1])
    return rm.paired(ra, rb, clusters=cl)


def _verdict(g: dr.Gain, what: str, paper: str, side: str = "above") -> Verdict:
    ok = g.lo > 0 if side == "above" else g.hi < 0
    margin = g.lo if side == "above" else -g.hi
    return Verdict(PASS if ok else FAIL, g.diff, 0.0, margin, g.se,
                   f"{what}: {g.diff:+.3f}, 95% interval [{g.lo:+.3f}, {g.hi:+.3f}] (must be {side} 0)", paper=paper)


def _entropy(col: rm.Collected, arm: str, ti: int) -> float:
    return float(np.mean([np.asarray(col.runs[(s, arm)].final(f"{SET}/t{ti}/entropy_CxN"))[-1].mean()
                          for s in col.seeds]))


def _judge(cfg: Config, col: rm.Collected) -> tuple[dict, dict, dict]:
    knobs = cfg.rlvr
    temps = [float(t) for t in knobs.eval_temperatures]
    arrays = {"temperatures_T": np.asarray(temps), "arms_A": np.asarray(ARMS)}
    why = rm.why_not_judged(col, knobs)
    if why is not None:
        return {n: not_judged(why) for n in NAMES}, {}, arrays
    km, v, metrics, n = knobs.k_max, {}, {}, knobs.eval_samples
    raised = {a: rm.raised_pass1(col, a, SET, n)[0] for a in ARMS[1:]}
    g = _gain(col, knobs, ("grpo:G=32", 0), ("grpo", 0), km)
    v["rollouts32_raise_kmax"] = _verdict(g, f"G=32 minus G=8 pass@{km}", "n = 32 improves large-k pass@k slightly")
    rr.gain_metrics(metrics, f"g32_minus_g8_pass{km}", g)
    g = _gain(col, knobs, ("base", 0), ("grpo:G=32", 0), km)
    v["base_wins_over_rollouts32"] = judged_if(raised["grpo:G=32"], _verdict(g, f"base minus G=32 pass@{km}",
                                                                             "the base still wins"))
    rr.gain_metrics(metrics, f"base_minus_g32_pass{km}", g)
    g = _gain(col, knobs, ("grpo:kl=0.001", 0), ("grpo", 0), 1)
    rr.gain_metrics(metrics, "kl_minus_nokl_pass1", g)
    inside = -cfg.equiv <= g.lo and g.hi <= cfg.equiv
    # an equivalence passes trivially when neither arm learned: judged only when GRPO raised pass@1
    v["kl_pass1_unchanged"] = judged_if(
        raised["grpo"],
        Verdict(PASS if inside else FAIL, g.diff, cfg.equiv, cfg.equiv - max(abs(g.lo), abs(g.hi)), g.se,
                f"KL minus no-KL pass@1: {g.diff:+.3f}, 95% interval [{g.lo:+.3f}, {g.hi:+.3f}] (must lie inside "
                f"±{cfg.equiv})", paper="pass@1 about the same with KL"))
    g = _gain(col, knobs, ("grpo:kl=0.001", 0), ("grpo", 0), km)
    v["kl_lowers_kmax"] = judged_if({**raised["grpo"], **raised["grpo:kl=0.001"]}, _verdict(
        g, f"KL minus no-KL pass@{km}", "KL lowers large-k pass@k", "below"))
    rr.gain_metrics(metrics, f"kl_minus_nokl_pass{km}", g)
    t_idx = {t: i for i, t in enumerate(temps)}
    have = {f"T = 1.0 and T = 1.2 evaluated (temperatures {temps})": 1.0 in t_idx and 1.2 in t_idx}
    if all(have.values()):
        t10, t12 = t_idx[1.0], t_idx[1.2]
        g = _gain(col, knobs, ("base", t12), ("base", t10), km)
        rr.gain_metrics(metrics, f"base_t12_minus_t10_pass{km}", g)
        v["base_degrades_above_1"] = _verdict(g, f"base pass@{km} at T = 1.2 minus T = 1.0",
                                              "the base degrades above T = 1.0", "below")
        rl12, cl = _rows(col, knobs, "grpo", km, t12)
        rl10, _ = _rows(col, knobs, "grpo", km, t10)
        b12, _ = _rows(col, knobs, "base", km, t12)
        b10, _ = _rows(col, knobs, "base", km, t10)
        g = rm.paired(rl12 - rl10, b12 - b10, clusters=cl)
        rr.gain_metrics(metrics, "rl_minus_base_change_t10_to_t12", g)
        v["rl_degrades_less_than_base"] = _verdict(g, f"GRPO's change of pass@{km} from T = 1.0 to 1.2 minus the base's",
                                                   "RL does not degrade above T = 1.0")
    else:
        for name in ("base_degrades_above_1", "rl_degrades_less_than_base"):
            v[name] = judged_if(have, not_judged(""))
    ent = {(a, i): _entropy(col, a, i) for a in ("base", "grpo") for i in range(len(temps))}
    metrics.update({f"{a}_entropy_t{temps[i]:g}": e for (a, i), e in ent.items()})
    if 0.6 in t_idx:
        target = ent[("base", t_idx[0.6])]
        match = min(range(len(temps)), key=lambda i: abs(ent[("grpo", i)] - target))
        metrics["entropy_matched_rl_temperature"] = temps[match]
        g = _gain(col, knobs, ("base", t_idx[0.6]), ("grpo", match), km)
        rr.gain_metrics(metrics, f"base_t06_minus_rl_matched_pass{km}", g)
        off = abs(ent[("grpo", match)] - target)
        close = {f"an evaluation temperature matches the base's entropy at T = 0.6 ({target:.4f}) within "
                 f"{cfg.entropy_tol:g} of it (nearest: GRPO at T = {temps[match]:g}, {ent[('grpo', match)]:.4f})":
                 off <= cfg.entropy_tol * target}
        v["base_wins_entropy_matched"] = judged_if({**close, **raised["grpo"]}, _verdict(
            g, f"base (T = 0.6, entropy {target:.4f}) minus GRPO at T = {temps[match]:g} (entropy "
               f"{ent[('grpo', match)]:.4f}) pass@{km}", "entropy matching does not close the gap"))
    else:
        v["base_wins_entropy_matched"] = not_judged(f"T = 0.6 not evaluated (temperatures {temps})")
    n = knobs.eval_samples
    for a in ARMS:
        for i in range(len(temps)):
            c = col.pooled(a, SET, ti=i)[0]
            arrays[f"{a}_t{i}_K"] = rm.curve_rows(c, n, km).mean(axis=0)
    return v, metrics, arrays


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    temps, arms = arrays["temperatures_T"], [str(a) for a in arrays["arms_A"]]
    fig, axes = plotting.subplots(1, len(temps), width=4.0, height=3.6)
    for i, t in enumerate(temps):
        ax = axes[0, i]
        for j, a in enumerate(arms):
            if f"{a}_t{i}_K" in arrays:
                curve = arrays[f"{a}_t{i}_K"]
                ax.plot(np.arange(1, curve.size + 1), curve, color="k" if a == "base" else f"C{j}",
                        ls="--" if a == "base" else "-", label=a)
        ax.set_xscale("log", base=2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k (ID test)")
        ax.set_title(f"T = {t:g}")
        ax.legend(fontsize=6)
    fig.suptitle(f"{ID}: rollouts, KL and temperature")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
