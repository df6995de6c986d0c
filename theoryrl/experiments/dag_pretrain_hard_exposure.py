"""dag-pretrain-hard-exposure: RL gains most where pre-training left headroom on the hard ID ops.

Zhang, Neubig and Yue (arXiv 2512.07783), Observation 7, Fig. 15 (spec `dag_arithmetic.md` §6.1's
headroom presets, §9.1 "when pre-training already covers the range, RL adds less"), at theory scale
on DAG-lite. One stored base per share h in `hard_shares` of the hard ID band (medium_max+1..id_hi)
in the pre-training mixture, the rest split between easy and medium in the main mix's 2:3 ratio
(`dag_runs.hard_share_mix`; h = 0.5 is the shared base of the other DAG experiments). A base is
gated on the ops it was pre-trained on (h = 0 leaves the hard ID ops out of its gate). From each
gated base, GRPO (the paper's outcome reward) on the hard ID band, as the paper's RL on op 7-10
(the top of its ID band), then the evaluation table on the same fixed problems, so every RL-vs-base
difference, and every difference between two bases' RL gains, is paired per problem (all bases are
evaluated on the same problems). Numbers come from the tables' second halves. Claims, for each
partial share p strictly between the smallest and largest share (process-verified pass@1 on the
hard ID ops, pooled over seeds, paired cluster-bootstrap 95% intervals): `gain_at_<p>_above_<lo>` and
`gain_at_<p>_above_<hi>`: RL's gain at p exceeds its gain at the smallest / largest share (interval
of the difference above 0). The judged measure is the absolute pass@1 gain: pass@k_max on ID ops
is capped near 1 by the gate itself, and a relative gain divides by a base near 0 at h = 0; both
are reported (the relative one as the share of headroom closed, gain / (1 - base)). Learning off
(rl.lr = 0) makes every gain 0, so no claim passes; rl.steps = 0, or a share whose base fails its
gate, judges nothing that needs it.
Measurements by run id: docs/results/dag-pretrain-hard-exposure.md.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import jax
import numpy as np

from theoryrl.core.config import check_seeds, require, require_floats, require_int, run_id, to_dict
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, RunPlan, Runs, Stage
from theoryrl.core.verdicts import FAIL, PASS, Verdict, not_judged
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import lm_runs

ID = "dag-pretrain-hard-exposure"
TITLE = "DAG arithmetic: RL's gain on the hardest ID ops is largest at partial pre-training exposure"
PAPER = "Zhang, Neubig, Yue 2512.07783, Observation 7 / Fig. 15"


@dataclasses.dataclass(frozen=True)
class Config:
    base: dr.BaseSpec = dr.BaseSpec()  # its mix's easy:medium ratio is kept; the hard share comes from hard_shares
    hard_shares: tuple[float, ...] = (0.0, 0.2, 0.5)
    rl: dr.RLKnobs = dr.RLKnobs()
    table_samples: int = 32
    seeds: tuple[int, ...] = (42,)

    def validate(self) -> None:
        self.base.validate()
        self.rl.validate()
        require(self.base.id_hi > self.base.medium_max, "base.medium_max", self.base.medium_max,
                f"below id_hi = {self.base.id_hi} (the hard ID band must hold an op)")
        require(self.base.mix[0] + self.base.mix[1] > 0, "base.mix", self.base.mix, "an easy or medium share")
        require_floats(self.hard_shares, "hard_shares", 0.0, 1.0, hi_open=True, min_len=3, max_len=16,
                       allowed="3..16 distinct shares in [0, 1) (a partial share between the smallest and largest; "
                               "some pre-training must be easy or medium)")
        require(len(set(self.hard_shares)) == len(self.hard_shares), "hard_shares", self.hard_shares,
                "distinct shares in [0, 1)")
        require_int(self.table_samples, "table_samples", self.base.k_max, self.base.eval_samples,
                    f"k_max = {self.base.k_max} .. eval_samples = {self.base.eval_samples}")
        check_seeds(self.seeds)


TIERS = {
    "quick": Config(),
    "paper": Config(base=dr.PAPER_BASE, rl=dr.PAPER_RL, table_samples=256, seeds=(42, 43, 44)),
}


def _bases(cfg: Config) -> dict[float, dr.BaseSpec]:
    return {float(h): dataclasses.replace(cfg.base, mix=dr.hard_share_mix(cfg.base.mix, h)) for h in cfg.hard_shares}


def hard_id_ops(base: dr.BaseSpec) -> list[int]:
    return list(range(base.medium_max + 1, base.id_hi + 1))


def _rl_plans(cfg: Config, runs: Runs) -> list[RunPlan]:
    """One GRPO run per (seed, share) whose base passed its gate, on the hard ID band at the ID
    shapes; programs do not read the mix, so all shares share one bucket."""
    model = dr.model(cfg.base)
    static = run_id({k: v for k, v in to_dict(cfg).items() if k not in ("seeds", "hard_shares")})
    ops = hard_id_ops(cfg.base)
    table = dr.TableSpec(samples=cfg.table_samples)
    plans = []
    for seed in cfg.seeds:
        for h, base_h in _bases(cfg).items():
            base = runs.one(stage="pretrain", seed=int(seed), hard_share=h)
            _, why = dr.seed_status(base_h, base, need=())
            if why is not None:
                continue
            params = jax.tree.map(np.asarray, lm_runs.params_from_arrays(model, base.arrays))
            task = dr.band_params(cfg.base, [(ops[0], ops[-1])], cfg.base.id_hi)
            plans.append(RunPlan(row={"seed": int(seed), "hard_share": h, "arm": "rl"}, bucket=("rl", static),
                                 label="rl-hard-id", hp=dr.rl_hp(params, task, seed, cfg.rl),
                                 build=functools.partial(dr.rl_program, cfg.base, cfg.rl, cfg.base.id_hi, table),
                                 parent=base))
    return plans


def stages(cfg: Config) -> list[Stage]:
    return [dr.pretrain_stage_over(_bases(cfg), cfg.seeds, "hard_share"), Stage("rl", functools.partial(_rl_plans, cfg))]


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: per (seed, share, arm base | rl), process-verified pass@1 and pass@k_max on the hard ID
    ops and on the base's calibrated edge and hard bands, with intervals. Metrics: per share, RL's
    paired gain on the hard ID ops; per claim, the difference of two shares' gains. Arrays: per-op
    pass@1 and pass@k_max of every row."""
    k = cfg.base.k_max
    tables, skipped, rows, bands_of = {}, {}, [], {}
    for seed in cfg.seeds:
        s = int(seed)
        for h, base_h in _bases(cfg).items():
            base = runs.one(stage="pretrain", seed=s, hard_share=h)
            bands, why = dr.seed_status(base_h, base, need=())
            bands_of[(s, h)] = bands
            if why is not None:
                skipped[f"seed {s}, hard_share {h:g}"] = why
            tables[(s, h, "base")] = dr.eval_half(base.arrays)
            for run in runs.where(stage="rl", seed=s, hard_share=h):
                tables[(s, h, "rl")] = dr.eval_half(run.arrays)
    for (s, h, arm), t in sorted(tables.items()):
        bands = bands_of[(s, h)]
        row = {"seed": s, "hard_share": h, "arm": arm, "mix": list(_bases(cfg)[h].mix), "bands": bands.to_dict()}
        for name, ops in (("hard_id", hard_id_ops(cfg.base)), ("edge", dr.ops_of(bands.edge)),
                          ("hard", dr.ops_of(bands.hard))):
            for label, kk in (("pass1", 1), (f"pass{k}", k)):
                mean, lo, hi = dr.band_ci(t, ops, kk)
                row[f"{name}_{label}"], row[f"{name}_{label}_lo"], row[f"{name}_{label}_hi"] = mean, lo, hi
        rows.append(row)
    verdicts, metrics = _verdicts(cfg, tables, skipped)
    paper = {"claim": "RL's gain on the hardest ID ops is largest at partial pre-training exposure and shrinks as "
                      "pre-training covers them", "figure": "Fig. 15", "seeds_left_out": skipped,
             "mixes": {f"{h:g}": list(b.mix) for h, b in _bases(cfg).items()},
             "bands": {f"seed {s}, hard_share {h:g}": b.to_dict() for (s, h), b in bands_of.items()},
             "gate": {f"seed {r.row['seed']}, hard_share {r.row['hard_share']:g}":
                      None if r.gate is None else r.gate.to_dict() for r in runs.where(stage="pretrain")}}
    return Outcome.judged(metrics, rows, paper, verdicts, _arrays(cfg, tables))


