"""dag-process-reward: process-verified rewards against outcome-only RL on DAG arithmetic.

Zhang, Neubig and Yue (arXiv 2512.07783), Observation 4 and Fig. 7 (spec `dag_arithmetic.md` §7,
§9.4, §11.10), at theory scale on DAG-lite. From the shared stored base (`rl/dag_runs.py`, the same
one dag-edge-of-competence uses), GRPO on the calibrated edge band (the paper's reward runs use op
11-14, its edge) with four rewards, one arm each: `outcome` (R_out), `mix0.2` (0.2 R_out + 0.8
R_pv), `mix0.5` (0.5 / 0.5) and `strict` (R_out only when the process is perfect with no extra
node). `mix_form` picks the mixed reward's form: "mix" (the paper's and the issue's sum) or
"mix_gated" (what the official code computes, R_out (alpha + (1 - alpha) R_pv)). Every arm is then
measured on the base's fixed evaluation table, so arms are paired per problem and sampling key; the
bands come from the table's first half of problems and every number from its second half.
Claims, for each process arm a (process-verified, pooled over judged seeds, paired bootstrap 95%
intervals over problems): `<a>_raises_hard_pass1`: a's pass@1 on the hard ops beats the outcome
arm's (interval above 0), the paper's "+4-5 points of pass@1 in the hardest settings";
`<a>_lowers_hacking`: a's hacking rate (answer right, process wrong, among right answers) on the edge
ops (on hard ops right answers are mostly mod-p guesses for every reward) is below the outcome arm's (interval below 0), judged only when the outcome arm has
right answers there. A seed whose base fails its gate or has no edge or hard band is left out and
named; with none left nothing is judged. Learning off (rl.lr = 0) leaves every arm at the base, so
every difference is 0 and no claim passes; rl.steps = 0 judges nothing.
Measurements by run id: docs/results/dag-process-reward.md.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import warnings
from pathlib import Path

import jax
import numpy as np

from theoryrl.core.config import check_seeds, require, run_id, to_dict
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, RunPlan, Runs, Stage
from theoryrl.core.verdicts import FAIL, PASS, Verdict, judged_if, not_judged
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import lm_runs

ID = "dag-process-reward"
TITLE = "DAG arithmetic: process-verified rewards raise hard-op pass@1 and lower reward hacking"
PAPER = "Zhang, Neubig, Yue 2512.07783, Observation 4 / Fig. 7"
ARMS = ("outcome", "mix0.2", "mix0.5", "strict")
MIX_FORMS = ("mix", "mix_gated")


@dataclasses.dataclass(frozen=True)
class Config:
    base: dr.BaseSpec = dr.BaseSpec()
    rl: dr.RLKnobs = dr.RLKnobs()
    arms: tuple[str, ...] = ARMS
    mix_form: str = "mix"
    seeds: tuple[int, ...] = (42,)

    def validate(self) -> None:
        self.base.validate()
        self.rl.validate()
        require(len(self.arms) > 0 and all(a in ARMS for a in self.arms) and len(set(self.arms)) == len(self.arms),
                "arms", self.arms, f"distinct values from {list(ARMS)}")
        require("outcome" in self.arms, "arms", self.arms, "a list that includes 'outcome' (every claim compares to it)")
        require(self.mix_form in MIX_FORMS, "mix_form", self.mix_form, " | ".join(MIX_FORMS))
        check_seeds(self.seeds)


TIERS = {
    "quick": Config(),
    "paper": Config(base=dr.PAPER_BASE,
        rl=dr.PAPER_RL,
        seeds=(42, 43, 44)),
}


def _reward(cfg: Config, arm: str) -> tuple[str, float]:
    return {"outcome": ("outcome", 1.0), "mix0.2": (cfg.mix_form, 0.2), "mix0.5": (cfg.mix_form, 0.5),
            "strict": ("strict", 1.0)}[arm]


def _rl_plans(cfg: Config, runs: Runs) -> list[RunPlan]:
    """One GRPO run per (judged seed, arm) on the seed's edge band; the reward is static, so each
    arm is its own bucket."""
    model = dr.model(cfg.base)
    plans = []
    for seed in cfg.seeds:
        base = runs.one(stage="pretrain", seed=int(seed))
        bands, why = dr.seed_status(cfg.base, base)
        if why is not None:
            continue
        params = jax.tree.map(np.asarray, lm_runs.params_from_arrays(model, base.arrays))
        shape = bands.edge[1]
        for arm in cfg.arms:
            mode, alpha = _reward(cfg, arm)
            rl = dataclasses.replace(cfg.rl, reward=mode, alpha=alpha)
            static = run_id({**{k: v for k, v in to_dict(cfg).items() if k not in ("seeds", "arms")},
                             "rl": to_dict(rl)})
            plans.append(RunPlan(row={"seed": int(seed), "arm": arm}, bucket=("rl", arm, shape, static),
                                 label=f"rl-{arm}", hp=dr.rl_hp(params, dr.band_params(cfg.base, [bands.edge], shape),
                                                                seed, rl),
                                 build=functools.partial(dr.rl_program, cfg.base, rl, shape), parent=base))
    return plans


def stages(cfg: Config) -> list[Stage]:
    return [dr.pretrain_stage(cfg.base, cfg.seeds), Stage("rl", functools.partial(_rl_plans, cfg))]


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: one per seed for the base (arm "base") and per RL arm, with process-verified pass@1 and
    pass@k_max and the hacking rate on the seed's ID / edge / hard bands. Metrics: the paired
    differences to the outcome arm, pooled over judged seeds. Arrays: per-op pass@1, pass@k_max and
    hacking rate of every row."""
    k = cfg.base.k_max
    rows, skipped, seeds, tables, bands_of = [], {}, [], {}, {}
    for seed in cfg.seeds:
        s = int(seed)
        base = runs.one(stage="pretrain", seed=s)
        bands, why = dr.seed_status(cfg.base, base)  # calibrated on the first half of the base's problems
        bands_of[s] = bands
        tables[(s, "base")] = dr.eval_half(base.arrays)  # every number below: the second half
        for run in runs.where(stage="rl", seed=s):
            tables[(s, run.row["arm"])] = dr.eval_half(run.arrays)
        if why is None:
            seeds.append(s)
        else:
            skipped[s] = why
        for arm in ("base",) + tuple(cfg.arms):
            if (s, arm) not in tables:
                continue
            t = tables[(s, arm)]
            row = {"seed": s, "arm": arm, "base_gate_passed": base.gate is not None and base.gate.passed, "bands": bands.to_dict()}
            for name in ("id", "edge", "hard"):
                ops = dr.ops_of(getattr(bands, name))
                for label, kk in (("pass1", 1), (f"pass{k}", k)):
                    mean, lo, hi = dr.band_ci(t, ops, kk)
                    row[f"{name}_{label}"], row[f"{name}_{label}_lo"], row[f"{name}_{label}_hi"] = mean, lo, hi
                row[f"{name}_hacking_rate"] = dr.hacking_rate(t, ops)
            rows.append(row)
    verdicts, metrics = _verdicts(cfg, tables, bands_of, seeds, skipped)
    paper = {"claim": "process or mixed rewards: hard-op pass@1 up ~4-5 points, fewer right answers from wrong steps",
             "figure": "Fig. 7", "seeds_judged": seeds, "seeds_left_out": skipped,
             "bands": {s: b.to_dict() for s, b in bands_of.items()},
             "gate": dr.gates(runs, cfg.seeds)}
    return Outcome.judged(metrics, rows, paper, verdicts, _arrays(cfg, tables))


