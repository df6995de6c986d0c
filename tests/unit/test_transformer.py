"""The small decoder against an independent float64 numpy implementation, and its KV cache.

The numpy reference loops over batch rows, heads and positions (RoPE as explicit 2x2 rotations
of the pairs (i, i + K/2), attention only over allowed keys), so it shares no code with the model.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from theoryrl.core.config import ConfigError
from theoryrl.models import transformer as tfm

SPEC = tfm.TransformerSpec(vocab_size=13, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, max_len=16,
                           value_head=True)
SHIFT_SPEC = tfm.TransformerSpec(vocab_size=13, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, max_len=16,
                                 value_head=True, token_shift=3)
NOPE_SPEC = tfm.TransformerSpec(vocab_size=13, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, max_len=16,
                                value_head=True, token_shift=2, rope=False)


# jitted: eager op-by-op dispatch would dominate these tests' run time
forward = jax.jit(tfm.forward, static_argnums=0)


def _random_params(spec, seed, std=0.4):
    """Every leaf random (norm scales too), so a wrong scale or a dropped term shows.

    Drawn with numpy into the abstract param tree: compiling jax RNG programs is slow on CPU.
    """
    leaves, treedef = jax.tree.flatten(jax.eval_shape(lambda k: tfm.init_params(spec, k), jax.random.key(0)))
    rng = np.random.default_rng(seed)
    return jax.tree.unflatten(treedef, [jnp.asarray(std * rng.standard_normal(leaf.shape) + (leaf.ndim == 1),
                                                    jnp.float32) for leaf in leaves])


def _rms(x, scale, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * scale


def _rotate(vec, pos, theta):
    half = vec.shape[0] // 2
    out = vec.copy()
    for i in range(half):
        angle = pos * theta ** (-2.0 * i / vec.shape[0])
        c, s = np.cos(angle), np.sin(angle)
        out[i], out[i + half] = c * vec[i] - s * vec[i + half], s * vec[i] + c * vec[i + half]
    return out


def _np_attention(spec, layer, h, positions, kv_mask):
    t_len, k_dim = h.shape[0], spec.head_dim
    out = np.zeros((t_len, spec.d_model))
    for head in range(spec.n_heads):
        group = head // (spec.n_heads // spec.n_kv_heads)
        q = h @ layer["wq"][:, head, :]
        k = h @ layer["wk"][:, group, :]
        v = h @ layer["wv"][:, group, :]
        if spec.rope:
            q = np.stack([_rotate(q[t], positions[t], spec.rope_theta) for t in range(t_len)])
            k = np.stack([_rotate(k[t], positions[t], spec.rope_theta) for t in range(t_len)])
        for t in range(t_len):
            allowed = [s for s in range(t + 1) if kv_mask[s]]
            if not allowed:
                continue  # a pad query: the model's output there is unspecified
            scores = np.array([q[t] @ k[s] for s in allowed]) / np.sqrt(k_dim)
            w = np.exp(scores - scores.max())
            w /= w.sum()
            out[t] += (w @ v[allowed]) @ layer["wo"][head]
    return out


def _np_forward(spec, params, tokens, positions, kv_mask):
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), nnx.to_pure_dict(params))
    logits, values = [], []
    for b in range(tokens.shape[0]):
        x = p["embed"][tokens[b]]
        for layer in p["blocks"].values():
            h = _rms(x, layer["attn_norm"]["scale"], spec.norm_eps)
            mixed = h.copy()
            for j in range(1, spec.token_shift + 1):  # + a_j * (normed input j slots back, 0 if padding)
                for t in range(j, len(h)):
                    if kv_mask[b][t - j]:
                        mixed[t] += layer["shift"][j - 1] * h[t - j]
            h = mixed
            x = x + _np_attention(spec, layer, h, positions[b], kv_mask[b])
            h = _rms(x, layer["mlp_norm"]["scale"], spec.norm_eps)
            gate = h @ layer["w_gate"]
            x = x + (gate / (1.0 + np.exp(-gate)) * (h @ layer["w_up"])) @ layer["w_down"]
        h = _rms(x, p["final_norm"]["scale"], spec.norm_eps)
        logits.append(h @ p["embed"].T)
        values.append(h @ p["value_w"] + p["value_b"])
    return np.stack(logits), np.stack(values)


@pytest.mark.parametrize("spec", [
    SPEC,
    SHIFT_SPEC,
    tfm.TransformerSpec(vocab_size=7, d_model=24, n_layers=3, n_heads=6, n_kv_heads=1, d_ff=40),
    tfm.TransformerSpec(vocab_size=50, d_model=128),
])
def test_num_params_counts_every_leaf(spec):
    params = jax.eval_shape(lambda k: tfm.init_params(spec, k), jax.random.key(0))
    assert sum(leaf.size for leaf in jax.tree.leaves(params)) == spec.num_params()


def test_default_ffn_width_is_a_multiple_of_32_near_8_thirds_d():
    assert tfm.TransformerSpec(vocab_size=8, d_model=128).ffn_dim == 352  # 8/3 * 128 = 341.3
    assert tfm.TransformerSpec(vocab_size=8, d_model=256).ffn_dim == 672  # 682.7
    assert tfm.TransformerSpec(vocab_size=8, d_model=16).ffn_dim == 32


@pytest.mark.parametrize("knob,kwargs", [
    ("n_kv_heads", dict(n_heads=4, n_kv_heads=3)),
    ("n_heads", dict(d_model=16, n_heads=3)),
    ("d_model", dict(d_model=12, n_heads=4)),  # head_dim 3 is odd
    ("vocab_size", dict(vocab_size=1)),
])
def test_validate_names_the_knob(knob, kwargs):
    spec = tfm.TransformerSpec(**{"vocab_size": 8, **kwargs})
    with pytest.raises(ConfigError, match=f"'{knob}'"):
        spec.validate()


@pytest.mark.parametrize("spec", [SPEC, SHIFT_SPEC, NOPE_SPEC], ids=["plain", "token_shift", "nope"])
def test_forward_matches_numpy_reference_with_left_padding(spec):
    params = _random_params(spec, 0)
    tokens = np.array([[0, 0, 3, 5, 7, 1, 12, 2], [4, 9, 9, 2, 11, 0, 6, 8]], np.int32)
    kv_mask = np.array([[0, 0, 1, 1, 1, 1, 1, 1], [1] * 8], bool)
    positions = np.asarray(tfm.mask_positions(jnp.asarray(kv_mask)))
    np.testing.assert_array_equal(positions[0], [0, 0, 0, 1, 2, 3, 4, 5])
    out = forward(spec, params, tokens, kv_mask_BxT=kv_mask, positions_BxT=positions)
    ref_logits, ref_values = _np_forward(spec, params, tokens, positions, kv_mask)
    real = kv_mask
    np.testing.assert_allclose(np.asarray(out.logits_BxTxV)[real], ref_logits[real], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(out.values_BxT)[real], ref_values[real], rtol=1e-4, atol=1e-4)
    assert np.all(np.isfinite(np.asarray(out.logits_BxTxV)))  # pad queries are finite too


@pytest.mark.parametrize("spec", [SPEC, SHIFT_SPEC], ids=["plain", "token_shift"])
def test_left_padding_and_a_position_shift_do_not_change_real_outputs(spec):
    params = _random_params(spec, 1)
    seq = jnp.array([[5, 1, 12, 2, 7]], jnp.int32)
    plain = forward(spec, params, seq).logits_BxTxV[0]
    padded = jnp.concatenate([jnp.full((1, 3), 9, jnp.int32), seq], axis=1)
    mask = jnp.arange(8)[None, :] >= 3
    out = forward(spec, params, padded, kv_mask_BxT=mask, positions_BxT=tfm.mask_positions(mask))
    np.testing.assert_allclose(out.logits_BxTxV[0, 3:], plain, rtol=1e-5, atol=1e-5)
    # RoPE scores depend on position differences only
    shifted = forward(spec, params, seq, positions_BxT=jnp.arange(5)[None, :] + 7).logits_BxTxV[0]
    np.testing.assert_allclose(shifted, plain, rtol=1e-4, atol=1e-4)


def test_nope_ignores_positions_and_rope_uses_them():
    """Without RoPE nothing reads the positions: any position array (even a shuffled one) gives the
    same outputs, while with RoPE a non-uniform change of positions changes them."""
    seq = jnp.array([[5, 1, 12, 2, 7, 3]], jnp.int32)
    scrambled = jnp.array([[9, 2, 14, 0, 3, 3]], jnp.int32)
    for spec, moves in ((NOPE_SPEC, False), (dataclasses.replace(NOPE_SPEC, rope=True), True)):
        params = _random_params(spec, 6)
        plain = forward(spec, params, seq).logits_BxTxV
        other = forward(spec, params, seq, positions_BxT=scrambled).logits_BxTxV
        assert (float(jnp.max(jnp.abs(plain - other))) > 1e-3) == moves


def test_causal_future_tokens_do_not_change_past_logits():
    params = _random_params(SPEC, 2)
    a = jnp.array([[1, 2, 3, 4, 5, 6]], jnp.int32)
    b = a.at[0, 4:].set(jnp.array([11, 0]))
    la, lb = forward(SPEC, params, a).logits_BxTxV, forward(SPEC, params, b).logits_BxTxV
    np.testing.assert_array_equal(la[0, :4], lb[0, :4])
    assert float(jnp.max(jnp.abs(la[0, 4:] - lb[0, 4:]))) > 1e-3


def test_token_logprobs_and_entropy_at_a_temperature():
    params = _random_params(SPEC, 3)
    tokens = jnp.array([[3, 8, 1, 0, 12], [7, 7, 2, 5, 4]], jnp.int32)
    logp, ent, values = jax.jit(tfm.token_logprobs, static_argnums=0)(SPEC, params, tokens, temperature=0.5)
    logits = np.asarray(forward(SPEC, params, tokens).logits_BxTxV, np.float64)[:, :-1] / 0.5
    lse = np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1)) + logits.max(-1)
    probs = np.exp(logits - lse[..., None])
    expected = np.take_along_axis(logits, np.asarray(tokens)[:, 1:, None], -1)[..., 0] - lse
    np.testing.assert_allclose(logp, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ent, -np.sum(probs * np.log(probs), -1), rtol=1e-5, atol=1e-5)
    assert values.shape == (2, 5)


@pytest.mark.parametrize("spec", [SPEC, SHIFT_SPEC, NOPE_SPEC], ids=["plain", "token_shift", "nope"])
def test_kv_cache_decode_equals_full_forward(spec):
    params = _random_params(spec, 4)
    length, total = 5, 11
    tokens = jax.random.randint(jax.random.key(5), (3, total), 0, spec.vocab_size)
    prompt_mask = jnp.array([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1]], bool)
    kv_mask = jnp.concatenate([prompt_mask, jnp.ones((3, total - length), bool)], axis=1)
    positions = tfm.mask_positions(kv_mask)
    full = forward(spec, params, tokens, positions_BxT=positions, kv_mask_BxT=kv_mask)
    cache = tfm.init_cache(spec, 3, total)
    logits, cache = jax.jit(lambda p, t, m, c: tfm.prefill(spec, p, t, m, c))(params, tokens[:, :length],
                                                                             prompt_mask, cache)
    np.testing.assert_allclose(logits, full.logits_BxTxV[:, length - 1], rtol=1e-5, atol=1e-5)
    step = jax.jit(lambda p, c, tok, pos, i: tfm.decode_step(spec, p, c, tok, pos, i))
    for i in range(length, total):
        logits, values, cache = step(params, cache, tokens[:, i], positions[:, i], i)
        np.testing.assert_allclose(logits, full.logits_BxTxV[:, i], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(values, full.values_BxT[:, i], rtol=1e-5, atol=1e-5)


def test_init_params_vmaps_over_keys_and_graphdef_is_cached():
    spec = tfm.TransformerSpec(vocab_size=9, d_model=16, n_layers=1, n_heads=2, n_kv_heads=2)
    keys = jax.random.split(jax.random.key(0), 3)
    init = jax.jit(jax.vmap(lambda k: tfm.init_params(spec, k)))
    stacked, reversed_ = init(keys), init(keys[::-1])
    embed = stacked["embed"][...]
    assert embed.shape == (3, 9, 16)
    assert float(jnp.min(jnp.abs(embed[0] - embed[1]))) > 0.0
    np.testing.assert_allclose(np.std(np.asarray(embed)), spec.init_std, rtol=0.1)
    for got, want in zip(jax.tree.leaves(stacked), jax.tree.leaves(reversed_), strict=True):
        np.testing.assert_array_equal(got, want[::-1])  # row i is a function of key i only
    np.testing.assert_array_equal(stacked["blocks"][0]["attn_norm"]["scale"][...], np.ones((3, 16)))
    assert tfm.graphdef(spec) is tfm.graphdef(spec)


def test_bad_shapes_raise_value_errors():
    params = jax.eval_shape(lambda k: tfm.init_params(SPEC, k), jax.random.key(0))
    with pytest.raises(ValueError, match="rank 2"):
        tfm.forward(SPEC, params, jnp.zeros((4,), jnp.int32))
    with pytest.raises(ValueError, match="max_len"):
        tfm.forward(SPEC, params, jnp.zeros((1, 17), jnp.int32))
    with pytest.raises(ValueError, match="kv_mask_BxT"):
        tfm.forward(SPEC, params, jnp.zeros((1, 4), jnp.int32), kv_mask_BxT=jnp.ones((1, 3), bool))