def claim_names(cfg: Config) -> list[tuple[str, float, float]]:
    """(name, partial share, compared share) of every claim."""
    shares = sorted(float(h) for h in cfg.hard_shares)
    lo, hi = shares[0], shares[-1]
    return [(f"gain_at_{p:g}_above_{q:g}", p, q) for p in shares[1:-1] for q in (lo, hi)]


def _verdicts(cfg: Config, tables, skipped) -> tuple[dict[str, Verdict], dict]:
    """`tables[(seed, share, arm)]`: evaluation-half tables. A share's gain rows are per problem of
    the hard ID ops (RL pass@1 - base pass@1), pooled over the seeds where both compared shares ran."""
    k, ops = cfg.base.k_max, hard_id_ops(cfg.base)
    metrics, v = {}, {}
    judged = {h: [int(s) for s in cfg.seeds if f"seed {int(s)}, hard_share {h:g}" not in skipped
                  and (int(s), h, "rl") in tables] for h in (float(x) for x in cfg.hard_shares)}
    for h, seeds in judged.items():
        for kk in (1, k):
            if seeds:
                per_seed = [(s, dr.band_rows(tables[(s, h, "rl")], ops, kk)) for s in seeds]
                g = dr.paired_gain_rows(np.concatenate([r for _, r in per_seed]),
                                        np.concatenate([dr.band_rows(tables[(s, h, "base")], ops, kk) for s in seeds]),
                                        clusters=dr.seed_clusters(per_seed))
                metrics.update({f"gain_pass{kk}_{h:g}": g.diff, f"gain_pass{kk}_{h:g}_lo": g.lo,
                                f"gain_pass{kk}_{h:g}_hi": g.hi, f"base_pass{kk}_{h:g}": g.b,
                                f"headroom_closed_pass{kk}_{h:g}": g.diff / (1.0 - g.b) if g.b < 1 else float("nan")})
    names = claim_names(cfg)
    if not names:
        return {}, metrics
    for name, p, q in names:
        if cfg.rl.steps == 0:
            v[name] = not_judged("rl.steps = 0: no RL step was taken")
            continue
        seeds = [s for s in judged[p] if s in judged[q]]
        if not seeds:
            why = "; ".join(f"{key}: {r}" for key, r in skipped.items() if key.endswith((f"share {p:g}", f"share {q:g}")))
            v[name] = not_judged(f"no seed where the bases at hard shares {p:g} and {q:g} are both gated and trained"
                                 + (f" ({why})" if why else ""))
            continue

        def gain_rows(h: float) -> list[tuple[int, np.ndarray]]:
            return [(s, dr.band_rows(tables[(s, h, "rl")], ops, 1) - dr.band_rows(tables[(s, h, "base")], ops, 1))
                    for s in seeds]

        d = dr.paired_gain_rows(np.concatenate([r for _, r in gain_rows(p)]), np.concatenate([r for _, r in gain_rows(q)]),
                                clusters=dr.seed_clusters(gain_rows(p)))
        metrics.update({f"{name}_diff": d.diff, f"{name}_lo": d.lo, f"{name}_hi": d.hi})
        v[name] = Verdict(PASS if d.lo > 0 else FAIL, d.diff, 0.0, d.lo, d.se,
                          f"RL's pass@1 gain on hard ID ops {ops[0]}..{ops[-1]} at hard share {p:g} ({d.a:+.3f}) minus at "
                          f"{q:g} ({d.b:+.3f}): {d.diff:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}] (must be above 0)",
                          paper="RL's gain is largest at partial exposure; it shrinks as pre-training covers the range")
    return v, metrics


