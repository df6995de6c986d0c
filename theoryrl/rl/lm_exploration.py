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
`ExploreSpec` holds the static choices, `ExploreHp` the traced weights (c, b0, the batch weight), so
a sweep over c vmaps.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from theoryrl.core.config import is_int, require, require_finite_nonneg
from theoryrl.rl import advantages as adv_lib
from theoryrl.rl import exploration as ex

HISTORICAL = ("none", "ucb", "ucb_mean", "ucb_con")
ESTIMATORS = ("grpo", "dapo")  # the exploration term is defined on GRPO's group-normalised advantage


@dataclasses.dataclass(frozen=True)
class ExploreSpec:
    """Static choices: the historical variant, the batch penalty on/off, gating, masking, and the
    term's place (after_norm). num_outcomes: M, one id per answer value plus one for "no answer".
    answer_token: the token that starts the final answer (masking needs it; None = no split)."""

    historical: str = "none"
    batch: bool = False
    gating: bool = True
    masking: bool = True
    after_norm: bool = True
    num_outcomes: int = 2
    answer_token: int | None = None

    def validate(self) -> None:
        require(self.historical in HISTORICAL, "historical", self.historical, " | ".join(HISTORICAL))
        for knob in ("batch", "gating", "masking", "after_norm"):
            require(isinstance(getattr(self, knob), bool), knob, getattr(self, knob), "true/false")
        require(is_int(self.num_outcomes) and 2 <= self.num_outcomes <= 1_000_000, "num_outcomes", self.num_outcomes,
                "2..1000000 (answer values plus 'no answer')")
        require(not self.masking or self.answer_token is not None, "masking", self.masking,
                "false, or an answer_token that splits reasoning from answer tokens")
        require(self.answer_token is None or is_int(self.answer_token) and self.answer_token >= 0, "answer_token",
                self.answer_token, "a token id >= 0, or None")

    @property
    def active(self) -> bool:
        return self.historical != "none" or self.batch


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ExploreHp:
    """Traced weights: c (the historical bonus), b0 (UCB-Con's constant), c_batch (the batch penalty)."""

    c: jax.Array
    b0: jax.Array
    c_batch: jax.Array


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


def exploration_term(spec: ExploreSpec, hp: ExploreHp, counts_QxM: jax.Array, question_P: jax.Array,
                     answers_PxG: jax.Array, correct_PxG: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(updated counts, the weighted exploration term c b_hist + c_batch b_batch per sample [P, G],
    gated when spec.gating). The counts are updated with this batch first."""
    counts_QxM = update_question_counts(counts_QxM, question_P, answers_PxG)
    weights = {"b0": hp.b0, "batch": hp.c_batch if spec.batch else 0.0, "gate": 1.0 if spec.gating else 0.0}
    if spec.historical != "none":
        weights[spec.historical] = hp.c
    term_PxG = ex.exploration_bonus(weights, counts_QxM[question_P], answers_PxG, correct_PxG)
    return counts_QxM, term_PxG


def reasoning_mask(response_PxGxT: jax.Array, answer_token: int) -> jax.Array:
    """1.0 on the response tokens before the first answer marker (the reasoning), 0.0 from it on."""
    is_answer = response_PxGxT == answer_token
    return (jnp.cumsum(is_answer, axis=-1) == 0).astype(jnp.float32)


def hook_kwargs(spec: ExploreSpec, adv_spec: adv_lib.AdvantageSpec, term_PxG: jax.Array, rewards_PxG: jax.Array,
                response_PxGxT: jax.Array) -> dict:
    """`compute_advantages` keyword arguments that add the term: after normalisation it is the bonus
    itself; before, the difference norm(r + term) - norm(r) of GRPO's own normalisation, so the
    masked tokens' advantage is norm(r + term) and the others keep plain GRPO's."""
    if spec.after_norm:
        bonus_PxG = term_PxG
    else:
        norm = lambda r: adv_lib.grpo(r, std_normalize=adv_spec.std_normalize, ddof=adv_spec.ddof,  # noqa: E731
                                      eps=adv_spec.eps)
        bonus_PxG = norm(rewards_PxG + term_PxG) - norm(rewards_PxG)
    out = {"bonus_PxG": bonus_PxG, "bonus_coef": 1.0}
    if spec.masking:
        out["token_adv_mask_PxGxT"] = reasoning_mask(response_PxGxT, spec.answer_token)
    return out
