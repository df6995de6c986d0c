"""Exact chain objective and flow integrator: checked against hand-computed values, exhaustive
enumeration of rollouts, the foundation's model code and Monte-Carlo rollouts from its sampler."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.models.chain_attention import next_logits
from theoryrl.rl.chain import rollout, sequence_logp_one
from theoryrl.tasks.chain import ChainBatch, derive, edge_token, sample, uniform_over
from theoryrl.theory import chain_flow as cf
from theoryrl.theory import flow_integrate as fi

CONSTS = jnp.array([1.5, -0.4, 0.3, 0.7, -0.2])


def _one(inst, b=0):
    return jax.tree.map(lambda x: x[b], inst)


def test_class_index_follows_the_relation_of_key_to_query():
    n = 5
    cls = cf.class_index(n)
    for v in range(n):
        for c in range(n):
            assert cls[v, c] == (3 if c == v else 4)
        for u, w in itertools.permutations(range(n), 2):
            expect = 0 if u == v else (1 if w == v else 2)
            assert cls[v, int(edge_token(jnp.int32(u), jnp.int32(w), n))] == expect
    assert cf.class_sizes(n).tolist() == [20, 20, 60, 5, 20]


def test_class_stats_recover_constants_and_spread():
    a = cf.symmetric_A(CONSTS, 6)
    means, spread = cf.class_stats(a)
    np.testing.assert_allclose(means, CONSTS, atol=1e-6)
    np.testing.assert_allclose(spread, 0.0, atol=1e-6)
    bump = a.at[0, 6 + 0].add(2.0)  # one out-edge entry (0, 1): alpha class gets variance
    means, spread = cf.class_stats(bump)
    n_alpha = 30
    assert abs(means[0] - (CONSTS[0] + 2.0 / n_alpha)) < 1e-5
    assert abs(spread[0] - 2.0 * np.sqrt((n_alpha - 1)) / n_alpha) < 1e-5


def test_linear_transition_matches_closed_form_logits():
    """Spec §2.3 table, m = 4 (vertices 0-1-2-3 and 4-5-6-7), logits in units of 1/tmp."""
    al, be, ga = 1.5, -0.4, 0.3
    fs = cf.FlowSpec(m=4, tmp=0.5)
    p = np.asarray(cf.sym_transition(CONSTS, fs))
    deg = np.array([1, 2, 2, 1, 1, 2, 2, 1])
    for v, succ, pred in [(0, 1, None), (1, 2, 0), (2, 3, 1)]:
        logit = ga * deg.astype(float)
        logit[succ] = al + ga * (succ != 3)
        if pred is not None:
            logit[pred] = be + ga * (pred != 0)
        logit[v] = al + be * (v != 0)
        expect = np.exp(logit / fs.tmp) / np.exp(logit / fs.tmp).sum()
        np.testing.assert_allclose(p[v], expect, rtol=1e-5)


@pytest.mark.parametrize("attention", ["linear", "softmax"])
def test_transition_equals_the_foundation_model_for_any_context(attention):
    """Vertex tokens never change the next-vertex distribution (zero values / masked keys)."""
    fs = cf.FlowSpec(m=3, attention=attention, tmp=0.5)
    a = jax.random.normal(jax.random.key(0), (6, 36))
    batch = sample(jax.random.key(1), fs.task, jnp.ones(2) / 2, 1)
    inst = _one(derive(fs.task, batch))
    p = cf.transition(a, fs, batch.perm[0])
    for extra in ([], [2, 2, 0]):
        ctx = jnp.concatenate([inst.edge_tokens, jnp.array([inst.source] + extra, jnp.int32)])
        query = ctx[-1]
        logits = next_logits({"A": a}, fs.model, query, ctx, jnp.ones(ctx.shape, bool))
        np.testing.assert_allclose(p[query], jax.nn.softmax(logits), rtol=1e-5, atol=1e-7)


def test_symmetric_model_is_label_invariant():
    fs = cf.FlowSpec(m=4, horizon=5)
    a = cf.symmetric_A(CONSTS, 8)
    ref = cf.sym_solution(CONSTS, fs)
    for seed in range(3):
        perm = jax.random.permutation(jax.random.key(seed), 8)
        sol = cf.instance_solution(a, fs, perm)
        np.testing.assert_allclose(sol["success"], ref["success"], rtol=1e-5)
        np.testing.assert_allclose(sol["length"], ref["length"], rtol=1e-5)


def test_absorption_on_the_smallest_graph_matches_hand_formulas():
    """m = 2: chains 0 -> 1 and 2 -> 3 (sinks 1, 3), source 0 at distance 1."""
    p = np.asarray(cf.sym_transition(CONSTS, cf.FlowSpec(m=2)))
    got = {h: float(cf.sym_solution(CONSTS, cf.FlowSpec(m=2, horizon=h))["success"][0]) for h in (1, 2, 0)}
    assert abs(got[1] - p[0, 1]) < 1e-6
    assert abs(got[2] - (p[0, 1] + p[0, 0] * p[0, 1] + p[0, 2] * p[2, 1])) < 1e-6
    # H = infinity: x0 = p01 + p00 x0 + p02 x2, x2 = p21 + p20 x0 + p22 x2
    lhs = np.array([[1 - p[0, 0], -p[0, 2]], [-p[2, 0], 1 - p[2, 2]]])
    x = np.linalg.solve(lhs, np.array([p[0, 1], p[2, 1]]))
    assert abs(got[0] - x[0]) < 1e-5


def test_infinite_horizon_is_the_limit_of_long_horizons_and_lengths_agree():
    inf = cf.sym_solution(CONSTS, cf.FlowSpec(m=4))
    long = cf.sym_solution(CONSTS, cf.FlowSpec(m=4, horizon=400))
    np.testing.assert_allclose(inf["success"], long["success"], rtol=1e-5)
    np.testing.assert_allclose(inf["length"], long["length"], rtol=1e-4)
    np.testing.assert_allclose(inf["reach"], 1.0, atol=1e-5)


def _successful_paths(fs, inst):
    """Every rollout whose first sink is the target, as (actions, emitted) padded to H."""
    sinks = set(np.flatnonzero(np.asarray(inst.is_sink)).tolist())
    free = [v for v in range(fs.num_vertices) if v not in sinks]
    paths = []
    for length in range(1, fs.horizon + 1):
        for prefix in itertools.product(free, repeat=length - 1):
            acts = list(prefix) + [int(inst.target)]
            paths.append((acts + [0] * (fs.horizon - length), [True] * length + [False] * (fs.horizon - length)))
    return jnp.array([p[0] for p in paths], jnp.int32), jnp.array([p[1] for p in paths])


@pytest.mark.parametrize("attention", ["linear", "softmax"])
def test_value_and_gradient_equal_enumerated_reinforce_expectation(attention):
    """sum over successful rollouts of p(tau) and of p(tau) grad log p(tau), with the foundation's
    log-probabilities, equal the exact value and jax.grad of it (m = 3, H = 4, a random full A)."""
    fs = cf.FlowSpec(m=3, attention=attention, tmp=0.7, horizon=4)
    a = 0.8 * jax.random.normal(jax.random.key(2), (6, 36))
    batch = ChainBatch(perm=jax.random.permutation(jax.random.key(3), 6)[None].astype(jnp.int32),
                       source_pos=jnp.array([0], jnp.int32))
    inst = _one(derive(fs.task, batch))
    acts, emitted = _successful_paths(fs, inst)
    logp = lambda a_, x, e: sequence_logp_one({"A": a_}, fs.model, inst, x, e)
    probs = jnp.exp(jax.vmap(logp, in_axes=(None, 0, 0))(a, acts, emitted))
    grads = jax.vmap(jax.grad(logp), in_axes=(None, 0, 0))(a, acts, emitted)
    reinforce = jnp.einsum("p,pij->ij", probs, grads)
    value, exact_grad = jax.value_and_grad(cf.instance_success)(a, fs, batch.perm[0], 0)
    assert abs(float(value) - float(probs.sum())) < 1e-5
    np.testing.assert_allclose(exact_grad, reinforce, atol=1e-5 * float(jnp.max(jnp.abs(reinforce))) + 1e-7)


@pytest.mark.parametrize("attention, tmp, horizon", [("linear", 1.0, 5), ("softmax", 0.1, 0)])
def test_exact_objective_and_gradient_match_sampler_montecarlo(attention, tmp, horizon):
    """Population value, mean correct length and dJ/d(alpha, beta, gamma) of the symmetric model vs
    REINFORCE averages over rollouts of the foundation sampler on random labellings (4 standard
    errors; H = infinity is run with a horizon of 40 steps, whose truncation is negligible here)."""
    m, num = 4, 3000
    fs = cf.FlowSpec(m=m, attention=attention, tmp=tmp, horizon=horizon)
    consts = jnp.array([2.0, -0.5, 0.2, 0.0, 0.0]) * (1.0 if attention == "linear" else 1.5)
    probs = jnp.asarray(uniform_over(range(1, m), m), jnp.float32)
    params = {"A": cf.symmetric_A(consts, fs.num_vertices)}
    inst = derive(fs.task, sample(jax.random.key(4), fs.task, probs, num))
    out = rollout(params, fs.model, inst, horizon or 40, jax.random.key(5))
    r = np.asarray(out["correct"], np.float64)
    exact = float(cf.sym_objective(consts, fs, probs))
    assert abs(r.mean() - exact) < 4 * np.sqrt(exact * (1 - exact) / num)
    lengths = np.asarray(out["length"], np.float64)[r > 0]
    exact_len = float(jnp.sum(cf.sym_solution(consts, fs)["success"] * cf.sym_solution(consts, fs)["length"] * probs) / exact)
    assert abs(lengths.mean() - exact_len) < 4 * lengths.std() / np.sqrt(lengths.size)
    grad = jax.grad(cf.sym_objective)(consts, fs, probs)
    # d/dc_k log pi(rollout) = directional derivative along the class-k indicator, per rollout
    class_logp = lambda c, i, x, e: sequence_logp_one({"A": cf.symmetric_A(c, fs.num_vertices)}, fs.model, i, x, e)
    scores = jax.jit(jax.vmap(jax.grad(class_logp), in_axes=(None, 0, 0, 0)))(consts, inst, out["actions"], out["emitted"])
    terms = (r - r.mean())[:, None] * np.asarray(scores, np.float64)
    for k in range(3):
        assert abs(terms[:, k].mean() - float(grad[k])) < 4 * terms[:, k].std() / np.sqrt(num) + 1e-6, k
    assert float(grad[3]) == 0.0 and float(grad[4]) == 0.0  # vertex keys carry no vote


def test_flow_field_A_metric_is_the_class_mean_of_the_full_gradient():
    fs = cf.FlowSpec(m=3)
    probs = jnp.array([0.3, 0.7])
    perms = jnp.stack([jax.random.permutation(jax.random.key(s), 6) for s in range(4)])
    full = jax.grad(cf.objective)(cf.symmetric_A(CONSTS, 6), fs, perms, probs)
    means, _ = cf.class_stats(full)
    np.testing.assert_allclose(means, cf.flow_field(CONSTS, fs, probs, "A"), rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(cf.flow_field(CONSTS, fs, probs, "coords"),
                               jax.grad(cf.sym_objective)(CONSTS, fs, probs), rtol=1e-6)


def test_alpha_for_c0_matches_closed_form():
    """Linear, beta = gamma = 0, n = 2m: p_fwd = e^a / (2 e^a + n - 2) at every position."""
    for m, c0 in [(4, 0.3), (10, 0.45)]:
        a = cf.alpha_for_c0(cf.FlowSpec(m=m), c0)
        assert abs(a - np.log(c0 * (2 * m - 2) / (1 - 2 * c0))) < 1e-4


def test_integrator_stops_at_the_exact_crossing_and_reports_the_cap():
    opts = fi.FlowOpts(t_max=50.0, t_first=0.01, num_save=16, rtol=1e-7, atol=1e-9)
    field = lambda y: -y
    out = fi.integrate(field, jnp.array([1.0]), lambda y: y[0], 0.1, opts)
    assert int(out["status"]) == fi.REACHED and abs(float(out["t_eps"]) - np.log(10.0)) < 1e-3
    saved = np.asarray(out["ts"])
    np.testing.assert_allclose(np.asarray(out["ys"])[np.isfinite(saved), 0], np.exp(-saved[np.isfinite(saved)]), rtol=1e-5)
    capped = fi.integrate(field, jnp.array([1.0]), lambda y: y[0], -1.0, opts)
    assert int(capped["status"]) == fi.TIME_CAP and not np.isfinite(float(capped["t_eps"]))
    stopped = fi.integrate(field, jnp.array([1.0]), lambda y: y[0], -1.0, fi.FlowOpts(t_max=50.0, max_steps=3))
    assert int(stopped["status"]) == fi.SOLVER_STOPPED and not np.isfinite(float(stopped["t_eps"]))
    lr = 0.05  # y_k = (1 - lr)^k: first k with y_k <= 0.1
    asc = fi.ascend(field, jnp.array([1.0]), lambda y: y[0], 0.1, lr, 60, record_every=10)
    assert int(asc["steps_to_eps"]) == int(np.ceil(np.log(0.1) / np.log(1 - lr)))
    np.testing.assert_allclose(asc["losses"], (1 - lr) ** np.arange(61), rtol=1e-5)


def test_chain_flow_reaches_traversal_and_float64_agrees():
    m = 4
    fs = cf.FlowSpec(m=m, horizon=m + 1)
    train = jnp.asarray(uniform_over(range(1, m), m), jnp.float32)
    hard = jnp.asarray(uniform_over([m - 1], m), jnp.float32)
    opts = fi.FlowOpts(t_max=1e3, t_first=0.1, num_save=24)
    out = fi.chain_flow(jnp.array([2.0, 0, 0, 0, 0]), train, hard, 0.1, fs=fs, metric="coords", opts=opts)
    last = int(np.nanargmax(np.asarray(out["t"])))
    assert int(out["status"]) == fi.REACHED
    assert abs(float(out["loss"][last]) - 0.1) < 1e-3
    assert float(out["consts"][last, 0]) > 2.0 and float(out["consts"][last, 1]) < 0.0  # alpha up, beta down
    assert float(out["length"][last, -1]) < m  # correct rollouts are (nearly) the chain suffix
    with jax.enable_x64(True):
        out64 = fi.chain_flow(jnp.array([2.0, 0, 0, 0, 0], jnp.float64), train.astype(jnp.float64),
                              hard.astype(jnp.float64), 0.1, fs=fs, metric="coords",
                              opts=fi.FlowOpts(t_max=1e3, t_first=0.1, num_save=24, rtol=1e-9, atol=1e-11))
        assert out64["consts"].dtype == jnp.float64
        t64 = float(out64["t_eps"])
    assert abs(float(out["t_eps"]) - t64) < 1e-3 * t64
