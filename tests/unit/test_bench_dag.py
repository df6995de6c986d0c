"""`bench dag`'s rows: the work each call counts (hand-counted from the DAG shapes), the derived rates and
fractions recomputed from the row's own raw timings, the 5% share and 35% MFU verdicts, bad arguments.

Tiny base (cheap to compile): p 5, op_max 3, no distractors, ID band 2..2, one layer of d_model 16
(2 heads of 8), d_ff 32, no token shift. Shapes (generate.DagSpec): num_nodes = op_max + distractors,
prompt = 1 + 9 * num_nodes + 4, solution = 10 * op_max + 3, so the ID shapes (op_max 2) are 23 + 23
and the op_max shapes (3) are 32 + 33. Vocabulary 51 + p = 56. Parameters by hand: attention
wq, wk, wv, wo with 2 heads of 8: 4 * 16 * 2 * 8 = 1024; SwiGLU 3 * 16 * 32 = 1536; two RMSNorm scales 32; the tied embedding 56 * 16 = 896; the final norm 16: 1024 + 1536 + 32 +
896 + 16 = 3504. A token's forward over K keys: 2 * 3504 + 4 * 1 layer * 16 * K = 7008 + 64 K FLOPs.
"""
import inspect
import statistics

import pytest

from theoryrl.benchmarks import dag
from theoryrl.core.config import ConfigError
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import rlvr_runs as rr

TINY = dr.BaseSpec(p=5, op_max=3, max_distractors=0, id_lo=2, id_hi=2, easy_max=2, medium_max=2,
                   mix=(1.0, 0.0, 0.0), d_model=16, n_layers=1, n_heads=2, d_ff=32, token_shift=0, batch=4)
PEAK_GFLOPS = 7.0  # any positive peak: the fraction is recomputed from it below
FORWARD = lambda keys: 7008 + 64 * keys


def _check_derived(row: dict) -> None:
    """Rate, GFLOP/s and MFU recomputed from the row's raw numbers (float64 Python)."""
    assert row["s_per_call"] == statistics.median(row["times"])
    assert row["items_per_s"] == pytest.approx(row["items_per_call"] / row["s_per_call"], rel=1e-12)
    assert row["gflops_per_s"] == pytest.approx(row["flops_per_call"] / row["s_per_call"] / 1e9, rel=1e-12)
    assert row["mfu"] == pytest.approx(row["flops_per_call"] / row["s_per_call"] / 1e9 / PEAK_GFLOPS, rel=1e-12)
    assert row["compile_s"] > 0 and row["cpu_s_per_call"] >= 0


def test_tiny_parameter_count_matches_the_hand_count():
    assert dr.model(TINY).num_params() == 3504


def test_sampler_row_counts_eval_chunk_tokens_and_flops():
    """2 problems x S = 3 at the op_max shapes (prompt 32, 33 new tokens): 6 * 33 = 198 generated
    tokens; FLOPs = prefill 2 prompts x 32 tokens over 32 keys + 6 rows x 33 decode steps over all
    32 + 33 = 65 cache slots = 64 * (7008 + 2048) + 198 * (7008 + 4160) = 579584 + 2211264 = 2790848."""
    import jax

    from theoryrl.models import transformer as tfm

    params = tfm.init_params(dr.model(TINY), jax.random.key(0))
    row = dag.finish(dag.bench_sampler(TINY, params, 3, 2, 3, reps=2, phase="sample-opmax"), PEAK_GFLOPS)
    assert (row["prompt_len"], row["new_tokens"], row["batch"]) == (32, 33, 6)
    assert row["items_per_call"] == 198 and row["unit"] == "tokens"
    assert row["flops_per_call"] == 64 * FORWARD(32) + 198 * FORWARD(65) == 2790848
    assert len(row["times"]) == 2
    _check_derived(row)


