"""Shuffled affine-equation chains: the small-model analog of Ran-Milo et al.'s LLM experiment.

Spec `chain_traversal.md` §8.1 (v1) and §8.3. A problem has two chains of L = chain_len variables
with distinct labels drawn from a pool x0..x{K-1}. Every edge u -> w of both chains gives an
equation `x_u ± c = x_w .` (the paper's x_w = x_u ± c written known-variable first; sign uniform, c
uniform in 1..max_const), including the edges upstream of the source, as in the paper. One constant equation `x_s = v0 .` (v0 uniform in 1..max_v0) pins
the source s of chain 1; the distractor chain (chain 2) has no constant, so none of its values is
determined. The equations are shuffled and followed by `Find x_t`, t the terminal of chain 1.
The distance d = L-1-pos(s) is drawn from a vector `dist_probs_D` over 1..L-1 (traced: the
uniform-vs-hard knob is an array, so it vmaps).

Values are plain small integers, not residues mod p: every chain-1 value is within L-1 edges of
the source, so it lies in [1 - max_const (L-1), max_v0 + max_const (L-1)] and gets its own token
(about 6L + 10 tokens, 52 for L = 8). Constants reuse the value tokens 1..max_const. Exact
integers match the paper's task and keep one token per value; the answer space is small, so a
guesser's outcome-only pass@k grows fast with k (rlvr_limits.md §6.4): report process_correct too.

Token layout (all ids static, so jitted code never consults the Vocab): PAD, BOS, EOS, then
`= + - . ; Find <think> </think> <answer> </answer>`, then the K label tokens, then the values.
Prompt: BOS, the 2L-1 shuffled equations (2(L-1) edges of 6 tokens, one constant of 4), `Find`,
x_t: Lp = 12L - 5 tokens for every problem of a spec, so no padding is needed.

Why the known variable comes first: the solver always knows u and looks for the edge out of it. With
`x_u ± c = x_w`, each retrieval is an induction-style copy (find the previous occurrence of the
current token x_u in the prompt and copy the tokens that follow it), which a small decoder learns in
far fewer steps than a content lookup keyed on the right-hand side (the `x_w = x_u ± c` order left
the left-hand label at 0.41 accuracy after 1,600 pre-training steps at L = 5). The math is unchanged.

Worked solution (the CoT), the only response format the verifier accepts; every token is one
retrieval from the prompt or one local operation, so a small decoder can learn it step by step:
`<think> x_s = v0 ; x_s ± c = x_a = v_a ; x_a ± c = x_b = v_b ; ... </think> <answer> v_t </answer> <eos>`.
The first step restates the constant equation (4 tokens); each further step starts with the
previous node u (the last step's new label), copies what follows x_u in the prompt (`± c = x_w`)
and appends `= v ;` with v = v_u ± c (8 tokens), one per chain edge from s to t; then x_t as the
answer: 8d + 10 tokens, at most 8(L-1) + 10.
"""
from __future__ import annotations

import dataclasses
import functools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core.config import require
from theoryrl.tasks.chain import inverse_cdf, random_permutations, uniform_over
from theoryrl.tasks.vocab import BOS_ID, EOS_ID, PAD_ID, Vocab

SYMBOLS = ("=", "+", "-", ".", ";", "Find", "<think>", "</think>", "<answer>", "</answer>")
EQ, PLUS, MINUS, DOT, SEMI, FIND, THINK, END_THINK, ANSWER, END_ANSWER = range(3, 3 + len(SYMBOLS))
LABEL0 = 3 + len(SYMBOLS)  # id of label x0
REWARDS = ("answer", "process", "format+answer")
SLIP_SIGNS = ("per_problem", "global")  # direction of a slipped demonstration's errors (`slip_drift`)
_SOURCE_END = 5  # `<think> x_s = v0 ;`: the first edge step starts here
# expected token class per response position: an exact token id, or one of these (negative) codes
_LBL, _VAL, _SIGN = -1, -2, -3
_HEAD = np.array([THINK, _LBL, EQ, _VAL, SEMI])
_EDGE = np.array([_LBL, _SIGN, _VAL, EQ, _LBL, EQ, _VAL, SEMI])
_TAIL = np.array([END_THINK, ANSWER, _VAL, END_ANSWER, EOS_ID])


