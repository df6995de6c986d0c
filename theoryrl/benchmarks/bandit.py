"""Throughput of the outcome-bandit simulations: seeds x steps per second, 1 seed vs 64 vmapped.

    python -m theoryrl bench bandit [--algorithm arm_ucb] [--arms 1000] [--outcomes 10]
                                    [--steps 2000] [--seeds 1,64] [--reps 3] [--json]

Each width is one jitted `vmap` over seeds of a whole run (instance + `run_steps`), compiled once
(compile time reported separately); the rate is the best of `reps` timed calls.
"""
from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp

from theoryrl.core import prng
from theoryrl.theory import bandits


def make_sweep(algo: str, shape: bandits.BanditShape, m: int, steps: int):
    def one(seed):
        root = prng.root_key(seed)
        inst = bandits.make_instance(prng.stream_key(root, prng.Stream.DATA), shape, m)
        return bandits.run_steps(algo, bandits.init_state(shape), inst, root, steps).regret

    return jax.jit(jax.vmap(one))


def measure(algo: str, arms: int, outcomes: int, steps: int, width: int, reps: int) -> dict:
    fn = make_sweep(algo, bandits.BanditShape(arms, outcomes), outcomes, steps)
    seeds = jnp.arange(width, dtype=jnp.int32)
    t0 = time.perf_counter()
    compiled = fn.lower(seeds).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(seeds))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(seeds))
        best = min(best, time.perf_counter() - t0)
    return {"seeds": width, "steps": steps, "compile_s": compile_s, "run_s": best,
            "seed_steps_per_s": width * steps / best}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m theoryrl bench bandit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algorithm", default="arm_ucb", choices=bandits.ALGORITHMS)
    p.add_argument("--arms", type=int, default=1000)
    p.add_argument("--outcomes", type=int, default=10)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seeds", default="1,64")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    widths = [int(s) for s in args.seeds.split(",") if s]
    if args.arms < args.outcomes or args.outcomes < 1 or args.steps < 1 or not widths or min(widths) < 1:
        p.error("need arms >= outcomes >= 1, steps >= 1, seeds >= 1")
    out = {"bench": "bandit", "backend": jax.default_backend(), "devices": jax.device_count(),
           "algorithm": args.algorithm, "arms": args.arms, "outcomes": args.outcomes,
           "results": [measure(args.algorithm, args.arms, args.outcomes, args.steps, w, args.reps) for w in widths]}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"bandit bench: {args.algorithm}, K = {args.arms}, m = {args.outcomes}, backend {out['backend']}")
        for r in out["results"]:
            print(f"  {r['seeds']:4d} seeds x {r['steps']} steps: {r['seed_steps_per_s']:.3g} seed-steps/s "
                  f"(run {r['run_s']:.3f}s, compile {r['compile_s']:.2f}s)")
    return 0
