import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.models import ar_linear as ar
from theoryrl.rl import ar_linear_train as alt
from theoryrl.tasks import parity


def _cube(d):
    return np.array(list(itertools.product((1, -1), repeat=d)), dtype=np.int32)


def _random_params(d, seed=0, scale=1.0):
    shapes = [(d,), (d,), (), (d,), (), (d - 1, d), (d - 1, d - 1), (d - 1, d)]
    keys = jax.random.split(jax.random.key(seed), len(shapes))
    return ar.ARParams(*[scale * jax.random.normal(k, s) for k, s in zip(keys, shapes)])


def _all_outputs(d):
    """Every output the model can emit: 2 short ones and 2^d long ones (codes, length)."""
    outs = [(np.array([y1, ar.EOS_CODE] + [ar.PAD_CODE] * (d - 1)), 1) for y1 in (1, -1)]
    outs += [(np.array(list(ys) + [ar.EOS_CODE]), d) for ys in itertools.product((1, -1), repeat=d)]
    return outs


def test_output_codes_match_the_task():
    assert (ar.EOS_CODE, ar.PAD_CODE) == (parity.EOS, parity.PAD)


@pytest.mark.parametrize("d", [4, 5])
def test_next_prefix_parity_is_exactly_linear_in_the_features(d):
    """Least squares over all 2^d inputs finds a weight vector reproducing y_l exactly, for every l >= 2;
    without the (last token x input bit) block no linear function does."""
    x = _cube(d)
    y = np.cumprod(x, axis=1)
    for l in range(2, d + 1):
        feats = np.stack([np.asarray(ar.phi(xi, yi[: l - 1])) for xi, yi in zip(x, y)])
        assert feats.shape == (2 ** d, 2 * d + l - 1)
        w, *_ = np.linalg.lstsq(feats, y[:, l - 1], rcond=None)
        assert np.max(np.abs(feats @ w - y[:, l - 1])) < 1e-6
        tokens_only = feats[:, : d + l - 1]
        w0, *_ = np.linalg.lstsq(tokens_only, y[:, l - 1], rcond=None)
        assert np.max(np.abs(tokens_only @ w0 - y[:, l - 1])) > 0.5


def test_leap2_next_token_is_not_linear_in_the_features():
    d = 4
    x = _cube(d)
    y = np.cumprod(x, axis=1)
    # after the first leap-2 token x1x2 (the model's y_1 slot), the next one is x1..x4 = (x1x2) x3 x4
    feats = np.stack([np.asarray(ar.phi(xi, yi[1:2])) for xi, yi in zip(x, y)])
    target = y[:, 3]
    w, *_ = np.linalg.lstsq(feats, target, rcond=None)
    assert np.max(np.abs(feats @ w - target)) > 0.5


