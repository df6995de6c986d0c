"""KV-cache sampling against full forward passes, exact softmax frequencies and EOS bookkeeping."""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.core.config import ConfigError
from theoryrl.models import transformer as tfm
from theoryrl.rl import sampling as smp

SPEC = tfm.TransformerSpec(vocab_size=11, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, max_len=24)
EOS, PAD = 1, 0
# left-padded prompts of real lengths 5, 3 and 1
PROMPTS = jnp.array([[4, 7, 2, 9, 5], [0, 0, 3, 3, 8], [0, 0, 0, 0, 6]], jnp.int32)
PROMPT_MASK = jnp.array([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1]], bool)
# Most tests reuse these two compiled samplers (temperature and top_p are traced): P=3, G=4, T=8.
SAMPLER = smp.SamplerSpec(max_new_tokens=8, eos_id=EOS, pad_id=PAD)
GREEDY = dataclasses.replace(SAMPLER, greedy=True)
G = 4


def _random_params(spec, seed, std=0.5):
    """numpy draws into the abstract param tree (compiling jax RNG programs is slow on CPU)."""
    leaves, treedef = jax.tree.flatten(jax.eval_shape(lambda k: tfm.init_params(spec, k), jax.random.key(0)))
    rng = np.random.default_rng(seed)
    return jax.tree.unflatten(treedef, [jnp.asarray(std * rng.standard_normal(leaf.shape) + (leaf.ndim == 1),
                                                    jnp.float32) for leaf in leaves])


PARAMS = _random_params(SPEC, 0)


@functools.partial(jax.jit, static_argnames=("num_samples", "sampler"))
def _sample(params, prompts, mask, key, temperature, top_p, *, num_samples, sampler):
    return smp.sample(SPEC, params, prompts, mask, key, num_samples, sampler, temperature=temperature, top_p=top_p)


@jax.jit
def _recompute(params, prompts, mask, rollout, temperature):
    tokens, kv_mask, positions, response_mask = smp.full_sequences(prompts, mask, rollout)
    logp, _, _ = tfm.token_logprobs(SPEC, params, tokens, positions_BxT=positions, kv_mask_BxT=kv_mask,
                                    temperature=temperature)
    logits = tfm.forward(SPEC, params, tokens, positions_BxT=positions, kv_mask_BxT=kv_mask).logits_BxTxV
    return logp * response_mask, logits


def test_kv_cache_logprobs_equal_one_full_forward_under_a_temperature_vmap():
    # temperature is traced: one program, vmapped over the temperatures an RL sweep would use
    temperatures = jnp.array([1.0, 0.7])
    sweep = jax.jit(jax.vmap(lambda tau: smp.sample(SPEC, PARAMS, PROMPTS, PROMPT_MASK, jax.random.key(1), G, SAMPLER,
                                                    temperature=tau)))
    rollouts = sweep(temperatures)
    for i, tau in enumerate(temperatures):
        rollout = jax.tree.map(lambda x: x[i], rollouts)
        masked_logp, _ = _recompute(PARAMS, PROMPTS, PROMPT_MASK, rollout, tau)
        got = smp.response_part(masked_logp, PROMPTS.shape[1], PROMPTS.shape[0])
        assert float(jnp.sum(rollout.mask_PxGxT)) > 40  # most of the 96 response slots are compared
        np.testing.assert_allclose(got, rollout.logp_PxGxT, atol=2e-5)


def test_greedy_is_the_argmax_of_a_full_forward_at_every_step():
    rollout = _sample(PARAMS, PROMPTS, PROMPT_MASK, jax.random.key(2), 1.0, 1.0, num_samples=G, sampler=GREEDY)
    logp_full, logits = _recompute(PARAMS, PROMPTS, PROMPT_MASK, rollout, 1.0)
    length = PROMPTS.shape[1]
    argmax = np.asarray(jnp.argmax(logits[:, length - 1:-1], axis=-1)).reshape(3, G, 8)
    mask = np.asarray(rollout.mask_PxGxT) > 0
    assert mask.sum() > 40
    np.testing.assert_array_equal(np.asarray(rollout.tokens_PxGxT)[mask], argmax[mask])
    # greedy's logp is the temperature-1 log-prob of the chosen token
    np.testing.assert_allclose(smp.response_part(logp_full, length, 3), rollout.logp_PxGxT, atol=2e-5)
    # a tiny nucleus leaves only the top token: sampling (any temperature) equals greedy, with log-prob 0
    narrow = _sample(PARAMS, PROMPTS, PROMPT_MASK, jax.random.key(3), 1.3, 1e-6, num_samples=G, sampler=SAMPLER)
    np.testing.assert_array_equal(narrow.tokens_PxGxT, rollout.tokens_PxGxT)
    np.testing.assert_array_equal(narrow.logp_PxGxT, np.zeros((3, G, 8)))


