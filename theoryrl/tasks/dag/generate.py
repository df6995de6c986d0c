"""DAG-lite generator: arithmetic word problems mod p whose difficulty is the edge count op(G).

Spec `dag_arithmetic.md` §2 and §11.1 (Zhang, Neubig and Yue, arXiv 2512.07783; a clean rewrite of
GSM-Infinite's forward mode, not a port). A problem is a set of statements `<name> = <expr> .` over
quantities named `<item> <place>` (tokens.py), shuffled, then `? <name> <sep>`. Values are residues
mod p. Expressions: `c`, `Y`, `Y + c`, `Y * c` (c in 2..4), `Y + Z`, `Y - Z`. A quantity
`<category> <place>` (an aggregation node, "total animals in the forest") has no statement: it is the
sum of every `<item> <place>` of that place present in the problem, and the solver must find them.

op(G), the difficulty knob (§2.4), is the number of edges of the answer-relevant DAG with constants
counted as edges (`Y + 3` costs 2, an aggregation over k items costs k). Every problem has exactly
the op it was drawn with: the necessary DAG grows backwards from the answer, and each node's kind is
drawn only among those that keep the remaining budget reachable (`_grow`); no rejection sampling.
Distractor statements (§2.5) hang off the necessary nodes and each other, so "is it needed?" takes a
search; they never feed a needed node and never sit at a place whose total is needed.

Solution (the gold one; `verify.py` parses any): one step per necessary node, in the order "the
earliest statement of the prompt whose parents are all done, except that a total goes first as soon
as its items are done" (a total lists its items in prompt order), then `answer <v> <eos>`.
`DagSpec.solution_order="latest"` takes the latest such statement instead (totals unchanged): equally
valid traces of the same problems that a base trained on the earliest order would not write, for the
distillation / perplexity experiments after Yue et al. ("RL does not go beyond the base"). A step
copies its statement with every name immediately followed by its value, then restates the name with
its value:
    `wolf forest = bear forest 12 + 5 = wolf forest 17 ;`   `animals forest = bear forest 12 + wolf
    forest 17 = animals forest 29 ;`
Each token is then a copy from the prompt, a lookup (the token after the last `<name>` seen), or one
local mod-p operation: the probe `notes/dag_lite_probe.md` measured this kind of format (every
variable followed by its value) as learned far faster by a small decoder than formats that need a
value recalled from further away.
"""
from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core.config import is_int, require
from theoryrl.tasks.chain import random_permutations
from theoryrl.tasks.dag import tokens as tk
from theoryrl.tasks.vocab import BOS_ID, EOS_ID, PAD_ID

OP_LIMIT = 20  # largest op the generator supports (spec's op range 2..20)
SOLUTION_ORDERS = ("earliest", "latest")  # which ready statement the gold solution writes next
MAX_AGGREGATES = 2
MAX_PARENTS = 4  # an aggregation sums at most 4 items
# names always free for plain items: the places of at most 2 needed totals are off limits
REGULAR_NAMES = (tk.NUM_PLACES - MAX_AGGREGATES) * tk.NUM_ITEMS
CONST, COPY, ADDC, MULC, ADD, SUB, AGG = range(7)
KIND_NAMES = ("const", "copy", "add_const", "mul_const", "add", "sub", "total")
# Backward growth options: (kind, new parents, parents shared with open nodes, ops, weight). Choosing
# an option lowers the budget's excess over "one op per open node" by ops + new - 1 (see `_grow`).
# Weights shape the graphs (leaves, chains, shared parents, totals); they are a choice, not the paper's.
_OPTIONS = np.array([
    (CONST, 0, 0, 1, 3.0), (COPY, 1, 0, 1, 0.5), (COPY, 0, 1, 1, 0.5),
    (ADDC, 1, 0, 2, 1.0), (MULC, 1, 0, 2, 1.0), (ADDC, 0, 1, 2, 0.5), (MULC, 0, 1, 2, 0.5),
    (ADD, 2, 0, 2, 1.0), (SUB, 2, 0, 2, 1.0), (ADD, 1, 1, 2, 0.5), (SUB, 1, 1, 2, 0.5),
    (ADD, 0, 2, 2, 0.25), (SUB, 0, 2, 2, 0.25),
    (AGG, 2, 0, 2, 1.0), (AGG, 3, 0, 3, 0.6), (AGG, 4, 0, 4, 0.3),
])
_DISTRACTOR_KINDS = np.array([CONST, COPY, ADDC, MULC, ADD, SUB])
_DISTRACTOR_WEIGHTS = np.array([1.0, 0.5, 1.0, 1.0, 1.0, 1.0])


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n ** 0.5) + 1))


