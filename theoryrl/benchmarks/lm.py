"""Throughput of the small transformer: KV-cache sampling and NTP training, with MFU.

    python -m theoryrl bench lm [--json] [--quick] [--reps N]
    python -m theoryrl.benchmarks.lm ...

Two models (vocab 64, head_dim 32, SwiGLU default width, MHA): ~1M parameters (d_model 128,
5 layers) and ~5M (d_model 256, 6 layers); exact counts are printed. Shapes (default): batch 256
sequences, prompt length 32, response length 64 (sequence 96).

- sample: `rl.sampling.sample` on 32 prompts x G = 8 samples (256 sequences), temperature 1,
  top-p 1, one prefill of the 32 prompts then 64 scanned decode steps over a static 96-slot cache.
  tokens/s = 256 * 64 generated tokens per call (all computed, also those masked after EOS).
- sample-b16 (`--cache-block 16`, 0 to skip): the same sampler decoding in blocks of 16 tokens with
  the cache grown by a block before each (`SamplerSpec.cache_block`), so early steps read fewer
  empty cache slots; same tokens, log-probs equal to ~1e-6.
- train: one `rl.ntp.ntp_step` (forward, backward, AdamW with clipping) on [256, 96] tokens, loss on
  the 64 response targets; tokens/s = 256 * 96 per step.

Model FLOPs count the matmuls as implemented: 2 * params per token forward (the tied output
projection is in params; the embedding lookup is free), plus attention 4 * n_layers * d_model * K
per token for QK^T and AV over K keys (K = the cache slots a decode step reads: all 96, or with
cache blocks the prompt plus the end of the step's block; the sequence length in
prefill and training, since masked scores are computed too); training is 3x the forward.
MFU = model FLOP/s / the measured float32 GEMM peak (`benchmarks/hardware.py`). Each number is the
median of `--reps` timed calls (default 2, to stay near 2 minutes on a 2-core CPU) after an
ahead-of-time compile (compile time reported separately). On a shared machine wall time tracks the
load; the JSON rows also give the process CPU seconds per call (`cpu_s_per_call`, all threads).

Measured numbers (CPU and H200) and what bounds each step: docs/results/bench-lm.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp

from theoryrl.benchmarks import hardware
from theoryrl.models import transformer as tfm
from theoryrl.rl import ntp, sampling

MODELS = {  # name -> (d_model, n_layers)
    "1M": (128, 5),
    "5M": (256, 6),
}
VOCAB, HEAD_DIM = 64, 32


def make_spec(name: str, max_len: int) -> tfm.TransformerSpec:
    d_model, n_layers = MODELS[name]
    heads = d_model // HEAD_DIM
    return tfm.TransformerSpec(vocab_size=VOCAB, d_model=d_model, n_layers=n_layers, n_heads=heads,
                               n_kv_heads=heads, max_len=max_len)


def forward_flops_per_token(spec: tfm.TransformerSpec, keys: int) -> float:
    """Matmul FLOPs of one token's forward pass attending over `keys` positions."""
    return 2.0 * spec.num_params() + 4.0 * spec.n_layers * spec.d_model * keys


