"""The LM evaluation path (eval/lm_eval.py) against hand-computed pairings, exact enumeration of
k-subsets, and the softmax of an independent full forward pass."""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.eval import lm_eval
from theoryrl.models import transformer as tfm
from theoryrl.rl import sampling as smp


def _rollout(tokens_PxGxT) -> smp.Rollout:
    tokens = jnp.asarray(tokens_PxGxT, jnp.int32)
    ones = jnp.ones(tokens.shape, jnp.float32)
    return smp.Rollout(tokens, 0 * ones, ones, jnp.full(tokens.shape[:2], tokens.shape[2], jnp.int32),
                       jnp.ones(tokens.shape[:2], bool))


def test_every_sample_is_scored_against_its_own_prompts_problem():
    """P = 3 problems with answers (5, 6, 7), G = 2 samples each whose first token is the guess:
    prompt 0 guesses (5, 6) -> (1, 0); prompt 1 guesses (6, 6) -> (1, 1); prompt 2 (5, 7) -> (0, 1).
    A tiling that paired sample g of prompt p with any other problem gives another matrix."""
    tokens = [[[5, 0], [6, 0]], [[6, 0], [6, 0]], [[5, 0], [7, 0]]]
    problems = {"answer": jnp.array([5, 6, 7])}

    def score(probs, response_NxT, mask_NxT):
        return {"reward": response_NxT[:, 0] == probs["answer"], "length_seen": jnp.sum(mask_NxT, axis=1)}

    scores = lm_eval.score_samples(score, problems, _rollout(tokens))
    np.testing.assert_array_equal(scores["reward"], [[1, 0], [1, 1], [0, 1]])
    np.testing.assert_array_equal(scores["length_seen"], np.full((3, 2), 2.0))
    assert scores["reward"].dtype == jnp.float32


def test_pass_at_k_report_equals_enumeration_over_every_k_subset():
    """pass@k of a problem = the fraction of k-subsets of its samples holding a correct one,
    enumerated with itertools; solvable = rows with a 1; histogram bins c/n of (0, 1/6, 3/6, 6/6)."""
    correct = np.array([[0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [1, 0, 1, 0, 1, 0], [1, 1, 1, 1, 1, 1]])
    ks = [1, 2, 3, 6]
    report = lm_eval.pass_at_k_report(correct, ks)
    for j, k in enumerate(ks):
        per_problem = [np.mean([any(row[list(s)]) for s in itertools.combinations(range(6), k)]) for row in correct]
        assert report["pass_at_k"][j] == pytest.approx(np.mean(per_problem), abs=1e-12)
    assert report["solvable"] == 0.75
    np.testing.assert_array_equal(report["correct_N"], [0, 1, 3, 6])
    # bins: "0", "(0,0.1]", "(0.1,0.2]" (1/6), ..., "(0.4,0.5]" (3/6), ..., "1"
    expected = np.zeros(12, int)
    expected[[0, 2, 5, 11]] = 1
    np.testing.assert_array_equal(report["histogram"], expected)
    with_ci = lm_eval.pass_at_k_report(correct, ks, num_resamples=50)
    np.testing.assert_array_equal(with_ci["pass_at_k"], report["pass_at_k"])
    # every resample is a mean over 4 of these problems' pass@k values, so it lies in their range
    assert np.all(0.0 <= with_ci["lo"]) and np.all(with_ci["lo"] <= with_ci["hi"]) and np.all(with_ci["hi"] <= 1.0)
    with pytest.raises(ValueError, match="0/1"):
        lm_eval.pass_at_k_report(np.array([[0, 2]]), [1])


def test_sampled_accuracy_matches_the_softmax_of_a_full_forward_pass():
    """One-token responses: P(correct) = softmax(logits at the last prompt position)[answer],
    computed by tfm.forward (no KV cache). With S = 2048 samples the sampled accuracy is within
    4 binomial standard deviations of it, and the greedy score is 1 exactly when the answer is the argmax."""
    spec = tfm.TransformerSpec(vocab_size=7, d_model=16, n_layers=1, n_heads=2, n_kv_heads=2, max_len=8)
    params = tfm.init_params(spec, jax.random.key(3))
    prompts = jnp.array([[2, 3, 4], [5, 6, 2]], jnp.int32)
    problems = {"answer": jnp.array([4, 3])}
    sampler = smp.SamplerSpec(max_new_tokens=1, eos_id=1, pad_id=0)

    def score(probs, response_NxT, mask_NxT):
        return {"answer_correct": response_NxT[:, 0] == probs["answer"]}

    num_samples = 2048
    sampled = lm_eval.sampled_scores(spec, sampler, score, params, prompts, None, problems, jax.random.key(0),
                                     num_samples)
    logits = tfm.forward(spec, params, prompts).logits_BxTxV[:, -1]
    p_true = np.asarray(jax.nn.softmax(logits, axis=-1))[np.arange(2), np.asarray(problems["answer"])]
    acc = np.asarray(sampled["answer_correct"]).mean(axis=1)
    sigma = np.sqrt(p_true * (1 - p_true) / num_samples)
    assert np.all(np.abs(acc - p_true) <= 4 * sigma + 1e-6), (acc, p_true)
    greedy = lm_eval.greedy_scores(spec, sampler, score, params, prompts, None, problems)
    np.testing.assert_array_equal(greedy["answer_correct"],
                                  (np.argmax(np.asarray(logits), axis=-1) == np.asarray(problems["answer"])))
    np.testing.assert_array_equal(greedy["length"], [1.0, 1.0])
