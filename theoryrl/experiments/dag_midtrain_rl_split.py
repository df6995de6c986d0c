"""dag-midtrain-rl-split: one compute budget split between mid-training on the edge band and RL.

Zhang, Neubig and Yue (arXiv 2512.07783), Observations 3 and 8, Figs. 6 and 18 (spec
`dag_arithmetic.md` §6.2, §8, §9.3, §11.9), at theory scale on DAG-lite. From the shared stored base
(`rl/dag_runs.py`), each arm spends a fraction `cpt_fraction` of a budget on continued pre-training
(NTP on 20% ID-uniform + 80% edge-uniform problems, stage "midtrain") and the rest on GRPO on the
edge band (stage "rl"). Budgets are in pre-training token equivalents, converted as the paper does
(spec §8: an RL step costs T_RL = (5/3) N G L tokens, a CPT step batch x L), with L the padded
sequence length both actually process at the edge band's shapes; each budget is given in RL steps
(`budgets`, e.g. 20 = the cost of 20 RL steps) and the conversion is recorded in the summary.
Every arm, the mid-training-only one (fraction 1: zero RL steps) included, is measured on the
evaluation half of the base's table problems on the ops above the ID band (`dag_runs.split_table`;
the bands come from the other half), with `table_samples` samples per problem.
Claims, per budget (process-verified, paired cluster-bootstrap 95% intervals (seeds, then problems), pooled over
judged seeds): `light_rl_best_edge_pass1@B`: the arm with the best edge-op pass@1 has fraction >= 0.5
(light RL after mid-training) and beats RL alone (fraction 0), interval above 0;
`heavy_rl_best_hard@B`: the arm with the best hard-op pass@k_max has fraction in (0, 0.5] (heavier
RL after some mid-training) and beats mid-training alone (fraction 1), interval above 0. Not judged
when every arm scores the same (nothing to rank), when a seed has no edge or hard band, or without
the arms the claim compares. Learning off (both lrs 0) leaves every arm at the base: all equal, so
nothing is judged.
Measurements by run id: docs/results/dag-midtrain-rl-split.md.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import jax
import numpy as np

from theoryrl.core.config import check_seeds, require, require_finite_nonneg, require_int, run_id, to_dict
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, RunPlan, Runs, Stage
from theoryrl.core.verdicts import FAIL, PASS, Verdict, judged_if, not_judged
from theoryrl.eval import dag_eval
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import lm_runs
from theoryrl.tasks.dag import mix

ID = "dag-midtrain-rl-split"
TITLE = "DAG arithmetic: at equal compute, light RL after mid-training is best near the edge, heavier RL far beyond"
PAPER = "Zhang, Neubig, Yue 2512.07783, Observations 3 and 8 / Figs. 6 and 18"


@dataclasses.dataclass(frozen=True)
class Config:
    base: dr.BaseSpec = dr.BaseSpec()
    rl: dr.RLKnobs = dr.RLKnobs()  # its steps / chunk are unused: each arm's RL steps come from its budget share
    cpt_fractions: tuple[float, ...] = (0.0, 0.2, 0.5, 0.8, 1.0)
    budgets: tuple[int, ...] = (20, 40)  # in RL steps at the edge band's shapes
    cpt_lr: float = 5e-4
    cpt_batch: int = 64
    cpt_id_share: float = 0.2  # spec §11.9: CPT on 20% ID-uniform + 80% edge-uniform
    table_samples: int = 32
    seeds: tuple[int, ...] = (42,)

    def validate(self) -> None:
        self.base.validate()
        self.rl.validate()
        require(len(self.cpt_fractions) >= 2 and len(set(self.cpt_fractions)) == len(self.cpt_fractions),
                "cpt_fractions", self.cpt_fractions, "at least two distinct shares")
        for f in self.cpt_fractions:
            mix.check_share(f, "cpt_fractions")
        require(len(self.budgets) >= 1 and len(set(self.budgets)) == len(self.budgets), "budgets", self.budgets,
                "distinct budgets")
        for b in self.budgets:
            require_int(b, "budgets", 1, 100_000, "1..100000 RL steps' worth of compute")
        require_finite_nonneg(self.cpt_lr, "cpt_lr")
        require_int(self.cpt_batch, "cpt_batch", 1, 65_536)
        mix.check_share(self.cpt_id_share, "cpt_id_share")
        require_int(self.table_samples, "table_samples", self.base.k_max, dag_eval.MAX_SAMPLES,
                    f"{self.base.k_max} (base.k_max: pass@k_max needs n >= k_max) .. {dag_eval.MAX_SAMPLES}")
        check_seeds(self.seeds)


TIERS = {
    "quick": Config(),
    "paper": Config(base=dr.PAPER_BASE,
        rl=dataclasses.replace(dr.PAPER_RL, steps=dr.RLKnobs().steps, chunk=dr.RLKnobs().chunk),
        budgets=(100, 200), cpt_batch=128, cpt_lr=1e-4, table_samples=256, seeds=(42, 43, 44)),
}


def conversion(cfg: Config, edge_hi: int) -> dict:
    """Token costs of one CPT and one RL step at the edge band's shapes (spec §8), and each arm's steps."""
    spec = cfg.base.task(edge_hi)
    seq_len = spec.prompt_len + spec.solution_len
    rl_tokens = dr.rl_token_equivalents(cfg.rl.prompts_per_step, cfg.rl.group_size, seq_len)
    cpt_tokens = float(cfg.cpt_batch * seq_len)
    arms = {}
    for budget in cfg.budgets:
        for frac in cfg.cpt_fractions:
            arms[(int(budget), float(frac))] = dr.split_budget(budget * rl_tokens, frac, cpt_tokens, rl_tokens)
    return {"seq_len": seq_len, "rl_step_tokens": rl_tokens, "cpt_step_tokens": cpt_tokens, "arms": arms}


def _table(cfg: Config) -> dr.TableSpec:
    return dr.TableSpec(ops=tuple(range(cfg.base.id_hi + 1, cfg.base.op_max + 1)), samples=cfg.table_samples)


def _midtrain_plans(cfg: Config, runs: Runs) -> list[RunPlan]:
    model, plans = dr.model(cfg.base), []
    for seed in cfg.seeds:
        base = runs.one(stage="pretrain", seed=int(seed))
        bands, why = dr.seed_status(cfg.base, base)
        if why is not None:
            continue
        params = jax.tree.map(np.asarray, lm_runs.params_from_arrays(model, base.arrays))
        shape = bands.edge[1]
        mixture = _cpt_mixture(cfg, bands, shape)
        for (budget, frac), (cpt_steps, _) in conversion(cfg, shape)["arms"].items():
            if cpt_steps == 0:
                continue
            build = functools.partial(dr.midtrain_program, cfg.base, shape, steps=cpt_steps, chunk=cpt_steps,
                                      lr=cfg.cpt_lr, batch=cfg.cpt_batch, table=dr.TableSpec(none=True))
            plans.append(RunPlan(row={"seed": int(seed), "budget": budget, "cpt_fraction": frac},
                                 bucket=("midtrain", shape, cpt_steps, run_id(to_dict(cfg.base)), cfg.cpt_lr,
                                         cfg.cpt_batch),
                                 label=f"cpt-{cpt_steps}", hp=dr.rl_hp(params, mixture, seed, cfg.rl), build=build,
                                 parent=base))
    return plans


def _cpt_mixture(cfg: Config, bands: dr.Bands, shape: int):
    spec = cfg.base.task(shape)
    probs = np.zeros(spec.op_max + 1)
    id_ops, edge_ops = dr.ops_of(bands.id), dr.ops_of(bands.edge)
    probs[id_ops] += cfg.cpt_id_share / len(id_ops)
    probs[edge_ops] += (1.0 - cfg.cpt_id_share) / len(edge_ops)
    return mix.make_params(spec, probs)


def _rl_plans(cfg: Config, runs: Runs) -> list[RunPlan]:
    model, plans = dr.model(cfg.base), []
    for seed in cfg.seeds:
        base = runs.one(stage="pretrain", seed=int(seed))
        bands, why = dr.seed_status(cfg.base, base)
        if why is not None:
            continue
        shape = bands.edge[1]
        for (budget, frac), (cpt_steps, rl_steps) in conversion(cfg, shape)["arms"].items():
            parent = base if cpt_steps == 0 else runs.one(stage="midtrain", seed=int(seed), budget=budget,
                                                          cpt_fraction=frac)
            params = jax.tree.map(np.asarray, lm_runs.params_from_arrays(model, parent.arrays))
            rl = dataclasses.replace(cfg.rl, steps=rl_steps, chunk=max(rl_steps, 1))
            plans.append(RunPlan(row={"seed": int(seed), "budget": budget, "cpt_fraction": frac},
                                 bucket=("rl", shape, rl_steps, run_id({**to_dict(cfg), "seeds": None}), cpt_steps, budget),
                                 label=f"rl-{rl_steps}", hp=dr.rl_hp(params, dr.band_params(cfg.base, [bands.edge], shape),
                                                                     seed, rl),
                                 build=functools.partial(dr.rl_program, cfg.base, rl, shape, _table(cfg)), parent=parent))
    return plans


def stages(cfg: Config) -> list[Stage]:
    return [dr.pretrain_stage(cfg.base, cfg.seeds), Stage("midtrain", functools.partial(_midtrain_plans, cfg)),
            Stage("rl", functools.partial(_rl_plans, cfg))]


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: one per (seed, budget, fraction): CPT and RL steps, and process-verified edge pass@1 and
    hard pass@k_max (with intervals) on the evaluation half. Metrics: the conversion and, per budget,
    each fraction's pooled values. Arrays: [budgets, fractions] of those values."""
    k = cfg.base.k_max
    rows, skipped, seeds, tables, bands_of, conv = [], {}, [], {}, {}, None
    for seed in cfg.seeds:
        s = int(seed)
        base = runs.one(stage="pretrain", seed=s)
        bands, why = dr.seed_status(cfg.base, base)
        bands_of[s] = bands
        if why is not None:
            skipped[s] = why
            continue
        seeds.append(s)
        conv = conversion(cfg, bands.edge[1])
        for run in runs.where(stage="rl", seed=s):
            key = (s, run.row["budget"], run.row["cpt_fraction"])
            tables[key] = dr.eval_half(run.arrays)
            cpt_steps, rl_steps = conv["arms"][(run.row["budget"], run.row["cpt_fraction"])]
            row = {"seed": s, "budget": run.row["budget"], "cpt_fraction": run.row["cpt_fraction"],
                   "cpt_steps": cpt_steps, "rl_steps": rl_steps, "bands": bands.to_dict()}
            for name, band, kk in (("edge_pass1", bands.edge, 1), (f"hard_pass{k}", bands.hard, k),
                                   ("edge_pass" + str(k), bands.edge, k), ("hard_pass1", bands.hard, 1)):
                mean, lo, hi = dr.band_ci(tables[key], dr.ops_of(band), kk)
                row[name], row[f"{name}_lo"], row[f"{name}_hi"] = mean, lo, hi
            rows.append(row)
    verdicts, metrics = _verdicts(cfg, tables, bands_of, seeds, skipped)
    if conv is not None:
        metrics.update({"seq_len": float(conv["seq_len"]), "rl_step_tokens": conv["rl_step_tokens"],
                        "cpt_step_tokens": conv["cpt_step_tokens"]})
    paper = {"claim": "at equal compute: more mid-training with light RL is best on edge ops (pass@1); heavier RL, "
                      "after some mid-training, is best on hard ops", "figure": "Figs. 6, 18",
             "seeds_judged": seeds, "seeds_left_out": skipped, "bands": {s: b.to_dict() for s, b in bands_of.items()},
             "gate": dr.gates(runs, cfg.seeds),
             "conversion": None if conv is None else {
                 "rule": "T_RL = (5/3) N G L per RL step; a CPT step = batch x L; L = padded prompt + response",
                 "seq_len": conv["seq_len"], "rl_step_tokens": conv["rl_step_tokens"],
                 "cpt_step_tokens": conv["cpt_step_tokens"],
                 "steps": {f"{b}@{f}": list(v) for (b, f), v in conv["arms"].items()}}}
    return Outcome.judged(metrics, rows, paper, verdicts, _arrays(cfg, rows))


