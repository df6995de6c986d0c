"""Gradient-flow integration with escape times over orders of magnitude (jax_practice §12-13).

`integrate` solves dy/dt = field(y) with diffrax Tsit5 + PID step control, saving y on a grid that
is geometric in t (flows here have plateaus whose length spans decades), and stops at the first
time the loss reaches eps: an `Event` with a Newton root finder on loss(y) - eps gives that time to
solver precision. The solve is capped at `t_max`; a flow that has not reached eps by then (or that
exhausts `max_steps`) is reported as not reached, with t_eps = inf and its status, never as a
number. `ascend` is the discrete counterpart: plain gradient ascent y += lr * field(y) in one
`lax.scan`, with the first step count at which loss <= eps (time = steps * lr).

`chain_flow` runs the symmetric chain model of `chain_flow.py` through either and returns the
readouts (constants, losses, per-distance success, step probabilities) on the saved grid.
float64 reference curves: call these under `jax.enable_x64(True)` with float64 inputs.
"""
from __future__ import annotations

import dataclasses
from functools import partial

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from theoryrl.core.config import require, require_finite_positive, require_float, require_int
from theoryrl.theory import chain_flow as cf

REACHED, TIME_CAP, SOLVER_STOPPED = 0, 1, 2
ROOT_TOL = 1e-4  # relative precision of the stopping time (tighter stalls the root find in float32)
STATUS = {REACHED: "reached", TIME_CAP: "not reached (time cap)", SOLVER_STOPPED: "not reached (solver max_steps)"}


@dataclasses.dataclass(frozen=True)
class FlowOpts:
    """Integrator settings (static)."""

    t_max: float = 1e4  # time cap
    num_save: int = 64  # saved points: t = 0 and a geometric grid t_first..t_max
    t_first: float = 1e-2
    rtol: float = 1e-5
    atol: float = 1e-7
    max_steps: int = 200_000

    def validate(self):
        require_finite_positive(self.t_max, "t_max")
        require_int(self.num_save, "num_save", 2, 10_000)  # saved points are held per flow: ~100x the tiers
        require_float(self.t_first, "t_first", 0.0, self.t_max, lo_open=True, hi_open=True,
                      allowed=f"in (0, t_max = {self.t_max})")
        require_finite_positive(self.rtol, "rtol")
        require_finite_positive(self.atol, "atol")
        require_int(self.max_steps, "max_steps", 1, 10_000_000)  # a cap on the solver's work: 50x the tiers'


def save_grid(opts: FlowOpts, dtype=jnp.float32) -> jax.Array:
    return jnp.concatenate([jnp.zeros((1,), dtype),
                            jnp.minimum(jnp.geomspace(opts.t_first, opts.t_max, opts.num_save - 1).astype(dtype),
                                        jnp.asarray(opts.t_max, dtype))])


def integrate(field, y0, loss_fn, eps, opts: FlowOpts) -> dict:
    """Adaptive solve of dy/dt = field(y) from t = 0 until loss(y) <= eps or t = t_max.

    Returns ts (saved times; the stopping time is saved after the last grid point reached, unused
    slots are inf), ys (matching rows, inf where unused), t_eps (inf if not reached), status and
    the number of accepted solver steps."""
    ts = save_grid(opts, y0.dtype)
    term = diffrax.ODETerm(lambda t, y, args: field(y))
    event = diffrax.Event(lambda t, y, args, **kw: loss_fn(y) - eps,
                          root_finder=optx.Newton(rtol=ROOT_TOL, atol=ROOT_TOL))
    sol = diffrax.diffeqsolve(
        term, diffrax.Tsit5(), 0.0, opts.t_max, None, y0, saveat=diffrax.SaveAt(ts=ts, t1=True),
        stepsize_controller=diffrax.PIDController(rtol=opts.rtol, atol=opts.atol), event=event,
        max_steps=opts.max_steps, throw=False)
    hit = sol.result == diffrax.RESULTS.event_occurred
    finished = sol.result == diffrax.RESULTS.successful
    valid = jnp.isfinite(sol.ts)
    t_end = jnp.max(jnp.where(valid, sol.ts, -jnp.inf))
    y_end = sol.ys[jnp.argmax(jnp.where(valid, sol.ts, -jnp.inf))]
    # a root find that stalls at float precision after bracketing the crossing still found it
    hit = hit | ((sol.result != diffrax.RESULTS.max_steps_reached) & (loss_fn(y_end) <= eps * (1 + ROOT_TOL)))
    already = loss_fn(y0) <= eps
    t_eps = jnp.where(already, 0.0, jnp.where(hit, t_end, jnp.inf))
    status = jnp.where(already | hit, REACHED, jnp.where(finished, TIME_CAP, SOLVER_STOPPED))
    return {"ts": sol.ts, "ys": sol.ys, "t_eps": t_eps, "t_end": t_end, "status": status,
            "num_steps": sol.stats["num_steps"]}


