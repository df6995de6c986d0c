"""Surrogate losses, aggregation and KL estimators against hand-computed values and exact enumeration.

The policy-gradient check enumerates every G-tuple (G = 3) of 2-token sequences over a vocabulary of 3
(9 sequences, 9^3 tuples) under a tabular autoregressive softmax policy, and compares the exact
expectation of -grad(policy_loss) with grad J, J = sum_y pi(y) r(y).
"""
from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.core.config import ConfigError
from theoryrl.rl import losses as lo
from theoryrl.rl.advantages import AdvantageSpec, compute_advantages


def _close(got, want, tol=1e-5):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want, np.float64), rtol=tol, atol=tol)


def _row(values):
    """[1, 1, N] token array."""
    return jnp.asarray(values, jnp.float32).reshape(1, 1, -1)


# ---------------------------------------------------------------- aggregation

# tests jit their computations: one compile each instead of one per eager op (CPU budget)
_aggregate = jax.jit(lo.aggregate, static_argnames=("mode",))
_kl = jax.jit(lo.kl_estimate, static_argnames=("kind",))

RAGGED_LOSS = jnp.arange(1.0, 13.0).reshape(2, 2, 3)  # [[[1,2,3],[4,5,6]],[[7,8,9],[10,11,12]]]
RAGGED_MASK = jnp.array([[[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]])  # L = 3,1,0,2


def test_aggregation_modes_on_a_ragged_mask():
    # valid tokens 1,2,3 | 4 | - | 10,11: 31 over 6 tokens; per-response means 2, 4, 0 (empty), 10.5
    _close(_aggregate(RAGGED_LOSS, RAGGED_MASK, "token-mean"), 31 / 6)
    _close(_aggregate(RAGGED_LOSS, RAGGED_MASK, "seq-mean-token-mean"), (2 + 4 + 0 + 10.5) / 4)
    _close(_aggregate(RAGGED_LOSS, RAGGED_MASK, "seq-mean-token-sum-norm"), 31 / 3 / 4)
    _close(_aggregate(RAGGED_LOSS, RAGGED_MASK, "seq-mean-token-sum-norm", norm_len=2), 31 / 2 / 4)


def test_aggregation_ignores_nan_on_masked_tokens_and_empty_batches_give_zero():
    poisoned = RAGGED_LOSS.at[1, 0, 0].set(jnp.nan).at[0, 1, 2].set(-jnp.inf)
    for mode in lo.AGG_MODES:
        _close(_aggregate(poisoned, RAGGED_MASK, mode), _aggregate(RAGGED_LOSS, RAGGED_MASK, mode))
        _close(_aggregate(RAGGED_LOSS, jnp.zeros((2, 2, 3)), mode), 0.0)
    with pytest.raises(ValueError, match="aggregation mode"):
        lo.aggregate(RAGGED_LOSS, RAGGED_MASK, "mean")


# ---------------------------------------------------------------- clipped surrogate

@functools.partial(jax.jit, static_argnames=("dual_clip",))
def _surrogate_jit(logp, a, clip_low, clip_high, dual_clip):
    def total(lp):
        loss, clipped = lo.clipped_surrogate(lp, 0.0 * lp, a, clip_low=clip_low, clip_high=clip_high,
                                             dual_clip=dual_clip)
        return jnp.sum(loss), (loss, clipped)

    grad, (loss, clipped) = jax.grad(total, has_aux=True)(logp)
    return loss, clipped, grad


def _surrogate_and_grad(ratios, adv, clip_low=0.2, clip_high=0.2, dual_clip=3.0):
    """Per-token loss, clipped flag and d loss / d logp at the given ratios (logp_old = 0)."""
    loss, clipped, grad = _surrogate_jit(_row(np.log(ratios)), _row(adv), clip_low, clip_high, dual_clip)
    return loss[0, 0], clipped[0, 0], grad[0, 0]


def test_surrogate_positive_advantage_clips_above_one_plus_eps():
    loss, clipped, grad = _surrogate_and_grad([0.5, 1.1, 1.5], [1.0, 1.0, 1.0])
    _close(loss, [-0.5, -1.1, -1.2])  # max(-rho, -clip(rho, 0.8, 1.2))
    np.testing.assert_array_equal(clipped, [False, False, True])
    _close(grad, [-0.5, -1.1, 0.0])  # d(-A rho)/dlogp = -A rho unclipped, 0 clipped


def test_surrogate_negative_advantage_clips_below_and_dual_clip_caps_at_minus_a_c():
    loss, clipped, grad = _surrogate_and_grad([0.5, 1.1, 1.5, 4.0], [-1.0] * 4)
    _close(loss, [0.8, 1.1, 1.5, 3.0])  # rho = 4: max(4, 1.2) = 4, capped at -A * 3 = 3
    np.testing.assert_array_equal(clipped, [True, False, False, True])
    _close(grad, [0.0, 1.1, 1.5, 0.0])
    for off in (None, 1.0):
        loss, clipped, grad = _surrogate_and_grad([4.0], [-2.0], dual_clip=off)
        _close(loss, [8.0])
        _close(grad, [8.0])
        assert not bool(clipped[0])


def test_surrogate_asymmetric_clip_higher():
    loss, clipped, _ = _surrogate_and_grad([1.25, 1.5], [1.0, 1.0], clip_high=0.28)
    _close(loss, [-1.25, -1.28])
    np.testing.assert_array_equal(clipped, [False, True])
    loss, _, _ = _surrogate_and_grad([0.85], [-1.0], clip_low=0.1)
    _close(loss, [0.9])


# ---------------------------------------------------------------- KL estimators

def test_k3_is_nonnegative_and_clamped():
    rng = np.random.default_rng(0)
    logp, logp_ref = (jnp.asarray(5.0 * rng.standard_normal((4, 8, 16)), jnp.float32) for _ in range(2))
    k3 = np.asarray(_kl(logp, logp_ref, "k3"))
    assert (k3 >= 0.0).all() and (k3 <= 10.0).all()
    # delta = -30: exp(20) - 21 -> 10; delta = 30: exp(-20) + 19 -> 10
    _close(_kl(jnp.array([-30.0, 30.0]), jnp.zeros(2), "k3"), [10.0, 10.0])


def test_k1_and_k3_are_unbiased_by_exact_enumeration():
    p = jnp.array([0.5, 0.25, 0.25])
    q = jnp.array([0.25, 0.25, 0.5])
    kl = 0.25 * math.log(2.0)  # 0.5 ln 2 + 0 + 0.25 ln(1/2)
    for kind in ("k1", "k3", "k3+"):
        _close(jnp.sum(p * _kl(jnp.log(p), jnp.log(q), kind)), kl)


def test_k2_gradient_is_delta_grad_delta_and_k3_plus_is_straight_through():
    theta = jnp.array([0.3, -1.2, 0.8, 0.1])
    logp_ref = jnp.log(jnp.array([0.1, 0.2, 0.3, 0.4]))
    y = 2

    @functools.partial(jax.jit, static_argnames=("kind",))
    def grad_est(th, kind):
        return jax.value_and_grad(lambda t: lo.kl_estimate(jax.nn.log_softmax(t)[y], logp_ref[y], kind))(th)

    probs = np.exp(np.asarray(theta)) / np.exp(np.asarray(theta)).sum()
    delta = math.log(probs[y]) - math.log(0.3)
    grad_logp = np.eye(4)[y] - probs  # d log softmax(theta)_y / d theta
    _close(grad_est(theta, "k2")[1], delta * grad_logp)
    _close(grad_est(theta, "k3+")[1], delta * grad_logp)
    _close(grad_est(theta, "k3")[1], (1.0 - math.exp(-delta)) * grad_logp)
    _close(grad_est(theta, "k3+")[0], math.exp(-delta) + delta - 1.0)
    with pytest.raises(ValueError, match="KL estimator"):
        lo.kl_estimate(theta, theta, "k4")


# ---------------------------------------------------------------- value loss

def test_value_loss_takes_the_larger_of_clipped_and_unclipped_errors():
    @jax.jit
    def loss_and_grad(v, v_old, ret):
        return jax.value_and_grad(lo.value_loss)(v, v_old, ret, jnp.ones((1, 1, 1)), clip=0.5)

    def one(v, v_old, ret):
        loss, grad = loss_and_grad(*(jnp.full((1, 1, 1), x) for x in (v, v_old, ret)))
        return float(loss), float(grad[0, 0, 0])

    # V = 1, V_old = 0, R = 2: (1 - 2)^2 = 1 < (0.5 - 2)^2 = 2.25 -> 1.125, clipped: no gradient
    _close(one(1.0, 0.0, 2.0), [1.125, 0.0])
    # V = 1, R = 0.9: 0.01 < (0.5 - 0.9)^2 = 0.16 -> 0.08, no gradient
    _close(one(1.0, 0.0, 0.9), [0.08, 0.0])
    # V = 0.3 inside the band, R = 1: 0.5 * 0.49, gradient V - R
    _close(one(0.3, 0.0, 1.0), [0.245, -0.7])


# ---------------------------------------------------------------- policy loss

def test_policy_loss_adds_kl_in_loss_and_entropy_bonus():
    mask = jnp.array([[[1.0, 1.0], [1.0, 0.0]]])
    logp = jnp.full((1, 2, 2), math.log(0.5))
    a = jnp.array([[[1.0, 1.0], [-1.0, -1.0]]])
    entropy = jnp.array([[[0.3, 0.3], [0.6, 99.0]]])
    spec = lo.LossSpec(kl="loss", kl_kind="k3", kl_coef=0.1, entropy_coef=0.01)
    ref = jnp.full((1, 2, 2), math.log(0.25))

    def f(lp):
        return lo.policy_loss(spec, lp, logp, a, mask, logp_ref_PxGxT=ref, entropy_PxGxT=entropy)

    (loss, stats), grad = jax.jit(jax.value_and_grad(f, has_aux=True))(logp)
    k3 = math.log(2.0) - 0.5  # delta = ln 2: 1/2 + ln 2 - 1
    _close(loss, -1 / 3 + 0.1 * k3 - 0.01 * 0.4)
    _close([stats["pg_loss"], stats["kl"], stats["entropy"], stats["ratio_mean"], stats["clipfrac"]],
           [-1 / 3, k3, 0.4, 1.0, 0.0])
    # token-mean over 3 tokens: d/dlogp = (-A + 0.1 (1 - e^-delta)) / 3 = (-A + 0.05) / 3
    _close(grad, [[[(-1 + 0.05) / 3, (-1 + 0.05) / 3], [(1 + 0.05) / 3, 0.0]]])


def test_policy_loss_clip_statistics():
    loss, stats = jax.jit(functools.partial(lo.policy_loss, lo.LossSpec()))(
        _row(np.log([1.5, 1.0, 4.0])), _row([0.0, 0.0, 0.0]), _row([1.0, 1.0, -1.0]), _row([1.0, 1.0, 1.0]))
    _close(loss, (-1.2 - 1.0 + 3.0) / 3)
    _close([stats["clipfrac"], stats["clipfrac_lower"], stats["ratio_mean"]], [1 / 3, 1 / 3, 6.5 / 3])
    _close(stats["approx_kl"], -math.log(6.0) / 3)


def test_traced_coefficients_and_clip_ranges_under_vmap():
    logp, zeros, a, m = _row([math.log(1.4)]), _row([0.0]), _row([1.0]), _row([1.0])
    by_clip = jax.jit(jax.vmap(lambda c: lo.policy_loss(lo.LossSpec(clip_high=c), logp, zeros, a, m)[0]))(
        jnp.array([0.2, 0.5]))
    _close(by_clip, [-1.2, -1.4])
    ref = _row([math.log(1.4) - math.log(2.0)])  # delta = ln 2
    by_coef = jax.jit(jax.vmap(lambda c: lo.policy_loss(lo.LossSpec(kl="loss", kl_coef=c), logp, zeros, a, m,
                                                        logp_ref_PxGxT=ref)[0]))(jnp.array([0.0, 0.1]))
    _close(by_coef, [-1.2, -1.2 + 0.1 * (math.log(2.0) - 0.5)])


def test_bad_specs_and_missing_inputs_fail_clearly():
    x = jnp.zeros((1, 2, 3))
    with pytest.raises(ConfigError, match="agg"):
        lo.LossSpec(agg="mean").validate()
    with pytest.raises(ConfigError, match="clip_low"):
        lo.LossSpec(clip_low=1.5).validate()
    with pytest.raises(ValueError, match="logp_ref"):
        lo.policy_loss(lo.LossSpec(kl="loss", kl_coef=0.1), x, x, x, x)
    with pytest.raises(ValueError, match="entropy"):
        lo.policy_loss(lo.LossSpec(entropy_coef=0.01), x, x, x, x)
    with pytest.raises(ValueError, match="shape"):
        lo.policy_loss(lo.LossSpec(), x, x, jnp.zeros((1, 2, 4)), x)


# ---------------------------------------------------------------- exact policy gradient

VOCAB, G = 3, 3
SEQS = np.array(list(itertools.product(range(VOCAB), repeat=2)))  # 9 sequences (a, b)
REWARD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])  # r(a, b)
THETA = {"first": jnp.array([0.2, -0.4, 0.1]),
         "second": jnp.array([[0.5, -0.3, 0.0], [-0.2, 0.4, 0.1], [0.3, 0.3, -0.6]])}