def _verdicts(cfg: Config, tables, bands_of, seeds, skipped) -> tuple[dict[str, Verdict], dict]:
    k = cfg.base.k_max
    names = [f"{claim}@{b}" for b in cfg.budgets for claim in ("light_rl_best_edge_pass1", "heavy_rl_best_hard")]
    if not seeds:
        reason = ("no seed has a gated base with an edge and a hard band: "
                  + "; ".join(f"seed {s}: {why}" for s, why in skipped.items()))
        return {n: not_judged(reason) for n in names}, {}
    metrics, v = {}, {}

    def rows(budget, frac, band, kk):
        if any((s, budget, frac) not in tables for s in seeds):
            return None
        return np.concatenate([dr.band_rows(tables[(s, budget, frac)], dr.ops_of(getattr(bands_of[s], band)), kk)
                               for s in seeds])

    def clusters(budget, frac, band) -> np.ndarray:  # the seed of every pooled row: a cluster bootstrap over seeds
        return dr.seed_clusters([(s, dr.band_rows(tables[(s, budget, frac)], dr.ops_of(getattr(bands_of[s], band)), 1))
                                 for s in seeds])

    for budget in cfg.budgets:
        for claim, band, kk, best_ok, rival, what, paper in (
                ("light_rl_best_edge_pass1", "edge", 1, lambda f: f >= 0.5, 0.0, "edge-op pass@1",
                 "more mid-training with light RL is best for near-range (edge) pass@1"),
                ("heavy_rl_best_hard", "hard", k, lambda f: 0.0 < f <= 0.5, 1.0, f"hard-op pass@{k}",
                 "heavier RL, still after some mid-training, is best for far-range (hard) tasks")):
            name = f"{claim}@{budget}"
            values = {f: rows(budget, f, band, kk) for f in cfg.cpt_fractions}
            values = {f: r for f, r in values.items() if r is not None}
            for f, r in values.items():
                metrics[f"{band}_pass{kk}@{budget}@{f}"] = float(r.mean())
            if rival not in values or len(values) < 2:
                v[name] = not_judged(f"the arms of fraction {rival} or too few others were not run")
                continue
            means = {f: float(r.mean()) for f, r in values.items()}
            best = max(means, key=lambda f: (means[f], -f))
            g = dr.paired_gain_rows(values[best], values[rival], clusters=clusters(budget, rival, band),
                                    crossed=dr.same_problems(dr.ops_of(getattr(bands_of[s], band)) for s in seeds))
            ok = best_ok(best) and g.lo > 0
            raw = Verdict(PASS if ok else FAIL, g.diff, 0.0, g.lo, g.se,
                          f"best {what} at CPT fraction {best} ({means[best]:.3f}); vs fraction {rival}: "
                          f"{g.diff:+.3f} [{g.lo:+.3f}, {g.hi:+.3f}] (must be above 0)", paper=paper)
            v[name] = judged_if({f"the arms differ on {what} (not all equal)": len(set(means.values())) > 1}, raw)
    return v, metrics


