"""Throughput of one chain-traversal REINFORCE step (the paper's emergence setting).

    python -m theoryrl bench chain [--quick] [--json] [--m 4 8] [--attention softmax]
    python -m theoryrl.benchmarks.chain ...

One step = `chain_trainer.train_step` on a freshly sampled batch: sample + derive + sampled
rollout + REINFORCE loss and gradient + Adam, at batch 50,000, n = 2m, horizon m + 1, tmp 1/20
(softmax) or 1/5 (linear). `--steps` steps run inside one jitted `lax.scan`; the time of a call is
divided by the step count, and the median over `--reps` calls after a warm-up is reported.

FLOPs and bytes are XLA's own `compiled.cost_analysis()` of a single step, compiled without the
chunk loop and with the decode loop unrolled (XLA counts a while-loop body once); "bytes" is the sum
of every fused op's operands and results, an upper bound on memory traffic (the timed program works
in cache-sized chunks). Peaks come from `benchmarks/hardware.py` (float32 GEMM, streaming copy);
roofline bound = max(flops / peak, bytes / bandwidth). Reference: the official PyTorch code takes
about 5.5 s/step at m = 4 and 68 s/step at m = 8 on the 2-core CPU these numbers were first taken on.
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

from theoryrl.benchmarks import hardware
from theoryrl.core.prng import Stream, root_key, step_key
from theoryrl.models.chain_attention import ModelSpec
from theoryrl.rl import chain as rl_chain
from theoryrl.rl.chain_trainer import ChainHp, TrainSpec, TrainState, init_state, make_hparams, train_step
from theoryrl.tasks.chain import ChainSpec, sample, uniform_over

OFFICIAL_S_PER_STEP = {4: 5.5, 8: 68.0}  # official PyTorch code, batch 50,000, same CPU (issue)
TMP = {"softmax": 1.0 / 20.0, "linear": 1.0 / 5.0}


def make_spec(m: int, attention: str, batch: int) -> TrainSpec:
    task = ChainSpec(m, 2 * m)
    return TrainSpec(task=task, model=ModelSpec(n=2 * m, attention=attention, tmp=TMP[attention]), batch=batch,
                     horizon=m + 1, steps_per_epoch=1, epochs_per_chunk=1, dataset_size=0, evals=())


def _one_step(spec: TrainSpec, state: TrainState, hp: ChainHp, t):
    key = root_key(hp.seed)
    batch = sample(step_key(key, Stream.DATA, t), spec.task, hp.dist_probs, spec.batch)
    return train_step(spec, state, hp, batch, step_key(key, Stream.POLICY, t))


def _scan_steps(spec: TrainSpec, num_steps: int):
    def run(state, hp, t0):
        def body(st, t):
            st, metrics = _one_step(spec, st, hp, t)
            return st, metrics["train_acc"]
        return jax.lax.scan(body, state, t0 + jnp.arange(num_steps))
    return jax.jit(run, donate_argnums=0)


def step_cost(spec: TrainSpec, state: TrainState, hp: ChainHp) -> dict:
    """XLA's flops and bytes of one step (loops unrolled, see module docstring)."""
    spec = dataclasses.replace(spec, layout=rl_chain.COST_ANALYSIS)
    compiled = jax.jit(lambda s, h, t: _one_step(spec, s, h, t)).lower(state, hp, jnp.int32(0)).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return {"flops": float(cost.get("flops", 0.0)), "bytes": float(cost.get("bytes accessed", 0.0))}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _time_calls(fn, state, hp, num_steps: int, reps: int):
    """Wall and process-CPU seconds of each call (CPU time is less sensitive to other load)."""
    state, _ = fn(state, hp, jnp.int32(0))  # compile + warm-up
    jax.block_until_ready(state)
    times, cpu = [], []
    for r in range(reps):
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        state, acc = fn(state, hp, jnp.int32((r + 1) * num_steps))
        jax.block_until_ready((state, acc))
        times.append(time.perf_counter() - start)
        cpu.append(_cpu_seconds() - cpu_start)
    return times, cpu


