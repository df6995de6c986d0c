"""Parity with short/long chain-of-thought mixtures (Tsilivis et al., arXiv 2510.11495; spec parity_cot.md §1).

Input x in {+1, -1}^d (i.i.d. Rademacher). With probability p_cot a demonstration is *long*: the
chain of prefix parities then EOS; otherwise it is *short*: the parity prod(x) then EOS.

Chains (`leap`):
- leap = 1 (the full chain): y_l = x_1 ... x_l for l = 1..d (d tokens; the last one is the answer).
- leap = 2 (the partial chain of spec §1, Fig. 15): the prefix parities at even positions,
  x1x2, x1..x4, ..., and, when d is odd, one final token prod(x) (= the parity of the whole
  input) so that the last chain token is always the answer. Length ceil(d/2).

Outputs ("codes"): every output is an int32 vector of K = d + 1 slots holding +1 / -1 for output
bits, `EOS` after the last bit, `PAD` after EOS, and `BAD` for a token that is not an output
token (decoded transformer responses only). `length` is the number of bits before EOS (1 for a
short answer, chain_len(d, leap) for a long one; K when there is no EOS at all).

Rewards (pure functions of one example, spec §3 and §7 #6):
- r_cot = 1 iff the output is exactly the correct full chain then EOS, or exactly the correct short
  answer then EOS.
- r_e2e = 1 iff the output ends with EOS and the bit before EOS equals prod(x).

Transformer encoding (spec §7 #1, used by the decoder arm later): vocabulary {PAD, BOS, EOS_TOKEN,
PLUS, MINUS, SEP} (ids 0..5); a sequence is `BOS x_1..x_d SEP y_1..y_k EOS` padded to 2d + 3 tokens.
The prompt is its first d + 2 tokens. `loss_mask[t] = 1` marks token t as a prediction target
(predicted from tokens < t): the output bits and EOS, plus the input bits and SEP with
`include_inputs=True`. Token ids belong to the task; no model is imported here.
"""
from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core.config import require

# output codes
PAD, EOS, BAD = 0, 2, 3
# token ids of the transformer encoding: the shared token-task convention (tasks/vocab.py: PAD, BOS,
# EOS are 0, 1, 2; the task's words follow), here the words "+1", "-1", "SEP"
PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, PLUS_TOKEN, MINUS_TOKEN, SEP_TOKEN = 0, 1, 2, 3, 4, 5
VOCAB_SIZE = 6
CHAINS = {"full": 1, "leap2": 2}


def chain_len(d: int, leap: int = 1) -> int:
    """Number of chain tokens of a long demonstration (static)."""
    return d if leap == 1 else (d + 1) // 2


def chain_positions(d: int, leap: int = 1) -> np.ndarray:
    """0-based indices into the prefix-parity vector cumprod(x) of the chain tokens (static)."""
    if leap == 1:
        return np.arange(d)
    return np.minimum(2 * np.arange(chain_len(d, 2)) + 1, d - 1)


@dataclasses.dataclass(frozen=True)
class ParitySpec:
    """Static shape of the task: d input bits and the chain kind; p_cot is passed separately
    (a traced array) so that runs with different mixtures share one program."""

    d: int
    chain: str = "full"

    def validate(self):
        require(isinstance(self.d, int) and self.d >= 2, "d", self.d, "an integer >= 2")
        require(self.chain in CHAINS, "chain", self.chain, " or ".join(CHAINS))

    @property
    def leap(self) -> int:
        return CHAINS[self.chain]

    @property
    def chain_len(self) -> int:
        return chain_len(self.d, self.leap)

    @property
    def out_len(self) -> int:
        return self.d + 1

    @property
    def prompt_len(self) -> int:
        return self.d + 2

    @property
    def seq_len(self) -> int:
        return 2 * self.d + 3


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ParityBatch:
    """N demonstrations: inputs, which are long, and the target outputs (codes) with lengths."""

    x: jax.Array  # int32[N, d], entries +1 / -1
    is_long: jax.Array  # bool[N]
    outputs: jax.Array  # int32[N, d + 1]
    length: jax.Array  # int32[N]


def _check_x(x: jax.Array, rank: int, name: str = "x") -> None:
    if x.ndim != rank:
        raise ValueError(f"{name} must have rank {rank}, got shape {x.shape}")
    if x.shape[-1] < 2:
        raise ValueError(f"{name} needs d >= 2 input bits, got shape {x.shape}")


def _check_leap(leap: int) -> None:
    if leap not in (1, 2):
        raise ValueError(f"leap must be 1 or 2, got {leap!r}")


