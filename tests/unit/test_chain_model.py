"""Math checks of the chain-traversal attention model and its REINFORCE objective.

Every expected value is computed independently: numpy loops over the token sequence for the
logits, exact enumeration of every rollout of a tiny instance for the policy gradient.
"""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.models.chain_attention import (ModelSpec, count_logits, edge_tables, incidence_values, next_logits,
                                             teacher_forced_logits)
from theoryrl.rl import chain as rl_chain
from theoryrl.tasks.chain import ChainBatch, ChainSpec, derive

N = 6  # m = 3


def _edge_id(u, w, n):
    return n + u * (n - 1) + w - (1 if w > u else 0)


def _random_params(key, n, std=0.5):
    k_a, k_v = jax.random.split(key)
    return {"A": std * jax.random.normal(k_a, (n, n * n)), "V": std * jax.random.normal(k_v, (n * n, n))}


def _instance(perm, source_pos, m):
    """A derived single-example instance (leading batch axis of 1) from a hand-chosen labelling."""
    task = ChainSpec(m, len(perm))
    batch = ChainBatch(perm=jnp.asarray([perm], jnp.int32), source_pos=jnp.asarray([source_pos], jnp.int32))
    return derive(task, batch)


def _one(inst):
    return jax.tree.map(lambda x: x[0], inst)


PERM = [4, 1, 5, 0, 3, 2]  # chains 4 -> 1 -> 5 and 0 -> 3 -> 2
TOKENS = [_edge_id(4, 1, N), _edge_id(1, 5, N), _edge_id(0, 3, N), _edge_id(3, 2, N), 4, 1, 4, 0]  # edges, source, generated


def _buffer(tokens, pad=3):
    ctx = jnp.asarray(tokens + [7] * pad, jnp.int32)  # garbage after the valid prefix
    valid = jnp.arange(ctx.shape[0]) < len(tokens)
    return ctx, valid


