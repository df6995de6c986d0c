"""Throughput of the DAG-lite substrate: generator, verifier, sampler, NTP and RL steps, pass@k table.

    python -m theoryrl bench dag [--json] [--quick] [--reps N] [--gen-batch N] [--verify-batch N] [--only PHASE ...]
    python -m theoryrl.benchmarks.dag ...

Issue 22 §7: data generation and verification must never cost more than 5% of a pre-training or RL
step, and the sampler should run at >= 35% of the matmul peak on the quick-tier base. Everything runs
on the quick-tier base of `rl/dag_runs.py` (`BaseSpec()`: p 23, op_max 10, 0..2 distractors, ID band
2..5; `dag_runs.model`: 4 layers, d_model 128, d_ff 512, NoPE, token shift 3) with randomly
initialised parameters: every call computes every token (masked ones included), so speed does not
depend on training. "ID shapes" = the generator at op_max = id_hi (prompt 68 + solution 53 tokens),
"op_max shapes" = at op_max (113 + 103).
- gen-pretrain: one pre-training batch exactly as `pretrain_program` draws it (`gen.sample` of
  base.batch = 64 problems at the ID shapes with `pretrain_op_probs`, then `gen.sequences`); gen-large:
  `gen.sample` of --gen-batch (4096) problems, ops uniform on 2..op_max, at the op_max shapes.
- verify-gold / verify-random: `verify.verify` of --verify-batch (4096) gold solutions / uniform
  random tokens at the op_max shapes.
- sample-id / sample-opmax: `sampling.sample` with `dag_runs.sampler`, T = base.temperature, on the
  rows per call `dag_runs.eval_table` makes (one op's eval_problems x eval_samples = 16 x 64 = 1024
  at the quick tier; its max_rows 2048 is only the upper bound); generated tokens =
  rows x max_new_tokens (the solution length).
- ntp: one `ntp.ntp_step` (forward, backward, AdamW) on `gen.sequences` of 64 problems at the ID
  shapes, the base's optimiser; tokens = 64 x 121.
- rl-step (op_max shapes, and --edge-op's shapes): one `lm_rl.rl_step` of `dag_runs.rl_task(spec,
  "outcome", 0.5)` and `dag_runs.rl_spec(RLKnobs())` (8 prompts x G = 8, prompts drawn on ops
  id_hi+1..shape op), and its parts alone as `bench lm` times them: rl-prompts (`task.sample_prompts`),
  rl-sample, rl-score (verifier + advantages), rl-update (forward + backward + AdamW).
- eval-table: one `dag_runs.eval_table` call end to end (problems, chunks, host copies) on ops
  --table-ops (3 8) with --table-problems x --table-samples (4 x 32).
- eval-passk: the RLVR experiments' pass@k evaluation, one `dag_eval.sample_and_verify` call end to
  end as `rlvr_runs.eval_arrays` makes it (max_rows 4096, T 0.6, top-p 0.95, no entropy pass) on
  --passk-problems x --passk-samples (64 x 64 = 4096 rows, one jitted call) of op --passk-op (6) at
  its own shapes; tokens = rows x max_new_tokens as the sample rows count them, and apart
  `generated_tokens` (sum of the valid response lengths) and its rate.
- share rows: gen-pretrain / ntp, and (rl-prompts + rl-score) / rl-step, against the 5% target; the
  sample rows' MFU against the 35% target (stated for the quick-tier base: "not judged" on another).
FLOPs and MFU as `bench lm` counts them (`lm.sample_flops`, `lm.train_flops_per_token`,
`lm.grpo_flops`; MFU = model FLOP/s / `hardware.py`'s float32 GEMM peak); generation and
verification count 0 FLOPs. Each number is the median of --reps timed calls after an ahead-of-time
compile (compile seconds reported apart; for eval-table, the first call's excess over the median).
On a shared machine wall time tracks the load; rows also give process CPU seconds per call.
--only PHASE ... measures just those rows (plus the peak, and what a share row needs).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.benchmarks import hardware, lm
from theoryrl.core.config import require, require_int
from theoryrl.eval import dag_eval
from theoryrl.models import transformer as tfm
from theoryrl.rl import advantages as adv_lib
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import lm_rl, ntp, sampling
from theoryrl.tasks.dag import generate as gen
from theoryrl.tasks.dag import mix
from theoryrl.tasks.dag import verify as ver

SHARE_TARGET_MAX = 0.05  # issue 22 §7: generation + verification <= 5% of a step
SAMPLER_MFU_TARGET = 0.35  # issue 22 §7: sampler >= 35% of the matmul peak on the quick-tier base
# the RLVR experiments' pass@k evaluation (rlvr_runs.RLVRKnobs' eval_samples, eval_temperatures[0] and
# eval_top_p; eval_arrays' rows per jitted call, problems x samples; no entropy pass unless with_entropy)
PASSK_SAMPLES, PASSK_TEMPERATURE, PASSK_TOP_P, PASSK_MAX_ROWS = 64, 0.6, 0.95, 4096


def _compile(fn, *args):
    """(compiled, seconds) of jax.jit(fn) lowered at `args`."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - start