@dataclasses.dataclass(frozen=True)
class DagSpec:
    """Static shape of the task (hashable: a jit static argument).

    p: the modulus, prime >= 5 (x2, x3, x4 are then distinct invertible maps, so every single wrong
    operand changes a step's value). op_max: the largest op this spec generates (sets the array
    shapes). max_distractors: distractor statements per problem are drawn in 0..max_distractors.
    solution_order: the gold solution's next step among the ready statements, the earliest (default)
    or the latest in the prompt (`_solution_order`); prompts, answers and gold graphs do not depend on it.
    """

    p: int = 97
    op_max: int = 16
    max_distractors: int = 4
    solution_order: str = "earliest"

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        require(is_int(self.p) and 5 <= self.p <= 997 and is_prime(self.p), "p", self.p, "a prime in 5..997")
        require(is_int(self.op_max) and 2 <= self.op_max <= OP_LIMIT, "op_max", self.op_max,
                f"an integer in 2..{OP_LIMIT} (the generator's range)")
        room = REGULAR_NAMES - self.op_max
        require(is_int(self.max_distractors) and 0 <= self.max_distractors <= room, "max_distractors",
                self.max_distractors, f"an integer in 0..{room} (op_max + distractors <= {REGULAR_NAMES} names)")
        require(isinstance(self.solution_order, str) and self.solution_order in SOLUTION_ORDERS, "solution_order",
                self.solution_order, " | ".join(SOLUTION_ORDERS))

    @property
    def num_nodes(self) -> int:
        """Node slots: op_max necessary nodes (each costs >= 1 op), then the distractors."""
        return self.op_max + self.max_distractors

    @property
    def prompt_len(self) -> int:
        return 1 + 9 * self.num_nodes + 4  # BOS, statements of <= 9 tokens, `? noun place <sep>`

    @property
    def solution_len(self) -> int:
        return 10 * self.op_max + 3  # <= 10 tokens per op (a copy step), `answer v <eos>`

    @property
    def vocab_size(self) -> int:
        return tk.vocab_size(self.p)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DagParams:
    """Traced mixture knobs (vmappable): distributions over op 0..op_max (0 and 1 get no mass), over
    the three contexts, and over the distractor count 0..max_distractors. Build with `make_params`."""

    op_probs: jax.Array
    context_probs: jax.Array
    distractor_probs: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DagProblems:
    """B problems: token ids (PAD-padded, lengths beside) and the gold graph indexed by local name id
    (noun * 6 + place, tokens.py): its value (-1 where the name is not a necessary node) and its
    parent-name set as a 42-bit mask in two uint32 words (name n is bit n % 32 of word n // 32)."""

    prompt_BxLp: jax.Array
    prompt_len_B: jax.Array
    solution_BxLs: jax.Array  # the gold solution, EOS included
    solution_len_B: jax.Array
    answer_B: jax.Array
    op_B: jax.Array
    context_B: jax.Array
    num_nodes_B: jax.Array  # |V|: necessary nodes, totals included
    num_distractors_B: jax.Array
    gold_value_BxN: jax.Array
    gold_parents_BxNx2: jax.Array


def _draw(weights, u):
    """Index drawn from non-negative weights with one uniform u; never a zero-weight index."""
    cdf = jnp.cumsum(weights)
    x = jnp.minimum(u * cdf[-1], cdf[-1] * (1 - 1e-6))
    return jnp.argmax(cdf > x).astype(jnp.int32)


