"""DAG-lite verifier: a token-level parser from a solution to a graph, process verification, rewards.

Spec `dag_arithmetic.md` §5 (parser and verification), §7 (rewards), §11.10 and §11.13 (Zhang, Neubig
and Yue, arXiv 2512.07783). The official code parses detokenised text with regexes on the host; this
parser reads token ids, is pure JAX (jit over [B, T]) and never raises: a garbage token only makes
the step it sits in malformed.

Grammar. A response is steps, then `answer <v>`; tokens from the first EOS on are ignored. A step is
the tokens up to a `;` before `answer`, and parses when it reads
    `N P = <expr> = N P <v> ;`   with   <expr> := <operand> (<op> <operand>)*,
    <operand> := `N P <v>` (a name and its value) | `<c>` (a constant),  <op> := `+ | - | *`
(N a noun, P a place, v and c residues; the two names equal). It defines node `N P` with parent-name
set {names in <expr>}, value <v>, and is arithmetically consistent when <expr>, evaluated left to
right mod p with the values written in it, equals <v>.

Official semantics kept (§5.2): nodes are matched by name (the first parsed step defining it); gold
node v is correct when present, its parent-name set equals the gold set and its value equals the gold
value. The official format substitutes a parent's value from the letter that defined it, so an
operand value cannot disagree with the trace; here operands are written out, and we count a step's
value as right only when its stated value is the gold one, every operand value it writes after a
gold name is that node's gold value, and the step is consistent (so a wrong constant with a lucky
result fails too).
With right parents this is the letter substitution's meaning. Extra nodes (names not in the gold
graph, repeats, other contexts' names, malformed steps) are allowed by `perfect` (evaluation, §5.3)
and penalised by the process reward and by `strict` (§7.2, §7.4). `parse` returns the stated graph
itself, for inspection.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from theoryrl.core.config import is_finite, require
from theoryrl.tasks.dag import tokens as tk
from theoryrl.tasks.dag.generate import DagProblems, DagSpec
from theoryrl.tasks.vocab import EOS_ID

REWARD_MODES = ("outcome", "process", "mix", "mix_gated", "strict")
_OTHER, _NOUN, _PLACE, _NUM, _OP, _EQ = range(6)
# (previous class, class) pairs allowed inside <expr>; the token before <expr> is the prefix `=`
_ALLOWED = [(_EQ, _NOUN), (_EQ, _NUM), (_NOUN, _PLACE), (_PLACE, _NUM), (_NUM, _OP), (_OP, _NOUN), (_OP, _NUM)]


def _classify(spec: DagSpec, tok_T, ctx):
    """Token class, local noun or place index, whether a noun/place token is of the problem's context,
    and the residue of a number token."""
    rel = tok_T - tk.NOUN0
    is_word = (rel >= 0) & (rel < tk.NUM_CONTEXTS * tk.CONTEXT_WIDTH)
    local = rel % tk.CONTEXT_WIDTH
    is_num = (tok_T >= tk.NUM0) & (tok_T < tk.NUM0 + spec.p)
    is_op = (tok_T == tk.PLUS) | (tok_T == tk.MINUS) | (tok_T == tk.TIMES)
    cls = jnp.select([is_word & (local >= tk.NUM_PLACES), is_word, is_num, is_op, tok_T == tk.EQ],
                     [_NOUN, _PLACE, _NUM, _OP, _EQ], _OTHER)
    index = jnp.where(local >= tk.NUM_PLACES, local - tk.NUM_PLACES, local)
    return cls, index, is_word & (rel // tk.CONTEXT_WIDTH == ctx), tok_T - tk.NUM0


def _shift(x_T, k: int, fill):
    """x_T delayed by k positions (fill first), any length T."""
    return jnp.concatenate([jnp.full(k, fill, x_T.dtype), x_T])[:x_T.shape[0]]


def _evaluate(in_expr_T, cls_T, num_T, tok_T, p: int):
    """Left-to-right value of each step's <expr> at every position, without a sequential loop.

    Each number of an <expr> is an affine map x -> m x + a (mod p) by the operator before its operand:
    `+ v` (1, v), `- v` (1, -v), `* v` (v, 0), and (0, v) for the first operand, which forgets
    everything before it; other tokens are the identity. An associative scan of the composition gives
    every prefix's value."""
    prev_place = _shift(cls_T, 1, _OTHER) == _PLACE
    op_T = jnp.where(prev_place, _shift(tok_T, 3, 0), _shift(tok_T, 1, 0))  # before `N P v` or before `c`
    live = in_expr_T & (cls_T == _NUM)
    m = jnp.where(live, jnp.select([op_T == tk.PLUS, op_T == tk.MINUS, op_T == tk.TIMES], [1, 1, num_T], 0), 1)
    a = jnp.where(live, jnp.select([op_T == tk.PLUS, op_T == tk.MINUS, op_T == tk.TIMES], [num_T, -num_T, 0], num_T), 0)

    def compose(f, g):  # f first, then g
        return (g[0] * f[0]) % p, (g[0] * f[1] + g[1]) % p

    return jax.lax.associative_scan(compose, (m % p, a % p))[1]


