"""bandit-regret: regret of arm-level vs outcome-level bandit algorithms, scaling with K and m.

Song, Kempe, Munos 2509.06941, Theorems 4.1-4.2 (informal): when K arms (reasoning traces) lead to
few m outcomes (answers), exploring at the outcome level costs O(sqrt(m T log T)) regret instead of
sqrt(K T), but only with generalisation (an update on one arm moves every arm with that outcome);
without it, knowing the outcomes does not help. That is the paper's case for outcome-based
exploration, checked here where regret is exact (bandit-diversity is the RL-as-sampling half).

Instances (theoryrl.theory.bandits): K arms map to m outcomes (balanced random map), Bernoulli
rewards with outcome means ~ U(0, 1). Algorithms: arm-level UCB1, outcome-level UCB with shared
logits (Theorem 4.2), outcome-level UCB without sharing (an arm's outcome is known only after a
pull; Theorem 4.1), and Thompson sampling at both levels. Every (algorithm, K) is one compiled
program vmapped over (m, seed), m traced; a seed gives the same instance to every algorithm.

Fits per algorithm on the seed-mean pseudo-regret at every chunk end T >= fit_from * horizon: the
free power law log R = c0 + a log K + b log m + c log T (exponents, R^2), and R = alpha sqrt(K T),
R = beta sqrt(m T log T) (R^2 of log R). Verdicts (three-valued records, `verdicts`): "scales with X"
is exponent >= 0.25 (half the theory's 1/2), "not with X" is |exponent| <= 0.1, each judged only
when its algorithms learned (free-fit T-exponent <= 0.9; no learning pays gap x T) and the free fit
has R^2 >= min_r2. With shared logits on a deterministic map outcome_ucb's K-exponent is 0 by
construction (Theorem 4.2's modelling assumption; rows say so in K_exponent_zero_by_construction).
Theorem 4.1 needs an instance where outcomes do not identify good arms: structure=stochastic (an
arm yields its nominal outcome only with its own probability, theory/bandits.make_instance), where
`no_generalisation_every_algorithm_scales_with_K` asks every algorithm that learned for a
K-exponent >= 0.25; on the balanced / random maps it is not judged and
`noshare_outcome_ucb_scales_with_K` says it does not test Theorem 4.1 (one pull reveals an arm's value).
Rows per (algorithm, K, m): regret (mean at T = horizon), regret_se, outcomes_found, arms_tried.
The algorithms have no learning rate: their learning is the pulls, so learning switched off is
horizon = 0 (nothing pulled: empty curves, rows at T = 0, every claim not judged).
"""
from __future__ import annotations

import dataclasses
import json
from functools import partial
from pathlib import Path

import jax
import numpy as np

from theoryrl.core import prng
from theoryrl.core.config import check_seeds, is_int, require, require_float, require_int, require_ints
from theoryrl.core.experiment import Outcome, Program, Run, RunPlan, Runs
from theoryrl.core.results import load_npz
from theoryrl.core.verdicts import FAIL, Verdict, all_of, at_least, at_most, greater, judged_if, not_judged
from theoryrl.theory import bandits

ID = "bandit-regret"
TITLE = "Outcome-based bandits: regret vs T, K (arms) and m (outcomes), arm- vs outcome-level UCB"
PAPER = "Song, Kempe, Munos 2509.06941, Theorems 4.1-4.2 (informal): sqrt(K T) without vs sqrt(m T log T) with generalisation"

SCALES, FLAT = 0.25, 0.1


