"""DAG-lite verifier: hand-built cases, every single-token corruption of gold solutions, garbage.

Hand-built problem (context zoo; names are local ids noun * 6 + place, forest = place 0):
    bear forest = 5                                    (id 0,  parents {},      value 5)
    wolf forest = bear forest + 3                      (id 6,  parents {0},     value 8)
    animals forest = bear forest + wolf forest  (total, id 36, parents {0, 6},  value 13)
    question: animals forest; |V| = 3; a distractor `fox valley = wolf forest * 2` (id 19, value 16).
Penalty = value + dependency mismatches + missing + min(extra, |V|) + [answer wrong]; R_pv =
max(0, 1 - penalty / 3). The cases (α = 0.2) and their derivations:
    0 gold                                 penalty 0  R_pv 1    out 1  perfect  strict
    1 wolf step first, plus the distractor extra 1 -> 1, 2/3  out 1  perfect (extra allowed), not strict
    2 wolf stated 9 (and 5 + 3 != 9)       value 1 -> 1, 2/3  out 1  not perfect: hacked
    3 bear step missing                    missing 1 -> 1, 2/3 out 1  hacked
    4 total written `bear forest 5 + 8`     dependency 1 -> 1, 2/3 out 1  hacked (5 + 8 = 13 is consistent)
    5 gold steps, answer 14                answer 1 -> 1, 2/3  out 0
    6 garbage, no EOS: one malformed step  extra 1 + missing 3 + answer 1 = 5 -> R_pv 0, out 0
    7 gold, then junk after EOS            penalty 0 (after EOS is ignored)
    8 gold plus a malformed step `bear forest = ;`  extra 1 -> 1, 2/3  out 1  perfect, not strict
    9 total written `bear forest 5 + fox valley 8`  dependency 1 -> 1, 2/3 out 1  hacked (fox valley is
      not a gold node, so its written value is not checked: the step counts once, as a dependency)
Hacking rate: answer right in 0, 1, 2, 3, 4, 7, 8, 9; of those 2, 3, 4, 9 are not perfect: 4/8.
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
from theoryrl.tasks.dag import verify as ver

SPEC = gen.DagSpec(p=97, op_max=10, max_distractors=4)
N = 10_000  # the size of every generated batch and every verified batch: one compile each
VOCAB = tk.vocab(SPEC.p)
BEAR = "bear forest = 5 = bear forest 5 ;"
WOLF = "wolf forest = bear forest 5 + 3 = wolf forest 8 ;"
TOTAL = "animals forest = bear forest 5 + wolf forest 8 = animals forest 13 ;"
FOX = "fox valley = wolf forest 8 * 2 = fox valley 16 ;"
CASES = [
    f"{BEAR} {WOLF} {TOTAL} answer 13 <eos>",
    f"{WOLF} {BEAR} {FOX} {TOTAL} answer 13 <eos>",
    f"{BEAR} wolf forest = bear forest 5 + 3 = wolf forest 9 ; {TOTAL} answer 13 <eos>",
    f"{WOLF} {TOTAL} answer 13 <eos>",
    f"{BEAR} {WOLF} animals forest = bear forest 5 + 8 = animals forest 13 ; answer 13 <eos>",
    f"{BEAR} {WOLF} {TOTAL} answer 14 <eos>",
    "= = ; 5 bear forest answer",
    f"{BEAR} {WOLF} {TOTAL} answer 13 <eos> fox ; ; 3 answer 1",
    f"{BEAR} {WOLF} bear forest = ; {TOTAL} answer 13 <eos>",
    f"{BEAR} {WOLF} animals forest = bear forest 5 + fox valley 8 = animals forest 13 ; answer 13 <eos>",
]
OUT = np.array([1, 1, 1, 1, 1, 0, 0, 1, 1, 1], np.float32)
PV = np.array([1, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 0, 1, 2 / 3, 2 / 3], np.float32)
PERFECT = np.array([1, 1, 0, 0, 0, 0, 0, 1, 1, 0], bool)
STRICT = np.array([1, 0, 0, 0, 0, 0, 0, 1, 0, 0], bool)


def _hand_problems(rows: int) -> gen.DagProblems:
    value = np.full(tk.NUM_NAMES, -1)
    value[[0, 6, 36]] = [5, 8, 13]
    parents = np.zeros((tk.NUM_NAMES, 2), np.uint32)
    parents[6, 0], parents[36, 0] = 1 << 0, (1 << 0) | (1 << 6)
    rep = lambda x, dtype=jnp.int32: jnp.asarray(np.repeat(np.asarray(x)[None], rows, 0), dtype)
    zeros = jnp.zeros((rows,), jnp.int32)
    return gen.DagProblems(rep(np.zeros(4)), zeros + 4, rep(np.zeros(4)), zeros + 4, zeros + 13, zeros + 5, zeros,
                           zeros + 3, zeros + 1, rep(value), rep(parents, jnp.uint32))


def _ids(texts, width=64):
    out = np.zeros((len(texts), width), np.int32)
    for i, text in enumerate(texts):
        ids = VOCAB.ids(text)
        out[i, :len(ids)] = ids
    return jnp.asarray(out)


@pytest.fixture(scope="module")
def hand():
    return jax.tree.map(np.asarray, ver.verify(SPEC, _hand_problems(len(CASES)), _ids(CASES)))


@pytest.fixture(scope="module")
def generated():
    params = mix.make_params(SPEC, [((2, 10), 1.0)], np.full(3, 1 / 3))
    return jax.tree.map(np.asarray, gen.sample(jax.random.key(11), SPEC, params, N))


def _verify_rows(problems, rows_idx, responses):
    """Verify responses[i] against problem rows_idx[i], padded to N rows (one compiled shape)."""
    k = len(rows_idx)
    assert k <= N
    idx = np.concatenate([rows_idx, np.zeros(N - k, int)])
    resp = np.concatenate([responses, np.repeat(problems.solution_BxLs[:1], N - k, 0)])
    batch = jax.tree.map(lambda x: jnp.asarray(x[idx]), problems)
    return jax.tree.map(lambda x: np.asarray(x)[:k], ver.verify(SPEC, batch, jnp.asarray(resp)))


def test_hand_cases_counts_and_flags(hand):
    np.testing.assert_array_equal(hand["answer_B"], [13, 13, 13, 13, 13, 14, -1, 13, 13, 13])
    np.testing.assert_array_equal(hand["penalty_B"], [0, 1, 1, 1, 1, 1, 5, 0, 1, 1])
    np.testing.assert_array_equal(hand["extra_B"], [0, 1, 0, 0, 0, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(hand["value_mismatch_B"], [0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(hand["dep_mismatch_B"], [0, 0, 0, 0, 1, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(hand["missing_B"], [0, 0, 0, 1, 0, 0, 3, 0, 0, 0])
    np.testing.assert_array_equal(hand["perfect_B"], PERFECT)
    np.testing.assert_array_equal(hand["strict_B"], STRICT)
    np.testing.assert_allclose(hand["process_reward_B"], PV, atol=1e-6)


@pytest.mark.parametrize("mode, want", [
    ("outcome", OUT), ("process", PV), ("mix", 0.2 * OUT + 0.8 * PV), ("mix_gated", OUT * (0.2 + 0.8 * PV)),
    ("strict", STRICT.astype(np.float32)),
])
def test_every_reward_mode_on_the_hand_cases(hand, mode, want):
    np.testing.assert_allclose(np.asarray(ver.reward(hand, mode, alpha=0.2)), want, atol=1e-6)


def test_parse_reads_names_parents_values_and_the_answer():
    texts = [CASES[0], "bear forest = 5 = bear forest 6 ; answer 2",
             ("elementary evervale = 5 = elementary evervale 5 ; "
              "bear forest = elementary evervale 5 + 1 = bear forest 6 ;"),
             "bear evervale = 5 = bear evervale 5 ; wolf = ; <eos>"]
    ids = _ids(texts)
    g = jax.tree.map(np.asarray, ver.parse(SPEC, ids, jnp.zeros(len(texts), jnp.int32)))
    steps = [np.flatnonzero(row) for row in g["is_step_BxT"]]
    assert [len(s) for s in steps] == [3, 1, 2, 2]
    at = lambda key, b: g[key][b, steps[b]].tolist()
    assert at("name_BxT", 0) == [0, 6, 36] and at("value_BxT", 0) == [5, 8, 13] and all(at("consistent_BxT", 0))
    assert [set(np.flatnonzero(p)) for p in g["parents_BxTxN"][0, steps[0]]] == [set(), {0}, {0, 6}]
    assert at("name_BxT", 1) == [0] and at("value_BxT", 1) == [6] and at("consistent_BxT", 1) == [False]
    assert at("name_BxT", 2) == [-2, 0] and at("foreign_parents_BxT", 2) == [0, 1] and not g["parents_BxTxN"][2].any()
    assert at("name_BxT", 3) == [-2, -1]  # a name of two contexts; a malformed step
    assert g["answer_B"].tolist() == [13, 2, -1, -1]
    ops = g["operand_name_BxT"][0] >= 0
    assert g["operand_name_BxT"][0, ops].tolist() == [0, 0, 6] and g["operand_value_BxT"][0, ops].tolist() == [5, 5, 8]


def test_hacking_rate_on_a_hand_built_batch(hand):
    assert float(ver.hacking_rate(hand["answer_correct_B"], hand["perfect_B"])) == pytest.approx(4 / 8)
    assert float(ver.hacking_rate(jnp.array([1, 1, 0, 1]), jnp.array([1, 1, 0, 1]))) == 0.0
    assert np.isnan(float(ver.hacking_rate(jnp.zeros(3, bool), jnp.zeros(3, bool))))


def test_gold_solutions_verify_on_1e4_problems(generated):
    res = jax.tree.map(np.asarray, ver.verify(SPEC, jax.tree.map(jnp.asarray, generated),
                                               jnp.asarray(generated.solution_BxLs)))
    assert res["perfect_B"].all() and res["strict_B"].all() and (res["process_reward_B"] == 1).all()
    np.testing.assert_array_equal(res["answer_B"], generated.answer_B)


def _is_word(tok):
    return tk.NOUN0 <= tok < tk.NUM0


def _is_place(tok):
    return _is_word(tok) and (tok - tk.NOUN0) % tk.CONTEXT_WIDTH < tk.NUM_PLACES


def _corruptions(problems, rows, rng):
    """Every value token and every parent (noun or place) token of each gold step, each changed to
    another token of its kind and context; and the answer token. Returns (rows, responses, is_answer)."""
    out_rows, out_resp, is_answer = [], [], []
    for b in rows:
        sol = problems.solution_BxLs[b, :problems.solution_len_B[b]]
        ans = int(np.flatnonzero(sol == tk.ANSWER)[0])
        start = 0
        for e in np.flatnonzero(sol[:ans] == tk.SEMI):
            expr = range(start + 3, e - 4)  # between the two `=`
            targets = [i for i in expr if _is_word(sol[i]) or (sol[i] >= tk.NUM0 and _is_place(sol[i - 1]))]
            for i in targets + [e - 1]:  # operand names, operand values, the stated value
                tok = int(sol[i])
                if tok >= tk.NUM0:
                    new = tk.NUM0 + (tok - tk.NUM0 + rng.integers(1, SPEC.p)) % SPEC.p
                else:
                    local = (tok - tk.NOUN0) % tk.CONTEXT_WIDTH
                    base = tok - local
                    lo, size = (0, tk.NUM_PLACES) if local < tk.NUM_PLACES else (tk.NUM_PLACES, tk.NUM_NOUNS)
                    new = base + lo + (local - lo + rng.integers(1, size)) % size
                out_rows.append(b)
                out_resp.append(np.where(np.arange(sol.size) == i, new, sol))
                is_answer.append(False)
            start = e + 1
        bad = sol.copy()
        bad[ans + 1] = tk.NUM0 + (sol[ans + 1] - tk.NUM0 + rng.integers(1, SPEC.p)) % SPEC.p
        out_rows.append(b)
        out_resp.append(bad)
        is_answer.append(True)
    width = problems.solution_BxLs.shape[1]
    resp = np.stack([np.pad(r, (0, width - r.size)) for r in out_resp])
    return np.array(out_rows), resp, np.array(is_answer)


def test_any_single_value_or_parent_token_change_fails_process_and_answer_change_fails_outcome(generated):
    rows, resp, is_answer = _corruptions(generated, range(250), np.random.default_rng(0))
    assert 2000 < len(rows) <= N
    res = _verify_rows(generated, rows, resp)
    assert not res["perfect_B"].any() and not res["strict_B"].any()
    assert (res["process_reward_B"] < 1).all()
    assert not res["answer_correct_B"][is_answer].any() and res["answer_correct_B"][~is_answer].all()


def test_random_token_strings_never_verify_and_never_raise(generated):
    rng = np.random.default_rng(1)
    shape = generated.solution_BxLs.shape
    uniform = rng.integers(-3, SPEC.vocab_size + 3, shape)  # ids outside the vocabulary too
    # grammar-shaped noise: only the tokens a step uses, in random order, with `answer v <eos>` at the end
    alphabet = np.array([tk.EQ, tk.PLUS, tk.MINUS, tk.TIMES, tk.SEMI, tk.SEMI]
                        + list(range(tk.NOUN0, tk.NOUN0 + tk.CONTEXT_WIDTH)) + list(range(tk.NUM0, tk.NUM0 + 20)))
    shaped = rng.choice(alphabet, shape)
    shaped[:, -3:] = [tk.ANSWER, tk.NUM0, tk.vocab(SPEC.p).eos_id]
    for resp in (uniform, shaped):
        res = _verify_rows(generated, np.arange(N), resp)
        assert not res["perfect_B"].any() and not res["strict_B"].any()
        assert np.isfinite(res["process_reward_B"]).all() and (res["process_reward_B"] < 1).all()


def test_a_one_token_response_is_parsed_without_error():
    res = ver.verify(SPEC, _hand_problems(2), jnp.array([[tk.SEMI], [tk.ANSWER]]))
    np.testing.assert_array_equal(np.asarray(res["extra_B"]), [1, 0])
    np.testing.assert_array_equal(np.asarray(res["process_reward_B"]), [0, 0])


def test_bad_input_errors():
    with pytest.raises(ConfigError, match="'reward'"):
        ver.reward({}, "best")
    with pytest.raises(ConfigError, match="'alpha'"):
        ver.reward({}, "mix", alpha=1.5)
    with pytest.raises(ValueError, match=r"\[B=2, T\]"):
        ver.verify(SPEC, _hand_problems(2), jnp.zeros((3, 8), jnp.int32))
