"""Throughput of one chain-traversal REINFORCE step against a plain reference, run side by side.

    python -m theoryrl bench chain [--quick] [--json] [--m 4 8] [--attention softmax] [--no-split]
    python -m theoryrl.benchmarks.chain ...

One step = `chain_trainer.train_step` (the fast step) or `benchmarks.reference_chain.train_step`
(the same step written plainly; tested equal in gradient) on a freshly sampled batch: sample +
derive + sampled rollout + REINFORCE loss and gradient + Adam, at batch 50,000, n = 2m, horizon
m + 1, tmp 1/20 (softmax) or 1/5 (linear). `--steps` steps run inside one jitted `lax.scan`; a call's
time is divided by the step count. After one warm-up call each, fast and reference calls alternate
(fast, ref, fast, ref, ...) on the same data, so both see the same load; `speedup_vs_ref` is the
median over repetitions of ref/fast of each pair, with its min and max. `--split` (default) also
times the fast step's parts, each jitted alone: instance sampling, rollout, loss + gradient, Adam.

Two bounds, each max(flops / peak, bytes / bandwidth) with this machine's measured float32 GEMM
peak and copy bandwidth (`benchmarks/hardware.py`):
- XLA: `compiled.cost_analysis()` of the fast step compiled without chunks and with the decode
  unrolled (XLA counts a loop body once); its "bytes" sums every fused op's operands and results,
  so it overstates traffic of a program that works in cache-sized chunks.
- hand: the work the algorithm needs at least (`hand_cost`, derivation there).
The official PyTorch code's seconds per step are quoted as a reference (source, machine, date) and
never divided into a number measured here.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import optax

from theoryrl.benchmarks import hardware, reference_chain
from theoryrl.core.prng import Stream, root_key, step_key
from theoryrl.models.chain_attention import ModelSpec
from theoryrl.rl import chain as rl_chain
from theoryrl.rl.advantages import baselined_advantages
from theoryrl.rl.chain_trainer import ChainHp, TrainSpec, TrainState, init_state, make_hparams, train_step
from theoryrl.tasks.chain import ChainSpec, derive, sample, uniform_over

OFFICIAL = {  # quoted, not measured here: official PyTorch code, batch 50,000 in 30 sub-batches, softmax
    "source": "issue 2 of this project (official code of Ran-Milo et al., arXiv 2601.15158)",
    "machine": "the 2-core CPU this project's first benchmarks ran on",
    "date": "before 2026-11-22",
    "s_per_step": {4: 5.5, 8: 68.0},
}
TMP = {"softmax": 1.0 / 20.0, "linear": 1.0 / 5.0}
STEP_FNS = {"fast": train_step, "ref": reference_chain.train_step}


def make_spec(m: int, attention: str, batch: int) -> TrainSpec:
    task = ChainSpec(m, 2 * m)
    return TrainSpec(task=task, model=ModelSpec(n=2 * m, attention=attention, tmp=TMP[attention]), batch=batch,
                     horizon=m + 1, steps_per_epoch=1, epochs_per_chunk=1, dataset_size=0, evals=())


def hand_cost(spec: TrainSpec) -> dict:
    """The least FLOPs and DRAM bytes one step of this algorithm needs, derived by hand.

    Per instance: E = 2(m-1) prompt edges, H decode steps (the fixed shape both implementations and
    the official code use), n vertices; every step's context holds at least K = E + 1 distinct tokens
    (the edges and the source; more once new vertices are emitted, so K is a lower bound). A
    multiply-add counts 2 FLOPs, any other arithmetic op (exp included) 1; gathers, compares and
    selects count 0; sampling the instances, reward and baseline (O(n) per instance) count 0.
    Per instance and decode step, forward (the policy at the current vertex v, computed once):
      scores A[v, ctx] gathered (0); softmax weights: K exps + K adds for Z (linear: 0);
      logits = sum_k w_k V[k, :] / (Z tmp): 2nK + n; sampling: n exps + n adds (the CDF).
    Backward (d adv * log pi(a) at the same step, reusing the forward's weights and exps):
      d logits = adv (onehot(a) - p): 2n; / (Z tmp): n; d w_k = sum_j d mixed_j V[k, j]: 2nK;
      softmax weights -> scores: w_k (d w_k - sum_k' w_k' d w_k'): 4K (linear: 0); A accumulate: K;
      V accumulate d V[k, :] += w_k d mixed: 2nK (0 with fixed V).
    Per step: Adam, 12 FLOPs per parameter (moments 3 + 4, sqrt, add eps, divide, scale, subtract).
    Bytes: the instances come from the key and, rewards being 0/1, the baselined gradient is
    (1 - mean r) G_1 - (mean r) G_0 with G_1 / G_0 the log-prob gradients summed over correct /
    incorrect rollouts (per baseline group), so one fused pass keeps every per-instance value in
    cache; what must reach memory is each parameter and its two Adam moments, read once and written
    once: 24 bytes per parameter. (Skipping the steps after a sink would scale the FLOPs by the
    mean rollout length / H; bench reports that length as `train_len`.)
    """
    n, num_edges, horizon, batch = spec.model.n, spec.task.num_edges, spec.horizon, spec.batch
    k = num_edges + 1
    softmax = spec.model.attention == "softmax"
    forward = 2 * n * k + n + 2 * n + (2 * k if softmax else 0)
    backward = 2 * n + n + 2 * n * k + (4 * k if softmax else 0) + k + (0 if spec.model.fixed_v else 2 * n * k)
    params = n * n * n * (1 if spec.model.fixed_v else 2)
    return {"flops": float(batch * horizon * (forward + backward) + 12 * params), "bytes": float(24 * params),
            "flops_per_instance_step": {"forward": forward, "backward": backward}, "params": params}


def _one_step(step_fn, spec: TrainSpec, state: TrainState, hp: ChainHp, t):
    key = root_key(hp.seed)
    batch = sample(step_key(key, Stream.DATA, t), spec.task, hp.dist_probs, spec.batch)
    return step_fn(spec, state, hp, batch, step_key(key, Stream.POLICY, t))


def _scan_steps(step_fn, spec: TrainSpec, num_steps: int):
    def run(state, hp, t0):
        def body(st, t):
            st, metrics = _one_step(step_fn, spec, st, hp, t)
            return st, (metrics["train_acc"], metrics["train_len"])
        return jax.lax.scan(body, state, t0 + jnp.arange(num_steps))
    return jax.jit(run, donate_argnums=0)


def step_cost(spec: TrainSpec, state: TrainState, hp: ChainHp) -> dict:
    """XLA's flops and bytes of one fast step (loops unrolled, see module docstring)."""
    spec = dataclasses.replace(spec, layout=rl_chain.COST_ANALYSIS)
    compiled = jax.jit(lambda s, h, t: _one_step(train_step, spec, s, h, t)).lower(state, hp, jnp.int32(0)).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return {"flops": float(cost.get("flops", 0.0)), "bytes": float(cost.get("bytes accessed", 0.0))}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_interleaved(fns: dict, states: dict, hp: ChainHp, num_steps: int, reps: int) -> dict:
    """{name: (wall seconds per call, CPU seconds per call, mean rollout length)} with the calls of the
    named programs alternating, each pair on the same steps' data, after one warm-up call each."""
    out = {name: ([], [], []) for name in fns}
    for r in range(reps + 1):
        for name, fn in fns.items():
            start, cpu_start = time.perf_counter(), _cpu_seconds()
            states[name], (_, lengths) = fn(states[name], hp, jnp.int32(r * num_steps))
            jax.block_until_ready((states[name], lengths))
            if r:  # r = 0 compiles and warms up
                out[name][0].append(time.perf_counter() - start)
                out[name][1].append(_cpu_seconds() - cpu_start)
                out[name][2].append(float(jnp.mean(lengths)))
    return out


def _best_of(fn, args, reps: int) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def split_times(spec: TrainSpec, state: TrainState, hp: ChainHp, reps: int) -> dict:
    """Median seconds of the fast step's parts, each jitted alone (their sum exceeds the fused step)."""
    key = jax.random.key(1)
    sample_fn = jax.jit(lambda k: derive(spec.task, sample(k, spec.task, hp.dist_probs, spec.batch)))
    inst = sample_fn(key)
    rollout_fn = jax.jit(lambda p, i, k: rl_chain.rollout(p, spec.model, i, spec.horizon, k, spec.layout))
    out = rollout_fn(state.params, inst, key)
    adv = baselined_advantages(out["correct"].astype(jnp.float32))
    grad_fn = jax.jit(jax.value_and_grad(
        lambda p, i, a, e, w: rl_chain.reinforce_loss(p, spec.model, i, a, e, w, spec.layout)))
    _, grads = grad_fn(state.params, inst, out["actions"], out["emitted"], adv)
    adam_fn = jax.jit(lambda g, o, p: optax.apply_updates(p, optax.adam(hp.lr).update(g, o, p)[0]))
    return {"sample_s": _best_of(sample_fn, (key,), reps),
            "rollout_s": _best_of(rollout_fn, (state.params, inst, key), reps),
            "loss_grad_s": _best_of(grad_fn, (state.params, inst, out["actions"], out["emitted"], adv), reps),
            "adam_s": _best_of(adam_fn, (grads, state.opt, state.params), reps)}


def _bound(cost: dict, peak: dict) -> tuple[float, str]:
    flop_s, byte_s = cost["flops"] / (peak["matmul_gflops"] * 1e9), cost["bytes"] / (peak["bandwidth_gbs"] * 1e9)
    return max(flop_s, byte_s), "compute" if flop_s >= byte_s else "memory"


def bench_one(m: int, attention: str, batch: int, num_steps: int, reps: int, peak: dict, split: bool = True) -> dict:
    spec = make_spec(m, attention, batch)
    hp = make_hparams(0, 1e-2, uniform_over(range(1, m), m), {})
    start = time.perf_counter()
    fns = {name: _scan_steps(fn, spec, num_steps) for name, fn in STEP_FNS.items()}
    timed = time_interleaved(fns, {name: init_state(spec, hp) for name in fns}, hp, num_steps, reps)
    (fast, fast_cpu, lengths), (ref, ref_cpu, _) = timed["fast"], timed["ref"]
    ratios = [r / f for f, r in zip(fast, ref, strict=True)]
    state = init_state(spec, hp)
    xla, hand = step_cost(spec, state, hp), hand_cost(spec)
    step_s, ref_s = statistics.median(fast) / num_steps, statistics.median(ref) / num_steps
    xla_s, xla_kind = _bound(xla, peak)
    hand_s, hand_kind = _bound(hand, peak)
    row = {
        "m": m, "attention": attention, "batch": batch, "n": 2 * m, "horizon": m + 1, "tmp": TMP[attention],
        "steps_per_call": num_steps, "reps": reps,
        "step_s": step_s, "step_s_min": min(fast) / num_steps, "step_s_max": max(fast) / num_steps,
        "ref_step_s": ref_s, "ref_step_s_min": min(ref) / num_steps, "ref_step_s_max": max(ref) / num_steps,
        "speedup_vs_ref": statistics.median(ratios), "speedup_vs_ref_min": min(ratios),
        "speedup_vs_ref_max": max(ratios), "speedup_vs_ref_each": ratios,
        "cpu_s_per_step": statistics.median(fast_cpu) / num_steps,
        "ref_cpu_s_per_step": statistics.median(ref_cpu) / num_steps,
        "instances_per_s": batch / step_s, "train_len": statistics.mean(lengths),
        "xla_flops": xla["flops"], "xla_bytes": xla["bytes"], "xla_bound_s": xla_s, "xla_bound_kind": xla_kind,
        "step_over_xla_bound": step_s / xla_s,
        "hand_flops": hand["flops"], "hand_bytes": hand["bytes"], "hand_bound_s": hand_s, "hand_bound_kind": hand_kind,
        "step_over_hand_bound": step_s / hand_s, "ref_over_hand_bound": ref_s / hand_s,
        "xla_flops_over_hand": xla["flops"] / hand["flops"],
        "frac_peak_flops_xla": xla["flops"] / step_s / (peak["matmul_gflops"] * 1e9),
        "official_s_quoted": OFFICIAL["s_per_step"].get(m) if batch == 50_000 and attention == "softmax" else None,
        "official_source": {k: v for k, v in OFFICIAL.items() if k != "s_per_step"},
        "loadavg_1min": os.getloadavg()[0], "backend": jax.default_backend(), "device": peak["device"],
        "peak_gflops": peak["matmul_gflops"], "peak_gbs": peak["bandwidth_gbs"],
    }
    if split:
        row["split"] = split_times(spec, state, hp, reps)
    row["wall_incl_compile_s"] = time.perf_counter() - start
    return row


def _fmt(row: dict) -> str:
    official = f"{row['official_s_quoted']:6.1f}" if row["official_s_quoted"] else "     -"
    return (f"{row['attention']:>8} {row['m']:3d} {row['batch']:7d} {row['step_s']:8.4f} {row['ref_step_s']:8.4f} "
            f"{row['speedup_vs_ref']:5.2f}x [{row['speedup_vs_ref_min']:4.2f},{row['speedup_vs_ref_max']:4.2f}] "
            f"{row['xla_flops'] / 1e9:7.2f} {row['xla_bound_s']:8.4f} {row['step_over_xla_bound']:6.1f} "
            f"{row['hand_flops'] / 1e9:7.3f} {row['hand_bound_s']:8.5f} {row['step_over_hand_bound']:6.1f} "
            f"{row['train_len']:5.2f} {official} {row['loadavg_1min']:5.1f}")


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="theoryrl bench chain", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print a JSON list of rows instead of a table")
    ap.add_argument("--quick", action="store_true", help="CI smoke size: batch 5000, m=4, 2 steps x 3 reps")
    ap.add_argument("--m", type=int, nargs="+", help="chain lengths (default 4 8 12)")
    ap.add_argument("--attention", nargs="+", choices=sorted(TMP), help="default: softmax linear")
    ap.add_argument("--batch", type=int, help="default 50000 (5000 with --quick)")
    ap.add_argument("--steps", type=int, help="steps per timed call (one lax.scan); default 3 (2 with --quick)")
    ap.add_argument("--reps", type=int, help="timed fast/ref pairs after the warm-up; default 5 (3 with --quick)")
    ap.add_argument("--split", action=argparse.BooleanOptionalAction, default=True,
                    help="also time the fast step's parts alone (default on)")
    args = ap.parse_args(argv)
    for name in ("batch", "steps", "reps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            ap.error(f"--{name} must be >= 1, got {value}")
    if args.m and any(m < 2 for m in args.m):
        ap.error(f"--m values must be >= 2, got {args.m}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ms = args.m or ([4] if args.quick else [4, 8, 12])
    attentions = args.attention or ["softmax", "linear"]
    batch = args.batch or (5000 if args.quick else 50_000)
    steps, reps = args.steps or (2 if args.quick else 3), args.reps or (3 if args.quick else 5)
    peak = hardware.measure(quick=args.quick)
    rows = []
    if not args.json:
        print(f"# backend {jax.default_backend()} ({peak['device']}): measured peak {peak['matmul_gflops']:.1f} "
              f"GFLOP/s (f32 GEMM), {peak['bandwidth_gbs']:.1f} GB/s (copy); {reps} interleaved fast/ref pairs x "
              f"{steps} scanned steps; x = median ref/fast [min, max]; official s/step quoted from "
              f"{OFFICIAL['source']}, {OFFICIAL['machine']}, {OFFICIAL['date']} (not a same-run number)", flush=True)
        print(f"{'attn':>8} {'m':>3} {'batch':>7} {'step_s':>8} {'ref_s':>8} {'vs ref [min,max]':>17} "
              f"{'xlaGFLOP':>7} {'xla_bnd':>8} {'/xla':>6} {'handGFLOP':>7} {'hand_bnd':>8} {'/hand':>6} "
              f"{'len':>5} {'offic':>6} {'load':>5}", flush=True)
    for attention in attentions:
        for m in ms:
            row = bench_one(m, attention, batch, steps, reps, peak, args.split)
            rows.append(row)
            if not args.json:
                print(_fmt(row), flush=True)
                if "split" in row:
                    print("         parts alone: " + ", ".join(f"{k} {v:.4f}" for k, v in row["split"].items()),
                          flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