@dataclasses.dataclass(frozen=True)
class Config:
    arms: tuple[int, ...] = (100, 1000, 10000)
    outcomes: tuple[int, ...] = (5, 10, 50)
    horizon: int = 100_000
    steps_per_chunk: int = 1000
    algorithms: tuple[str, ...] = ("arm_ucb", "outcome_ucb", "outcome_ucb_noshare", "arm_ts", "outcome_ts")
    structure: str = "balanced"
    seeds: tuple[int, ...] = tuple(range(42, 58))
    fit_from: float = 0.05
    min_r2: float = 0.9

    def validate(self):
        # K <= 100k arms (10x the paper's largest; each step scores every arm of every run) and m <= K; the
        # horizon stays below 2^24, so the step count t is exact in the float32 the UCB indices use
        require_ints(self.outcomes, "outcomes", 2, 100_000, allowed="integers in 2..100000")
        require_ints(self.arms, "arms", max(self.outcomes), 100_000,
                     allowed=f"integers in max(outcomes) = {max(self.outcomes)}..100000")
        require_int(self.steps_per_chunk, "steps_per_chunk", 1, 100_000)
        # 0: learning switched off (no pull); otherwise at least 2 chunks, so T varies in the fits
        require(is_int(self.horizon) and (self.horizon == 0 or 2 * self.steps_per_chunk <= self.horizon <= 10_000_000)
                and self.horizon % self.steps_per_chunk == 0, "horizon", self.horizon,
                f"0 (nothing pulled) or a multiple of steps_per_chunk = {self.steps_per_chunk}, at least 2 chunks, "
                "at most 10000000")
        require(len(self.algorithms) > 0 and all(a in bandits.ALGORITHMS for a in self.algorithms)
                and len(set(self.algorithms)) == len(self.algorithms), "algorithms", self.algorithms,
                f"distinct names from {list(bandits.ALGORITHMS)}")
        require(self.structure in bandits.STRUCTURES, "structure", self.structure, " or ".join(bandits.STRUCTURES))
        check_seeds(self.seeds)
        require_float(self.fit_from, "fit_from", 0.0, 1.0, hi_open=True)
        require_float(self.min_r2, "min_r2", 0.0, 1.0, lo_open=True)


TIERS = {
    "quick": Config(arms=(100, 400), outcomes=(5, 10, 50), horizon=20_000, steps_per_chunk=1000,
                    seeds=tuple(range(42, 50)), fit_from=0.25),
    "paper": Config(),
}


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class RegretHp:
    """Traced knobs of one run (vmapped over the runs of an (algorithm, K) program): its seed, which
    picks the instance and the pulls, and the number of outcomes m (<= the padded M)."""

    seed: jax.Array  # int32 []
    m: jax.Array  # int32 []


def program(algo: str, shape: bandits.BanditShape, structure: str, num_chunks: int, steps_per_chunk: int) -> Program:
    def data_fn(hp: RegretHp):
        key = prng.stream_key(prng.root_key(hp.seed), prng.Stream.DATA)
        return bandits.make_instance(key, shape, hp.m, structure)

    def chunk_fn(state, hp: RegretHp, inst):
        state = bandits.run_steps(algo, state, inst, prng.root_key(hp.seed), steps_per_chunk)
        return state, bandits.chunk_metrics(state)

    return Program(data_fn=data_fn, init_fn=lambda hp: bandits.init_state(shape), chunk_fn=chunk_fn,
                   num_chunks=num_chunks, steps_per_chunk=steps_per_chunk,
                   summarize=lambda m: {"regret": float(np.mean(m["regret"]))})


def plan(cfg: Config) -> list[RunPlan]:
    num_chunks, spc = cfg.horizon // cfg.steps_per_chunk, cfg.steps_per_chunk
    plans = []
    for algo in cfg.algorithms:
        for k in cfg.arms:
            shape = bandits.BanditShape(k, max(cfg.outcomes))
            build = partial(program, algo, shape, cfg.structure, num_chunks, spc)
            for m in cfg.outcomes:
                for s in cfg.seeds:
                    hp = RegretHp(seed=np.int32(s), m=np.int32(m))
                    plans.append(RunPlan(row={"algorithm": algo, "K": k, "m": m, "seed": s},
                                         bucket=(algo, shape, cfg.structure, num_chunks, spc),
                                         label=f"{algo}-K{k}", hp=hp, build=build))
    return plans


