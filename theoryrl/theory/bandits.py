"""Outcome-based bandits (Song, Kempe, Munos, arXiv 2509.06941, §4; spec §4 and §7.6 [S: informal]).

K arms ("reasoning traces") map to m outcomes ("answers"); a pull of arm k gives a Bernoulli reward
whose mean depends only on its outcome o(k). Outcome arrays are padded to a static M >= m so that m
is a traced hyperparameter (outcomes o >= m are invalid: no arm maps to them, never chosen).

Algorithms (`ALGORITHMS`, one static name per compiled program), all written for one run:
- arm_ucb            UCB1 over the K arms (index mean + sqrt(2 log t / n), unpulled arms first);
                     ignores the partition.
- outcome_ucb        generalisation ("shared logits"): the policy moves probability over all arms
                     of an outcome at once, so the learner picks an outcome by UCB1 over outcome
                     counts and then an arm uniformly within it (a softmax whose logits are shared
                     per outcome) [reading of Theorem 4.2].
- outcome_ucb_noshare  no generalisation (independent arm logits): per-outcome counts and means,
                     but an arm's outcome is known only once the arm has been pulled (an unseen
                     trace may end in any answer, including a new one), so unseen arms keep the
                     optimistic index +inf [reading of Theorem 4.1].
- arm_ts / outcome_ts  Gaussian Thompson sampling at both levels (the outcome level with shared
                     logits), as references.
- oracle             always an arm of the best outcome (regret 0; for tests).

Regret is the pseudo-regret sum_t (mu* - mu_{a_t}) (expected regret given the choices; mu_a = mu_{o(a)}
on the deterministic maps). Structure "stochastic" (Theorem 4.1's instance, `make_instance`): an arm
yields its nominal outcome only with its own probability, so outcomes do not identify good arms and
the outcome-level learners, which still take the nominal map as the partition, are misspecified.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from theoryrl.core import prng

ALGORITHMS = ("arm_ucb", "outcome_ucb", "outcome_ucb_noshare", "arm_ts", "outcome_ts", "oracle")
STRUCTURES = ("balanced", "random", "stochastic")
INF = 1e30


@dataclasses.dataclass(frozen=True)
class BanditShape:
    """Static shapes of one compiled program: K arms, outcomes padded to M."""

    num_arms: int
    max_outcomes: int


# ------------------------------------------------------------------ model


def arm_outcomes(key: jax.Array, num_arms: int, m, structure: str = "balanced") -> jax.Array:
    """The arm -> outcome map [K] with values in [0, m) (m may be traced).

    balanced: a random permutation of (k mod m): every outcome has floor(K/m) or ceil(K/m) arms.
    random:   i.i.d. uniform outcomes (some outcome may have no arm).
    stochastic: the balanced map as each arm's nominal outcome (see `make_instance`).
    """
    if structure in ("balanced", "stochastic"):
        return jnp.remainder(jax.random.permutation(key, num_arms), m).astype(jnp.int32)
    if structure == "random":
        return jax.random.randint(key, (num_arms,), 0, m, dtype=jnp.int32)
    raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")


def make_instance(key: jax.Array, shape: BanditShape, m, structure: str = "balanced") -> dict:
    """A random instance: outcome map [K], outcome means [M] ~ U(0, 1) (0 for padded outcomes).

    stochastic (the instance of Theorem 4.1, no generalisation): a pull of arm k yields its nominal
    outcome o(k) with an arm's own probability stay_K[k] ~ U(0, 1), otherwise an outcome drawn
    uniformly from the m. The arm's value stay mu_o(k) + (1 - stay) mean(mu) differs between arms of
    one outcome, and one pull (one outcome) does not reveal it, so outcome counts do not identify the
    good arms: every learner has to estimate arms one by one, as in the K-armed lower bound."""
    k_map, k_mean = jax.random.split(key)
    valid_M = jnp.arange(shape.max_outcomes) < m
    mean_M = jnp.where(valid_M, jax.random.uniform(k_mean, (shape.max_outcomes,)), 0.0)
    inst = {"outcome_K": arm_outcomes(k_map, shape.num_arms, m, structure), "mean_M": mean_M, "valid_M": valid_M}
    if structure == "stochastic":  # a key of its own, so the map and means equal those of "balanced"
        inst["stay_K"] = jax.random.uniform(jax.random.fold_in(key, 1), (shape.num_arms,))
    return inst


def arm_means(inst: dict) -> jax.Array:
    """The expected reward of each arm [K]: its outcome's mean, or under the stochastic structure
    stay mu_o(k) + (1 - stay) x (mean of mu over the m valid outcomes)."""
    nominal_K = inst["mean_M"][inst["outcome_K"]]
    if "stay_K" not in inst:
        return nominal_K
    valid = inst["valid_M"]
    uniform = jnp.sum(jnp.where(valid, inst["mean_M"], 0.0)) / jnp.sum(valid)
    return inst["stay_K"] * nominal_K + (1.0 - inst["stay_K"]) * uniform


def best_mean(inst: dict) -> jax.Array:
    """mu*: over the outcomes that some arm reaches (deterministic maps), over the arms' expected
    rewards (stochastic structure)."""
    if "stay_K" in inst:
        return jnp.max(arm_means(inst))
    reached_M = jnp.zeros_like(inst["valid_M"]).at[inst["outcome_K"]].set(True)
    return jnp.max(jnp.where(reached_M, inst["mean_M"], -INF))


# ------------------------------------------------------------------ indices


def ucb1_index(sums_N: jax.Array, counts_N: jax.Array, t) -> jax.Array:
    """UCB1 (Auer et al. 2002): mean + sqrt(2 log t / n); +inf where n = 0."""
    n = jnp.maximum(counts_N, 1.0)
    idx = sums_N / n + jnp.sqrt(2.0 * jnp.log(jnp.maximum(t, 1.0)) / n)
    return jnp.where(counts_N > 0, idx, INF)


def thompson_draws(key: jax.Array, sums_N: jax.Array, counts_N: jax.Array) -> jax.Array:
    """Gaussian Thompson sampling (Agrawal & Goyal 2013): N(s / (n + 1), 1 / (n + 1)).

    Chosen over Beta(1 + s, 1 + n - s) draws, whose gamma rejection sampler made arm-level TS ~50x
    slower than UCB on CPU; both have O(sqrt(K T log K)) problem-independent regret."""
    return sums_N / (counts_N + 1.0) + jax.random.normal(key, sums_N.shape) * jax.lax.rsqrt(counts_N + 1.0)


def _uniform_arm_in(key: jax.Array, outcome_K: jax.Array, o) -> jax.Array:
    """An arm drawn uniformly among those with outcome o (the shared-logit policy's sampling)."""
    return jax.random.categorical(key, jnp.where(outcome_K == o, 0.0, -INF))


# ------------------------------------------------------------------ one run


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class BanditState:
    """One run's statistics, shared by every algorithm: pulls n and reward sums s per arm [K] and
    per outcome [M], arms pulled and outcomes found so far, cumulative pseudo-regret, steps t."""

    n_K: jax.Array  # float32
    s_K: jax.Array  # float32
    n_M: jax.Array  # float32
    s_M: jax.Array  # float32
    seen_K: jax.Array  # bool
    found_M: jax.Array  # bool
    regret: jax.Array  # float32 []
    t: jax.Array  # int32 []


def init_state(shape: BanditShape) -> BanditState:
    k, m = shape.num_arms, shape.max_outcomes
    return BanditState(n_K=jnp.zeros((k,)), s_K=jnp.zeros((k,)), n_M=jnp.zeros((m,)), s_M=jnp.zeros((m,)),
                       seen_K=jnp.zeros((k,), bool), found_M=jnp.zeros((m,), bool),
                       regret=jnp.zeros(()), t=jnp.zeros((), jnp.int32))


def choose_arm(algo: str, key: jax.Array, state: BanditState, inst: dict) -> jax.Array:
    """The arm pulled at step t = state.t + 1 by `algo`."""
    t = state.t.astype(jnp.float32) + 1.0
    outcome_K, valid_M = inst["outcome_K"], inst["valid_M"]
    k_pick, k_arm = jax.random.split(key)
    if algo == "arm_ucb":
        return jnp.argmax(ucb1_index(state.s_K, state.n_K, t))
    if algo == "arm_ts":
        return jnp.argmax(thompson_draws(k_pick, state.s_K, state.n_K))
    if algo in ("outcome_ucb", "outcome_ts"):
        if algo == "outcome_ucb":
            score_M = ucb1_index(state.s_M, state.n_M, t)
        else:
            score_M = thompson_draws(k_pick, state.s_M, state.n_M)
        reached_M = jnp.zeros_like(valid_M).at[outcome_K].set(True)
        return _uniform_arm_in(k_arm, outcome_K, jnp.argmax(jnp.where(reached_M, score_M, -INF)))
    if algo == "outcome_ucb_noshare":
        score_K = ucb1_index(state.s_M, state.n_M, t)[outcome_K]
        return jnp.argmax(jnp.where(state.seen_K, score_K, INF))
    if algo == "oracle":
        return jnp.argmax(jnp.where(arm_means(inst) >= best_mean(inst), 1.0, 0.0))
    raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algo!r}")


