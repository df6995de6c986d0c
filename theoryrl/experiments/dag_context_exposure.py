"""dag-context-exposure: RL carries reasoning to a new surface context only if pre-training saw it.

Zhang, Neubig and Yue (arXiv 2512.07783), Observations 2 and 5, Fig. 4 (spec `dag_arithmetic.md`
§6.4, §9.2, §11.8), at theory scale on DAG-lite. Context B (the generator's second template: the
same structure, disjoint noun tokens) appears in pre-training only as op-2 problems, at a share
`b_share` in `shares` of the pre-training problems (one stored base per share; share 0 is the shared
base of the other DAG experiments). From each gated base with an edge band, GRPO with the strict
reward (the paper's, spec §7.4) on a 50/50 A/B mixture (`rl_b_share`) of ops id_lo..edge_hi, then
evaluation tables in both contexts on fixed problems. The base's own context-B table is sampled by
a zero-step run of the same program (same problems and keys), so every RL-vs-base difference is
paired per problem. Bands are calibrated on context A's first half of problems; every number is on
the second halves. Claims, per share s (process-verified pass@k_max on the edge band, pooled over
judged seeds, paired cluster-bootstrap 95% intervals): below `transfer_min_share` (the paper: 0 and 0.1%),
`no_transfer_at_<s>`: RL's context-B gain lies below `flat_margin` (an equivalence test); at or
above it (1%, 10%), `transfers_at_<s>`: the context-B gain is above 0. Both are judged only where
RL raised context A's pass@k_max on the same ops (interval above 0): without that, a flat B says
nothing about transfer. The hard band is reported in the rows (the paper's "even at the hardest
ops") but not judged: RL on A does not reach it at this scale. Learning off (rl.lr = 0) gains
nothing anywhere, so nothing is judged; rl.steps = 0 judges nothing.
Measurements by run id: docs/results/dag-context-exposure.md.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import jax
import numpy as np

from theoryrl.core.config import check_seeds, require, require_float, require_floats, require_int, run_id, to_dict
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, RunPlan, Runs, Stage
from theoryrl.core.verdicts import FAIL, PASS, Verdict, judged_if, not_judged
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import lm_runs

ID = "dag-context-exposure"
TITLE = "DAG arithmetic: RL transfers to a context seen in pre-training at >= 1% (op 2 only), not below"
PAPER = "Zhang, Neubig, Yue 2512.07783, Observations 2 and 5 / Fig. 4"
CONTEXTS = {0: "A", 1: "B"}


@dataclasses.dataclass(frozen=True)
class Config:
    base: dr.BaseSpec = dr.BaseSpec()  # its b_share is set per arm from `shares`
    shares: tuple[float, ...] = (0.0, 0.001, 0.01, 0.1)
    transfer_min_share: float = 0.01  # the paper: >= 1% transfers, 0 and 0.1% do not
    rl: dr.RLKnobs = dr.RLKnobs(reward="strict")
    rl_b_share: float = 0.5
    table_samples: int = 32  # samples per problem in the tables this experiment draws (>= k_max)
    flat_margin: float = 0.05
    seeds: tuple[int, ...] = (42,)

    def validate(self) -> None:
        self.base.validate()
        self.rl.validate()
        require(self.base.b_share == 0, "base.b_share", self.base.b_share, "0 (each arm's share comes from `shares`)")
        require_floats(self.shares, "shares", 0.0, 1.0, max_len=16)
        require(len(set(self.shares)) == len(self.shares), "shares", self.shares, "distinct shares in [0, 1]")
        require_float(self.transfer_min_share, "transfer_min_share", 0.0, 1.0, lo_open=True)
        require_float(self.rl_b_share, "rl_b_share", 0.0, 1.0, lo_open=True, hi_open=True)
        require_int(self.table_samples, "table_samples", self.base.k_max, self.base.eval_samples,
                    f"k_max = {self.base.k_max} .. eval_samples = {self.base.eval_samples}")
        require_float(self.flat_margin, "flat_margin", 0.0, 1.0, lo_open=True)
        check_seeds(self.seeds)


TIERS = {
    "quick": Config(),
    "paper": Config(base=dr.PAPER_BASE, rl=dataclasses.replace(dr.PAPER_RL, reward="strict"), table_samples=256,
                    seeds=(42, 43, 44)),
}


def _bases(cfg: Config) -> dict[float, dr.BaseSpec]:
    return {float(s): dataclasses.replace(cfg.base, b_share=float(s)) for s in cfg.shares}


def _claim(cfg: Config, share: float) -> str:
    return f"{'transfers' if share >= cfg.transfer_min_share else 'no_transfer'}_at_{share:g}"


def _rl_plans(cfg: Config, runs: Runs) -> list[RunPlan]:
    """Per (judged seed, share): the base's context-B table (a zero-step run) and the RL arm (A and
    B tables). Programs do not read b_share, so every share's runs of one shape share a bucket."""
    model = dr.model(cfg.base)
    static = run_id({k: v for k, v in to_dict(cfg).items() if k not in ("seeds", "shares")})
    table_rl = dr.TableSpec(samples=cfg.table_samples, contexts=(0, 1))
    table_b = dr.TableSpec(samples=cfg.table_samples, contexts=(1,))
    none_rl = dataclasses.replace(cfg.rl, steps=0, chunk=1)
    plans = []
    for seed in cfg.seeds:
        for share, base_s in _bases(cfg).items():
            base = runs.one(stage="pretrain", seed=int(seed), b_share=share)
            bands, why = dr.seed_status(base_s, base, need=("edge",))
            if why is not None:
                continue
            params = jax.tree.map(np.asarray, lm_runs.params_from_arrays(model, base.arrays))
            shape = bands.edge[1]
            task = dr.band_params(cfg.base, [(cfg.base.id_lo, bands.edge[1])], shape,
                                  context_probs=[1.0 - cfg.rl_b_share, cfg.rl_b_share, 0.0])
            row = {"seed": int(seed), "b_share": share}
            plans.append(RunPlan(row={**row, "arm": "base"}, bucket=("base-b", shape, static), label="base-b-table",
                                 hp=dr.rl_hp(params, task, seed, none_rl),
                                 build=functools.partial(dr.rl_program, cfg.base, none_rl, shape, table_b), parent=base))
            plans.append(RunPlan(row={**row, "arm": "rl"}, bucket=("rl", shape, static), label="rl-ab",
                                 hp=dr.rl_hp(params, task, seed, cfg.rl),
                                 build=functools.partial(dr.rl_program, cfg.base, cfg.rl, shape, table_rl), parent=base))
    return plans


