"""Tiny chain-REINFORCE sweeps shared by the multi-device tests and the multi-host worker.

Imports JAX but runs no op, so the importer still chooses the CPU device count.
"""
import jax
import numpy as np

from theoryrl.models.chain_attention import ModelSpec
from theoryrl.rl.chain_trainer import ChainHp, EvalSet, TrainSpec, init_state, make_data, make_hparams, run_chunk
from theoryrl.tasks.chain import ChainSpec, uniform_over

M = 4


def tiny_spec(batch: int = 256, steps_per_epoch: int = 5, epochs_per_chunk: int = 4, eval_size: int = 512) -> TrainSpec:
    """m=4 chains in n=8 vertices, fresh batches, no early stop: 20 REINFORCE steps per chunk."""
    task = ChainSpec(m=M, n=2 * M)
    return TrainSpec(task=task, model=ModelSpec(n=task.n), batch=batch, horizon=M + 1,
                     steps_per_epoch=steps_per_epoch, epochs_per_chunk=epochs_per_chunk, dataset_size=0,
                     evals=(EvalSet("all", task, eval_size, M + 1),), early_stop=False)


def sweep_hparams(seeds, lr: float = 0.1) -> ChainHp:
    """One run per seed, stacked on a leading run axis (host numpy)."""
    probs = uniform_over(range(1, M), M)
    hps = [make_hparams(s, lr, probs, {"all": probs}) for s in seeds]
    return jax.tree.map(lambda *x: np.stack(x), *hps)


def whole_run(spec: TrainSpec):
    """hp -> (state, metrics) of one run: make_data, init_state, one run_chunk."""
    def run(hp):
        return run_chunk(spec, init_state(spec, hp), hp, make_data(spec, hp))
    return run