def bench_one(m: int, attention: str, batch: int, num_steps: int, reps: int, peak: dict) -> dict:
    spec = make_spec(m, attention, batch)
    hp = make_hparams(0, 1e-2, uniform_over(range(1, m), m), {})
    state = init_state(spec, hp)
    compile_start = time.perf_counter()
    fn = _scan_steps(spec, num_steps)
    times, cpu = _time_calls(fn, init_state(spec, hp), hp, num_steps, reps)
    step_s = statistics.median(times) / num_steps
    sample_fn = jax.jit(lambda k: sample(k, spec.task, hp.dist_probs, batch))
    jax.block_until_ready(sample_fn(jax.random.key(0)))
    sample_times = []
    for r in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(sample_fn(jax.random.key(r + 1)))
        sample_times.append(time.perf_counter() - start)
    cost = step_cost(spec, state, hp)
    flop_s, bw_s = cost["flops"] / (peak["matmul_gflops"] * 1e9), cost["bytes"] / (peak["bandwidth_gbs"] * 1e9)
    bound_s = max(flop_s, bw_s)
    official = OFFICIAL_S_PER_STEP.get(m) if batch == 50_000 else None
    return {
        "m": m, "attention": attention, "batch": batch, "n": 2 * m, "horizon": m + 1, "tmp": TMP[attention],
        "steps_per_call": num_steps, "reps": reps,
        "step_s": step_s, "step_s_min": min(times) / num_steps, "step_s_max": max(times) / num_steps,
        "cpu_s_per_step": statistics.median(cpu) / num_steps, "loadavg_1min": os.getloadavg()[0],
        "instances_per_s": batch / step_s,
        "sample_s": statistics.median(sample_times),
        "flops": cost["flops"], "bytes": cost["bytes"], "cost_source": "XLA compiled.cost_analysis()",
        "gflops_per_s": cost["flops"] / step_s / 1e9, "gbytes_per_s": cost["bytes"] / step_s / 1e9,
        "frac_peak_flops": flop_s / step_s, "frac_peak_bw": bw_s / step_s,
        "roofline_s": bound_s, "roofline_bound": "compute" if flop_s >= bw_s else "memory",
        "step_over_roofline": step_s / bound_s if bound_s > 0 else None,
        "official_s": official, "speedup_vs_official": official / step_s if official else None,
        "wall_incl_compile_s": time.perf_counter() - compile_start,
        "backend": jax.default_backend(), "peak_gflops": peak["matmul_gflops"], "peak_gbs": peak["bandwidth_gbs"],
    }


def _fmt(row: dict) -> str:
    speed = f"{row['speedup_vs_official']:8.0f}x" if row["speedup_vs_official"] else "      n/a"
    return (f"{row['attention']:>8} {row['m']:3d} {row['batch']:7d} {row['step_s']:9.4f} {row['instances_per_s']:11.3g} "
            f"{speed} {row['sample_s']:8.4f} {row['flops'] / 1e9:7.2f} {row['bytes'] / 1e9:7.2f} "
            f"{row['frac_peak_flops']:8.3f} {row['frac_peak_bw']:7.3f} {row['roofline_s']:8.4f} "
            f"{row['step_over_roofline']:6.1f} {row['roofline_bound']:>7} {row['cpu_s_per_step']:7.4f} {row['loadavg_1min']:5.1f}")


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="theoryrl bench chain", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print a JSON list of rows instead of a table")
    ap.add_argument("--quick", action="store_true", help="CI smoke size: batch 5000, m=4, 2 steps x 3 reps")
    ap.add_argument("--m", type=int, nargs="+", help="chain lengths (default 4 8 12)")
    ap.add_argument("--attention", nargs="+", choices=sorted(TMP), help="default: softmax linear")
    ap.add_argument("--batch", type=int, help="default 50000 (5000 with --quick)")
    ap.add_argument("--steps", type=int, help="steps per timed call (one lax.scan); default 3 (2 with --quick)")
    ap.add_argument("--reps", type=int, help="timed calls after the warm-up; default 5 (3 with --quick)")
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
        print(f"# backend {jax.default_backend()}: measured peak {peak['matmul_gflops']:.1f} GFLOP/s (f32 GEMM), "
              f"{peak['bandwidth_gbs']:.1f} GB/s (copy); flops/bytes from XLA cost_analysis(); "
              f"median of {reps} calls x {steps} scanned steps", flush=True)
        print(f"{'attn':>8} {'m':>3} {'batch':>7} {'step_s':>9} {'inst/s':>11} {'vs_offic':>9} {'sample_s':>8} "
              f"{'GFLOP':>7} {'GB':>7} {'fr_peak':>8} {'fr_bw':>7} {'roof_s':>8} {'ratio':>6} {'bound':>7} {'cpu_s':>7} {'load':>5}", flush=True)
    for attention in attentions:
        for m in ms:
            row = bench_one(m, attention, batch, steps, reps, peak)
            rows.append(row)
            if not args.json:
                print(_fmt(row), flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