@dataclasses.dataclass(frozen=True)
class EquationSpec:
    """Static shape of the task (hashable: a jit static argument)."""

    chain_len: int = 8
    num_labels: int = 0  # size of the label pool; 0 -> 2 * chain_len
    max_const: int = 3
    max_v0: int = 10
    # chain length whose value range the vocabulary covers; 0 -> chain_len. Specs that share
    # num_labels, max_const, max_v0 and vocab_chain_len share every token id whatever their
    # chain_len, so short systems can pre-train a model for long ones (a reading curriculum)
    vocab_chain_len: int = 0
    # extra value tokens on both sides of the range: room for the values of worked solutions
    # with slips (`solution_tokens(slip_prob=...)`), which drift by up to ±1 per slipped step
    value_margin: int = 0

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        def whole(x):
            return isinstance(x, int) and not isinstance(x, bool)

        # <= 128 and <= 256: the permutations are packed-key sorts of at most 256 items
        require(whole(self.chain_len) and 2 <= self.chain_len <= 128, "chain_len", self.chain_len,
                "an integer in 2..128")
        require(whole(self.num_labels) and (self.num_labels == 0 or 2 * self.chain_len <= self.num_labels <= 256),
                "num_labels", self.num_labels, f"0 (-> 2*chain_len) or an integer in {2 * self.chain_len}..256")
        require(whole(self.max_const) and self.max_const >= 1, "max_const", self.max_const, "an integer >= 1")
        require(whole(self.max_v0) and self.max_v0 >= 1, "max_v0", self.max_v0, "an integer >= 1")
        require(whole(self.vocab_chain_len) and (self.vocab_chain_len == 0 or self.vocab_chain_len >= self.chain_len),
                "vocab_chain_len", self.vocab_chain_len, f"0 (-> chain_len) or an integer >= chain_len = {self.chain_len}")
        require(whole(self.value_margin) and self.value_margin >= 0, "value_margin", self.value_margin,
                "an integer >= 0")

    @property
    def labels(self) -> int:
        return self.num_labels or 2 * self.chain_len

    @property
    def value_min(self) -> int:
        return 1 - self.max_const * ((self.vocab_chain_len or self.chain_len) - 1) - self.value_margin

    @property
    def value_max(self) -> int:
        return self.max_v0 + self.max_const * ((self.vocab_chain_len or self.chain_len) - 1) + self.value_margin

    @property
    def value0(self) -> int:
        """Token id of the smallest value."""
        return LABEL0 + self.labels

    @property
    def num_values(self) -> int:
        return self.value_max - self.value_min + 1

    @property
    def vocab_size(self) -> int:
        return self.value0 + self.num_values

    @property
    def num_equations(self) -> int:
        return 2 * (self.chain_len - 1) + 1


def prompt_len(spec: EquationSpec) -> int:
    return 1 + 6 * 2 * (spec.chain_len - 1) + 4 + 2


def max_response_len(spec: EquationSpec) -> int:
    return solution_len(spec.chain_len - 1)


def solution_len(distance):
    """Tokens in the worked solution at `distance` (EOS included): `<think> x_s = v0 ;`, one 8-token
    step per edge, then `</think> <answer> v </answer> EOS`. A greedy response of another length at a
    distance the model was trained on means it stopped early or ran on."""
    return _SOURCE_END + 8 * distance + 5



@functools.lru_cache(maxsize=None)
def vocab(spec: EquationSpec) -> Vocab:
    labels = tuple(f"x{i}" for i in range(spec.labels))
    values = tuple(str(v) for v in range(spec.value_min, spec.value_max + 1))
    return Vocab(SYMBOLS + labels + values)


def value_token(spec: EquationSpec, value):
    return value - spec.value_min + spec.value0


def token_value(spec: EquationSpec, token):
    return token - spec.value0 + spec.value_min


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Problems:
    """N problems. Labels are pool indices (token = LABEL0 + label); values are integers.

    path_* hold the solution's edge steps, the d nodes after s on chain 1 in order, padded after
    d with label -1, delta 0 and value 0; path_deltas is the signed constant ±c of the edge into
    each node (its value = the previous node's value + delta).
    """

    prompt_NxLp: jax.Array  # int32 token ids, starting with BOS
    answer_N: jax.Array  # int32 value of x_t
    distance_N: jax.Array  # int32 d in 1..L-1
    path_labels_NxLm1: jax.Array  # int32
    path_values_NxLm1: jax.Array  # int32
    source_N: jax.Array  # int32 label of s
    target_N: jax.Array  # int32 label of t
    source_value_N: jax.Array  # int32 v0 = x_s, the constant equation's value
    path_deltas_NxLm1: jax.Array  # int32 ±c


