"""A whole chain-traversal REINFORCE run as pure functions of (seed, hyperparameters).

    hp    = make_hparams(seed, lr, dist_probs, eval_dist_probs)   # ChainHp
    data  = make_data(spec, hp)             # fixed train set (dataset mode) and eval sets
    state = init_state(spec, hp)            # TrainState: params, Adam state, epoch, early-stop flag
    state, metrics = run_chunk(spec, state, hp, data)   # `epochs_per_chunk` epochs in one scan

All three are written for one run and vmapped over a run axis by the caller; swept knobs (seed,
lr, the training distance distribution) are traced arrays in `ChainHp`, so a sweep over them is one
compiled program. Keys: step t of the data / policy streams is fold_in(stream, t), so resuming at
any chunk boundary replays exactly the same numbers.

One Adam step uses the whole batch with a mean-reward baseline (`baseline_groups` near-equal
blocks reproduce the official per-sub-batch baselines). After each epoch the model is evaluated
greedily on every eval set; with `early_stop` a run freezes (updates masked) once its epoch-mean
sampled train accuracy and its first eval set's accuracy both reach `early_stop_level` (1.0, i.e.
100%, as in the official code).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from theoryrl.core import sharding
from theoryrl.core.prng import Stream, root_key, step_key, stream_key
from theoryrl.models.chain_attention import ModelSpec, init_params
from theoryrl.rl.advantages import baselined_advantages
from theoryrl.rl.chain import BatchLayout, accuracy_metrics, reinforce_loss, rollout
from theoryrl.tasks.chain import ChainSpec, derive, sample, take


@dataclasses.dataclass(frozen=True)
class EvalSet:
    name: str
    task: ChainSpec
    size: int
    horizon: int


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """Everything that fixes shapes and the compiled program (hashable, static)."""

    task: ChainSpec
    model: ModelSpec
    batch: int
    horizon: int
    steps_per_epoch: int
    epochs_per_chunk: int
    dataset_size: int  # 0: fresh instances every step
    evals: tuple[EvalSet, ...]
    baseline_groups: int = 1
    early_stop: bool = True
    early_stop_level: float = 1.0
    layout: BatchLayout = BatchLayout()  # chunking of rollouts and loss (speed only, same math)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ChainHp:
    """Traced per-run knobs of one run (vmapped over runs: a sweep over them is one program)."""

    seed: jax.Array  # int32 []
    lr: jax.Array  # float32 []: Adam's learning rate
    dist_probs: jax.Array  # float32 [m - 1]: training P(distance = d), d = 1..m-1
    eval_dist_probs: dict[str, jax.Array]  # eval-set name -> its distance distribution (float32)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
    """One run's training state (checkpointed by key path, so the field names are its array names)."""

    params: dict  # chain_attention parameters
    opt: Any  # Adam state
    epoch: jax.Array  # int32 []: epochs done
    stopped: jax.Array  # bool []: early-stopped (updates masked from then on)
    stop_epoch: jax.Array  # int32 []: epoch count when it stopped, -1 while training


def make_hparams(seed: int, lr: float, dist_probs, eval_dist_probs: dict) -> ChainHp:
    """The traced, vmappable knobs of one run."""
    return ChainHp(seed=jnp.int32(seed), lr=jnp.float32(lr), dist_probs=jnp.asarray(dist_probs, jnp.float32),
                   eval_dist_probs={k: jnp.asarray(v, jnp.float32) for k, v in eval_dist_probs.items()})


def make_data(spec: TrainSpec, hp: ChainHp) -> dict:
    """Fixed datasets of one run: the training set (dataset mode) and the eval sets."""
    key = root_key(hp.seed)
    data = {"eval": {}}
    for i, ev in enumerate(spec.evals):
        eval_key = jax.random.fold_in(stream_key(key, Stream.EVAL), i)
        data["eval"][ev.name] = sample(eval_key, ev.task, hp.eval_dist_probs[ev.name], ev.size)
    if spec.dataset_size:
        data["train"] = sample(stream_key(key, Stream.DATA), spec.task, hp.dist_probs, spec.dataset_size)
    return data


def start_state(params, lr) -> TrainState:
    """A fresh run from `params`: Adam state at zero, no epoch done, not stopped."""
    return TrainState(params=params, opt=optax.adam(lr).init(params), epoch=jnp.int32(0),
                      stopped=jnp.array(False), stop_epoch=jnp.int32(-1))