def ascend(field, y0, loss_fn, eps, lr: float, steps: int, record_every: int = 1) -> dict:
    """Discrete gradient ascent y_{k+1} = y_k + lr * field(y_k) for `steps` steps (one lax.scan).

    Returns ys every `record_every` steps (step 0 included), the loss after every step (index k
    = after k steps, k = 0..steps), and steps_to_eps (-1 if never)."""
    require(steps % record_every == 0, "steps", steps, f"a multiple of record_every = {record_every}")

    def inner(y, _):
        y = y + lr * field(y)
        return y, loss_fn(y)

    def outer(y, _):
        y_next, losses = jax.lax.scan(inner, y, None, length=record_every)
        return y_next, (y_next, losses)

    _, (ys, losses) = jax.lax.scan(outer, y0, None, length=steps // record_every)
    ys = jnp.concatenate([y0[None], ys])
    losses = jnp.concatenate([loss_fn(y0)[None], losses.reshape(-1)])
    below = losses <= eps
    steps_to_eps = jnp.where(jnp.any(below), jnp.argmax(below), -1)
    return {"ys": ys, "losses": losses, "steps_to_eps": steps_to_eps}


# ---------------------------------------------------------------- the symmetric chain flow

def hard_loss(consts_5, fs: cf.FlowSpec, eval_probs_D) -> jax.Array:
    """1 - expected reward under the evaluation distribution (default use: distance m-1 only)."""
    return 1.0 - cf.sym_objective(consts_5, fs, eval_probs_D)


def readouts(consts_5, fs: cf.FlowSpec, train_probs_D, eval_probs_D) -> dict:
    """Everything tracked along a trajectory, at one point of it."""
    sol = cf.sym_solution(consts_5, fs)
    return {"consts": consts_5, "train_reward": sol["success"] @ train_probs_D,
            "loss": 1.0 - sol["success"] @ eval_probs_D, "success": sol["success"], "reach": sol["reach"],
            "length": sol["length"], **cf.step_probs(sol["P"], fs)}


@partial(jax.jit, static_argnames=("fs", "metric", "opts"))
def chain_flow(consts0_5, train_probs_D, eval_probs_D, eps, *, fs: cf.FlowSpec, metric: str, opts: FlowOpts) -> dict:
    """Gradient flow of the population reward on `train_probs_D`, stopped when the loss on
    `eval_probs_D` reaches eps; readouts on the saved grid (rows after the stop are NaN)."""
    field = lambda y: cf.flow_field(y, fs, train_probs_D, metric)
    loss = lambda y: hard_loss(y, fs, eval_probs_D)
    out = integrate(field, consts0_5, loss, eps, opts)
    valid = jnp.isfinite(out["ts"])
    ys = jnp.where(valid[:, None], out["ys"], consts0_5[None])
    reads = jax.vmap(lambda y: readouts(y, fs, train_probs_D, eval_probs_D))(ys)
    reads = jax.tree.map(lambda r: jnp.where(valid.reshape((-1,) + (1,) * (r.ndim - 1)), r, jnp.nan), reads)
    return {**reads, "t": jnp.where(valid, out["ts"], jnp.nan), "t_eps": out["t_eps"], "t_end": out["t_end"],
            "status": out["status"], "num_steps": out["num_steps"]}


@partial(jax.jit, static_argnames=("fs", "metric", "steps", "record_every"))
def chain_ascent(consts0_5, train_probs_D, eval_probs_D, eps, lr, *, fs: cf.FlowSpec, metric: str, steps: int,
                 record_every: int) -> dict:
    """Discrete gradient ascent with step lr on the same objective; time = steps * lr."""
    field = lambda y: cf.flow_field(y, fs, train_probs_D, metric)
    out = ascend(field, consts0_5, lambda y: hard_loss(y, fs, eval_probs_D), eps, lr, steps, record_every)
    reads = jax.vmap(lambda y: readouts(y, fs, train_probs_D, eval_probs_D))(out["ys"])
    t_eps = jnp.where(out["steps_to_eps"] >= 0, out["steps_to_eps"] * lr, jnp.inf)
    return {**reads, "t": jnp.arange(out["ys"].shape[0]) * record_every * lr, "t_eps": t_eps,
            "losses": out["losses"], "steps_to_eps": out["steps_to_eps"]}


def to_host(tree) -> dict:
    return jax.tree.map(lambda x: np.asarray(x), tree)