def _timed(phase: str, fn, args_of_rep, reps: int, unit: str, items: int, flops: float = 0.0, **extra) -> dict:
    """Row of `reps` calls of jit(fn) on args_of_rep(r) (compiled once at args_of_rep(0)): raw
    timings, the work per call (items of `unit`, model FLOPs) and the derived rates (`finish`)."""
    compiled, compile_s = _compile(fn, *args_of_rep(0))
    rep = iter(range(reps))
    seconds, times, cpu_s = lm._median_seconds(lambda: compiled(*args_of_rep(next(rep))), reps)
    return {"phase": phase, **extra, "unit": unit, "items_per_call": items, "flops_per_call": float(flops),
            "s_per_call": seconds, "times": times, "cpu_s_per_call": cpu_s, "compile_s": compile_s}


def finish(row: dict, peak_gflops: float) -> dict:
    """The derived columns from the raw ones: rate, model GFLOP/s, and the fraction of the peak."""
    row["items_per_s"] = row["items_per_call"] / row["s_per_call"]
    row["gflops_per_s"] = row["flops_per_call"] / row["s_per_call"] / 1e9
    row["mfu"] = row["gflops_per_s"] / peak_gflops
    return row


def _keys(seed: int, reps: int):
    keys = jax.random.split(jax.random.key(seed), reps)
    return lambda r: (keys[r],)


def _op_params(spec: gen.DagSpec, lo: int, hi: int) -> gen.DagParams:
    probs = np.zeros(spec.op_max + 1)
    probs[lo:hi + 1] = 1.0 / (hi - lo + 1)
    return mix.make_params(spec, probs)


def bench_generator(base: dr.BaseSpec, large_batch: int, reps: int) -> list[dict]:
    """gen-pretrain (one pre-training batch, sample + sequences) and gen-large (module docstring)."""
    batch_fn = dr._batch_fn(base)  # the pre-training data step itself, not a copy of it
    spec = base.task()
    large = _op_params(spec, 2, base.op_max)
    return [
        _timed("gen-pretrain", lambda k: batch_fn(k, 0), _keys(10, reps), reps, "problems", base.batch,
               shape_op=base.id_hi, batch=base.batch),
        _timed("gen-large", lambda k: gen.sample(k, spec, large, large_batch), _keys(11, reps), reps, "problems",
               large_batch, shape_op=base.op_max, batch=large_batch),
    ]


def bench_verifier(base: dr.BaseSpec, batch: int, reps: int) -> list[dict]:
    """verify-gold and verify-random at the op_max shapes (module docstring)."""
    spec = base.task()
    problems = gen.sample(jax.random.key(12), spec, _op_params(spec, 2, base.op_max), batch)
    garbage_BxT = jax.random.randint(jax.random.key(13), problems.solution_BxLs.shape, 0, spec.vocab_size)
    fn = lambda pr, r: ver.verify(spec, pr, r)
    common = {"shape_op": base.op_max, "batch": batch}
    return [_timed("verify-gold", fn, lambda r: (problems, problems.solution_BxLs), reps, "samples", batch, **common),
            _timed("verify-random", fn, lambda r: (problems, garbage_BxT), reps, "samples", batch, **common)]


