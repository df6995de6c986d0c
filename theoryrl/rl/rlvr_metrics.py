"""Metrics of the RLVR-limits experiments (Yue et al., arXiv 2504.13837) on saved arrays.

What. Everything `rl/rlvr_runs.py`'s runs store per problem is a correct count (of n samples per
set, temperature and checkpoint); this module turns those counts into the paper's quantities:
unbiased pass@k per problem and its curve (`pass_rows`, `curve_rows`), the crossing k* of the base's
and RL's mean curves with a bootstrap interval (`crossing_k`, `crossing_ci`), paired arm-vs-arm gains
(`paired`, `gain`), the precondition of every "the base wins" claim (`raised_pass1`), summary rows
with intervals (`arm_rows`) and the collected runs of an experiment (`collect`, `Collected`).
Why paired and crossed. Every arm and seed is evaluated on the same fixed problems with the same
sampling keys, so differences are taken per problem, and with several seeds the bootstrap crosses
seeds with problems (`dag_runs.crossed_weights`): resampling each seed's problems independently
would treat the shared problem effect as independent across seeds and make the intervals too narrow.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from theoryrl.core.stages import Run
from theoryrl.core.verdicts import Verdict, all_of
from theoryrl.eval import passk
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import rlvr_runs as rr

def counts(run: Run, set_name: str, *, ti: int = 0, ckpt: int = -1, kind: str = "perfect") -> np.ndarray:
    """[N] correct counts (of n = eval_samples) of one set, temperature index and checkpoint."""
    return np.asarray(run.final(f"{set_name}/t{ti}/{kind}_CxN"))[ckpt].astype(np.int64)


def pass_rows(c_N, n: int, k: int) -> np.ndarray:
    """[N] unbiased pass@k per problem from correct counts of n samples."""
    c_N = np.asarray(c_N, np.int64)
    return passk.pass_at_k(np.full(c_N.shape, n), c_N, k)


def curve_rows(c_N, n: int, k_max: int) -> np.ndarray:
    """[N, k_max] pass@k per problem for k = 1..k_max."""
    c_N = np.asarray(c_N, np.int64)
    return passk.pass_at_k_per_problem(np.full(c_N.shape, n), c_N, np.arange(1, k_max + 1))


def crossing_k(base_K, rl_K) -> float:
    """k* = the smallest k (curves indexed k = 1..K) with base pass@k >= RL pass@k; 1 when RL is not
    above the base even at k = 1; inf when RL stays above at every k."""
    above = np.asarray(base_K) >= np.asarray(rl_K)
    return float(np.argmax(above) + 1) if above.any() else float("inf")


def paired(a_rows, b_rows, clusters=None, *, num_resamples: int = 2000, alpha: float = 0.05, seed: int = 0) -> dr.Gain:
    """`dag_runs.Gain` of per-problem a - b pooled over seeds: every RLVR set is the same problems for
    every seed, so the bootstrap is crossed (`dag_runs.crossed_weights`; NaN with no rows)."""
    return dr.paired_gain_rows(a_rows, b_rows, clusters=clusters, crossed=True, num_resamples=num_resamples,
                               alpha=alpha, seed=seed)


def raised_pass1(col: "Collected", arm: str, set_names, n: int) -> tuple[dict, dr.Gain]:
    """The precondition of every "the base wins" claim: RL raised pass@1 over the base (interval
    above 0) on the sets. Without it those claims would pass for a model that collapsed."""
    rows_a, rows_b, cl = [], [], []
    for s in [set_names] if isinstance(set_names, str) else set_names:
        ca, c = col.pooled(arm, s)
        cb, _ = col.pooled("base", s)
        rows_a.append(pass_rows(ca, n, 1))
        rows_b.append(pass_rows(cb, n, 1))
        cl.append(c)
    # several sets pooled one after another are not seed-major blocks: crossed_weights then nests
    g = paired(np.concatenate(rows_a), np.concatenate(rows_b), np.concatenate(cl))
    return {f"{arm} raised pass@1 over the base ({g.diff:+.3f}, 95% interval [{g.lo:+.3f}, {g.hi:+.3f}])":
            bool(g.lo > 0)}, g


def crossing_ci(base_NxK, rl_NxK, clusters=None, *, num_resamples: int = 2000, alpha: float = 0.05,
                seed: int = 0) -> dict:
    """k* of the mean curves, with a percentile bootstrap interval over problems (paired: both curves
    from the same resampled problems); "frac_crossing" = the share of resamples with a crossing in
    1..K (the interval's upper end is inf when fewer than 1 - alpha/2 of them cross)."""
    base_NxK, rl_NxK = np.asarray(base_NxK, np.float64), np.asarray(rl_NxK, np.float64)
    if base_NxK.shape != rl_NxK.shape or base_NxK.ndim != 2 or base_NxK.shape[0] == 0:
        raise ValueError(f"crossing_ci needs two equal non-empty [N, K] arrays, got {base_NxK.shape}, {rl_NxK.shape}")
    w = dr.crossed_weights(base_NxK.shape[0], clusters, num_resamples, np.random.default_rng(seed))
    w = w / w.sum(axis=1, keepdims=True)
    diff_RxK = w @ (base_NxK - rl_NxK)
    above = diff_RxK >= 0
    ks = np.where(above.any(axis=1), np.argmax(above, axis=1) + 1.0, np.inf)
    lo, hi = np.quantile(ks, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
    return {"k_star": crossing_k(base_NxK.mean(axis=0), rl_NxK.mean(axis=0)), "lo": float(lo), "hi": float(hi),
            "frac_crossing": float(np.isfinite(ks).mean())}


def mean_ci(rows, clusters=None, *, num_resamples: int = 2000, alpha: float = 0.05, seed: int = 0) -> tuple:
    """(mean, lo, hi) of per-problem values with the (cluster) percentile bootstrap; NaNs with no rows."""
    rows = np.asarray(rows, np.float64)
    if rows.size == 0:
        return (float("nan"),) * 3
    w = dr.crossed_weights(rows.size, clusters, num_resamples, np.random.default_rng(seed))
    boots = (w @ rows) / w.sum(axis=1)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return float(rows.mean()), float(lo), float(hi)


@dataclasses.dataclass(frozen=True)
class Collected:
    """An experiment's finished runs: `runs[(seed, arm)]`, the judged seeds (gated base with a train
    band, every arm run), the ones left out with why, and each judged seed's splits."""

    runs: dict
    seeds: list
    skipped: dict
    splits: dict

    def pooled(self, arm: str, set_name: str, **where) -> tuple[np.ndarray, np.ndarray]:
        """(counts [rows], seed of each row) of one arm on one set, pooled over the judged seeds."""
        parts = [(s, counts(self.runs[(s, arm)], set_name, **where)) for s in self.seeds]
        return (np.concatenate([c for _, c in parts]) if parts else np.zeros(0, np.int64),
                dr.seed_clusters(parts))


def collect(base: dr.BaseSpec, knobs: rr.RLVRKnobs, arms, seeds, runs) -> Collected:
    found, judged, skipped, splits = {}, [], {}, {}
    for seed in seeds:
        sp, why = rr.seed_splits(base, knobs, runs.one(stage="pretrain", seed=int(seed)))
        for run in runs.where(stage="rlvr", seed=int(seed)):
            found[(int(seed), run.row["arm"])] = run
        if why is None and any((int(seed), a) not in found for a in arms):
            why = "not every arm was run"
        if why is None:
            judged.append(int(seed))
            splits[int(seed)] = sp
        else:
            skipped[int(seed)] = why
    return Collected(found, judged, skipped, splits)


def has_set(col: Collected, set_name: str) -> bool:
    """Every judged seed has this evaluation set (ood exists only below a train band above op 2)."""
    return bool(col.seeds) and all(f"final/{set_name}/t0/perfect_CxN" in col.runs[(s, "base")].arrays
                                   for s in col.seeds)


def why_not_judged(col: Collected, knobs: rr.RLVRKnobs) -> str | None:
    if not col.seeds:
        return "no seed has a gated base with a train band and every arm run: " + "; ".join(
            f"seed {s}: {why}" for s, why in col.skipped.items())
    if knobs.steps == 0:
        return "steps = 0: no RL step was taken"
    return None


def gain(col: Collected, arm_a: str, arm_b: str, set_name: str, k_a: int, k_b: int | None = None, *,
         where_a: dict | None = None, where_b: dict | None = None, n: int) -> dr.Gain:
    """Mean pass@k_a of arm a minus pass@k_b of arm b per problem of one set, paired over the same
    problems pooled over judged seeds, cluster bootstrap over seeds."""
    ca, cl = col.pooled(arm_a, set_name, **(where_a or {}))
    cb, _ = col.pooled(arm_b, set_name, **(where_b or {}))
    return paired(pass_rows(ca, n, k_a), pass_rows(cb, n, k_b or k_a), clusters=cl)


def arm_rows(col: Collected, knobs: rr.RLVRKnobs, arm: str, set_name: str, ckpts=(-1,)) -> list[dict]:
    """Summary rows of one arm on one set (pooled over judged seeds): process-verified pass@1 and
    pass@k_max with 95% intervals, the outcome-only numbers next to them, the solved share and the
    mean token entropy, at every evaluation temperature and the given checkpoints."""
    out, n = [], knobs.eval_samples
    for ti, temp in enumerate(knobs.eval_temperatures):
        for c in ckpts:
            row = {"arm": arm, "set": set_name, "temperature": temp, "checkpoint": c}
            if arm != "base":
                row["step"] = knobs.checkpoints[c] if rr.arm_knobs(arm, knobs)[1].steps else 0
            cp, cl = col.pooled(arm, set_name, ti=ti, ckpt=0 if arm == "base" else c)
            co, _ = col.pooled(arm, set_name, ti=ti, ckpt=0 if arm == "base" else c, kind="answer_correct")
            for name, k in (("pass1", 1), (f"pass{knobs.k_max}", knobs.k_max)):
                row[name], row[f"{name}_lo"], row[f"{name}_hi"] = mean_ci(pass_rows(cp, n, k), cl)
                row[f"outcome_{name}"] = float(pass_rows(co, n, k).mean()) if co.size else float("nan")
            row["solved_frac"] = float((cp > 0).mean()) if cp.size else float("nan")
            if knobs.with_entropy:
                ent = np.concatenate([np.asarray(col.runs[(s, arm)].final(f"{set_name}/t{ti}/entropy_CxN"))[
                    0 if arm == "base" else c] for s in col.seeds])
                row["entropy"] = float(ent.mean()) if ent.size else float("nan")
            out.append(row)
    return out


def split_record(col: Collected) -> dict:
    """seed -> the chosen bands and the calibration numbers, for the summary."""
    return {s: col.splits[s].to_dict() for s in col.seeds}


def curves(col: Collected, knobs: rr.RLVRKnobs, arm: str, set_name: str, *, ti: int = 0, ckpt: int = -1) -> np.ndarray:
    """[k_max] pooled mean pass@k curve of one arm on one set."""
    c, _ = col.pooled(arm, set_name, ti=ti, ckpt=0 if arm == "base" else ckpt)
    return curve_rows(c, knobs.eval_samples, knobs.k_max).mean(axis=0)


def diff_curve_ci(a_NxK, b_NxK, clusters=None, *, num_resamples: int = 2000, alpha: float = 0.05,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lo, hi) per k of a - b pass@k curves over the same problems, paired bootstrap."""
    d = np.asarray(a_NxK, np.float64) - np.asarray(b_NxK, np.float64)
    w = dr.crossed_weights(d.shape[0], clusters, num_resamples, np.random.default_rng(seed))
    boots = (w @ d) / w.sum(axis=1, keepdims=True)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2], axis=0)
    return d.mean(axis=0), lo, hi


def every(parts: dict, what: str, paper: str) -> Verdict:
    """`core.verdicts.all_of` whose reason lists every part's own measurement."""
    v = all_of(parts, what)
    return dataclasses.replace(v, reason=v.reason + " | " + "; ".join(p.reason for p in parts.values()), paper=paper)
