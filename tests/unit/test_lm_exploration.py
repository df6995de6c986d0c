"""The LM path of outcome-based exploration (issue 24; Song, Kempe, Munos, spec §3.1-3.3).

Independent references: hand-computed bonuses (derived in each docstring), the bandit path's own
calls (`rl/exploration.py` as `rl/bandit_pg.py` uses them, over every question at once), GRPO in
float64 numpy, and exact enumeration of all G-tuples of outcomes for the batch penalty's mean.
"""
from __future__ import annotations

import dataclasses

import itertools

import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.core.config import ConfigError
from theoryrl.rl import advantages as adv_lib
from theoryrl.rl import exploration as ex
from theoryrl.rl import lm_exploration as lx

GRPO = adv_lib.AdvantageSpec()


def _hp(variant="grpo", **kw):
    return lx.explore_hp(lx.variant_weights(variant, **kw))


def test_counts_include_the_batch_before_the_bonus_by_hand():
    """One question, prior counts N(3) = 0, N(5) = 3, N(7) = 8; answers 3, 3, 5, 7. After the update
    N = 2, 2, 4, 9, so naive UCB b = 1/sqrt(2), 1/sqrt(2), 1/2, 1/3 (the other order, N from 0,
    would give 1 to both 3s). c = 0.2: the term is 0.2 b. UCB-Con (b0 0.5): 0.2 (b - 0.5). UCB-Mean:
    0.2 (b_i - mean of the other three), e.g. sample 3: 1/3 - (2/sqrt(2) + 1/2) / 3. No sample is
    correct, so gating changes nothing."""
    counts = jnp.zeros((1, 10)).at[0, 5].set(3.0).at[0, 7].set(8.0)
    answers, correct = jnp.array([[3, 3, 5, 7]]), jnp.zeros((1, 4), bool)
    b = np.array([2 ** -0.5, 2 ** -0.5, 0.5, 1 / 3])
    expected = {"ucb": 0.2 * b, "ucb_con": 0.2 * (b - 0.5),
                "ucb_mean": 0.2 * np.array([b[i] - (b.sum() - b[i]) / 3 for i in range(4)])}
    for variant, want in expected.items():
        new_counts, term = lx.exploration_term(_hp(variant, c=0.2, b0=0.5), counts, jnp.array([0]), answers, correct)
        np.testing.assert_allclose(np.asarray(term), [want], rtol=1e-6)
        np.testing.assert_array_equal(np.asarray(new_counts[0, [3, 5, 7]]), [2, 4, 9])


def test_a_question_drawn_twice_counts_both_groups_first():
    """Question 1 appears twice in a batch of 3 prompts (G = 2): answers (4, 4) and (4, 6). Its
    counts go to N(4) = 3, N(6) = 1 before any bonus, so the first group's bonuses are 1/sqrt(3)
    each and the second's 1/sqrt(3), 1. Question 0 answers (1, 2): 1 and 1."""
    counts, term = lx.exploration_term(_hp("ucb", c=1.0), jnp.zeros((2, 8)), jnp.array([1, 0, 1]),
                                       jnp.array([[4, 4], [1, 2], [4, 6]]), jnp.zeros((3, 2), bool))
    r3 = 3 ** -0.5
    np.testing.assert_allclose(np.asarray(term), [[r3, r3], [1, 1], [r3, 1]], rtol=1e-6)
    assert float(counts[1, 4]) == 3 and float(counts[1, 6]) == 1 and float(counts.sum()) == 6


