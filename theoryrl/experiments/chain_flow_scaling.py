"""chain-flow-scaling: time for the exact gradient flow to solve the hardest distance (spec §5, §6.1).

Ran-Milo et al., Theorems 2-3: with (k, c)-simple data the gradient flow solves the chain in
polynomial time, T ~ 1/c; with hard examples only it needs 2^Omega(n). Why: the theorems are about
the flow, so we integrate it exactly instead of sampling. The flow is the population gradient flow
of the fixed-V model in symmetric coordinates (`theory/chain_flow.py`, metric "A" = the full-matrix
flow dA/dt = grad_A J; "coords" = plain flow in the constants), integrated adaptively until the loss
1 - P(success | distance m-1) <= eps, with a time cap (not reached -> t_eps null, never a number):
  (a) train on uniform distances 1..m-1, m in ms: fit log T vs log m and log T vs m, with R^2;
  (b) train on distance m-1 only and on distances >= m/2: T (or not reached, and how it ended:
      guess-a-sink vs still walking), log T vs m, and log(1/|grad|) at init vs m;
  (c) mass c on distances <= simple_k, the rest on distance m-1 (`rest`), at m = mass_m: T vs 1/c;
  (d) simple_k varied at fixed c = k_c: log T vs k, next to the predicted slope -log c0.
Every part runs for each init (consts = (2, 0, 0), c0 = alpha fitted so min p_fwd = init_c0, i.e.
the theorem's m-independent base rate; uniform = A = 0) and each horizon (m+1 and inf).

One stage "flows": one compute plan per integration, its row knobs (part, m, train, c, k, init,
horizon) identifying it. Row keys: those knobs, t_eps (null: not reached), status, end_state,
final_alpha..final_delta, c0_init, b0_init, grad_norm_init, final_hard_success,
final_len_correct_hardest. Metrics: a/b/c/d fits (slope, intercept, r2, points) per init and horizon.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import json
from pathlib import Path

import numpy as np

from theoryrl.core.config import (is_int, require, require_finite_positive, require_float, require_floats, require_int,
                                  require_ints)
from theoryrl.core.stages import Outcome, RunPlan, Runs, Stage
from theoryrl.experiments import chain_flow_common as fc
from theoryrl.experiments.chain_common import MAX_M
from theoryrl.tasks.chain import uniform_over
from theoryrl.theory import chain_flow as cf
from theoryrl.theory.flow_integrate import FlowOpts

ID = "chain-flow-scaling"
TITLE = "Gradient-flow time to solve the hardest distance vs m, c and k (exact population flow)"
PAPER = "Ran-Milo et al. 2601.15158, Theorem 2 (poly time with (k, c)-simple data, T ~ 1/c) and Theorem 3 (2^Omega(n) without)"


@dataclasses.dataclass(frozen=True)
class Config:
    ms: tuple[int, ...] = (4, 6, 8, 12, 16, 24)
    horizons: tuple[str, ...] = ("m+1", "inf")
    inits: tuple[str, ...] = ("consts", "c0")
    init_consts: tuple[float, ...] = (2.0, 0.0, 0.0)
    init_c0: float = 0.4
    attention: str = "linear"
    tmp: float = 1.0
    metric: str = "A"
    eps: float = 0.1
    hard_sets: tuple[str, ...] = ("m-1", ">=m/2")
    mass_m: int = 8
    cs: tuple[float, ...] = (0.5, 0.1, 0.01, 0.001)
    simple_k: int = 1
    rests: tuple[str, ...] = ("hardest", "uniform")
    ks: tuple[int, ...] = (1, 2, 3, 4)
    k_c: float = 0.1
    opts: FlowOpts = FlowOpts(t_max=1e9, t_first=1.0, num_save=48)
    x64: bool = False

    def validate(self):
        # ms, mass_m <= 128: the two-chain graph's largest m (n = 2m <= 256, tasks/chain.py)
        require_ints(self.ms, "ms", 3, MAX_M, min_len=2, allowed=f"at least two integers in 3..{MAX_M}")
        require(len(self.horizons) > 0, "horizons", self.horizons, "at least one of inf, m+1, 4m, <int>")
        for h in self.horizons:
            fc.check_horizon(h)
        require(len(self.inits) > 0 and all(i in fc.INITS for i in self.inits), "inits", self.inits, f"subset of {fc.INITS}")
        require_floats(self.init_consts, "init_consts", min_len=3, max_len=3, allowed="(alpha, beta, gamma), finite")
        require_float(self.init_c0, "init_c0", 0.0, 0.5, lo_open=True, hi_open=True,
                      allowed="in (0, 0.5): p_fwd <= 1/2 when beta = gamma = 0")
        require(self.attention in ("linear", "softmax"), "attention", self.attention, "linear or softmax")
        require_finite_positive(self.tmp, "tmp")
        require(self.metric in cf.METRICS, "metric", self.metric, " or ".join(cf.METRICS))
        require_float(self.eps, "eps", 0.0, 1.0, lo_open=True, hi_open=True)
        require(all(h in ("m-1", ">=m/2") for h in self.hard_sets), "hard_sets", self.hard_sets, "m-1 and/or >=m/2")
        require_int(self.mass_m, "mass_m", 3, MAX_M)
        require_floats(self.cs, "cs", 0.0, 1.0, lo_open=True)
        require(is_int(self.simple_k) and 1 <= self.simple_k < self.mass_m - 1, "simple_k", self.simple_k,
                "1 <= simple_k < mass_m-1")
        require(len(self.rests) > 0 and all(r in ("hardest", "uniform") for r in self.rests), "rests", self.rests,
                "hardest and/or uniform")
        require_ints(self.ks, "ks", 1, self.mass_m - 2, min_len=0, allowed=f"values in 1..mass_m-2 = {self.mass_m - 2}")
        require_float(self.k_c, "k_c", 0.0, 1.0, lo_open=True)
        self.opts.validate()


TIERS = {
    "quick": Config(),
    "paper": Config(inits=("consts", "c0", "uniform"), horizons=("m+1", "inf", "4m"), ms=(4, 6, 8, 12, 16, 24, 32),
                    opts=FlowOpts(t_max=1e12, t_first=1.0, num_save=96, rtol=1e-8, atol=1e-10), x64=True),
}


def mass_distribution(m: int, c: float, k: int, rest: str) -> np.ndarray:
    """Mass c uniform on distances 1..k; 1 - c on distance m-1 (rest=hardest) or on k+1..m-1."""
    probs = c * uniform_over(range(1, k + 1), m)
    if rest == "hardest":
        probs[m - 2] += 1.0 - c
    else:
        probs[k:] += (1.0 - c) / (m - 1 - k)
    return probs


def hard_distribution(m: int, which: str) -> np.ndarray:
    return fc.hardest(m) if which == "m-1" else uniform_over(range(int(np.ceil(m / 2)), m), m)


def jobs(cfg: Config) -> list[dict]:
    """Every flow of the experiment: its row knobs and training distribution."""
    out = []
    for init in cfg.inits:
        for h in cfg.horizons:
            for m in cfg.ms:
                out.append(dict(part="a", m=m, train="uniform", c=None, k=None, init=init, horizon=h,
                                probs=uniform_over(range(1, m), m)))
                for which in cfg.hard_sets:
                    out.append(dict(part="b", m=m, train=which, c=None, k=None, init=init, horizon=h,
                                    probs=hard_distribution(m, which)))
            m = cfg.mass_m
            for rest in cfg.rests:
                for c in cfg.cs:
                    out.append(dict(part="c", m=m, train=f"rest {rest}", c=c, k=cfg.simple_k, init=init,
                                    horizon=h, probs=mass_distribution(m, c, cfg.simple_k, rest)))
                for k in cfg.ks:
                    out.append(dict(part="d", m=m, train=f"rest {rest}", c=cfg.k_c, k=k, init=init,
                                    horizon=h, probs=mass_distribution(m, cfg.k_c, k, rest)))
    return out


def flow_job(cfg: Config, job: dict) -> dict[str, np.ndarray]:
    """One integration of the experiment: `job`'s training distribution from its init and horizon."""
    fs = cf.FlowSpec(m=job["m"], attention=cfg.attention, tmp=cfg.tmp, horizon=fc.horizon_of(job["horizon"], job["m"]))
    consts0 = fc.initial_consts(job["init"], fs, cfg.init_consts, cfg.init_c0)
    return fc.run_flow(fs, consts0, job["probs"], fc.hardest(job["m"]), cfg.eps, cfg.metric, cfg.opts, cfg.x64)