def init_state(spec: TrainSpec, hp: ChainHp) -> TrainState:
    """A run's start: parameters from the seed's INIT stream."""
    return start_state(init_params(stream_key(root_key(hp.seed), Stream.INIT), spec.model), hp.lr)


def _train_batch(spec: TrainSpec, hp: ChainHp, data: dict, key, epoch, step_in_epoch):
    if not spec.dataset_size:
        return sample(step_key(key, Stream.DATA, epoch * spec.steps_per_epoch + step_in_epoch),
                      spec.task, hp.dist_probs, spec.batch)
    # a new shuffle each epoch, drop_last: the fixed-dataset mode of the official code
    order = jax.random.permutation(step_key(key, Stream.DATA_ORDER, epoch), spec.dataset_size)
    idx = jax.lax.dynamic_slice_in_dim(order, step_in_epoch * spec.batch, spec.batch)
    return take(data["train"], idx)


def train_step(spec: TrainSpec, state: TrainState, hp: ChainHp, batch, policy_key) -> tuple[TrainState, dict]:
    """One REINFORCE + Adam step on `batch` (masked when the run has early-stopped)."""
    batch = sharding.constrain_batch(batch)  # examples on the mesh's "data" axis, if it has one
    inst = derive(spec.task, batch)
    out = rollout(state.params, spec.model, inst, spec.horizon, policy_key, spec.layout)
    advantages = baselined_advantages(out["correct"].astype(jnp.float32), spec.baseline_groups)
    loss, grads = jax.value_and_grad(reinforce_loss)(
        state.params, spec.model, inst, out["actions"], out["emitted"], advantages, spec.layout)
    updates, opt = optax.adam(hp.lr).update(grads, state.opt, state.params)
    params = optax.apply_updates(state.params, updates)
    keep = state.stopped
    state = dataclasses.replace(
        state, params=jax.tree.map(lambda old, new: jnp.where(keep, old, new), state.params, params),
        opt=jax.tree.map(lambda old, new: jnp.where(keep, old, new), state.opt, opt))
    metrics = {"loss": loss, "train_acc": jnp.mean(out["correct"].astype(jnp.float32)),
               "train_len": jnp.mean(out["length"].astype(jnp.float32))}
    return state, metrics


def evaluate(spec: TrainSpec, params, data: dict) -> dict:
    """Greedy accuracy, traversal accuracy (both denominators) and lengths on every eval set."""
    metrics = {}
    for ev in spec.evals:
        out = rollout(params, spec.model, derive(ev.task, data["eval"][ev.name]), ev.horizon, None, spec.layout)
        metrics.update({f"{ev.name}/{k}": v for k, v in accuracy_metrics(out).items()})
    return metrics


def run_epoch(spec: TrainSpec, state: TrainState, hp: ChainHp, data: dict) -> tuple[TrainState, dict]:
    key = root_key(hp.seed)
    epoch = state.epoch

    def step(st, s):
        batch = _train_batch(spec, hp, data, key, epoch, s)
        return train_step(spec, st, hp, batch, step_key(key, Stream.POLICY, epoch * spec.steps_per_epoch + s))

    state, step_metrics = jax.lax.scan(step, state, jnp.arange(spec.steps_per_epoch))
    metrics = {k: jnp.mean(v) for k, v in step_metrics.items()}
    metrics.update(evaluate(spec, state.params, data))
    metrics["stopped"] = state.stopped  # whether this epoch trained or was frozen
    if spec.early_stop:
        first = spec.evals[0].name
        newly = (~state.stopped & (metrics["train_acc"] >= spec.early_stop_level)
                 & (metrics[f"{first}/acc"] >= spec.early_stop_level))
        state = dataclasses.replace(state, stopped=state.stopped | newly,
                                    stop_epoch=jnp.where(newly, epoch + 1, state.stop_epoch))
    return dataclasses.replace(state, epoch=epoch + 1), metrics


def run_chunk(spec: TrainSpec, state: TrainState, hp: ChainHp, data: dict) -> tuple[TrainState, dict]:
    """`epochs_per_chunk` epochs; metrics have a leading epoch axis."""
    return jax.lax.scan(lambda st, _: run_epoch(spec, st, hp, data), state, None, length=spec.epochs_per_chunk)
