"""dag-pretrain-hard-exposure: RL gains most where pre-training left headroom on the hard ID ops.

Zhang, Neubig and Yue (arXiv 2512.07783), Observation 7, Fig. 15 (spec `dag_arithmetic.md` §6.1,
§9.1 "when pre-training already covers the range, RL adds less"), at theory scale on DAG-lite. One
stored base per share h in `hard_shares` of the hard ID band (medium_max+1..id_hi) in pre-training,
the rest split between easy and medium in the main mix's 2:3 (`dag_runs.hard_share_mix`; h = 0.5 is
the shared base). Deviation: the paper's headroom presets are h = 0.001, 0.05, 0.2, 0.5 with the rest
split 1:1 or 5:3; keeping 2:3 lets h = 0.5 reuse the shared base, and h = 0 is the limit of 0.001.
Every base is gated on the easy and medium ops only (the lookup was learned), so the gate does not
select on the hard ops under study. From each gated base: a zero-step run that samples the base's
table and GRPO (the paper's outcome reward) on the hard ID band (as its RL on op 7-10, the top of its
ID band), then the same table (same problems and sampling keys for every base, so learning off gives
equal tables and every comparison pairs per problem). The hard ID ops are fixed, not selected, so
every problem counts. Claims, for each share p strictly between the smallest and largest (paired
cluster-bootstrap 95% intervals over seeds and problems): `gain_at_<p>_above_<q>` for q the smallest
and the largest share: RL's relative gain on the hard ID ops, the share of headroom it closed,
sum(RL - base) / sum(1 - base) of process-verified pass@1, is larger at p than at q (interval of the
difference above 0). Relative, not absolute: an absolute gain against a base near its ceiling (h =
0.5) is capped by the ceiling, not by RL; the absolute gains are reported too. Judged only where RL
raised pass@1 at p (interval above 0): a "largest gain" of nothing, beside a base RL damaged, is no
evidence. rl.steps = 0, or a share whose base fails its gate, judges nothing that needs it. The claim
is about pre-training, so even the quick tier trains a base per share beyond the shared one.
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
from theoryrl.core.verdicts import FAIL, PASS, Verdict, judged_if, not_judged
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


def gate_ops(cfg: Config) -> list[int]:
    """The ops every share pre-trains: easy and medium (the hard ID ops are what varies)."""
    return list(range(cfg.base.id_lo, cfg.base.medium_max + 1))


def _rl_plans(cfg: Config, runs: Runs) -> list[RunPlan]:
    """Per (seed, share) whose base passed its gate: a zero-step run (the base's table) and GRPO on
    the hard ID band at the ID shapes; programs do not read the mix, so all shares share two buckets."""
    model = dr.model(cfg.base)
    static = run_id({k: v for k, v in to_dict(cfg).items() if k not in ("seeds", "hard_shares")})
    ops = hard_id_ops(cfg.base)
    table = dr.TableSpec(samples=cfg.table_samples)
    task = dr.band_params(cfg.base, [(ops[0], ops[-1])], cfg.base.id_hi)
    none_rl = dataclasses.replace(cfg.rl, steps=0, chunk=1)
    plans = []
    for seed in cfg.seeds:
        for h, base_h in _bases(cfg).items():
            base = runs.one(stage="pretrain", seed=int(seed), hard_share=h)
            if dr.seed_status(base_h, base, need=())[1] is not None:
                continue
            params = jax.tree.map(np.asarray, lm_runs.params_from_arrays(model, base.arrays))
            for arm, rl in (("base", none_rl), ("rl", cfg.rl)):
                plans.append(RunPlan(row={"seed": int(seed), "hard_share": h, "arm": arm}, bucket=(arm, static),
                                     label=f"{arm}-hard-id", hp=dr.rl_hp(params, task, seed, rl),
                                     build=functools.partial(dr.rl_program, cfg.base, rl, cfg.base.id_hi, table),
                                     parent=base))
    return plans


def stages(cfg: Config) -> list[Stage]:
    return [dr.pretrain_stage_over(_bases(cfg), cfg.seeds, "hard_share", gate_ops=gate_ops(cfg)),
            Stage("rl", functools.partial(_rl_plans, cfg))]


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: per (seed, share, arm base | rl), process-verified pass@1 and pass@k_max on the hard ID
    ops (every problem) and on the base's calibrated edge and hard bands (evaluation half), with
    intervals. Metrics: per share, RL's paired absolute and relative gains on the hard ID ops; per
    claim, the difference of two shares' relative gains. Arrays: per-op pass@1 and pass@k_max."""
    k = cfg.base.k_max
    tables, skipped, rows, bands_of = {}, {}, [], {}
    for seed in cfg.seeds:
        s = int(seed)
        for h, base_h in _bases(cfg).items():
            bands, why = dr.seed_status(base_h, runs.one(stage="pretrain", seed=s, hard_share=h), need=())
            bands_of[(s, h)] = bands
            if why is not None:
                skipped[f"seed {s}, hard_share {h:g}"] = why
            for run in runs.where(stage="rl", seed=s, hard_share=h):
                tables[(s, h, run.row["arm"])] = dr.table_from_arrays(run.arrays, "eval")
    for (s, h, arm), t in sorted(tables.items()):
        bands = bands_of[(s, h)]
        row = {"seed": s, "hard_share": h, "arm": arm, "mix": list(_bases(cfg)[h].mix), "bands": bands.to_dict()}
        half = dr.split_table(t)[1]
        for name, ops, table in (("hard_id", hard_id_ops(cfg.base), t), ("edge", dr.ops_of(bands.edge), half),
                                 ("hard", dr.ops_of(bands.hard), half)):
            for label, kk in (("pass1", 1), (f"pass{k}", k)):
                mean, lo, hi = dr.band_ci(table, ops, kk)
                row[f"{name}_{label}"], row[f"{name}_{label}_lo"], row[f"{name}_{label}_hi"] = mean, lo, hi
        rows.append(row)
    verdicts, metrics = _verdicts(cfg, tables, skipped)
    paper = {"claim": "RL's gain on the hardest ID ops is largest at partial pre-training exposure and shrinks as "
                      "pre-training covers them", "figure": "Fig. 15", "seeds_left_out": skipped,
             "mixes": {f"{h:g}": list(b.mix) for h, b in _bases(cfg).items()}, "gate_ops": gate_ops(cfg),
             "bands": {f"seed {s}, hard_share {h:g}": b.to_dict() for (s, h), b in bands_of.items()},
             "gate": {f"seed {r.row['seed']}, hard_share {r.row['hard_share']:g}":
                      None if r.gate is None else r.gate.to_dict() for r in runs.where(stage="pretrain")}}
    return Outcome.judged(metrics, rows, paper, verdicts, _arrays(cfg, tables))


def claim_names(cfg: Config) -> list[tuple[str, float, float]]:
    """(name, partial share, compared share) of every claim."""
    shares = sorted(float(h) for h in cfg.hard_shares)
    lo, hi = shares[0], shares[-1]
    return [(f"gain_at_{p:g}_above_{q:g}", p, q) for p in shares[1:-1] for q in (lo, hi)]


def _per_seed(tables, h, seeds, ops, kk) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(seed, RL rows, base rows) of per-problem pass@kk on `ops`."""
    return [(s, dr.band_rows(tables[(s, h, "rl")], ops, kk), dr.band_rows(tables[(s, h, "base")], ops, kk))
            for s in seeds]


def _verdicts(cfg: Config, tables, skipped) -> tuple[dict[str, Verdict], dict]:
    """`tables[(seed, share, arm)]`: whole tables (arm "base" from the zero-step run). Per share: RL's
    absolute gain (paired rows) and relative gain sum(RL - base) / sum(1 - base) on the hard ID ops."""
    k, ops = cfg.base.k_max, hard_id_ops(cfg.base)
    metrics, v = {}, {}
    judged = {h: [int(s) for s in cfg.seeds if f"seed {int(s)}, hard_share {h:g}" not in skipped
                  and all((int(s), h, arm) in tables for arm in ("base", "rl"))] for h in (float(x) for x in cfg.hard_shares)}
    for h, seeds in judged.items():
        if not seeds:
            continue
        for kk in (1, k):
            per = _per_seed(tables, h, seeds, ops, kk)
            g = dr.paired_gain_rows(np.concatenate([a for _, a, _ in per]), np.concatenate([b for _, _, b in per]),
                                    clusters=dr.seed_clusters([(s, a) for s, a, _ in per]), crossed=True)
            metrics.update({f"gain_pass{kk}_{h:g}": g.diff, f"gain_pass{kk}_{h:g}_lo": g.lo,
                            f"gain_pass{kk}_{h:g}_hi": g.hi, f"base_pass{kk}_{h:g}": g.b})
        per = _per_seed(tables, h, seeds, ops, 1)
        diff, room = np.concatenate([a - b for _, a, b in per]), np.concatenate([1.0 - b for _, _, b in per])
        metrics[f"relative_gain_{h:g}"] = float(diff.sum() / room.sum()) if room.sum() > 0 else float("nan")
    for name, p, q in claim_names(cfg):
        if cfg.rl.steps == 0:
            v[name] = not_judged("rl.steps = 0: no RL step was taken")
            continue
        seeds = [s for s in judged[p] if s in judged[q]]
        if not seeds:
            why = "; ".join(f"{key}: {r}" for key, r in skipped.items() if key.endswith((f"share {p:g}", f"share {q:g}")))
            v[name] = not_judged(f"no seed where the bases at hard shares {p:g} and {q:g} are both gated and run"
                                 + (f" ({why})" if why else ""))
            continue
        per_p, per_q = _per_seed(tables, p, seeds, ops, 1), _per_seed(tables, q, seeds, ops, 1)
        d = dr.paired_ratio_gain(*(np.concatenate(x) for x in (
            [a - b for _, a, b in per_p], [1.0 - b for _, _, b in per_p],
            [a - b for _, a, b in per_q], [1.0 - b for _, _, b in per_q])),
            clusters=dr.seed_clusters([(s, a) for s, a, _ in per_p]), crossed=True)
        metrics.update({f"{name}_diff": d.diff, f"{name}_lo": d.lo, f"{name}_hi": d.hi})
        g_p = dr.paired_gain_rows(np.concatenate([a for _, a, _ in per_p]), np.concatenate([b for _, _, b in per_p]),
                                  clusters=dr.seed_clusters([(s, a) for s, a, _ in per_p]), crossed=True)
        raw = (not_judged(f"no headroom at hard share {p:g} or {q:g}: the base's pass@1 is 1 on every problem")
               if not np.isfinite(d.diff) else
               Verdict(PASS if d.lo > 0 else FAIL, d.diff, 0.0, d.lo, d.se,
                       f"share of headroom RL closed on hard ID ops {ops[0]}..{ops[-1]} (pass@1): {d.a:+.3f} at hard "
                       f"share {p:g} minus {d.b:+.3f} at {q:g} = {d.diff:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}] "
                       "(must be above 0)",
                       paper="RL's gain is largest at partial exposure; it shrinks as pre-training covers the range"))
        v[name] = judged_if({f"RL raised pass@1 on the hard ID ops at hard share {p:g} (interval above 0; it is "
                             f"{g_p.diff:+.3f} [{g_p.lo:+.3f}, {g_p.hi:+.3f}])": g_p.lo > 0}, raw)
    return v, metrics


def _arrays(cfg: Config, tables) -> dict:
    keys = sorted(tables)
    k = cfg.base.k_max
    return {"row_seed": np.array([key[0] for key in keys]), "row_share": np.array([key[1] for key in keys]),
            "row_arm": np.array([key[2] for key in keys]), "ops": np.asarray(cfg.base.eval_ops),
            **dr.curve_arrays(tables, keys, k)}


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
