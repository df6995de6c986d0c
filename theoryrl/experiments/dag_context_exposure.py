"""dag-context-exposure: RL carries reasoning to a new surface context only if pre-training saw it.

Zhang, Neubig and Yue (arXiv 2512.07783), Observations 2 and 5, Fig. 4 (spec `dag_arithmetic.md`
§6.4, §9.2, §11.8), at theory scale on DAG-lite. Context B (the generator's second template: the
same structure, disjoint noun tokens) is in pre-training only as op-2 problems, at a share `b_share`
in `shares` of the pre-training problems (one stored base per share; share 0 is the shared base).
Deviation: context A is pre-trained on the ID band only (the paper: every op, 2-20), so "deep ops
A knows" are the ID ops above op 2. The bands come from the smallest share's base (its first half of
problems), one band for every share. From each gated base: a zero-step run that samples the base's
A and B tables, and GRPO with the strict reward (spec §7.4) on a 50/50 A/B mix (`rl_b_share`) of ops
id_lo..edge_hi followed by the same tables (same problems and sampling keys, so learning off gives
equal tables). Claims per share s (process-verified pass@k_max, paired cluster-bootstrap 95%
intervals, pooled over seeds): on the ID ops above op 2 (`<claim>_at_<s>`) and on the edge band
(`<claim>_edge_at_<s>`), below `transfer_min_share` (the paper: 0, 0.1%) `no_transfer`: RL's
context-B gain lies below `flat_margin`; at or above it (1%, 10%) `transfers`: the B gain is above
0. Each is judged only with headroom (B's base below A's base by flat_margin there) and, for
no_transfer, only when RL learned (context A's pass@1 on the RL ops rose; on the edge, A's pass@k_max
rose). The hard band is reported, not judged: by definition the base never solves it. The claim is
about pre-training, so even the quick tier trains a base per share beyond the shared one, each at the
shared base's recipe: a shorter recipe put the bases on the ID ops' learning transition, where the
same recipe passes or fails its gate by chance (see the results page).
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
        require_floats(self.shares, "shares", 0.0, 1.0, hi_open=True, max_len=16,
                       allowed="distinct shares in [0, 1) (some pre-training must be context A)")
        require(len(set(self.shares)) == len(self.shares), "shares", self.shares, "distinct shares in [0, 1)")
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


def _claim(cfg: Config, share: float, band: str) -> str:
    word = "transfers" if share >= cfg.transfer_min_share else "no_transfer"
    return f"{word}{'' if band == 'id' else '_' + band}_at_{share:g}"


def _deep_id_ops(cfg: Config) -> list[int]:
    """The pre-trained ID ops above context B's op 2: where A is competent and B never was shown."""
    return list(range(max(cfg.base.id_lo, 3), cfg.base.id_hi + 1))


def _reference(cfg: Config, runs: Runs, seed: int) -> tuple[dr.Bands, str | None]:
    """The bands every share uses: the smallest share's base's (its first half of problems)."""
    share = min(float(x) for x in cfg.shares)
    return dr.seed_status(_bases(cfg)[share], runs.one(stage="pretrain", seed=seed, b_share=share), need=("edge",))