def distance_probs(spec: EquationSpec, kind: str) -> np.ndarray:
    """Distance distribution over 1..L-1: "uniform", "hard" (L-1 only) or "short:K" (1..K uniform)."""
    top = spec.chain_len - 1
    if kind == "uniform":
        return uniform_over(range(1, top + 1), spec.chain_len, "distance_probs")
    if kind == "hard":
        return uniform_over([top], spec.chain_len, "distance_probs")
    if kind.startswith("short:"):
        k = kind.split(":", 1)[1]
        require(k.isdigit() and 1 <= int(k) <= top, "distance_probs", kind, f"short:K with K in 1..{top}")
        return uniform_over(range(1, int(k) + 1), spec.chain_len, "distance_probs")
    require(False, "distance_probs", kind, "'uniform', 'hard' or 'short:K'")


def _build_one(spec: EquationSpec, labels_K, order_E, d, v0, minus_2xLm1, const_2xLm1) -> Problems:
    """One problem from its random draws (deterministic, vmapped by `sample_problems`)."""
    L, E = spec.chain_len, spec.num_equations
    chains_2xL = labels_K[: 2 * L].reshape(2, L)
    pos_s = L - 1 - d
    # x at position i of chain 1: v0 plus the signed constants of the edges between s and i
    delta_Lm1 = jnp.where(minus_2xLm1[0], -1, 1) * const_2xLm1[0]  # of chain 1's edge i -> i+1
    cum_L = jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(delta_Lm1)])
    values_L = v0 + cum_L - cum_L[pos_s]
    edge_rows = jnp.stack([  # `x_u ± c = x_w .`: the known variable first (an induction copy)
        LABEL0 + chains_2xL[:, :-1], jnp.where(minus_2xLm1, MINUS, PLUS), value_token(spec, const_2xLm1),
        jnp.full((2, L - 1), EQ), LABEL0 + chains_2xL[:, 1:], jnp.full((2, L - 1), DOT),
    ], axis=-1).reshape(2 * (L - 1), 6)
    const_row = jnp.stack([LABEL0 + chains_2xL[0, pos_s], EQ, value_token(spec, v0), DOT, PAD_ID, PAD_ID])
    rows_Ex6 = jnp.concatenate([edge_rows, const_row[None]])[order_E]  # row E-1 is the constant
    # the constant row is 4 tokens long: skip its 2 trailing pads when flattening
    after = 6 * jnp.argmax(order_E == E - 1) + 4
    p = jnp.arange(6 * E - 2)
    body = rows_Ex6.reshape(-1)[p + 2 * (p >= after)]
    prompt = jnp.concatenate([jnp.array([BOS_ID]), body, jnp.stack([FIND, LABEL0 + chains_2xL[0, L - 1]])])
    j = jnp.arange(L - 1)
    on, idx = j < d, jnp.minimum(pos_s + 1 + j, L - 1)
    return Problems(
        prompt_NxLp=prompt.astype(jnp.int32), answer_N=values_L[L - 1].astype(jnp.int32),
        distance_N=d.astype(jnp.int32),
        path_labels_NxLm1=jnp.where(on, chains_2xL[0, idx], -1).astype(jnp.int32),
        path_values_NxLm1=jnp.where(on, values_L[idx], 0).astype(jnp.int32),
        source_N=chains_2xL[0, pos_s], target_N=chains_2xL[0, L - 1],
        source_value_N=v0.astype(jnp.int32),
        path_deltas_NxLm1=jnp.where(on, delta_Lm1[idx - 1], 0).astype(jnp.int32),
    )


def _uniform_int(u, high: int):
    """Integer uniform in 1..high from u ~ U[0, 1) (float32 grid: bias about high * 2^-24)."""
    return jnp.minimum(1 + jnp.floor(u * high).astype(jnp.int32), high)