def test_generator_ntp_and_their_share():
    """gen-pretrain: one pre-training batch of base.batch = 4 problems at the ID shapes; gen-large: 5
    problems at the op_max shapes. ntp: 4 sequences of 23 + 23 = 46 tokens = 184 tokens, FLOPs 3
    forwards over 46 keys = 3 * 184 * (7008 + 2944) = 5493504. share = gen-pretrain seconds / ntp
    seconds, judged against 5%."""
    import jax

    from theoryrl.models import transformer as tfm

    params = tfm.init_params(dr.model(TINY), jax.random.key(0))
    gen_rows = [dag.finish(r, PEAK_GFLOPS) for r in dag.bench_generator(TINY, large_batch=5, reps=2)]
    assert [(r["phase"], r["shape_op"], r["items_per_call"]) for r in gen_rows] == [
        ("gen-pretrain", 2, 4), ("gen-large", 3, 5)]
    ntp_row = dag.finish(dag.bench_ntp(TINY, params, reps=2), PEAK_GFLOPS)
    assert (ntp_row["batch"], ntp_row["seq"], ntp_row["items_per_call"]) == (4, 46, 184)
    assert ntp_row["flops_per_call"] == 3 * 184 * FORWARD(46) == 5493504
    for row in gen_rows + [ntp_row]:
        _check_derived(row)
    assert gen_rows[0]["flops_per_call"] == 0.0 and gen_rows[0]["mfu"] == 0.0
    share = dag.share_row("share-ntp", gen_rows[:1], ntp_row)
    assert share["share"] == pytest.approx(gen_rows[0]["s_per_call"] / ntp_row["s_per_call"], rel=1e-12)
    assert share["meets_target"] == (gen_rows[0]["s_per_call"] <= 0.05 * ntp_row["s_per_call"])


def _timing(phase, seconds):
    return {"phase": phase, "shape_op": 10, "s_per_call": seconds}


def test_share_verdict_holds_fails():
    """(0.01 + 0.02) / 1.0 = 3% <= 5%: holds; (0.01 + 0.05) / 1.0 = 6%: missed; exactly 0.05 / 1.0 holds."""
    step = _timing("rl-step", 1.0)
    ok = dag.share_row("share-rl", [_timing("rl-prompts", 0.01), _timing("rl-score", 0.02)], step)
    assert ok["share"] == pytest.approx(0.03) and ok["meets_target"] is True
    assert ok["parts"] == ["rl-prompts", "rl-score"] and ok["part_s"] == pytest.approx(0.03)
    bad = dag.share_row("share-rl", [_timing("rl-prompts", 0.01), _timing("rl-score", 0.05)], step)
    assert bad["share"] == pytest.approx(0.06) and bad["meets_target"] is False
    assert dag.share_row("share-rl", [_timing("rl-prompts", 0.05)], step)["meets_target"] is True
    assert "3.00%" in dag._fmt(ok) and "holds" in dag._fmt(ok) and "MISSED" in dag._fmt(bad)


def test_sampler_verdict_holds_fails_and_is_not_judged_off_the_quick_tier_base():
    """The 35% target is the quick-tier base's: 0.42 / 0.35 = 1.2 holds, 0.07 / 0.35 = 0.2 is missed;
    on the tiny base the same 0.42 is not judged."""
    held = dag.sampler_verdict(0.42, dr.BaseSpec())
    assert held["meets_target"] is True and held["mfu_over_target"] == pytest.approx(1.2)
    missed = dag.sampler_verdict(0.07, dr.BaseSpec())
    assert missed["meets_target"] is False and missed["mfu_over_target"] == pytest.approx(0.2)
    assert dag.sampler_verdict(0.42, TINY)["meets_target"] is None
    assert dag.verdict_text(None) == "not judged"


def test_default_sizes_are_the_eval_table_chunk_and_bad_arguments_are_one_line_errors():
    """eval_table samples one op per call: eval_problems x eval_samples = 16 x 64 = 1024 rows at the
    quick tier (below its max_rows of 2048), so the sampler rows default to 16 problems x 64."""
    args, base = dag.parse_args([])
    assert base == dr.BaseSpec()
    assert (args.eval_problems, args.eval_samples) == (16, 64) == (base.eval_problems, base.eval_samples)
    assert (args.gen_batch, args.verify_batch, args.reps, args.edge_op, args.table_ops) == (4096, 4096, 2, 7, [3, 8])
    assert dag.parse_args(["--quick"])[0].reps == 1
    for bad in (["--reps", "0"], ["--edge-op", "11"], ["--table-ops", "1"], ["--eval-samples", "4096"],
                ["--passk-op", "1"], ["--passk-op", "11"], ["--passk-samples", "4097"], ["--passk-problems", "0"]):
        with pytest.raises(ConfigError):
            dag.parse_args(bad)
    with pytest.raises(SystemExit):  # argparse: not a phase
        dag.parse_args(["--only", "nosuch"])