def stages(cfg: Config) -> list[Stage]:
    return [dr.pretrain_stage_over(_bases(cfg), cfg.seeds, "b_share"), Stage("rl", functools.partial(_rl_plans, cfg))]


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: per (seed, share, arm base | rl, context A | B), process-verified pass@1 and pass@k_max on
    the ID / edge / hard bands with intervals. Metrics: per share, RL's paired gains in each context
    on the edge band. Arrays: per-op pass@1 and pass@k_max of every row."""
    k = cfg.base.k_max
    tables, bands_of, skipped, rows = {}, {}, {}, []
    for seed in cfg.seeds:
        s = int(seed)
        for share, base_s in _bases(cfg).items():
            base = runs.one(stage="pretrain", seed=s, b_share=share)
            bands, why = dr.seed_status(base_s, base, need=("edge",))
            bands_of[(s, share)] = bands
            if why is not None:
                skipped[f"seed {s}, b_share {share:g}"] = why
            tables[(s, share, "base", 0)] = dr.eval_half(base.arrays)
            for run in runs.where(stage="rl", seed=s, b_share=share):
                for c in (0, 1):
                    if f"final/{dr.table_prefix(c)}/perfect" in run.arrays:
                        tables[(s, share, run.row["arm"], c)] = dr.eval_half(run.arrays, c)
    for (s, share, arm, c), t in sorted(tables.items()):
        bands = bands_of[(s, share)]
        row = {"seed": s, "b_share": share, "arm": arm, "context": CONTEXTS[c], "bands": bands.to_dict()}
        for name in ("id", "edge", "hard"):
            for label, kk in (("pass1", 1), (f"pass{k}", k)):
                mean, lo, hi = dr.band_ci(t, dr.ops_of(getattr(bands, name)), kk)
                row[f"{name}_{label}"], row[f"{name}_{label}_lo"], row[f"{name}_{label}_hi"] = mean, lo, hi
        rows.append(row)
    verdicts, metrics = _verdicts(cfg, tables, bands_of, skipped)
    paper = {"claim": "with 0% or 0.1% context-B exposure (op 2 only) RL does not transfer to B; with >= 1% it does, "
                      "even at the hardest ops", "figure": "Fig. 4", "seeds_left_out": skipped,
             "bands": {f"seed {s}, b_share {sh:g}": b.to_dict() for (s, sh), b in bands_of.items()},
             "gate": {f"seed {r.row['seed']}, b_share {r.row['b_share']:g}": None if r.gate is None else r.gate.to_dict()
                      for r in runs.where(stage="pretrain")}}
    return Outcome.judged(metrics, rows, paper, verdicts, _arrays(cfg, tables))


def _verdicts(cfg: Config, tables, bands_of, skipped) -> tuple[dict[str, Verdict], dict]:
    """Per share: RL's paired gain on the edge band in context A (the precondition) and in context B
    (the claim), pooled over the seeds whose base at that share is judged and whose arms ran.
    `tables[(seed, share, arm, context)]` are evaluation-half tables; `bands_of[(seed, share)]`."""
    k, margin = cfg.base.k_max, cfg.flat_margin
    metrics, v = {}, {}
    for share in (float(s) for s in cfg.shares):
        name = _claim(cfg, share)
        seeds = [s for s in (int(x) for x in cfg.seeds)
                 if f"seed {s}, b_share {share:g}" not in skipped and (s, share, "rl", 1) in tables
                 and (s, share, "base", 1) in tables]
        if not seeds:
            why = "; ".join(f"{key}: {reason}" for key, reason in skipped.items() if key.endswith(f"b_share {share:g}"))
            v[name] = not_judged(f"no judged seed at b_share {share:g}" + (f" ({why})" if why else ""))
            continue
        if cfg.rl.steps == 0:
            v[name] = not_judged("rl.steps = 0: no RL step was taken")
            continue
        gains = {}
        for c in (0, 1):
            ops = {s: dr.ops_of(bands_of[(s, share)].edge) for s in seeds}
            per_seed = [(s, dr.band_rows(tables[(s, share, "rl", c)], ops[s], k)) for s in seeds]
            rl_rows = np.concatenate([r for _, r in per_seed])
            base_rows = np.concatenate([dr.band_rows(tables[(s, share, "base", c)], ops[s], k) for s in seeds])
            g = gains[c] = dr.paired_gain_rows(rl_rows, base_rows, clusters=dr.seed_clusters(per_seed))
            tag = f"{CONTEXTS[c]}_{share:g}"
            metrics.update({f"gain_{tag}": g.diff, f"gain_{tag}_lo": g.lo, f"gain_{tag}_hi": g.hi,
                            f"base_{tag}": g.b, f"rl_{tag}": g.a})
        a, b = gains[0], gains[1]
        what = (f"b_share {share:g}: RL's context-B gain in pass@{k} on edge ops {b.diff:+.3f} [{b.lo:+.3f}, {b.hi:+.3f}]"
                f" (context A: {a.diff:+.3f} [{a.lo:+.3f}, {a.hi:+.3f}])")
        if share >= cfg.transfer_min_share:
            raw = Verdict(PASS if b.lo > 0 else FAIL, b.diff, 0.0, b.lo, b.se, what + "; must be above 0",
                          paper=">= 1% exposure: RL carries deep reasoning over to the long-tail context")
        else:
            raw = Verdict(PASS if b.hi < margin else FAIL, b.hi, margin, margin - b.hi, b.se,
                          what + f"; its upper end must be below {margin}",
                          paper="0% or 0.1% exposure: RL fails to transfer reasoning to the new context")
        v[name] = judged_if({f"RL raised context A's pass@{k} on the edge ops (interval above 0; it is "
                             f"{a.diff:+.3f} [{a.lo:+.3f}, {a.hi:+.3f}])": a.lo > 0}, raw)
    return v, metrics


def _arrays(cfg: Config, tables) -> dict:
    keys = sorted(tables)
    k = cfg.base.k_max
    return {"row_seed": np.array([key[0] for key in keys]), "row_share": np.array([key[1] for key in keys]),
            "row_arm": np.array([key[2] for key in keys]), "row_context": np.array([key[3] for key in keys]),
            "ops": np.asarray(cfg.base.eval_ops),
            "pass1_RxO": np.stack([dr.pass_curves(tables[key], k)[:, 0] for key in keys]),
            "passk_RxO": np.stack([dr.pass_curves(tables[key], k)[:, -1] for key in keys])}


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
    k = cfg["base"]["k_max"]
    fig, axes = plotting.subplots(1, 2, width=4.6, height=4.0)
    for col, c in enumerate((1, 0)):
        ax = axes[0, col]
        for j, share in enumerate(cfg["shares"]):
            for arm, ls in (("base", "--"), ("rl", "-")):
                sel = (arrays["row_share"] == share) & (arrays["row_arm"] == arm) & (arrays["row_context"] == c)
                if np.any(sel):
                    ax.plot(arrays["ops"], arrays["passk_RxO"][sel].mean(0), ls=ls, marker="o", ms=3, color=f"C{j}",
                            label=f"{share:g} {'RL' if arm == 'rl' else 'base'}")
        ax.axvline(cfg["base"]["id_hi"] + 0.5, color="0.6", lw=0.8)
        ax.set_xlabel("op")
        ax.set_ylabel(f"process-verified pass@{k}, context {CONTEXTS[c]}")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=6, title="B share in pre-training", title_fontsize=6)
    fig.suptitle(f"{ID}: GRPO (strict reward) on a 50/50 A/B mix; context B seen only at op 2 in pre-training")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