def _plans(cfg: Config) -> list[RunPlan]:
    plans = []
    for job in jobs(cfg):
        knobs = {k: v for k, v in job.items() if k != "probs"}
        label = f"{job['part']}-m{job['m']}-{job['init']}-H{job['horizon']}"  # a file name: no '/'
        plans.append(RunPlan(row=knobs, bucket=None, label=label, compute=functools.partial(flow_job, cfg, job)))
    return plans


def stages(cfg: Config) -> list[Stage]:
    return [Stage("flows", lambda runs: _plans(cfg))]


def analyze(cfg: Config, runs: Runs) -> Outcome:
    rows = [fc.flow_row(run.arrays, **run.row) for run in runs.where(stage="flows")]
    metrics, verdict = analyze_rows(cfg, rows)
    arrays = {"row_t_eps": np.array([np.nan if r["t_eps"] is None else r["t_eps"] for r in rows]),
              "row_m": np.array([r["m"] for r in rows]), "row_c": np.array([np.nan if r["c"] is None else r["c"] for r in rows]),
              "row_k": np.array([-1 if r["k"] is None else r["k"] for r in rows]),
              "row_part": np.array([r["part"] for r in rows]), "row_train": np.array([r["train"] for r in rows]),
              "row_init": np.array([r["init"] for r in rows]), "row_horizon": np.array([r["horizon"] for r in rows])}
    paper = {"a": "uniform distances: T polynomial in m (log-log linear)",
             "b": "distance >= m-1 (or >= m/2) only: T exponential in m, or no convergence (spec: a guess-a-sink optimum)",
             "c": "T grows as the simple mass c shrinks, roughly T ~ 1/c",
             "d": "T ~ c0^-(k+2): log T linear in k with slope about -log c0 (constant unverified)",
             "t_max": cfg.opts.t_max, "metric": cfg.metric}
    return Outcome(metrics, rows, paper, verdict, arrays)


