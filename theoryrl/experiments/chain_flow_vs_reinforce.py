"""chain-flow-vs-reinforce: the exact gradient flow next to finite-batch REINFORCE from the same init.

Ran-Milo et al. prove their theorems for the gradient flow but run REINFORCE with Adam (spec §10
item 7). Why: to see whether the flow's predictions transfer, we put both on one chart. Fixed-V
linear model (tmp = 1), chain length m, uniform distances, horizon m+1, init A = the symmetric
(alpha, beta, gamma) = init_consts. Four trajectories, all read in the same symmetric coordinates
(class means of A and within-class spread):
  flow      exact population flow dA/dt = grad_A J (adaptive, metric "A"), time t;
  ascent    exact discrete gradient ascent A += lr grad_A J (lax.scan), time = steps * lr;
  sgd       REINFORCE with a batch-mean baseline and plain SGD, A += lr * estimate, on fresh
            batches from the foundation sampler (its E[update] is lr grad_A J): time = steps * lr;
  adam      the foundation trainer's step (REINFORCE + Adam, lr adam_lr), plotted per step.
The exact hard-distance reward of the REINFORCE iterates is measured on `eval_labellings` fixed
labellings (exact over rollouts).

One stage "trajectories": a compute plan per trajectory, row knobs method (flow, ascent, sgd, adam)
and seed (None for the deterministic flow and ascent). Rows: method, seed, t_eps (null: not
reached), final constants, final spread, final hard reward. Verdicts compare sgd/ascent with the flow,
judged only when the flow itself reached eps (the positive control): ascent within 25% of the flow
time; SGD's mean relative gap over seeds within 25% including 2 SE (one seed: not judged); SGD's
within-class spread of alpha <= 0.1 x alpha's displacement (judged when every seed moved alpha).
sgd_lr = 0 or 0 steps switch learning off (the flow's time unit is then 1).
"""
from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core.config import (check_seeds, is_int, require, require_finite_nonneg,
                                  require_float, require_floats, require_int)
from theoryrl.core.stages import Outcome, RunPlan, Runs, Stage
from theoryrl.core.results import load_npz
from theoryrl.core.verdicts import FAIL, Verdict, at_most, judged_if, mean_se
from theoryrl.experiments import chain_flow_common as fc
from theoryrl.rl import chain_trainer as trainer
from theoryrl.rl.advantages import baselined_advantages
from theoryrl.rl.chain import reinforce_loss, rollout
from theoryrl.tasks.chain import derive, sample, uniform_over
from theoryrl.theory import chain_flow as cf
from theoryrl.theory import flow_integrate as fi

ID = "chain-flow-vs-reinforce"
TITLE = "Exact gradient flow vs finite-batch REINFORCE (SGD and Adam) in symmetric coordinates"
PAPER = "Ran-Milo et al. 2601.15158: the theorems' gradient flow vs the experiments' REINFORCE (spec §10 item 7)"


@dataclasses.dataclass(frozen=True)
class Config:
    m: int = 4
    init_consts: tuple[float, ...] = (2.0, 0.0, 0.0)
    eps: float = 0.1
    batch: int = 1000
    sgd_lr: float = 40.0
    sgd_steps: int = 240
    adam_lr: float = 1e-2
    adam_steps: int = 240
    record_every: int = 8
    seeds: tuple[int, ...] = (42, 43)
    eval_labellings: int = 32

    def validate(self):
        # m <= 32: REINFORCE trains the full n x n^2 matrix (262k weights at n = 2m = 64) on `batch` rollouts;
        # batch and steps: 20x / 500x the paper tier (batch 50k, 2000 steps)
        require_int(self.m, "m", 3, 32)
        require_floats(self.init_consts, "init_consts", min_len=3, max_len=3, allowed="(alpha, beta, gamma), finite")
        require_float(self.eps, "eps", 0.0, 1.0, lo_open=True, hi_open=True)
        require_int(self.batch, "batch", 2, 1_000_000)
        # sgd_lr is also the flow's time unit (t_first = sgd_lr, t_max = 4 sgd_lr sgd_steps, which the cap 1e6
        # keeps finite in float32); 0 (learning switched off) falls back to a unit of 1 for the flow
        require_float(self.sgd_lr, "sgd_lr", 0.0, 1e6, allowed="in [0, 1e6] (0: SGD switched off)")
        require_finite_nonneg(self.adam_lr, "adam_lr")  # 0: learning switched off (Adam steps of size 0)
        require_int(self.record_every, "record_every", 1, 1_000_000)
        for knob in ("sgd_steps", "adam_steps"):
            v = getattr(self, knob)
            require(is_int(v) and 0 <= v <= 1_000_000 and v % self.record_every == 0, knob, v,
                    f"a multiple of record_every = {self.record_every} in 0..1000000 (0: no training)")
        check_seeds(self.seeds)
        require_int(self.eval_labellings, "eval_labellings", 1, 65_536)