def test_block_layout_scores_equal_spec_feature_dot_products():
    d = 5
    params = _random_params(d, seed=1)
    x = jnp.array([1, -1, -1, 1, 1])
    y = jnp.array([1, 1, -1, -1, 1])
    s_first, s_stop, s_chain = ar.scores(params, x, y)
    np.testing.assert_allclose(s_first, jnp.dot(ar.head_weights(params, 1), x), rtol=1e-6)
    want_stop = jnp.dot(ar.head_weights(params, "2a"), ar.phi(x, y[:1])) + params.stop_b
    np.testing.assert_allclose(s_stop, want_stop, rtol=1e-6)
    for l in range(2, d + 1):
        np.testing.assert_allclose(s_chain[l - 2], jnp.dot(ar.head_weights(params, l), ar.phi(x, y[: l - 1])),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("d, temperature", [(3, 1.0), (4, 0.5)])
def test_sequence_probabilities_sum_to_one(d, temperature):
    params = _random_params(d, seed=2)
    x = jnp.asarray(_cube(d)[5])
    lps = [float(ar.log_prob(params, x, jnp.asarray(o), l, temperature)) for o, l in _all_outputs(d)]
    assert math.isclose(sum(math.exp(v) for v in lps), 1.0, rel_tol=1e-5)
    # outputs the model cannot emit have probability 0
    bad = [(jnp.array([1, -1, ar.EOS_CODE] + [ar.PAD_CODE] * (d - 2)), 2), (jnp.array([1] * d + [ar.PAD_CODE]), d)]
    assert all(float(ar.log_prob(params, x, o, l)) == -np.inf for o, l in bad)


def test_sampling_frequencies_match_log_probs_and_greedy_follows_the_signs():
    d = 3
    params = _random_params(d, seed=3)
    x = jnp.array([1, -1, 1])
    n = 40000
    out, length = jax.vmap(ar.decode, (None, 0, None, None))(params, jax.random.split(jax.random.key(0), n), x, 1.0)
    out = np.asarray(out)
    for o, l in _all_outputs(d):
        p = math.exp(float(ar.log_prob(params, x, jnp.asarray(o), l)))
        freq = np.mean(np.all(out == o[None], axis=1))
        assert abs(freq - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-3
    g_out, g_len = ar.decode(params, jax.random.key(1), x, 0.0)
    s_first = float(jnp.dot(params.w_first, x))
    y1 = 1 if s_first > 0 else -1
    stop = float(ar.stop_score(params, x.astype(jnp.float32), y1)) > 0
    if stop:
        assert g_len == 1 and g_out.tolist()[:2] == [y1, ar.EOS_CODE]
    else:
        y = [y1]
        for l in range(2, d + 1):  # teacher-forced score of each head on its own greedy prefix
            s = float(ar.scores(params, x, jnp.array(y + [1] * (d - len(y))))[2][l - 2])
            y.append(1 if s > 0 else -1)
        assert g_len == d and g_out.tolist() == y + [ar.EOS_CODE]


_step = jax.jit(ar.sgd_step, static_argnames="groups")


def _demo(x, is_long):
    out, length = parity.targets(jnp.asarray(x), is_long)
    return jnp.asarray(x)[None], out[None], length[None]


def test_sgd_two_steps_match_hand_computation():
    """lam = 0.5, eta_t = 1/(lam t), w^(1) = 0: a long demo x = (1, -1) (y = (1, -1)), then a short
    demo x = (-1, -1) (answer +1). Hand-computed iterates and averages."""
    lam = 0.5
    s2 = 1.0 / (1.0 + math.exp(-2.0))  # sigmoid(2)
    hyper0 = ar.SGDHyper.make(lam, None, 0.0)
    state = ar.init_sgd(ar.init_params(2))
    one = jnp.ones(1)
    state, _ = _step(state, *_demo([1, -1], True), one, hyper0)
    # step 1 at w = 0: every dloss/dscore = -label/2, and w^(2) = -grad/lam
    np.testing.assert_allclose(state.w.w_first, [1.0, -1.0])
    np.testing.assert_allclose(state.w.stop_x, [-1.0, 1.0])
    np.testing.assert_allclose([state.w.stop_y, state.w.stop_b], [-1.0, -1.0])
    np.testing.assert_allclose(state.w.chain_x, [[-1.0, 1.0]])
    np.testing.assert_allclose(state.w.chain_y, [[-1.0]])
    np.testing.assert_allclose(state.w.chain_p, [[-1.0, 1.0]])
    after_one = state
    state, _ = _step(state, *_demo([-1, -1], False), one, hyper0)
    # step 2: head 1 score 0 -> grad (0.5, 0.5); w^(3) = w^(2)/2 - grad/(2 lam)
    np.testing.assert_allclose(state.w.w_first, [0.0, -1.0], atol=1e-6)
    # stop score -2 with label EOS: dloss/dscore = -sigmoid(2)
    np.testing.assert_allclose(state.w.stop_x, [-0.5 - s2, 0.5 - s2], rtol=1e-6)
    np.testing.assert_allclose(state.w.stop_p, [-0.5 - s2, 0.5 - s2], rtol=1e-6)
    np.testing.assert_allclose([state.w.stop_y, state.w.stop_b], [-0.5 + s2, -0.5 + s2], rtol=1e-6)
    # uniform average of w^(1..2) = w^(2)/2; the chain heads took no step on the short demo
    np.testing.assert_allclose(state.avg.w_first, [0.5, -0.5])
    assert (int(state.t_head), int(state.t_chain)) == (2, 1)
    np.testing.assert_allclose(state.w.chain_x, after_one.w.chain_x)
    np.testing.assert_allclose(state.avg.chain_x, [[0.0, 0.0]])
    # avg_power = 1 weights w^(t) by t: (1 * w^(1) + 2 * w^(2)) / 3
    s1 = _step(ar.init_sgd(ar.init_params(2)), *_demo([1, -1], True), one, ar.SGDHyper.make(lam, None, 1.0))[0]
    s1 = _step(s1, *_demo([-1, -1], False), one, ar.SGDHyper.make(lam, None, 1.0))[0]
    np.testing.assert_allclose(s1.avg.w_first, [2 / 3, -2 / 3], rtol=1e-6)


def test_minibatch_step_averages_gradients_and_chain_heads_use_long_samples_only():
    lam = 0.5
    x = jnp.array([[1, -1], [-1, -1]])
    outs, lens = jax.vmap(parity.targets)(x, jnp.array([True, False]))
    state, _ = _step(ar.init_sgd(ar.init_params(2)), x, outs, lens, jnp.ones(2), ar.SGDHyper.make(lam))
    np.testing.assert_allclose(state.w.w_first, [0.0, -1.0])  # -mean((-0.5, 0.5), (0.5, 0.5)) / lam
    np.testing.assert_allclose(state.w.chain_x, [[-1.0, 1.0]])  # the long demo's gradient alone
    # a weight-0 sample is absent: no step, no counter
    skipped, _ = _step(state, x, outs, lens, jnp.zeros(2), ar.SGDHyper.make(lam))
    assert (int(skipped.t_head), int(skipped.t_chain)) == (1, 1)
    np.testing.assert_allclose(skipped.w.stop_x, state.w.stop_x)


def test_fit_keeps_start_params_of_heads_without_data():
    d = 3
    params = _random_params(d, seed=4)
    x = parity.sample_prompts(jax.random.key(0), d, 8)
    outs, lens = jax.vmap(parity.targets)(x, jnp.zeros(8, bool))  # only short demos kept
    fitted = ar.fit(params, jax.random.key(1), x, outs, lens, jnp.ones(8), ar.SGDHyper.make(1e-2), epochs=1, batch=2)
    np.testing.assert_array_equal(fitted.chain_x, params.chain_x)
    assert not np.allclose(fitted.w_first, params.w_first)


def _np_chain_scores(params, x, y):
    """float64 reference of the chain-head scores from the spec's feature vectors."""
    d = x.shape[1]
    out = np.zeros((x.shape[0], d - 1))
    for l in range(2, d + 1):
        w = np.asarray(ar.head_weights(params, l), np.float64)
        feats = np.concatenate([x, y[:, : l - 1], y[:, l - 2 : l - 1] * x], axis=1)
        out[:, l - 2] = feats @ w
    return out


def test_jitted_batch_log_probs_and_steps_match_a_float64_reference():
    """Regression: XLA:CPU's YNNPACK reduce fusion (jaxlib 0.10.2) miscomputed batched reductions of
    concatenated features (wrong values for the last ~10% of a 4096 batch); check a large jitted batch."""
    d, n, lam = 10, 4096, 1e-2
    params = _random_params(d, seed=5)
    x = parity.sample_prompts(jax.random.key(7), d, n)
    outs, lens = jax.vmap(parity.targets)(x, jnp.ones(n, bool))
    xf = np.asarray(x, np.float64)
    y = np.cumprod(xf, axis=1)
    s_chain = _np_chain_scores(params, xf, y)
    s_first = xf @ np.asarray(params.w_first, np.float64)
    s_stop = (xf @ np.asarray(params.stop_x) + float(params.stop_y) * y[:, 0]
              + y[:, 0] * (xf @ np.asarray(params.stop_p)) + float(params.stop_b))
    log_sig = lambda z: -np.logaddexp(0.0, -z)  # noqa: E731
    want = log_sig(y[:, 0] * s_first) + log_sig(-s_stop) + log_sig(y[:, 1:] * s_chain).sum(axis=1)
    got = jax.jit(jax.vmap(ar.log_prob, (None, 0, 0, 0)))(params, x, outs, lens)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # first step from w^(1) = params: w^(2) = -mean(grad)/lam, grad of chain_x = dloss/ds * x
    new = jax.jit(ar.sgd_step)(ar.init_sgd(params), x, outs, lens, jnp.ones(n), ar.SGDHyper.make(lam))[0]
    dl_ds = -y[:, 1:] / (1.0 + np.exp(y[:, 1:] * s_chain))
    np.testing.assert_allclose(new.w.chain_x, -np.einsum("nh,nd->hd", dl_ds, xf) / n / lam, rtol=1e-4, atol=1e-4)


def test_shape_errors_are_clear():
    params = ar.init_params(3)
    with pytest.raises(ValueError, match="x must be"):
        ar.log_prob(params, jnp.ones(4), jnp.zeros(4, jnp.int32), 1)
    with pytest.raises(ValueError, match="groups"):
        ar.sgd_step(ar.init_sgd(params), jnp.ones((1, 3)), jnp.zeros((1, 4), jnp.int32), jnp.ones(1, jnp.int32),
                    jnp.ones(1), ar.SGDHyper.make(1.0), groups=("heads",))
    with pytest.raises(ValueError, match="d >= 2"):
        ar.init_params(1)


def test_evaluate_gives_the_exact_probabilities_of_the_uniform_model():
    """Zero weights: every head is a fair coin, so P(y_1 = x_1) = P(EOS | y_1) = 1/2, the correct short
    answer has probability 1/4 and the correct chain (y_1, no EOS, y_2..y_d) 2^-(d+1), on any prompts."""
    d = 4
    x_MxD = parity.sample_prompts(jax.random.key(0), d, 64)
    met = jax.jit(alt.evaluate)(ar.init_params(d), jax.random.key(1), x_MxD)
    assert set(met) == set(alt.EVAL_METRICS)
    np.testing.assert_allclose([met["p_first_x1"], met["p_eos_x1"], met["pi_short_correct"], met["pi_long_correct"]],
                               [0.5, 0.5, 0.25, 0.5 ** (d + 1)], rtol=1e-6)
    for k in ("sampled_long", "sampled_long_correct", "sampled_short_correct"):
        assert 0.0 <= float(met[k]) <= 1.0