def _apply(kind, pv_4, pmask_4, c, p):
    """A node's value from its parents' values and its constant, mod p."""
    total = jnp.sum(jnp.where(pmask_4, pv_4, 0))
    return jnp.select([kind == CONST, kind == COPY, kind == ADDC, kind == MULC, kind == ADD, kind == SUB],
                      [c, pv_4[0], pv_4[0] + c, pv_4[0] * c, pv_4[0] + pv_4[1], pv_4[0] - pv_4[1]], total) % p


def _below(u, n):
    """Integer uniform in 0..n-1 from u ~ U[0, 1) (clamped: a float32 product can round up to n)."""
    return jnp.clip(jnp.floor(u * n).astype(jnp.int32), 0, jnp.maximum(n - 1, 0))


def _constant(kind, u, p):
    return jnp.select([kind == CONST, kind == ADDC, kind == MULC],
                      [_below(u, p), 1 + _below(u, p - 1), 2 + _below(u, 3)], 0).astype(jnp.int32)


def _grow(spec: DagSpec, op, u_Mx5):
    """The necessary DAG, node 0 the answer, grown backwards in node-index order (a BFS queue).

    Node i is defined when it is dequeued; its parents are new nodes (appended to the queue) or open
    nodes still in the queue, so parents always have larger indices (reverse index order is a
    topological order) and every node is an ancestor of the answer. With R ops left and O other open
    nodes, each of which needs >= 1 op, the excess E = R - O - 1 must end at exactly 0 when the queue
    empties: an option is allowed when it keeps E >= 0 and does not close the last open node while
    E > 0. A constant leaf keeps E, so some option is always allowed, and op(G) = op exactly."""
    NT, p = spec.num_nodes, spec.p
    o_kind, o_new, o_sh, o_cost, o_w = (jnp.asarray(_OPTIONS[:, j]) for j in range(5))
    o_kind, o_new, o_sh, o_cost = (x.astype(jnp.int32) for x in (o_kind, o_new, o_sh, o_cost))
    j4 = jnp.arange(MAX_PARENTS)
    idx = jnp.arange(NT)

    def body(i, st):
        C, R, A, kind, par, cval, agg_of, agg_idx, agg_first = st
        active = i < C
        O, u = C - i - 1, u_Mx5[i]
        E = R - O - 1
        ok = (o_cost + o_new - 1 <= E) & (o_sh <= O) & ((o_new > 0) | (O > 0) | (E == 0))
        ok &= (o_kind != AGG) | ((A < MAX_AGGREGATES) & (agg_of[i] < 0))
        o = _draw(jnp.where(ok, o_w, 0.0), u[0])
        k, n_new, n_sh = o_kind[o], o_new[o], o_sh[o]
        s1 = i + 1 + _below(u[1], O)  # two distinct open nodes
        s2 = i + 1 + (s1 - i + _below(u[2], O - 1)) % jnp.maximum(O, 1)
        row = jnp.where(j4 < n_new, C + j4, jnp.where(j4 == n_new, s1, s2))
        row = jnp.where(j4 < n_new + n_sh, row, -1)
        swap = ((k == ADD) | (k == SUB)) & (u[4] < 0.5)  # operand order of a binary op is random
        row = jnp.where(swap, row[jnp.array([1, 0, 2, 3])], row)
        is_agg = active & (k == AGG)
        agg_of = jnp.where(is_agg & (idx >= C) & (idx < C + n_new), A, agg_of)
        agg_idx = agg_idx.at[i].set(jnp.where(is_agg, A, -1))
        agg_first = agg_first.at[jnp.minimum(A, MAX_AGGREGATES - 1)].max(jnp.where(is_agg, C, -1))
        kind, par = kind.at[i].set(k), par.at[i].set(row)
        cval = cval.at[i].set(_constant(k, u[3], p))
        return (C + active * n_new, R - active * o_cost[o], A + is_agg, kind, par, cval, agg_of, agg_idx,
                agg_first)

    init = (jnp.int32(1), op, jnp.int32(0), jnp.zeros(NT, jnp.int32), jnp.full((NT, MAX_PARENTS), -1, jnp.int32),
            jnp.zeros(NT, jnp.int32), jnp.full(NT, -1, jnp.int32), jnp.full(NT, -1, jnp.int32),
            jnp.full(MAX_AGGREGATES, -1, jnp.int32))
    return jax.lax.fori_loop(0, spec.op_max, body, init)


