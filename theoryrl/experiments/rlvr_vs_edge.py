"""rlvr-vs-edge: on one base, RL on the ID band narrows pass@k_max and RL on the edge band widens it.

No paper has this figure (spec `rlvr_limits.md` §6.6): it puts Yue et al. (arXiv 2504.13837: RL
does not expand what the base can solve) next to Zhang, Neubig and Yue (arXiv 2512.07783: RL at the
edge of competence raises pass@k at deeper ops) on the *same* stored DAG base (`rl/rlvr_runs.py`).
Two GRPO arms with the process-verified reward, the same steps and the same fixed-set size: one on
the base's pre-training band (`grpo:train=id`, ops id_lo..id_hi, where the base is already
competent) and one on its calibrated edge band (`grpo:train=edge`, `dag_runs.calibrate`: pass@k_max
low but non-zero). The base and both final models sample n completions of `op_problems` fixed
problems of every op 2..op_top with the same keys. Claims (paired per problem, cluster bootstrap over
seeds, 95% intervals):
- `id_rl_narrows_kmax`: base minus ID-RL pass@k_max over the ID ops, above 0 (Yue et al.; judged
  only where ID-RL raised pass@1 there, the paper's premise);
- `edge_rl_widens_deeper`: edge-RL minus base pass@k_max over the ops above the edge band up to
  op_top (not the band it trained on), above 0 (Zhang et al.).
Per-op pass@1 and pass@k_max of the three models are the figure. A seed whose base has no edge band
is left out; learning off makes every gain 0 and both claims fail.
Measurements by run id: docs/results/rlvr-vs-edge.md.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from theoryrl.core.config import check_seeds, require_int
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, Runs, Stage
from theoryrl.core.verdicts import FAIL, PASS, Verdict, judged_if, not_judged
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import rlvr_metrics as rm
from theoryrl.rl import rlvr_runs as rr

ID = "rlvr-vs-edge"
TITLE = "RLVR limits meet the edge of competence: RL on the ID band narrows pass@k, RL on the edge band widens it"
PAPER = "Yue et al. 2504.13837 with Zhang, Neubig, Yue 2512.07783 (spec §6.6)"
ARMS = ("base", "grpo:train=id", "grpo:train=edge")
NAMES = ("id_rl_narrows_kmax", "edge_rl_widens_deeper")


@dataclasses.dataclass(frozen=True)
class Config:
    base: dr.BaseSpec = dr.BaseSpec()
    rlvr: rr.RLVRKnobs = rr.RLVRKnobs(eval_splits=())
    op_top: int = 8
    op_problems: int = 32
    seeds: tuple[int, ...] = (42,)

    def validate(self) -> None:
        self.base.validate()
        self.rlvr.validate()
        require_int(self.op_top, "op_top", 2, self.base.op_max, f"2..op_max = {self.base.op_max}")
        require_int(self.op_problems, "op_problems", 1, 100_000)
        check_seeds(self.seeds)

    @property
    def op_sets(self) -> tuple:
        return tuple((f"op{o}", (o, o), self.op_problems) for o in range(2, self.op_top + 1))


TIERS = {
    "quick": Config(),
    "paper": Config(base=dr.PAPER_BASE,
                    rlvr=dataclasses.replace(rr.PAPER_RLVR, checkpoints=(450,), k_max=128, eval_splits=()),
                    op_top=14, op_problems=128, seeds=(42, 43, 44)),
}


def stages(cfg: Config) -> list[Stage]:
    return [dr.pretrain_stage(cfg.base, cfg.seeds),
            Stage("rlvr", lambda runs: rr.plans(cfg.base, cfg.rlvr, ARMS, cfg.seeds, runs, rr.stage_static(cfg),
                                                op_sets=cfg.op_sets))]


def _pooled_ops(col: rm.Collected, arm: str, ops, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cl = [], []
    for s in col.seeds:
        for o in ops:
            c = rm.counts(col.runs[(s, arm)], f"op{o}")
            rows.append(rm.pass_rows(c, n, k))
            cl.append(np.full(c.shape, s))
    return (np.concatenate(rows), np.concatenate(cl)) if rows else (np.zeros(0), np.zeros(0, int))


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: per op and arm, pass@1 / pass@k_max with intervals (outcome-only next to them).
    Arrays: the per-op numbers of the three models (the figure)."""
    knobs, n = cfg.rlvr, cfg.rlvr.eval_samples
    col = rm.collect(cfg.base, knobs, ARMS, cfg.seeds, runs)
    bands = {s: dr.seed_status(cfg.base, runs.one(stage="pretrain", seed=s), need=("edge",))[0] for s in cfg.seeds}
    edges = {s: b.edge for s, b in bands.items()}
    rows, arrays = [], {"ops_O": np.arange(2, cfg.op_top + 1), "arms_A": np.asarray(ARMS)}
    for arm in ARMS:
        for o in range(2, cfg.op_top + 1):
            rows += [dict(r, op=o) for r in rm.arm_rows(col, knobs, arm, f"op{o}")] if col.seeds else []
        for k, name in ((1, "pass1"), (knobs.k_max, "passk")):
            arrays[f"{arm}_{name}_O"] = np.array([_pooled_ops(col, arm, [o], k, n)[0].mean() if col.seeds else np.nan
                                                  for o in range(2, cfg.op_top + 1)])
    verdicts, metrics = _judge(cfg, col, edges)
    paper = {"claim": "on one base, RL on the ID band narrows pass@k_max (Yue et al.) while RL on the edge band raises "
                      "pass@k at deeper ops (Zhang et al.)", "figure": "spec §6.6 (no paper figure)",
             "seeds_judged": col.seeds, "seeds_left_out": col.skipped, "edge_bands": edges,
             "id_band": [cfg.base.id_lo, cfg.base.id_hi], "gate": dr.gates(runs, cfg.seeds)}
    return Outcome.judged(metrics, rows, paper, verdicts, arrays)


