import dataclasses
import itertools
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.models import ar_linear as ar
from theoryrl.rl import star
from theoryrl.tasks import parity
from theoryrl.theory import parity as th

EOS, PAD = parity.EOS, parity.PAD


def _out(bits, d):
    return jnp.array(list(bits) + [EOS] + [PAD] * (d - len(bits)), jnp.int32)


# ----------------------------------------------------------------------------------------------
# task


def test_chains_and_targets_by_hand():
    x = jnp.array([1, -1, -1, 1, 1])
    assert parity.chain(x).tolist() == [1, -1, 1, 1, 1]
    assert parity.chain(x, leap=2).tolist() == [-1, 1, 1]  # x1x2, x1..x4, then prod(x) (d odd)
    assert parity.chain(x[:4], leap=2).tolist() == [-1, 1]
    out, length = parity.targets(x, True)
    assert out.tolist() == [1, -1, 1, 1, 1, EOS] and int(length) == 5
    out, length = parity.targets(x, False)
    assert out.tolist() == [1, EOS, PAD, PAD, PAD, PAD] and int(length) == 1
    out, length = parity.targets(x, True, leap=2)
    assert out.tolist() == [-1, 1, 1, EOS, PAD, PAD] and int(length) == 3


def test_rewards_on_hand_made_outputs():
    x = jnp.array([1, -1, -1, 1])  # chain (1, -1, 1, 1), parity +1
    d = 4
    cases = [  # (output bits, r_cot, r_e2e)
        ([1, -1, 1, 1], 1, 1),  # the correct chain
        ([1], 1, 1),  # the correct short answer
        ([-1], 0, 0),  # a wrong short answer
        ([1, 1, -1, 1], 0, 1),  # wrong chain, right last bit: only r_e2e
        ([1, -1, 1, -1], 0, 0),  # wrong last bit
        ([1, -1, 1], 0, 1),  # truncated chain ending in the parity
        ([-1, 1, 1], 0, 1),  # a 3-bit output ending in the parity
    ]
    for bits, want_cot, want_e2e in cases:
        out = _out(bits, d)
        assert float(parity.r_cot(x, out, len(bits))) == want_cot, bits
        assert float(parity.r_e2e(x, out, len(bits))) == want_e2e, bits
    no_eos = jnp.array([1, -1, 1, 1, 1])
    assert float(parity.r_cot(x, no_eos, 5)) == 0 and float(parity.r_e2e(x, no_eos, 5)) == 0
    leap2 = _out([-1, 1], d)  # x1x2, x1..x4
    assert float(parity.r_cot(x, leap2, 2, leap=2)) == 1 and float(parity.r_cot(x, leap2, 2)) == 0
    batch = parity.rewards("cot", jnp.stack([x, x]), jnp.stack([_out([1], d), _out([-1], d)]), jnp.array([1, 1]))
    assert batch.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="reward kind"):
        parity.rewards("exact", jnp.stack([x]), jnp.stack([_out([1], d)]), jnp.array([1]))


def test_exact_data_distribution_gives_the_threshold_algebra():
    """Enumerate all x and Z (long or short) of D(p) for d = 5: P(y1 = x1) = (1+p)/2 and
    P(EOS | y1 = x1) = (1-p)/(1+p); the calibrated first head has zero population gradient."""
    d, p = 5, 0.3
    xs = jnp.array(list(itertools.product((1, -1), repeat=d)))
    first, eos_given, grad = 0.0, 0.0, np.zeros(d)
    w1 = jnp.zeros(d).at[0].set(th.first_head_weight(p))
    params = dataclasses.replace(ar.init_params(d), w_first=w1)
    for is_long, weight in ((True, p), (False, 1 - p)):
        outs, lens = jax.vmap(partial(parity.targets, is_long=is_long))(xs)
        y1_is_x1 = np.asarray(outs[:, 0] == xs[:, 0])
        first += weight * y1_is_x1.mean()
        eos_given += weight * (not is_long) * y1_is_x1.mean()
        grads = jax.vmap(ar.example_grads, (None, 0, 0, 0))(params, xs, outs, lens)[0]
        grad += weight * np.asarray(grads.w_first).mean(axis=0)
    assert math.isclose(first, th.p_first_is_x1(p), rel_tol=1e-12)
    assert math.isclose(eos_given / first, th.p_eos_given_first_x1(p), rel_tol=1e-12)
    np.testing.assert_allclose(grad, 0.0, atol=1e-6)  # Lemma 1: ln((1+p)/(1-p)) on x1 is optimal
    # the calibrated head puts P(y1 = x1 | x) = (1+p)/2 on every input
    np.testing.assert_allclose(jax.nn.sigmoid(xs[:, 0] * (xs @ w1)), (1 + p) / 2, rtol=1e-6)