@partial(jax.jit, static_argnames=("spec", "n"))
def sample_problems(key: jax.Array, spec: EquationSpec, dist_probs_D: jax.Array, n: int) -> Problems:
    """n fresh problems, distance ~ dist_probs_D over 1..L-1 (may be traced).

    All randomness is drawn batched (two integer sorts for the label and equation permutations,
    one uniform draw for the rest: on CPU the RNG and the compile time of many small random calls
    dominate), then each problem is assembled by a vmapped deterministic function.
    """
    dist_probs_D = jnp.asarray(dist_probs_D)
    if dist_probs_D.shape != (spec.chain_len - 1,):
        raise ValueError(f"dist_probs_D must have shape ({spec.chain_len - 1},) (distances 1..L-1), "
                         f"got {dist_probs_D.shape}")
    L = spec.chain_len
    k_lab, k_order, k_u = jax.random.split(key, 3)
    labels_NxK = random_permutations(k_lab, n, spec.labels)
    order_NxE = random_permutations(k_order, n, spec.num_equations)
    u = jax.random.uniform(k_u, (n, 2 + 4 * (L - 1)))
    d_N = 1 + inverse_cdf(dist_probs_D, u[:, 0])
    v0_N = _uniform_int(u[:, 1], spec.max_v0)
    minus = (u[:, 2: 2 * L] < 0.5).reshape(n, 2, L - 1)
    const = _uniform_int(u[:, 2 * L:], spec.max_const).reshape(n, 2, L - 1)
    return jax.vmap(partial(_build_one, spec))(labels_NxK, order_NxE, d_N, v0_N, minus, const)


def _check_problems(spec: EquationSpec, problems: Problems) -> int:
    num, lp = problems.prompt_NxLp.shape
    if lp != prompt_len(spec) or problems.path_labels_NxLm1.shape != (num, spec.chain_len - 1):
        raise ValueError(f"problems do not match the spec: prompt {problems.prompt_NxLp.shape} (want [N, "
                         f"{prompt_len(spec)}]), path {problems.path_labels_NxLm1.shape}")
    return num


def _step_tokens(spec: EquationSpec, source, v0, labels_Lm1, deltas_Lm1, values_Lm1):
    """The correct steps `x_s = v0 ;` then every `x_u ± c = x_w = v ;` (L-1 of them, valid up to d):
    response positions 1 .. 4 + 8(L-1)."""
    prev_Lm1 = jnp.concatenate([source[None], labels_Lm1[:-1]])  # u: the node before each step's w
    eq_Lm1 = jnp.full_like(labels_Lm1, EQ)
    edges_Lm1x8 = jnp.stack([
        LABEL0 + prev_Lm1, jnp.where(deltas_Lm1 < 0, MINUS, PLUS), value_token(spec, jnp.abs(deltas_Lm1)), eq_Lm1,
        LABEL0 + labels_Lm1, eq_Lm1, value_token(spec, values_Lm1), jnp.full_like(labels_Lm1, SEMI),
    ], axis=-1)
    head = jnp.stack([LABEL0 + source, EQ, value_token(spec, v0), SEMI])
    return jnp.concatenate([head, edges_Lm1x8.reshape(-1)]).astype(jnp.int32)


def _solution_one(spec: EquationSpec, d, source, v0, labels_Lm1, deltas_Lm1, values_Lm1, answer):
    steps = _step_tokens(spec, source, v0, labels_Lm1, deltas_Lm1, values_Lm1)
    body = jnp.concatenate([jnp.array([THINK], jnp.int32), steps])  # positions 0 .. 4 + 8(L-1)
    tail = jnp.stack([END_THINK, ANSWER, value_token(spec, answer), END_ANSWER, EOS_ID])
    t = jnp.arange(max_response_len(spec))
    end = _SOURCE_END + 8 * d  # first tail position
    tokens = jnp.where(t < end, body[jnp.minimum(t, body.shape[0] - 1)],
                       jnp.where(t < end + 5, tail[jnp.clip(t - end, 0, 4)], PAD_ID))
    return tokens.astype(jnp.int32), (t < end + 5).astype(jnp.int32)


