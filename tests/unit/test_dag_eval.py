"""DAG-lite evaluation (eval/dag_eval.py) against math.comb on hand-built count tables, the closed form
of a uniform guesser, a hand-built hacking rate, the bad-input errors, and one end-to-end call.

Hand-built table (S = 4 samples per problem; unbiased pass@k = 1 - C(S - c, k) / C(S, k), c correct):
    c = 0: 0, 0, 0, 0           c = 1: 1/4, 1/2, 3/4, 1      (C(3,2)/C(4,2) = 3/6, C(3,3)/C(4,3) = 1/4)
    c = 2: 1/2, 5/6, 1, 1       (C(2,2)/C(4,2) = 1/6)        c = 3: 3/4, 1, 1, 1      c = 4: 1, 1, 1, 1
  op 2, three problems: perfect c = (0, 1, 2), answer-right c = (1, 2, 4)
    process pass@k = means of the rows: 1/4, 4/9, 7/12, 2/3
    outcome pass@k: 7/12, 7/9, 11/12, 1
    hacking: 7 right answers, 3 of them perfect -> 4/7
  op 3, two problems: perfect c = (0, 0), answer-right c = (3, 0)
    process 0; outcome 3/8, 1/2, 1/2, 1/2; hacking 3/3 = 1
  op 5, one problem, nothing right: every pass@k 0, hacking rate NaN (no right answer)
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.core.config import ConfigError
from theoryrl.eval import dag_eval
from theoryrl.models import transformer as tfm
from theoryrl.rl import sampling as smp
from theoryrl.tasks.dag import generate as gen
from theoryrl.tasks.dag import mix
from theoryrl.tasks.dag import tokens as tk
from theoryrl.tasks.dag import verify as ver
from theoryrl.tasks.vocab import EOS_ID, PAD_ID

S = 4
PERFECT_C = {2: (0, 1, 2), 3: (0, 0), 5: (0,)}
ANSWER_C = {2: (1, 2, 4), 3: (3, 0), 5: (0,)}


def _comb_pass(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _table():
    """Rows in op order 2, 2, 2, 3, 3, 5, with each row's correct samples placed at varied slots
    (the unbiased estimator does not see the order): perfect ones are a subset of answer-right ones."""
    perfect, answer, op = [], [], []
    for o, perfect_counts in PERFECT_C.items():
        for j, (cp, ca) in enumerate(zip(perfect_counts, ANSWER_C[o], strict=True)):
            slots = np.roll(np.arange(S), j + o)
            a, p = np.zeros(S, bool), np.zeros(S, bool)
            a[slots[:ca]], p[slots[:cp]] = True, True
            perfect.append(p), answer.append(a), op.append(o)
    # shuffle the problems: grouping is by op label, not by position
    order = np.array([3, 0, 5, 1, 4, 2])
    return np.array(perfect)[order], np.array(answer)[order], np.array(op)[order]


def test_pass_at_k_by_op_equals_math_comb_on_a_hand_built_table():
    perfect, answer, op = _table()
    report = dag_eval.pass_at_k_by_op(perfect, answer, op, k_max=S, num_resamples=200)
    assert sorted(report) == [2, 3, 5]
    literal = {2: ([1 / 4, 4 / 9, 7 / 12, 2 / 3], [7 / 12, 7 / 9, 11 / 12, 1.0]),
               3: ([0.0] * 4, [3 / 8, 1 / 2, 1 / 2, 1 / 2]), 5: ([0.0] * 4, [0.0] * 4)}
    for o, r in report.items():
        np.testing.assert_array_equal(r["k"], [1, 2, 3, 4])
        for name, counts, lit in (("process", PERFECT_C[o], literal[o][0]), ("outcome", ANSWER_C[o], literal[o][1])):
            by_comb = [np.mean([_comb_pass(S, c, k) for c in counts]) for k in range(1, S + 1)]
            np.testing.assert_allclose(r[name]["mean"], by_comb, atol=1e-12)
            np.testing.assert_allclose(r[name]["mean"], lit, atol=1e-12)
            # a bootstrap mean over these problems lies between their smallest and largest value
            per_problem = np.array([[_comb_pass(S, c, k) for k in range(1, S + 1)] for c in counts])
            assert np.all(per_problem.min(0) - 1e-12 <= r[name]["lo"])
            assert np.all(r[name]["lo"] <= r[name]["mean"] + 1e-12)
            assert np.all(r[name]["mean"] <= r[name]["hi"] + 1e-12)
            assert np.all(r[name]["hi"] <= per_problem.max(0) + 1e-12)
        assert r["num_problems"] == len(PERFECT_C[o]) and r["num_samples"] == S
        assert r["num_perfect"] == sum(PERFECT_C[o]) and r["num_answer_correct"] == sum(ANSWER_C[o])
    # op 2's intervals are not degenerate (its problems differ); k_max below S gives the prefix
    assert report[2]["process"]["lo"][0] < report[2]["process"]["hi"][0]
    short = dag_eval.pass_at_k_by_op(perfect, answer, op, k_max=2, ops=[3], num_resamples=10)
    assert list(short) == [3]
    np.testing.assert_allclose(short[3]["outcome"]["mean"], [3 / 8, 1 / 2], atol=1e-12)


def test_hacking_rate_on_the_hand_built_batch():
    """Derived in the module docstring: op 2 has 4 hacked of 7 right answers, op 3 all 3 of 3, op 5
    none right (NaN)."""
    report = dag_eval.pass_at_k_by_op(*_table(), k_max=1, num_resamples=10)
    assert report[2]["hacking_rate"] == pytest.approx(4 / 7)
    assert report[3]["hacking_rate"] == 1.0
    assert math.isnan(report[5]["hacking_rate"])


@pytest.fixture(scope="module")
def problems():
    spec = gen.DagSpec(p=97, op_max=4, max_distractors=1)
    params = mix.make_params(spec, [((2, 4), 1.0)], np.full(3, 1 / 3))
    return spec, gen.sample(jax.random.key(0), spec, params, 200)


def test_uniform_guesser_is_inflated_outcome_only_and_zero_process_verified(problems):
    """Each of S = 256 samples is `answer v <eos>` with v uniform mod 97, run through the verifier.
    Outcome-only pass@k's expectation is 1 - (1 - 1/p)^k (≈ 0.0103 at k = 1, 0.2822 at 32, 0.9296 at
    256, the docstring's "≈ 93%"); over N = 200 problems the sample mean is within 4 standard errors
    (the per-problem values' std / sqrt(N)). No step is written, so nothing is process-verified and
    every right answer is a hack."""
    spec, probs = problems
    n, s, p = 200, 256, spec.p
    guess = jax.random.randint(jax.random.key(1), (n * s,), 0, p)
    response = jnp.stack([jnp.full(n * s, tk.ANSWER), tk.num_token(guess), jnp.full(n * s, EOS_ID)], axis=1)
    result = ver.verify(spec, gen.take(probs, jnp.repeat(jnp.arange(n), s)), response)
    answer = np.asarray(result["answer_correct_B"]).reshape(n, s)
    perfect = np.asarray(result["perfect_B"]).reshape(n, s)
    report = dag_eval.pass_at_k_by_op(perfect, answer, np.zeros(n, np.int64), k_max=s, num_resamples=100)[0]
    closed = 1.0 - (1.0 - 1.0 / p) ** np.arange(1, s + 1)
    assert closed[-1] == pytest.approx(0.9296, abs=1e-4)
    c = answer.sum(axis=1)
    for k in (1, 2, 8, 32, 128, 256):
        per_problem = np.array([_comb_pass(s, ci, k) for ci in c])
        se = per_problem.std() / math.sqrt(n)
        assert abs(report["outcome"]["mean"][k - 1] - closed[k - 1]) <= 4 * se + 1e-9, k
    np.testing.assert_array_equal(report["process"]["mean"], np.zeros(s))
    np.testing.assert_array_equal(report["process"]["hi"], np.zeros(s))
    assert report["num_perfect"] == 0 and report["hacking_rate"] == 1.0


@pytest.mark.parametrize("args, match", [
    ({"k_max": 5}, "'k_max': 5 .*1..4"),
    ({"k_max": 0}, "'k_max': 0"),
    ({"k_max": 1.0}, "'k_max'"),
    ({"k_max": 1, "S": 0}, "'num_samples \\(S\\)': 0"),
    ({"k_max": 1, "N": 0}, "empty op list|non-empty op list"),
    ({"k_max": 1, "ops": []}, "'ops'"),
    ({"k_max": 1, "ops": [7]}, "'ops'"),
    ({"k_max": 1, "swap": True}, "perfect implies answer_correct"),
])
def test_bad_report_input_is_a_one_line_config_error(args, match):
    perfect, answer, op = _table()
    n, s = args.get("N", 6), args.get("S", S)
    perfect, answer, op = perfect[:n, :s], answer[:n, :s], op[:n]
    if args.get("swap"):
        perfect, answer = answer, perfect
    kw = {"ops": args["ops"]} if "ops" in args else {}
    with pytest.raises(ConfigError, match=match) as err:
        dag_eval.pass_at_k_by_op(perfect, answer, op, args["k_max"], **kw)
    assert "\n" not in str(err.value)


def _tiny(spec):
    model = tfm.TransformerSpec(vocab_size=spec.vocab_size, d_model=16, n_layers=1, n_heads=2, n_kv_heads=2,
                                max_len=spec.prompt_len + spec.solution_len)
    sampler = smp.SamplerSpec(max_new_tokens=spec.solution_len, eos_id=EOS_ID, pad_id=PAD_ID)
    return model, sampler


def test_bad_sampling_input_fails_before_any_compute(problems):
    """params=None: any sampling would fail with another error, so these fail at the checks."""
    spec, probs = problems
    model, sampler = _tiny(spec)
    few = gen.take(probs, jnp.arange(3))
    base = {"model_spec": model, "sampler": sampler, "params": None, "spec": spec, "problems": few,
            "key": jax.random.key(0), "num_samples": 4, "k_max": 4}
    for kw, match in [({"k_max": 8}, "'k_max': 8"), ({"k_max": 0}, "'k_max'"),
                      ({"num_samples": 0, "k_max": 1}, "'num_samples \\(S\\)'"),
                      ({"temperature": 0.0}, "'temperature'"),
                      ({"sampler": smp.SamplerSpec(max_new_tokens=spec.solution_len + 1, eos_id=EOS_ID,
                                                    pad_id=PAD_ID)}, "'sampler.max_new_tokens'"),
                      ({"sampler": smp.SamplerSpec(max_new_tokens=4, eos_id=5, pad_id=PAD_ID)}, "'sampler'"),
                      ({"model_spec": tfm.TransformerSpec(vocab_size=50, d_model=16, n_layers=1, n_heads=2,
                                                           max_len=256)}, "'model_spec.vocab_size'")]:
        with pytest.raises(ConfigError, match=match) as err:
            dag_eval.evaluate(**{**base, **kw})
        assert "\n" not in str(err.value)


def test_end_to_end_with_a_tiny_random_transformer(problems):
    """5 problems, S = 4 samples of up to solution_len tokens from a random 1-layer model, in chunks of
    2 prompts (max_rows = 8: three calls, the last padded). A random model writes no valid solution,
    so process-verified pass@k is 0 at every k; the same holds with NaN parameters (garbage logits)."""
    spec, probs = problems
    model, sampler = _tiny(spec)
    params = tfm.init_params(model, jax.random.key(2))
    few = gen.take(probs, jnp.arange(5))
    out = dag_eval.evaluate(model, sampler, params, spec, few, jax.random.key(3), num_samples=4, k_max=4,
                            max_rows=8, num_resamples=50)
    samples = out["samples"]
    assert samples["perfect_NxS"].shape == (5, 4) and samples["length_NxS"].shape == (5, 4)
    assert np.all((samples["length_NxS"] >= 1) & (samples["length_NxS"] <= spec.solution_len))
    np.testing.assert_array_equal(samples["op_N"], np.asarray(few.op_B))
    assert sorted(out["by_op"]) == sorted(set(np.asarray(few.op_B).tolist()))
    for r in out["by_op"].values():
        np.testing.assert_array_equal(r["process"]["mean"], np.zeros(4))
        assert np.all((0 <= r["outcome"]["mean"]) & (r["outcome"]["mean"] <= 1))
        assert math.isnan(r["hacking_rate"]) or 0.0 <= r["hacking_rate"] <= 1.0
    assert sum(r["num_problems"] for r in out["by_op"].values()) == 5
    nan_params = jax.tree.map(lambda x: jnp.full_like(x, jnp.nan) if jnp.issubdtype(x.dtype, jnp.floating) else x,
                              params)
    garbage = dag_eval.sample_and_verify(model, sampler, nan_params, spec, few, jax.random.key(4), 4, max_rows=8)
    assert not garbage["perfect_NxS"].any()


def test_chunked_sampling_pairs_each_sample_with_its_own_problem(problems):
    """Greedy decoding, 5 prompts decoded 2 per call (the last call padded with a copy of prompt 4,
    its samples dropped): each returned response must be the greedy continuation of its own prompt,
    i.e. every response token is the argmax of an independent full forward pass (no KV cache) over
    that prompt and the response so far. The responses differ across prompts (else the check would be
    vacuous), and verifying each against its own problem here reproduces the returned scores."""
    spec, probs = problems
    model, sampler = _tiny(spec)
    greedy = smp.SamplerSpec(max_new_tokens=sampler.max_new_tokens, eos_id=EOS_ID, pad_id=PAD_ID, greedy=True)
    model = dataclasses.replace(model, init_std=1.0)  # large weights: the argmax depends on the prompt
    params = tfm.init_params(model, jax.random.key(5))
    few = gen.take(probs, jnp.arange(5))
    got = dag_eval.sample_and_verify(model, greedy, params, spec, few, jax.random.key(0), 2, max_rows=4,
                                     keep_tokens=True)
    tokens = got["response_NxSxT"]
    assert tokens.shape == (5, 2, spec.solution_len)
    assert len({row.tobytes() for row in tokens[:, 0]}) > 1
    mask = np.cumsum(np.cumsum(tokens == EOS_ID, axis=2), axis=2) <= 1  # up to and including the first EOS
    np.testing.assert_array_equal(mask.sum(axis=2), got["length_NxS"])
    rollout = smp.Rollout(jnp.asarray(tokens), jnp.zeros(tokens.shape), jnp.asarray(mask, jnp.float32),
                          jnp.asarray(got["length_NxS"]), jnp.asarray(mask.all(axis=2)))
    prompts, prompt_mask = gen.left_padded_prompts(few)
    seq, kv_mask, positions, resp_mask = smp.full_sequences(prompts, prompt_mask, rollout)
    forward = jax.jit(lambda p, x, pos, kv: tfm.forward(model, p, x, positions_BxT=pos, kv_mask_BxT=kv).logits_BxTxV)
    logits = forward(params, seq, positions, kv_mask)
    live = np.asarray(resp_mask) > 0
    np.testing.assert_array_equal(np.asarray(jnp.argmax(logits[:, :-1], axis=-1))[live], np.asarray(seq[:, 1:])[live])
    result = ver.verify(spec, gen.take(few, jnp.repeat(jnp.arange(5), 2)), jnp.asarray(tokens.reshape(10, -1)))
    for name in ("perfect", "answer_correct", "strict", "process_reward", "answer"):
        np.testing.assert_array_equal(got[f"{name}_NxS"], np.asarray(result[f"{name}_B"]).reshape(5, 2), name)


def test_entropy_is_each_samples_mean_token_entropy_and_changes_no_sample(problems):
    """with_entropy adds entropy_NxS = the mean, over a sample's response tokens (EOS included), of
    the entropy of softmax(logits / T) at each of them, recomputed here in float64 numpy from an
    independent full forward pass; the samples themselves are the same as without it."""
    spec, probs = problems
    model, sampler = _tiny(spec)
    model = dataclasses.replace(model, init_std=0.5)
    params = tfm.init_params(model, jax.random.key(7))
    few, temperature = gen.take(probs, jnp.arange(3)), 0.8
    kw = dict(temperature=temperature, max_rows=4, keep_tokens=True)
    got = dag_eval.sample_and_verify(model, sampler, params, spec, few, jax.random.key(1), 2, with_entropy=True, **kw)
    plain = dag_eval.sample_and_verify(model, sampler, params, spec, few, jax.random.key(1), 2, **kw)
    np.testing.assert_array_equal(got["response_NxSxT"], plain["response_NxSxT"])
    tokens = got["response_NxSxT"]
    mask = np.cumsum(np.cumsum(tokens == EOS_ID, axis=2), axis=2) <= 1
    rollout = smp.Rollout(jnp.asarray(tokens), jnp.zeros(tokens.shape), jnp.asarray(mask, jnp.float32),
                          jnp.asarray(got["length_NxS"]), jnp.asarray(mask.all(axis=2)))
    prompts, prompt_mask = gen.left_padded_prompts(few)
    seq, kv_mask, positions, resp_mask = smp.full_sequences(prompts, prompt_mask, rollout)
    logits = np.asarray(tfm.forward(model, params, seq, positions_BxT=positions, kv_mask_BxT=kv_mask).logits_BxTxV,
                        np.float64)[:, :-1] / temperature
    logp = logits - logits.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    entropy = -(np.exp(logp) * logp).sum(-1)
    live = np.asarray(resp_mask) > 0
    want = np.array([entropy[i][live[i]].mean() for i in range(live.shape[0])]).reshape(3, 2)
    np.testing.assert_allclose(got["entropy_NxS"], want, rtol=2e-4)
    assert np.ptp(want) > 1e-3  # samples differ in entropy: the check is per sample