def ols(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Least squares y ~ X @ w; returns (w, R^2)."""
    w, *_ = np.linalg.lstsq(X, y, rcond=None)
    ss_res, ss_tot = float(np.sum((y - X @ w) ** 2)), float(np.sum((y - y.mean()) ** 2))
    return w, (1.0 - ss_res / ss_tot) if ss_tot > 0 else 1.0


def proportional_fit(log_r: np.ndarray, log_shape: np.ndarray) -> tuple[float, float]:
    """log R = log c + log f: returns (c, R^2 of log R)."""
    log_c = float(np.mean(log_r - log_shape))
    ss_res, ss_tot = float(np.sum((log_r - log_c - log_shape) ** 2)), float(np.sum((log_r - log_r.mean()) ** 2))
    return float(np.exp(log_c)), (1.0 - ss_res / ss_tot) if ss_tot > 0 else 1.0


def fit_scaling(K: np.ndarray, m: np.ndarray, T: np.ndarray, R: np.ndarray) -> dict:
    """All three fits on points (K, m, T, mean regret R > 0)."""
    log_r = np.log(R)
    X = np.stack([np.ones_like(log_r), np.log(K), np.log(m), np.log(T)], axis=1)
    w, r2 = ols(X, log_r)
    alpha, r2_kt = proportional_fit(log_r, 0.5 * np.log(K * T))
    beta, r2_mt = proportional_fit(log_r, 0.5 * np.log(m * T * np.log(T)))
    return {"exp_K": float(w[1]), "exp_m": float(w[2]), "exp_T": float(w[3]), "r2": r2,
            "alpha_sqrtKT": alpha, "r2_sqrtKT": r2_kt, "beta_sqrtmTlogT": beta, "r2_sqrtmTlogT": r2_mt}


def seed_runs(cfg: Config, runs: Runs, algorithm: str, k: int, m: int) -> list[Run]:
    """The runs of one (algorithm, K, m), in the order of cfg.seeds."""
    return [runs.one(algorithm=algorithm, K=k, m=m, seed=s) for s in cfg.seeds]


def regret_table(cfg: Config, runs: Runs) -> tuple[np.ndarray, np.ndarray]:
    """Seed mean and standard error of the regret: [algorithms, K, m, chunks]."""
    A, NK, NM, S = len(cfg.algorithms), len(cfg.arms), len(cfg.outcomes), len(cfg.seeds)
    every = [r for a in cfg.algorithms for k in cfg.arms for m in cfg.outcomes for r in seed_runs(cfg, runs, a, k, m)]
    chunks = cfg.horizon // cfg.steps_per_chunk  # explicit: 0 chunks (horizon 0) has no -1 to infer
    reg = np.stack([np.asarray(r.history("regret"), np.float64) for r in every]).reshape(A, NK, NM, S, chunks)
    return reg.mean(axis=3), reg.std(axis=3, ddof=1) / np.sqrt(S) if S > 1 else np.zeros_like(reg.mean(axis=3))


def analyze(cfg: Config, runs: Runs) -> Outcome:
    mean, se = regret_table(cfg, runs)
    T = cfg.steps_per_chunk * np.arange(1, mean.shape[-1] + 1, dtype=np.float64)
    use = T >= cfg.fit_from * cfg.horizon
    Kg, Mg, Tg = np.meshgrid(np.array(cfg.arms, float), np.array(cfg.outcomes, float), T[use], indexing="ij")
    metrics, fits = {}, {}
    for a, algo in enumerate(cfg.algorithms):
        R = mean[a][..., use]
        ok = R > 0
        if ok.sum() >= 5:
            fits[algo] = fit_scaling(Kg[ok], Mg[ok], Tg[ok], R[ok])
            metrics.update({f"{algo}/{k}": v for k, v in fits[algo].items()})
    rows = []
    for a, algo in enumerate(cfg.algorithms):
        for ki, k in enumerate(cfg.arms):
            for mi, m in enumerate(cfg.outcomes):
                finals = seed_runs(cfg, runs, algo, k, m)
                if not cfg.horizon:  # T = 0: nothing pulled, so no regret, no outcome found, no arm tried
                    rows.append({"algorithm": algo, "K": k, "m": m, "T": 0, "regret": 0.0, "regret_se": 0.0,
                                 "outcomes_found": 0.0, "arms_tried": 0.0,
                                 "K_exponent_zero_by_construction": k_free_by_construction(cfg, algo)})
                    continue
                rows.append({"algorithm": algo, "K": k, "m": m, "T": cfg.horizon, "regret": float(mean[a, ki, mi, -1]),
                             "regret_se": float(se[a, ki, mi, -1]),
                             "outcomes_found": float(np.mean([r.history("outcomes_found")[-1] for r in finals])),
                             "arms_tried": float(np.mean([r.history("arms_tried")[-1] for r in finals])),
                             "K_exponent_zero_by_construction": k_free_by_construction(cfg, algo)})
    verdict = verdicts(cfg, fits, mean, se)
    arrays = {"regret_mean": mean, "regret_se": se, "T": T, "arms": np.array(cfg.arms), "outcomes": np.array(cfg.outcomes),
              "algorithms": np.array(cfg.algorithms)}
    paper = {"outcome_ucb_scales_with_m": "with generalisation (shared logits) outcome-level UCB has regret "
                                          "O(sqrt(m T log T)), independent of K (Theorem 4.2, informal)",
             "arm_ucb_scales_with_K": "arm-level UCB1 pays sqrt(K T) (standard; K arms)",
             "noshare_scales_with_K": "without generalisation knowing outcomes does not help: regret still "
                                      "scales with K (Theorem 4.1, informal)",
             "no_generalisation_every_algorithm_scales_with_K": "Theorem 4.1 (informal): with no generalisation "
                                                                "assumption regret lower bounds scale with K"}
    return Outcome.judged(metrics, rows, paper, verdict, arrays)


SUBLINEAR = 0.9  # "learned": the free fit's T-exponent at most this (no learning: regret = gap x T, exponent 1)
BY_CONSTRUCTION = ("outcome_ucb", "outcome_ts")  # shared logits: regret independent of K on a deterministic map


def k_free_by_construction(cfg: Config, algo: str) -> bool:
    """Whether `algo`'s regret cannot depend on K here: with shared logits the policy picks an outcome
    by its counts and an arm uniformly within it, so on a deterministic arm -> outcome map (balanced,
    random; the same outcome means for every K of a seed) its K-exponent is 0 by construction. That
    is Theorem 4.2's modelling assumption (generalisation), not a measurement."""
    return algo in BY_CONSTRUCTION and cfg.structure != "stochastic"


def verdicts(cfg: Config, fits: dict, mean: np.ndarray, se: np.ndarray) -> dict[str, Verdict]:
    """Verdicts on the free power-law fits. Each is judged only when its algorithms learned (regret
    sublinear in T: exponent <= SUBLINEAR; a learner that does not learn pays gap x T whatever K and m
    are) and their fit is good (R^2 >= min_r2). Theorem 4.1 is judged only on the stochastic
    structure, where outcomes do not identify good arms; on a deterministic map one pull reveals an
    arm's value, so `noshare_outcome_ucb_scales_with_K` there is labelled as not testing it."""
    out = {}

    def pre(*algos: str) -> dict[str, bool]:
        fit = {a: fits.get(a, {"exp_T": np.nan, "r2": np.nan}) for a in algos}  # no fit: regret 0 at < 5 points
        return {**{f"{a}'s regret is sublinear in T (T-exponent <= {SUBLINEAR})": fit[a]["exp_T"] <= SUBLINEAR
                   for a in algos},
                **{f"{a}'s power-law fit has R^2 >= {cfg.min_r2}": fit[a]["r2"] >= cfg.min_r2 for a in algos}}

    def scales_with(a: str, var: str, what: str) -> Verdict:
        return judged_if(pre(a), at_least(fits[a][f"exp_{var}"], SCALES, what=what))

    if "outcome_ucb" in fits:
        f = fits["outcome_ucb"]
        flat = at_most(abs(f["exp_K"]), FLAT).passed
        v = scales_with("outcome_ucb", "m", "outcome_ucb's m-exponent in the free fit")
        if v.judged and not flat:
            v = dataclasses.replace(v, status=FAIL)
        note = (" (its K-exponent is 0 by construction: shared logits never let K enter the regret, Theorem "
                "4.2's modelling assumption, so |exp_K| <= 0.1 is not evidence)" if k_free_by_construction(
                    cfg, "outcome_ucb") else f"; it also needs |exp_K| <= {FLAT}: measured {abs(f['exp_K']):.3g}")
        out["outcome_ucb_scales_with_m_not_K"] = dataclasses.replace(v, reason=v.reason + note)
        out["outcome_ucb_sqrt_mTlogT_fits_better_than_sqrtKT"] = judged_if(pre("outcome_ucb"), greater(
            f["r2_sqrtmTlogT"], f["r2_sqrtKT"], se_a=0.0, se_b=0.0,
            what="R^2 of log R: sqrt(m T log T) - sqrt(K T) (fits of the seed-mean regret)"))
    if "arm_ucb" in fits:
        f = fits["arm_ucb"]
        out["arm_ucb_scales_with_K"] = scales_with("arm_ucb", "K", "arm_ucb's K-exponent in the free fit")
        out["arm_ucb_sqrtKT_fits_better_than_sqrt_mTlogT"] = judged_if(pre("arm_ucb"), greater(
            f["r2_sqrtKT"], f["r2_sqrtmTlogT"], se_a=0.0, se_b=0.0,
            what="R^2 of log R: sqrt(K T) - sqrt(m T log T) (fits of the seed-mean regret)"))
    if "outcome_ucb_noshare" in fits:
        v = scales_with("outcome_ucb_noshare", "K", "outcome_ucb_noshare's K-exponent in the free fit")
        label = ("" if cfg.structure == "stochastic" else
                 f" [not a test of Theorem 4.1: on the {cfg.structure} map one pull reveals an arm's outcome and "
                 "so its value; Theorem 4.1's instance is structure=stochastic]")
        out["noshare_outcome_ucb_scales_with_K"] = dataclasses.replace(v, reason=v.reason + label)
    if fits:
        out["no_generalisation_every_algorithm_scales_with_K"] = _theorem41(cfg, fits, pre).citing(
            "Theorem 4.1 (informal): without generalisation regret lower bounds scale with K")
    if "outcome_ucb" in cfg.algorithms and "arm_ucb" in cfg.algorithms:
        o, a = cfg.algorithms.index("outcome_ucb"), cfg.algorithms.index("arm_ucb")
        if len(cfg.seeds) < 2:
            v = not_judged("one seed: no standard error for the comparison of arms")
        elif not cfg.horizon:
            v = not_judged("horizon = 0: nothing was pulled")
        else:
            cells = {f"K = {k}, m = {m}": greater(mean[a, i, j, -1], mean[o, i, j, -1], se_a=se[a, i, j, -1],
                                                  se_b=se[o, i, j, -1], what=f"arm_ucb - outcome_ucb regret at T = "
                                                  f"{cfg.horizon}, K = {k}, m = {m}")
                     for i, k in enumerate(cfg.arms) for j, m in enumerate(cfg.outcomes)}
            v = all_of(cells, f"arm_ucb - outcome_ucb regret at T = {cfg.horizon}, every (K, m)")
        out["outcome_ucb_below_arm_ucb_everywhere"] = judged_if(pre("outcome_ucb", "arm_ucb"), v)
    return out


def _theorem41(cfg: Config, fits: dict, pre) -> Verdict:
    """Every algorithm that learned has K-exponent >= SCALES on the stochastic structure; the record
    is the smallest exponent. Not judged on a deterministic map (not Theorem 4.1's instance)."""
    if cfg.structure != "stochastic":
        return not_judged(f"not Theorem 4.1's instance: on the {cfg.structure} map one pull reveals an arm's value "
                          "(run structure=stochastic)")
    parts = {a: judged_if(pre(a), at_least(f["exp_K"], SCALES, what=f"{a}'s K-exponent")) for a, f in fits.items()}
    judged = {a: v for a, v in parts.items() if v.judged}
    if not judged:
        return not_judged("no algorithm learned with a good fit: " + "; ".join(v.reason for v in parts.values()))
    skipped = sorted(set(parts) - set(judged))
    v = all_of(judged, "smallest K-exponent over the algorithms that learned")
    return dataclasses.replace(v, reason=v.reason + (f"; not judged (did not learn / poor fit): {', '.join(skipped)}"
                                                     if skipped else ""))




def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arr = load_npz(Path(run_dir) / "arrays.npz")
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    mean, T, Ks, ms, algos = arr["regret_mean"], arr["T"], arr["arms"], arr["outcomes"], [str(a) for a in arr["algorithms"]]
    fig, axes = plotting.subplots(1, 3, width=4.4)
    mi, ki = len(ms) // 2, len(Ks) - 1
    ax = axes[0, 0]
    for a, algo in enumerate(algos):
        for j, k in enumerate(Ks):
            ax.loglog(T, np.maximum(mean[a, j, mi], 1e-3), color=f"C{a}", ls=["-", "--", ":", "-."][j % 4],
                      label=f"{algo}" if j == 0 else None)
    ax.set_xlabel("T")
    ax.set_ylabel(f"regret (m = {ms[mi]}; line style: K = {', '.join(str(k) for k in Ks)})")
    ax.legend(fontsize=7)
    for col, (vals, name, idx) in enumerate(((Ks, "K (arms)", None), (ms, "m (outcomes)", None)), start=1):
        ax = axes[0, col]
        for a, algo in enumerate(algos):
            at_end = mean[..., -1] if mean.shape[-1] else np.full(mean.shape[:-1], np.nan)  # horizon 0: no curve
            y = at_end[a, :, mi] if col == 1 else at_end[a, ki, :]
            fit = summary["metrics"].get(f"{algo}/exp_{'K' if col == 1 else 'm'}")
            ax.loglog(vals, np.maximum(y, 1e-3), "o-", color=f"C{a}",
                      label=f"{algo} (exp {fit:.2f})" if fit is not None else algo)
        ax.set_xlabel(name)
        ax.set_ylabel(f"regret at T = {int(T[-1]) if len(T) else 0}" + (f", m = {ms[mi]}" if col == 1 else f", K = {Ks[ki]}"))
        ax.legend(fontsize=7)
    fig.suptitle("bandit-regret: arm- vs outcome-level exploration")
    return [plotting.savefig(fig, Path(out_dir) / "bandit-regret.png")]