def _expected_probs(logits, temperature, top_p):
    """The sampling distribution by hand: softmax(logits / T), cut to the nucleus, renormalised."""
    z = np.asarray(logits, np.float64) / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    order = np.argsort(-p)
    keep = np.zeros_like(p, bool)
    mass = 0.0
    for i in order:
        keep[i] = True
        mass += p[i]
        if mass >= top_p:
            break
    q = np.where(keep, p, 0.0)
    return q / q.sum()


@pytest.mark.parametrize("temperature,top_p", [(0.8, 1.0), (1.5, 0.6)])
def test_one_step_frequencies_match_the_sampling_distribution(temperature, top_p):
    sampler = smp.SamplerSpec(max_new_tokens=1, eos_id=EOS, pad_id=PAD)
    draws = 8000
    rollout = _sample(PARAMS, PROMPTS[1:2], PROMPT_MASK[1:2], jax.random.key(4), temperature, top_p,
                      num_samples=draws, sampler=sampler)
    unpadded = PROMPTS[1:2, 2:]
    logits = jax.jit(tfm.forward, static_argnums=0)(SPEC, PARAMS, unpadded).logits_BxTxV[0, -1]
    expected = _expected_probs(logits, temperature, top_p)
    counts = np.bincount(np.asarray(rollout.tokens_PxGxT).ravel(), minlength=SPEC.vocab_size)
    support = expected > 0
    assert np.all(counts[~support] == 0)
    chi2 = np.sum((counts[support] - draws * expected[support]) ** 2 / (draws * expected[support]))
    assert chi2 < 30.0, (chi2, counts, draws * expected)  # dof <= 10: p-value ~1e-3
    logp = np.asarray(rollout.logp_PxGxT).ravel()
    np.testing.assert_allclose(logp, np.log(expected[np.asarray(rollout.tokens_PxGxT).ravel()]), atol=1e-5)


def test_eos_masking_and_lengths():
    # at temperature 5 every token, EOS included, has probability near 1/11: about half the rows finish
    rollout = _sample(PARAMS, PROMPTS, PROMPT_MASK, jax.random.key(6), 5.0, 1.0, num_samples=G, sampler=SAMPLER)
    tokens, mask = np.asarray(rollout.tokens_PxGxT), np.asarray(rollout.mask_PxGxT)
    finished, length = np.asarray(rollout.finished_PxG), np.asarray(rollout.length_PxG)
    logp = np.asarray(rollout.logp_PxGxT)
    assert finished.any() and not finished.all()
    for p in range(3):
        for g in range(G):
            eos_at = np.flatnonzero(tokens[p, g] == EOS)
            n_valid = eos_at[0] + 1 if eos_at.size else 8
            assert length[p, g] == n_valid and finished[p, g] == bool(eos_at.size)
            np.testing.assert_array_equal(mask[p, g], np.arange(8) < n_valid)
            assert np.all(tokens[p, g, n_valid:] == PAD) and np.all(logp[p, g, n_valid:] == 0.0)
            assert np.all(logp[p, g, :n_valid] < 0.0)


def test_groups_tile_prompts_without_mixing_them():
    greedy = _sample(PARAMS, PROMPTS, PROMPT_MASK, jax.random.key(7), 1.0, 1.0, num_samples=G, sampler=GREEDY)
    perm = np.array([2, 0, 1])  # permuting the prompts permutes their groups, nothing else
    permuted = _sample(PARAMS, PROMPTS[perm], PROMPT_MASK[perm], jax.random.key(7), 1.0, 1.0, num_samples=G,
                       sampler=GREEDY)
    np.testing.assert_array_equal(permuted.tokens_PxGxT, np.asarray(greedy.tokens_PxGxT)[perm])
    assert len({tuple(r) for r in np.asarray(greedy.tokens_PxGxT[:, 0])}) == 3  # prompts do matter
    sampled = _sample(PARAMS, PROMPTS, PROMPT_MASK, jax.random.key(8), 1.0, 1.0, num_samples=G, sampler=SAMPLER)
    for p in range(3):  # the G samples of one prompt differ from each other
        assert len({tuple(r) for r in np.asarray(sampled.tokens_PxGxT[p])}) == G


