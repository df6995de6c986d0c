"""dag-edge-of-competence: RL on the ID band sharpens, RL at the edge of competence extends.

Zhang, Neubig and Yue (arXiv 2512.07783), Observation 1 and Fig. 3 (spec `dag_arithmetic.md` §9.1,
§11.5-11.7), at theory scale on DAG-lite arithmetic (`tasks/dag`). Stage "pretrain": the shared
base (`rl/dag_runs.py`: NTP on the ID band with the 20/30/50 easy/medium/hard mix, stored once in
the base store and gated on process-verified pass@1 and pass@k_max of every ID op). Its evaluation
table (fixed problems per op 2..op_max, n samples each) is split in two: its first half of problems
calibrates the bands (edge = the ops above the ID band with pass@k_max in [10%, 60%] and pass@1 below
10%; hard = the ops above that with pass@k_max 0), its second half measures every number below, so no
gain comes from selecting ops where the base happened to score low. Stage "rl": from each judged
base, GRPO (outcome reward) on prompts from one band per arm: id (the top of the ID band,
medium_max+1..id_hi), edge, hard (too hard) and mixed (all three), then the same table, so every arm-vs-base difference is paired per problem and
sampling key. Claims (process-verified, pooled over judged seeds, paired cluster-bootstrap 95% intervals
over problems): `id_rl_raises_pass1` (interval above 0); `id_rl_no_passk_gain`: the ID arm's pass@k_max
gain is below `flat_margin` (the interval's upper end; judged only with that much headroom, since
the gate puts ID pass@k_max near 1, and only when the ID arm's pass@1 rose); `edge_rl_extends_edge` / `edge_rl_extends_hard`: the edge arm
raises pass@k_max on edge / hard ops (interval above 0); `too_hard_rl_no_gain`: the hard arm's gain on
hard ops is below `flat_margin`, judged only when the edge arm gained in the same seeds (RL can
learn here). A seed whose base fails its gate or has no edge or no hard band is reported and left
out (no RL is run for it); with none left nothing is judged. Learning off (rl.lr = 0) leaves every
arm at its base: no "raises" claim passes; rl.steps = 0 judges nothing.
Measurements by run id: docs/results/dag-edge-of-competence.md.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import jax
import numpy as np

from theoryrl.core.config import check_seeds, require, require_float, run_id, to_dict
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, RunPlan, Runs, Stage
from theoryrl.core.verdicts import PASS, FAIL, Verdict, judged_if, not_judged
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import lm_runs

ID = "dag-edge-of-competence"
TITLE = "DAG arithmetic: RL on the ID band sharpens pass@1, RL at the edge of competence raises pass@k beyond the base"
PAPER = "Zhang, Neubig, Yue 2512.07783, Observation 1 / Fig. 3"
ARMS = ("id", "edge", "hard", "mixed")


@dataclasses.dataclass(frozen=True)
class Config:
    base: dr.BaseSpec = dr.BaseSpec()
    rl: dr.RLKnobs = dr.RLKnobs()
    arms: tuple[str, ...] = ARMS
    seeds: tuple[int, ...] = (42,)
    # "no gain" claims are equivalence tests: the gain's interval must end below this (5 points of pass@k)
    flat_margin: float = 0.05

    def validate(self) -> None:
        self.base.validate()
        self.rl.validate()
        require_float(self.flat_margin, "flat_margin", 0.0, 1.0, lo_open=True)
        require(len(self.arms) > 0 and all(a in ARMS for a in self.arms) and len(set(self.arms)) == len(self.arms),
                "arms", self.arms, f"distinct values from {list(ARMS)}")
        check_seeds(self.seeds)


TIERS = {
    "quick": Config(),
    # spec §11.3 / §11.6 GPU setting: ~5M parameters, ID 2-8, ops up to 16, k_max 128 (n = 256)
    "paper": Config(base=dr.PAPER_BASE,
                    rl=dr.PAPER_RL,
                    seeds=(42, 43, 44)),
}


def _arm_bands(arm: str, bands: dr.Bands, base: dr.BaseSpec) -> list[tuple[int, int]] | None:
    """The op bands an arm's RL prompts come from; None when the base lacks one of them. The id arm
    trains on the top of the ID band (the pre-training mix's hard part, medium_max+1..id_hi), as the
    paper's ID RL uses op 7-10 of its 2-10: easier ops are solved by every sample, so their GRPO
    groups carry no signal."""
    top = (base.medium_max + 1, base.id_hi) if base.medium_max < base.id_hi else bands.id
    need = {"id": [top], "edge": [bands.edge], "hard": [bands.hard], "mixed": [bands.id, bands.edge, bands.hard]}[arm]
    return None if any(b is None for b in need) else need


def _rl_plans(cfg: Config, runs: Runs) -> list[RunPlan]:
    """One GRPO run per (judged seed: gated, with an edge and a hard band; arm); arms of equal shapes
    share a bucket."""
    model = dr.model(cfg.base)
    static = run_id({k: v for k, v in to_dict(cfg).items() if k != "seeds"})
    plans = []
    for seed in cfg.seeds:
        base = runs.one(stage="pretrain", seed=int(seed))
        bands, why = dr.seed_status(cfg.base, base)
        if why is not None:  # left out of every verdict, so its RL would be compute nobody reads
            continue
        params = jax.tree.map(np.asarray, lm_runs.params_from_arrays(model, base.arrays))
        for arm in cfg.arms:
            arm_bands = _arm_bands(arm, bands, cfg.base)
            if arm_bands is None:
                continue
            shape = max(hi for _, hi in arm_bands)
            plans.append(RunPlan(row={"seed": int(seed), "arm": arm}, bucket=("rl", shape, static), label=f"rl-{arm}",
                                 hp=dr.rl_hp(params, dr.band_params(cfg.base, arm_bands, shape), seed, cfg.rl),
                                 build=functools.partial(dr.rl_program, cfg.base, cfg.rl, shape), parent=base))
    return plans


def stages(cfg: Config) -> list[Stage]:
    return [dr.pretrain_stage(cfg.base, cfg.seeds), Stage("rl", functools.partial(_rl_plans, cfg))]


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: one per seed for the base (arm "base") and per RL run, with process-verified pass@1 and
    pass@k_max (and outcome-only pass@k_max) on the seed's calibrated ID / edge / hard bands, and
    the bands. Metrics pool the judged seeds. Arrays: per-op pass@1 / pass@k_max of every row."""
    base_cfg, k = cfg.base, cfg.base.k_max
    rows, skipped, judged_seeds, tables, bands_of = [], {}, [], {}, {}
    for seed in cfg.seeds:
        base = runs.one(stage="pretrain", seed=int(seed))
        bands, why = dr.seed_status(base_cfg, base)  # calibrated on the first half of the base's problems
        bands_of[int(seed)] = bands
        tables[(int(seed), "base")] = dr.eval_half(base.arrays)  # every number below: the second half
        for run in runs.where(stage="rl", seed=int(seed)):
            tables[(int(seed), run.row["arm"])] = dr.eval_half(run.arrays)
        if why is None:
            judged_seeds.append(int(seed))
        else:
            skipped[int(seed)] = why
        for arm in ("base",) + tuple(cfg.arms):
            if (int(seed), arm) not in tables:
                continue
            t = tables[(int(seed), arm)]
            row = {"seed": int(seed), "arm": arm, "base_gate_passed": base.gate is not None and base.gate.passed, "bands": bands.to_dict()}
            for name, band in (("id", bands.id), ("edge", bands.edge), ("hard", bands.hard)):
                for label, kk, kind in (("pass1", 1, "perfect"), (f"pass{k}", k, "perfect"),
                                        (f"outcome_pass{k}", k, "answer_correct")):
                    mean, lo, hi = dr.band_ci(t, dr.ops_of(band), kk, kind)
                    row[f"{name}_{label}"], row[f"{name}_{label}_lo"], row[f"{name}_{label}_hi"] = mean, lo, hi
            rows.append(row)
    verdicts, metrics = _verdicts(cfg, tables, bands_of, judged_seeds, skipped)
    arrays = _arrays(cfg, tables)
    paper = {"claim": "RL on ID: pass@1 up, pass@k_max flat; RL on the edge band: pass@k_max up on edge and hard ops; "
                      "RL on too-hard ops: no gain", "figure": "Fig. 3", "seeds_judged": judged_seeds,
             "seeds_left_out": skipped, "bands": {s: b.to_dict() for s, b in bands_of.items()},
             "gate": dr.gates(runs, cfg.seeds)}
    return Outcome.judged(metrics, rows, paper, verdicts, arrays)


NAMES = ("id_rl_raises_pass1", "id_rl_no_passk_gain", "edge_rl_extends_edge", "edge_rl_extends_hard",
         "too_hard_rl_no_gain")


def _verdicts(cfg: Config, tables, bands_of, seeds, skipped) -> tuple[dict[str, Verdict], dict]:
    """The claims on evaluation-half tables (`tables[(seed, arm)]`, arm "base" included), each
    seed's bands from the calibration half. "Raises" claims pass when the paired 95% interval of the
    gain is above 0; "no gain" claims are equivalence tests: the interval's upper end must lie below
    `flat_margin`, so a tie on problems already at the ceiling proves nothing (headroom is a
    precondition) and too-hard's "no gain" also needs RL to have learned elsewhere in these seeds."""
    k, margin = cfg.base.k_max, cfg.flat_margin
    if not seeds:
        reason = ("no seed has a gated base with an edge and a hard band: "
                  + "; ".join(f"seed {s}: {why}" for s, why in skipped.items()))
        return {n: not_judged(reason) for n in NAMES}, {}
    if cfg.rl.steps == 0:
        return {n: not_judged("rl.steps = 0: no RL step was taken") for n in NAMES}, {}
    metrics = {}

    def gain(arm: str, band: str, kk: int) -> dr.Gain | None:
        if any((s, arm) not in tables for s in seeds):
            return None
        # every seed's own band ops; pooled problem rows keep each seed's pairing
        per_a = [(s, dr.band_rows(tables[(s, arm)], dr.ops_of(getattr(bands_of[s], band)), kk)) for s in seeds]
        per_b = [(s, dr.band_rows(tables[(s, "base")], dr.ops_of(getattr(bands_of[s], band)), kk)) for s in seeds]
        g = dr.paired_gain_rows(np.concatenate([r for _, r in per_a]), np.concatenate([r for _, r in per_b]),
                                clusters=dr.seed_clusters(per_a),
                                crossed=dr.same_problems(dr.ops_of(getattr(bands_of[s], band)) for s in seeds))
        metrics[f"{arm}_gain_{band}_pass{kk}"] = g.diff
        metrics[f"{arm}_gain_{band}_pass{kk}_lo"] = g.lo
        metrics[f"{arm}_gain_{band}_pass{kk}_hi"] = g.hi
        metrics[f"base_{band}_pass{kk}"] = g.b
        return g

    def above_zero(g: dr.Gain | None, what: str, paper: str) -> Verdict:
        if g is None:
            return not_judged(f"{what}: the arm was not run")
        return Verdict(PASS if g.lo > 0 else FAIL, g.diff, 0.0, g.lo, g.se,
                       f"{what}: paired gain {g.diff:+.3f}, 95% interval [{g.lo:+.3f}, {g.hi:+.3f}] (must be above 0)",
                       paper=paper)

    def below_margin(g: dr.Gain | None, what: str, paper: str) -> Verdict:
        if g is None:
            return not_judged(f"{what}: the arm was not run")
        return Verdict(PASS if g.hi < margin else FAIL, g.hi, margin, margin - g.hi, g.se,
                       f"{what}: paired gain {g.diff:+.3f}, 95% interval [{g.lo:+.3f}, {g.hi:+.3f}] "
                       f"(its upper end must be below {margin})", paper=paper)

    v = {}
    g1, gk = gain("id", "id", 1), gain("id", "id", k)
    v["id_rl_raises_pass1"] = above_zero(g1, "id arm, pass@1 on ID ops", "RL on ID data (op 7-10) raises ID pass@1")
    headroom = gk is not None and gk.b <= 1.0 - margin
    v["id_rl_no_passk_gain"] = judged_if(
        {f"the base's ID pass@{k} leaves room for a gain of {margin} (it is {gk.b if gk else float('nan'):.3f})":
         headroom or gk is None,
         # "pass@1 up but pass@k flat" is about what RL changed: an arm that learned nothing is flat too
         "the id arm learned: its ID pass@1 gain is above 0 (id_rl_raises_pass1 passes)":
         gk is None or v["id_rl_raises_pass1"].passed}, below_margin(gk, f"id arm, pass@{k} on ID ops", "RL on ID data: no pass@128 gain"))
    ge, gh = gain("edge", "edge", k), gain("edge", "hard", k)
    v["edge_rl_extends_edge"] = above_zero(ge, f"edge arm, pass@{k} on edge ops",
                                           "RL on op 11-14 (edge) raises OOD pass@128, up to +42 points")
    v["edge_rl_extends_hard"] = above_zero(gh, f"edge arm, pass@{k} on hard ops",
                                           "RL on op 11-14 raises pass@128 on deeper OOD ops")
    gt = gain("hard", "hard", k)
    learned = [g for g in (ge, gh, gain("edge", "edge", 1)) if g is not None and g.lo > 0]
    v["too_hard_rl_no_gain"] = judged_if(
        {"RL learns in this setup: the edge arm raised edge pass@1 or pass@k (interval above 0)": bool(learned)},
        below_margin(gt, f"hard arm, pass@{k} on hard ops", "RL on op 17-20 (too hard) gives little gain"))
    return v, metrics


def _arrays(cfg: Config, tables) -> dict:
    keys = sorted(tables)
    k = cfg.base.k_max
    p1 = np.stack([dr.pass_curves(tables[key], k)[:, 0] for key in keys])
    pk = np.stack([dr.pass_curves(tables[key], k)[:, -1] for key in keys])
    ok = np.stack([dr.pass_curves(tables[key], k, "answer_correct")[:, -1] for key in keys])
    return {"row_seed": np.array([s for s, _ in keys]), "row_arm": np.array([a for _, a in keys]),
            "ops": np.asarray(cfg.base.eval_ops), "pass1_RxO": p1, "passk_RxO": pk, "outcome_passk_RxO": ok}


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
    k = cfg["base"]["k_max"]
    fig, axes = plotting.subplots(1, 2, width=4.6, height=4.0)
    arms = ["base"] + list(cfg["arms"])
    for col, (key, label) in enumerate((("pass1_RxO", "pass@1"), ("passk_RxO", f"pass@{k}"))):
        ax = axes[0, col]
        for j, arm in enumerate(arms):
            sel = arrays["row_arm"] == arm
            if not np.any(sel):
                continue
            style = dict(color="k", ls="--") if arm == "base" else dict(color=f"C{j - 1}")
            ax.plot(arrays["ops"], arrays[key][sel].mean(0), marker="o", label=arm if arm == "base" else f"RL on {arm}",
                    **style)
        ax.axvline(cfg["base"]["id_hi"] + 0.5, color="0.6", lw=0.8)
        ax.set_xlabel("op (edges of the answer-relevant DAG)")
        ax.set_ylabel(f"process-verified {label}")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    fig.suptitle(f"{ID}: ID ops {cfg['base']['id_lo']}-{cfg['base']['id_hi']} (left of the line)")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