def test_sampler_frequencies_match_the_mixture():
    n, d, p = 40000, 6, 0.3
    b = parity.sample(jax.random.key(0), d, p, n)
    is_long = np.asarray(b.is_long)
    y1_is_x1 = np.asarray(b.outputs[:, 0] == b.x[:, 0])
    eos = np.asarray(b.length == 1)

    def close(freq, want, count):
        assert abs(freq - want) <= 5 * math.sqrt(want * (1 - want) / count)

    close(is_long.mean(), p, n)
    close(y1_is_x1.mean(), th.p_first_is_x1(p), n)
    close(eos[y1_is_x1].mean(), th.p_eos_given_first_x1(p), int(y1_is_x1.sum()))
    assert np.all(parity.rewards("cot", b.x, b.outputs, b.length) == 1)  # demonstrations are correct
    assert np.all(np.asarray(b.length)[is_long] == d)


def test_token_encoding_and_decoding_round_trip():
    x = jnp.array([[1, -1, 1], [-1, -1, 1]])
    P, M, B, S, E = parity.PLUS_TOKEN, parity.MINUS_TOKEN, parity.BOS_TOKEN, parity.SEP_TOKEN, parity.EOS_TOKEN
    assert parity.encode_prompts(x).tolist() == [[B, P, M, P, S], [B, M, M, P, S]]
    tokens, mask = parity.encode_demos(x, jnp.array([True, False]))
    assert tokens.tolist() == [[B, P, M, P, S, P, M, M, E], [B, M, M, P, S, P, E, 0, 0]]
    assert mask.tolist() == [[0] * 5 + [1] * 4, [0] * 5 + [1, 1, 0, 0]]
    _, mask_in = parity.encode_demos(x, jnp.array([True, False]), include_inputs=True)
    assert mask_in[1].tolist() == [0, 1, 1, 1, 1, 1, 1, 0, 0]
    codes, length = parity.decode_outputs(tokens[:, 5:], mask[:, 5:])
    want = jax.vmap(parity.targets)(x, jnp.array([True, False]))
    assert codes.tolist() == want[0].tolist() and length.tolist() == want[1].tolist()
    # no EOS: length = R, rewards 0; a non-output token decodes as BAD; everything after EOS is PAD
    codes, length = parity.decode_outputs(jnp.array([[P, M, P, P], [P, S, E, P]]), jnp.ones((2, 4)))
    assert length.tolist() == [4, 2] and codes[1].tolist() == [1, parity.BAD, EOS, PAD]
    assert parity.rewards("e2e", jnp.array([[1, -1, 1], [1, -1, 1]]), codes, length).tolist() == [0.0, 0.0]


# ----------------------------------------------------------------------------------------------
# theory


def test_star_recursion_closed_form_and_round_table():
    for p0 in (0.25, 0.1, 0.01, 0.001, 0.37):
        p = p0
        for n in range(12):
            assert math.isclose(p, th.star_closed_form(p0, n), rel_tol=1e-12)
            assert (p > 1 / 3) == (n >= th.star_rounds(p0))  # the switch round is the first p_n > 1/3
            p = th.star_step(p)
    assert [th.star_rounds(p) for p in (0.25, 0.1, 0.01, 0.001)] == [1, 3, 6, 9]  # spec §4 table
    assert [th.star_rounds_log2(p) for p in (0.25, 0.1, 0.01, 0.001)] == [1, 3, 6, 9]
    # (1-p0)/(2p0) an exact power of two: p_k = 1/3 is a tie, one more round than ceil(log2)
    assert (th.star_rounds(0.2), th.star_rounds_log2(0.2)) == (2, 1)
    assert th.star_rounds(0.5) == 0 and not th.greedy_goes_long(1 / 3) and th.greedy_goes_long(0.34)


def test_calibrated_star_standard_error_matches_simulation():
    """Binomial simulation of calibrated STaR rounds (numpy) against the delta-method SE."""
    rng = np.random.default_rng(0)
    p0, n, rounds, reps = 0.1, 8192, 4, 4000
    q = np.full(reps, p0)
    for _ in range(rounds):
        long_kept = rng.binomial(n, q)
        short_kept = rng.binomial(n - long_kept, 0.5)
        q = long_kept / (long_kept + short_kept)
    se = th.star_long_fraction_se(p0, rounds, n)
    assert abs(q.mean() - th.star_closed_form(p0, rounds)) < 3 * se[-1] / math.sqrt(reps) + 1e-3
    assert 0.9 < q.std() / se[-1] < 1.1