# sequence-level score-function estimator: token sums, mean over responses (norm_len = 1)
SEQ_LOSS = lo.LossSpec(agg="seq-mean-token-sum-norm", norm_len=1)


def _token_logp(theta, seq):
    """log pi(a) and log pi(b | a): [T = 2]."""
    return jnp.stack([jax.nn.log_softmax(theta["first"])[seq[0]],
                      jax.nn.log_softmax(theta["second"][seq[0]])[seq[1]]])


@jax.jit
def _seq_logp_9(theta):
    return jnp.sum(jax.vmap(_token_logp, in_axes=(None, 0))(theta, jnp.asarray(SEQS)), axis=1)


def _objective(theta):
    return jnp.sum(jnp.exp(_seq_logp_9(theta)) * jnp.asarray(REWARD[SEQS[:, 0], SEQS[:, 1]]))


_grad_objective = jax.jit(jax.grad(_objective))


def _expected_ascent_direction(estimator: str):
    """sum over all 9^3 tuples of P(tuple) * (-grad policy_loss): on-policy, logp_old = sg(logp)."""
    tuples = jnp.asarray(list(itertools.product(range(len(SEQS)), repeat=G)))
    spec = AdvantageSpec(estimator)
    rewards_9 = jnp.asarray(REWARD[SEQS[:, 0], SEQS[:, 1]])

    def loss(theta, idx_G):
        logp = jax.vmap(_token_logp, in_axes=(None, 0))(theta, jnp.asarray(SEQS)[idx_G])[None]
        mask = jnp.ones((1, G, 2))
        a, _ = compute_advantages(spec, rewards_9[idx_G][None], mask)
        return lo.policy_loss(SEQ_LOSS, logp, jax.lax.stop_gradient(logp), a, mask)[0]

    grads = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))(THETA, tuples)
    weights = jnp.prod(jnp.exp(_seq_logp_9(THETA))[tuples], axis=1)
    return jax.tree.map(lambda g: -jnp.tensordot(weights, g, axes=1), grads)