def _capped(t):
    """Not reached (inf) ranks above every reached time, and equal to other not-reached runs."""
    return np.where(np.isfinite(t), t, 1e300)


def _sel(rows, **kw):
    return [r for r in rows if all(r[k] == v for k, v in kw.items())]


def analyze_rows(cfg: Config, rows: list[dict]) -> tuple[dict, dict]:
    metrics, verdict = {}, {}
    for init in cfg.inits:
        for h in cfg.horizons:
            tag = f"{init},H={h}"
            a = _sel(rows, part="a", init=init, horizon=h)
            ms = np.array([r["m"] for r in a], float)
            t = np.array([np.inf if r["t_eps"] is None else r["t_eps"] for r in a])
            ok = np.isfinite(t) & (t > 0)
            loglog, semilog = fc.fit_line(np.log(ms[ok]), np.log(t[ok])), fc.fit_line(ms[ok], np.log(t[ok]))
            metrics.update(fc.flat_fit(f"a[{tag}]_loglog", loglog))
            metrics.update(fc.flat_fit(f"a[{tag}]_semilog", semilog))
            metrics[f"a[{tag}]_reached"] = int(ok.sum())
            verdict[f"a_polynomial[{tag}]"] = bool(ok.all() and loglog["r2"] is not None and loglog["r2"] >= semilog["r2"])
            for which in cfg.hard_sets:
                b = _sel(rows, part="b", init=init, horizon=h, train=which)
                tb = np.array([np.inf if r["t_eps"] is None else r["t_eps"] for r in b])
                mb = np.array([r["m"] for r in b], float)
                okb = np.isfinite(tb) & (tb > 0)
                semi_b, log_b = fc.fit_line(mb[okb], np.log(tb[okb])), fc.fit_line(np.log(mb[okb]), np.log(tb[okb]))
                metrics.update(fc.flat_fit(f"b[{tag},{which}]_semilog", semi_b))
                metrics[f"b[{tag},{which}]_reached"] = int(okb.sum())
                metrics[f"b[{tag},{which}]_guess_a_sink"] = sum(r["end_state"] == "guess-a-sink" for r in b)
                gfit = fc.fit_line(mb, -np.log(np.maximum([r["grad_norm_init"] for r in b], 1e-300)))
                metrics.update(fc.flat_fit(f"b[{tag},{which}]_log_inv_grad_vs_m", gfit))
                exp_fit = bool(okb.sum() >= 3 and semi_b["slope"] > 0 and semi_b["r2"] >= (log_b["r2"] or 0))
                verdict[f"b_exponential_or_nonconvergent[{tag},{which}]"] = bool((~okb).any() or exp_fit)
                # the part-(a) times are the reference: hard-only must be slower at every m where both ran
                ta = {r["m"]: (np.inf if r["t_eps"] is None else r["t_eps"]) for r in a}
                verdict[f"b_slower_than_uniform[{tag},{which}]"] = bool(all(tb[j] >= ta.get(int(mb[j]), 0) for j in range(len(b))))
            for rest in cfg.rests:
                _mass_fits(rows, f"{tag},rest={rest}", metrics, verdict, init=init, horizon=h, train=f"rest {rest}")
    return metrics, verdict