def bench_sampler(base: dr.BaseSpec, params, shape_op: int, num_problems: int, num_samples: int, reps: int,
                  phase: str) -> dict:
    """`sampling.sample` as `dag_eval.sample_and_verify` calls it on one chunk of P x S rows."""
    spec_m, spec = dr.model(base), base.task(shape_op)
    samp = dr.sampler(spec)
    prompts_PxL, mask_PxL = gen.left_padded_prompts(dr.eval_problems(base, shape_op, num_problems))
    fn = lambda p, k: sampling.sample(spec_m, p, prompts_PxL, mask_PxL, k, num_samples, samp,
                                      temperature=base.temperature)
    keys = jax.random.split(jax.random.key(14), reps)
    prompt_len, new = prompts_PxL.shape[1], samp.max_new_tokens
    flops = lm.sample_flops(spec_m, num_problems, num_samples, prompt_len, new)
    return _timed(phase, fn, lambda r: (params, keys[r]), reps, "tokens", num_problems * num_samples * new, flops,
                  shape_op=shape_op, batch=num_problems * num_samples, prompts=num_problems, group=num_samples,
                  prompt_len=prompt_len, new_tokens=new)


def bench_ntp(base: dr.BaseSpec, params, reps: int) -> dict:
    """One NTP + AdamW step on a pre-training batch at the ID shapes (params are copied: donated)."""
    spec_m = dr.model(base)
    tx = ntp.make_optimizer(dr._optim(base))
    tokens_BxS, mask_BxS = dr._batch_fn(base)(jax.random.key(15), 0)
    state = [jax.tree.map(jnp.copy, params), None]
    state[1] = tx.init(state[0])
    step = jax.jit(lambda p, o, x, m: ntp.ntp_step(spec_m, tx, p, o, x, m), donate_argnums=(0, 1))
    start = time.perf_counter()
    compiled = step.lower(*state, tokens_BxS, mask_BxS).compile()
    compile_s = time.perf_counter() - start

    def call():
        state[0], state[1], metrics = compiled(state[0], state[1], tokens_BxS, mask_BxS)
        return metrics["loss"]

    seconds, times, cpu_s = lm._median_seconds(call, reps)
    batch, seq = tokens_BxS.shape
    flops = lm.train_flops_per_token(spec_m, seq) * batch * seq
    return {"phase": "ntp", "shape_op": base.id_hi, "batch": batch, "seq": seq, "unit": "tokens",
            "items_per_call": batch * seq, "flops_per_call": flops, "s_per_call": seconds, "times": times,
            "cpu_s_per_call": cpu_s, "compile_s": compile_s}