def sample_flops(spec: tfm.TransformerSpec, prompts: int, group: int, prompt_len: int, new_tokens: int,
                 cache_block: int = 0) -> float:
    """Prefill plus every decode step over the cache slots it reads (the final length, or with
    `cache_block` = b the prompt plus the end of the step's block)."""
    prefill = prompts * prompt_len * forward_flops_per_token(spec, prompt_len)
    block = cache_block or new_tokens
    keys = [prompt_len + min((j // block + 1) * block, new_tokens) for j in range(new_tokens)]
    decode = prompts * group * sum(forward_flops_per_token(spec, k) for k in keys)
    return prefill + decode


def train_flops_per_token(spec: tfm.TransformerSpec, seq_len: int) -> float:
    return 3.0 * forward_flops_per_token(spec, seq_len)


def _median_seconds(call, reps: int) -> tuple[float, list[float], float]:
    """(median wall seconds, every wall time, median process CPU seconds) of `reps` calls."""
    times, cpu = [], []
    for _ in range(reps):
        start, start_cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(times), times, statistics.median(cpu)


def bench_sample(spec, params, prompts: int, group: int, prompt_len: int, new_tokens: int, reps: int,
                 cache_block: int = 0) -> dict:
    sampler = sampling.SamplerSpec(max_new_tokens=new_tokens, eos_id=1, pad_id=0, cache_block=cache_block)
    prompts_PxL = jax.random.randint(jax.random.key(1), (prompts, prompt_len), 2, spec.vocab_size)
    fn = jax.jit(lambda p, x, k: sampling.sample(spec, p, x, None, k, group, sampler))
    start = time.perf_counter()
    compiled = fn.lower(params, prompts_PxL, jax.random.key(2)).compile()
    compile_s = time.perf_counter() - start
    keys = iter(jax.random.split(jax.random.key(3), reps))
    seconds, times, cpu_s = _median_seconds(lambda: compiled(params, prompts_PxL, next(keys)), reps)
    tokens = prompts * group * new_tokens
    flops = sample_flops(spec, prompts, group, prompt_len, new_tokens, cache_block)
    phase = f"sample-b{cache_block}" if cache_block else "sample"
    return {"phase": phase, "batch": prompts * group, "prompts": prompts, "group": group, "cache_block": cache_block,
            "prompt_len": prompt_len, "new_tokens": new_tokens, "tokens_per_call": tokens, "compile_s": compile_s,
            "s_per_call": seconds, "times": times, "cpu_s_per_call": cpu_s, "tokens_per_s": tokens / seconds,
            "flops_per_call": flops, "flops_per_token": flops / tokens, "gflops_per_s": flops / seconds / 1e9}


def bench_train(spec, params, batch: int, prompt_len: int, new_tokens: int, reps: int) -> dict:
    seq = prompt_len + new_tokens
    tx = ntp.make_optimizer(ntp.OptimSpec(lr=1e-3, warmup_steps=10, total_steps=1000))
    tokens_BxS = jax.random.randint(jax.random.key(4), (batch, seq), 0, spec.vocab_size)
    loss_mask_BxS = jnp.broadcast_to((jnp.arange(seq) >= prompt_len)[None, :], (batch, seq)).astype(jnp.float32)
    step = jax.jit(lambda p, s, x, m: ntp.ntp_step(spec, tx, p, s, x, m), donate_argnums=(0, 1))
    state = [params, tx.init(params)]
    start = time.perf_counter()
    compiled = step.lower(*state, tokens_BxS, loss_mask_BxS).compile()
    compile_s = time.perf_counter() - start

    def call():
        state[0], state[1], metrics = compiled(state[0], state[1], tokens_BxS, loss_mask_BxS)
        return metrics["loss"]

    seconds, times, cpu_s = _median_seconds(call, reps)
    tokens = batch * seq
    per_token = train_flops_per_token(spec, seq)
    return {"phase": "train", "batch": batch, "prompt_len": prompt_len, "new_tokens": new_tokens,
            "tokens_per_call": tokens, "compile_s": compile_s, "s_per_call": seconds, "times": times,
            "cpu_s_per_call": cpu_s,
            "tokens_per_s": tokens / seconds, "flops_per_call": per_token * tokens, "flops_per_token": per_token,
            "gflops_per_s": per_token * tokens / seconds / 1e9}


def bench_model(name: str, args, peak: dict) -> list[dict]:
    spec = make_spec(name, args.prompt_len + args.new_tokens)
    params = jax.jit(tfm.init_params, static_argnums=0)(spec, jax.random.key(0))
    common = {"model": name, "params": spec.num_params(), "d_model": spec.d_model, "n_layers": spec.n_layers,
              "n_heads": spec.n_heads, "vocab": spec.vocab_size, "backend": jax.default_backend(),
              "peak_gflops": peak["matmul_gflops"], "loadavg_1min": os.getloadavg()[0]}
    rows = [bench_sample(spec, params, args.batch // args.group, args.group, args.prompt_len, args.new_tokens,
                         args.reps, block) for block in sorted({0, args.cache_block})]
    rows += [bench_train(spec, params, args.batch, args.prompt_len, args.new_tokens, args.reps)]
    for row in rows:
        row.update(common, mfu=row["gflops_per_s"] / peak["matmul_gflops"])
    return rows


def _fmt(row: dict) -> str:
    return (f"{row['model']:>4} {row['params']:>9,d} {row['phase']:>10} {row['batch']:5d} "
            f"{row['prompt_len']:3d}+{row['new_tokens']:<3d} {row['s_per_call']:8.3f} {row['tokens_per_s']:10.4g} "
            f"{row['flops_per_token'] / 1e6:8.2f} {row['gflops_per_s']:8.2f} {100 * row['mfu']:6.1f}% "
            f"{row['compile_s']:7.1f}")


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="theoryrl bench lm", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print a JSON list of rows instead of a table")
    ap.add_argument("--quick", action="store_true", help="CI smoke size: 1M model only, batch 32, 1 rep")
    ap.add_argument("--models", nargs="+", choices=sorted(MODELS), help="default: 1M 5M (1M with --quick)")
    ap.add_argument("--batch", type=int, help="sequences per call (default 256; 32 with --quick)")
    ap.add_argument("--group", type=int, default=8, help="samples per prompt when sampling (default 8)")
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, help="timed calls after compile (default 2; 1 with --quick)")
    ap.add_argument("--cache-block", type=int, default=16,
                    help="also time the sampler growing its cache in blocks of this many tokens (0: only the "
                         "one-block sampler; default 16)")
    args = ap.parse_args(argv)
    args.batch = args.batch or (32 if args.quick else 256)
    args.reps = args.reps or (1 if args.quick else 2)
    args.models = args.models or (["1M"] if args.quick else ["1M", "5M"])
    if args.cache_block < 0:
        ap.error(f"--cache-block must be >= 0, got {args.cache_block}")
    for name in ("batch", "group", "prompt_len", "new_tokens", "reps"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.batch % args.group:
        ap.error(f"--batch {args.batch} must be a multiple of --group {args.group}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    peak = hardware.measure(quick=args.quick)
    if not args.json:
        print(f"# backend {jax.default_backend()}: measured peak {peak['matmul_gflops']:.1f} GFLOP/s (f32 GEMM); "
              f"median of {args.reps} calls; sample = {args.batch // args.group} prompts x G={args.group}, "
              f"train = one NTP+AdamW step; seq = prompt + response", flush=True)
        print(f"{'mdl':>4} {'params':>9} {'phase':>10} {'batch':>5} {'seq':>7} {'s/call':>8} {'tokens/s':>10} "
              f"{'MFLOP/tk':>8} {'GFLOP/s':>8} {'MFU':>7} {'cmpl_s':>7}", flush=True)
    rows = []
    for name in args.models:
        for row in bench_model(name, args, peak):
            rows.append(row)
            if not args.json:
                print(_fmt(row), flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