def bandit_step(algo: str, state: BanditState, inst: dict, key: jax.Array) -> BanditState:
    """Pull one arm, observe its outcome and Bernoulli reward, update every statistic. The regret
    charges the arm's expected reward (pseudo-regret); the reward is drawn from the outcome seen."""
    k_choose, k_reward = jax.random.split(key)
    arm = choose_arm(algo, k_choose, state, inst)
    o = inst["outcome_K"][arm]
    mu_arm = inst["mean_M"][o]
    if "stay_K" in inst:  # the outcome itself is random: keys of its own, so the other structures keep theirs
        k_stay, k_other = jax.random.split(jax.random.fold_in(k_reward, 1))
        other = jax.random.randint(k_other, (), 0, jnp.sum(inst["valid_M"]), dtype=jnp.int32)
        o = jnp.where(jax.random.bernoulli(k_stay, inst["stay_K"][arm]), o, other)
        mu_arm = arm_means(inst)[arm]
    mu = inst["mean_M"][o]
    r = jax.random.bernoulli(k_reward, mu).astype(jnp.float32)
    return BanditState(
        n_K=state.n_K.at[arm].add(1.0), s_K=state.s_K.at[arm].add(r),
        n_M=state.n_M.at[o].add(1.0), s_M=state.s_M.at[o].add(r),
        seen_K=state.seen_K.at[arm].set(True), found_M=state.found_M.at[o].set(True),
        regret=state.regret + (best_mean(inst) - mu_arm), t=state.t + 1,
    )


def run_steps(algo: str, state: BanditState, inst: dict, root: jax.Array, num_steps: int) -> BanditState:
    """`num_steps` steps; the key of step t is fold_in(POLICY stream, t), so chunking never matters."""

    def body(s, _):
        return bandit_step(algo, s, inst, prng.step_key(root, prng.Stream.POLICY, s.t)), None

    return jax.lax.scan(body, state, None, length=num_steps)[0]


def chunk_metrics(state: BanditState) -> dict:
    """Per-chunk history of one run: cumulative regret, steps, distinct outcomes found, arms tried."""
    return {"regret": state.regret, "t": state.t, "outcomes_found": jnp.sum(state.found_M),
            "arms_tried": jnp.sum(state.seen_K)}
