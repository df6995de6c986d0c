"""Advantage estimators against hand-computed values on one fixed [2, 4] reward array.

R = [[1, 0, 0, 1], [1, 1, 1, 0]]: group 0 has mean 1/2, group 1 mean 3/4, the batch mean is 5/8.
Token-level estimators use a ragged mask with response lengths L = [[3, 2, 1, 3], [2, 2, 3, 1]], T = 3.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.core.config import ConfigError
from theoryrl.rl import advantages as adv

R = jnp.array([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
L = np.array([[3, 2, 1, 3], [2, 2, 3, 1]])
MASK = jnp.asarray((np.arange(3)[None, None, :] < L[:, :, None]).astype(np.float32))
FULL = jnp.ones((2, 4, 3))


def _close(got, want, tol=1e-5):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want, np.float64), rtol=tol, atol=tol)


def _per_token(values_by_response):
    """[2, 4, 3] array from per-response lists of token values (zero padded)."""
    out = np.zeros((2, 4, 3))
    for (p, g), vals in values_by_response.items():
        out[p, g, :len(vals)] = vals
    return out


def _whiten_np(tokens):
    """Independent reference: whitening with numpy over an explicit list of valid-token values."""
    x = np.asarray(tokens, np.float64)
    return x.mean(), math.sqrt(x.var(ddof=1) + 1e-8)


# ---------------------------------------------------------------- sequence level

def test_grpo_bessel_std_ddof1():
    s0, s1 = math.sqrt(1.0 / 3.0), 0.5  # group 0: 4 * 0.25 / 3; group 1: (3 * 0.0625 + 0.5625) / 3
    want = [[0.5 / (s0 + 1e-6), -0.5 / (s0 + 1e-6), -0.5 / (s0 + 1e-6), 0.5 / (s0 + 1e-6)],
            [0.25 / (s1 + 1e-6)] * 3 + [-0.75 / (s1 + 1e-6)]]
    _close(adv.grpo(R), want)


def test_grpo_population_std_ddof0_and_eps():
    s1 = math.sqrt(3.0) / 4.0  # sqrt(0.1875)
    _close(adv.grpo(R, ddof=0, eps=0.0), [[1, -1, -1, 1], [0.25 / s1] * 3 + [-0.75 / s1]])
    _close(adv.grpo(R, ddof=0, eps=0.5), [[0.5, -0.5, -0.5, 0.5], [0.25 / (s1 + 0.5)] * 3 + [-0.75 / (s1 + 0.5)]])


def test_grpo_constant_group_is_exactly_zero_under_jit_and_group_of_one_has_mean_0_std_1():
    # jit's rounding of the mean of 0.1s once gave (r - mean) / (std + eps) = -0.0074 here
    constant = jnp.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.1, 0.1, 0.1]])
    for fn in (adv.grpo, adv.rloo, adv.dr_grpo, functools.partial(adv.grpo, eps=0.0)):
        np.testing.assert_array_equal(jax.jit(fn)(constant), np.zeros((3, 3)))
    _close(adv.grpo(jnp.array([[1.0], [0.0]]), eps=0.25), [[0.8], [0.0]])
    _close(adv.dr_grpo(jnp.array([[1.0], [0.0]])), [[1.0], [0.0]])


def test_dr_grpo_rloo_batch_mean_remax():
    _close(adv.dr_grpo(R), [[0.5, -0.5, -0.5, 0.5], [0.25, 0.25, 0.25, -0.75]])
    # r_i - mean of the 3 others: 1 - 1/3, 0 - 2/3; 1 - 2/3, 0 - 1
    _close(adv.rloo(R), [[2 / 3, -2 / 3, -2 / 3, 2 / 3], [1 / 3, 1 / 3, 1 / 3, -1.0]])
    _close(adv.reinforce_batch_mean(R), [[0.375, -0.625, -0.625, 0.375], [0.375, 0.375, 0.375, -0.625]])
    _close(adv.remax(R, jnp.array([1.0, 0.0])), [[0, -1, -1, 0], [1, 1, 1, 0]])


def test_rloo_needs_two_samples_and_shapes_are_checked():
    with pytest.raises(ValueError, match="G >= 2"):
        adv.rloo(jnp.ones((3, 1)))
    with pytest.raises(ValueError, match="rank 2"):
        adv.grpo(jnp.ones(4))
    with pytest.raises(ValueError, match="one entry per prompt"):
        adv.remax(R, jnp.ones(3))
    with pytest.raises(ValueError, match="must start with"):
        adv.broadcast_to_tokens(R, jnp.ones((2, 3, 5)))


def test_dapo_keep_mask_and_overlong_penalty():
    keep = adv.dapo_keep_groups(jnp.array([[1, 0, 0, 1], [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 1]]))
    np.testing.assert_array_equal(keep, [True, False, False, True])
    # 0 up to 10 - 4 = 6, then -(L - 6)/4, -1 at 10
    pen = adv.overlong_penalty(jnp.array([[0, 6, 7, 8, 10]]), max_len=10, cache_len=4)
    _close(pen, [[0, 0, -0.25, -0.5, -1.0]])
    with pytest.raises(ValueError, match="cache_len"):
        adv.overlong_penalty(jnp.array([[1]]), max_len=4, cache_len=0)


# ---------------------------------------------------------------- token pieces

def test_outcome_reward_sits_on_the_last_valid_token():
    mask = jnp.array([[[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]])
    got = adv.outcome_token_rewards(jnp.array([[2.0, 5.0, -1.0]]), mask)
    _close(got, [[[0, 2, 0], [0, 0, 0], [0, 0, -1]]])


def test_discounted_returns_skip_masked_tokens():
    rewards = jnp.array([[[0.0, 0.0, 1.0], [0.0, 9.0, 2.0]]])
    mask = jnp.array([[[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]]])
    # gamma = 0.5: [0.25, 0.5, 1]; second row: the masked 9 is ignored and the gap is not a step
    got = adv.discounted_returns(rewards, mask, gamma=0.5)
    _close(got, [[[0.25, 0.5, 1.0], [1.0, 0.0, 2.0]]])


def test_whiten_uses_masked_mean_and_bessel_variance():
    x = jnp.array([[1.0, 2.0, 3.0, 100.0]])
    m = jnp.array([[1.0, 1.0, 1.0, 0.0]])
    # mean 2, var (1 + 0 + 1) / 2 = 1
    _close(adv.whiten(x, m), [[-1.0, 0.0, 1.0, 0.0]])


def test_reinforce_pp_whitens_outcome_returns_over_all_tokens():
    n1, n0 = 13, 4  # valid tokens with r = 1 (3+3+2+2+3) and r = 0 (2+1+1)
    mean = n1 / 17
    std = math.sqrt((n1 * (1 - mean) ** 2 + n0 * mean ** 2) / 16 + 1e-8)
    want = np.asarray(MASK) * (np.asarray(R)[:, :, None] - mean) / std
    _close(adv.reinforce_pp(R, MASK), want)


def test_reinforce_pp_with_k1_in_the_reward():
    # k1 = 1 on every token (padding too: ignored), beta = 0.1, gamma = 1: G_t = r - 0.1 * (L - t)
    returns = {(0, 0): [0.7, 0.8, 0.9], (0, 1): [-0.2, -0.1], (0, 2): [-0.1], (0, 3): [0.7, 0.8, 0.9],
               (1, 0): [0.8, 0.9], (1, 1): [0.8, 0.9], (1, 2): [0.7, 0.8, 0.9], (1, 3): [-0.1]}
    mean, std = _whiten_np([v for vals in returns.values() for v in vals])
    want = np.asarray(MASK) * (_per_token(returns) - mean) / std
    _close(adv.reinforce_pp(R, MASK, kl_PxGxT=jnp.ones((2, 4, 3)), kl_coef=0.1), want)


def test_reinforce_pp_baseline_whitens_group_centred_rewards_over_tokens():
    centred = {(0, 0): [0.5] * 3, (0, 1): [-0.5] * 2, (0, 2): [-0.5], (0, 3): [0.5] * 3,
               (1, 0): [0.25] * 2, (1, 1): [0.25] * 2, (1, 2): [0.25] * 3, (1, 3): [-0.75]}
    mean, std = _whiten_np([v for vals in centred.values() for v in vals])
    want = np.asarray(MASK) * (_per_token(centred) - mean) / std
    _close(adv.reinforce_pp_baseline(R, MASK), want)


def test_gae_with_gamma_lam_one_is_return_minus_value():
    values = jnp.asarray(0.1 * np.arange(24.0).reshape(2, 4, 3))  # padding values must not leak in
    a, ret = adv.gae(adv.outcome_token_rewards(R, MASK), values, MASK)
    _close(a, np.asarray(MASK) * (np.asarray(R)[:, :, None] - np.asarray(values)))
    _close(ret, np.asarray(MASK) * np.asarray(R)[:, :, None])


def test_gae_hand_computed_gamma_lam_half_with_a_gap_and_padding():
    # valid tokens: r = [0, 0, 1], V = [0.5, 0.2, 0.4]; delta = [-0.4, 0.0, 0.6];
    # A2 = 0.6, A1 = 0 + 0.25 * 0.6 = 0.15, A0 = -0.4 + 0.25 * 0.15 = -0.3625; returns = A + V
    rewards = jnp.array([[[0.0, 9.0, 0.0, 1.0, 9.0]]])
    values = jnp.array([[[0.5, 7.0, 0.2, 0.4, 7.0]]])
    mask = jnp.array([[[1.0, 0.0, 1.0, 1.0, 0.0]]])
    a, ret = adv.gae(rewards, values, mask, gamma=0.5, lam=0.5)
    _close(a, [[[-0.3625, 0.0, 0.15, 0.6, 0.0]]])
    _close(ret, [[[0.1375, 0.0, 0.35, 1.0, 0.0]]])
    w, _ = adv.gae(rewards, values, mask, gamma=0.5, lam=0.5, whiten_advantages=True)
    valid = np.asarray(w)[0, 0, [0, 2, 3]]
    _close([valid.mean(), valid.var(ddof=1)], [0.0, 1.0], tol=1e-4)


# ---------------------------------------------------------------- dispatcher

def test_dapo_is_grpo_broadcast_and_zero_on_masked_tokens():
    got, extras = adv.compute_advantages(adv.AdvantageSpec("dapo"), R, MASK)
    _close(got, np.asarray(adv.grpo(R))[:, :, None] * np.asarray(MASK))
    assert extras == {}


def test_keep_mask_drops_groups_from_advantages_and_batch_statistics():
    keep = jnp.array([True, False])
    got, _ = adv.compute_advantages(adv.AdvantageSpec("reinforce"), R, FULL, keep_P=keep)
    # the batch mean over the kept group only is 1/2
    _close(got[:, :, 0], [[0.5, -0.5, -0.5, 0.5], [0, 0, 0, 0]])
    got, _ = adv.compute_advantages(adv.AdvantageSpec("reinforce_pp"), R, MASK, keep_P=keep)
    # kept tokens: 6 with r = 1, 3 with r = 0: mean 2/3, var (6/9 + 12/9) / 8 = 1/4
    s = math.sqrt(0.25 + 1e-8)
    _close(got, np.asarray(MASK) * np.array([1, 0])[:, None, None] * (np.asarray(R)[:, :, None] - 2 / 3) / s)


def test_bonus_is_added_after_normalisation_on_reasoning_tokens_only():
    bonus = jnp.array([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.0, 1.0, 2.0]])
    answer_free = jnp.broadcast_to(jnp.array([1.0, 1.0, 0.0]), (2, 4, 3))  # last token = the answer
    got, _ = adv.compute_advantages(adv.AdvantageSpec("dr_grpo"), R, FULL, bonus_PxG=bonus, bonus_coef=0.1,
                                    token_adv_mask_PxGxT=answer_free)
    base = np.array([[0.5, -0.5, -0.5, 0.5], [0.25, 0.25, 0.25, -0.75]])
    _close(got[:, :, 0], base + 0.1 * np.asarray(bonus))
    _close(got[:, :, 1], base + 0.1 * np.asarray(bonus))
    _close(got[:, :, 2], base)


def test_kl_and_process_rewards_enter_sequence_scores_as_token_sums():
    kl = jnp.ones((2, 4, 3))
    process = jnp.zeros((2, 4, 3)).at[0, 1, 0].set(1.0).at[0, 2, 2].set(5.0)  # [0, 2, 2] is padding
    got, _ = adv.compute_advantages(adv.AdvantageSpec("dr_grpo"), R, MASK, kl_PxGxT=kl, kl_coef=0.1,
                                    token_rewards_PxGxT=process)
    # group 0 scores r - 0.1 L + p = [0.7, 0.8, -0.1, 0.7], mean 0.525
    _close(got[0, :, 0], [0.175, 0.275, -0.625, 0.175])


def test_gae_dispatch_returns_extras_and_whitened_advantages():
    values = jnp.asarray(0.1 * np.arange(24.0).reshape(2, 4, 3))
    got, extras = adv.compute_advantages(adv.AdvantageSpec("gae"), R, MASK, values_PxGxT=values)
    _close(extras["returns"], np.asarray(MASK) * np.asarray(R)[:, :, None])
    raw = (np.asarray(R)[:, :, None] - np.asarray(values))[np.asarray(MASK) > 0]
    mean, std = _whiten_np(raw)
    _close(np.asarray(got)[np.asarray(MASK) > 0], (raw - mean) / std, tol=1e-4)


def test_traced_kl_coef_under_vmap():
    spec = adv.AdvantageSpec("reinforce_pp")
    kl = jnp.ones((2, 4, 3))
    both = jax.vmap(lambda c: adv.compute_advantages(spec, R, MASK, kl_PxGxT=kl, kl_coef=c)[0])(
        jnp.array([0.0, 0.1]))
    _close(both[0], adv.reinforce_pp(R, MASK))
    _close(both[1], adv.reinforce_pp(R, MASK, kl_PxGxT=kl, kl_coef=0.1))


@pytest.mark.parametrize("estimator", ["grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline"])
def test_advantages_carry_no_gradient(estimator):
    spec = adv.AdvantageSpec(estimator)
    g = jax.grad(lambda r: jnp.sum(adv.compute_advantages(spec, r, MASK)[0] ** 2))(R)
    np.testing.assert_array_equal(g, np.zeros((2, 4)))


def test_spec_and_missing_inputs_fail_clearly():
    with pytest.raises(ConfigError, match="estimator"):
        adv.AdvantageSpec("ppo").validate()
    with pytest.raises(ConfigError, match="gamma"):
        adv.AdvantageSpec("gae", gamma=1.5).validate()
    with pytest.raises(ValueError, match="greedy_rewards_P"):
        adv.compute_advantages(adv.AdvantageSpec("remax"), R, MASK)
    with pytest.raises(ValueError, match="values_PxGxT"):
        adv.compute_advantages(adv.AdvantageSpec("gae"), R, MASK)
    with pytest.raises(ValueError, match="shape"):
        adv.compute_advantages(adv.AdvantageSpec("reinforce_pp"), R, MASK, kl_PxGxT=jnp.ones((2, 4, 5)))