def slip_drift(key: jax.Array, spec: EquationSpec, distance_N: jax.Array, slip_prob,
               slip_sign: str = "per_problem") -> jax.Array:
    """[N, L-1] int32: how far each written value of a worked solution with slips is off.

    Each of the d edge steps slips independently with probability `slip_prob` (may be traced): its
    written value is off by ±1 from the previous written value ± c, with one sign per problem, so
    slips never cancel within a demonstration. Later steps do their arithmetic on the written values,
    so the drift is the running count of slips and any slip makes the answer wrong: the outcome
    reward of a demonstration is exactly its process correctness.

    `slip_sign` (static) picks that sign: "per_problem" draws it uniformly, "global" makes every slip
    +1. The difference shows in the model trained on them, not in the demonstrations: the sign of a
    "per_problem" demonstration cannot be read off the prompt, so a model that imitates them slips
    either way at each step, its opposite slips cancel, and outcome reward credits some wrong chains;
    under "global" its slips add up, so outcome reward stays close to process correctness. Both
    draw the same slip positions from the same key."""
    require(slip_sign in SLIP_SIGNS, "slip_sign", slip_sign, " | ".join(SLIP_SIGNS))
    num, steps = distance_N.shape[0], spec.chain_len - 1
    k_on, k_sign = jax.random.split(key)
    on_NxLm1 = jax.random.bernoulli(k_on, slip_prob, (num, steps)) & (jnp.arange(steps)[None, :] < distance_N[:, None])
    sign_N = (jnp.where(jax.random.bernoulli(k_sign, 0.5, (num,)), 1, -1) if slip_sign == "per_problem"
              else jnp.ones((num,), jnp.int32))
    return (jnp.cumsum(on_NxLm1, axis=1) * sign_N[:, None]).astype(jnp.int32)


@partial(jax.jit, static_argnames=("spec", "seq_len", "slip_sign"))
def solution_tokens(spec: EquationSpec, problems: Problems, seq_len: int = 0, slip_key: jax.Array | None = None,
                    slip_prob=0.0, slip_sign: str = "per_problem") -> tuple[jax.Array, jax.Array]:
    """(tokens_NxS, loss_mask_NxS): prompt then worked solution, PAD-padded to S = Lp + max_response_len,
    or to `seq_len` when that is larger (to batch a shorter spec with a longer one's shapes).

    loss_mask is 1 on the solution tokens (EOS included), 0 on the prompt and the padding.
    With `slip_key`, each edge step's arithmetic slips with probability `slip_prob` (`slip_drift`):
    demonstrations of a solver whose every step is right with probability 1 - slip_prob, the
    theory's per-step forward probability, each slip in the direction `slip_sign` says. The spec's
    `value_margin` must hold the drift (>= L-1).
    """
    num = _check_problems(spec, problems)
    full = prompt_len(spec) + max_response_len(spec)
    require(seq_len == 0 or seq_len >= full, "seq_len", seq_len, f"0 or >= {full} (prompt + longest solution)")
    values, answer = problems.path_values_NxLm1, problems.answer_N
    if slip_key is not None:
        require(spec.value_margin >= spec.chain_len - 1, "value_margin", spec.value_margin,
                f">= chain_len - 1 = {spec.chain_len - 1} (room for the drift of slipped steps)")
        drift = slip_drift(slip_key, spec, problems.distance_N, slip_prob, slip_sign)
        values = values + drift
        answer = answer + jnp.take_along_axis(drift, problems.distance_N[:, None] - 1, axis=1)[:, 0]
    sol, mask = jax.vmap(partial(_solution_one, spec))(
        problems.distance_N, problems.source_N, problems.source_value_N, problems.path_labels_NxLm1,
        problems.path_deltas_NxLm1, values, answer)
    tokens = jnp.concatenate([problems.prompt_NxLp, sol], axis=1)
    loss_mask = jnp.concatenate([jnp.zeros((num, prompt_len(spec)), jnp.int32), mask], axis=1)
    pad = ((0, 0), (0, max(seq_len - full, 0)))
    return jnp.pad(tokens, pad, constant_values=PAD_ID), jnp.pad(loss_mask, pad)


def _format_one(spec: EquationSpec, resp_T: jax.Array, mask_T: jax.Array):
    """(format_ok, number of edge steps): is the masked prefix exactly the response grammar?

    Each position gets its expected token class (head, edge steps repeating with period 8, tail)
    and is checked against it; positions past the masked length are free.
    """
    (T,) = resp_T.shape
    length = jnp.sum(mask_T)
    steps = (length - 10) // 8
    shape_ok = (length >= 10) & ((length - 10) % 8 == 0) & jnp.all(~mask_T[1:] | mask_T[:-1])
    t = jnp.arange(T)
    end = _SOURCE_END + 8 * steps
    code_T = jnp.where(t < _SOURCE_END, jnp.asarray(_HEAD)[jnp.minimum(t, 4)],
                       jnp.where(t < end, jnp.asarray(_EDGE)[(t - _SOURCE_END) % 8],
                                 jnp.asarray(_TAIL)[jnp.clip(t - end, 0, 4)]))
    is_label = (resp_T >= LABEL0) & (resp_T < LABEL0 + spec.labels)
    is_value = (resp_T >= spec.value0) & (resp_T < spec.value0 + spec.num_values)
    is_sign = (resp_T == PLUS) | (resp_T == MINUS)
    ok_T = jnp.select([code_T == _LBL, code_T == _VAL, code_T == _SIGN], [is_label, is_value, is_sign],
                      resp_T == code_T)
    return shape_ok & jnp.all(ok_T | (t >= length)), steps