def _distractors(spec: DagSpec, Nn, kind, par, cval, u_Dx5):
    """Distractor d (node op_max + d) reads necessary nodes and earlier distractors only."""
    M, p = spec.op_max, spec.p
    kinds, weights = jnp.asarray(_DISTRACTOR_KINDS), jnp.asarray(_DISTRACTOR_WEIGHTS)

    def body(d, st):
        kind, par, cval = st
        u, size = u_Dx5[d], Nn + d
        k = kinds[_draw(weights, u[0])]
        k = jnp.where(((k == ADD) | (k == SUB)) & (size < 2), ADDC, k)
        j1 = _below(u[1], size)
        j2 = (j1 + 1 + _below(u[2], size - 1)) % size
        node = lambda j: jnp.where(j < Nn, j, M + j - Nn)
        n_par = jnp.select([k == CONST, (k == ADD) | (k == SUB)], [0, 2], 1)
        row = jnp.where(jnp.arange(MAX_PARENTS) < n_par, jnp.array([node(j1), node(j2), 0, 0]), -1)
        return kind.at[M + d].set(k), par.at[M + d].set(row), cval.at[M + d].set(_constant(k, u[3], p))

    if spec.max_distractors == 0:  # the loop body would index an empty array
        return kind, par, cval
    return jax.lax.fori_loop(0, spec.max_distractors, body, (kind, par, cval))


def _values(spec: DagSpec, kind, par, cval):
    """Necessary nodes in reverse index order (parents first), then distractors in index order."""
    NT, M = spec.num_nodes, spec.op_max

    def body(t, vals):
        i = jnp.where(t < M, M - 1 - t, t)
        pv = vals[jnp.maximum(par[i], 0)]
        return vals.at[i].set(_apply(kind[i], pv, par[i] >= 0, cval[i], spec.p))

    return jax.lax.fori_loop(0, NT, body, jnp.zeros(NT, jnp.int32))


def _compact(tok_KxW, len_K, out_len: int):
    """Concatenate the first len_K[k] tokens of each row k into one PAD-padded [out_len] row (a
    gather: each output position finds its row among the running ends; scatters are slow on CPU)."""
    K, W = tok_KxW.shape
    ends = jnp.cumsum(len_K)
    o = jnp.arange(out_len)
    row = jnp.minimum(jnp.sum(o[:, None] >= ends[None, :], axis=1), K - 1)
    tok = tok_KxW[row, jnp.clip(o - ends[row] + len_K[row], 0, W - 1)]
    return jnp.where(o < ends[-1], tok, PAD_ID).astype(jnp.int32), ends[-1].astype(jnp.int32)


