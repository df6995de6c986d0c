"""Throughput of the small transformer: KV-cache sampling, NTP training and one GRPO step, with MFU.

    python -m theoryrl bench lm [--json] [--quick] [--reps N] [--no-grpo]
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
- grpo (`--grpo`, default on): one `rl.lm_rl.rl_step` (GRPO, 32 prompts x G = 8, one on-policy
  update, which skips the separate behaviour pass) timed interleaved with
  `benchmarks.reference_lm.grpo_step` (the same step with that pass; ratio = reference / fast with
  min/max over pairs), on a synthetic task: random prompts, reward 1 iff the first response token
  is the prompt's last. Rows grpo-sample / grpo-score / grpo-behaviour / grpo-update time the parts
  alone: the sampler, verifier + advantages, the behaviour forward pass (reference only) and
  forward + backward + AdamW of the clipped surrogate (`lm_rl.update`).

Model FLOPs count the matmuls as implemented: 2 * params per token forward (the tied output
projection is in params; the embedding lookup is free), plus attention 4 * n_layers * d_model * K
per token for QK^T and AV over K keys (K = the cache slots a decode step reads: all 96, or with
cache blocks the prompt plus the end of the step's block; the sequence length in prefill and
training, since masked scores are computed too); training is 3x the forward; a GRPO step is sample
+ update (+ one forward for the behaviour pass); scoring counts 0. MFU = model FLOP/s / the
measured float32 GEMM peak (`benchmarks/hardware.py`). Each number is the median of `--reps` timed
calls (default 2; the whole benchmark takes several minutes on a 2-core CPU) after an
ahead-of-time compile (compile time reported separately). On a shared machine wall time tracks the
load; the JSON rows also give the process CPU seconds per call (`cpu_s_per_call`, all threads).

Measured numbers (CPU and H200) and what bounds each step: docs/results/bench-lm.md.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp

from theoryrl.benchmarks import hardware, reference_lm
from theoryrl.models import transformer as tfm
from theoryrl.rl import advantages as adv_lib
from theoryrl.rl import lm_rl, lm_runs, ntp, sampling

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


def grpo_flops(spec: tfm.TransformerSpec, prompts: int, group: int, prompt_len: int, new_tokens: int,
               behaviour_pass: bool) -> float:
    """Model FLOPs of one GRPO step: sampling, the update's forward + backward (3 forwards) over the
    [prompts * group, prompt + response] batch, and with `behaviour_pass` one more forward."""
    seq = prompt_len + new_tokens
    forward = prompts * group * seq * forward_flops_per_token(spec, seq)
    return sample_flops(spec, prompts, group, prompt_len, new_tokens) + (4 if behaviour_pass else 3) * forward


def _first_token_task(prompt_len: int, vocab: int = VOCAB) -> lm_rl.RLTask:
    """Synthetic verifiable task: random prompts over tokens 2.. (0 pad, 1 EOS); reward 1 iff the first
    response token repeats the prompt's last token."""
    def sample_prompts(key, hp, n):
        prompts_NxL = jax.random.randint(key, (n, prompt_len), 2, vocab).astype(jnp.int32)
        return prompts_NxL, None, {"last": prompts_NxL[:, -1]}

    def score(problems, response_NxT, mask_NxT):
        return {"reward": (response_NxT[:, 0] == problems["last"]).astype(jnp.float32)}

    return lm_rl.RLTask(sample_prompts=sample_prompts, score=score)


def time_interleaved(calls: dict, reps: int) -> dict:
    """{name: [wall seconds]} of `reps` rounds in which the named calls alternate (one warm-up round first)."""
    times = {name: [] for name in calls}
    for r in range(reps + 1):
        for name, call in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(call())
            if r:
                times[name].append(time.perf_counter() - start)
    return times