def _rl_plans(cfg: Config, runs: Runs) -> list[RunPlan]:
    """Per (seed, share) whose base passed its gate, when the seed's reference base has an edge
    band: a zero-step run (the base's A and B tables) and the RL arm, on the reference's band.
    Programs do not read b_share, so all shares' runs share two buckets."""
    model = dr.model(cfg.base)
    static = run_id({k: v for k, v in to_dict(cfg).items() if k not in ("seeds", "shares")})
    tables = dr.TableSpec(samples=cfg.table_samples, contexts=(0, 1))
    none_rl = dataclasses.replace(cfg.rl, steps=0, chunk=1)
    plans = []
    for seed in cfg.seeds:
        bands, why = _reference(cfg, runs, int(seed))
        if why is not None:
            continue
        shape = bands.edge[1]
        task = dr.band_params(cfg.base, [(cfg.base.id_lo, shape)], shape,
                              context_probs=[1.0 - cfg.rl_b_share, cfg.rl_b_share, 0.0])
        for share, base_s in _bases(cfg).items():
            base = runs.one(stage="pretrain", seed=int(seed), b_share=share)
            if dr.seed_status(base_s, base, need=())[1] is not None:
                continue
            params = jax.tree.map(np.asarray, lm_runs.params_from_arrays(model, base.arrays))
            row = {"seed": int(seed), "b_share": share}
            for arm, rl in (("base", none_rl), ("rl", cfg.rl)):
                plans.append(RunPlan(row={**row, "arm": arm}, bucket=(arm, shape, static), label=f"{arm}-tables",
                                     hp=dr.rl_hp(params, task, seed, rl),
                                     build=functools.partial(dr.rl_program, cfg.base, rl, shape, tables), parent=base))
    return plans


