"""STaR rounds and outcome policy gradients, written against model-agnostic callables
(spec parity_cot.md §3; rl_algorithms.md for the estimators).

STaR (Algorithm 1): sample N prompts, sample y ~ pi(.|x), keep the pairs with r(x, y) = 1, run E
epochs of next-token prediction on the kept pairs starting from the current parameters. Shapes are
static: nothing is gathered; the kept set is a 0/1 weight per sample that `fit_fn` honours.

    prompt_fn(key) -> prompts                                  (leading axis N)
    sample_fn(params, key, prompts) -> (outputs, length)       (leading axis N)
    reward_fn(prompts, outputs, length) -> rewards [N]
    fit_fn(params, key, prompts, outputs, length, weight [N]) -> params
    log_prob_fn(params, prompts, outputs, length) -> log pi(y|x) [N]   (differentiable in params)

Policy gradient (REINFORCE / GRPO): P prompts, G samples each (row p*G + g), rewards as [P, G],
advantages from `theoryrl.rl.advantages` (REINFORCE: batch-mean baseline; GRPO: group mean and
std), gradient of the surrogate -mean(A * log pi(y|x)). The caller applies the update (plain SGD
for the AR-linear model: `sgd_apply`; an optax transform for a transformer).

`ar_linear_callables` builds these callables for the AR-linear learner on the parity task.
"""
from __future__ import annotations

import dataclasses
from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp

from theoryrl.models import ar_linear as ar
from theoryrl.rl import advantages as adv
from theoryrl.tasks import parity

PG_ESTIMATORS = ("reinforce", "grpo")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Rollouts:
    """What a round sampled: prompts, outputs, lengths, rewards and the kept mask (float 0/1)."""

    prompts: jax.Array
    outputs: jax.Array
    length: jax.Array
    reward: jax.Array
    keep: jax.Array


def star_round(params, key: jax.Array, *, prompt_fn: Callable, sample_fn: Callable, reward_fn: Callable,
               fit_fn: Callable):
    """One STaR round: returns (new params, Rollouts of the round)."""
    k_prompt, k_sample, k_fit = jax.random.split(key, 3)
    prompts = prompt_fn(k_prompt)
    outputs, length = sample_fn(params, k_sample, prompts)
    reward = reward_fn(prompts, outputs, length)
    if reward.ndim != 1 or reward.shape[0] != length.shape[0]:
        raise ValueError(f"reward_fn must return [N] = [{length.shape[0]}], got {reward.shape}")
    keep = (reward >= 1.0).astype(jnp.float32)
    new_params = fit_fn(params, k_fit, prompts, outputs, length, keep)
    return new_params, Rollouts(prompts, outputs, length, reward, keep)


def pg_advantages(estimator: str, rewards_PxG: jax.Array) -> jax.Array:
    """Score-function weights [P, G] (gradient stopped)."""
    if estimator == "reinforce":
        return adv.reinforce_batch_mean(rewards_PxG)
    if estimator == "grpo":
        return adv.grpo(rewards_PxG)
    raise ValueError(f"estimator must be one of {PG_ESTIMATORS}, got {estimator!r}")


def pg_surrogate(params, log_prob_fn: Callable, prompts, outputs, length, adv_N: jax.Array) -> jax.Array:
    """-mean_i A_i log pi(y_i | x_i): its gradient is the policy-gradient estimate (ascent on -grad)."""
    logp_N = log_prob_fn(params, prompts, outputs, length)
    return -jnp.mean(jax.lax.stop_gradient(adv_N) * logp_N)


def policy_gradient(params, key: jax.Array, *, prompt_fn: Callable, sample_fn: Callable, reward_fn: Callable,
                    log_prob_fn: Callable, advantage_fn: Callable, group: int):
    """Gradient of the surrogate on P prompts x G samples (row p*G + g); `advantage_fn(rewards_PxG)
    -> [P, G]` (e.g. `partial(pg_advantages, "grpo")`). Returns (grads, Rollouts, advantages [P*G])."""
    k_prompt, k_sample = jax.random.split(key)
    prompts_P = prompt_fn(k_prompt)
    num_prompts = jax.tree.leaves(prompts_P)[0].shape[0]
    prompts = jax.tree.map(lambda a: jnp.repeat(a, group, axis=0), prompts_P)
    outputs, length = sample_fn(params, k_sample, prompts)
    reward = reward_fn(prompts, outputs, length)
    adv_N = advantage_fn(reward.reshape(num_prompts, group)).reshape(-1)
    grads = jax.grad(pg_surrogate)(params, log_prob_fn, prompts, outputs, length, adv_N)
    return grads, Rollouts(prompts, outputs, length, reward, jnp.ones_like(reward)), adv_N


def sgd_apply(params, grads, lr):
    """params - lr * grads (plain SGD on any pytree)."""
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


# ----------------------------------------------------------------------------------------------
# the AR-linear learner on the parity task


def ar_linear_callables(d: int, reward: str, num_prompts: int, temperature, hyper: ar.SGDHyper, *,
                        epochs: int = 1, batch: int = 1) -> dict[str, Callable]:
    """prompt/sample/reward/fit/log_prob callables for `star_round` and `policy_gradient`.

    `fit` is `ar_linear.fit`: E epochs of per-head SGD (eta_t = 1/(lam t), fresh horizons) on the
    kept pairs, started from the current parameters. `num_prompts` must be a multiple of `batch`.
    """
    if reward not in parity.REWARDS:
        raise ValueError(f"reward must be one of {parity.REWARDS}, got {reward!r}")

    def sample_fn(params, key, x_NxD):
        keys = jax.random.split(key, x_NxD.shape[0])
        return jax.vmap(ar.decode, (None, 0, 0, None))(params, keys, x_NxD, temperature)

    def fit_fn(params, key, x_NxD, outputs, length, weight):
        return ar.fit(params, key, x_NxD, outputs, length, weight, hyper, epochs=epochs, batch=batch)

    def log_prob_fn(params, x_NxD, outputs, length):
        return jax.vmap(ar.log_prob, (None, 0, 0, 0, None))(params, x_NxD, outputs, length, temperature)

    return {"prompt_fn": lambda key: parity.sample_prompts(key, d, num_prompts),
            "sample_fn": sample_fn,
            "reward_fn": partial(parity.rewards, reward),
            "fit_fn": fit_fn,
            "log_prob_fn": log_prob_fn}