def parity(x_D: jax.Array) -> jax.Array:
    """prod(x) as int32 (+1 / -1)."""
    return jnp.prod(x_D.astype(jnp.int32), axis=-1)


def chain(x_D: jax.Array, leap: int = 1) -> jax.Array:
    """The long demonstration's chain tokens (int32[chain_len])."""
    _check_leap(leap)
    prefix = jnp.cumprod(x_D.astype(jnp.int32), axis=-1)
    return prefix[..., chain_positions(x_D.shape[-1], leap)]


def pad_output(bits: jax.Array, out_len: int) -> jax.Array:
    """Bits then EOS then PAD up to out_len slots (static number of bits)."""
    k = bits.shape[-1]
    tail = jnp.full(bits.shape[:-1] + (out_len - k,), PAD, jnp.int32).at[..., 0].set(EOS)
    return jnp.concatenate([bits.astype(jnp.int32), tail], axis=-1)


def targets(x_D: jax.Array, is_long, leap: int = 1) -> tuple[jax.Array, jax.Array]:
    """Target output (codes, d + 1 slots) and length of one demonstration."""
    _check_x(x_D, 1)
    d = x_D.shape[0]
    long_out = pad_output(chain(x_D, leap), d + 1)
    short_out = pad_output(parity(x_D)[None], d + 1)
    outputs = jnp.where(is_long, long_out, short_out)
    return outputs, jnp.where(is_long, chain_len(d, leap), 1).astype(jnp.int32)


@partial(jax.jit, static_argnames=("d", "n", "leap"))
def sample(key: jax.Array, d: int, p_cot, n: int, leap: int = 1) -> ParityBatch:
    """n fresh demonstrations from D(p_cot) (online: call with a new key every step)."""
    _check_leap(leap)
    k_x, k_z = jax.random.split(key)
    x = jax.random.rademacher(k_x, (n, d), dtype=jnp.int32)
    is_long = jax.random.bernoulli(k_z, p_cot, (n,))
    outputs, length = jax.vmap(partial(targets, leap=leap))(x, is_long)
    return ParityBatch(x, is_long, outputs, length)


def sample_prompts(key: jax.Array, d: int, n: int) -> jax.Array:
    """n fresh inputs x (int32[n, d])."""
    return jax.random.rademacher(key, (n, d), dtype=jnp.int32)


# ----------------------------------------------------------------------------------------------
# rewards (one example; `rewards` batches them)


def _check_output(x_D, outputs_K):
    _check_x(x_D, 1)
    if outputs_K.ndim != 1 or outputs_K.shape[0] < 2:
        raise ValueError(f"outputs must be one vector of >= 2 slots, got shape {outputs_K.shape}")


def r_cot(x_D: jax.Array, outputs_K: jax.Array, length, leap: int = 1) -> jax.Array:
    """1.0 iff the output is exactly the correct chain + EOS or exactly the correct answer + EOS."""
    _check_output(x_D, outputs_K)
    d, k = x_D.shape[0], outputs_K.shape[0]
    n = chain_len(d, leap)
    short_ok = (length == 1) & (outputs_K[0] == parity(x_D)) & (outputs_K[1] == EOS)
    if n + 1 <= k:
        want = pad_output(chain(x_D, leap), n + 1)
        long_ok = (length == n) & jnp.all(outputs_K[:n + 1] == want)
    else:  # too few slots to hold a chain: a long answer cannot be present
        long_ok = jnp.bool_(False)
    return (short_ok | long_ok).astype(jnp.float32)


def r_e2e(x_D: jax.Array, outputs_K: jax.Array, length) -> jax.Array:
    """1.0 iff the output ends with EOS and the bit right before EOS equals prod(x)."""
    _check_output(x_D, outputs_K)
    k = outputs_K.shape[0]
    has_eos = (length >= 1) & (length < k) & (jnp.take(outputs_K, jnp.clip(length, 0, k - 1)) == EOS)
    last = jnp.take(outputs_K, jnp.clip(length - 1, 0, k - 1))
    return (has_eos & (last == parity(x_D))).astype(jnp.float32)


REWARDS = ("cot", "e2e")