def _row(ctx, name, kind, pnames_4, pvals_4, c, value, solution: bool):
    """One statement `N P = expr .` (solution=False, <= 9 tokens) or one solution step
    `N P = expr-with-values = N P value ;` (<= 23 tokens) as a [25] row and its length."""
    noun, place = lambda n: tk.noun_token(ctx, n // tk.NUM_PLACES), lambda n: tk.place_token(ctx, n % tk.NUM_PLACES)
    op_tok = jnp.select([kind == MULC, kind == SUB], [tk.TIMES, tk.MINUS], tk.PLUS)
    n_par = jnp.sum(pnames_4 >= 0)
    has_const = (kind == CONST) | (kind == ADDC) | (kind == MULC)
    pieces, lens = [jnp.array([noun(name), place(name), tk.EQ, PAD_ID, PAD_ID])], [jnp.int32(3)]
    for j in range(MAX_PARENTS):
        is_name = j < n_par
        body = jnp.where(is_name, jnp.stack([noun(pnames_4[j]), place(pnames_4[j]), tk.num_token(pvals_4[j])]),
                         jnp.array([tk.num_token(c), PAD_ID, PAD_ID]))
        blen = jnp.where(is_name, 3 if solution else 2, 1)
        used = is_name | ((j == n_par) & has_const)
        piece = body if j == 0 else jnp.concatenate([op_tok[None], body])
        pieces.append(jnp.pad(piece, (0, 5 - piece.shape[0]), constant_values=PAD_ID))
        lens.append(jnp.where(used, blen + (j > 0), 0).astype(jnp.int32))
    if solution:
        pieces.append(jnp.stack([tk.EQ, noun(name), place(name), tk.num_token(value), tk.SEMI]))
        lens.append(jnp.int32(5))
    else:
        pieces.append(jnp.array([tk.DOT, PAD_ID, PAD_ID, PAD_ID, PAD_ID]))
        lens.append(jnp.int32(1))
    return _compact(jnp.stack(pieces).astype(jnp.int32), jnp.stack(lens), 25)


def _names(spec: DagSpec, Nn, A, kind, agg_of, agg_idx, agg_first, n_dis, places_6, items_2x6, names_36):
    """Local name id of every node slot (-1 for unused slots) and which slots are statements."""
    NT, M, P = spec.num_nodes, spec.op_max, tk.NUM_PLACES
    idx = jnp.arange(NT)
    necessary = idx < Nn
    distractor = (idx >= M) & (idx < M + n_dis)
    is_agg, is_item = necessary & (kind == AGG), necessary & (agg_of >= 0)
    regular = (necessary & ~is_agg & ~is_item) | distractor
    # plain names in random order, those at a needed total's place last (never reached: capacity)
    blocked = jnp.any((names_36[:, None] % P == places_6[None, :MAX_AGGREGATES])
                      & (jnp.arange(MAX_AGGREGATES) < A)[None, :], axis=1)
    pool = names_36[jnp.argsort(blocked * 64 + jnp.arange(36))]
    plain = pool[jnp.clip(jnp.cumsum(regular) - 1, 0, 35)]
    a = jnp.maximum(agg_of, 0)
    item = items_2x6[a, jnp.clip(idx - agg_first[a], 0, tk.NUM_ITEMS - 1)] * P + places_6[a]
    total = tk.CATEGORY * P + places_6[jnp.maximum(agg_idx, 0)]
    name = jnp.select([is_agg, is_item, regular], [total, item, plain], -1)
    return name, (necessary & ~is_agg) | distractor, necessary


def _solution_order(spec: DagSpec, Nn, kind, par, necessary, pos, order_rule: str):
    """Greedy: the earliest-in-prompt ready statement ("earliest"), or the latest-in-prompt one
    ("latest": valid traces an earliest-order base would not write, for Yue et al.'s distillation /
    perplexity experiments); either way a total as soon as it is ready (at most one total becomes ready
    per step, since totals have disjoint items)."""
    NT = spec.num_nodes
    rank = pos if order_rule == "earliest" else NT - 1 - pos  # pos is 0..NT-1: rank stays >= 0 > a total's -1

    def body(s, st):
        done, order = st
        ready = necessary & ~done & jnp.all(jnp.where(par >= 0, done[jnp.maximum(par, 0)], True), axis=1)
        key = jnp.where(ready, jnp.where(kind == AGG, -1, rank), 4 * NT)
        pick = jnp.argmin(key)
        valid = s < Nn
        return done | ((jnp.arange(NT) == pick) & valid), order.at[s].set(jnp.where(valid, pick, -1))

    init = (jnp.zeros(NT, bool), jnp.full(spec.op_max, -1, jnp.int32))
    return jax.lax.fori_loop(0, spec.op_max, body, init)[1]


def _one(spec: DagSpec, op, ctx, n_dis, u_node, u_dis, places_6, items_2x6, names_36, shuffle_NT):
    """One problem from its random draws (deterministic; vmapped by `sample`)."""
    NT, P = spec.num_nodes, tk.NUM_PLACES
    C, _, A, kind, par, cval, agg_of, agg_idx, agg_first = _grow(spec, op, u_node)  # _: 0 ops left
    kind, par, cval = _distractors(spec, C, kind, par, cval, u_dis)
    vals = _values(spec, kind, par, cval)
    name, stmt, necessary = _names(spec, C, A, kind, agg_of, agg_idx, agg_first, n_dis, places_6, items_2x6,
                                   names_36)
    row = jax.vmap(_row, (None, 0, 0, 0, 0, 0, 0, None))
    # prompt: statements in a random order
    order = jnp.argsort(jnp.where(stmt, shuffle_NT, NT + shuffle_NT))
    pos = jnp.zeros(NT, jnp.int32).at[order].set(jnp.arange(NT, dtype=jnp.int32))
    # a total sums its items in prompt order, so the gold step is a function of the prompt
    by_pos = jnp.take_along_axis(par, jnp.argsort(jnp.where(par >= 0, pos[jnp.maximum(par, 0)], 4 * NT), axis=1), 1)
    par = jnp.where((kind == AGG)[:, None], by_pos, par)
    pnames = jnp.where(par >= 0, name[jnp.maximum(par, 0)], -1)
    pvals = vals[jnp.maximum(par, 0)]
    s_tok, s_len = row(ctx, name, kind, pnames, pvals, cval, vals, False)
    s_len = jnp.where(stmt, s_len, 0)
    question = jnp.array([tk.QUERY, tk.noun_token(ctx, name[0] // P), tk.place_token(ctx, name[0] % P), tk.SEP])
    head = jnp.zeros((1, 25), jnp.int32).at[0, 0].set(BOS_ID)
    tail = jnp.zeros((1, 25), jnp.int32).at[0, :4].set(question)
    prompt, lp = _compact(jnp.concatenate([head, s_tok[order], tail]),
                          jnp.concatenate([jnp.array([1]), s_len[order], jnp.array([4])]), spec.prompt_len)
    # solution: one step per necessary node in the greedy order, then `answer v <eos>`
    sol_order = _solution_order(spec, C, kind, par, necessary, pos, spec.solution_order)
    g = jnp.maximum(sol_order, 0)
    t_tok, t_len = row(ctx, name[g], kind[g], pnames[g], pvals[g], cval[g], vals[g], True)
    t_len = jnp.where(sol_order >= 0, t_len, 0)
    end = jnp.zeros((1, 25), jnp.int32).at[0, :3].set(jnp.stack([tk.ANSWER, tk.num_token(vals[0]), EOS_ID]))
    solution, ls = _compact(jnp.concatenate([t_tok, end]), jnp.concatenate([t_len, jnp.array([3])]),
                            spec.solution_len)
    # gold graph by name: parent names are distinct, so the sum of their bits is their union
    slot = jnp.where(necessary, name, tk.NUM_NAMES)
    gold_value = jnp.full(tk.NUM_NAMES, -1, jnp.int32).at[slot].set(vals, mode="drop")
    pn = jnp.maximum(pnames, 0).astype(jnp.uint32)
    bit = lambda lo, hi: jnp.sum(jnp.where((pnames >= lo) & (pnames < hi),
                                           jnp.left_shift(jnp.uint32(1), pn - lo), jnp.uint32(0)), axis=1,
                                 dtype=jnp.uint32)
    words = jnp.stack([bit(0, 32), bit(32, 64)], axis=1)
    gold_parents = jnp.zeros((tk.NUM_NAMES, 2), jnp.uint32).at[slot].set(words, mode="drop")
    return DagProblems(prompt, lp, solution, ls, vals[0], op, ctx, C, n_dis, gold_value, gold_parents)


@partial(jax.jit, static_argnames=("spec", "n"))
def sample(key: jax.Array, spec: DagSpec, params: DagParams, n: int) -> DagProblems:
    """n fresh problems, op ~ params.op_probs, context ~ params.context_probs, distractor count ~
    params.distractor_probs. All randomness is drawn batched up front (integer sorts for the
    permutations, one uniform array for the rest); each problem is then assembled by `_one`, vmapped.
    The context draw uses its own uniform, so the same key with another context gives the same graph."""
    M, D, NT = spec.op_max, spec.max_distractors, spec.num_nodes
    want = {"op_probs": (M + 1,), "context_probs": (tk.NUM_CONTEXTS,), "distractor_probs": (D + 1,)}
    for field, shape in want.items():
        if jnp.shape(getattr(params, field)) != shape:
            raise ValueError(f"params.{field} must have shape {shape} for {spec}, "
                             f"got {jnp.shape(getattr(params, field))}")
    k_u, k_pl, k_it, k_nm, k_sh = jax.random.split(key, 5)
    u = jax.random.uniform(k_u, (n, 3 + 5 * (M + D)))
    op = jax.vmap(_draw, (None, 0))(params.op_probs, u[:, 0])
    ctx = jax.vmap(_draw, (None, 0))(params.context_probs, u[:, 1])
    n_dis = jax.vmap(_draw, (None, 0))(params.distractor_probs, u[:, 2])
    u_node = u[:, 3:3 + 5 * M].reshape(n, M, 5)
    u_dis = u[:, 3 + 5 * M:].reshape(n, D, 5)
    places = random_permutations(k_pl, n, tk.NUM_PLACES)
    items = random_permutations(k_it, 2 * n, tk.NUM_ITEMS).reshape(n, 2, tk.NUM_ITEMS)
    names = random_permutations(k_nm, n, tk.NUM_ITEMS * tk.NUM_PLACES)
    shuffle = random_permutations(k_sh, n, NT)
    return jax.vmap(partial(_one, spec))(op, ctx, n_dis, u_node, u_dis, places, items, names, shuffle)


@jax.jit
def sequences(problems: DagProblems) -> tuple[jax.Array, jax.Array]:
    """(tokens_BxT, loss_mask_BxT), T = Lp + Ls: each prompt followed right away by its gold solution,
    then PAD. loss_mask is 1 on the solution tokens (EOS included): the pre-training targets."""
    Lp, Ls = problems.prompt_BxLp.shape[1], problems.solution_BxLs.shape[1]
    t = jnp.arange(Lp + Ls)[None, :]
    lp, end = problems.prompt_len_B[:, None], (problems.prompt_len_B + problems.solution_len_B)[:, None]
    from_sol = jnp.take_along_axis(problems.solution_BxLs, jnp.clip(t - lp, 0, Ls - 1), axis=1)
    from_prompt = jnp.take_along_axis(problems.prompt_BxLp, jnp.minimum(t, Lp - 1), axis=1)
    tokens = jnp.where(t < lp, from_prompt, jnp.where(t < end, from_sol, PAD_ID))
    return tokens.astype(jnp.int32), ((t >= lp) & (t < end)).astype(jnp.int32)


@jax.jit
def left_padded_prompts(problems: DagProblems) -> tuple[jax.Array, jax.Array]:
    """(prompts_BxLp, mask_BxLp): each prompt right-aligned behind PADs, the layout the KV-cache
    sampler (`rl/sampling.py`) takes, so every response starts at the same cache slot."""
    Lp = problems.prompt_BxLp.shape[1]
    shift = Lp - problems.prompt_len_B[:, None]
    t = jnp.arange(Lp)[None, :]
    tokens = jnp.take_along_axis(problems.prompt_BxLp, jnp.clip(t - shift, 0, Lp - 1), axis=1)
    mask = t >= shift
    return jnp.where(mask, tokens, PAD_ID).astype(jnp.int32), mask


def take(problems: DagProblems, idx) -> DagProblems:
    """Rows idx of every field (e.g. jnp.repeat(jnp.arange(P), G) for G samples per prompt)."""
    return jax.tree.map(lambda x: x[idx], problems)