def test_bad_inputs_raise_before_compute():
    with pytest.raises(ConfigError, match="'max_new_tokens'"):
        smp.SamplerSpec(max_new_tokens=0, eos_id=1, pad_id=0).validate()
    sampler = smp.SamplerSpec(max_new_tokens=20, eos_id=EOS, pad_id=PAD)
    with pytest.raises(ValueError, match="max_len"):
        smp.sample(SPEC, PARAMS, PROMPTS, PROMPT_MASK, jax.random.key(0), 2, sampler)
    with pytest.raises(ValueError, match="temperature"):
        smp.sample(SPEC, PARAMS, PROMPTS, PROMPT_MASK, jax.random.key(0), 2, sampler, temperature=0.0)
    with pytest.raises(ValueError, match="rank 2"):
        smp.sample(SPEC, PARAMS, PROMPTS[0], None, jax.random.key(0), 2, sampler)


def test_top_p_nucleus_sort_path_equals_pairwise_path_and_hand_values(monkeypatch):
    """The two nucleus implementations (pairwise for small vocabularies, sort above) agree, ties
    included, and keep the fewest most-likely tokens whose mass reaches top_p."""
    probs = np.array([[0.4, 0.3, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25], [0.05, 0.05, 0.6, 0.3]], np.float32)
    logits = jnp.log(jnp.asarray(probs))
    # by hand: mass before each token in decreasing order; a token is kept while that mass < top_p
    expected = {0.5: [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0]],
                0.65: [[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1]],
                1.0: [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]}
    ties_logits = jax.random.normal(jax.random.key(3), (64, 9)).round(1)  # many exact ties
    for top_p, keep in expected.items():
        pairwise = np.asarray(smp.top_p_keep(logits, top_p))
        monkeypatch.setattr(smp, "_PAIRWISE_MAX_VOCAB", 0)
        sorted_path = np.asarray(smp.top_p_keep(logits, top_p))
        tie_sorted = np.asarray(smp.top_p_keep(ties_logits, top_p))
        monkeypatch.setattr(smp, "_PAIRWISE_MAX_VOCAB", 128)
        tie_pairwise = np.asarray(smp.top_p_keep(ties_logits, top_p))
        np.testing.assert_array_equal(pairwise.astype(int), np.array(keep))
        np.testing.assert_array_equal(sorted_path, pairwise)
        np.testing.assert_array_equal(tie_sorted, tie_pairwise)


def test_token_shift_decoder_samples_with_logprobs_equal_to_a_full_forward():
    """The token-shift cache (each layer's last normed input) makes decode equal the full pass."""
    spec = dataclasses.replace(SPEC, token_shift=2)
    params = _random_params(spec, 3)

    @jax.jit
    def sample_and_recompute(params):
        rollout = smp.sample(spec, params, PROMPTS, PROMPT_MASK, jax.random.key(2), G, SAMPLER, temperature=0.8)
        tokens, kv_mask, positions, response_mask = smp.full_sequences(PROMPTS, PROMPT_MASK, rollout)
        logp, _, _ = tfm.token_logprobs(spec, params, tokens, positions_BxT=positions, kv_mask_BxT=kv_mask,
                                        temperature=0.8)
        return rollout, smp.response_part(logp * response_mask, PROMPTS.shape[1], PROMPTS.shape[0])

    rollout, recomputed = sample_and_recompute(params)
    assert float(jnp.sum(rollout.mask_PxGxT)) > 3 * G  # several tokens per row were sampled
    np.testing.assert_allclose(rollout.logp_PxGxT * rollout.mask_PxGxT, recomputed, atol=2e-5)