def _verdicts(cfg: Config, tables, bands_of, seeds, skipped) -> tuple[dict[str, Verdict], dict]:
    process_arms = [a for a in cfg.arms if a != "outcome"]
    names = [f"{a}_{claim}" for a in process_arms for claim in ("raises_hard_pass1", "lowers_hacking")]
    if not seeds:
        reason = ("no seed has a gated base with an edge and a hard band: "
                  + "; ".join(f"seed {s}: {why}" for s, why in skipped.items()))
        return {n: not_judged(reason) for n in names}, {}
    if cfg.rl.steps == 0:
        return {n: not_judged("rl.steps = 0: no RL step was taken") for n in names}, {}
    metrics, v = {}, {}

    def band_ops(s: int, band_names) -> list[int]:
        return [o for b in band_names for o in dr.ops_of(getattr(bands_of[s], b))]

    def pooled(arm: str, band_names) -> tuple:
        pass1 = np.concatenate([dr.band_rows(tables[(s, arm)], band_ops(s, band_names), 1) for s in seeds])
        hacked, right = zip(*(dr.hacking_rows(tables[(s, arm)], band_ops(s, band_names)) for s in seeds))
        return pass1, np.concatenate(hacked), np.concatenate(right)

    def clusters(band_names) -> np.ndarray:  # the seed of every pooled row: a cluster bootstrap over seeds
        return dr.seed_clusters([(s, dr.band_rows(tables[(s, "outcome")], band_ops(s, band_names), 1)) for s in seeds])

    def crossed(band_names) -> bool:  # every seed's rows the same fixed problems: seeds x problems crossed
        return dr.same_problems(band_ops(s, band_names) for s in seeds)

    missing = [a for a in cfg.arms if any((s, a) not in tables for s in seeds)]
    if "outcome" in missing:
        return {n: not_judged("the outcome arm was not run for every judged seed") for n in names}, {}
    out_hard, _, _ = pooled("outcome", ["hard"])
    # hacking on the edge ops: on hard ops nearly every right answer is a mod-p guess (1/p per sample)
    # whatever the reward, which would dilute the contrast between rewards
    _, out_hacked, out_right = pooled("outcome", ["edge"])
    metrics["outcome_hacking_rate"] = float(out_hacked.sum() / out_right.sum()) if out_right.sum() else float("nan")
    for arm in process_arms:
        if arm in missing:
            v[f"{arm}_raises_hard_pass1"] = v[f"{arm}_lowers_hacking"] = not_judged(
                f"the {arm} arm was not run for every judged seed")
            continue
        hard1, _, _ = pooled(arm, ["hard"])
        _, hacked, right = pooled(arm, ["edge"])
        g = dr.paired_gain_rows(hard1, out_hard, clusters=clusters(["hard"]), crossed=crossed(["hard"]))
        metrics.update({f"{arm}_hard_pass1": g.a, f"{arm}_gain_hard_pass1": g.diff, f"{arm}_gain_hard_pass1_lo": g.lo,
                        f"{arm}_gain_hard_pass1_hi": g.hi})
        v[f"{arm}_raises_hard_pass1"] = Verdict(
            PASS if g.lo > 0 else FAIL, g.diff, 0.0, g.lo, g.se,
            f"{arm} - outcome, pass@1 on hard ops: {g.diff:+.3f} [{g.lo:+.3f}, {g.hi:+.3f}] (must be above 0)",
            paper="+4-5 points of pass@1 in the hardest settings")
        h = dr.paired_ratio_gain(hacked, right, out_hacked, out_right, clusters=clusters(["edge"]),
                                 crossed=crossed(["edge"]))
        metrics.update({f"{arm}_hacking_rate": h.a, f"{arm}_gain_hacking": h.diff, f"{arm}_gain_hacking_lo": h.lo,
                        f"{arm}_gain_hacking_hi": h.hi})
        raw = (not_judged(f"{arm}: no right answer on edge ops, so no hacking rate") if not np.isfinite(h.a)
               else Verdict(PASS if h.hi < 0 else FAIL, h.diff, 0.0, -h.hi, h.se,
                            f"{arm} - outcome, hacking rate on edge ops: {h.diff:+.3f} "
                            f"[{h.lo:+.3f}, {h.hi:+.3f}] (must be below 0)",
                            paper="outcome-only RL hacks; process rewards reduce it"))
        v[f"{arm}_lowers_hacking"] = judged_if(
            {"the outcome arm has right answers on edge ops (its hacking rate is defined)": bool(out_right.sum())},
            raw)
    return v, metrics