def _arrays(cfg: Config, rows: list[dict]) -> dict:
    k = cfg.base.k_max
    out = {"budgets": np.asarray(cfg.budgets, np.float64), "cpt_fractions": np.asarray(cfg.cpt_fractions, np.float64)}
    for key in ("edge_pass1", f"hard_pass{k}"):
        grid = np.full((len(cfg.budgets), len(cfg.cpt_fractions)), np.nan)
        for i, b in enumerate(cfg.budgets):
            for j, f in enumerate(cfg.cpt_fractions):
                vals = [r[key] for r in rows if r["budget"] == b and r["cpt_fraction"] == f]
                if vals:
                    grid[i, j] = float(np.mean(vals))
        out[key.replace(f"pass{k}", "passk") + "_BxF"] = grid
    return out


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
    fig, axes = plotting.subplots(1, 2, width=4.6, height=3.8)
    for col, (key, label) in enumerate((("edge_pass1_BxF", "edge ops: process-verified pass@1"),
                                        ("hard_passk_BxF", f"hard ops: pass@{cfg['base']['k_max']}"))):
        ax = axes[0, col]
        for i, b in enumerate(arrays["budgets"]):
            ax.plot(arrays["cpt_fractions"], arrays[key][i], marker="o", label=f"budget {b:g} RL steps")
        ax.set_xlabel("mid-training share of the budget")
        ax.set_ylabel(label)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    fig.suptitle(f"{ID}: CPT (20% ID + 80% edge) then GRPO on the edge band")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