@pytest.mark.parametrize("block", [3, 8])  # 3 does not divide T = 8: blocks of 3, 3, 2
def test_cache_blocks_sample_the_same_tokens_with_logprobs_of_a_full_forward(block):
    key = jax.random.key(7)
    blocked = _sample(PARAMS, PROMPTS, PROMPT_MASK, key, 1.0, 1.0, num_samples=G,
                      sampler=dataclasses.replace(SAMPLER, cache_block=block))
    whole = _sample(PARAMS, PROMPTS, PROMPT_MASK, key, 1.0, 1.0, num_samples=G, sampler=SAMPLER)
    np.testing.assert_array_equal(blocked.tokens_PxGxT, whole.tokens_PxGxT)  # same keys, same distributions
    np.testing.assert_array_equal(blocked.mask_PxGxT, whole.mask_PxGxT)
    masked_logp, _ = _recompute(PARAMS, PROMPTS, PROMPT_MASK, blocked, 1.0)
    np.testing.assert_allclose(smp.response_part(masked_logp, PROMPTS.shape[1], PROMPTS.shape[0]),
                               blocked.logp_PxGxT, atol=2e-5)


def test_grow_cache_keeps_the_filled_slots_and_adds_empty_ones():
    _, cache = tfm.prefill(SPEC, PARAMS, PROMPTS, PROMPT_MASK, tfm.init_cache(SPEC, 3, 5))
    grown = tfm.grow_cache(cache, 9)
    np.testing.assert_array_equal(grown.valid_BxS[:, :5], PROMPT_MASK)
    assert not bool(jnp.any(grown.valid_BxS[:, 5:]))
    for old, new in zip(cache.keys_BxGxSxK + cache.values_BxGxSxK, grown.keys_BxGxSxK + grown.values_BxGxSxK):
        assert new.shape == (3, SPEC.n_kv_heads, 9, SPEC.head_dim)
        np.testing.assert_array_equal(new[:, :, :5], old)
    with pytest.raises(ValueError, match="cannot grow"):
        tfm.grow_cache(cache, 4)


@pytest.mark.parametrize("block", [0, 3])
@pytest.mark.parametrize("temperature,top_p", [(0.7, 1.0), (1.3, 0.8)])
def test_shared_prefix_sampling_equals_plain_sampling_of_repeated_prompts(temperature, top_p, block):
    """`sample` prefills each prompt once and tiles its cache G times; "plain" sampling repeats each
    prompt G times (row p*G + g = prompt p, the same layout) and prefills all P*G rows, one sample
    each. The two must agree draw for draw: step j's key is fold_in(key, j) in both (it depends on
    the step, not on the prompt batch), `categorical` draws one Gumbel vector per row of the same
    [P*G, V] logits layout, and a tiled row's cache and logits are those of its prompt's own
    prefill. So the same tokens, masks and lengths (exactly) and log-probs (to float rounding of the
    differently batched prefill): independent evidence that tiling the cache changes neither the
    distribution nor the draws. Left-padded prompts of real lengths 5, 3, 1; with and without
    cache blocks (3 does not divide T = 8)."""
    sampler = dataclasses.replace(SAMPLER, cache_block=block)
    key = jax.random.key(9)
    shared = _sample(PARAMS, PROMPTS, PROMPT_MASK, key, temperature, top_p, num_samples=G, sampler=sampler)
    plain = _sample(PARAMS, jnp.repeat(PROMPTS, G, axis=0), jnp.repeat(PROMPT_MASK, G, axis=0), key,
                    temperature, top_p, num_samples=1, sampler=sampler)
    p, t = PROMPTS.shape[0], SAMPLER.max_new_tokens
    plain = jax.tree.map(lambda x: x.reshape(p, G, *x.shape[2:]), plain)  # [P*G, 1, ...] -> [P, G, ...]
    assert plain.tokens_PxGxT.shape == shared.tokens_PxGxT.shape == (p, G, t)
    np.testing.assert_array_equal(shared.tokens_PxGxT, plain.tokens_PxGxT)
    np.testing.assert_array_equal(shared.mask_PxGxT, plain.mask_PxGxT)
    np.testing.assert_array_equal(shared.length_PxG, plain.length_PxG)
    np.testing.assert_array_equal(shared.finished_PxG, plain.finished_PxG)
    np.testing.assert_allclose(shared.logp_PxGxT, plain.logp_PxGxT, atol=1e-5, rtol=0)
    # the comparison is not vacuous: many sampled tokens, and the G samples of a prompt differ
    assert float(jnp.sum(shared.mask_PxGxT)) > 40
    assert all(len({tuple(r) for r in np.asarray(shared.tokens_PxGxT[i])}) > 1 for i in range(p))