def stages(cfg: Config) -> list[Stage]:
    return [dr.pretrain_stage_over(_bases(cfg), cfg.seeds, "b_share"), Stage("rl", functools.partial(_rl_plans, cfg))]


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows: per (seed, share, arm base | rl, context A | B), process-verified pass@1 and pass@k_max on
    the deep ID ops (above op 2), the edge and the hard band, with intervals. Context B's tables and
    the deep ID ops are never selected on, so their rows use every problem; A's edge and hard rows
    use the evaluation half. Metrics: per share and band, RL's paired gains in each context.
    Arrays: per-op pass@1, pass@k_max and outcome-only pass@k_max of every table."""
    k = cfg.base.k_max
    tables, bands_of, skipped, rows = {}, {}, {}, []
    for seed in cfg.seeds:
        s = int(seed)
        bands, why = _reference(cfg, runs, s)
        bands_of[s] = bands
        if why is not None:
            skipped[f"seed {s}"] = f"the reference base (b_share {min(cfg.shares):g}): {why}"
        for share, base_s in _bases(cfg).items():
            base_why = dr.seed_status(base_s, runs.one(stage="pretrain", seed=s, b_share=share), need=())[1]
            if base_why is not None:
                skipped[f"seed {s}, b_share {share:g}"] = base_why
            for run in runs.where(stage="rl", seed=s, b_share=share):
                for c in (0, 1):
                    tables[(s, share, run.row["arm"], c)] = dr.table_from_arrays(run.arrays, dr.table_prefix(c))
    for (s, share, arm, c), t in sorted(tables.items()):
        row = {"seed": s, "b_share": share, "arm": arm, "context": CONTEXTS[c], "bands": bands_of[s].to_dict()}
        for name, ops, table in _bands(cfg, bands_of[s], c, t):
            for label, kk in (("pass1", 1), (f"pass{k}", k)):
                mean, lo, hi = dr.band_ci(table, ops, kk)
                row[f"{name}_{label}"], row[f"{name}_{label}_lo"], row[f"{name}_{label}_hi"] = mean, lo, hi
        rows.append(row)
    verdicts, metrics = _verdicts(cfg, tables, bands_of, skipped)
    paper = {"claim": "with 0% or 0.1% context-B exposure (op 2 only) RL does not transfer to B; with >= 1% it does, "
                      "even at the hardest ops", "figure": "Fig. 4", "seeds_left_out": skipped,
             "bands": {s: b.to_dict() for s, b in bands_of.items()}, "deep_id_ops": _deep_id_ops(cfg),
             "gate": {f"seed {r.row['seed']}, b_share {r.row['b_share']:g}": None if r.gate is None else r.gate.to_dict()
                      for r in runs.where(stage="pretrain")}}
    return Outcome.judged(metrics, rows, paper, verdicts, _arrays(cfg, tables))


def _bands(cfg: Config, bands: dr.Bands, context: int, table: dict) -> list[tuple[str, list[int], dict]]:
    """(name, ops, table) of every band a row reports: A's calibrated bands on its evaluation half
    (the other half chose them); the deep ID ops and every context-B band on all problems."""
    half = table if context == 1 else dr.split_table(table)[1]
    return [("deep_id", _deep_id_ops(cfg), table), ("edge", dr.ops_of(bands.edge), half),
            ("hard", dr.ops_of(bands.hard), half)]


def _verdicts(cfg: Config, tables, bands_of, skipped) -> tuple[dict[str, Verdict], dict]:
    """Per share and band (deep ID ops, edge): RL's paired gains in contexts A and B, pooled over the
    seeds whose reference and share bases are judged and whose runs exist. `tables[(seed, share, arm,
    context)]` are whole tables; `bands_of[seed]` the reference bands; `skipped` names the reasons."""
    metrics, v = {}, {}
    for share in (float(x) for x in cfg.shares):
        seeds = [s for s in (int(x) for x in cfg.seeds) if f"seed {s}" not in skipped
                 and f"seed {s}, b_share {share:g}" not in skipped
                 and all((s, share, arm, c) in tables for arm in ("base", "rl") for c in (0, 1))]
        for band in ("id", "edge"):
            name = _claim(cfg, share, band)
            if not seeds:
                why = "; ".join(f"{key}: {r}" for key, r in skipped.items()
                                if key.endswith(f"b_share {share:g}") or "," not in key)
                v[name] = not_judged(f"no judged seed at b_share {share:g}" + (f" ({why})" if why else ""))
                continue
            if cfg.rl.steps == 0:
                v[name] = not_judged("rl.steps = 0: no RL step was taken")
                continue
            v[name] = _judge(cfg, share, band, seeds, tables, bands_of, metrics)
    _contrast(cfg, tables, bands_of, skipped, metrics)
    return v, metrics


def _contrast(cfg: Config, tables, bands_of, skipped, metrics) -> None:
    """The threshold itself, paired per problem: RL's context-B gain (pass@k_max) at the smallest
    share >= transfer_min_share minus at the largest share below it, on the same B problems and
    seeds (a metric with its interval; the claims judge each share on its own)."""
    above = [float(x) for x in cfg.shares if x >= cfg.transfer_min_share]
    below = [float(x) for x in cfg.shares if x < cfg.transfer_min_share]
    if not above or not below:
        return
    hi, lo, k = min(above), max(below), cfg.base.k_max
    seeds = [s for s in (int(x) for x in cfg.seeds) if f"seed {s}" not in skipped
             and all((s, sh, arm, 1) in tables for sh in (hi, lo) for arm in ("base", "rl"))]
    for band, ops_of_seed in (("id", lambda s: _deep_id_ops(cfg)), ("edge", lambda s: dr.ops_of(bands_of[s].edge))):
        if not seeds:
            continue

        def gain_rows(share):
            return [(s, dr.band_rows(tables[(s, share, "rl", 1)], ops_of_seed(s), k)
                     - dr.band_rows(tables[(s, share, "base", 1)], ops_of_seed(s), k)) for s in seeds]

        d = dr.paired_gain_rows(np.concatenate([r for _, r in gain_rows(hi)]),
                                np.concatenate([r for _, r in gain_rows(lo)]), clusters=dr.seed_clusters(gain_rows(hi)),
                                crossed=dr.same_problems(ops_of_seed(s) for s in seeds))
        tag = f"B_gain_{band}_{hi:g}_minus_{lo:g}"
        metrics.update({tag: d.diff, f"{tag}_lo": d.lo, f"{tag}_hi": d.hi})


def _gain(tables, share, seeds, context, ops_of_seed, kk, half: bool) -> dr.Gain:
    """RL - base on the same problems and sampling keys, pooled over seeds (clusters)."""
    def rows(arm, s):
        t = tables[(s, share, arm, context)]
        return dr.band_rows(dr.split_table(t)[1] if half else t, ops_of_seed(s), kk)

    per_seed = [(s, rows("rl", s)) for s in seeds]
    return dr.paired_gain_rows(np.concatenate([r for _, r in per_seed]),
                               np.concatenate([rows("base", s) for s in seeds]), clusters=dr.seed_clusters(per_seed),
                               crossed=dr.same_problems(ops_of_seed(s) for s in seeds))


def _judge(cfg: Config, share: float, band: str, seeds, tables, bands_of, metrics) -> Verdict:
    k, margin = cfg.base.k_max, cfg.flat_margin
    if band == "id":
        ops_of_seed, half_a = (lambda s: _deep_id_ops(cfg)), False
    else:
        ops_of_seed, half_a = (lambda s: dr.ops_of(bands_of[s].edge)), True
    a = _gain(tables, share, seeds, 0, ops_of_seed, k, half_a)
    b = _gain(tables, share, seeds, 1, ops_of_seed, k, False)
    # RL learned: A's pass@1 on the ID ops it trained on (never selected on, unlike the edge)
    learned = _gain(tables, share, seeds, 0, lambda s: cfg.base.id_ops, 1, False) if band == "id" else a
    tag = f"{band}_{share:g}"
    metrics.update({f"gain_A_{tag}": a.diff, f"gain_A_{tag}_lo": a.lo, f"gain_A_{tag}_hi": a.hi,
                    f"gain_B_{tag}": b.diff, f"gain_B_{tag}_lo": b.lo, f"gain_B_{tag}_hi": b.hi,
                    f"base_A_{tag}": a.b, f"base_B_{tag}": b.b, f"rl_A_{tag}": a.a, f"rl_B_{tag}": b.a})
    where = "the ID ops above op 2" if band == "id" else "the edge ops"
    what = (f"b_share {share:g}: RL's context-B gain in pass@{k} on {where} {b.diff:+.3f} [{b.lo:+.3f}, {b.hi:+.3f}] "
            f"(B base {b.b:.3f}; context A: {a.diff:+.3f} [{a.lo:+.3f}, {a.hi:+.3f}] from {a.b:.3f})")
    headroom = {f"B has headroom: its base pass@{k} there ({b.b:.3f}) is at least {margin} below A's ({a.b:.3f})":
                a.b - b.b >= margin}
    if share >= cfg.transfer_min_share:
        raw = Verdict(PASS if b.lo > 0 else FAIL, b.diff, 0.0, b.lo, b.se, what + "; must be above 0",
                      paper=">= 1% exposure: RL carries deep reasoning over to the long-tail context")
        return judged_if(headroom, raw)
    raw = Verdict(PASS if b.hi < margin else FAIL, b.hi, margin, margin - b.hi, b.se,
                  what + f"; its upper end must be below {margin}",
                  paper="0% or 0.1% exposure: RL fails to transfer reasoning to the new context")
    learned_text = (f"RL learned: context A's pass@1 on the ID ops rose ({learned.diff:+.3f} "
                    f"[{learned.lo:+.3f}, {learned.hi:+.3f}])" if band == "id" else
                    f"RL raised context A's pass@{k} on the edge ops ({a.diff:+.3f} [{a.lo:+.3f}, {a.hi:+.3f}])")
    return judged_if({**headroom, learned_text: learned.lo > 0}, raw)


def _arrays(cfg: Config, tables) -> dict:
    keys = sorted(tables)
    k = cfg.base.k_max
    return {"row_seed": np.array([key[0] for key in keys]), "row_share": np.array([key[1] for key in keys]),
            "row_arm": np.array([key[2] for key in keys]), "row_context": np.array([key[3] for key in keys]),
            "ops": np.asarray(cfg.base.eval_ops),
            **dr.curve_arrays(tables, keys, k)}


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