def _take(a_T, i):
    return a_T[jnp.clip(i, 0, a_T.shape[0] - 1)]


def _unpack(words_Nx2):
    """[42, 42] bool parent sets from the 42-bit masks."""
    n = jnp.arange(tk.NUM_NAMES)
    return ((words_Nx2[:, n // 32] >> (n % 32).astype(jnp.uint32)[None, :]) & 1).astype(bool)


def _parse_one(spec: DagSpec, tok_T, ctx) -> dict:
    """The graph one response states. Step arrays are indexed by the position t of the step's `;`
    (a step is every `;` before `answer`, parsed or not); operand arrays by the position of each
    operand's noun token."""
    (T,) = tok_T.shape
    t = jnp.arange(T)
    eos = jnp.min(jnp.where(tok_T == EOS_ID, t, T))
    ans_pos = jnp.min(jnp.where((tok_T == tk.ANSWER) & (t < eos), t, T))
    cls, idx, own, num = _classify(spec, tok_T, ctx)
    c_at, i_at, o_at, n_at = (partial(_take, a) for a in (cls, idx, own, num))
    at = partial(_take, tok_T)
    is_step = (tok_T == tk.SEMI) & (t < jnp.minimum(ans_pos, eos))
    start = jnp.concatenate([jnp.zeros(1, jnp.int32), jax.lax.cummax(jnp.where(is_step, t, -1))[:-1] + 1])
    end = jax.lax.cummin(jnp.where(is_step, t, T), reverse=True)
    # per-position facts, summed into the step that ends at `end` (slot T: no step)
    in_expr = (t >= start + 3) & (t <= end - 5) & (end < T)
    prev = _shift(cls, 1, _OTHER)
    pair_ok = jnp.zeros((), bool)
    for a, b in _ALLOWED:
        pair_ok |= (prev == a) & (cls == b)
    is_operand = in_expr & (cls == _NOUN)
    operand_own = is_operand & own & o_at(t + 1)
    operand_name = jnp.where(operand_own, idx * tk.NUM_PLACES + i_at(t + 1), -1)
    slot = lambda mask: jnp.where(mask, end, T)
    bad_T = jnp.zeros(T + 1, jnp.int32).at[slot(in_expr & ~pair_ok)].add(1)[:T]
    foreign_T = jnp.zeros(T + 1, jnp.int32).at[slot(is_operand & ~operand_own)].add(1)[:T]
    parents_TxN = jnp.zeros((T + 1, tk.NUM_NAMES), bool).at[slot(operand_own), jnp.maximum(operand_name, 0)].set(True)
    expr_value_T = _evaluate(in_expr, cls, num, tok_T, spec.p)
    # the step ending at each `;` position e
    s, e = start, t
    name_ok = (c_at(s) == _NOUN) & (c_at(s + 1) == _PLACE) & (at(s) == at(e - 3)) & (at(s + 1) == at(e - 2))
    shape_ok = ((e - s >= 8) & (at(s + 2) == tk.EQ) & (at(e - 4) == tk.EQ) & (c_at(e - 1) == _NUM)
                & (c_at(e - 5) == _NUM))
    parsed = is_step & name_ok & shape_ok & (bad_T == 0)
    name = jnp.where(parsed, jnp.where(o_at(s) & o_at(s + 1), i_at(s) * tk.NUM_PLACES + i_at(s + 1), -2), -1)
    return {"is_step_T": is_step, "name_T": name.astype(jnp.int32),
            "value_T": jnp.where(parsed, n_at(e - 1), -1).astype(jnp.int32),
            "parents_TxN": parents_TxN[:T] & parsed[:, None], "foreign_parents_T": foreign_T,
            "consistent_T": parsed & (expr_value_T[jnp.clip(e - 5, 0, T - 1)] == n_at(e - 1)),
            "operand_name_T": operand_name.astype(jnp.int32),
            "operand_value_T": jnp.where(operand_own, n_at(t + 2), -1),
            "operand_step_T": jnp.where(operand_own, end, -1),
            "answer": jnp.where((ans_pos + 1 < eos) & (c_at(ans_pos + 1) == _NUM), n_at(ans_pos + 1), -1)}


def _verify_one(spec: DagSpec, tok_T, ctx, gold_value_N, gold_parents_Nx2, answer, num_nodes):
    (T,) = tok_T.shape
    g = _parse_one(spec, tok_T, ctx)
    # operand values against the gold values of the names they follow, counted per step
    # (a name outside the gold graph has no gold value: it already counts as a dependency mismatch)
    gold_of_operand = gold_value_N[jnp.maximum(g["operand_name_T"], 0)]
    op_wrong = (g["operand_name_T"] >= 0) & (gold_of_operand >= 0) & (gold_of_operand != g["operand_value_T"])
    op_wrong_T = jnp.zeros(T + 1, jnp.int32).at[jnp.where(op_wrong, g["operand_step_T"], T)].add(1)[:T]
    # match gold nodes by name: the first parsed step that defines it
    hit_TxN = g["name_T"][:, None] == jnp.arange(tk.NUM_NAMES)[None, :]
    first_N = jnp.argmax(hit_TxN, axis=0)
    gold = gold_value_N >= 0
    found = gold & jnp.any(hit_TxN, axis=0)
    value_ok = (g["value_T"][first_N] == gold_value_N) & g["consistent_T"][first_N] & (op_wrong_T[first_N] == 0)
    dep_ok = (jnp.all(g["parents_TxN"][first_N] == _unpack(gold_parents_Nx2), axis=1)
              & (g["foreign_parents_T"][first_N] == 0))
    value_mm, dep_mm = jnp.sum(found & ~value_ok), jnp.sum(found & ~dep_ok)
    missing = jnp.sum(gold & ~found)
    extra = jnp.sum(g["is_step_T"]) - jnp.sum(found)
    answer_ok = g["answer"] == answer
    penalty = value_mm + dep_mm + missing + jnp.minimum(extra, num_nodes) + (~answer_ok)
    perfect = answer_ok & (value_mm == 0) & (dep_mm == 0) & (missing == 0)
    return {"answer_B": g["answer"].astype(jnp.int32), "answer_correct_B": answer_ok, "perfect_B": perfect,
            "strict_B": perfect & (extra == 0),
            "process_reward_B": jnp.maximum(0.0, 1.0 - penalty / num_nodes).astype(jnp.float32),
            "penalty_B": penalty.astype(jnp.int32), "value_mismatch_B": value_mm.astype(jnp.int32),
            "dep_mismatch_B": dep_mm.astype(jnp.int32), "missing_B": missing.astype(jnp.int32),
            "extra_B": extra.astype(jnp.int32)}


@partial(jax.jit, static_argnames=("spec",))
def parse(spec: DagSpec, response_BxT: jax.Array, context_B: jax.Array) -> dict:
    """The graph each response states, for inspection (verify does this and compares with the gold).

    Per step, indexed by the position of its `;` ([B, T]; a step is every `;` before `answer`):
    is_step_BxT; name_BxT (the local name id noun * 6 + place it defines, -2 for another context's
    name, -1 where no step parses); value_BxT (the stated value); parents_BxTxN (its parent-name
    set); foreign_parents_BxT (operand names of another context); consistent_BxT (its <expr>
    evaluates to the stated value). Per operand, at its noun token: operand_name_BxT,
    operand_value_BxT, operand_step_BxT (where its step's `;` is). answer_B: the stated answer, -1
    if none."""
    if response_BxT.ndim != 2 or jnp.shape(context_B) != response_BxT.shape[:1]:
        raise ValueError(f"response_BxT must be [B, T] and context_B [B], got {response_BxT.shape} "
                         f"and {jnp.shape(context_B)}")
    out = jax.vmap(partial(_parse_one, spec))(response_BxT.astype(jnp.int32), context_B)
    return {k.replace("_T", "_BxT").replace("answer", "answer_B"): v for k, v in out.items()}


@partial(jax.jit, static_argnames=("spec",))
def verify(spec: DagSpec, problems: DagProblems, response_BxT: jax.Array) -> dict:
    """Parse and check B responses (the tokens after each prompt; T any length >= 1).

    Returns per sample: answer_B (the stated answer, -1 if none), answer_correct_B (R_out),
    perfect_B (process-verified correct at evaluation: every gold node present with the right
    parents and value, the right answer; extra nodes allowed), strict_B (perfect and no extra
    node), process_reward_B (R_pv = max(0, 1 - penalty / |V|)), penalty_B and its parts
    value_mismatch_B, dep_mismatch_B, missing_B, extra_B (extra counts in the penalty up to |V|)."""
    B = problems.answer_B.shape[0]
    if response_BxT.ndim != 2 or response_BxT.shape[0] != B:
        raise ValueError(f"response_BxT must be [B={B}, T], got shape {response_BxT.shape}")
    return jax.vmap(partial(_verify_one, spec))(
        response_BxT.astype(jnp.int32), problems.context_B, problems.gold_value_BxN, problems.gold_parents_BxNx2,
        problems.answer_B, problems.num_nodes_B)


def reward(result: dict, mode: str, alpha=0.5) -> jax.Array:
    """[B] float32 reward from `verify`'s result.

    outcome: R_out. process: R_pv. mix: alpha R_out + (1 - alpha) R_pv, the paper's form and the one
    the issue's reward study names (0.2 out + 0.8 pv, 0.5/0.5). mix_gated: R_out (alpha + (1 - alpha)
    R_pv), what the official code computes (§7.3: the clipped mix, zeroed when the answer is wrong); it
    never rewards a good process that ends in a wrong answer, so it differs from `mix` exactly where
    process supervision could add signal. strict: R_out only when process-perfect with no extra node."""
    require(mode in REWARD_MODES, "reward", mode, " | ".join(REWARD_MODES))
    if isinstance(alpha, (int, float)):
        require(is_finite(alpha) and 0.0 <= alpha <= 1.0, "alpha", alpha, "a share in [0, 1]")
    r_out = result["answer_correct_B"].astype(jnp.float32)
    r_pv = result["process_reward_B"]
    return {"outcome": r_out, "process": r_pv, "mix": alpha * r_out + (1.0 - alpha) * r_pv,
            "mix_gated": r_out * (alpha + (1.0 - alpha) * r_pv),
            "strict": result["strict_B"].astype(jnp.float32)}[mode]


def hacking_rate(answer_correct_B, perfect_B) -> jax.Array:
    """P(answer right and process wrong | answer right) (§11.10); NaN when no answer is right."""
    right = jnp.asarray(answer_correct_B, bool)
    hacked = jnp.sum(right & ~jnp.asarray(perfect_B, bool))
    n = jnp.sum(right)
    return jnp.where(n > 0, hacked / jnp.maximum(n, 1), jnp.nan)