def bench_rl(base: dr.BaseSpec, params, knobs: dr.RLKnobs, shape_op: int, reps: int) -> list[dict]:
    """One DAG RL step and its parts alone (module docstring); the step's params are copied (donated)."""
    spec_m, spec = dr.model(base), base.task(shape_op)
    samp, rl_spec = dr.sampler(spec), dr.rl_spec(knobs)
    task = dr.rl_task(spec, knobs.reward, knobs.alpha)
    tx = ntp.make_optimizer(ntp.OptimSpec(lr=knobs.lr, warmup_steps=0, total_steps=max(knobs.steps, 1),
                                          schedule="constant", weight_decay=0.0))
    lo = min(base.id_hi + 1, shape_op)
    hp = dr.rl_hp(params, dr.band_params(base, [(lo, shape_op)], shape_op), 0, knobs)
    prompts, group = knobs.prompts_per_step, knobs.group_size
    own = jax.tree.map(jnp.copy, params)
    state = [lm_rl.TrainState(own, tx.init(own), jnp.int32(0))]
    start = time.perf_counter()
    step = jax.jit(lambda st: lm_rl.rl_step(spec_m, samp, rl_spec, tx, task, st, hp, params),
                   donate_argnums=0).lower(state[0]).compile()
    step_compile = time.perf_counter() - start

    def call():
        state[0], metrics = step(state[0])
        return metrics["loss"]

    seconds, times, cpu_s = lm._median_seconds(call, reps)
    prompt_len, new = spec.prompt_len, samp.max_new_tokens
    seq = prompt_len + new
    forward = prompts * group * seq * lm.forward_flops_per_token(spec_m, seq)
    behaviour = not lm_rl.single_on_policy_update(rl_spec)
    common = {"shape_op": shape_op, "batch": prompts * group, "prompts": prompts, "group": group,
              "prompt_len": prompt_len, "new_tokens": new}
    tokens = prompts * group * new
    rows = [{"phase": "rl-step", **common, "unit": "tokens", "items_per_call": tokens,
             "flops_per_call": lm.grpo_flops(spec_m, prompts, group, prompt_len, new, behaviour),
             "s_per_call": seconds, "times": times, "cpu_s_per_call": cpu_s, "compile_s": step_compile}]
    # the parts alone, on one collected batch (as `bench lm`'s grpo-* rows)
    ro = jax.jit(lambda p: lm_rl.collect(spec_m, samp, rl_spec, task, p, hp, jnp.int32(0)))(params)
    batch, _ = jax.jit(lambda p, r: lm_rl.advantage_batch(spec_m, samp, rl_spec, task, p, params, hp,
                                                           jnp.int32(0), r))(params, ro)
    keys = jax.random.split(jax.random.key(16), reps)
    opt = tx.init(params)
    parts = [
        ("rl-prompts", lambda k: task.sample_prompts(k, hp, prompts), lambda r: (keys[r],), "problems", prompts, 0.0),
        ("rl-sample", lambda p, k: sampling.sample(spec_m, p, ro.prompts_PxL, ro.prompt_mask_PxL, k, group, samp,
                                                   temperature=hp.temperature),
         lambda r: (params, keys[r]), "tokens", tokens, lm.sample_flops(spec_m, prompts, group, prompt_len, new)),
        ("rl-score", lambda pr, r: adv_lib.compute_advantages(rl_spec.advantage, lm_rl.score_groups(
            task, pr, r)["reward"], r.mask_PxGxT), lambda r: (ro.problems, ro.rollout), "samples", prompts * group,
         0.0),
        ("rl-update", lambda p, o, b: lm_rl.update(spec_m, rl_spec, tx, p, o, b, hp.temperature, prompt_len),
         lambda r: (params, opt, batch), "tokens", tokens, 3.0 * forward),
    ]
    for phase, fn, args_of_rep, unit, items, flops in parts:
        rows.append(_timed(phase, fn, args_of_rep, reps, unit, items, flops,
                           **{**common, "batch": items if phase == "rl-prompts" else prompts * group}))
    return rows


def bench_eval_table(base: dr.BaseSpec, params, ops, num_problems: int, num_samples: int, reps: int) -> dict:
    """`dag_runs.eval_table` end to end; its first call (compiles) is timed apart."""
    call = lambda: dr.eval_table(base, params, ops=ops, num_problems=num_problems,
                                 num_samples=num_samples)["perfect"]
    start = time.perf_counter()
    call()
    first_s = time.perf_counter() - start
    seconds, times, cpu_s = lm._median_seconds(call, reps)
    spec_m, tokens, flops = dr.model(base), 0, 0.0
    for op in ops:
        spec = base.task(dr.shape_op(base, op))
        tokens += num_problems * num_samples * spec.solution_len
        flops += lm.sample_flops(spec_m, num_problems, num_samples, spec.prompt_len, spec.solution_len)
    return {"phase": "eval-table", "ops": [int(o) for o in ops], "batch": num_problems * num_samples,
            "prompts": num_problems, "group": num_samples, "unit": "tokens", "items_per_call": tokens,
            "flops_per_call": flops, "s_per_call": seconds, "times": times, "cpu_s_per_call": cpu_s,
            "compile_s": max(first_s - seconds, 0.0), "first_call_s": first_s}


