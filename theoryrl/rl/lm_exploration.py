"""Outcome-based exploration in the language-model RL step (Song, Kempe, Munos, arXiv 2509.06941).

What. The bandit half's bonuses (`rl/exploration.py`: naive UCB, UCB-Mean, UCB-Con, the batch
penalty, gating) applied to GRPO on a fixed training set of Q questions (spec
`outcome_exploration.md` §3, §7): the run's state keeps a count table N(x, a) [Q, M] over the whole
of training, the batch's answers (normalised to one outcome id per value, `outcome_ids`) are added
to it *before* the bonuses are computed (§3.1's recommendation, so N >= 1), and the exploration term
reaches the advantage through the RL step's existing hook (`advantages.compute_advantages`'
bonus_PxG / token_adv_mask_PxGxT), so the LM path computes exactly the bandit path's numbers.
Options (§3.3, §8): gating (no term in an all-correct group); masking (the term only on reasoning
tokens, i.e. before the answer marker, so the model cannot game it by changing the final number);
the term added after group normalisation (A = Â + c b, the transcriptions' reading) or before it
(A = norm(r + c b); through the hook as norm(r + c b) - norm(r) on the same tokens).
Why a separate module: the bandit functions stay free of model and token concerns; this one adds
only what a decoder run needs (question ids, token masks, the count table in the state).
Every choice that is not a shape is a traced weight in `ExploreHp` (the variants' weights, b0, the
batch weight, gating, masking and the term's place as 0/1 blends), so GRPO, every variant and every
ablation of an experiment are one vmapped program; `ExploreSpec` keeps only the static M and the
answer marker. `variant_weights` names the paper's arms.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from theoryrl.core import prng
from theoryrl.core.config import is_int, require, require_finite_nonneg
from theoryrl.core.stages import Program
from theoryrl.rl import advantages as adv_lib
from theoryrl.rl import exploration as ex
from theoryrl.rl import lm_rl, lm_runs, ntp, sampling

VARIANTS = ("grpo", "ucb", "ucb_mean", "ucb_con", "batch", "ucb_con+batch", "ucb_mean+batch", "ucb+batch")
ESTIMATORS = ("grpo", "dapo")  # the exploration term is defined on GRPO's group-normalised advantage


@dataclasses.dataclass(frozen=True)
class ExploreSpec:
    """Static: num_outcomes M (one id per answer value plus one for "no answer") and answer_token,
    the token that starts the final answer (masking needs it; None = no reasoning/answer split)."""

    num_outcomes: int = 2
    answer_token: int | None = None

    def validate(self) -> None:
        require(is_int(self.num_outcomes) and 2 <= self.num_outcomes <= 1_000_000, "num_outcomes", self.num_outcomes,
                "2..1000000 (answer values plus 'no answer')")
        require(self.answer_token is None or is_int(self.answer_token) and self.answer_token >= 0, "answer_token",
                self.answer_token, "a token id >= 0, or None")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ExploreHp:
    """Traced weights of the exploration term (float32 scalars): ucb, ucb_mean, ucb_con (each the
    weight c of that historical bonus), b0 (UCB-Con's constant), batch (the batch penalty's weight),
    gate / mask / after_norm (1.0 on, 0.0 off: gating, reasoning-token masking, the term after GRPO
    normalisation rather than before it). All weights 0 is plain GRPO."""

    ucb: jax.Array
    ucb_mean: jax.Array
    ucb_con: jax.Array
    b0: jax.Array
    batch: jax.Array
    gate: jax.Array
    mask: jax.Array
    after_norm: jax.Array


def variant_weights(variant: str, *, c: float = 0.2, b0: float = 0.5, c_batch: float = 0.2, gating: bool = True,
                    masking: bool = True, after_norm: bool = True) -> dict:
    """The ExploreHp fields of a named arm (spec §3: naive UCB, UCB-Mean, UCB-Con, the batch penalty
    and their combinations; "grpo" is no term), checked before any compute."""
    require(variant in VARIANTS, "variant", variant, " | ".join(VARIANTS))
    check_weights(c, b0, c_batch)
    parts = variant.split("+")
    return {"ucb": c * ("ucb" in parts), "ucb_mean": c * ("ucb_mean" in parts), "ucb_con": c * ("ucb_con" in parts),
            "b0": b0, "batch": c_batch * ("batch" in parts), "gate": float(gating), "mask": float(masking),
            "after_norm": float(after_norm)}


def explore_hp(weights: dict) -> ExploreHp:
    return ExploreHp(**{k: jnp.float32(v) for k, v in weights.items()})


def check_masking(spec: ExploreSpec, masking: bool) -> None:
    require(not masking or spec.answer_token is not None, "masking", masking,
            "false, or an answer_token that splits reasoning from answer tokens")


def check_weights(c: float, b0: float, c_batch: float) -> None:
    """One-line ConfigErrors before compute: every weight is a finite number >= 0."""
    require_finite_nonneg(c, "c")
    require_finite_nonneg(b0, "b0")
    require_finite_nonneg(c_batch, "c_batch")


def check_estimator(adv_spec: adv_lib.AdvantageSpec) -> None:
    require(adv_spec.estimator in ESTIMATORS, "advantage.estimator", adv_spec.estimator,
            f"{' | '.join(ESTIMATORS)} (the exploration term is added to GRPO's advantage)")


def outcome_ids(answer_N: jax.Array, num_values: int) -> jax.Array:
    """One outcome id per answer value (0..num_values-1); no answer (-1) or an out-of-range value is
    the single extra outcome num_values."""
    answer = jnp.asarray(answer_N, jnp.int32)
    return jnp.where((answer >= 0) & (answer < num_values), answer, num_values)


def update_question_counts(counts_QxM: jax.Array, question_P: jax.Array, answers_PxG: jax.Array) -> jax.Array:
    """N(x, a) += #{samples of x with outcome a}; a question drawn twice in the batch gets both
    groups' samples (scatter-add)."""
    hits_PxM = jax.nn.one_hot(answers_PxG, counts_QxM.shape[1], dtype=counts_QxM.dtype).sum(axis=1)
    return counts_QxM.at[question_P].add(hits_PxM)