def _verify_one(spec: EquationSpec, resp_T, mask_T, answer, d, source, v0, labels_Lm1, deltas_Lm1, values_Lm1):
    (T,) = resp_T.shape
    format_ok, steps = _format_one(spec, resp_T, mask_T)
    given = token_value(spec, resp_T[jnp.clip(_SOURCE_END + 8 * steps + 2, 0, T - 1)])
    answer_ok = format_ok & (given == answer)
    # process: every token of the source step and the d edge steps is the true one (values are
    # value tokens once format_ok holds, so token equality is value equality)
    want = _step_tokens(spec, source, v0, labels_Lm1, deltas_Lm1, values_Lm1)
    i = jnp.arange(want.shape[0])
    got = resp_T[jnp.minimum(1 + i, T - 1)]
    process_ok = answer_ok & (steps == d) & jnp.all((got == want) | (i >= 4 + 8 * d))
    return format_ok, answer_ok, process_ok, given.astype(jnp.int32), jnp.where(format_ok, steps, -1)


@partial(jax.jit, static_argnames=("spec", "reward"))
def verify(spec: EquationSpec, problems: Problems, response_NxT: jax.Array, response_mask_NxT: jax.Array,
           *, reward: str = "answer") -> dict:
    """Token-level checker (pure JAX, jit/vmap-able); responses start right after the prompt.

    format_ok_N: the masked tokens (a prefix of the row) are exactly
        `<think> label = value ; (label sign value = label = value ;)* </think> <answer> value </answer> <eos>`
        (any value token is accepted as an edge's constant).
    answer_correct_N: format_ok and the answer is x_t (outcome only: the steps may be wrong).
    process_correct_N: answer_correct, the first step is the constant equation `x_s = v0 ;`, and
        there are exactly d edge steps, each the true chain edge (previous node u, sign, c, next
        node w) copied from the prompt with its correct value.
    reward_N (float32): "answer" -> answer_correct (default; outcome reward, as in the paper's
        exact-match reward), "process" -> process_correct, "format+answer" -> format_ok +
        answer_correct (the paper's two summed binary rewards, in 0..2).
    Also answer_N (the stated answer, meaningful where format_ok) and steps_N (the number of edge
    steps, -1 where not format_ok), for diversity metrics and diagnostics.
    """
    require(reward in REWARDS, "reward", reward, " | ".join(REWARDS))
    num = _check_problems(spec, problems)
    if response_NxT.ndim != 2 or response_mask_NxT.shape != response_NxT.shape or response_NxT.shape[0] != num:
        raise ValueError(f"response_NxT and response_mask_NxT must both be [N={num}, T], "
                         f"got {response_NxT.shape} and {response_mask_NxT.shape}")
    fmt, ans, proc, given, steps = jax.vmap(partial(_verify_one, spec))(
        response_NxT, response_mask_NxT.astype(bool), problems.answer_N, problems.distance_N, problems.source_N,
        problems.source_value_N, problems.path_labels_NxLm1, problems.path_deltas_NxLm1, problems.path_values_NxLm1)
    r = {"answer": ans, "process": proc, "format+answer": fmt.astype(jnp.int32) + ans}[reward]
    return dict(format_ok_N=fmt, answer_correct_N=ans, process_correct_N=proc, reward_N=r.astype(jnp.float32),
                answer_N=given, steps_N=steps)


def render(spec: EquationSpec, tokens) -> str:
    """Human-readable text of a 1-D token sequence (PAD dropped), or one line per row of a 2-D one."""
    arr = np.asarray(tokens)
    if arr.ndim == 2:
        return "\n".join(vocab(spec).decode(row) for row in arr)
    return vocab(spec).decode(arr)
