"""`bench chain`'s reference step and bounds, against the fast step and hand counts.

The reference (`benchmarks/reference_chain.py`, a plain position-buffer decode and autodiff) must
compute the fast step (`rl.chain_trainer.train_step`: count form, custom VJP with a hand-written
backward) so that the benchmark's ratio is between two implementations of one step.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.benchmarks import chain as bench
from theoryrl.benchmarks import reference_chain as ref
from theoryrl.rl import chain as rl_chain
from theoryrl.rl import chain_trainer as trainer
from theoryrl.tasks.chain import derive, sample, uniform_over

VARIANTS = {
    "softmax": {"attention": "softmax"},
    "linear": {"attention": "linear"},
    "softmax-fixed_v": {"attention": "softmax", "fixed_v": True},
    "softmax-mask_vertex_keys": {"attention": "softmax", "mask_vertex_keys": True},
}


def _setup(variant: str, m: int, batch: int, chunk: int, dtype):
    """Spec, hp, random parameters (std 0.1: a policy far from uniform) and one sampled batch."""
    model = VARIANTS[variant]
    spec = bench.make_spec(m, model["attention"], batch)
    spec = dataclasses.replace(spec, model=dataclasses.replace(spec.model, **model),
                               layout=rl_chain.BatchLayout(chunk=chunk))
    hp = trainer.make_hparams(0, 1e-2, uniform_over(range(1, m), m), {})
    k_a, k_v, k_data, k_policy = jax.random.split(jax.random.key(3), 4)
    n = spec.model.n
    params = {"A": 0.1 * jax.random.normal(k_a, (n, n * n), dtype)}
    if not spec.model.fixed_v:
        params["V"] = 0.1 * jax.random.normal(k_v, (n * n, n), dtype)
    return spec, hp, params, sample(k_data, spec.task, hp.dist_probs, batch), k_policy


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_reference_step_equals_fast_step_in_float64(variant):
    """Same rollouts, loss and gradient, and the same Adam step, to float64 rounding (1e-12 relative).
    The fast step runs unchunked here (its chunk loop carries float32); chunking is the next test."""
    with jax.enable_x64(True):
        spec, hp, params, batch, key = _setup(variant, 4, 64, 10_000, jnp.float64)
        inst = derive(spec.task, batch)
        fast = rl_chain.rollout(params, spec.model, inst, spec.horizon, key, spec.layout)
        plain = ref.rollout(params, spec.model, inst, spec.horizon, key)
        for name in ("actions", "emitted", "correct", "length", "reached"):
            np.testing.assert_array_equal(fast[name], plain[name], err_msg=name)
        num_correct = int(jnp.sum(fast["correct"]))
        assert 0 < num_correct < 64  # both rewards occur: the advantages are not all zero
        adv = fast["correct"] - jnp.mean(fast["correct"].astype(jnp.float64))
        args = (spec.model, inst, fast["actions"], fast["emitted"], adv)
        loss_fast, grads_fast = jax.value_and_grad(rl_chain.reinforce_loss)(params, *args, spec.layout)
        loss_ref, grads_ref = jax.value_and_grad(ref.reinforce_loss)(params, *args)
        assert grads_fast["A"].dtype == jnp.float64
        np.testing.assert_allclose(loss_fast, loss_ref, rtol=1e-12)
        for name in params:
            scale = float(jnp.max(jnp.abs(grads_ref[name])))
            assert scale > 1e-3
            np.testing.assert_allclose(grads_fast[name], grads_ref[name], rtol=0, atol=1e-12 * scale, err_msg=name)
        state = trainer.start_state(params, hp.lr)
        (s_fast, m_fast), (s_ref, m_ref) = (step(spec, state, hp, batch, key)
                                            for step in (trainer.train_step, ref.train_step))
        for a, b in zip(jax.tree.leaves((s_fast, m_fast)), jax.tree.leaves((s_ref, m_ref)), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("attention", ["softmax", "linear"])
def test_reference_gradient_equals_chunked_fast_gradient_in_float32(attention):
    """float32, the fast loss in 3 chunks, both differentiating the fast rollout's tokens. Each entry is
    a sum of at most B * H * (E + n) = 96 * 5 * 14 terms, each rounded to ~6e-8 relative: 1e-4 of the
    largest entry bounds the difference of two summation orders."""
    spec, hp, params, batch, key = _setup(attention, 4, 96, 32, jnp.float32)
    assert rl_chain._chunking(96, spec.layout.chunk)[0] == 3
    inst = derive(spec.task, batch)
    out = rl_chain.rollout(params, spec.model, inst, spec.horizon, key, spec.layout)
    adv = out["correct"] - jnp.mean(out["correct"].astype(jnp.float32))
    args = (spec.model, inst, out["actions"], out["emitted"], adv)
    loss_fast, grads_fast = jax.value_and_grad(rl_chain.reinforce_loss)(params, *args, spec.layout)
    loss_ref, grads_ref = jax.value_and_grad(ref.reinforce_loss)(params, *args)
    np.testing.assert_allclose(loss_fast, loss_ref, rtol=1e-5)
    for name in params:
        scale = float(jnp.max(jnp.abs(grads_ref[name])))
        np.testing.assert_allclose(grads_fast[name], grads_ref[name], rtol=0, atol=1e-4 * scale, err_msg=name)


def test_hand_cost_equals_a_count_by_hand():
    """m = 2: n = 4 vertices, E = 2 edges, K = E + 1 = 3 context rows, H = 3 steps, batch 5.
    Per instance-step, softmax, trained V. Forward: softmax over K scores (K exps + K adds = 6), the
    mix [1, K] @ [K, n] (2*3*4 = 24), divide by Z tmp (4), sampling exps + CDF adds (8): 42. Backward:
    d logits (8) and its scaling (4), d weights [1, n] @ [n, K] (24), softmax backward (4K = 12), A
    accumulate (3), V accumulate [K, 1] x [1, n] (24): 75. 117 x 15 instance-steps = 1755, plus Adam
    12 FLOPs x 128 parameters (A 4 x 16, V 16 x 4) = 1536: 3291 FLOPs; bytes 24 x 128 = 3072.
    Linear with fixed V: forward 24 + 4 + 8 = 36, backward 8 + 4 + 24 + 3 = 39, 75 x 15 = 1125, plus
    12 x 64 (A only) = 768: 1893 FLOPs; bytes 24 x 64 = 1536."""
    spec = bench.make_spec(2, "softmax", 5)
    assert (spec.model.n, spec.task.num_edges, spec.horizon) == (4, 2, 3)
    cost = bench.hand_cost(spec)
    assert (cost["flops"], cost["bytes"]) == (3291, 3072)
    spec = bench.make_spec(2, "linear", 5)
    spec = dataclasses.replace(spec, model=dataclasses.replace(spec.model, fixed_v=True))
    cost = bench.hand_cost(spec)
    assert (cost["flops"], cost["bytes"]) == (1893, 1536)


@pytest.mark.parametrize("attention", ["softmax", "linear"])
def test_hand_bound_is_below_xla_count_of_the_fast_step(attention):
    """A lower bound: the fast step, as XLA counts it (every loop unrolled), does at least this work."""
    spec = bench.make_spec(4, attention, 64)
    hp = trainer.make_hparams(0, 1e-2, uniform_over(range(1, 4), 4), {})
    xla, hand = bench.step_cost(spec, trainer.init_state(spec, hp), hp), bench.hand_cost(spec)
    assert hand["flops"] < xla["flops"] and hand["bytes"] < xla["bytes"]


def test_fast_and_reference_calls_alternate_on_the_same_data():
    calls = []

    def program(name):
        def call(state, hp, t0):
            calls.append((name, int(t0)))
            return state + 1, (None, jnp.full((2,), 3.0))
        return call

    timed = bench.time_interleaved({"fast": program("fast"), "ref": program("ref")}, {"fast": 0, "ref": 0},
                                   None, num_steps=2, reps=3)
    assert calls == [(name, 2 * r) for r in range(4) for name in ("fast", "ref")]
    assert {name: len(times) for name, (times, _, _) in timed.items()} == {"fast": 3, "ref": 3}  # warm-up dropped
    assert timed["fast"][2] == [3.0, 3.0, 3.0]


def test_json_rows_carry_the_same_run_ratio_and_both_bounds(monkeypatch, capsys):
    """`bench chain --json` at a tiny size, with fixed peaks (100 GFLOP/s, 10 GB/s) so each bound can be
    recomputed here from the row's own counts; the official figure is quoted, never divided."""
    import json

    monkeypatch.setattr(bench.hardware, "measure", lambda quick=False: {
        "matmul_gflops": 100.0, "bandwidth_gbs": 10.0, "device": "test"})
    assert bench.main(["--json", "--m", "3", "--attention", "softmax", "--batch", "64", "--steps", "1",
                       "--reps", "2", "--no-split"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    for key in ("step_s", "ref_step_s", "speedup_vs_ref", "speedup_vs_ref_min", "speedup_vs_ref_max",
                "xla_bound_s", "hand_bound_s", "step_over_xla_bound", "step_over_hand_bound"):
        assert row[key] > 0, key
    assert row["speedup_vs_ref_min"] <= row["speedup_vs_ref"] <= row["speedup_vs_ref_max"]
    assert len(row["speedup_vs_ref_each"]) == 2
    hand = bench.hand_cost(bench.make_spec(3, "softmax", 64))
    assert row["hand_bound_s"] == max(hand["flops"] / 100e9, hand["bytes"] / 10e9)
    assert row["xla_bound_s"] == max(row["xla_flops"] / 100e9, row["xla_bytes"] / 10e9)
    assert not any(key.startswith("speedup_vs_official") for key in row)