@pytest.mark.parametrize("tmp", [1.0, 0.2])
def test_linear_logits_equal_official_count_form(tmp):
    params = _random_params(jax.random.key(0), N)
    a, v = np.asarray(params["A"], np.float64), np.asarray(params["V"], np.float64)
    spec = ModelSpec(n=N, attention="linear", tmp=tmp)
    query = TOKENS[-1]
    count = np.zeros(N * N)
    for tok in TOKENS:
        count[tok] += 1
    expected = np.array([sum(count[c] * a[query, c] * v[c, w] for c in range(N * N)) for w in range(N)]) / tmp
    ctx, valid = _buffer(TOKENS)
    np.testing.assert_allclose(next_logits(params, spec, jnp.int32(query), ctx, valid), expected, rtol=1e-5, atol=1e-5)
    # the count form used by rollouts and the loss
    keys, vals = edge_tables(params, spec, jnp.asarray(TOKENS[:4]))
    counts = jnp.asarray(count[:N], jnp.float32)
    got = count_logits(params, spec, keys, vals, jax.nn.one_hot(query, N)[None], counts[None])[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mask_vertex_keys", [False, True])
def test_softmax_logits_equal_numpy(mask_vertex_keys):
    params = _random_params(jax.random.key(1), N, std=1.0)
    a, v = np.asarray(params["A"], np.float64), np.asarray(params["V"], np.float64)
    spec = ModelSpec(n=N, attention="softmax", tmp=0.5, mask_vertex_keys=mask_vertex_keys)
    query = TOKENS[-1]
    keys = [t for t in TOKENS if not (mask_vertex_keys and t < N)]
    scores = np.array([a[query, t] for t in keys])
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    expected = sum(w * v[t] for w, t in zip(weights, keys)) / 0.5
    ctx, valid = _buffer(TOKENS)
    np.testing.assert_allclose(next_logits(params, spec, jnp.int32(query), ctx, valid), expected, rtol=1e-5, atol=1e-5)
    edge_keys, edge_vals = edge_tables(params, spec, jnp.asarray(TOKENS[:4]))
    counts = np.bincount([t for t in TOKENS if t < N], minlength=N).astype(np.float32)
    got = count_logits(params, spec, edge_keys, edge_vals, jax.nn.one_hot(query, N)[None], jnp.asarray(counts)[None])[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", ["linear", "softmax"])
def test_teacher_forced_equals_step_by_step(attention):
    params = _random_params(jax.random.key(2), N)
    spec = ModelSpec(n=N, attention=attention, tmp=0.7)
    num_prompt, horizon = 5, 4
    ctx = jnp.asarray(TOKENS[:num_prompt] + [1, 5, 0, 3], jnp.int32)
    forced = teacher_forced_logits(params, spec, ctx, num_prompt, horizon)
    for t in range(horizon):
        valid = jnp.arange(ctx.shape[0]) < num_prompt + t
        step = next_logits(params, spec, ctx[num_prompt - 1 + t], ctx, valid)
        np.testing.assert_allclose(forced[t], step, rtol=1e-5, atol=1e-5)


def test_incidence_values_rows():
    n = 5
    values = incidence_values(n)
    assert values.shape == (n * n, n)
    np.testing.assert_array_equal(values[:n], 0.0)
    for u, w in itertools.permutations(range(n), 2):
        row = values[_edge_id(u, w, n)]
        expected = np.zeros(n)
        expected[[u, w]] = 1.0
        np.testing.assert_array_equal(row, expected)


# ---- rollouts: semantics ----------------------------------------------------------------------

def _expected_outcome(actions, inst_np, horizon):
    """Reference verifier in plain Python for one rollout."""
    sinks = set(np.flatnonzero(inst_np["is_sink"]).tolist())
    emitted, first_sink = [], None
    for a in actions[:horizon]:
        emitted.append(first_sink is None)
        if first_sink is None and a in sinks:
            first_sink = a
    path, cur = [], inst_np["source"]
    while inst_np["succ"][cur] >= 0:
        cur = int(inst_np["succ"][cur])
        path.append(cur)
    generated = [a for a, e in zip(actions, emitted) if e]
    return {"emitted": emitted, "reached": first_sink is not None,
            "correct": first_sink is not None and first_sink == inst_np["target"],
            "traversal": first_sink is not None and generated == path, "length": len(generated)}


def test_rollout_outcomes_match_reference_verifier():
    m, batch = 4, 200
    task = ChainSpec(m, 2 * m)
    key_perm, key_pos, key_params, key_policy = jax.random.split(jax.random.key(3), 4)
    perm = jnp.argsort(jax.random.uniform(key_perm, (batch, task.n)), axis=1).astype(jnp.int32)
    pos = jax.random.randint(key_pos, (batch,), 0, m - 1)
    inst = derive(task, ChainBatch(perm=perm, source_pos=pos))
    params = _random_params(key_params, task.n)
    spec = ModelSpec(n=task.n, attention="softmax", tmp=1.0)
    out = jax.device_get(rl_chain.rollout(params, spec, inst, m + 1, key_policy))
    inst_np = jax.device_get(inst)
    num_correct = 0
    for b in range(batch):
        one = {k: getattr(inst_np, k)[b] for k in ("is_sink", "succ", "source", "target")}
        ref = _expected_outcome(out["actions"][b].tolist(), one, m + 1)
        assert out["emitted"][b].tolist() == ref["emitted"]
        for name in ("reached", "correct", "traversal", "length"):
            assert out[name][b] == ref[name], (b, name)
        num_correct += ref["correct"]
    assert 0 < num_correct < batch  # both outcomes occur: the check is informative



def test_batch_layout_changes_speed_not_math():
    """Chunks of ~64 instances (chunk j holds b = j mod k) vs one chunk with the decode loop unrolled:
    the same rollouts and, up to float summation order, the same REINFORCE gradient."""
    m, batch = 4, 200
    task = ChainSpec(m, 2 * m)
    key_perm, key_pos, key_params, key_policy = jax.random.split(jax.random.key(7), 4)
    perm = jnp.argsort(jax.random.uniform(key_perm, (batch, task.n)), axis=1).astype(jnp.int32)
    inst = derive(task, ChainBatch(perm=perm, source_pos=jax.random.randint(key_pos, (batch,), 0, m - 1)))
    params = _random_params(key_params, task.n)
    spec = ModelSpec(n=task.n, attention="softmax", tmp=1.0)
    results = []
    for layout in (rl_chain.BatchLayout(chunk=64), rl_chain.COST_ANALYSIS):
        assert rl_chain._chunking(batch, layout.chunk)[0] == (4 if layout.chunk == 64 else 1)
        out = rl_chain.rollout(params, spec, inst, m + 1, key_policy, layout)
        adv = out["correct"].astype(jnp.float32) - jnp.mean(out["correct"].astype(jnp.float32))
        grads = jax.grad(rl_chain.reinforce_loss)(params, spec, inst, out["actions"], out["emitted"], adv, layout)
        results.append((jax.device_get(out), jax.device_get(grads)))
    (out_a, grads_a), (out_b, grads_b) = results
    for name in out_a:
        np.testing.assert_array_equal(out_a[name], out_b[name])
    for name in grads_a:
        np.testing.assert_allclose(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-6)

def test_greedy_head_pointer_traverses_exactly():
    """A puts weight 10 on the query's out-edges, V sends an edge's vote to its head only, so the
    greedy policy follows successors: length = distance, correct and traversal for every source."""
    m = 4
    n = 2 * m
    a = np.zeros((n, n * n), np.float32)
    v = np.zeros((n * n, n), np.float32)
    for u, w in itertools.permutations(range(n), 2):
        a[u, _edge_id(u, w, n)] = 10.0
        v[_edge_id(u, w, n), w] = 1.0
    params = {"A": jnp.asarray(a), "V": jnp.asarray(v)}
    perm = [[3, 6, 0, 7, 5, 1, 4, 2]] * (m - 1)
    inst = derive(ChainSpec(m, n), ChainBatch(perm=jnp.asarray(perm, jnp.int32),
                                              source_pos=jnp.arange(m - 1, dtype=jnp.int32)))
    for attention in ("linear", "softmax"):
        out = rl_chain.rollout(params, ModelSpec(n=n, attention=attention, tmp=1.0), inst, m + 1)
        np.testing.assert_array_equal(out["length"], inst.distance)
        assert bool(jnp.all(out["correct"])) and bool(jnp.all(out["traversal"]))
        np.testing.assert_array_equal(out["actions"][0, :3], [6, 0, 7])  # from 3: 6, 0, then the terminal 7
        np.testing.assert_array_equal(out["emitted"][0], [True, True, True, False, False])


# ---- exact policy gradient ------------------------------------------------------------------

M_TINY, HORIZON = 3, 3
PERM_TINY, SOURCE_POS = [2, 0, 5, 3, 1, 4], 0  # source 2 at distance 2, target 5


def _enumerate(inst_one, spec, params_ref):
    """Every emitted prefix (stopping at the first sink) with its probability under the reference
    `next_logits` path, and its reward. Returns (actions [S, H], emitted [S, H], rewards, probs)."""
    sinks = set(np.flatnonzero(np.asarray(inst_one.is_sink)).tolist())
    prompt = [int(t) for t in np.asarray(inst_one.edge_tokens)] + [int(inst_one.source)]
    seqs = []

    def grow(prefix):
        if len(prefix) == HORIZON or (prefix and prefix[-1] in sinks):
            seqs.append(prefix)
            return
        for a in range(N):
            grow(prefix + [a])

    grow([])
    actions = np.array([s + [0] * (HORIZON - len(s)) for s in seqs], np.int32)
    emitted = np.array([[t < len(s) for t in range(HORIZON)] for s in seqs])
    rewards = np.array([float(any(a in sinks for a in s) and next(a for a in s if a in sinks) == int(inst_one.target))
                        for s in seqs], np.float32)

    def probs(params):
        ctx = jnp.asarray([prompt + list(a) for a in actions], jnp.int32)
        num_prompt = len(prompt)
        logp = jnp.zeros(len(seqs))
        for t in range(HORIZON):
            valid = jnp.arange(ctx.shape[1]) < num_prompt + t
            logits = jax.vmap(lambda c: next_logits(params, spec, c[num_prompt - 1 + t], c, valid))(ctx)
            step = jnp.take_along_axis(jax.nn.log_softmax(logits), ctx[:, num_prompt + t][:, None], axis=1)[:, 0]
            logp = logp + jnp.where(emitted[:, t], step, 0.0)
        return jnp.exp(logp)

    return actions, emitted, rewards, jax.jit(probs)


@pytest.fixture(scope="module", params=["softmax", "linear"])
def tiny(request):
    spec = ModelSpec(n=N, attention=request.param, tmp=1.0)
    params = _random_params(jax.random.key(4), N)
    inst = _instance(PERM_TINY, SOURCE_POS, M_TINY)
    actions, emitted, rewards, probs_fn = _enumerate(_one(inst), spec, params)
    return spec, params, inst, actions, emitted, rewards, probs_fn


def _exact(tiny):
    """grad J (through the reference path) and grad log p of every sequence (through the fast path)."""
    spec, params, inst, actions, emitted, rewards, probs_fn = tiny
    grad_j = jax.jit(jax.grad(lambda p: jnp.sum(probs_fn(p) * rewards)))(params)
    inst_s = jax.tree.map(lambda x: jnp.repeat(x, len(actions), axis=0), inst)
    score = jax.jit(jax.vmap(jax.grad(rl_chain.sequence_logp_one), in_axes=(None, None, 0, 0, 0)), static_argnums=1)
    logp_grads = score(params, spec, inst_s, jnp.asarray(actions), jnp.asarray(emitted))
    return grad_j, inst_s, logp_grads


def test_enumeration_is_a_distribution(tiny):
    spec, params, inst, actions, emitted, rewards, probs_fn = tiny
    p = np.asarray(probs_fn(params), np.float64)
    assert abs(p.sum() - 1.0) < 1e-5
    assert 0.05 < float(p @ rewards) < 0.95  # a non-degenerate policy: the check is informative


def test_exact_reinforce_gradient_equals_grad_of_expected_reward(tiny):
    spec, params, inst, actions, emitted, rewards, probs_fn = tiny
    grad_j, inst_s, logp_grads = _exact(tiny)
    p = probs_fn(params)
    for name in params:
        expected_score = jnp.tensordot(p * rewards, logp_grads[name], axes=1)
        scale = float(jnp.max(jnp.abs(grad_j[name])))
        assert scale > 1e-3
        np.testing.assert_allclose(expected_score, grad_j[name], atol=1e-5 * max(scale, 1.0), rtol=1e-4)
        # the score has mean zero, so a baseline adds no bias
        np.testing.assert_allclose(jnp.tensordot(p, logp_grads[name], axes=1), 0.0, atol=1e-5)
    # the loss's hand-written gradient (chunked path) weights the same scores: with advantages
    # p * r (one row per sequence) it is -(1/S) sum_s p_s r_s grad log p_s
    loss_grad = jax.grad(rl_chain.reinforce_loss)(params, spec, inst_s, jnp.asarray(actions), jnp.asarray(emitted),
                                                   p * rewards)
    for name in params:
        np.testing.assert_allclose(-len(actions) * loss_grad[name], grad_j[name], atol=1e-5, rtol=1e-4)


def test_monte_carlo_reinforce_matches_exact_gradient(tiny):
    spec, params, inst, actions, emitted, rewards, probs_fn = tiny
    batch = 20_000  # > BatchLayout().chunk: exercises the chunked rollout and loss
    grad_j, inst_s, logp_grads = _exact(tiny)
    inst_b = jax.tree.map(lambda x: jnp.repeat(x, batch, axis=0), inst)
    out = rl_chain.rollout(params, spec, inst_b, HORIZON, jax.random.key(5))
    reward_b = out["correct"].astype(jnp.float32)
    adv = reward_b - jnp.mean(reward_b)
    mc = jax.grad(rl_chain.reinforce_loss)(params, spec, inst_b, out["actions"], out["emitted"], adv)
    # exact per-coordinate std of the single-sample estimator grad log p * (r - J)
    p = np.asarray(probs_fn(params), np.float64)
    j = float(p @ rewards)
    assert abs(float(jnp.mean(reward_b)) - j) < 5 * np.sqrt(j * (1 - j) / batch)
    for name in params:
        g = np.asarray(logp_grads[name], np.float64) * (rewards - j)[:, None, None]
        std = np.sqrt(np.maximum(np.tensordot(p, g**2, axes=1) - np.asarray(grad_j[name], np.float64) ** 2, 0.0))
        err = np.abs(-np.asarray(mc[name], np.float64) - np.asarray(grad_j[name], np.float64))
        # 5 sigma per coordinate, plus slack for the O(1/B) bias of the batch-mean baseline
        assert np.all(err <= 5 * std / np.sqrt(batch) + 1e-4), float(np.max(err / (std / np.sqrt(batch) + 1e-9)))
        cos = np.sum(-np.asarray(mc[name]) * np.asarray(grad_j[name])) / (
            np.linalg.norm(mc[name]) * np.linalg.norm(grad_j[name]))
        assert cos > 0.9