def bench_grpo(spec, params, args, peak: dict) -> list[dict]:
    """One GRPO step, fast vs reference interleaved, and its parts alone (module docstring)."""
    prompts, group, prompt_len, new_tokens = args.batch // args.group, args.group, args.prompt_len, args.new_tokens
    sampler = sampling.SamplerSpec(max_new_tokens=new_tokens, eos_id=1, pad_id=0)
    rl_spec = lm_rl.RLSpec(prompts_per_step=prompts, group_size=group)
    tx = ntp.make_optimizer(ntp.OptimSpec(lr=1e-4, warmup_steps=0, schedule="constant"))
    task = _first_token_task(prompt_len)
    hp = lm_runs.RLHp(seed=jnp.int32(0), lr_scale=jnp.float32(1.0), temperature=jnp.float32(1.0),
                      top_p=jnp.float32(1.0), init_params=params)
    steps = {
        "fast": lambda st: lm_rl.rl_step(spec, sampler, rl_spec, tx, task, st, hp, params),
        "ref": lambda st: reference_lm.grpo_step(spec, sampler, rl_spec, tx, task, st, hp),
    }
    states = {name: lm_rl.TrainState(jax.tree.map(jnp.copy, params), tx.init(params), jnp.int32(0)) for name in steps}
    compiled, compile_s = {}, {}
    for name, fn in steps.items():
        start = time.perf_counter()
        compiled[name] = jax.jit(fn, donate_argnums=0).lower(states[name]).compile()
        compile_s[name] = time.perf_counter() - start

    def call(name):
        states[name], metrics = compiled[name](states[name])
        return metrics["loss"]

    times = time_interleaved({name: functools.partial(call, name) for name in steps}, args.reps)
    ratios = [r / f for f, r in zip(times["fast"], times["ref"], strict=True)]
    seq = prompt_len + new_tokens
    forward = args.batch * seq * forward_flops_per_token(spec, seq)
    sample_fl = sample_flops(spec, prompts, group, prompt_len, new_tokens)
    step_flops = {name: grpo_flops(spec, prompts, group, prompt_len, new_tokens, name == "ref") for name in steps}
    common = {"batch": args.batch, "prompts": prompts, "group": group, "prompt_len": prompt_len,
              "new_tokens": new_tokens, "tokens_per_call": args.batch * new_tokens}
    rows = [{**common, "phase": "grpo", "s_per_call": statistics.median(times["fast"]), "times": times["fast"],
             "ref_s_per_call": statistics.median(times["ref"]), "ref_times": times["ref"],
             "speedup_vs_ref": statistics.median(ratios), "speedup_vs_ref_min": min(ratios),
             "speedup_vs_ref_max": max(ratios), "speedup_vs_ref_each": ratios,
             "behaviour_pass_saving_s": statistics.median(times["ref"]) - statistics.median(times["fast"]),
             "compile_s": compile_s["fast"], "ref_compile_s": compile_s["ref"],
             "flops_per_call": step_flops["fast"], "ref_flops_per_call": step_flops["ref"],
             "ref_gflops_per_s": step_flops["ref"] / statistics.median(times["ref"]) / 1e9}]

    # the parts alone, on one collected batch
    ro = jax.jit(lambda p: lm_rl.collect(spec, sampler, rl_spec, task, p, hp, jnp.int32(0)))(params)
    batch, _ = jax.jit(lambda p, r: lm_rl.advantage_batch(spec, sampler, rl_spec, task, p, params, hp,
                                                           jnp.int32(0), r))(params, ro)
    seqs = sampling.full_sequences(ro.prompts_PxL, ro.prompt_mask_PxL, ro.rollout)
    prng_key = jax.random.key(5)
    parts = {
        "grpo-sample": (lambda p: sampling.sample(spec, p, ro.prompts_PxL, None, prng_key, group, sampler),
                        (params,), sample_fl),
        "grpo-score": (lambda r: adv_lib.compute_advantages(rl_spec.advantage, lm_rl.score_groups(
            task, ro.problems, r)["reward"], r.mask_PxGxT), (ro.rollout,), 0.0),
        "grpo-behaviour": (lambda p: lm_rl.sequence_forward(spec, p, seqs, hp.temperature, prompt_len, prompts, group),
                           (params,), forward),
        "grpo-update": (lambda p, o, b: lm_rl.update(spec, rl_spec, tx, p, o, b, hp.temperature, prompt_len),
                        (params, tx.init(params), batch), 3 * forward),
    }
    for phase, (fn, fn_args, flops) in parts.items():
        start = time.perf_counter()
        part = jax.jit(fn).lower(*fn_args).compile()
        part_compile = time.perf_counter() - start
        seconds, part_times, cpu_s = _median_seconds(lambda: part(*fn_args), args.reps)
        rows.append({**common, "phase": phase, "s_per_call": seconds, "times": part_times, "cpu_s_per_call": cpu_s,
                     "compile_s": part_compile, "flops_per_call": flops})
    for row in rows:
        row["tokens_per_s"] = row["tokens_per_call"] / row["s_per_call"]
        row["gflops_per_s"] = row["flops_per_call"] / row["s_per_call"] / 1e9
        row["flops_per_token"] = row["flops_per_call"] / row["tokens_per_call"]
    return rows


def bench_model(name: str, args, peak: dict) -> list[dict]:
    spec = make_spec(name, args.prompt_len + args.new_tokens)
    params = jax.jit(tfm.init_params, static_argnums=0)(spec, jax.random.key(0))
    common = {"model": name, "params": spec.num_params(), "d_model": spec.d_model, "n_layers": spec.n_layers,
              "n_heads": spec.n_heads, "vocab": spec.vocab_size, "backend": jax.default_backend(),
              "peak_gflops": peak["matmul_gflops"], "loadavg_1min": os.getloadavg()[0]}
    rows = [bench_sample(spec, params, args.batch // args.group, args.group, args.prompt_len, args.new_tokens,
                         args.reps, block) for block in sorted({0, args.cache_block})]
    rows += [bench_train(spec, jax.tree.map(jnp.copy, params), args.batch, args.prompt_len, args.new_tokens,
                         args.reps)]  # a copy: the train step donates it
    if args.grpo:
        rows += bench_grpo(spec, params, args, peak)
    for row in rows:
        row.update(common, mfu=row["gflops_per_s"] / peak["matmul_gflops"])
    return rows


def _fmt(row: dict) -> str:
    text = (f"{row['model']:>4} {row['params']:>9,d} {row['phase']:>14} {row['batch']:5d} "
            f"{row['prompt_len']:3d}+{row['new_tokens']:<3d} {row['s_per_call']:8.3f} {row['tokens_per_s']:10.4g} "
            f"{row['flops_per_token'] / 1e6:8.2f} {row['gflops_per_s']:8.2f} {100 * row['mfu']:6.1f}% "
            f"{row['compile_s']:7.1f}")
    if "speedup_vs_ref" in row:
        text += (f"   reference (with behaviour pass) {row['ref_s_per_call']:.3f} s: ref/fast "
                 f"{row['speedup_vs_ref']:.2f}x [{row['speedup_vs_ref_min']:.2f}, {row['speedup_vs_ref_max']:.2f}]")
    return text


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
    ap.add_argument("--grpo", action=argparse.BooleanOptionalAction, default=True,
                    help="also time one GRPO step against the reference step, and its parts (default on)")
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
        print(f"{'mdl':>4} {'params':>9} {'phase':>14} {'batch':>5} {'seq':>7} {'s/call':>8} {'tokens/s':>10} "
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