def _arrays(cfg: Config, tables) -> dict:
    keys = sorted(tables)
    k = cfg.base.k_max
    hack = [[dr.hacking_rate(tables[key], [int(op)]) for op in tables[key]["ops"]] for key in keys]
    return {"row_seed": np.array([s for s, _ in keys]), "row_arm": np.array([a for _, a in keys]),
            "ops": np.asarray(cfg.base.eval_ops),
            "pass1_RxO": np.stack([dr.pass_curves(tables[key], k)[:, 0] for key in keys]),
            "passk_RxO": np.stack([dr.pass_curves(tables[key], k)[:, -1] for key in keys]),
            "hacking_RxO": np.stack(hack)}


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
    fig, axes = plotting.subplots(1, 2, width=4.6, height=4.0)
    arms = ["base"] + list(cfg["arms"])
    for col, (key, label) in enumerate((("pass1_RxO", "process-verified pass@1"),
                                        ("hacking_RxO", "hacking rate (answer right, process wrong)"))):
        ax = axes[0, col]
        for j, arm in enumerate(arms):
            sel = arrays["row_arm"] == arm
            if not np.any(sel):
                continue
            style = dict(color="k", ls="--") if arm == "base" else dict(color=f"C{j - 1}")
            with warnings.catch_warnings():  # an op where no sample's answer is right has no hacking rate
                warnings.simplefilter("ignore", RuntimeWarning)
                curve = np.nanmean(arrays[key][sel], axis=0)
            ax.plot(arrays["ops"], curve, marker="o", label=arm if arm == "base" else f"RL, {arm}", **style)
        ax.axvline(cfg["base"]["id_hi"] + 0.5, color="0.6", lw=0.8)
        ax.set_xlabel("op")
        ax.set_ylabel(label)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    fig.suptitle(f"{ID}: GRPO on the edge band with four rewards")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