def _arrays(cfg: Config, tables) -> dict:
    keys = sorted(tables)
    k = cfg.base.k_max
    return {"row_seed": np.array([key[0] for key in keys]), "row_share": np.array([key[1] for key in keys]),
            "row_arm": np.array([key[2] for key in keys]), "ops": np.asarray(cfg.base.eval_ops),
            "pass1_RxO": np.stack([dr.pass_curves(tables[key], k)[:, 0] for key in keys]),
            "passk_RxO": np.stack([dr.pass_curves(tables[key], k)[:, -1] for key in keys])}


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
    k = cfg["base"]["k_max"]
    fig, axes = plotting.subplots(1, 2, width=4.6, height=4.0)
    for col, (key, label) in enumerate((("pass1_RxO", "pass@1"), ("passk_RxO", f"pass@{k}"))):
        ax = axes[0, col]
        for j, h in enumerate(cfg["hard_shares"]):
            for arm, ls in (("base", "--"), ("rl", "-")):
                sel = (arrays["row_share"] == h) & (arrays["row_arm"] == arm)
                if np.any(sel):
                    ax.plot(arrays["ops"], arrays[key][sel].mean(0), ls=ls, marker="o", ms=3, color=f"C{j}",
                            label=f"{h:g} {'RL' if arm == 'rl' else 'base'}")
        ax.axvspan(cfg["base"]["medium_max"] + 0.5, cfg["base"]["id_hi"] + 0.5, color="0.9")
        ax.set_xlabel("op (shaded: the hard ID ops, where RL trains)")
        ax.set_ylabel(f"process-verified {label}")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=6, title="hard share in pre-training", title_fontsize=6)
    fig.suptitle(f"{ID}: GRPO on the hard ID ops from bases with 0-50% of them in pre-training")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
