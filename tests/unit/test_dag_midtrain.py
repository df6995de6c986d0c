"""Mid-training and compute matching of the DAG substrate (`rl/dag_runs.py`, spec §8 and §11.9).

T_RL = (5/3) N G L: at N = 8 prompts, G = 8 rollouts, L = 160 tokens one RL step is worth
5/3 * 8 * 8 * 160 = 17066.67 pre-training tokens. A budget of 100 RL steps (1,706,666.7 tokens) split
at CPT fraction 0.2 with 64 x 121 = 7,744 tokens per CPT step: 0.2 * 1706666.7 / 7744 = 44.08 -> 44
CPT steps and 0.8 * 100 = 80 RL steps. The mid-training program continues from the base's
parameters: one chunk with lr 0 leaves them bit for bit, with lr > 0 it moves them and its loss
is the NTP loss on the mixture's solutions (lr_scale 0 is the lr-0 run, same compiled chunk).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.core.config import ConfigError
from theoryrl.models import transformer as tfm
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import lm_runs


def test_rl_token_equivalents_and_budget_split_by_hand():
    assert dr.rl_token_equivalents(8, 8, 160) == pytest.approx(5 / 3 * 8 * 8 * 160)
    per_rl = dr.rl_token_equivalents(8, 8, 160)
    assert dr.split_budget(100 * per_rl, 0.2, 64 * 121, per_rl) == (44, 80)
    assert dr.split_budget(100 * per_rl, 0.0, 64 * 121, per_rl) == (0, 100)
    assert dr.split_budget(100 * per_rl, 1.0, 64 * 121, per_rl) == (220, 0)  # 1706666.7 / 7744 = 220.39
    with pytest.raises(ConfigError, match="cpt_fraction"):
        dr.split_budget(1000.0, 1.5, 10.0, 10.0)
    with pytest.raises(ConfigError, match="budget"):
        dr.split_budget(0.0, 0.5, 10.0, 10.0)


TINY = dr.BaseSpec(op_max=5, id_hi=3, medium_max=3, mix=(0.5, 0.5, 0.0), d_model=32, n_layers=1, n_heads=2, d_ff=64,
                   curve_problems=1, curve_samples=2, eval_problems=2, eval_samples=2, k_max=1)


def test_midtrain_continues_from_the_base():
    """One compiled chunk, two runs: lr_scale 0 (learning off) and 1."""
    base_params = tfm.init_params(dr.model(TINY), jax.random.key(3))
    program = dr.midtrain_program(TINY, 4, steps=2, chunk=2, lr=1e-2, batch=4)
    mixture = dr.band_params(TINY, [(2, 2), (4, 4)], 4)
    chunk = jax.jit(program.chunk_fn)
    for lr_scale in (0.0, 1.0):
        hp = lm_runs.RLHp(seed=jnp.int32(7), lr_scale=jnp.float32(lr_scale), temperature=jnp.float32(1.0),
                          top_p=jnp.float32(1.0), init_params=base_params, task=mixture)
        state, metrics = chunk(program.init_fn(hp), hp, program.data_fn(hp))
        moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(base_params))]
        assert any(moved) == (lr_scale > 0)
        assert int(state.step) == 2 and np.isfinite(float(metrics["loss"])) and float(metrics["loss"]) > 0
        assert set(metrics) >= {"loss", "token_acc", "id_pass1", "id_passS"}