def rewards(kind: str, x_NxD: jax.Array, outputs_NxK: jax.Array, length_N: jax.Array, leap: int = 1) -> jax.Array:
    """Batched r_cot ("cot") or r_e2e ("e2e"): float32[N]."""
    _check_x(x_NxD, 2)
    if outputs_NxK.ndim != 2 or length_N.shape != (x_NxD.shape[0],) or outputs_NxK.shape[0] != x_NxD.shape[0]:
        raise ValueError(f"need outputs [N, K] and length [N] for N = {x_NxD.shape[0]}, got "
                         f"{outputs_NxK.shape} and {length_N.shape}")
    if kind == "cot":
        return jax.vmap(partial(r_cot, leap=leap))(x_NxD, outputs_NxK, length_N)
    if kind == "e2e":
        return jax.vmap(r_e2e)(x_NxD, outputs_NxK, length_N)
    raise ValueError(f"reward kind must be one of {REWARDS}, got {kind!r}")


# ----------------------------------------------------------------------------------------------
# transformer token encoding


def _bits_to_tokens(bits):
    return jnp.where(bits > 0, PLUS_TOKEN, MINUS_TOKEN).astype(jnp.int32)


def encode_prompts(x_NxD: jax.Array) -> jax.Array:
    """`BOS x_1..x_d SEP`: int32[N, d + 2]."""
    _check_x(x_NxD, 2)
    n = x_NxD.shape[0]
    bos = jnp.full((n, 1), BOS_TOKEN, jnp.int32)
    sep = jnp.full((n, 1), SEP_TOKEN, jnp.int32)
    return jnp.concatenate([bos, _bits_to_tokens(x_NxD), sep], axis=1)


def encode_outputs(x_NxD: jax.Array, outputs_NxK: jax.Array, length_N: jax.Array,
                   include_inputs: bool = False) -> tuple[jax.Array, jax.Array]:
    """Prompt + output tokens (K = d + 1 slots) -> (tokens int32[N, 2d+3], loss_mask float32[N, 2d+3]).

    The mask covers the output bits and EOS (slots 0..length); with include_inputs also x and SEP.
    """
    _check_x(x_NxD, 2)
    n, d = x_NxD.shape
    if outputs_NxK.shape != (n, d + 1) or length_N.shape != (n,):
        raise ValueError(f"need outputs [{n}, {d + 1}] and length [{n}], got {outputs_NxK.shape} and {length_N.shape}")
    out_tok = jnp.select([outputs_NxK == 1, outputs_NxK == -1, outputs_NxK == EOS],
                         [PLUS_TOKEN, MINUS_TOKEN, EOS_TOKEN], PAD_TOKEN).astype(jnp.int32)
    tokens = jnp.concatenate([encode_prompts(x_NxD), out_tok], axis=1)
    slot_1xK = jnp.arange(d + 1)[None, :]
    out_mask = (slot_1xK <= length_N[:, None]) & (out_tok != PAD_TOKEN)
    in_mask = jnp.broadcast_to(jnp.arange(d + 2)[None, :] >= 1, (n, d + 2)) & include_inputs
    return tokens, jnp.concatenate([in_mask, out_mask], axis=1).astype(jnp.float32)


def encode_demos(x_NxD: jax.Array, is_long_N: jax.Array, leap: int = 1,
                 include_inputs: bool = False) -> tuple[jax.Array, jax.Array]:
    """Demonstrations of D(p_cot) as token sequences: (tokens [N, 2d+3], loss_mask [N, 2d+3])."""
    outputs, length = jax.vmap(partial(targets, leap=leap))(x_NxD, is_long_N)
    return encode_outputs(x_NxD, outputs, length, include_inputs)


def decode_outputs(tokens_NxR: jax.Array, mask_NxR: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sampled response tokens (after the prompt) -> (codes int32[N, R], length int32[N]).

    `mask` marks the positions the sampler actually produced. PLUS/MINUS -> +1/-1, EOS -> EOS,
    any other produced token -> BAD, unproduced positions and everything after the first EOS ->
    PAD. `length` is the index of the first EOS, or R when there is none (r_e2e and r_cot are 0).
    """
    if tokens_NxR.ndim != 2 or mask_NxR.shape != tokens_NxR.shape:
        raise ValueError(f"need tokens and mask of equal shape [N, R], got {tokens_NxR.shape} and {mask_NxR.shape}")
    r = tokens_NxR.shape[1]
    valid = mask_NxR.astype(bool)
    codes = jnp.select([tokens_NxR == PLUS_TOKEN, tokens_NxR == MINUS_TOKEN, tokens_NxR == EOS_TOKEN],
                       [1, -1, EOS], BAD).astype(jnp.int32)
    codes = jnp.where(valid, codes, PAD)
    is_eos = codes == EOS
    length = jnp.where(jnp.any(is_eos, axis=1), jnp.argmax(is_eos, axis=1), r).astype(jnp.int32)
    after = jnp.arange(r)[None, :] > length[:, None]
    return jnp.where(after, PAD, codes), length
