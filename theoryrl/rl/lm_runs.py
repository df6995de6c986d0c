"""Training programs for the small decoder: NTP pre-training and outcome-reward RL, as `Program`s.

Both are written for one run and vmapped by the runner over seeds and traced knobs, which a run
carries as a typed hp pytree: `PretrainHp` (seed, lr_scale) and `RLHp` (also temperature, top_p and
init_params), each with `task`, the experiment's own traced task knobs (a small pytree dataclass,
e.g. a distance distribution) or None. The RL program starts from `hp.init_params` (a pre-trained
checkpoint handed over between buckets as host arrays) and keeps it as the frozen KL reference.
Eval functions run at every chunk end, so metrics.jsonl holds the learning curves.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from theoryrl.core import prng, treepath
from theoryrl.core.experiment import Program
from theoryrl.models import transformer as tfm
from theoryrl.rl import lm_rl, ntp, sampling


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PretrainHp:
    """Traced knobs of one NTP pre-training run (vmapped over the runs of a bucket)."""

    seed: jax.Array  # int32 []: the run's root key (init, data and eval streams)
    lr_scale: jax.Array  # float32 []: multiplies the scheduled learning rate
    task: Any = None  # the experiment's traced task knobs (a pytree dataclass), or None


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class RLHp:
    """Traced knobs of one RL / STaR run from a checkpoint (vmapped over the runs of a bucket)."""

    seed: jax.Array  # int32 []: the run's root key (data, policy and eval streams)
    lr_scale: jax.Array  # float32 []: multiplies the scheduled learning rate
    temperature: jax.Array  # float32 []: sampling temperature of the rollouts
    top_p: jax.Array  # float32 []: nucleus of the rollouts (1 = off)
    init_params: Any  # the starting parameters, also the frozen KL reference
    task: Any = None  # the experiment's traced task knobs (a pytree dataclass), or None


def params_to_arrays(params, name: str = "params") -> dict:
    """A params pytree as host-savable leaves named by key path ("params/blocks/0/wq/value")."""
    return treepath.flatten(params, f"{name}/")


def params_from_arrays(model_spec, arrays: dict, prefix: str = "final/params/"):
    """Inverse of `params_to_arrays` (for one run: leaves without the run axis), matched by key path:
    a missing or extra key is a StructureMismatch naming it."""
    like = jax.eval_shape(lambda: tfm.init_params(model_spec, jax.random.key(0)))
    return jax.tree.map(jnp.asarray, treepath.unflatten(like, arrays, prefix, what="saved parameters"))


def _mean_over_steps(metrics: dict) -> dict:
    return {k: jnp.mean(v, axis=0) for k, v in metrics.items()}


def pretrain_program(model_spec, optim: ntp.OptimSpec, batch_fn: Callable, *, num_chunks: int,
                     steps_per_chunk: int, data_fn: Callable, eval_fn: Callable) -> Program:
    """NTP on online batches, hp a `PretrainHp`: `batch_fn(key, hp, step) -> (tokens_BxS, loss_mask_BxS)`;
    `data_fn(hp) -> eval data`, `eval_fn(params, hp, data) -> dict` at every chunk end."""

    def init_fn(hp: PretrainHp):
        params = tfm.init_params(model_spec, prng.stream_key(prng.root_key(hp.seed), prng.Stream.INIT))
        tx = ntp.make_optimizer(optim, lr_scale=hp.lr_scale)
        return lm_rl.TrainState(params, tx.init(params), jnp.int32(0))

    def chunk_fn(state: lm_rl.TrainState, hp: PretrainHp, data):
        tx = ntp.make_optimizer(optim, lr_scale=hp.lr_scale)
        key = prng.stream_key(prng.root_key(hp.seed), prng.Stream.DATA)
        params, opt, metrics = ntp.ntp_chunk(model_spec, tx, lambda k, t: batch_fn(k, hp, t), state.params,
                                             state.opt, key, state.step, steps_per_chunk)
        metrics = _mean_over_steps(metrics)
        metrics.update(eval_fn(params, hp, data))
        return lm_rl.TrainState(params, opt, state.step + steps_per_chunk), metrics

    return Program(data_fn=data_fn, init_fn=init_fn, chunk_fn=chunk_fn, num_chunks=num_chunks,
                   steps_per_chunk=steps_per_chunk, final_fn=lambda state: params_to_arrays(state.params))


def rl_program(model_spec, sampler: sampling.SamplerSpec, spec: lm_rl.RLSpec, optim: ntp.OptimSpec,
               task: lm_rl.RLTask, *, num_chunks: int, steps_per_chunk: int, data_fn: Callable,
               eval_fn: Callable) -> Program:
    """RL from `hp.init_params` (also the frozen reference), hp an `RLHp`."""

    def init_fn(hp: RLHp):
        tx = ntp.make_optimizer(optim, lr_scale=hp.lr_scale)
        return lm_rl.TrainState(hp.init_params, tx.init(hp.init_params), jnp.int32(0))

    def chunk_fn(state: lm_rl.TrainState, hp: RLHp, data):
        tx = ntp.make_optimizer(optim, lr_scale=hp.lr_scale)

        def step(st, _):
            return lm_rl.rl_step(model_spec, sampler, spec, tx, task, st, hp, hp.init_params)

        state, metrics = jax.lax.scan(step, state, None, length=steps_per_chunk)
        metrics = _mean_over_steps(metrics)
        metrics.update(eval_fn(state.params, hp, data))
        return state, metrics

    return Program(data_fn=data_fn, init_fn=init_fn, chunk_fn=chunk_fn, num_chunks=num_chunks,
                   steps_per_chunk=steps_per_chunk, final_fn=lambda state: params_to_arrays(state.params))

