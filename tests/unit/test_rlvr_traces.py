"""`rl/rlvr_traces.py`: responses scored under a model, gold traces in both orders, the SFT knobs.

- `trace_nll` scores left-padded prompts + responses in chunks (one jitted call per chunk). The
  reference scores each sequence alone: its real prompt tokens followed by the response up to and
  including the first EOS (found by a Python loop over the tokens), no padding at all, through a
  plain `transformer.forward` with default positions 0..S-1, then a float64 numpy log-softmax of the
  logits. The model has RoPE on and a token shift, and its parameters are randomised at scale 0.3,
  so a wrong position, a padded key attended to or an off-by-one target changes the numbers.
- `gold_traces`: every gold trace, in either order, verifies perfect under `tasks/dag/verify.verify`
  (an independent parser of the tokens); the prompts are those of `rlvr_runs.set_problems`, the
  earliest-order trace is its gold solution, and the latest-order one differs on some problems.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.core.config import ConfigError, apply_overrides, validate
from theoryrl.experiments import rlvr_distillation as dis
from theoryrl.models import transformer as tfm
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import rlvr_runs as rr
from theoryrl.rl import rlvr_traces as rt
from theoryrl.tasks.dag import verify as ver
from theoryrl.tasks.vocab import EOS_ID, PAD_ID

SPEC = tfm.TransformerSpec(vocab_size=13, d_model=16, n_layers=2, n_heads=2, n_kv_heads=2, d_ff=32, max_len=24,
                           rope=True, token_shift=2)


def _params():
    params = tfm.init_params(SPEC, jax.random.key(0))
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    return jax.tree.unflatten(tree, [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def _reference(params, prompt, response):
    """(mean NLL, counted tokens) of one response, float64, from an unpadded full forward."""
    resp = []
    for t in response:
        resp.append(int(t))
        if t == EOS_ID:
            break
    seq = np.asarray(list(prompt) + resp, np.int32)
    logits = np.asarray(tfm.forward(SPEC, params, jnp.asarray(seq[None])).logits_BxTxV[0], np.float64)
    logp = logits - logits.max(axis=1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
    n = len(prompt)
    total = sum(logp[n + j - 1, resp[j]] for j in range(len(resp)))
    return -total / len(resp), len(resp)


def test_trace_nll_is_the_float64_mean_token_nll_of_an_unpadded_forward():
    params = _params()
    rng = np.random.default_rng(0)
    prompts = [[1, 5, 7], [1, 4, 9, 11, 6, 3], [1, 8]]  # lengths 3, 6, 2: left-padded to 6
    length, t = 6, 7
    padded = np.full((3, length), PAD_ID, np.int32)
    mask = np.zeros((3, length), bool)
    for i, p in enumerate(prompts):
        padded[i, length - len(p):], mask[i, length - len(p):] = p, True
    resp = rng.integers(3, SPEC.vocab_size, size=(3, 3, t)).astype(np.int32)
    resp[0, 0, 2], resp[0, 0, 3:] = EOS_ID, PAD_ID  # EOS third, then padding
    resp[1, 1, 0], resp[1, 1, 1:] = EOS_ID, PAD_ID  # EOS first: one counted token
    resp[2, 2, 4] = EOS_ID  # EOS then tokens that must not count; other rows have no EOS (all 7 count)
    out = rt.trace_nll(SPEC, params, padded, mask, resp, rows=4)  # 9 rows in chunks of 4: the last padded
    for i in range(3):
        for k in range(3):
            nll, count = _reference(params, prompts[i], resp[i, k])
            assert out["length_PxK"][i, k] == count
            assert out["nll_PxK"][i, k] == pytest.approx(nll, rel=1e-5, abs=1e-6)
            assert out["ppl_PxK"][i, k] == pytest.approx(np.exp(nll), rel=1e-5)
    assert out["length_PxK"][0, 0] == 3 and out["length_PxK"][1, 1] == 1 and out["length_PxK"][2, 2] == 5
    assert out["length_PxK"][0, 1] == t


def test_trace_nll_checks_shapes_before_compute():
    params = _params()
    prompts, mask = np.ones((2, 4), np.int32), np.ones((2, 4), bool)
    with pytest.raises(ValueError, match="responses"):
        rt.trace_nll(SPEC, params, prompts, mask, np.ones((3, 1, 5), np.int32))
    with pytest.raises(ValueError, match="max_len"):
        rt.trace_nll(SPEC, params, prompts, mask, np.ones((2, 1, 30), np.int32))
    with pytest.raises(ConfigError, match="'rows'"):
        rt.trace_nll(SPEC, params, prompts, mask, np.ones((2, 1, 5), np.int32), rows=0)


def test_response_mask_counts_through_the_first_eos():
    resp = jnp.asarray([[5, 6, EOS_ID, 7, EOS_ID], [EOS_ID, 5, 5, 5, 5], [5, 5, 5, 5, 5]])
    expected = [[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]]
    np.testing.assert_array_equal(np.asarray(rt.response_mask(resp)), np.asarray(expected, bool))


BASE = dr.BaseSpec()
BAND, NUM, KEY = (5, 6), 48, rr.SPLIT_KEYS["id"]


@pytest.mark.parametrize("order", ["earliest", "latest"])
def test_gold_traces_verify_perfect_on_the_fixed_problems(order):
    problems, resp = rt.gold_traces(BASE, BAND, NUM, KEY, order)
    fixed = rr.set_problems(BASE, BAND, NUM, KEY)
    spec = BASE.task(BAND[1])
    assert resp.shape == (NUM, 1, dr.sampler(spec).max_new_tokens)
    res = ver.verify(spec, fixed, jnp.asarray(resp[:, 0]))  # checked against the fixed set's own gold graph
    assert bool(np.all(np.asarray(res["perfect_B"]))) and bool(np.all(np.asarray(res["strict_B"])))
    for field in ("prompt_BxLp", "prompt_len_B", "answer_B", "op_B", "gold_value_BxN", "gold_parents_BxNx2"):
        np.testing.assert_array_equal(np.asarray(getattr(problems, field)), np.asarray(getattr(fixed, field)))


def test_latest_traces_are_the_same_steps_in_another_order():
    early, r_early = rt.gold_traces(BASE, BAND, NUM, KEY, "earliest")
    late, r_late = rt.gold_traces(BASE, BAND, NUM, KEY, "latest")
    np.testing.assert_array_equal(r_early[:, 0], np.asarray(rr.set_problems(BASE, BAND, NUM, KEY).solution_BxLs))
    np.testing.assert_array_equal(np.asarray(early.solution_len_B), np.asarray(late.solution_len_B))
    differ = np.any(r_early[:, 0] != r_late[:, 0], axis=1)
    assert differ.sum() >= NUM // 4  # ops 5-6 with distractors: usually several ready statements at once
    for b in range(NUM):  # same multiset of tokens: the same steps, reordered
        assert sorted(r_early[b, 0].tolist()) == sorted(r_late[b, 0].tolist())
    with pytest.raises(ConfigError, match="'order'"):
        rt.gold_traces(BASE, BAND, NUM, KEY, "reverse")


@pytest.mark.parametrize("assignment, knob", [
    ("steps=-1", "steps"), ("steps=1e12", "steps"), ("steps=30", "steps"), ("chunk=0", "chunk"),
    ("chunk=1e12", "chunk"), ("batch=0", "batch"), ("batch=1e12", "batch"), ("lr=nan", "lr"), ("lr=-1", "lr"),
    ("lr=inf", "lr"), ("warmup=-1", "warmup"), ("warmup=1e12", "warmup"), ("pool=-1", "pool"), ("pool=1e12", "pool"),
])
def test_sft_knobs_reject_bad_input_in_one_line(assignment, knob):
    with pytest.raises(ConfigError) as err:
        validate(apply_overrides(dis.TIERS["quick"], [f"sft.{assignment}"]))
    assert f"'sft.{knob}'" in str(err.value) and "\n" not in str(err.value)


def test_sft_batch_cannot_exceed_the_pool():
    with pytest.raises(ConfigError, match="'sft.batch'"):
        validate(apply_overrides(dis.TIERS["quick"], ["sft.batch=64", "rlvr.train_problems=32"]))
    with pytest.raises(ConfigError, match="'sft.batch'"):
        validate(apply_overrides(dis.TIERS["quick"], ["sft.batch=64", "sft.pool=32"]))
    validate(apply_overrides(dis.TIERS["quick"], ["sft.batch=64", "sft.pool=64", "rlvr.train_problems=32"]))
    validate(apply_overrides(dis.TIERS["quick"], ["sft.steps=0"]))  # SFT off is legal
    assert dataclasses.replace(rt.SFTKnobs(), steps=0).validate() is None


def _prompt_rows(problems) -> set:
    return {row.tobytes() for row in np.asarray(problems.prompt_BxLp)}


def test_sft_pools_hold_no_evaluation_problem():
    """pool = 0 is the RL train split itself (same prompts); pool > 0 draws from SFT_POOL_KEY, and
    neither shares a prompt with the ID test set (same band and shapes; the OOD set's lower op has
    other shapes, so its prompts cannot coincide), nor with each other."""
    sft = rt.SFTKnobs(pool=0)
    knobs = rr.RLVRKnobs(train_problems=NUM)
    split_pool, _ = rt.gold_traces(BASE, BAND, sft.pool_size(knobs), sft.pool_key(), "latest")
    assert _prompt_rows(split_pool) == _prompt_rows(rr.set_problems(BASE, BAND, NUM, rr.SPLIT_KEYS["train"]))
    big = rt.SFTKnobs(pool=96)
    other_pool, _ = rt.gold_traces(BASE, BAND, big.pool_size(knobs), big.pool_key(), "latest")
    assert big.pool_size(knobs) == 96 and len(_prompt_rows(other_pool)) == 96
    test_id = _prompt_rows(rr.set_problems(BASE, BAND, 96, rr.SPLIT_KEYS["id"]))
    for pool in (split_pool, other_pool):
        assert not _prompt_rows(pool) & test_id
    assert not _prompt_rows(other_pool) & _prompt_rows(split_pool)