def _grpo_closed_form():
    """E[A_1 grad log pi(y_1)] with A_1 = GRPO(r_1 | 2 iid Bernoulli(J) others), ddof = 1, eps = 1e-6."""
    p = float(_objective(THETA))

    def a(r, k):  # the first of [r, k ones, 2 - k zeros]
        m = (r + k) / 3
        std = math.sqrt(((r - m) ** 2 + k * (1 - m) ** 2 + (2 - k) * m ** 2) / 2)
        return (r - m) / (std + 1e-6)

    c = {r: sum(math.comb(2, k) * p ** k * (1 - p) ** (2 - k) * a(r, k) for k in range(3)) for r in (0, 1)}
    weight_9 = jnp.exp(_seq_logp_9(THETA)) * jnp.asarray([c[int(r)] for r in REWARD[SEQS[:, 0], SEQS[:, 1]]])
    return jax.jit(jax.grad(lambda th: jnp.sum(weight_9 * _seq_logp_9(th))))(THETA), c[1] - c[0]


def _flat(tree):
    return np.concatenate([np.ravel(tree["first"]), np.ravel(tree["second"])])


def test_rloo_surrogate_gradient_is_the_exact_policy_gradient():
    _close(_flat(_expected_ascent_direction("rloo")), _flat(_grad_objective(THETA)), tol=2e-6)


@pytest.mark.parametrize("estimator", ["dr_grpo", "reinforce"])  # with P = 1 group mean = batch mean
def test_mean_baseline_gradient_is_shrunk_by_one_minus_one_over_g(estimator):
    want = (1 - 1 / G) * _flat(_grad_objective(THETA))
    _close(_flat(_expected_ascent_direction(estimator)), want, tol=2e-6)


def test_grpo_expected_gradient_matches_closed_form_and_ascends():
    got = _flat(_expected_ascent_direction("grpo"))
    closed, scale = _grpo_closed_form()
    _close(got, _flat(closed), tol=1e-5)
    grad_j = _flat(_grad_objective(THETA))
    assert float(got @ grad_j) > 0.0
    # with binary rewards the closed form is (c(1) - c(0)) * grad J, c(1) > c(0)
    assert scale > 0.0
    _close(got, scale * grad_j, tol=1e-5)