def test_eval_passk_defaults_are_the_rlvr_evaluation_call():
    """rlvr_runs.eval_arrays: n = eval_samples = 64 at T = 0.6, top-p 0.95, max_rows 4096; the row's 64
    problems x 64 samples fill exactly one call. --quick: 4 x 8."""
    args, _ = dag.parse_args([])
    assert (args.passk_op, args.passk_problems, args.passk_samples, args.only) == (6, 64, 64, None)
    assert args.passk_problems * args.passk_samples == dag.PASSK_MAX_ROWS == 4096
    assert (dag.PASSK_SAMPLES, dag.PASSK_TEMPERATURE, dag.PASSK_TOP_P) == (64, 0.6, 0.95)
    quick = dag.parse_args(["--quick"])[0]
    assert (quick.passk_problems, quick.passk_samples) == (4, 8)
    assert dag.parse_args(["--only", "eval-passk", "ntp"])[0].only == ["eval-passk", "ntp"]


def test_eval_passk_constants_and_problems_are_the_rlvr_knobs_and_sets():
    """The bench does not import rlvr_runs; its constants and problem draw must stay those of rlvr_runs."""
    rlvr = pytest.importorskip("theoryrl.rl.rlvr_runs")
    knobs = rlvr.RLVRKnobs()
    assert (knobs.eval_samples, knobs.eval_temperatures[0], knobs.eval_top_p) == (
        dag.PASSK_SAMPLES, dag.PASSK_TEMPERATURE, dag.PASSK_TOP_P)
    import jax
    import numpy as np

    from theoryrl.tasks.dag import generate as gen

    ours = gen.sample(jax.random.key(dr.EVAL_SEED), TINY.task(3), dr.band_params(TINY, [(3, 3)], 3), 5)
    theirs = rlvr.set_problems(TINY, (3, 3), 5, dr.EVAL_SEED)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_array_equal(a, b)


def test_eval_passk_row_counts_chunks_tokens_and_flops():
    """3 problems of op 3 at its shapes (prompt 32, 33 new tokens) x S = 2 with max_rows 4: 2 problems
    per call, so 2 calls (the second padded with a copy of the last problem, computed in full) of 4 rows.
    Slot tokens 3 * 2 * 33 = 198. FLOPs per call: prefill 2 x 32 tokens over 32 keys, 4 rows x 33
    decode steps over 65 slots, and (with_entropy) the entropy forward of 4 rows x 65 tokens over 65 keys:
    64 * 9056 + 132 * 11168 + 260 * 11168 = 579584 + 1474176 + 2903680 = 4957440; two calls 9914880."""
    import jax

    from theoryrl.models import transformer as tfm

    params = tfm.init_params(dr.model(TINY), jax.random.key(0))
    row = dag.finish(dag.bench_eval_passk(TINY, params, 3, 3, 2, reps=2, max_rows=4, with_entropy=True), PEAK_GFLOPS)
    # the default is rlvr_runs' (no entropy pass unless with_entropy): its FLOPs drop the last term
    assert inspect.signature(dag.bench_eval_passk).parameters["with_entropy"].default is rr.RLVRKnobs().with_entropy
    assert (row["phase"], row["op"], row["prompt_len"], row["new_tokens"]) == ("eval-passk", 3, 32, 33)
    assert (row["batch"], row["prompts"], row["chunks"], row["problems"]) == (4, 2, 2, 3)
    assert (row["temperature"], row["top_p"], row["max_rows"], row["with_entropy"]) == (0.6, 0.95, 4, True)
    assert row["items_per_call"] == 198 and row["unit"] == "tokens"
    assert 6 <= row["generated_tokens"] <= 198  # every sample has at least one valid token
    assert row["generated_per_s"] == pytest.approx(row["generated_tokens"] / row["s_per_call"], rel=1e-12)
    assert row["flops_per_call"] == 2 * (64 * FORWARD(32) + 132 * FORWARD(65) + 260 * FORWARD(65)) == 9914880
    assert len(row["times"]) == 2 and row["first_call_s"] >= row["s_per_call"]
    _check_derived(row)
    assert "generated" in dag._fmt(row)


def test_only_runs_and_emits_just_the_named_phases():
    """--quick --only at the tiny base: the rows come back in run order, each emitted once; a share
    row's parts (gen-pretrain, ntp) are measured for it but not kept."""
    args, _ = dag.parse_args(["--quick", "--only", "eval-passk", "share-ntp", "sample-id"])
    args.passk_op = 3  # the tiny base's op_max
    emitted = []
    rows = dag.run(TINY, args, PEAK_GFLOPS, emit=emitted.append)
    assert [r["phase"] for r in rows] == ["sample-id", "share-ntp", "eval-passk"] and emitted == rows
    passk = rows[-1]
    assert (passk["problems"], passk["group"], passk["chunks"]) == (4, 8, 1)
    assert passk["items_per_call"] == 4 * 8 * 33 and passk["mfu"] > 0
    assert all(r["peak_gflops"] == PEAK_GFLOPS and "backend" in r for r in rows)
