"""DAG-lite generator against a plain-Python reader of the prompt text.

The reference (`_Reader`) sees only the decoded prompt words: it rebuilds each statement, evaluates
names recursively mod p, expands a total `<category> <place>` into every item of that place stated in
the prompt, walks back from the question to the necessary nodes, counts op(G) as their in-edges with
constants counted (an aggregation over k items counts k), and writes the solution by the documented
rule (earliest ready statement in prompt order, a ready total first, a total's items in prompt order).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.core.config import ConfigError
from theoryrl.tasks.dag import generate as gen
from theoryrl.tasks.dag import mix
from theoryrl.tasks.dag import tokens as tk

SPEC = gen.DagSpec(p=97, op_max=10, max_distractors=4)
N = 10_000  # every sample call below has this size: one compiled sampler for the whole file
VOCAB = tk.vocab(SPEC.p)
CATEGORIES = {cat for _, _, cat in tk.CONTEXT_WORDS}


def _params(ops=((2, 10),), contexts=(1 / 3, 1 / 3, 1 / 3)):
    return mix.make_params(SPEC, [(band, 1.0 / len(ops)) for band in ops], np.asarray(contexts))


def _sample(params, seed=0):
    return jax.tree.map(np.asarray, gen.sample(jax.random.key(seed), SPEC, params, N))


@pytest.fixture(scope="module")
def problems():
    return _sample(_params())


class _Reader:
    """One problem read from its prompt words only."""

    def __init__(self, prompt, length):
        words = VOCAB.decode(prompt[:length]).split()
        assert words[0] == "<bos>" and words[-4] == "?" and words[-1] == "<sep>"
        self.question = (words[-3], words[-2])
        self.defs, self.order, cur = {}, [], []
        for w in words[1:-4]:
            if w != ".":
                cur.append(w)
                continue
            assert cur[2] == "=" and cur[0] not in CATEGORIES and (cur[0], cur[1]) not in self.defs
            self.defs[(cur[0], cur[1])] = self._expr(cur[3:])
            self.order.append((cur[0], cur[1]))
            cur = []
        assert not cur
        self.need = set()
        self._walk(self.question)

    @staticmethod
    def _expr(ws):
        terms, ops, i = [], [], 0
        while i < len(ws):
            if ws[i] in ("+", "-", "*"):
                ops.append(ws[i])
                i += 1
            elif ws[i].isdigit():
                terms.append(int(ws[i]))
                i += 1
            else:
                terms.append((ws[i], ws[i + 1]))
                i += 2
        assert len(ops) == len(terms) - 1
        return terms, ops

    def parents(self, name):
        if name in self.defs:
            return [t for t in self.defs[name][0] if isinstance(t, tuple)]
        assert name[0] in CATEGORIES
        return [n for n in self.order if n[1] == name[1]]  # every item of the place, in prompt order

    def _walk(self, name):
        if name not in self.need:
            self.need.add(name)
            for par in self.parents(name):
                self._walk(par)

    def value(self, name):
        if name not in self.defs:
            return sum(self.value(n) for n in self.parents(name)) % SPEC.p
        terms, ops = self.defs[name]
        vals = [t if isinstance(t, int) else self.value(t) for t in terms]
        acc = vals[0]
        for op, v in zip(ops, vals[1:]):
            acc = {"+": acc + v, "-": acc - v, "*": acc * v}[op]
        return acc % SPEC.p

    def op_count(self):
        return sum(len(self.defs[n][0]) if n in self.defs else len(self.parents(n)) for n in self.need)

    def solution(self):
        done, steps = set(), []
        while len(done) < len(self.need):
            ready = [n for n in self.need if n not in done and all(par in done for par in self.parents(n))]
            totals = [n for n in ready if n not in self.defs]
            assert len(totals) <= 1
            pick = totals[0] if totals else min(ready, key=self.order.index)
            if pick in self.defs:
                terms, ops = self.defs[pick]
            else:
                terms, ops = self.parents(pick), ["+"] * (len(self.parents(pick)) - 1)
            words = [f"{t[0]} {t[1]} {self.value(t)}" if isinstance(t, tuple) else str(t) for t in terms]
            expr = " ".join(w for pair in zip([""] + ops, words) for w in pair if w)
            steps.append(f"{pick[0]} {pick[1]} = {expr} = {pick[0]} {pick[1]} {self.value(pick)} ;")
            done.add(pick)
        return " ".join(steps) + f" answer {self.value(self.question)} <eos>"


def _local_name(noun, place):
    """Local name id (noun * 6 + place) of two words of any context."""
    ids = VOCAB.ids([noun, place]) - tk.NOUN0
    return (ids[0] % tk.CONTEXT_WIDTH - tk.NUM_PLACES) * tk.NUM_PLACES + ids[1] % tk.CONTEXT_WIDTH


def _parent_set(words_2):
    return {n for n in range(tk.NUM_NAMES) if (int(words_2[n // 32]) >> (n % 32)) & 1}


def test_op_count_values_parents_and_answer_match_the_reference_on_1e4_problems(problems):
    pr = problems
    assert sorted(set(pr.op_B.tolist())) == list(range(2, 11))
    for b in range(N):
        ref = _Reader(pr.prompt_BxLp[b], pr.prompt_len_B[b])
        assert ref.op_count() == pr.op_B[b]
        assert len(ref.need) == pr.num_nodes_B[b]
        assert len(ref.defs) - len([n for n in ref.need if n in ref.defs]) == pr.num_distractors_B[b]
        assert ref.value(ref.question) == pr.answer_B[b]
        want_value = np.full(tk.NUM_NAMES, -1)
        for name in ref.need:
            n = _local_name(*name)
            want_value[n] = ref.value(name)
            assert _parent_set(pr.gold_parents_BxNx2[b, n]) == {_local_name(*q) for q in ref.parents(name)}
        np.testing.assert_array_equal(pr.gold_value_BxN[b], want_value)


def test_every_total_is_the_sum_of_its_places_items_and_totals_are_common(problems):
    pr, with_total = problems, 0
    for b in range(N):
        ref = _Reader(pr.prompt_BxLp[b], pr.prompt_len_B[b])
        totals = [n for n in ref.need if n not in ref.defs]
        with_total += bool(totals)
        for name in totals:
            items = [n for n in ref.defs if n[1] == name[1]]
            # a needed total's place holds no distractor: every item there is needed
            assert 2 <= len(items) <= 4 and all(i in ref.need for i in items)
            assert pr.gold_value_BxN[b, _local_name(*name)] == sum(ref.value(i) for i in items) % SPEC.p
    assert 0.2 < with_total / N < 0.9


def test_gold_solution_is_the_documented_format(problems):
    pr = problems
    for b in range(2000):
        ref = _Reader(pr.prompt_BxLp[b], pr.prompt_len_B[b])
        assert VOCAB.decode(pr.solution_BxLs[b][:pr.solution_len_B[b]]) == ref.solution()
    assert (pr.solution_BxLs[np.arange(N), pr.solution_len_B - 1] == tk.vocab(SPEC.p).eos_id).all()
    assert pr.solution_len_B.max() <= SPEC.solution_len and pr.prompt_len_B.max() <= SPEC.prompt_len


def test_contexts_share_structure_and_no_noun_token():
    per_ctx = [_sample(_params(contexts=np.eye(3)[c]), seed=5) for c in range(3)]
    for c, pr in enumerate(per_ctx):
        assert (pr.context_B == c).all()
    a = per_ctx[0]
    is_word = lambda x: (x >= tk.NOUN0) & (x < tk.NUM0)
    for pr in per_ctx[1:]:
        for field in ("prompt_len_B", "solution_len_B", "answer_B", "op_B", "num_nodes_B", "gold_value_BxN",
                      "gold_parents_BxNx2"):
            np.testing.assert_array_equal(getattr(pr, field), getattr(a, field))
        for toks, toks_a in ((pr.prompt_BxLp, a.prompt_BxLp), (pr.solution_BxLs, a.solution_BxLs)):
            np.testing.assert_array_equal(is_word(toks), is_word(toks_a))
            np.testing.assert_array_equal(np.where(is_word(toks), 0, toks), np.where(is_word(toks_a), 0, toks_a))
            np.testing.assert_array_equal((toks - tk.NOUN0) % tk.CONTEXT_WIDTH, (toks_a - tk.NOUN0) % tk.CONTEXT_WIDTH)
    nouns = [set(pr.prompt_BxLp[is_word(pr.prompt_BxLp)].tolist()) for pr in per_ctx]
    for pr, seen in zip(per_ctx, nouns):
        assert set(pr.solution_BxLs[is_word(pr.solution_BxLs)].tolist()) <= seen  # the solution copies names
    assert all(len(s) == tk.CONTEXT_WIDTH for s in nouns)  # every place, item and category noun is used
    assert not (nouns[0] & nouns[1]) and not (nouns[0] & nouns[2]) and not (nouns[1] & nouns[2])


def test_reproducible_from_a_key_and_bands_are_respected():
    params = _params(ops=((4, 6),))
    one, two, other = _sample(params, 3), _sample(params, 3), _sample(params, 4)
    for x, y in zip(jax.tree.leaves(one), jax.tree.leaves(two)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(one.prompt_BxLp, other.prompt_BxLp)
    assert sorted(set(one.op_B.tolist())) == [4, 5, 6]


def test_sequences_put_the_solution_right_after_the_prompt(problems):
    pr = jax.tree.map(lambda x: jnp.asarray(x[:4]), problems)
    tokens, mask = map(np.asarray, gen.sequences(pr))
    for b in range(4):
        lp, ls = int(pr.prompt_len_B[b]), int(pr.solution_len_B[b])
        np.testing.assert_array_equal(tokens[b, :lp], pr.prompt_BxLp[b, :lp])
        np.testing.assert_array_equal(tokens[b, lp:lp + ls], pr.solution_BxLs[b, :ls])
        assert (tokens[b, lp + ls:] == 0).all() and mask[b].sum() == ls and mask[b, lp:lp + ls].all()


def test_left_padded_prompts_and_take(problems):
    pr = gen.take(jax.tree.map(jnp.asarray, problems), jnp.array([3, 1, 2]))
    tokens, mask = map(np.asarray, gen.left_padded_prompts(pr))
    for i, b in enumerate([3, 1, 2]):
        lp = int(problems.prompt_len_B[b])
        assert mask[i].sum() == lp and mask[i, -lp:].all() and (tokens[i, :-lp] == 0).all()
        np.testing.assert_array_equal(tokens[i, -lp:], problems.prompt_BxLp[b, :lp])


def test_params_of_another_spec_are_refused_at_the_boundary():
    other = mix.make_params(gen.DagSpec(op_max=8), [((2, 8), 1.0)])
    with pytest.raises(ValueError, match="op_probs must have shape"):
        gen.sample(jax.random.key(0), SPEC, other, 4)


@pytest.mark.parametrize("build, match", [
    (lambda: gen.DagSpec(p=3), "'p'"),
    (lambda: gen.DagSpec(p=91), "'p'"),  # 7 * 13
    (lambda: gen.DagSpec(op_max=21), "generator's range"),
    (lambda: gen.DagSpec(op_max=1), "'op_max'"),
    (lambda: gen.DagSpec(op_max=20, max_distractors=5), "'max_distractors'"),
    (lambda: mix.check_band(SPEC, (7, 5)), "non-empty"),
    (lambda: mix.check_band(SPEC, (9, 12)), "generator's range"),
    (lambda: mix.check_band(SPEC, (1, 4)), "generator's range"),
    (lambda: mix.check_bands(SPEC, {"id": (2, 6), "edge": (6, 8)}), "disjoint"),
    (lambda: mix.op_probs(SPEC, [((2, 4), 0.5), ((3, 6), 0.5)]), "disjoint"),
    (lambda: mix.op_probs(SPEC, [((2, 4), 1.5), ((5, 6), -0.5)]), r"\[0, 1\]"),
    (lambda: mix.op_probs(SPEC, [((2, 4), 0.5), ((5, 6), 0.3)]), "summing to 1"),
    (lambda: mix.op_probs(SPEC, [(2, 4, 1.0)]), r"a pair \(\(lo, hi\), share\)"),
    (lambda: mix.context_probs(np.float32(1.2)), r"\[0, 1\]"),
    (lambda: mix.context_probs(1.2), r"\[0, 1\]"),
    (lambda: mix.context_probs(-0.1), r"\[0, 1\]"),
    (lambda: mix.distractor_probs(SPEC, 2, 5), "'distractors'"),
    (lambda: mix.make_params(SPEC, np.eye(11)[1]), "below op 2"),
    (lambda: mix.make_params(SPEC, np.eye(11)[3], contexts=(0.5, 0.6, -0.1)), r"\[0, 1\]"),
])
def test_bad_input_is_one_line_config_error(build, match):
    with pytest.raises(ConfigError, match=match) as err:
        build()
    assert "\n" not in str(err.value)