@pytest.mark.parametrize("variant", ["ucb", "ucb_mean", "ucb_con"])
@pytest.mark.parametrize("batch", [False, True])
def test_lm_path_equals_the_bandit_path_on_the_same_answers(variant, batch):
    """Every question drawn once (question_P = 0..Q-1) and c = c_batch: the LM term must equal the
    bandit path's c * exploration_bonus(weights, update_counts(counts, answers), ...) exactly as
    `bandit_pg.pg_step` computes it, over several rounds of random answers and correctness."""
    q, g, m, c = 5, 6, 7, 0.3
    rng = np.random.default_rng(0)
    hp = _hp(variant + ("+batch" if batch else ""), c=c, b0=0.5, c_batch=c)
    lm_counts = bandit_counts = jnp.zeros((q, m))
    for _ in range(4):
        answers = jnp.asarray(rng.integers(0, m, (q, g)))
        correct = jnp.asarray(rng.random((q, g)) < 0.3).at[0].set(True)  # question 0: all correct (gated)
        lm_counts, term = lx.exploration_term(hp, lm_counts, jnp.arange(q), answers, correct)
        bandit_counts = ex.update_counts(bandit_counts, answers)
        weights = {variant: 1.0, "b0": 0.5, "batch": 1.0 if batch else 0.0, "gate": 1.0}
        want = c * ex.exploration_bonus(weights, bandit_counts, answers, correct)
        np.testing.assert_allclose(np.asarray(term), np.asarray(want), rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(np.asarray(lm_counts), np.asarray(bandit_counts))
        assert np.all(np.asarray(term)[0] == 0)  # gating


def test_gating_zeroes_all_correct_groups_and_only_them():
    """Batch penalty, G = 3: group 0 all correct with answers (1, 1, 2) -> 0, 0, 0 when gated; group
    1 with one wrong sample keeps -(1/3) * repeats = -1/3, -1/3, 0. Ungated, group 0 is -1/3, -1/3, 0."""
    answers = jnp.array([[1, 1, 2], [1, 1, 2]])
    correct = jnp.array([[True, True, True], [True, False, True]])
    for gating, row0 in ((True, [0, 0, 0]), (False, [-1 / 3, -1 / 3, 0])):
        _, term = lx.exploration_term(_hp("batch", c_batch=1.0, gating=gating), jnp.zeros((2, 4)), jnp.arange(2),
                                      answers, correct)
        np.testing.assert_allclose(np.asarray(term), [row0, [-1 / 3, -1 / 3, 0]], atol=1e-7)


def test_batch_penalty_mean_is_minus_collision_probability_by_enumeration():
    """G = 3 samples from p = (0.5, 0.3, 0.2): over all 27 answer tuples weighted by their
    probabilities, the mean penalty of any sample is -((G-1)/G) sum_o p(o)^2 = -(2/3) * 0.38."""
    p, g = np.array([0.5, 0.3, 0.2]), 3
    tuples = np.array(list(itertools.product(range(3), repeat=g)))
    prob = np.prod(p[tuples], axis=1)
    _, term = lx.exploration_term(_hp("batch", c_batch=1.0, gating=False), jnp.zeros((len(tuples), 3)),
                                  jnp.arange(len(tuples)), jnp.asarray(tuples), jnp.zeros(tuples.shape, bool))
    mean_per_sample = prob @ np.asarray(term, np.float64)
    np.testing.assert_allclose(mean_per_sample, -(g - 1) / g * np.sum(p ** 2), rtol=1e-6)


def _grpo64(r):
    """GRPO in float64 numpy: (r - mean) / (std with ddof 1 + 1e-6) per group."""
    r = np.asarray(r, np.float64)
    return (r - r.mean(1, keepdims=True)) / (r.std(1, ddof=1, keepdims=True) + 1e-6)


def test_masking_keeps_answer_tokens_at_plain_grpo_and_adds_the_term_before_the_answer():
    """Responses of T = 5 tokens, answer marker 9: sample (0, 0) = 1 2 9 4 0 (reasoning = tokens 0,
    1), sample (0, 1) = 9 ... (no reasoning token), sample (0, 2) has no marker (all reasoning).
    After normalisation, reasoning tokens get Â + term and the marker and answer tokens plain Â;
    before normalisation, reasoning tokens get GRPO(r + term) (float64 numpy), the others Â."""
    rewards = jnp.array([[1.0, 0.0, 0.0]])
    term = jnp.array([[0.1, -0.2, 0.3]])
    response = jnp.array([[[1, 2, 9, 4, 0], [9, 4, 0, 0, 0], [1, 2, 3, 4, 5]]])
    mask = jnp.ones((1, 3, 5))
    plain, _ = adv_lib.compute_advantages(GRPO, rewards, mask)
    reasoning = np.array([[[1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]]], float)
    np.testing.assert_array_equal(np.asarray(lx.reasoning_mask(response, 9)), reasoning)
    spec = lx.ExploreSpec(num_outcomes=4, answer_token=9)
    for after_norm, on_reasoning in ((True, _grpo64(rewards) + np.asarray(term)),
                                     (False, _grpo64(np.asarray(rewards) + np.asarray(term)))):
        hp = _hp("ucb", after_norm=after_norm)
        adv, _ = adv_lib.compute_advantages(GRPO, rewards, mask, **lx.hook_kwargs(spec, hp, GRPO, term, rewards, response))
        adv, plain_ = np.asarray(adv), np.asarray(plain)
        np.testing.assert_array_equal(adv[reasoning == 0], plain_[reasoning == 0])
        np.testing.assert_allclose(adv, np.where(reasoning == 1, on_reasoning[:, :, None], plain_), rtol=1e-5,
                                   atol=1e-6)
    adv, _ = adv_lib.compute_advantages(GRPO, rewards, mask,
                                        **lx.hook_kwargs(spec, _hp("ucb", masking=False), GRPO, term, rewards, response))
    np.testing.assert_allclose(np.asarray(adv), np.asarray(plain) + np.asarray(term)[:, :, None], rtol=1e-6)


def test_outcome_ids_one_per_value_and_one_for_no_answer():
    np.testing.assert_array_equal(np.asarray(lx.outcome_ids(jnp.array([0, 22, -1, 23, 5]), 23)), [0, 22, 23, 23, 5])


@pytest.mark.parametrize("make, knob", [
    (lambda: lx.check_weights(-0.1, 0.5, 0.0), "c"),
    (lambda: lx.check_weights(0.2, 0.5, float("nan")), "c_batch"),
    (lambda: lx.variant_weights("ucb_max"), "variant"),
    (lambda: lx.variant_weights("ucb_con", c=-0.2), "c"),
    (lambda: lx.check_masking(lx.ExploreSpec(num_outcomes=24), True), "masking"),  # no answer token
    (lambda: lx.check_estimator(adv_lib.AdvantageSpec(estimator="rloo")), "advantage.estimator"),
])
def test_bad_input_is_one_line_error_before_compute(make, knob):
    with pytest.raises(ConfigError, match=f"'{knob}'") as err:
        make()
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- the program: counts in the state, resume


def _tiny_program(num_chunks: int, variant: str = "ucb_con+batch", learn: bool = True, lr_scale: float = 1.0,
                  qtask=None):
    """A 1-layer decoder on DAG ops 2-3 (values mod 23), Q = 4 fixed questions, P = 2 prompts x G = 2
    samples per step, 2 steps per chunk: an epoch (every question once) is 2 steps."""
    from theoryrl.models import transformer as tfm
    from theoryrl.rl import dag_runs as dr
    from theoryrl.rl import lm_rl, lm_runs, ntp
    from theoryrl.rl.losses import LossSpec
    from theoryrl.tasks.dag import generate as gen
    from theoryrl.tasks.dag import mix
    from theoryrl.tasks.dag import tokens as tk

    base = dr.BaseSpec(op_max=4, id_hi=3, medium_max=3, mix=(0.5, 0.5, 0.0), d_model=32, n_layers=1, n_heads=2,
                       d_ff=64)
    spec, model = base.task(base.id_hi), dr.model(base)
    questions = gen.sample(jax_key(1), spec, mix.make_params(spec, np.array([0, 0, 0.5, 0.5])), 4)
    xspec = lx.ExploreSpec(num_outcomes=spec.p + 1, answer_token=tk.ANSWER)
    rl_spec = lm_rl.RLSpec(prompts_per_step=2, group_size=2, advantage=GRPO, loss=LossSpec(agg="token-mean"))
    optim = ntp.OptimSpec(lr=1e-2, warmup_steps=0, total_steps=6, schedule="constant", weight_decay=0.0)
    qtask = qtask or dr.question_task(spec, "outcome", 1.0)
    program = lx.explore_program(model, dr.sampler(spec), rl_spec, optim, qtask, xspec,
                                 num_chunks=num_chunks, steps_per_chunk=2, data_fn=lambda hp: jnp.zeros(()),
                                 eval_fn=lambda params, hp, data: {}, learn=learn)
    hp = lm_runs.RLHp(seed=np.int32(3), lr_scale=np.float32(lr_scale), temperature=np.float32(1.0), top_p=np.float32(1.0),
                      init_params=tfm.init_params(model, jax_key(0)),
                      task=lx.QuestionsHp(questions, _hp(variant, c=0.2, b0=0.5, c_batch=0.1)))
    return program, hp


def jax_key(seed):
    import jax

    return jax.random.key(seed)


def _drive(program, hp, num_chunks, ckpt_dir):
    from theoryrl.core.ckpt import Checkpointer
    from theoryrl.core.loop import ChunkPlan, Progress, drive

    import jax

    hp_runs = jax.tree.map(lambda x: np.asarray(x)[None], hp)  # one run: the driver's leading run axis
    with Checkpointer(ckpt_dir) as ckpt:
        state, _ = drive(jax.vmap(lambda st, h: program.chunk_fn(st, h, jnp.zeros(()))), jax.vmap(program.init_fn)(hp_runs),
                         hp_runs, ChunkPlan(num_chunks, 2, ckpt_every_chunks=1), ckpt=ckpt,
                         progress=Progress("explore", num_chunks * 2, quiet=True), summarize=lambda m: {})
    return jax.tree.map(lambda x: x[0], state)


def test_counts_follow_the_epochs_and_are_restored_exactly_after_a_kill(tmp_path):
    """6 steps = 3 epochs of the 4 questions: every question is drawn once per epoch, so its G = 2
    samples land in its row 3 times (row sums 6, total 24). A run stopped after 2 chunks (its last
    checkpoint holds chunk 1's start) and resumed to 3 ends with the same counts and parameters,
    bit for bit, as one uninterrupted run."""
    import jax

    program, hp = _tiny_program(3)
    ids = np.stack([np.asarray(lx.epoch_questions(hp.seed, t, 2, 4)) for t in range(6)])
    for e in range(3):
        assert sorted(ids[2 * e:2 * e + 2].ravel().tolist()) == [0, 1, 2, 3]
    straight = _drive(program, hp, 3, tmp_path / "a")
    np.testing.assert_array_equal(np.asarray(straight.counts_QxM).sum(axis=1), [6, 6, 6, 6])
    assert int(straight.train.step) == 6
    _drive(*_tiny_program(2), 2, tmp_path / "b")  # "killed" after chunk 2, before it was saved
    resumed = _drive(program, hp, 3, tmp_path / "b")
    np.testing.assert_array_equal(np.asarray(resumed.counts_QxM), np.asarray(straight.counts_QxM))
    np.testing.assert_array_equal(np.asarray(resumed.solved_Q), np.asarray(straight.solved_Q))
    np.testing.assert_array_equal(np.asarray(resumed.correct_Q), np.asarray(straight.correct_Q))
    for a, b in zip(jax.tree.leaves(resumed.train.params), jax.tree.leaves(straight.train.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_every_arm_is_one_vmapped_program():
    """GRPO, UCB-Con, the batch penalty and UCB-Mean + batch with gating off differ only in traced
    weights: vmapping the term over their stacked ExploreHp gives each arm's own term, and GRPO's
    is exactly 0."""
    import jax

    arms = [lx.variant_weights("grpo"), lx.variant_weights("ucb_con"), lx.variant_weights("batch"),
            lx.variant_weights("ucb_mean+batch", gating=False)]
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *[lx.explore_hp(w) for w in arms])
    counts, ids = jnp.zeros((2, 5)), jnp.array([0, 1])
    answers, correct = jnp.array([[1, 1, 2], [3, 4, 4]]), jnp.array([[True, True, True], [False, True, False]])
    _, terms = jax.vmap(lambda hp: lx.exploration_term(hp, counts, ids, answers, correct))(stacked)
    for i, w in enumerate(arms):
        _, one = lx.exploration_term(lx.explore_hp(w), counts, ids, answers, correct)
        np.testing.assert_allclose(np.asarray(terms[i]), np.asarray(one), rtol=1e-6)
    assert np.all(np.asarray(terms[0]) == 0)


def test_solved_questions_accumulate_and_never_leave():
    """Questions 0..3, previously solved {3}. A batch draws 1 (one correct sample), 2 (none), 1
    again (none) and 0 (none): solved becomes {1, 3}; 3, not drawn, stays."""
    solved = lx.update_solved(jnp.array([False, False, False, True]), jnp.array([1, 2, 1, 0]),
                              jnp.array([[False, True], [False, False], [False, False], [False, False]]))
    assert np.asarray(solved).tolist() == [False, True, False, True]


def test_sampling_without_update_draws_exactly_what_a_learning_off_run_draws():
    """learn=False (explore-rl-as-sampling's "sample from the base") skips the update; a GRPO run
    with lr_scale 0 keeps the base too, and both use the same question order and per-step keys, so
    after an epoch their count tables, solved flags and correct counts are identical."""
    import jax

    def score(problems, response_NxT, mask_NxT):
        """The untrained decoder states no parsable answer; here the "answer" is its first response
        token (mod 23) and "correct" that token being even, so the counts record the samples drawn."""
        first = response_NxT[:, 0].astype(jnp.int32)
        return {"reward": (first % 2 == 0).astype(jnp.float32), "correct": (first % 2 == 0).astype(jnp.float32),
                "answer": first % 23}

    from theoryrl.tasks.dag import generate as gen

    qtask = lx.QuestionTask(prompts=gen.left_padded_prompts, score=score, num_values=23)
    sampling_only, learning_off = _tiny_program(1, learn=False, qtask=qtask), _tiny_program(1, lr_scale=0.0, qtask=qtask)
    other_keys = (sampling_only[0], dataclasses.replace(sampling_only[1], seed=np.int32(4)))
    chunks = {id(p): jax.jit(p.chunk_fn) for p, _ in (sampling_only, learning_off)}  # two compiles, three runs
    out = []
    for program, hp in (sampling_only, learning_off, other_keys):
        state, metrics = chunks[id(program)](program.init_fn(hp), hp, jnp.zeros(()))
        out.append(state)
    sampled, frozen, other = out
    assert float(np.asarray(sampled.counts_QxM).sum()) == 4 * 2  # 2 steps x 2 prompts x 2 samples
    for name in ("counts_QxM", "solved_Q", "correct_Q"):
        np.testing.assert_array_equal(np.asarray(getattr(sampled, name)), np.asarray(getattr(frozen, name)))
    assert not np.array_equal(np.asarray(sampled.counts_QxM), np.asarray(other.counts_QxM))
    assert "solved_Q" in metrics and np.asarray(metrics["distinct_Q"]).shape == (4,)