def _mass_fits(rows, tag, metrics, verdict, **sel):
    """Parts (c) and (d) for one (init, horizon, rest): T vs 1/c and log T vs k."""
    c_rows = _sel(rows, part="c", **sel)
    cs = np.array([r["c"] for r in c_rows])
    tc = np.array([np.inf if r["t_eps"] is None else r["t_eps"] for r in c_rows])
    order = np.argsort(-cs)  # c decreasing
    okc = np.isfinite(tc)
    cfit = fc.fit_line(np.log(1 / cs[okc]), np.log(tc[okc]))
    metrics.update(fc.flat_fit(f"c[{tag}]_log_T_vs_log_inv_c", cfit))
    metrics[f"c[{tag}]_reached"] = int(okc.sum())
    verdict[f"c_T_grows_as_c_shrinks[{tag}]"] = bool(np.all(np.diff(_capped(tc[order])) >= 0))
    verdict[f"c_roughly_inverse[{tag}]"] = bool(okc.all() and cfit["slope"] is not None and 0.5 <= cfit["slope"] <= 1.5)
    d_rows = _sel(rows, part="d", **sel)
    ks = np.array([r["k"] for r in d_rows], float)
    td = np.array([np.inf if r["t_eps"] is None else r["t_eps"] for r in d_rows])
    okd = np.isfinite(td)
    dfit = fc.fit_line(ks[okd], np.log(td[okd]))
    metrics.update(fc.flat_fit(f"d[{tag}]_log_T_vs_k", dfit))
    c0 = d_rows[0]["c0_init"] if d_rows else np.nan
    metrics[f"d[{tag}]_predicted_slope_-log_c0"] = float(-np.log(c0))
    verdict[f"d_T_grows_with_k[{tag}]"] = bool(np.all(np.diff(_capped(td[np.argsort(ks)])) >= 0))


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    rows = summary["rows"]
    combos = sorted({(r["init"], r["horizon"]) for r in rows})
    fig, axes = plotting.subplots(1, 4, width=4.2)
    for j, (init, h) in enumerate(combos):
        col = f"C{j}"
        for part, train, marker, ls in [("a", "uniform", "o", "-"), ("b", "m-1", "s", "--"), ("b", ">=m/2", "^", ":")]:
            sel = [r for r in rows if r["part"] == part and r["train"] == train and r["init"] == init and r["horizon"] == h]
            if not sel:
                continue
            ms = np.array([r["m"] for r in sel], float)
            t = np.array([np.nan if r["t_eps"] is None else r["t_eps"] for r in sel])
            label = f"{init}, H={h}, train {train}" if part == "a" or j == 0 else None
            for ax in (axes[0, 0], axes[0, 1]):
                ax.plot(ms, t, marker=marker, ls=ls, color=col, label=label if ax is axes[0, 0] else None)
        for (part, ax, key), (rest, ls) in itertools.product([("c", axes[0, 2], "c"), ("d", axes[0, 3], "k")],
                                                            [("rest hardest", "-"), ("rest uniform", "--")]):
            sel = sorted([r for r in rows if r["part"] == part and r["init"] == init and r["horizon"] == h
                          and r["train"] == rest], key=lambda r: r[key])
            if not sel:
                continue
            x = np.array([1.0 / r["c"] if part == "c" else r["k"] for r in sel], float)
            t = np.array([np.nan if r["t_eps"] is None else r["t_eps"] for r in sel])
            ax.plot(x, t, "o", ls=ls, color=col, label=f"{init}, H={h}, {rest}")
            miss = ~np.isfinite(t)
            if miss.any():
                ax.plot(x[miss], np.full(miss.sum(), summary["paper"]["t_max"]), "v", color=col)
    axes[0, 0].set(xscale="log", yscale="log", xlabel="chain length m", ylabel="T_eps (flow time)", title="log-log")
    axes[0, 1].set(yscale="log", xlabel="chain length m", ylabel="T_eps", title="semi-log (missing: not reached)")
    axes[0, 2].set(xscale="log", yscale="log", xlabel="1 / c", ylabel="T_eps", title="T vs 1/c (triangle: cap)")
    axes[0, 3].set(yscale="log", xlabel="simple_k", ylabel="T_eps", title="T vs k at fixed c")
    axes[0, 0].legend(fontsize=6)
    axes[0, 2].legend(fontsize=6)
    fig.suptitle(f"chain-flow-scaling (metric {summary['paper']['metric']}; (a,b) solid: uniform distances, dashed/dotted: "
                 f"hard only; (c,d) solid: rest on m-1, dashed: rest uniform)")
    return [plotting.savefig(fig, Path(out_dir) / "chain-flow-scaling.png")]