TIERS = {
    "quick": Config(),
    "paper": Config(m=6, batch=50_000, sgd_steps=2000, adam_steps=2000, record_every=20, seeds=(42, 43, 44),
                    eval_labellings=256),
}


def _specs(cfg: Config):
    fs = cf.FlowSpec(m=cfg.m, horizon=cfg.m + 1)
    tspec = trainer.TrainSpec(task=fs.task, model=fs.model, batch=cfg.batch, horizon=cfg.m + 1, steps_per_epoch=1,
                              epochs_per_chunk=1, dataset_size=0, evals=(), early_stop=False)
    return fs, tspec


def sgd_step(tspec: trainer.TrainSpec, params, lr, batch, key):
    """One REINFORCE step with a batch-mean baseline and plain SGD (ascent on the reward)."""
    inst = derive(tspec.task, batch)
    out = rollout(params, tspec.model, inst, tspec.horizon, key)
    adv = baselined_advantages(out["correct"].astype(jnp.float32))
    grads = jax.grad(reinforce_loss)(params, tspec.model, inst, out["actions"], out["emitted"], adv)
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


def _probe(a, fs, perms, hard):
    means, spread = cf.class_stats(a)
    return {"means": means, "spread": spread, "hard_reward": cf.objective(a, fs, perms, hard)}


