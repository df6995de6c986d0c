"""Jitted KV-cache sampling: G responses per prompt, temperature and top-p, EOS masking.

    rollout = sample(model_spec, params, prompts_PxL, prompt_mask_PxL, key, G, SamplerSpec(...),
                     temperature=0.7, top_p=0.95)

Prompts are left-padded to a common length L (`prompt_mask_PxL` marks real tokens); RoPE positions
count real tokens only, so response token j of a prompt with n real tokens sits at position n + j
and in cache slot L + j. The prompt batch is prefilled once ([P, L], not [P*G, L]) and its cache is
then tiled G times (row p*G + g is sample g of prompt p, so reshapes to [P, G] never mix prompts).
A `lax.scan` over `max_new_tokens` steps (or one scan per block of `cache_block` steps, the cache
grown by a block before each, so that attention reads fewer empty slots) samples a token, then
feeds it through `decode_step`;
shapes are static, and after EOS a row keeps computing but emits `pad_id` with mask 0. (The scan's
last decode step is not needed; keeping it keeps the body uniform, at a cost of 1/T.)

`temperature` and `top_p` may be traced scalars (RL sweeps vmap over them); `greedy` is static.
`logp` is the log-probability of the sampled token under the distribution it was sampled from
(softmax(logits / temperature) restricted to the top-p nucleus and renormalised). With `greedy`
there is no sampling distribution; `logp` is then the model's log-probability at temperature 1.

`full_sequences` rebuilds the prompt + response batch for one forward pass (`token_logprobs`), the
way RL recomputes old/reference/new log-probs; `response_part` cuts the response block back out as
[P, G, T].
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from theoryrl.core.config import require
from theoryrl.models import transformer as tfm


@dataclasses.dataclass(frozen=True)
class SamplerSpec:
    max_new_tokens: int
    eos_id: int
    pad_id: int
    greedy: bool = False
    # 0: one scan over a cache of the final length. b > 0: the response is decoded in blocks of b
    # tokens, the cache grown by b slots before each, so early steps attend over fewer (empty) slots
    cache_block: int = 0

    def validate(self) -> None:
        require(self.max_new_tokens >= 1, "max_new_tokens", self.max_new_tokens, ">= 1")
        require(self.cache_block >= 0, "cache_block", self.cache_block, ">= 0 (0 = one block)")
        require(self.eos_id >= 0, "eos_id", self.eos_id, ">= 0")
        require(self.pad_id >= 0, "pad_id", self.pad_id, ">= 0")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Rollout:
    tokens_PxGxT: jax.Array  # int32 response tokens; pad_id after EOS
    logp_PxGxT: jax.Array  # float32 log-prob under the sampling distribution; 0 where masked
    mask_PxGxT: jax.Array  # float32 1.0 on valid response tokens (EOS included), 0 after
    length_PxG: jax.Array  # int32 number of valid tokens
    finished_PxG: jax.Array  # bool: emitted EOS within max_new_tokens


_PAIRWISE_MAX_VOCAB = 128  # above this, top_p_keep's V x V comparisons cost more than sorting


def top_p_keep(logits_NxV: jax.Array, top_p) -> jax.Array:
    """The nucleus: the fewest most-likely tokens whose mass reaches top_p (always >= 1 token).

    Token i (in decreasing order, ties by index as a stable sort orders them) is kept when the mass
    strictly before it is < top_p; top_p >= 1 keeps everything (float rounding of the cumulative sum
    must not drop the tail).
    """
    probs_NxV = jax.nn.softmax(logits_NxV, axis=-1)
    v = logits_NxV.shape[-1]
    if v > _PAIRWISE_MAX_VOCAB:
        order_NxV = jnp.argsort(-probs_NxV, axis=-1)
        sorted_NxV = jnp.take_along_axis(probs_NxV, order_NxV, axis=-1)
        mass_before_sorted_NxV = jnp.cumsum(sorted_NxV, axis=-1) - sorted_NxV
        mass_before_NxV = jnp.take_along_axis(mass_before_sorted_NxV, jnp.argsort(order_NxV, axis=-1), axis=-1)
    else:
        # XLA:CPU sorts slowly: for a small vocabulary, summing the tokens ranked before each token
        # is >10x faster at V = 64 than the two argsorts (the sum's order differs: float error only).
        p_i, p_j = probs_NxV[:, :, None], probs_NxV[:, None, :]
        index_V = jnp.arange(v)
        j_before_i_1xVxV = (index_V[None, :] < index_V[:, None])[None]
        ranked_before_NxVxV = (p_j > p_i) | ((p_j == p_i) & j_before_i_1xVxV)
        mass_before_NxV = jnp.sum(jnp.where(ranked_before_NxVxV, p_j, 0.0), axis=-1)
    top_NxV = mass_before_NxV == 0.0  # only the most likely token (it has probability >= 1/V)
    return (mass_before_NxV < top_p) | top_NxV | (top_p >= 1.0)


def choose(logits_NxV: jax.Array, key: jax.Array, greedy: bool, temperature, top_p):
    """(token_N, logp_N): one draw per row, and its log-prob under the sampling distribution."""
    if greedy:
        token_N = jnp.argmax(logits_NxV, axis=-1)
        logp_NxV = jax.nn.log_softmax(logits_NxV, axis=-1)
    else:
        scaled_NxV = logits_NxV / temperature
        # top_p >= 1 keeps every token: skip the nucleus then (under a vmap over top_p the cond
        # becomes a select that computes both branches, still correct).
        nucleus_NxV = jax.lax.cond(jnp.asarray(top_p) < 1.0,
                                   lambda x: jnp.where(top_p_keep(x, top_p), x, -jnp.inf), lambda x: x, scaled_NxV)
        logp_NxV = jax.nn.log_softmax(nucleus_NxV, axis=-1)
        token_N = jax.random.categorical(key, nucleus_NxV, axis=-1)
    logp_N = jnp.take_along_axis(logp_NxV, token_N[:, None], axis=-1)[:, 0]
    return token_N.astype(jnp.int32), logp_N


def _tile_cache(cache: tfm.Cache, repeats: int) -> tfm.Cache:
    return jax.tree.map(lambda x: jnp.repeat(x, repeats, axis=0), cache)  # every leaf is batch-major


def _prompt_mask(prompts_PxL: jax.Array, prompt_mask_PxL) -> jax.Array:
    if prompts_PxL.ndim != 2:
        raise ValueError(f"prompts_PxL must be rank 2 [prompts, length], got shape {prompts_PxL.shape}")
    if prompt_mask_PxL is None:
        return jnp.ones(prompts_PxL.shape, bool)
    if prompt_mask_PxL.shape != prompts_PxL.shape:
        raise ValueError(f"prompt_mask_PxL shape {prompt_mask_PxL.shape} != prompts shape {prompts_PxL.shape}")
    return prompt_mask_PxL.astype(bool)


def _check_scalar(name: str, value, low: float) -> None:
    """Reject bad concrete values early; traced values cannot be checked here."""
    if isinstance(value, (int, float)) and not value > low:
        raise ValueError(f"{name} must be > {low}, got {value}")


def sample(model_spec: tfm.TransformerSpec, params, prompts_PxL, prompt_mask_PxL, key, num_samples: int,
           sampler: SamplerSpec, temperature=1.0, top_p=1.0) -> Rollout:
    """G = num_samples responses to each prompt (see module docstring)."""
    sampler.validate()
    mask_PxL = _prompt_mask(prompts_PxL, prompt_mask_PxL)
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a static int >= 1, got {num_samples!r}")
    _check_scalar("temperature", temperature, 0.0)
    _check_scalar("top_p", top_p, 0.0)
    (p, length), g, t = prompts_PxL.shape, num_samples, sampler.max_new_tokens
    if length + t > model_spec.max_len:
        raise ValueError(f"prompt length {length} + max_new_tokens {t} exceeds max_len={model_spec.max_len}")
    block = sampler.cache_block or t
    cache = tfm.init_cache(model_spec, p, length + min(block, t))
    logits_PxV, cache = tfm.prefill(model_spec, params, prompts_PxL, mask_PxL, cache)
    cache, logits_NxV = _tile_cache(cache, g), jnp.repeat(logits_PxV, g, axis=0)
    start_N = jnp.repeat(jnp.sum(mask_PxL, axis=1, dtype=jnp.int32), g)  # position of response token 0

    def step(carry, j):
        cache, logits_NxV, done_N = carry
        token_N, logp_N = choose(logits_NxV, jax.random.fold_in(key, j), sampler.greedy, temperature, top_p)
        live_N = ~done_N
        token_N = jnp.where(live_N, token_N, sampler.pad_id)
        logp_N = jnp.where(live_N, logp_N, 0.0)
        done_N = done_N | (token_N == sampler.eos_id)
        logits_NxV, _, cache = tfm.decode_step(model_spec, params, cache, token_N, start_N + j, length + j)
        return (cache, logits_NxV, done_N), (token_N, logp_N, live_N)

    carry, outs = (cache, logits_NxV, jnp.zeros((p * g,), bool)), []
    for first in range(0, t, block):  # static: one scan per block
        last = min(first + block, t)
        if first:
            carry = (tfm.grow_cache(carry[0], length + last), *carry[1:])
        carry, out = jax.lax.scan(step, carry, jnp.arange(first, last, dtype=jnp.int32))
        outs.append(out)
    done_N = carry[2]
    tokens_TxN, logp_TxN, live_TxN = (jnp.concatenate(parts) for parts in zip(*outs, strict=True))
    mask_PxGxT = live_TxN.T.reshape(p, g, t).astype(jnp.float32)
    return Rollout(tokens_PxGxT=tokens_TxN.T.reshape(p, g, t), logp_PxGxT=logp_TxN.T.reshape(p, g, t),
                   mask_PxGxT=mask_PxGxT, length_PxG=jnp.sum(mask_PxGxT, axis=2).astype(jnp.int32),
                   finished_PxG=done_N.reshape(p, g))


def full_sequences(prompts_PxL, prompt_mask_PxL, rollout: Rollout):
    """(tokens_NxS, kv_mask_NxS, positions_NxS, response_mask_NxSm1) with N = P*G, S = L + T.

    Row p*G + g is prompt p followed by its response g. kv_mask marks real prompt tokens and valid
    response tokens; positions are those used while decoding; response_mask_NxSm1[:, s] is 1 where
    the log-prob at s (of token s + 1) belongs to a valid response token, i.e. at s = L - 1 + j.
    """
    mask_PxL = _prompt_mask(prompts_PxL, prompt_mask_PxL)
    p, g, t = rollout.tokens_PxGxT.shape
    if p != prompts_PxL.shape[0]:
        raise ValueError(f"rollout has {p} prompts, prompts_PxL has {prompts_PxL.shape[0]}")
    length, n = prompts_PxL.shape[1], p * g
    prompt_mask_NxL = jnp.repeat(mask_PxL, g, axis=0)
    response_mask_NxT = rollout.mask_PxGxT.reshape(n, t)
    tokens_NxS = jnp.concatenate([jnp.repeat(prompts_PxL, g, axis=0).astype(jnp.int32),
                                  rollout.tokens_PxGxT.reshape(n, t)], axis=1)
    kv_mask_NxS = jnp.concatenate([prompt_mask_NxL, response_mask_NxT > 0], axis=1)
    start_Nx1 = jnp.sum(prompt_mask_NxL, axis=1, keepdims=True, dtype=jnp.int32)
    positions_NxS = jnp.concatenate([tfm.mask_positions(prompt_mask_NxL),
                                     start_Nx1 + jnp.arange(t, dtype=jnp.int32)[None, :]], axis=1)
    response_mask_NxSm1 = jnp.concatenate([jnp.zeros((n, length - 1), jnp.float32), response_mask_NxT], axis=1)
    return tokens_NxS, kv_mask_NxS, positions_NxS, response_mask_NxSm1


def response_part(x_NxSm1: jax.Array, prompt_len: int, num_prompts: int) -> jax.Array:
    """The response block of a per-log-prob array (e.g. token_logprobs' logp), as [P, G, T]."""
    if x_NxSm1.ndim != 2:
        raise ValueError(f"x_NxSm1 must be rank 2, got shape {x_NxSm1.shape}")
    n, sm1 = x_NxSm1.shape
    if n % num_prompts:
        raise ValueError(f"{n} rows do not split into {num_prompts} prompts")
    return x_NxSm1[:, prompt_len - 1:].reshape(num_prompts, n // num_prompts, sm1 - prompt_len + 1)