def test_calibrated_sampler_and_chain_head_weight():
    d, n, q = 6, 40000, 0.2
    x = parity.sample_prompts(jax.random.key(1), d, n)
    outs, lens = jax.vmap(th.calibrated_decode, (0, 0, None))(jax.random.split(jax.random.key(2), n), x, q)
    r = np.asarray(parity.rewards("cot", x, outs, lens))
    long = np.asarray(lens == d)
    assert np.all(r[long] == 1)  # its long outputs are always the correct chain
    for freq, want in ((long.mean(), q), ((r * ~long).mean(), (1 - q) / 2)):
        assert abs(freq - want) <= 5 * math.sqrt(want * (1 - want) / n)
    g_out, g_len = jax.vmap(th.calibrated_greedy, (0, None))(x[:4], 0.34)
    assert np.all(np.asarray(g_len) == d)
    assert np.all(np.asarray(jax.vmap(th.calibrated_greedy, (0, None))(x[:4], 1 / 3)[1]) == 1)
    w = th.chain_head_weight(1e-3)
    assert math.isclose(1 / (1 + math.exp(w)), 1e-3 * w, rel_tol=1e-9) and 5.2 < w < 5.3
    assert math.isclose(th.long_correct_factor(1e-3, 50), (1 / (1 + math.exp(-w))) ** 49)


# ----------------------------------------------------------------------------------------------
# STaR and policy gradients


def test_star_round_keeps_exactly_the_rewarded_pairs():
    seen = {}

    def fit_fn(params, key, prompts, outputs, length, keep):
        seen["keep"] = keep
        return params + jnp.sum(keep)

    new, ro = star.star_round(jnp.float32(0.0), jax.random.key(0),
                              prompt_fn=lambda k: jnp.arange(6.0),
                              sample_fn=lambda p, k, x: (x * 2, jnp.ones(6, jnp.int32)),
                              reward_fn=lambda x, o, l: (o > 5).astype(jnp.float32), fit_fn=fit_fn)
    assert seen["keep"].tolist() == [0, 0, 0, 1, 1, 1] and float(new) == 3.0
    assert ro.reward.tolist() == ro.keep.tolist()


def test_pg_surrogate_gradient_is_the_exact_policy_gradient():
    """Enumerate every output of a tiny AR-linear policy: with weights A_i = M pi(y_i) r(y_i) the
    surrogate's negative gradient equals grad_theta sum_y pi(y|x) r(y) (here r = r_cot)."""
    d = 3
    keys = jax.random.split(jax.random.key(3), 8)
    shapes = [(d,), (d,), (), (d,), (), (d - 1, d), (d - 1, d - 1), (d - 1, d)]
    params = ar.ARParams(*[jax.random.normal(k, s) for k, s in zip(keys, shapes)])
    x = jnp.array([1, -1, -1])
    outs = [_out([b], d) for b in (1, -1)] + [_out(list(bs), d) for bs in itertools.product((1, -1), repeat=d)]
    lens = jnp.array([1, 1] + [d] * 2 ** d)
    outs = jnp.stack(outs)
    xs = jnp.broadcast_to(x, (len(outs), d))
    r = parity.rewards("cot", xs, outs, lens)
    log_prob = jax.vmap(ar.log_prob, (None, 0, 0, 0))

    @jax.jit
    def both(p):
        weights = len(outs) * jnp.exp(log_prob(p, xs, outs, lens)) * r
        exact = jax.grad(lambda q: jnp.sum(jnp.exp(log_prob(q, xs, outs, lens)) * r))(p)
        surrogate, grads = jax.value_and_grad(star.pg_surrogate)(p, log_prob, xs, outs, lens, weights)
        return surrogate, grads, exact

    surrogate, grads, exact = both(params)
    for g, e in zip(jax.tree.leaves(grads), jax.tree.leaves(exact)):
        np.testing.assert_allclose(-np.asarray(g), e, rtol=1e-4, atol=1e-6)
    assert np.isfinite(float(surrogate))


def test_policy_gradient_uses_groups_of_g_samples_per_prompt():
    d, num_prompts, group = 3, 4, 8
    calls = star.ar_linear_callables(d, "cot", num_prompts, 1.0, ar.SGDHyper.make(1e-3))
    params = ar.init_params(d)
    pg = jax.jit(partial(star.policy_gradient, prompt_fn=calls["prompt_fn"], sample_fn=calls["sample_fn"],
                         reward_fn=calls["reward_fn"], log_prob_fn=calls["log_prob_fn"],
                         advantage_fn=partial(star.pg_advantages, "grpo"), group=group))
    grads, ro, adv = pg(params, jax.random.key(0))
    prompts = np.asarray(ro.prompts).reshape(num_prompts, group, d)
    assert np.all(prompts == prompts[:, :1])  # row p*G + g is sample g of prompt p
    adv_PxG = np.asarray(adv).reshape(num_prompts, group)
    np.testing.assert_allclose(adv_PxG.mean(axis=1), 0.0, atol=1e-5)  # GRPO centres each group
    assert jax.tree.structure(grads) == jax.tree.structure(params)
