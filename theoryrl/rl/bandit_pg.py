"""Policy-gradient learners on many outcome bandits ("questions"), with outcome-based bonuses.

Q questions, each an independent outcome bandit: K arms (traces) -> M outcomes (answers), a few
correct outcomes (reward 1), the rest wrong (reward 0). The policy of question q is

    pi_q(k) = softmax_k( tau * (phi[q, o(k)] + psi[q, k] + skill * 1{o(k) correct for q}) ),
    tau = exp(log_tau)

- phi: logits shared within an outcome (the "generalisation" assumption: an update on one sample
  moves every arm with that answer); psi: free per-arm logits. The mixing knob `share` in [0, 1]
  sends a fraction `share` of the learning rate to phi and `1 - share` to psi (share = 1: shared
  logits only; share = 0: a free distribution over arms).
- tau: ONE inverse temperature shared by all questions, learned with rate `tie * lr` (mean over
  questions). The questions are otherwise independent, so without it RL on solved questions could
  not change the unsolved ones; `tie` is this model's (minimal, [I]) stand-in for the parameter
  sharing across prompts that lets an LLM's diversity loss on solved questions "transfer" (§2.1).
- skill: ONE scalar shared by all questions that raises every correct answer's logit, learned with
  rate `transfer * lr` (mean over questions): the positive transfer ("RL solves more questions
  early") that the paper's LLMs show; `transfer = 0` turns it off [I].

One round: G samples per question, rewards, counts N(x, a) updated with the batch (so N >= 1),
bonuses from `theoryrl.rl.exploration`, A = Â + c * bonus (after group normalisation), and one
SGD step on sum_q (1/G) sum_i A_qi log pi_q(k_qi) - beta * KL(pi_q || pi_base_q) (exact KL over
arms). lr = 0 is "sampling from the initial policy" at the same budget of G samples per round.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from theoryrl.core import prng
from theoryrl.eval import diversity
from theoryrl.rl import exploration
from theoryrl.theory.bandits import arm_outcomes


@dataclasses.dataclass(frozen=True)
class QuestionsSpec:
    """Static shapes and the base-policy recipe (equal for every run of one compiled program)."""

    questions: int = 512
    arms: int = 64
    outcomes: int = 16
    group: int = 8
    correct: int = 1
    outcome_scale: float = 1.5  # std of the base outcome logits phi0
    arm_scale: float = 0.5  # std of the base arm logits psi0
    max_difficulty: float = 8.0  # correct outcomes' base logits are lowered by U(0, max_difficulty)
    eval_k: int = 8  # batch size of the "distinct answers in a batch" table
    eval_reps: int = 4  # batches per question for that table


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PgHp:
    """Traced knobs of one run (vmapped over runs): the learner's rates and the bonus weights.

    lr = 0 is sampling from the initial policy; share / tie / transfer split lr between phi / psi,
    tau and skill (module docstring); beta weighs the exact KL to the base policy; c weighs the
    bonus of `theoryrl.rl.exploration` built from ucb, ucb_mean, ucb_con (with b0), batch, gate."""

    seed: jax.Array  # int32 []
    lr: jax.Array  # float32 [], as every field below
    share: jax.Array
    tie: jax.Array
    transfer: jax.Array
    beta: jax.Array
    c: jax.Array
    ucb: jax.Array
    ucb_mean: jax.Array
    ucb_con: jax.Array
    b0: jax.Array
    batch: jax.Array
    gate: jax.Array

    def bonus_weights(self) -> dict:
        """The weights `exploration.exploration_bonus` reads."""
        return {"ucb": self.ucb, "ucb_mean": self.ucb_mean, "ucb_con": self.ucb_con, "b0": self.b0,
                "batch": self.batch, "gate": self.gate}


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PolicyParams:
    """The policy's logits: phi [Q, M] (per outcome), psi [Q, K] (per arm), log_tau and skill (scalars
    shared by all questions)."""

    phi: jax.Array
    psi: jax.Array
    log_tau: jax.Array
    skill: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PgState:
    """One run's state: the policy, answer counts N(q, a), which questions were ever solved and which
    answers ever seen, the last surrogate loss per question, and the round counter t."""

    params: PolicyParams
    counts_QxM: jax.Array  # float32
    solved_Q: jax.Array  # bool
    seen_QxM: jax.Array  # bool
    loss: jax.Array  # float32 []
    t: jax.Array  # int32 []


def make_questions(key: jax.Array, spec: QuestionsSpec) -> dict:
    """Outcome maps [Q, K], correct outcomes [Q, M] and base logits phi0 [Q, M], psi0 [Q, K]."""
    q, k, m = spec.questions, spec.arms, spec.outcomes
    k_map, k_ok, k_phi, k_psi, k_diff = jax.random.split(key, 5)
    outcome_QxK = jax.vmap(lambda kk: arm_outcomes(kk, k, m))(jax.random.split(k_map, q))
    rank_QxM = jnp.argsort(jax.random.uniform(k_ok, (q, m)), axis=1)
    correct_QxM = rank_QxM < spec.correct
    difficulty_Qx1 = jax.random.uniform(k_diff, (q, 1), maxval=spec.max_difficulty)
    phi0 = spec.outcome_scale * jax.random.normal(k_phi, (q, m)) - jnp.where(correct_QxM, difficulty_Qx1, 0.0)
    psi0 = spec.arm_scale * jax.random.normal(k_psi, (q, k))
    return {"outcome_QxK": outcome_QxK, "correct_QxM": correct_QxM, "phi0": phi0, "psi0": psi0}


def arm_logits(params: PolicyParams, outcome_QxK: jax.Array, correct_QxM: jax.Array) -> jax.Array:
    shared_QxK = jnp.take_along_axis(params.phi, outcome_QxK, axis=1)
    good_QxK = jnp.take_along_axis(correct_QxM, outcome_QxK, axis=1)
    return jnp.exp(params.log_tau) * (shared_QxK + params.psi + params.skill * good_QxK)


def outcome_probs(arm_probs_QxK: jax.Array, outcome_QxK: jax.Array, num_outcomes: int) -> jax.Array:
    """p(o | q) = sum of pi_q(k) over the arms with outcome o."""
    return jnp.einsum("qk,qkm->qm", arm_probs_QxK, jax.nn.one_hot(outcome_QxK, num_outcomes))


def surrogate(params: PolicyParams, base_logp_QxK: jax.Array, data: dict, arms_QxG: jax.Array, adv_QxG: jax.Array,
              beta) -> jax.Array:
    """sum_q [ (1/G) sum_i A_qi log pi_q(k_qi) - beta KL(pi_q || pi_base_q) ]: its gradient is the update."""
    logp_QxK = jax.nn.log_softmax(arm_logits(params, data["outcome_QxK"], data["correct_QxM"]))
    taken_QxG = jnp.take_along_axis(logp_QxK, arms_QxG, axis=1)
    kl_Q = jnp.sum(jnp.exp(logp_QxK) * (logp_QxK - base_logp_QxK), axis=1)
    return jnp.sum(jnp.mean(adv_QxG * taken_QxG, axis=1) - beta * kl_Q)


def base_params(data: dict) -> PolicyParams:
    """The base (initial) policy: phi0, psi0, tau = 1, skill = 0."""
    return PolicyParams(phi=data["phi0"], psi=data["psi0"], log_tau=jnp.zeros(()), skill=jnp.zeros(()))


def init_state(spec: QuestionsSpec, data: dict) -> PgState:
    q, m = spec.questions, spec.outcomes
    return PgState(params=base_params(data), counts_QxM=jnp.zeros((q, m)), solved_Q=jnp.zeros((q,), bool),
                   seen_QxM=jnp.zeros((q, m), bool), loss=jnp.zeros(()), t=jnp.zeros((), jnp.int32))


def sample_answers(key: jax.Array, logits_QxK: jax.Array, data: dict, n: int):
    """n samples per question: arms [Q, n], answers [Q, n], correct [Q, n]."""
    arms_QxN = jax.random.categorical(key, logits_QxK, axis=-1, shape=(n, logits_QxK.shape[0])).T
    answers_QxN = jnp.take_along_axis(data["outcome_QxK"], arms_QxN, axis=1)
    correct_QxN = jnp.take_along_axis(data["correct_QxM"], answers_QxN, axis=1)
    return arms_QxN, answers_QxN, correct_QxN


def pg_step(spec: QuestionsSpec, state: PgState, hp: PgHp, data: dict, key: jax.Array) -> PgState:
    """One round of G samples per question and one policy-gradient step."""
    params = state.params
    arms, answers, correct = sample_answers(key, arm_logits(params, data["outcome_QxK"], data["correct_QxM"]), data,
                                           spec.group)
    counts = exploration.update_counts(state.counts_QxM, answers)
    bonus = exploration.exploration_bonus(hp.bonus_weights(), counts, answers, correct)
    adv = exploration.shaped_advantages(correct.astype(jnp.float32), bonus, hp.c)
    base_logp = jax.nn.log_softmax(arm_logits(base_params(data), data["outcome_QxK"], data["correct_QxM"]))
    loss, g = jax.value_and_grad(surrogate)(params, base_logp, data, arms, adv, hp.beta)
    new_params = PolicyParams(phi=params.phi + hp.lr * hp.share * g.phi,
                              psi=params.psi + hp.lr * (1.0 - hp.share) * g.psi,
                              log_tau=params.log_tau + hp.lr * hp.tie * g.log_tau / spec.questions,
                              skill=params.skill + hp.lr * hp.transfer * g.skill / spec.questions)
    hits_QxM = jax.nn.one_hot(answers, spec.outcomes, dtype=bool).any(axis=1)
    return PgState(params=new_params, counts_QxM=counts, solved_Q=state.solved_Q | correct.any(axis=1),
                   seen_QxM=state.seen_QxM | hits_QxM, loss=loss / spec.questions, t=state.t + 1)


def run_rounds(spec: QuestionsSpec, state: PgState, hp: PgHp, data: dict, num_steps: int) -> PgState:
    root = prng.root_key(hp.seed)

    def body(s, _):
        return pg_step(spec, s, hp, data, prng.step_key(root, prng.Stream.POLICY, s.t)), None

    return jax.lax.scan(body, state, None, length=num_steps)[0]


def _masked_mean(x, mask):
    return jnp.sum(jnp.where(mask, x, 0.0)) / jnp.maximum(jnp.sum(mask), 1)


def policy_metrics(spec: QuestionsSpec, state: PgState, data: dict, key: jax.Array) -> dict:
    """Cumulative coverage/diversity, current-policy diversity, and the batch-of-k distinct table.

    Table-2 reading [I]: distinct answers in a batch of k = eval_k fresh samples, averaged over
    eval_reps batches per question; a question is "solved" when any of its k * eval_reps samples
    is correct."""
    logits = arm_logits(state.params, data["outcome_QxK"], data["correct_QxM"])
    p_QxM = outcome_probs(jax.nn.softmax(logits), data["outcome_QxK"], spec.outcomes)
    distinct_Q = jnp.sum(state.seen_QxM, axis=1).astype(jnp.float32)
    unsolved_Q = ~state.solved_Q
    k, reps = spec.eval_k, spec.eval_reps
    _, answers, correct = sample_answers(key, logits, data, k * reps)
    answers_QxRxK = answers.reshape(spec.questions, reps, k)
    count = jax.vmap(jax.vmap(lambda a: diversity.distinct_count(a, spec.outcomes)))
    batch_distinct_Q = jnp.mean(count(answers_QxRxK).astype(jnp.float32), axis=1)
    eval_solved_Q = correct.any(axis=1)  # some correct answer among the question's k * reps samples
    return {
        "solved_frac": jnp.mean(state.solved_Q.astype(jnp.float32)),
        "distinct_all": jnp.mean(distinct_Q),
        "distinct_unsolved": _masked_mean(distinct_Q, unsolved_Q),
        "pass1": jnp.mean(jnp.sum(jnp.where(data["correct_QxM"], p_QxM, 0.0), axis=1)),
        "diff_at_k": jnp.mean(jax.vmap(lambda p: diversity.expected_diff_at_k(p, k))(p_QxM)),
        "entropy": jnp.mean(jax.vmap(diversity.outcome_entropy)(p_QxM)),
        "tau": jnp.exp(state.params.log_tau),
        "skill": state.params.skill,
        "batch_distinct_solved": _masked_mean(batch_distinct_Q, eval_solved_Q),
        "batch_distinct_unsolved": _masked_mean(batch_distinct_Q, ~eval_solved_Q),
        "batch_distinct_all": jnp.mean(batch_distinct_Q),
        "eval_solved_frac": jnp.mean(eval_solved_Q.astype(jnp.float32)),
        "loss": state.loss,
    }