@partial(jax.jit, static_argnames=("cfg", "method"))
def reinforce_run(a0, perms, seed, *, cfg: Config, method: str):
    """SGD or Adam REINFORCE from A = a0; probes every record_every steps (step 0 included)."""
    fs, tspec = _specs(cfg)
    train = jnp.asarray(uniform_over(range(1, cfg.m), cfg.m), jnp.float32)
    hard = jnp.asarray(fc.hardest(cfg.m), jnp.float32)
    lr = cfg.sgd_lr if method == "sgd" else cfg.adam_lr
    steps = cfg.sgd_steps if method == "sgd" else cfg.adam_steps
    hp = trainer.make_hparams(seed, lr, train, {})
    state = trainer.start_state({"A": a0}, lr)
    key = jax.random.key(seed)

    def step(st, t):
        batch = sample(jax.random.fold_in(jax.random.fold_in(key, 0), t), tspec.task, train, cfg.batch)
        pkey = jax.random.fold_in(jax.random.fold_in(key, 1), t)
        if method == "sgd":
            return dataclasses.replace(st, params=sgd_step(tspec, st.params, lr, batch, pkey)), None
        return trainer.train_step(tspec, st, hp, batch, pkey)[0], None

    def block(st, b):
        st, _ = jax.lax.scan(step, st, b * cfg.record_every + jnp.arange(cfg.record_every))
        return st, _probe(st.params["A"], fs, perms, hard)

    _, probes = jax.lax.scan(block, state, jnp.arange(steps // cfg.record_every))
    first = _probe(a0, fs, perms, hard)
    return jax.tree.map(lambda x0, xs: jnp.concatenate([x0[None], xs]), first, probes)


def _t_eps(times, hard_reward, eps):
    hit = np.flatnonzero(1.0 - hard_reward <= eps)
    return float(times[hit[0]]) if hit.size else None


def _start(cfg: Config):
    """The shared start: flow spec, training and hardest-distance distributions, init constants and A."""
    fs, _ = _specs(cfg)
    train, hard = uniform_over(range(1, cfg.m), cfg.m), fc.hardest(cfg.m)
    consts0 = fc.initial_consts("consts", fs, cfg.init_consts)
    return fs, train, hard, consts0


def flow_job(cfg: Config) -> dict[str, np.ndarray]:
    fs, train, hard, consts0 = _start(cfg)
    unit = cfg.sgd_lr if cfg.sgd_lr > 0 else 1.0  # the SGD time unit; 1 when SGD is switched off
    opts = fi.FlowOpts(t_max=unit * max(cfg.sgd_steps, 1) * 4, t_first=unit, num_save=48)
    return fc.run_flow(fs, consts0, train, hard, cfg.eps, "A", opts)


def ascent_job(cfg: Config) -> dict[str, np.ndarray]:
    fs, train, hard, consts0 = _start(cfg)
    return jax.tree.map(np.asarray, fi.chain_ascent(
        jnp.asarray(consts0, jnp.float32), jnp.asarray(train, jnp.float32), jnp.asarray(hard, jnp.float32),
        jnp.float32(cfg.eps), cfg.sgd_lr, fs=fs, metric="A", steps=cfg.sgd_steps, record_every=cfg.record_every))


def reinforce_job(cfg: Config, method: str, seed: int) -> dict[str, np.ndarray]:
    """SGD- or Adam-REINFORCE from the symmetric A, probed on fixed labellings (the same for every run)."""
    fs, _, _, consts0 = _start(cfg)
    a0 = cf.symmetric_A(jnp.asarray(consts0, jnp.float32), fs.num_vertices)
    perms = sample(jax.random.key(7), fs.task, jnp.ones(cfg.m - 1) / (cfg.m - 1), cfg.eval_labellings).perm
    return jax.tree.map(np.asarray, reinforce_run(a0, perms, jnp.int32(seed), cfg=cfg, method=method))


def _plans(cfg: Config) -> list[RunPlan]:
    plans = [RunPlan(row={"method": "flow", "seed": None}, bucket=None, label="flow", compute=partial(flow_job, cfg)),
             RunPlan(row={"method": "ascent", "seed": None}, bucket=None, label="ascent",
                     compute=partial(ascent_job, cfg))]
    return plans + [RunPlan(row={"method": method, "seed": seed}, bucket=None, label=f"{method}-{seed}",
                            compute=partial(reinforce_job, cfg, method, seed))
                    for method in ("sgd", "adam") for seed in cfg.seeds]


def stages(cfg: Config) -> list[Stage]:
    return [Stage("trajectories", lambda runs: _plans(cfg))]


def analyze(cfg: Config, runs: Runs) -> Outcome:
    flow, asc = runs.one(method="flow").arrays, runs.one(method="ascent").arrays
    rows = [fc.flow_row(flow, method="flow", seed=None), {
        "method": "ascent", "seed": None, "t_eps": None if not np.isfinite(asc["t_eps"]) else float(asc["t_eps"]),
        **{f"final_{k}": float(v) for k, v in zip(cf.CLASSES, asc["consts"][-1])},
        "final_hard_success": float(asc["success"][-1][-1])}]
    arrays = {"flow/t": flow["t"], "flow/consts": flow["consts"], "flow/hard": flow["success"][:, -1],
              "ascent/t": asc["t"], "ascent/consts": asc["consts"], "ascent/hard": asc["success"][:, -1]}
    for method in ("sgd", "adam"):
        for run in runs.where(method=method):
            seed, res = run.row["seed"], run.arrays
            steps = np.arange(res["hard_reward"].shape[0]) * cfg.record_every
            times = steps * (cfg.sgd_lr if method == "sgd" else 1.0)
            t_eps = _t_eps(times, res["hard_reward"], cfg.eps)
            rows.append({"method": method, "seed": seed, "t_eps": t_eps, "time_unit": "steps*lr" if method == "sgd" else "steps",
                         **{f"final_{k}": float(v) for k, v in zip(cf.CLASSES, res["means"][-1])},
                         **{f"final_spread_{k}": float(v) for k, v in zip(cf.CLASSES, res["spread"][-1])},
                         "final_hard_success": float(res["hard_reward"][-1])})
            arrays.update({f"{method}/{seed}/t": times, f"{method}/{seed}/consts": res["means"],
                           f"{method}/{seed}/spread": res["spread"], f"{method}/{seed}/hard": res["hard_reward"]})
    metrics, verdict = compare(rows, float(cfg.init_consts[0]))
    paper = {"flow": "theory: exact population gradient flow", "sgd": "E[SGD-REINFORCE update] = lr grad J: should "
             "track the flow at time steps*lr up to batch noise", "adam": "the experiments' optimiser: a different path"}
    return Outcome.judged(metrics, rows, paper, verdict, arrays)


MATCH_TOL = 0.25  # |t / t_flow - 1|: a 25% band for "the same time" (batch noise and the Euler step of ascent)
SYM_TOL = 0.1     # within-class spread of alpha per unit of alpha's displacement from its start
MOVED = 0.1       # alpha moved by more than this: the symmetry check is about a trajectory, not the init


def compare(rows: list[dict], alpha0: float = 2.0) -> tuple[dict, dict[str, Verdict]]:
    """Flow time against the ascent, SGD and Adam times (rows found by their method). Every verdict
    needs the positive control: the flow itself reached eps (else there is no time to match)."""
    (t_flow,) = [r["t_eps"] for r in rows if r["method"] == "flow"]
    (t_ascent,) = [r["t_eps"] for r in rows if r["method"] == "ascent"]
    metrics = {"t_eps_flow": t_flow, "t_eps_ascent": t_ascent}
    sgd_rows = [r for r in rows if r["method"] == "sgd"]
    sgd = [r["t_eps"] for r in sgd_rows]
    adam = [r["t_eps"] for r in rows if r["method"] == "adam"]
    metrics["t_eps_sgd_mean"] = float(np.mean(sgd)) if sgd and all(t is not None for t in sgd) else None
    metrics["steps_to_eps_adam_mean"] = float(np.mean(adam)) if adam and all(t is not None for t in adam) else None
    flow_ok = {"the exact flow reached eps (the positive control)": t_flow is not None}
    rel = lambda t: np.inf if t is None or t_flow is None else abs(t / t_flow - 1.0)
    verdicts = {"ascent_matches_flow_time": judged_if(flow_ok, at_most(
        rel(t_ascent), MATCH_TOL, what="|t_ascent / t_flow - 1| (not reached: inf)")).citing(
        "discrete ascent with a small step follows the flow")}
    # SGD over seeds: the whole 2-SE interval of the mean relative gap must sit inside the band
    gaps = [t / t_flow - 1.0 for t in sgd if t is not None and t_flow is not None]
    if t_flow is not None and sgd and len(gaps) < len(sgd):
        sgd_v = Verdict(FAIL, np.inf, MATCH_TOL, -np.inf, None, "an SGD-REINFORCE seed never reached eps")
    else:
        mean, se = mean_se(gaps)
        sgd_v = at_most(abs(mean) + 2.0 * se if len(gaps) >= 2 else np.nan, MATCH_TOL, se=se,
                        what="|mean over seeds of t_sgd / t_flow - 1| + 2 SE (one seed: no SE, not judged)")
    metrics["sgd_rel_gap_mean"], metrics["sgd_rel_gap_se"] = (float(x) if np.isfinite(x) else None for x in mean_se(gaps))
    verdicts["sgd_reinforce_matches_flow_time"] = judged_if(
        {**flow_ok, "at least two seeds (an SE)": len(sgd) >= 2}, sgd_v).citing(
        "E[SGD-REINFORCE update] = lr grad J: tracks the flow at time steps*lr")
    disp = [abs(r["final_alpha"] - alpha0) for r in sgd_rows]
    ratio = [r["final_spread_alpha"] / d for r, d in zip(sgd_rows, disp) if d > 0]
    metrics["sgd_spread_per_displacement_max"] = float(max(ratio)) if ratio else None
    verdicts["sgd_reinforce_stays_symmetric"] = judged_if(
        {f"every SGD seed moved alpha by > {MOVED}": bool(disp) and min(disp) > MOVED},
        at_most(max(ratio) if ratio else np.nan, SYM_TOL,
                what="max over seeds of alpha's within-class spread / alpha's displacement")).citing(
        "symmetric init stays symmetric (population); REINFORCE samples add noise")
    return metrics, verdicts


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    seeds = sorted({k.split("/")[1] for k in arrays if k.startswith("sgd/")})
    fig, axes = plotting.subplots(1, 3, width=4.4)
    for i, name in enumerate(("alpha", "beta", "gamma")):
        ax = axes[0, 0]
        ax.plot(arrays["flow/t"], arrays["flow/consts"][:, i], color=f"C{i}", lw=2, label=f"{name} flow")
        ax.plot(arrays["ascent/t"], arrays["ascent/consts"][:, i], color=f"C{i}", ls="--", label=f"{name} ascent")
        for s in seeds:
            ax.plot(arrays[f"sgd/{s}/t"], arrays[f"sgd/{s}/consts"][:, i], color=f"C{i}", ls=":", alpha=0.8)
            axes[0, 1].plot(arrays[f"adam/{s}/t"], arrays[f"adam/{s}/consts"][:, i], color=f"C{i}",
                            label=name if s == seeds[0] else None)
    axes[0, 0].set(xlabel="time (flow t; steps x lr)", title="flow (thick), ascent (--), SGD-REINFORCE (:)")
    axes[0, 0].legend(fontsize=6)
    axes[0, 1].set(xlabel="Adam step", title="Adam-REINFORCE (class means)")
    axes[0, 1].legend(fontsize=7)
    ax = axes[0, 2]
    ax.plot(arrays["flow/t"], arrays["flow/hard"], color="k", lw=2, label="flow")
    ax.plot(arrays["ascent/t"], arrays["ascent/hard"], color="k", ls="--", label="ascent")
    for s in seeds:
        ax.plot(arrays[f"sgd/{s}/t"], arrays[f"sgd/{s}/hard"], color="C3", ls=":", label=f"SGD seed {s}")
    ax.set(xlabel="time", ylabel="exact reward, distance m-1", ylim=(-0.02, 1.02), title="hardest-distance reward")
    ax.legend(fontsize=7)
    return [plotting.savefig(fig, Path(out_dir) / "chain-flow-vs-reinforce.png")]