def _above(g: dr.Gain, what: str, paper: str) -> Verdict:
    return Verdict(PASS if g.lo > 0 else FAIL, g.diff, 0.0, g.lo, g.se,
                   f"{what}: {g.diff:+.3f}, 95% interval [{g.lo:+.3f}, {g.hi:+.3f}] (must be above 0)", paper=paper)


def _judge(cfg: Config, col: rm.Collected, edges: dict) -> tuple[dict, dict]:
    knobs, n = cfg.rlvr, cfg.rlvr.eval_samples
    why = rm.why_not_judged(col, knobs)
    if why is not None:
        return {name: not_judged(why) for name in NAMES}, {}
    km, metrics, v = knobs.k_max, {}, {}
    id_ops = list(range(cfg.base.id_lo, cfg.base.id_hi + 1))
    b, cl = _pooled_ops(col, "base", id_ops, km, n)
    r, _ = _pooled_ops(col, "grpo:train=id", id_ops, km, n)
    g = rm.paired(b, r, clusters=cl)
    rr.gain_metrics(metrics, f"id_ops_base_minus_id_rl_pass{km}", g)
    pre, g1 = rm.raised_pass1(col, "grpo:train=id", [f"op{o}" for o in id_ops], n)
    rr.gain_metrics(metrics, "id_ops_id_rl_minus_base_pass1", g1)
    v["id_rl_narrows_kmax"] = judged_if(pre, _above(
        g, f"ops {id_ops[0]}..{id_ops[-1]}: base minus ID-band RL pass@{km}", "RL on the ID band narrows pass@k_max"))
    hi = max(edges[s][1] for s in col.seeds)
    deep = list(range(hi + 1, cfg.op_top + 1))
    if not deep:
        v["edge_rl_widens_deeper"] = not_judged(f"op_top = {cfg.op_top}: no op above the edge band (up to op {hi})")
        return v, metrics
    e, cl = _pooled_ops(col, "grpo:train=edge", deep, km, n)
    b, _ = _pooled_ops(col, "base", deep, km, n)
    g = rm.paired(e, b, clusters=cl)
    rr.gain_metrics(metrics, f"deep_ops_edge_rl_minus_base_pass{km}", g)
    v["edge_rl_widens_deeper"] = _above(g, f"ops {deep[0]}..{deep[-1]}: edge-band RL minus base pass@{km}",
                                        "RL at the edge of competence raises pass@k at deeper ops")
    metrics["edge_band_hi"] = float(hi)
    return v, metrics


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    ops, arms = arrays["ops_O"], [str(a) for a in arrays["arms_A"]]
    labels = {"base": "base", "grpo:train=id": "GRPO on the ID band", "grpo:train=edge": "GRPO on the edge band"}
    fig, axes = plotting.subplots(1, 2, width=4.6, height=3.6)
    for j, (name, label) in enumerate((("pass1", "pass@1"), ("passk", "pass@k_max"))):
        ax = axes[0, j]
        for i, a in enumerate(arms):
            if f"{a}_{name}_O" in arrays:
                ax.plot(ops, arrays[f"{a}_{name}_O"], marker="o", color="k" if a == "base" else f"C{i}",
                        ls="--" if a == "base" else "-", label=labels.get(a, a))
        ax.set_xlabel("op (edges of the answer's DAG)")
        ax.set_ylabel(f"process-verified {label}")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=6)
    fig.suptitle(f"{ID}: where the two papers meet")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
