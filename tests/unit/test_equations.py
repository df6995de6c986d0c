"""Affine-equation chains: prompts solved from their text alone, distances, worked solutions, the verifier."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.core.config import ConfigError
from theoryrl.tasks import equations as eq
from theoryrl.tasks.vocab import BOS_ID, EOS_ID, PAD_ID, Vocab


SPEC = eq.EquationSpec(chain_len=5, num_labels=13)  # shared by most tests: one compiled sampler
ROWS = 8  # verifier batches are padded to this many rows: one compiled verifier per width


def _problems(spec, kind="uniform", n=64, seed=0):
    probs = jnp.asarray(eq.distance_probs(spec, kind), jnp.float32)
    return jax.tree.map(np.asarray, eq.sample_problems(jax.random.key(seed), spec, probs, n))


def _parse(spec, prompt):
    """Constants {label: v}, edges [(w, u, ±c)] and the queried label, read from the words only."""
    words = eq.render(spec, prompt).split()
    assert words[0] == "<bos>" and words[-2] == "Find"
    consts, edges = {}, []
    stmt = []
    for w in words[1:-2]:
        if w != ".":
            stmt.append(w)
            continue
        if len(stmt) == 3:  # x_s = v0
            assert stmt[1] == "=" and stmt[0] not in consts
            consts[stmt[0]] = int(stmt[2])
        else:  # x_u ± c = x_w (known variable first)
            assert len(stmt) == 5 and stmt[1] in "+-" and stmt[3] == "="
            assert stmt[0].startswith("x") and stmt[4].startswith("x")
            edges.append((stmt[4], stmt[0], int(stmt[2]) * (1 if stmt[1] == "+" else -1)))
        stmt = []
    assert stmt == []
    return consts, edges, words[-1]


def _solve(consts, edges):
    """Propagate known values through x_w = x_u + delta, both ways, to a fixed point."""
    value = dict(consts)
    changed = True
    while changed:
        changed = False
        for w, u, delta in edges:
            if u in value and w not in value:
                value[w], changed = value[u] + delta, True
            elif w in value and u not in value:
                value[u], changed = value[w] - delta, True
    return value


@pytest.mark.parametrize("spec", [eq.EquationSpec(chain_len=2), SPEC,
                                  eq.EquationSpec(chain_len=8, max_const=2, max_v0=4)])
def test_prompt_equations_determine_the_stated_answer(spec):
    probs = _problems(spec)
    L = spec.chain_len
    assert probs.prompt_NxLp.shape == (64, eq.prompt_len(spec)) == (64, 12 * L - 5)
    for b in range(64):
        consts, edges, target = _parse(spec, probs.prompt_NxLp[b])
        succ = {u: w for w, u, _ in edges}
        assert len(edges) == 2 * (L - 1) and len(succ) == 2 * (L - 1)  # out-degree <= 1
        assert len({w for w, _, _ in edges}) == 2 * (L - 1)  # in-degree <= 1
        assert all(1 <= abs(dl) <= spec.max_const for _, _, dl in edges)
        # one constant, on the source, with v0 in 1..max_v0
        assert list(consts) == [f"x{probs.source_N[b]}"] and 1 <= consts[f"x{probs.source_N[b]}"] <= spec.max_v0
        # walking the edges from s reaches the queried terminal t after d steps, through the stored path
        node, walk = f"x{probs.source_N[b]}", []
        while node in succ:
            node = succ[node]
            walk.append(node)
        assert node == target == f"x{probs.target_N[b]}" and len(walk) == probs.distance_N[b]
        d = probs.distance_N[b]
        assert walk == [f"x{i}" for i in probs.path_labels_NxLm1[b, :d]]
        assert np.all(probs.path_labels_NxLm1[b, d:] == -1) and np.all(probs.path_deltas_NxLm1[b, d:] == 0)
        into = {w: dl for w, _, dl in edges}  # the signed constant of the edge into each node
        assert [into[x] for x in walk] == probs.path_deltas_NxLm1[b, :d].tolist()
        assert consts[f"x{probs.source_N[b]}"] == probs.source_value_N[b]
        value = _solve(consts, edges)
        assert value[target] == probs.answer_N[b]
        assert [value[x] for x in walk] == probs.path_values_NxLm1[b, :d].tolist()
        # chain 1 (upstream edges included) is fully determined and in the token range; the
        # distractor chain carries no constant, so none of its L values is determined
        assert len(value) == L and all(spec.value_min <= v <= spec.value_max for v in value.values())
        labels = {x for e in edges for x in e[:2]}
        assert len(labels) == 2 * L and len(labels - set(value)) == L


def test_distance_frequencies_follow_the_probabilities():
    spec, num = SPEC, 64 * 60
    probs = np.array([0.5, 0.0, 0.2, 0.3])
    got = np.concatenate([eq.sample_problems(jax.random.key(seed), spec, jnp.asarray(probs, jnp.float32), 64).distance_N
                          for seed in range(60)])
    counts = np.bincount(got, minlength=5)[1:]
    assert counts[1] == 0 and got.min() >= 1
    assert np.all(np.abs(counts - num * probs) <= 5 * np.sqrt(num * probs * (1 - probs)) + 1e-9)
    assert np.all(_problems(spec, "hard").distance_N == 4)
    assert set(_problems(spec, "short:2").distance_N.tolist()) == {1, 2}


def test_distance_probs_helpers():
    spec = eq.EquationSpec(chain_len=5)
    np.testing.assert_allclose(eq.distance_probs(spec, "uniform"), [0.25] * 4)
    np.testing.assert_allclose(eq.distance_probs(spec, "hard"), [0, 0, 0, 1])
    np.testing.assert_allclose(eq.distance_probs(spec, "short:3"), [1 / 3] * 3 + [0])
    for bad in ("short:5", "short:x", "easy"):
        with pytest.raises(ConfigError, match="distance_probs"):
            eq.distance_probs(spec, bad)


def _edge_text(w, u, delta, value):
    return f"{u} {'+' if delta > 0 else '-'} {abs(delta)} = {w} = {value} ;"


def test_worked_solution_reads_as_the_walk_and_passes_every_check():
    spec = SPEC
    probs = _problems(spec, seed=1)
    tokens, mask = map(np.asarray, eq.solution_tokens(spec, probs))
    lp, s = eq.prompt_len(spec), eq.prompt_len(spec) + eq.max_response_len(spec)
    assert tokens.shape == mask.shape == (64, s) and eq.max_response_len(spec) == 8 * 4 + 10
    assert np.all(tokens[:, :lp] == probs.prompt_NxLp) and np.all(mask[:, :lp] == 0)
    for b in range(64):
        consts, edges, target = _parse(spec, probs.prompt_NxLp[b])
        value, succ = _solve(consts, edges), {u: (w, dl) for w, u, dl in edges}
        # the first step restates the prompt's only constant equation, `.` turned into `;`
        (const_eq,) = [st.strip() + " ;" for st in eq.render(spec, probs.prompt_NxLp[b][1:-2]).split(".")
                       if len(st.split()) == 3]
        assert eq.render(spec, tokens[b, lp + 1: lp + 5]) == const_eq
        node, steps = f"x{probs.source_N[b]}", [const_eq]
        while node in succ:  # each edge step starts at the previous node and copies its prompt edge
            (w, dl), u = succ[node], node
            steps.append(_edge_text(w, u, dl, value[w]))
            node = w
        want = f"<think> {' '.join(steps)} </think> <answer> {value[target]} </answer> <eos>"
        assert eq.render(spec, tokens[b, lp:]) == want
        assert mask[b].sum() == 8 * probs.distance_N[b] + 10 == eq.solution_len(probs.distance_N[b]) and np.all(tokens[b, lp:][mask[b, lp:] == 0] == PAD_ID)
    out = eq.verify(spec, probs, jnp.asarray(tokens[:, lp:]), jnp.asarray(mask[:, lp:]))
    assert np.all(out["format_ok_N"]) and np.all(out["answer_correct_N"]) and np.all(out["process_correct_N"])
    assert out["reward_N"].tolist() == [1.0] * 64 and out["answer_N"].tolist() == probs.answer_N.tolist()
    assert out["steps_N"].tolist() == probs.distance_N.tolist()


def _response(spec, text, width=None):
    ids = eq.vocab(spec).ids(text)
    width = width or eq.max_response_len(spec)
    tok = np.zeros(width, np.int32)
    tok[: len(ids)] = ids
    return tok, (np.arange(width) < len(ids)).astype(np.int32)


def _batch(spec, probs, b, texts, width=None):
    """ROWS copies of problem b and the responses (texts, padded with copies of the first)."""
    assert len(texts) <= ROWS
    rows = [_response(spec, t, width) for t in texts + texts[:1] * (ROWS - len(texts))]
    one = jax.tree.map(lambda x: np.repeat(x[b:b + 1], ROWS, axis=0), probs)
    return one, np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])


def _check(spec, probs, b, texts):
    out = eq.verify(spec, *_batch(spec, probs, b, texts))
    flags = zip(out["format_ok_N"], out["answer_correct_N"], out["process_correct_N"])
    return [(bool(f), bool(a), bool(p)) for f, a, p in flags][: len(texts)]


def _hand_problem():
    """The first problem with d >= 2 of a fixed draw, its source step, edge steps and answer."""
    spec = SPEC
    probs = _problems(spec, "short:2", seed=2)
    b = int(np.argmax(probs.distance_N == 2))
    assert probs.distance_N[b] == 2
    src = f"x{probs.source_N[b]} = {probs.source_value_N[b]} ;"
    nodes = [f"x{probs.source_N[b]}"] + [f"x{lab}" for lab in probs.path_labels_NxLm1[b, :2]]
    edges = [_edge_text(nodes[j + 1], nodes[j], int(probs.path_deltas_NxLm1[b, j]), int(probs.path_values_NxLm1[b, j]))
             for j in range(2)]
    return spec, probs, b, src, edges, int(probs.answer_N[b])


def _words_swap(step, i, new):
    words = step.split()
    words[i] = new
    return " ".join(words)


def _other_value(spec, v):
    return v + 1 if v < spec.value_max else v - 1


def test_a_wrong_step_fails_process_but_a_right_answer_still_counts():
    spec, probs, b, src, (e1, e2), ans = _hand_problem()
    used = {w for st in (src, e1, e2) for w in st.split() if w.startswith("x")}
    other = next(f"x{i}" for i in range(spec.labels) if f"x{i}" not in used)
    u1, sign1, c1, w1, v1 = (e1.split()[i] for i in (0, 1, 2, 4, 6))
    s_lab, v0 = src.split()[0], int(src.split()[2])

    def solved(*steps, answer=ans):
        return f"<think> {' '.join(steps)} </think> <answer> {answer} </answer> <eos>"

    texts = [
        solved(src, e1, e2),  # the worked solution
        solved(_words_swap(src, 2, str(_other_value(spec, v0))), e1, e2),  # wrong restated constant
        solved(_words_swap(src, 0, other), e1, e2),  # wrong source label
        solved(src, _words_swap(e1, 6, str(_other_value(spec, int(v1)))), e2),  # wrong value
        solved(src, _words_swap(e1, 0, other), e2),  # wrong previous-node label
        solved(src, _words_swap(e1, 4, other), e2),  # wrong copied next-node label
        solved(src, _words_swap(e1, 1, "-" if sign1 == "+" else "+"), e2),  # wrong copied sign
        solved(src, _words_swap(e1, 2, str(int(c1) % spec.max_const + 1)), e2),  # wrong copied constant
        solved(src, _words_swap(e1, 2, "0"), e2),  # a constant outside 1..max_const is still well-formed
        solved(src, e2),  # a skipped step
        solved(src, e1, e2, e2),  # an extra step
        solved(src),  # no edge step at all
        solved(src, e1, e2, answer=_other_value(spec, ans)),
    ]
    assert w1 != other and u1 == s_lab and e2.split()[0] == w1  # each step starts where the last ended
    assert len(texts) == 13
    got = [g for i in range(0, len(texts), ROWS) for g in _check(spec, probs, b, texts[i: i + ROWS])]
    assert got == [(True, True, True)] + [(True, True, False)] * 11 + [(True, False, False)]


def test_malformed_responses_fail_format():
    spec, probs, b, src, (e1, e2), ans = _hand_problem()
    good = f"<think> {src} {e1} {e2} </think> <answer> {ans} </answer> <eos>"
    words = e1.split()
    old_style = " ".join(words[i] for i in (4, 5, 6, 7))  # `x_w = v ;`, an older format
    old_order = " ".join(words[i] for i in (4, 3, 0, 1, 2, 5, 6, 7))  # `x_w = x_u ± c = v ;`, the previous order
    texts = [
        good.replace(" <eos>", ""),  # no EOS
        good + " ;",  # tokens after EOS
        good.replace("</think> ", ""),
        good.replace(src, src.replace(" = ", " ; ", 1)),  # separator swapped
        good.replace(src, src.replace("x", "", 1)),  # a value where a label belongs (if it is a value word)
        good.replace(e1, _words_swap(e1, 4, words[4][1:])),  # a value as the copied next-node label
        good.replace(e1, _words_swap(e1, 0, words[0][1:])),  # a value as the previous-node label
        good.replace(e1, _words_swap(e1, 1, "=")),  # no sign
        good.replace(e1, _words_swap(e1, 2, words[0])),  # a label as the constant
        good.replace(f"<answer> {ans}", f"<answer> x{probs.target_N[b]}"),  # a label as the answer
        good.replace(e1, e1.replace(" ;", "")),  # a step without its separator
        good.replace(f"{src} ", ""),  # no restated constant
        good.replace(e1, old_style),  # a step in the old `x_w = v ;` format
        good.replace(e1, old_order),  # a step in the previous `x_w = x_u ± c = v ;` order
        f"<think> </think> <answer> {ans} </answer> <eos>",  # no reasoning at all
        "<eos>",
    ]
    texts = [t for t in texts if all(w in eq.vocab(spec).tokens for w in t.split())]
    assert len(texts) >= 14
    got = [g for i in range(0, len(texts), ROWS) for g in _check(spec, probs, b, texts[i: i + ROWS])]
    assert all(g == (False, False, False) for g in got)
    # a hole in the mask (masked tokens must be a prefix) fails too
    one, resp, mask = _batch(spec, probs, b, [good])
    mask[0, 3] = 0
    out = eq.verify(spec, one, resp, mask)
    assert out["format_ok_N"].tolist() == [False] + [True] * (ROWS - 1) and float(out["reward_N"][0]) == 0.0


def test_reward_kinds_and_response_width():
    spec, probs, b, src, (e1, e2), ans = _hand_problem()
    good = f"<think> {src} {e1} {e2} </think> <answer> {ans} </answer> <eos>"
    texts = [good, good.replace(f"{e1} ", ""), good.replace(f"<answer> {ans}", f"<answer> {ans + 1}"), "<eos>"]
    for width in (30, None):  # T shorter than max_response_len (42) works when the response (26) fits
        one, resp, mask = _batch(spec, probs, b, texts, width)
        out = {kind: eq.verify(spec, one, resp, mask, reward=kind) for kind in eq.REWARDS}
        rewards = {kind: o["reward_N"][:4].tolist() for kind, o in out.items()}
        assert rewards == {"answer": [1, 1, 0, 0], "process": [1, 0, 0, 0], "format+answer": [2, 2, 1, 0]}
        assert out["answer"]["steps_N"][:4].tolist() == [2, 1, 2, -1]
        assert out["answer"]["answer_N"][:3].tolist() == [ans, ans, ans + 1]
    with pytest.raises(ConfigError, match="reward"):
        eq.verify(spec, one, resp, mask, reward="length")
    with pytest.raises(ValueError, match=r"\[N=8, T\]"):
        eq.verify(spec, one, resp[:2], mask[:2])


def test_shapes_are_static_under_jit_and_sampling_vmaps():
    spec, n = SPEC, 64

    @jax.jit
    @chex.assert_max_traces(n=1)
    def rollout(key, dist_probs):
        probs = eq.sample_problems(key, spec, dist_probs, n)
        tokens, mask = eq.solution_tokens(spec, probs)
        lp = eq.prompt_len(spec)
        return probs, eq.verify(spec, probs, tokens[:, lp:], mask[:, lp:])["reward_N"]

    uniform, hard = (jnp.asarray(eq.distance_probs(spec, k), jnp.float32) for k in ("uniform", "hard"))
    for seed, probs_D in ((0, uniform), (1, hard), (2, uniform)):  # new keys and masses: no retrace
        probs, reward = rollout(jax.random.key(seed), probs_D)
        assert probs.prompt_NxLp.shape == (n, 12 * 5 - 5) and probs.path_values_NxLm1.shape == (n, 4)
        assert reward.tolist() == [1.0] * n
    keys = jax.random.split(jax.random.key(7), 2)
    batched = jax.vmap(eq.sample_problems, in_axes=(0, None, 0, None))(keys, spec, jnp.stack([uniform, hard]), n)
    assert batched.prompt_NxLp.shape == (2, n, 55) and np.all(np.asarray(batched.distance_N[1]) == 4)
    single = eq.sample_problems(keys[1], spec, hard, n)
    assert np.array_equal(batched.prompt_NxLp[1], single.prompt_NxLp)


def test_spec_and_input_validation():
    for kwargs, knob in ((dict(chain_len=1), "chain_len"), (dict(chain_len=4, num_labels=7), "num_labels"),
                         (dict(max_const=0), "max_const"), (dict(max_v0=0), "max_v0")):
        with pytest.raises(ConfigError, match=knob):
            eq.EquationSpec(**kwargs)
    with pytest.raises(ValueError, match="dist_probs_D"):
        eq.sample_problems(jax.random.key(0), eq.EquationSpec(chain_len=4), jnp.ones(4) / 4, 2)


def test_vocab_ids_decode_and_the_equation_token_layout():
    v = Vocab(("a", "b=", "-3"))
    assert v.tokens[:3] == ("<pad>", "<bos>", "<eos>") and (v.pad_id, v.bos_id, v.eos_id) == (PAD_ID, BOS_ID, EOS_ID)
    assert [v.id(w) for w in v.tokens[:3]] == [0, 1, 2]
    assert v.size == 6 and v.ids("<bos> a -3 <eos>").tolist() == [1, 3, 5, 2]
    assert v.ids(["b=", "a"]).tolist() == [4, 3] and v.decode([1, 3, 0, 4, 0]) == "<bos> a b="
    assert v.decode([0, 3], skip_pad=False) == "<pad> a"
    for bad, why in ((("a", "a"), "duplicate"), (("<eos>",), "duplicate"), (("a b",), "whitespace")):
        with pytest.raises(ValueError, match=why):
            Vocab(bad)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        v.id("c")
    spec = eq.EquationSpec(chain_len=8)
    voc = eq.vocab(spec)
    # the static ids used inside jit agree with the vocabulary words
    assert voc.size == spec.vocab_size == 13 + 16 + (10 + 21 + 21)
    assert [voc.id(w) for w in ("=", "+", "-", ".", ";", "Find", "<think>", "</think>", "<answer>", "</answer>")] \
        == [eq.EQ, eq.PLUS, eq.MINUS, eq.DOT, eq.SEMI, eq.FIND, eq.THINK, eq.END_THINK, eq.ANSWER, eq.END_ANSWER]
    assert voc.id("x0") == eq.LABEL0 and voc.id("x15") == eq.LABEL0 + 15
    assert voc.id("-20") == spec.value0 and int(eq.value_token(spec, 31)) == voc.id("31") == voc.size - 1


def test_a_shorter_spec_with_vocab_chain_len_shares_every_token_id():
    long = eq.EquationSpec(chain_len=6)
    short = eq.EquationSpec(chain_len=3, num_labels=long.labels, vocab_chain_len=6)
    assert eq.vocab(short).tokens == eq.vocab(long).tokens and short.value0 == long.value0
    assert (short.value_min, short.value_max) == (1 - 3 * 5, 10 + 3 * 5)
    probs = _problems(short, n=8)
    full = eq.prompt_len(short) + eq.max_response_len(short)
    tokens, mask = map(np.asarray, eq.solution_tokens(short, probs))
    padded, padded_mask = map(np.asarray, eq.solution_tokens(short, probs, 127))
    assert tokens.shape == (8, full) and padded.shape == padded_mask.shape == (8, 127)
    assert np.array_equal(padded[:, :full], tokens) and np.all(padded[:, full:] == PAD_ID)
    assert np.array_equal(padded_mask[:, :full], mask) and np.all(padded_mask[:, full:] == 0)
    # the short problem reads the same under the long vocabulary, and its answer is its value token there
    lp = eq.prompt_len(short)
    answers = [int(eq.render(long, row[lp:]).split("<answer> ")[1].split()[0]) for row in tokens]
    assert answers == probs.answer_N.tolist()
    with pytest.raises(ConfigError, match="seq_len"):
        eq.solution_tokens(short, probs, full - 1)
    with pytest.raises(ConfigError, match="vocab_chain_len"):
        eq.EquationSpec(chain_len=4, vocab_chain_len=3)


def _written_steps(spec, response):
    """[(prev written value, signed constant, written value)] of a rendered worked solution, and its answer."""
    words = eq.render(spec, response).split()
    assert words[0] == "<think>" and words[-5:-3] == ["</think>", "<answer>"]
    steps = " ".join(words[1:-5]).split(" ;")[:-1]
    prev, out = int(steps[0].split()[2]), []
    for st in steps[1:]:
        _, sign, c, _, _, _, v = st.split()
        out.append((prev, int(c) * (1 if sign == "+" else -1), int(v)))
        prev = int(v)
    return out, int(words[-3])


def test_slipped_solutions_drift_one_way_and_any_slip_fails_the_answer():
    spec = eq.EquationSpec(chain_len=6, value_margin=5)
    probs = _problems(spec, n=400, seed=3)
    lp = eq.prompt_len(spec)
    exact, _ = eq.solution_tokens(spec, probs)
    same, _ = eq.solution_tokens(spec, probs, slip_key=jax.random.key(0), slip_prob=0.0)
    np.testing.assert_array_equal(same, exact)  # no slips: the exact worked solution
    tokens, mask = map(np.asarray, eq.solution_tokens(spec, probs, slip_key=jax.random.key(1), slip_prob=0.3))
    slips = 0
    for b in range(400):
        steps, answer = _written_steps(spec, tokens[b, lp:])
        assert len(steps) == probs.distance_N[b] and answer == steps[-1][2]
        errs = [v - (prev + delta) for prev, delta, v in steps]  # each step's own slip
        assert set(errs) <= {0, 1} or set(errs) <= {0, -1}  # one direction per problem
        assert [delta for _, delta, _ in steps] == probs.path_deltas_NxLm1[b, :len(steps)].tolist()
        assert (answer == probs.answer_N[b]) == (not any(errs))  # a slip is never undone
        slips += sum(e != 0 for e in errs)
    # each of the sum(d) = ~1200 edge steps slips with probability 0.3: 4.5 binomial sds of room
    n_steps = int(probs.distance_N.sum())
    assert abs(slips - 0.3 * n_steps) < 4.5 * np.sqrt(0.21 * n_steps)
    out = eq.verify(spec, probs, jnp.asarray(tokens[:, lp:]), jnp.asarray(mask[:, lp:]))
    assert np.all(out["format_ok_N"])
    np.testing.assert_array_equal(out["answer_correct_N"], out["process_correct_N"])
    # every step slips: the drift is the step count, so the answer is off by exactly d
    every, _ = eq.solution_tokens(spec, probs, slip_key=jax.random.key(2), slip_prob=1.0)
    given = eq.verify(spec, probs, every[:, lp:], (every[:, lp:] != PAD_ID).astype(jnp.int32))["answer_N"]
    np.testing.assert_array_equal(np.abs(np.asarray(given) - probs.answer_N), probs.distance_N)


def test_global_slip_sign_makes_every_slip_plus_one_at_the_same_positions():
    spec = eq.EquationSpec(chain_len=6, value_margin=5)
    probs = _problems(spec, n=200, seed=4)
    lp = eq.prompt_len(spec)
    key = jax.random.key(5)
    either = np.asarray(eq.solution_tokens(spec, probs, slip_key=key, slip_prob=0.4)[0])
    plus = np.asarray(eq.solution_tokens(spec, probs, slip_key=key, slip_prob=0.4, slip_sign="global")[0])
    saw_minus = False
    for b in range(200):
        steps_either, _ = _written_steps(spec, either[b, lp:])
        steps_plus, answer = _written_steps(spec, plus[b, lp:])
        errs_either = [v - (prev + delta) for prev, delta, v in steps_either]
        errs_plus = [v - (prev + delta) for prev, delta, v in steps_plus]
        assert set(errs_plus) <= {0, 1}
        assert [abs(e) for e in errs_either] == errs_plus  # same key: the same steps slip
        assert answer - probs.answer_N[b] == sum(errs_plus)  # the drift is the slip count, upwards
        saw_minus |= -1 in errs_either
    assert saw_minus  # the per-problem sign does go down for some problems (else the check above is vacuous)
    with pytest.raises(ConfigError, match="slip_sign"):
        eq.solution_tokens(spec, probs, slip_key=key, slip_prob=0.4, slip_sign="down")


def test_slips_need_value_margin_for_their_drift():
    spec = eq.EquationSpec(chain_len=6, value_margin=4)
    assert eq.EquationSpec(chain_len=6).num_values + 10 == eq.EquationSpec(chain_len=6, value_margin=5).num_values
    with pytest.raises(ConfigError, match="value_margin"):
        eq.solution_tokens(spec, _problems(spec, n=4), slip_key=jax.random.key(0), slip_prob=0.5)
    with pytest.raises(ConfigError, match="value_margin"):
        eq.EquationSpec(chain_len=6, value_margin=-1)
