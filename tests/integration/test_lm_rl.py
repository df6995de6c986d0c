"""The RL step end to end: every algorithm of the zoo learns a one-token task from a random decoder.

Task: the prompt is [BOS, a] with a one of 4 "symbol" tokens; the reward is 1 iff the first response
token is a. A random decoder succeeds with probability ~1/vocab; each algorithm must lift the
greedy success to >= 0.9 within a fixed budget. This checks the wiring (sampler -> verifier ->
advantages -> surrogate -> AdamW) of every estimator and KL placement, not just shapes.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.eval import lm_eval
from theoryrl.models.transformer import TransformerSpec, init_params
from theoryrl.rl import lm_rl, lm_runs, ntp, sampling
from theoryrl.rl.advantages import AdvantageSpec
from theoryrl.rl.losses import LossSpec

PAD, BOS, EOS, FIRST_SYMBOL, NUM_SYMBOLS = 0, 1, 2, 3, 4
MODEL = TransformerSpec(vocab_size=FIRST_SYMBOL + NUM_SYMBOLS, d_model=32, n_layers=1, n_heads=2, n_kv_heads=2,
                        max_len=8)
SAMPLER = sampling.SamplerSpec(max_new_tokens=3, eos_id=EOS, pad_id=PAD)


def _sample_prompts(key, hp, n):
    symbol = FIRST_SYMBOL + jax.random.randint(key, (n,), 0, NUM_SYMBOLS)
    prompts = jnp.stack([jnp.full((n,), BOS), symbol], axis=1).astype(jnp.int32)
    return prompts, None, {"symbol": symbol}


def _score(problems, response_NxT, mask_NxT):
    return {"reward": (response_NxT[:, 0] == problems["symbol"]).astype(jnp.float32)}


TASK = lm_rl.RLTask(sample_prompts=_sample_prompts, score=_score)

CASES = {
    "grpo": lm_rl.RLSpec(),
    "dr_grpo": lm_rl.RLSpec(advantage=AdvantageSpec(estimator="dr_grpo"), loss=LossSpec(agg="seq-mean-token-sum-norm")),
    "rloo": lm_rl.RLSpec(advantage=AdvantageSpec(estimator="rloo"), loss=LossSpec(agg="seq-mean-token-mean")),
    "reinforce": lm_rl.RLSpec(advantage=AdvantageSpec(estimator="reinforce")),
    "reinforce_pp+k1_reward": lm_rl.RLSpec(advantage=AdvantageSpec(estimator="reinforce_pp"),
                                           loss=LossSpec(kl="reward", kl_coef=0.01)),
    "reinforce_pp_baseline": lm_rl.RLSpec(advantage=AdvantageSpec(estimator="reinforce_pp_baseline")),
    "remax": lm_rl.RLSpec(advantage=AdvantageSpec(estimator="remax")),
    "ppo_gae": lm_rl.RLSpec(advantage=AdvantageSpec(estimator="gae"), num_minibatches=2, ppo_epochs=2),
    "dapo": lm_rl.RLSpec(advantage=AdvantageSpec(estimator="dapo"), oversample=2, overlong_cache=1,
                         loss=LossSpec(clip_high=0.28)),
    "grpo+k3_loss": lm_rl.RLSpec(loss=LossSpec(kl="loss", kl_kind="k3", kl_coef=0.01)),
}


def _train(spec: lm_rl.RLSpec, steps: int = 40):
    model = dataclasses.replace(MODEL, value_head=lm_rl.needs_value_head(spec))
    # the same total step size per rollout batch: several sequential updates each take a smaller step
    lr = 1e-2 / (spec.num_minibatches * spec.ppo_epochs)
    tx = ntp.make_optimizer(ntp.OptimSpec(lr=lr, warmup_steps=0, total_steps=steps, schedule="constant"))
    params = init_params(model, jax.random.key(0))
    hp = lm_runs.RLHp(seed=jnp.int32(0), lr_scale=jnp.float32(1.0), temperature=jnp.float32(1.0),
                      top_p=jnp.float32(1.0), init_params=params)
    state = lm_rl.TrainState(params, tx.init(params), jnp.int32(0))

    @jax.jit
    def run(state):
        return jax.lax.scan(lambda st, _: lm_rl.rl_step(model, SAMPLER, spec, tx, TASK, st, hp, params), state,
                            None, length=steps)

    state, metrics = run(state)
    prompts, _, problems = _sample_prompts(jax.random.key(1), hp, 64)
    greedy = lm_eval.greedy_scores(model, SAMPLER, TASK.score, state.params, prompts, None, problems)
    return float(jnp.mean(greedy["reward"])), jax.device_get(metrics), state.params


@pytest.mark.parametrize("name", list(CASES))
def test_every_algorithm_learns_the_one_token_task(name):
    spec = CASES[name]
    spec.validate()
    greedy_acc, metrics, _ = _train(spec)
    assert np.all(np.isfinite(metrics["loss"]))
    assert metrics["reward"][:5].mean() < 0.6  # it starts near chance...
    assert greedy_acc >= 0.9, (name, greedy_acc, metrics["reward"][-5:])  # ...and learns the task


def test_recomputed_logprobs_equal_the_samplers():
    """The full-pass "old" log-probs equal the KV-cache sampler's, so updates start exactly on-policy."""
    _, metrics, _ = _train(lm_rl.RLSpec(), steps=3)
    assert np.max(metrics["sampler_logp_gap"]) < 1e-4


@pytest.mark.parametrize("name", ["grpo", "grpo+k3_loss", "dr_grpo"])
def test_single_on_policy_update_skips_the_old_pass_without_changing_the_step(name, monkeypatch):
    """With one update per rollout batch the behaviour pass is skipped (its log-probs are the update's
    own, gradient stopped); forcing the separate pass gives the same parameters and metrics."""
    spec = CASES[name]
    assert lm_rl.single_on_policy_update(spec)
    assert not lm_rl.single_on_policy_update(CASES["ppo_gae"])
    assert not lm_rl.single_on_policy_update(CASES["reinforce_pp+k1_reward"])
    _, fast, params_fast = _train(spec, steps=4)
    monkeypatch.setattr(lm_rl, "single_on_policy_update", lambda spec: False)
    _, slow, params_slow = _train(spec, steps=4)
    for a, b in zip(jax.tree.leaves(params_fast), jax.tree.leaves(params_slow)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    for key in ("loss", "reward", "entropy", "sampler_logp_gap", "ratio_mean"):
        np.testing.assert_allclose(fast[key], slow[key], atol=1e-5, err_msg=key)