def bench_eval_passk(base: dr.BaseSpec, params, op: int, num_problems: int, num_samples: int, reps: int,
                     max_rows: int = PASSK_MAX_ROWS, with_entropy: bool = False) -> dict:
    """`dag_eval.sample_and_verify` as `rlvr_runs.eval_arrays` calls it, end to end (chunks, verifier,
    host copies; the entropy pass only with with_entropy, as rlvr-ablations runs it); its first call (compiles) is timed apart. Problems: the band (op, op)
    drawn as `rlvr_runs.set_problems` draws an RLVR set, at op's own shapes; T = PASSK_TEMPERATURE,
    top-p PASSK_TOP_P. Tokens: every slot (problems x samples x max_new_tokens, as the sample rows
    count); `generated_tokens`: the valid response tokens (sum of length_NxS, EOS included). FLOPs:
    prefill + decode of every chunk (a last partial chunk is computed in full) and, with_entropy, the
    entropy forward over the chunk's prompt + response rows; the verifier counts 0."""
    spec_m, spec = dr.model(base), base.task(op)
    samp = dr.sampler(spec)
    problems = gen.sample(jax.random.key(dr.EVAL_SEED), spec, dr.band_params(base, [(op, op)], op), num_problems)
    key = jax.random.key(17)  # the same samples on every call, as eval_table's fixed key
    call = lambda: dag_eval.sample_and_verify(spec_m, samp, params, spec, problems, key, num_samples,
                                              temperature=PASSK_TEMPERATURE, top_p=PASSK_TOP_P,
                                              max_rows=max_rows, with_entropy=with_entropy)
    start = time.perf_counter()
    generated = int(np.sum(call()["length_NxS"]))
    first_s = time.perf_counter() - start
    seconds, times, cpu_s = lm._median_seconds(call, reps)
    per_call = max(1, min(num_problems, max_rows // num_samples))  # dag_eval.sample_and_verify's chunking
    chunks = -(-num_problems // per_call)
    prompt_len, new = spec.prompt_len, samp.max_new_tokens
    seq, rows = prompt_len + new, per_call * num_samples
    flops = chunks * (lm.sample_flops(spec_m, per_call, num_samples, prompt_len, new)
                      + with_entropy * rows * seq * lm.forward_flops_per_token(spec_m, seq))
    return {"phase": "eval-passk", "op": op, "shape_op": op, "batch": rows, "prompts": per_call,
            "group": num_samples, "problems": num_problems, "chunks": chunks, "prompt_len": prompt_len,
            "new_tokens": new, "temperature": PASSK_TEMPERATURE, "top_p": PASSK_TOP_P, "max_rows": max_rows,
            "with_entropy": with_entropy, "unit": "tokens", "items_per_call": num_problems * num_samples * new,
            "generated_tokens": generated, "generated_per_s": generated / seconds, "flops_per_call": flops,
            "s_per_call": seconds, "times": times, "cpu_s_per_call": cpu_s,
            "compile_s": max(first_s - seconds, 0.0), "first_call_s": first_s}


def verdict_text(meets) -> str:
    return "not judged" if meets is None else "holds" if meets else "MISSED"


def sampler_verdict(mfu: float, base: dr.BaseSpec) -> dict:
    """The sampler's MFU against the 35% target, which is stated for the quick-tier base only: on any
    other base (a smaller test model, say) the row says "not judged" (meets_target None)."""
    return {"target_mfu": SAMPLER_MFU_TARGET, "mfu_over_target": mfu / SAMPLER_MFU_TARGET,
            "meets_target": bool(mfu >= SAMPLER_MFU_TARGET) if base == dr.BaseSpec() else None}


def share_row(phase: str, parts: list[dict], whole: dict) -> dict:
    """Fraction of `whole`'s median seconds that the `parts` take (medians summed), vs the 5% target."""
    part_s = sum(p["s_per_call"] for p in parts)
    share = part_s / whole["s_per_call"]
    return {"phase": phase, "shape_op": whole.get("shape_op"), "parts": [p["phase"] for p in parts],
            "part_s": part_s, "whole": whole["phase"], "whole_s": whole["s_per_call"], "share": share,
            "target_max": SHARE_TARGET_MAX, "meets_target": bool(share <= SHARE_TARGET_MAX)}


RL_PHASES = ("rl-step", "rl-prompts", "rl-sample", "rl-score", "rl-update")
PHASES = ("gen-pretrain", "gen-large", "verify-gold", "verify-random", "sample-id", "sample-opmax", "ntp",
          "share-ntp", *RL_PHASES, "share-rl", "eval-table", "eval-passk")  # every row's phase, in run order


def run(base: dr.BaseSpec, args, peak_gflops: float, emit=lambda row: None) -> list[dict]:
    """Every row (module docstring), each passed to `emit` as soon as it is measured; with
    `args.only` (phase names), only those rows, measuring only what they need (a share row its parts;
    a phase measured together with others, e.g. gen-large with gen-pretrain, is measured but not kept)."""
    params = jax.jit(tfm.init_params, static_argnums=0)(dr.model(base), jax.random.key(0))
    only = getattr(args, "only", None)
    wanted = set(PHASES if only is None else only)
    need = lambda *phases: bool(wanted.intersection(phases))
    rows = []

    def add(new):
        for row in new if isinstance(new, list) else [new]:
            if "items_per_call" in row:
                finish(row, peak_gflops)
            if row["phase"].startswith("sample-"):
                row.update(sampler_verdict(row["mfu"], base))
            if row["phase"] in wanted:
                rows.append(row)
                emit(row)
        return new

    if need("gen-pretrain", "gen-large", "share-ntp"):
        gen_rows = add(bench_generator(base, args.gen_batch, args.reps))
    if need("verify-gold", "verify-random"):
        add(bench_verifier(base, args.verify_batch, args.reps))
    for shape_op, phase in ((base.id_hi, "sample-id"), (base.op_max, "sample-opmax")):
        if need(phase):
            add(bench_sampler(base, params, shape_op, args.eval_problems, args.eval_samples, args.reps, phase))
    if need("ntp", "share-ntp"):
        ntp_row = add(bench_ntp(base, params, args.reps))
    if need("share-ntp"):
        add(share_row("share-ntp", [gen_rows[0]], ntp_row))
    if need(*RL_PHASES, "share-rl"):
        for shape_op in dict.fromkeys((base.op_max, args.edge_op)):
            rl_rows = add(bench_rl(base, params, args.rl, shape_op, args.reps))
            by = {row["phase"]: row for row in rl_rows}
            add(share_row("share-rl", [by["rl-prompts"], by["rl-score"]], by["rl-step"]))
    if need("eval-table"):
        add(bench_eval_table(base, params, args.table_ops, args.table_problems, args.table_samples, args.reps))
    if need("eval-passk"):
        add(bench_eval_passk(base, params, args.passk_op, args.passk_problems, args.passk_samples, args.reps))
    common = {"backend": jax.default_backend(), "peak_gflops": peak_gflops, "loadavg_1min": os.getloadavg()[0]}
    for row in rows:
        row.update(common)
    return rows


def _fmt(row: dict) -> str:
    if "share" in row:
        mark = verdict_text(row["meets_target"])
        return (f"{row['phase']:>13} {row['shape_op']!s:>3}  {' + '.join(row['parts'])} / {row['whole']}: "
                f"{row['part_s']:.4f} s / {row['whole_s']:.4f} s = {100 * row['share']:.2f}% "
                f"(target <= {100 * row['target_max']:.0f}%: {mark})")
    shape = row.get("shape_op", "/".join(str(o) for o in row.get("ops", [])))
    text = (f"{row['phase']:>13} {shape!s:>3} {row['batch']:6d} {row['s_per_call']:9.4f} {row['cpu_s_per_call']:8.3f} "
            f"{row['items_per_s']:11.4g} {row['unit']:>8}/s {row['gflops_per_s']:8.2f} {100 * row['mfu']:6.1f}% "
            f"{row['compile_s']:7.1f}")
    if "generated_tokens" in row:
        text += (f"   generated {row['generated_per_s']:.4g} tokens/s ({row['generated_tokens']:,d} of "
                 f"{row['items_per_call']:,d} slots)")
    if "target_mfu" in row:
        text += (f"   MFU / target {100 * row['target_mfu']:.0f}% = {row['mfu_over_target']:.2f} "
                 f"({verdict_text(row['meets_target'])})")
    return text


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="theoryrl bench dag", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print a JSON list of rows instead of a table")
    ap.add_argument("--quick", action="store_true",
                    help="CI smoke size: batches 256, eval rows 4 x 8, table 2 x 4, pass@k 4 x 8, 1 rep (same base)")
    ap.add_argument("--reps", type=int, help="timed calls after compile (default 2; 1 with --quick)")
    ap.add_argument("--gen-batch", type=int, help="problems of the large generator call (default 4096)")
    ap.add_argument("--verify-batch", type=int, help="samples per verifier call (default 4096)")
    ap.add_argument("--eval-problems", type=int, help="problems per sampler call (default: the base's "
                                                      "eval_problems, 16, as eval_table samples one op per call)")
    ap.add_argument("--eval-samples", type=int, help="samples per problem in the sampler rows (default 64)")
    ap.add_argument("--edge-op", type=int, default=7, help="the second RL step's shapes (default 7)")
    ap.add_argument("--table-ops", type=int, nargs="+", default=[3, 8], help="eval-table ops (default 3 8)")
    ap.add_argument("--table-problems", type=int, help="eval-table problems per op (default 4)")
    ap.add_argument("--table-samples", type=int, help="eval-table samples per problem (default 32)")
    ap.add_argument("--passk-op", type=int, default=6, help="eval-passk's op, at its own shapes (default 6)")
    ap.add_argument("--passk-problems", type=int, help="eval-passk problems (default 64)")
    ap.add_argument("--passk-samples", type=int,
                    help=f"eval-passk samples per problem (default 64, at most {PASSK_MAX_ROWS}: the rows per call)")
    ap.add_argument("--only", nargs="+", choices=PHASES, metavar="PHASE",
                    help="measure only these phases (and the peak): " + " ".join(PHASES))
    args = ap.parse_args(argv)
    quick = args.quick
    defaults = {"reps": (2, 1), "gen_batch": (4096, 256), "verify_batch": (4096, 256),
                "eval_problems": (dr.BaseSpec().eval_problems, 4), "eval_samples": (64, 8),
                "table_problems": (4, 2), "table_samples": (32, 4),
                "passk_problems": (64, 4), "passk_samples": (PASSK_SAMPLES, 8)}
    for name, (full, small) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
        require_int(getattr(args, name), f"--{name.replace('_', '-')}", 1, 1 << 20)
    base = dr.BaseSpec()
    require_int(args.edge_op, "--edge-op", 2, base.op_max)
    for op in args.table_ops:
        require_int(op, "--table-ops", 2, base.op_max)
    require(args.table_samples <= 2048 and args.eval_samples <= 2048, "--table-samples / --eval-samples",
            (args.table_samples, args.eval_samples), "at most 2048 (eval_table's rows per call)")
    require_int(args.passk_op, "--passk-op", 2, base.op_max)
    require_int(args.passk_samples, "--passk-samples", 1, PASSK_MAX_ROWS,
                f"1..{PASSK_MAX_ROWS} (the RLVR evaluation's rows per call)")
    args.rl = dr.RLKnobs()
    return args, base


def main(argv: list[str] | None = None) -> int:
    args, base = parse_args(sys.argv[1:] if argv is None else argv)
    peak = hardware.measure(quick=args.quick)
    if not args.json:
        spec_m = dr.model(base)
        print(f"# backend {jax.default_backend()}: measured peak {peak['matmul_gflops']:.1f} GFLOP/s (f32 GEMM); "
              f"median of {args.reps} calls; quick-tier DAG base (p {base.p}, op_max {base.op_max}, ID "
              f"{base.id_lo}..{base.id_hi}), model {spec_m.num_params():,d} params, random init", flush=True)
        print(f"{'phase':>13} {'op':>3} {'batch':>6} {'s/call':>9} {'cpu_s':>8} {'rate':>11} {'unit':>10} "
              f"{'GFLOP/s':>8} {'MFU':>7} {'cmpl_s':>7}", flush=True)
    rows = run(base, args, peak["matmul_gflops"], emit=lambda row: args.json or print(_fmt(row), flush=True))
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
