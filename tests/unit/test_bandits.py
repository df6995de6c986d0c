"""Outcome bandits, diversity metrics and the policy-gradient learner against exact values."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core import prng
from theoryrl.eval import diversity as dv
from theoryrl.rl import bandit_pg as pg
from theoryrl.theory import bandits as bd

P = np.array([0.5, 0.3, 0.2])


def test_expected_diff_at_k_equals_exact_enumeration_and_empirical_mean():
    for k in (1, 2, 3):
        tuples = list(itertools.product(range(3), repeat=k))
        exact = sum(np.prod(P[list(t)]) * len(set(t)) for t in tuples)
        np.testing.assert_allclose(dv.expected_diff_at_k(jnp.asarray(P), k), exact, rtol=1e-6)
    np.testing.assert_allclose(dv.expected_diff_at_k(jnp.asarray(P), 2), 0.75 + 0.51 + 0.36, rtol=1e-6)
    draws = jax.random.choice(jax.random.key(0), 3, (20000, 5), p=jnp.asarray(P))
    counts = np.asarray(jax.vmap(lambda a: dv.distinct_count(a, 3))(draws), np.float64)
    expected = float(dv.expected_diff_at_k(jnp.asarray(P), 5))
    assert abs(counts.mean() - expected) < 4 * counts.std() / np.sqrt(counts.size)


def test_entropy_distinct_count_and_cross_checkpoint_coverage():
    np.testing.assert_allclose(dv.outcome_entropy(jnp.full((7,), 1 / 7)), np.log(7), rtol=1e-6)
    assert float(dv.outcome_entropy(jnp.array([1.0, 0.0]))) == 0.0
    assert int(dv.distinct_count(jnp.array([4, 1, 4, 4, 0]), 6)) == 3
    np.testing.assert_allclose(dv.cross_checkpoint_coverage(jnp.array([0.1, 0.2]), 2), 1 - 0.81 * 0.64, rtol=1e-6)
    np.testing.assert_allclose(dv.pass_at_k_expected(0.2, 3), 1 - 0.8 ** 3, rtol=1e-6)


def test_ucb1_index_by_hand():
    got = bd.ucb1_index(jnp.array([1.0, 0.0, 3.0]), jnp.array([2.0, 0.0, 3.0]), 4.0)
    np.testing.assert_allclose(np.asarray(got)[[0, 2]], [0.5 + np.sqrt(np.log(4.0)), 1.0 + np.sqrt(2 * np.log(4.0) / 3)], rtol=1e-6)
    assert float(got[1]) >= 1e29


def test_balanced_map_reaches_every_outcome_evenly():
    out = np.asarray(bd.arm_outcomes(jax.random.key(3), 23, 5, "balanced"))
    assert sorted(np.bincount(out, minlength=5).tolist()) == [4, 4, 5, 5, 5]
    rnd = np.asarray(bd.arm_outcomes(jax.random.key(3), 200, 7, "random"))
    assert rnd.min() >= 0 and rnd.max() < 7


def _run(algo, m=4, k=12, steps=300, seeds=(0,)):
    """Runs of `algo` for several seeds, vmapped (one compile per algorithm)."""
    shape = bd.BanditShape(k, 6)

    def one(seed):
        inst = bd.make_instance(jax.random.key(seed), shape, m)
        return inst, bd.run_steps(algo, bd.init_state(shape), inst, jax.random.key(seed + 1), steps)

    inst, state = jax.jit(jax.vmap(one))(jnp.asarray(seeds))
    if len(seeds) == 1:
        return jax.tree.map(lambda x: x[0], inst), jax.tree.map(lambda x: x[0], state)
    return inst, state


def test_known_optimal_policy_has_zero_regret():
    inst, state = _run("oracle")
    assert float(state.regret) == 0.0 and int(state.t) == 300
    best = np.asarray(inst["mean_M"])[np.asarray(inst["outcome_K"])][np.asarray(state.n_K) > 0]
    np.testing.assert_allclose(best, float(bd.best_mean(inst)))


def test_pseudo_regret_and_outcome_counts_are_consistent_with_arm_counts():
    for algo in ("arm_ucb", "outcome_ucb", "outcome_ucb_noshare", "arm_ts", "outcome_ts"):
        inst, st = _run(algo)
        n_K, out_K, mu_M = np.asarray(st.n_K), np.asarray(inst["outcome_K"]), np.asarray(inst["mean_M"])
        np.testing.assert_allclose(np.bincount(out_K, weights=n_K, minlength=6), st.n_M)
        gaps = float(bd.best_mean(inst)) - mu_M[out_K]
        np.testing.assert_allclose(float(st.regret), n_K @ gaps, rtol=1e-4)
        assert n_K.sum() == 300 and not np.asarray(st.n_M)[4:].any()  # padded outcomes never pulled


def test_outcome_ucb_with_shared_logits_beats_arm_ucb_when_arms_outnumber_outcomes():
    reg = {a: float(np.mean(_run(a, m=3, k=60, steps=400, seeds=(0, 1, 2, 3))[1].regret))
           for a in ("arm_ucb", "outcome_ucb")}
    assert reg["outcome_ucb"] < 0.5 * reg["arm_ucb"]


def test_policy_gradient_surrogate_is_unbiased_up_to_the_group_baseline_factor():
    """E over all G-tuples of grad[(1/G) sum_i (r_i - mean r) log pi(k_i)] = (1 - 1/G) grad J exactly."""
    outcome = jnp.array([[0, 1, 2, 1]])
    correct = jnp.array([[False, True, False]])
    params = pg.PolicyParams(phi=jnp.array([[0.3, -0.4, 0.1]]), psi=jnp.array([[0.2, 0.0, -0.5, 0.7]]),
                             log_tau=jnp.array(0.2), skill=jnp.array(0.1))
    data = {"outcome_QxK": outcome, "correct_QxM": correct}
    pi = np.asarray(jax.nn.softmax(pg.arm_logits(params, outcome, correct)))[0]
    r_K = np.array([0.0, 1.0, 0.0, 1.0])
    G = 2
    total = jax.tree.map(jnp.zeros_like, params)
    for arms in itertools.product(range(4), repeat=G):
        r = r_K[list(arms)]
        adv = jnp.asarray([r - r.mean()], jnp.float32)
        g = jax.grad(pg.surrogate)(params, jnp.zeros((1, 4)), data, jnp.array([arms]), adv, 0.0)
        total = jax.tree.map(lambda t, x: t + np.prod(pi[list(arms)]) * x, total, g)

    def value(p):
        return jnp.sum(jax.nn.softmax(pg.arm_logits(p, outcome, correct))[0] * r_K)

    exact = jax.grad(value)(params)
    for name in ("phi", "psi", "log_tau", "skill"):
        np.testing.assert_allclose(getattr(total, name), (1 - 1 / G) * np.asarray(getattr(exact, name)), rtol=1e-4,
                                   atol=1e-6)


def test_pg_round_counts_samples_and_base_policy_never_moves():
    spec = pg.QuestionsSpec(questions=6, arms=8, outcomes=4, group=4, correct=1)
    data = pg.make_questions(jax.random.key(1), spec)
    assert np.asarray(data["correct_QxM"]).sum(axis=1).tolist() == [1] * 6
    hp = {k: jnp.float32(0.0) for k in ("lr", "share", "tie", "transfer", "beta", "ucb", "ucb_mean", "batch", "gate")}
    hp = pg.PgHp(**hp, seed=jnp.int32(5), c=jnp.float32(0.2), ucb_con=jnp.float32(1.0), b0=jnp.float32(0.5))
    state = jax.jit(lambda st: pg.run_rounds(spec, st, hp, data, 3))(pg.init_state(spec, data))  # lr = 0: base
    np.testing.assert_array_equal(np.asarray(state.counts_QxM).sum(axis=1), [12] * 6)
    np.testing.assert_array_equal(state.params.phi, data["phi0"])
    seen = np.asarray(state.seen_QxM)
    np.testing.assert_array_equal(seen, np.asarray(state.counts_QxM) > 0)
    key = prng.step_key(jax.random.key(0), prng.Stream.EVAL, 0)
    met = jax.jit(lambda st: pg.policy_metrics(spec, st, data, key))(state)
    np.testing.assert_allclose(met["distinct_all"], seen.sum(axis=1).mean(), rtol=1e-6)
