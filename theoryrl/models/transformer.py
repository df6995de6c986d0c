"""A small Llama-style decoder (flax NNX, used only functionally) with a KV cache.

Architecture: token embedding -> n_layers x [pre-norm RMSNorm -> causal multi-head attention with
RoPE on q and k (grouped-query when n_kv_heads < n_heads) -> residual; pre-norm RMSNorm -> SwiGLU
MLP -> residual] -> final RMSNorm -> logits = h @ embed.T (tied embeddings). An optional value head
(one linear map of the final normed hidden state) gives a scalar per position for a PPO critic.
Everything is float32.

Optional token shift (`token_shift=k`, 0 = off): each attention's normed input becomes
h_t + a_1 * h_{t-1} + ... + a_k * h_{t-k} (each a_j learned per channel, h_{t-j} the normed input
j real tokens back, 0 past the start or on padding), a width-(k+1) causal depthwise convolution like
RWKV's token shift (k = 1) or the "canon" layers of Allen-Zhu's Physics of Language Models (k = 3). With it one attention layer can match on a (previous,
current) token pair, which in-context lookup needs (induction copies, associative recall, "find the
equation of x_u"); without it a small decoder must first grow a previous-token head in an earlier
layer, and the two circuits only pay off together, a plateau that on a CPU budget it often does not
leave (a 2-layer d_model-64 decoder learns 8-pair associative recall in 500 steps with the shift,
and is still at the elimination baseline after 3000 without it, batch 32). The KV cache then also
keeps each layer's last k normed inputs.

NNX is used the functional way (specs/jax_practice.md §6.2): `graphdef(spec)` is built once
(cached, from an abstract module, so no weights are allocated), `init_params(spec, key)` returns the
`nnx.State` of the Param leaves (vmappable over key), and every public function below takes
`(spec, params, ...)` and merges inside. Only params, caches and arrays cross jit/scan/vmap.

Masks and positions. `kv_mask_BxT` marks real tokens; a padded key is never attended to. Prompts
are left-padded, and `mask_positions` gives RoPE positions that count real tokens only (the first
real token is at position 0), so a prompt's numbers do not depend on how much padding it got.
RoPE angles are computed from the positions on the fly (exact for any position; `max_len` bounds
sequence and cache lengths). A query row with no real key (a pad position) attends uniformly
instead of producing NaN; its output is garbage but finite and never reaches a real token.

KV cache: `init_cache` -> `prefill` (writes slots [0, L)) -> `decode_step` (writes slot
`write_index`, attends over every valid slot). Because slots are written in order and unwritten
slots are invalid, causality in decode needs no extra mask.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from theoryrl.core.config import require

_NEG = -1e30  # masked attention score: finite, so a fully masked row is uniform, not NaN


@dataclasses.dataclass(frozen=True)
class TransformerSpec:
    vocab_size: int
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 4  # GQA when < n_heads (must divide n_heads)
    d_ff: int = 0  # 0 -> SwiGLU default: multiple of 32 near 8/3 * d_model
    max_len: int = 128  # max total sequence length (prompt + response), also the largest cache
    rope_theta: float = 10000.0
    rope: bool = True  # False: no positional encoding at all (NoPE; order comes from causality and the token shift)
    norm_eps: float = 1e-6
    init_std: float = 0.02
    value_head: bool = False  # scalar value per position (PPO critic) on the final hidden state
    token_shift: int = 0  # k: attention input h_t + sum_j a_j * h_{t-j}, j = 1..k (module docstring)

    def validate(self) -> None:
        require(self.vocab_size >= 2, "vocab_size", self.vocab_size, ">= 2")
        require(self.d_model >= 2, "d_model", self.d_model, ">= 2")
        require(self.n_layers >= 1, "n_layers", self.n_layers, ">= 1")
        require(self.n_heads >= 1 and self.d_model % self.n_heads == 0, "n_heads", self.n_heads,
                f">= 1 and dividing d_model={self.d_model}")
        require(self.head_dim % 2 == 0, "d_model", self.d_model,
                f"d_model // n_heads even (RoPE rotates pairs); n_heads={self.n_heads}")
        require(self.n_kv_heads >= 1 and self.n_heads % self.n_kv_heads == 0, "n_kv_heads", self.n_kv_heads,
                f">= 1 and dividing n_heads={self.n_heads}")
        require(self.d_ff >= 0, "d_ff", self.d_ff, ">= 0 (0 = SwiGLU default)")
        require(self.max_len >= 2, "max_len", self.max_len, ">= 2")
        require(self.rope_theta > 0, "rope_theta", self.rope_theta, "> 0")
        require(self.norm_eps > 0, "norm_eps", self.norm_eps, "> 0")
        require(self.init_std > 0, "init_std", self.init_std, "> 0")
        require(isinstance(self.token_shift, int) and self.token_shift >= 0, "token_shift", self.token_shift,
                "an integer >= 0 (previous tokens mixed into each attention input; 0 = off)")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def ffn_dim(self) -> int:
        """d_ff, or the Llama SwiGLU width: 8/3 * d_model rounded to a multiple of 32 (at least 32)."""
        if self.d_ff > 0:
            return self.d_ff
        return max(32, 32 * round(8 * self.d_model / 3 / 32))

    def num_params(self) -> int:
        d, k, f = self.d_model, self.head_dim, self.ffn_dim
        attention = d * self.n_heads * k * 2 + d * self.n_kv_heads * k * 2  # wq, wo, wk, wv
        block = attention + 3 * d * f + 2 * d  # + SwiGLU (gate, up, down) + two RMSNorm scales
        value = d + 1 if self.value_head else 0
        shift = d * self.token_shift
        return self.vocab_size * d + self.n_layers * (block + shift) + d + value


class Output(NamedTuple):
    logits_BxTxV: jax.Array  # float32
    values_BxT: jax.Array | None  # float32, None without a value head


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Cache:
    """Keys/values of every layer for `S` slots; `valid_BxS` marks slots holding a real token.

    One buffer per layer, and slots on the second-minor axis (kv-head-major layout), so that decode
    attention reads each layer's cache in place: XLA:CPU copies a layer sliced out of a stacked
    [L, ...] array, and transposes a [B, S, G, K] layout, which cost most of a decode step.
    """

    keys_BxGxSxK: tuple[jax.Array, ...]  # one per layer
    values_BxGxSxK: tuple[jax.Array, ...]
    valid_BxS: jax.Array  # bool
    last_norm_BxKxD: tuple[jax.Array, ...] = ()  # token shift: each layer's last k normed inputs, newest first


def _normal(rngs: nnx.Rngs, shape, std: float) -> nnx.Param:
    return nnx.Param(std * jax.random.normal(rngs.params(), shape, jnp.float32))


class RMSNorm(nnx.Module):
    def __init__(self, dim: int, eps: float):
        self.scale = nnx.Param(jnp.ones((dim,), jnp.float32))
        self.eps = eps

    def __call__(self, x_BxTxD: jax.Array) -> jax.Array:
        ms_BxTx1 = jnp.mean(jnp.square(x_BxTxD), axis=-1, keepdims=True)
        return x_BxTxD * jax.lax.rsqrt(ms_BxTx1 + self.eps) * self.scale[...][None, None, :]


def rope(x_BxTxHxK: jax.Array, cos_BxTxK2: jax.Array | None, sin_BxTxK2: jax.Array | None) -> jax.Array:
    """Rotate the pairs (x[i], x[i + K/2]) by angle position * theta^(-2i/K) (Llama's half split).

    Angles of None (a spec with `rope=False`) leave x as it is."""
    if cos_BxTxK2 is None:
        return x_BxTxHxK
    half = x_BxTxHxK.shape[-1] // 2
    x1, x2 = x_BxTxHxK[..., :half], x_BxTxHxK[..., half:]
    cos, sin = cos_BxTxK2[:, :, None, :], sin_BxTxK2[:, :, None, :]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def rope_angles(spec: TransformerSpec, positions_BxT: jax.Array):
    """(cos, sin) [B, T, K/2] of the RoPE angles, or (None, None) when the spec has no RoPE."""
    if not spec.rope:
        return None, None
    k = spec.head_dim
    inv_freq_K2 = spec.rope_theta ** (-jnp.arange(0, k, 2, dtype=jnp.float32) / k)
    angles_BxTxK2 = positions_BxT.astype(jnp.float32)[:, :, None] * inv_freq_K2[None, None, :]
    return jnp.cos(angles_BxTxK2), jnp.sin(angles_BxTxK2)


def attend(q_BxTxHxK: jax.Array, k_BxSxGxK: jax.Array, v_BxSxGxK: jax.Array, mask_BxTxS: jax.Array) -> jax.Array:
    """Softmax attention; query head h reads kv head h // (H / G) (grouped-query attention)."""
    b, t, h, k = q_BxTxHxK.shape
    g = k_BxSxGxK.shape[2]
    q_BxTxGxRxK = q_BxTxHxK.reshape(b, t, g, h // g, k)
    scores = jnp.einsum("btgrk,bsgk->bgrts", q_BxTxGxRxK, k_BxSxGxK) / jnp.sqrt(jnp.float32(k))
    scores = jnp.where(mask_BxTxS[:, None, None, :, :], scores, _NEG)
    weights = jax.nn.softmax(scores, axis=-1)
    out_BxTxGxRxK = jnp.einsum("bgrts,bsgk->btgrk", weights, v_BxSxGxK)
    return out_BxTxGxRxK.reshape(b, t, h, k)


def attend_cache(q_BxHxK: jax.Array, k_BxGxSxK: jax.Array, v_BxGxSxK: jax.Array, valid_BxS: jax.Array) -> jax.Array:
    """`attend` for one query per row, over cache slots stored kv-head-major ([B, G, S, K]).

    In this layout both products are batched matrix products over contiguous [S, K] blocks, read in
    place; with `attend`'s [B, S, G, K] layout XLA:CPU transposed (copied) each layer's whole cache
    every decode step, which took most of the step (see benchmarks/lm.py).
    """
    b, h, k = q_BxHxK.shape
    g = k_BxGxSxK.shape[1]
    q_BxGxRxK = q_BxHxK.reshape(b, g, h // g, k)
    scores = jnp.einsum("bgrk,bgsk->bgrs", q_BxGxRxK, k_BxGxSxK) / jnp.sqrt(jnp.float32(k))
    weights = jax.nn.softmax(jnp.where(valid_BxS[:, None, None, :], scores, _NEG), axis=-1)
    return jnp.einsum("bgrs,bgsk->bgrk", weights, v_BxGxSxK).reshape(b, h, k)


class Block(nnx.Module):
    """Pre-norm attention + SwiGLU block, split in two so the caller decides where keys come from."""

    def __init__(self, spec: TransformerSpec, rngs: nnx.Rngs):
        d, h, g, k, f, std = spec.d_model, spec.n_heads, spec.n_kv_heads, spec.head_dim, spec.ffn_dim, spec.init_std
        self.attn_norm = RMSNorm(d, spec.norm_eps)
        if spec.token_shift:  # a_j = 0.5 / j at the start: neighbours mixed in at once, the nearest most
            weights = 0.5 / jnp.arange(1, spec.token_shift + 1, dtype=jnp.float32)
            self.shift = nnx.Param(jnp.broadcast_to(weights[:, None], (spec.token_shift, d)))
        self.wq = _normal(rngs, (d, h, k), std)
        self.wk = _normal(rngs, (d, g, k), std)
        self.wv = _normal(rngs, (d, g, k), std)
        self.wo = _normal(rngs, (h, k, d), std)
        self.mlp_norm = RMSNorm(d, spec.norm_eps)
        self.w_gate = _normal(rngs, (d, f), std)
        self.w_up = _normal(rngs, (d, f), std)
        self.w_down = _normal(rngs, (f, d), std)

    def qkv(self, h_BxTxD, cos_BxTxK2, sin_BxTxK2, prev_BxTxJxD=None):
        """Projections of the normed input `h`, mixed with the k previous ones (token shift)."""
        h = h_BxTxD
        if prev_BxTxJxD is not None:
            h = h + jnp.einsum("btjd,jd->btd", prev_BxTxJxD, self.shift[...])
        q = jnp.einsum("btd,dhk->bthk", h, self.wq[...])
        k = jnp.einsum("btd,dgk->btgk", h, self.wk[...])
        v = jnp.einsum("btd,dgk->btgk", h, self.wv[...])
        return rope(q, cos_BxTxK2, sin_BxTxK2), rope(k, cos_BxTxK2, sin_BxTxK2), v

    def finish(self, x_BxTxD, attn_BxTxHxK):
        x = x_BxTxD + jnp.einsum("bthk,hkd->btd", attn_BxTxHxK, self.wo[...])
        h = self.mlp_norm(x)
        return x + (jax.nn.silu(h @ self.w_gate[...]) * (h @ self.w_up[...])) @ self.w_down[...]


class Transformer(nnx.Module):
    def __init__(self, spec: TransformerSpec, *, rngs: nnx.Rngs):
        self.embed = _normal(rngs, (spec.vocab_size, spec.d_model), spec.init_std)
        self.blocks = nnx.List([Block(spec, rngs) for _ in range(spec.n_layers)])
        self.final_norm = RMSNorm(spec.d_model, spec.norm_eps)
        if spec.value_head:
            self.value_w = _normal(rngs, (spec.d_model,), spec.init_std)
            self.value_b = nnx.Param(jnp.zeros((), jnp.float32))

    def embed_tokens(self, tokens_BxT: jax.Array) -> jax.Array:
        return jnp.take(self.embed[...], tokens_BxT, axis=0)

    def head(self, x_BxTxD: jax.Array) -> Output:
        h = self.final_norm(x_BxTxD)
        logits = jnp.einsum("btd,vd->btv", h, self.embed[...])
        values = h @ self.value_w[...] + self.value_b[...] if hasattr(self, "value_w") else None
        return Output(logits, values)


def init_params(spec: TransformerSpec, key: jax.Array) -> nnx.State:
    """The Param state of a freshly initialised model (pure in `key`, so it vmaps over keys)."""
    spec.validate()
    return nnx.split(Transformer(spec, rngs=nnx.Rngs(params=key)), nnx.Param)[1]


@functools.lru_cache(maxsize=None)
def graphdef(spec: TransformerSpec) -> nnx.GraphDef:
    spec.validate()
    abstract = nnx.eval_shape(lambda: Transformer(spec, rngs=nnx.Rngs(0)))
    return nnx.split(abstract, nnx.Param)[0]


def mask_positions(kv_mask_BxT: jax.Array) -> jax.Array:
    """RoPE positions that count real tokens only: 0 at the first real token (0 on left padding)."""
    return jnp.maximum(jnp.cumsum(kv_mask_BxT.astype(jnp.int32), axis=1) - 1, 0)


def _check_tokens(spec: TransformerSpec, tokens_BxT, **others) -> None:
    if tokens_BxT.ndim != 2:
        raise ValueError(f"tokens_BxT must be rank 2 [batch, time], got shape {tokens_BxT.shape}")
    if tokens_BxT.shape[1] > spec.max_len:
        raise ValueError(f"sequence length {tokens_BxT.shape[1]} exceeds max_len={spec.max_len}")
    for name, arr in others.items():
        if arr is not None and arr.shape != tokens_BxT.shape:
            raise ValueError(f"{name} must have the tokens' shape {tokens_BxT.shape}, got {arr.shape}")


def _zero_padded(h_BxTxD: jax.Array, kv_mask_BxT: jax.Array, k: int) -> jax.Array:
    """[B, k + T, D]: h with padding zeroed and k zero rows in front (position t is row k + t)."""
    real = h_BxTxD * kv_mask_BxT.astype(h_BxTxD.dtype)[:, :, None]
    return jnp.pad(real, ((0, 0), (k, 0), (0, 0)))


def previous_tokens(h_BxTxD: jax.Array, kv_mask_BxT: jax.Array, k: int) -> jax.Array:
    """[B, T, k, D]: h of positions t-1 .. t-k, 0 where that is padding or before the start.

    Prompts are left-padded, so "j slots back" is "j real tokens back" for every real token."""
    padded, t = _zero_padded(h_BxTxD, kv_mask_BxT, k), h_BxTxD.shape[1]
    return jnp.stack([padded[:, k - j:k - j + t] for j in range(1, k + 1)], axis=2)


def _last_k(h_BxLxD: jax.Array, kv_mask_BxL: jax.Array, k: int) -> jax.Array:
    """[B, k, D]: h at positions L-1 .. L-k (newest first): what position L mixes in."""
    padded, length = _zero_padded(h_BxLxD, kv_mask_BxL, k), h_BxLxD.shape[1]
    return jnp.stack([padded[:, k + length - j] for j in range(1, k + 1)], axis=1)


def _trunk(spec, model, tokens_BxT, positions_BxT, kv_mask_BxT):
    """Final hidden state, and each layer's (k, v, normed attention input) for a cache."""
    cos, sin = rope_angles(spec, positions_BxT)
    mask_BxTxT = _self_mask(kv_mask_BxT)
    x = model.embed_tokens(tokens_BxT)
    kvs = []
    for block in model.blocks:
        h = block.attn_norm(x)
        prev = previous_tokens(h, kv_mask_BxT, spec.token_shift) if spec.token_shift else None
        q, k, v = block.qkv(h, cos, sin, prev)
        x = block.finish(x, attend(q, k, v, mask_BxTxT))
        kvs.append((k, v, h))
    return x, kvs


def _self_mask(kv_mask_BxT: jax.Array) -> jax.Array:
    t = kv_mask_BxT.shape[1]
    causal_TxT = jnp.tril(jnp.ones((t, t), bool))
    return causal_TxT[None, :, :] & kv_mask_BxT.astype(bool)[:, None, :]


def forward(spec: TransformerSpec, params, tokens_BxT, *, positions_BxT=None, kv_mask_BxT=None) -> Output:
    """Logits (and values) at every position; causal, padded keys never attended to."""
    _check_tokens(spec, tokens_BxT, positions_BxT=positions_BxT, kv_mask_BxT=kv_mask_BxT)
    b, t = tokens_BxT.shape
    if positions_BxT is None:
        positions_BxT = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32)[None, :], (b, t))
    if kv_mask_BxT is None:
        kv_mask_BxT = jnp.ones((b, t), bool)
    model = nnx.merge(graphdef(spec), params)
    x, _ = _trunk(spec, model, tokens_BxT, positions_BxT, kv_mask_BxT)
    return model.head(x)


def token_logprobs(spec: TransformerSpec, params, tokens_BxT, *, positions_BxT=None, kv_mask_BxT=None,
                   temperature=1.0):
    """(log p(tokens[:, t+1] | tokens[:, :t+1]) [B, T-1], entropy of that distribution [B, T-1], values).

    The distribution is softmax(logits / temperature); `temperature` may be traced.
    """
    out = forward(spec, params, tokens_BxT, positions_BxT=positions_BxT, kv_mask_BxT=kv_mask_BxT)
    logp_all = jax.nn.log_softmax(out.logits_BxTxV[:, :-1] / temperature, axis=-1)
    logp_BxTm1 = jnp.take_along_axis(logp_all, tokens_BxT[:, 1:, None], axis=-1)[..., 0]
    entropy_BxTm1 = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
    return logp_BxTm1, entropy_BxTm1, out.values_BxT


def init_cache(spec: TransformerSpec, batch: int, max_len: int) -> Cache:
    spec.validate()
    if not 1 <= max_len <= spec.max_len:
        raise ValueError(f"cache length {max_len} must be in [1, max_len={spec.max_len}]")

    def zeros():
        shape = (batch, spec.n_kv_heads, max_len, spec.head_dim)
        return tuple(jnp.zeros(shape, jnp.float32) for _ in range(spec.n_layers))

    last = tuple(jnp.zeros((batch, spec.token_shift, spec.d_model), jnp.float32)
                 for _ in range(spec.n_layers)) if spec.token_shift else ()  # as prefill/decode_step return
    return Cache(zeros(), zeros(), jnp.zeros((batch, max_len), bool), last)


def grow_cache(cache: Cache, slots: int) -> Cache:
    """The same cache with `slots` slots; the new ones are empty (invalid, zero).

    Decode attention reads every slot of the cache, valid or not, so a sampler that grows its cache
    block by block reads fewer slots per step than one that holds the final length from the start."""
    extra = slots - cache.valid_BxS.shape[1]
    if extra < 0:
        raise ValueError(f"cannot grow a cache of {cache.valid_BxS.shape[1]} slots to {slots}")
    grow = lambda x: jnp.pad(x, ((0, 0), (0, 0), (0, extra), (0, 0)))  # noqa: E731  [B, G, S, K] on S
    return Cache(tuple(grow(k) for k in cache.keys_BxGxSxK), tuple(grow(v) for v in cache.values_BxGxSxK),
                 jnp.pad(cache.valid_BxS, ((0, 0), (0, extra))), cache.last_norm_BxKxD)


def prefill(spec: TransformerSpec, params, tokens_BxL, kv_mask_BxL, cache: Cache):
    """Run the (left-padded) prompt, fill cache slots [0, L); logits after the last prompt token."""
    _check_tokens(spec, tokens_BxL, kv_mask_BxL=kv_mask_BxL)
    b, length = tokens_BxL.shape
    if cache.valid_BxS.shape[0] != b or cache.valid_BxS.shape[1] < length:
        raise ValueError(f"cache of shape {cache.valid_BxS.shape} cannot hold a prompt batch {tokens_BxL.shape}")
    kv_mask_BxL = kv_mask_BxL.astype(bool)
    model = nnx.merge(graphdef(spec), params)
    x, kvs = _trunk(spec, model, tokens_BxL, mask_positions(kv_mask_BxL), kv_mask_BxL)

    def write(slots_BxGxSxK, new_BxLxGxK):
        return jax.lax.dynamic_update_slice(slots_BxGxSxK, new_BxLxGxK.transpose(0, 2, 1, 3), (0, 0, 0, 0))

    keys = tuple(write(slots, k) for slots, (k, _, _) in zip(cache.keys_BxGxSxK, kvs, strict=True))
    values = tuple(write(slots, v) for slots, (_, v, _) in zip(cache.values_BxGxSxK, kvs, strict=True))
    valid = jax.lax.dynamic_update_slice(cache.valid_BxS, kv_mask_BxL, (0, 0))
    # the normed inputs at t = L-1 .. L-k, newest first: what the first decoded token mixes in
    last = tuple(_last_k(h, kv_mask_BxL, spec.token_shift) for _, _, h in kvs) if spec.token_shift else ()
    return model.head(x[:, -1:]).logits_BxTxV[:, 0], Cache(keys, values, valid, last)


def decode_step(spec: TransformerSpec, params, cache: Cache, token_B, position_B, write_index):
    """Feed one token per row at RoPE position `position_B`, stored in cache slot `write_index`.

    `write_index` (may be traced) must be below the cache length: dynamic_update_slice would clamp it.
    """
    if token_B.ndim != 1 or position_B.shape != token_B.shape:
        raise ValueError(f"token_B and position_B must be rank 1 of equal shape, got {token_B.shape}, "
                         f"{position_B.shape}")
    if token_B.shape[0] != cache.valid_BxS.shape[0]:
        raise ValueError(f"{token_B.shape[0]} tokens for a cache of batch {cache.valid_BxS.shape[0]}")
    model = nnx.merge(graphdef(spec), params)
    b = token_B.shape[0]
    write_index = jnp.asarray(write_index, jnp.int32)
    zero = jnp.int32(0)
    valid = jax.lax.dynamic_update_slice(cache.valid_BxS, jnp.ones((b, 1), bool), (zero, write_index))
    cos, sin = rope_angles(spec, position_B[:, None])
    x = model.embed_tokens(token_B[:, None])
    keys, values, last = [], [], []
    for i, (block, slots_k, slots_v) in enumerate(zip(model.blocks, cache.keys_BxGxSxK, cache.values_BxGxSxK,
                                                      strict=True)):
        h = block.attn_norm(x)
        prev = None
        if spec.token_shift:
            prev = cache.last_norm_BxKxD[i][:, None]
            last.append(jnp.concatenate([h, cache.last_norm_BxKxD[i][:, :-1]], axis=1))
        q, k, v = block.qkv(h, cos, sin, prev)
        at = (zero, zero, write_index, zero)
        keys.append(jax.lax.dynamic_update_slice(slots_k, k.transpose(0, 2, 1, 3), at))
        values.append(jax.lax.dynamic_update_slice(slots_v, v.transpose(0, 2, 1, 3), at))
        attn_BxHxK = attend_cache(q[:, 0], keys[-1], values[-1], valid)
        x = block.finish(x, attn_BxHxK[:, None])
    out = model.head(x)
    vals = None if out.values_BxT is None else out.values_BxT[:, 0]
    return out.logits_BxTxV[:, 0], vals, Cache(tuple(keys), tuple(values), valid, tuple(last))
