"""The in-bench reference of `bench lm`: one GRPO step written as the textbook sequence of passes.

    state, metrics = grpo_step(model_spec, sampler, spec, tx, task, state, hp)

The same step as `rl.lm_rl.rl_step` for on-policy GRPO with one update per rollout batch and no KL
(`lm_rl.RLSpec()` defaults; the group-relative advantage of Shao et al.'s GRPO, token-mean clipped
surrogate): the same prompt and policy keys, KV-cache sampler, verifier, advantages, loss and
optimiser. The steps are spelled out one after another:
  sample -> score -> behaviour forward pass (the "old" log-probs, gradient stopped) -> advantages
  -> forward + backward of the clipped surrogate -> optimiser update.
The LM stack has one separately optimised path for this step: `lm_rl.rl_step` skips the behaviour
pass when a single on-policy update makes the old log-probs equal to the update's own pass
(`lm_rl.single_on_policy_update`). The reference keeps that pass, so `bench lm`'s ratio
reference / fast measures what the skip saves. (The sampler has no plain twin: decoding without a
KV cache would redo the whole prefix every token, a straw man; its `cache_block` option is timed
separately by `bench lm`.) tests/unit/test_bench_lm.py checks the reference against `rl_step`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from theoryrl.core import prng
from theoryrl.eval import lm_eval
from theoryrl.models import transformer as tfm
from theoryrl.rl import advantages as adv_lib
from theoryrl.rl import lm_rl, sampling
from theoryrl.rl import losses as loss_lib


def response_logp(model_spec, params, seqs, temperature, prompt_len: int, num_prompts: int):
    """Log-probs of the response tokens, [P, G, T], from one full forward pass over prompt + response."""
    tokens_NxS, kv_mask_NxS, positions_NxS, _ = seqs
    logp_NxSm1, _, _ = tfm.token_logprobs(model_spec, params, tokens_NxS, positions_BxT=positions_NxS,
                                          kv_mask_BxT=kv_mask_NxS, temperature=temperature)
    return sampling.response_part(logp_NxSm1, prompt_len, num_prompts)


def grpo_step(model_spec, sampler: sampling.SamplerSpec, spec: lm_rl.RLSpec, tx: optax.GradientTransformation,
              task: lm_rl.RLTask, state: lm_rl.TrainState, hp) -> tuple[lm_rl.TrainState, dict]:
    """One GRPO step with a separate behaviour pass (see module docstring)."""
    if not lm_rl.single_on_policy_update(spec) or spec.loss.kl != "none" or spec.oversample != 1:
        raise ValueError("the reference GRPO step covers one on-policy update without KL or oversampling")
    key, t = prng.root_key(hp.seed), state.step
    prompts_PxL, prompt_mask_PxL, problems = task.sample_prompts(
        prng.step_key(key, prng.Stream.DATA, t), hp, spec.prompts_per_step)
    rollout = sampling.sample(model_spec, state.params, prompts_PxL, prompt_mask_PxL,
                              prng.step_key(key, prng.Stream.POLICY, t), spec.group_size, sampler,
                              temperature=hp.temperature, top_p=hp.top_p)
    rewards_PxG = lm_eval.score_samples(task.score, problems, rollout)["reward"]
    seqs = sampling.full_sequences(prompts_PxL, prompt_mask_PxL, rollout)
    num_prompts, prompt_len = prompts_PxL.shape
    logp_old_PxGxT = jax.lax.stop_gradient(
        response_logp(model_spec, state.params, seqs, hp.temperature, prompt_len, num_prompts))
    adv_PxGxT, _ = adv_lib.compute_advantages(spec.advantage, rewards_PxG, rollout.mask_PxGxT)

    def loss_fn(params):
        logp_PxGxT = response_logp(model_spec, params, seqs, hp.temperature, prompt_len, num_prompts)
        return loss_lib.policy_loss(spec.loss, logp_PxGxT, logp_old_PxGxT, adv_PxGxT, rollout.mask_PxGxT)

    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt = tx.update(grads, state.opt, state.params)
    metrics = {"loss": loss, "reward": jnp.mean(rewards_PxG), "ratio_mean": stats["ratio_mean"],
               "response_len": jnp.mean(rollout.length_PxG.astype(jnp.float32))}
    return lm_rl.TrainState(optax.apply_updates(state.params, updates), opt, t + 1), metrics