def update_solved(solved_Q: jax.Array, question_P: jax.Array, correct_PxG: jax.Array) -> jax.Array:
    """Questions solved at least once so far: a question with any correct sample in this batch
    (in any of its groups, when drawn twice) joins; none ever leaves."""
    return solved_Q.at[question_P].max(jnp.any(correct_PxG, axis=1))


def exploration_term(hp: ExploreHp, counts_QxM: jax.Array, question_P: jax.Array, answers_PxG: jax.Array,
                     correct_PxG: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(updated counts, the weighted exploration term per sample [P, G]: ucb b + ucb_mean UCB-Mean(b)
    + ucb_con UCB-Con(b) + batch b_batch, gated by hp.gate). The counts are updated with this batch
    first."""
    counts_QxM = update_question_counts(counts_QxM, question_P, answers_PxG)
    weights = {"ucb": hp.ucb, "ucb_mean": hp.ucb_mean, "ucb_con": hp.ucb_con, "b0": hp.b0, "batch": hp.batch,
               "gate": hp.gate}
    return counts_QxM, ex.exploration_bonus(weights, counts_QxM[question_P], answers_PxG, correct_PxG)


def reasoning_mask(response_PxGxT: jax.Array, answer_token: int) -> jax.Array:
    """1.0 on the response tokens before the first answer marker (the reasoning), 0.0 from it on."""
    is_answer = response_PxGxT == answer_token
    return (jnp.cumsum(is_answer, axis=-1) == 0).astype(jnp.float32)


def hook_kwargs(spec: ExploreSpec, hp: ExploreHp, adv_spec: adv_lib.AdvantageSpec, term_PxG: jax.Array,
                rewards_PxG: jax.Array, response_PxGxT: jax.Array) -> dict:
    """`compute_advantages` keyword arguments that add the term: after normalisation it is the term
    itself; before, the difference norm(r + term) - norm(r) of GRPO's own normalisation, so masked-in
    tokens get norm(r + term) and the others plain GRPO's. With hp.mask on (and an answer token) only
    reasoning tokens get it."""
    norm = lambda r: adv_lib.grpo(r, std_normalize=adv_spec.std_normalize, ddof=adv_spec.ddof,  # noqa: E731
                                  eps=adv_spec.eps)
    before_PxG = norm(rewards_PxG + term_PxG) - norm(rewards_PxG)
    out = {"bonus_PxG": hp.after_norm * term_PxG + (1.0 - hp.after_norm) * before_PxG, "bonus_coef": 1.0}
    if spec.answer_token is not None:
        reasoning = reasoning_mask(response_PxGxT, spec.answer_token)
        out["token_adv_mask_PxGxT"] = hp.mask * reasoning + (1.0 - hp.mask) * jnp.ones_like(reasoning)
    return out


# ---------------------------------------------------------------- the RL program on a fixed question set


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ExploreState:
    """A run's state: the decoder's TrainState, the count table N(x, a) [Q, M] over all of training,
    which questions were ever solved and how many correct samples each has had (§2.1's "RL as
    sampling" coverage; per-epoch success rates are differences of correct_Q), checkpointed,
    resumed, vmapped and sharded with the run like every leaf."""

    train: lm_rl.TrainState
    counts_QxM: jax.Array
    solved_Q: jax.Array
    correct_Q: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class QuestionsHp:
    """What a run's `RLHp.task` holds here: the fixed training set (a problems pytree with leading
    axis Q, traced, so runs may differ in it) and the exploration weights."""

    questions: Any
    explore: ExploreHp


@dataclasses.dataclass(frozen=True)
class QuestionTask:
    """A task on fixed questions: prompts(problems_P) -> (prompts_PxL, prompt_mask_PxL or None);
    score(problems_N, response_NxT, mask_NxT) -> dict of [N] with "reward", "correct" (what gating
    reads) and "answer" (the stated value, -1 when none; outcome id = the value, `outcome_ids`)."""

    prompts: Callable
    score: Callable
    num_values: int


def epoch_questions(seed, t, num_prompts: int, num_questions: int) -> jax.Array:
    """Step t's P question ids: epochs of Q / P steps, each a fresh permutation of the Q questions
    (from the run's data-order stream), consumed P at a time. Q must be a multiple of P."""
    start = t * num_prompts
    perm = jax.random.permutation(prng.step_key(prng.root_key(seed), prng.Stream.DATA_ORDER, start // num_questions),
                                  num_questions)
    return jax.lax.dynamic_slice(perm, (start % num_questions,), (num_prompts,))


def distinct_answers_Q(counts_QxM: jax.Array, num_values: int) -> jax.Array:
    """Distinct answer values each question has had over all of training (the "no answer" outcome,
    column num_values, is not an answer)."""
    return jnp.sum(counts_QxM[:, :num_values] > 0, axis=1).astype(jnp.float32)


def explore_step(model_spec, sampler: sampling.SamplerSpec, spec: lm_rl.RLSpec, tx, qtask: QuestionTask,
                 xspec: ExploreSpec, state: ExploreState, hp, *, learn: bool = True) -> tuple[ExploreState, dict]:
    """One GRPO step on the questions of step t: sample, score, add the batch to the counts, add the
    exploration term through the advantage hook, update. hp: an `lm_runs.RLHp` whose task is a
    `QuestionsHp`; its init_params are the frozen KL reference. learn=False only samples and counts
    (§2.1's "sample from the base" at the same budget, same questions and same sampling keys: a
    learning-off RL run draws exactly these samples, without the update's compute)."""
    questions, num_questions = hp.task.questions, state.counts_QxM.shape[0]
    ids_P = epoch_questions(hp.seed, state.train.step, spec.prompts_per_step, num_questions)

    def sample_prompts(key, hp_, n):
        del key, hp_, n  # the questions of step t, in epoch order
        problems = jax.tree.map(lambda x: x[ids_P], questions)
        prompts, mask = qtask.prompts(problems)
        return prompts, mask, problems

    task = lm_rl.RLTask(sample_prompts=sample_prompts, score=qtask.score)

    def outcomes(ro):
        answers_PxG = outcome_ids(ro.scores["answer"].astype(jnp.int32), qtask.num_values)
        return answers_PxG, ro.scores["correct"] > 0.5

    def shape_fn(ro):
        answers_PxG, correct_PxG = outcomes(ro)
        _, term_PxG = exploration_term(hp.task.explore, state.counts_QxM, ids_P, answers_PxG, correct_PxG)
        return hook_kwargs(xspec, hp.task.explore, spec.advantage, term_PxG, ro.rewards_PxG, ro.rollout.tokens_PxGxT)

    if learn:
        train, metrics, ro = lm_rl.rl_step_rollouts(model_spec, sampler, spec, tx, task, state.train, hp,
                                                    hp.init_params, shape_fn=shape_fn)
    else:
        t = state.train.step
        ro = lm_rl.collect(model_spec, sampler, spec, task, state.train.params, hp, t)
        train = dataclasses.replace(state.train, step=t + 1)
        metrics = {"reward": jnp.mean(ro.rewards_PxG), **{f"train_{k}": jnp.mean(v) for k, v in ro.scores.items()
                                                           if k != "reward"}}
    answers_PxG, correct_PxG = outcomes(ro)
    counts_QxM = update_question_counts(state.counts_QxM, ids_P, answers_PxG)
    solved_Q = update_solved(state.solved_Q, ids_P, correct_PxG)
    correct_Q = state.correct_Q.at[ids_P].add(jnp.sum(correct_PxG, axis=1).astype(state.correct_Q.dtype))
    metrics.pop("train_answer", None)  # a mean of answer values means nothing
    metrics["distinct_answers"] = jnp.mean(distinct_answers_Q(counts_QxM, qtask.num_values))
    metrics["solved_frac"] = jnp.mean(solved_Q.astype(jnp.float32))
    return ExploreState(train, counts_QxM, solved_Q, correct_Q), metrics


def explore_program(model_spec, sampler: sampling.SamplerSpec, spec: lm_rl.RLSpec, optim: ntp.OptimSpec,
                    qtask: QuestionTask, xspec: ExploreSpec, *, num_chunks: int, steps_per_chunk: int,
                    data_fn: Callable, eval_fn: Callable, final_fn: Callable | None = None,
                    learn: bool = True) -> Program:
    """GRPO (+ the exploration term of `xspec`) from hp.init_params on hp.task.questions, in epochs;
    `eval_fn(params, hp, data)` at every chunk end, and the per-question coverage at every chunk end
    (history "solved_Q", "correct_Q", "distinct_Q": [chunks, Q]). The count table starts at 0
    (M = num_outcomes). learn=False: sampling from hp.init_params only (`explore_step`)."""
    xspec.validate()
    check_estimator(spec.advantage)
    require(spec.oversample == 1, "oversample", spec.oversample, "1 (the questions of a step are fixed, in epoch order)")

    def init_fn(hp):
        tx = ntp.make_optimizer(optim, lr_scale=hp.lr_scale)
        num_questions = jax.tree.leaves(hp.task.questions)[0].shape[0]
        return ExploreState(lm_rl.TrainState(hp.init_params, tx.init(hp.init_params), jnp.int32(0)),
                            jnp.zeros((num_questions, xspec.num_outcomes), jnp.float32),
                            jnp.zeros((num_questions,), bool), jnp.zeros((num_questions,), jnp.float32))

    def chunk_fn(state: ExploreState, hp, data):
        tx = ntp.make_optimizer(optim, lr_scale=hp.lr_scale)

        def step(st, _):
            return explore_step(model_spec, sampler, spec, tx, qtask, xspec, st, hp, learn=learn)

        state, metrics = jax.lax.scan(step, state, None, length=steps_per_chunk)
        metrics = {k: jnp.mean(v, axis=0) for k, v in metrics.items()}
        metrics.update(solved_Q=state.solved_Q.astype(jnp.float32), correct_Q=state.correct_Q,
                       distinct_Q=distinct_answers_Q(state.counts_QxM, qtask.num_values))
        metrics.update(eval_fn(state.train.params, hp, data))
        return state, metrics

    def default_final(state: ExploreState) -> dict:
        return {**lm_runs.params_to_arrays(state.train.params), "counts_QxM": state.counts_QxM,
                "solved_Q": state.solved_Q, "correct_Q": state.correct_Q}

    return Program(data_fn=data_fn, init_fn=init_fn, chunk_fn=chunk_fn, num_chunks=num_chunks,
                   steps_per_chunk=steps_per_chunk, final_fn=final_fn or default_final)
