"""The data axis: one run's training batch split over 8 devices by `sharding.constrain_batch`.

Tolerance. The data split reorders the batch reductions (loss mean, gradient all-reduce), so a few
sampled actions flip (specs/jax_practice.md §12.1): compare statistically. One run's final eval
accuracy (512 instances, ~0.43 after 20 steps) varies by about 0.02 from seed to seed; we allow
0.05 (25 of 512 eval instances, 2.5 seed-to-seed sigma), and require the run to have learned.
"""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from md_setup import sweep_hparams, tiny_spec, whole_run
from theoryrl.core import sharding

SPEC = tiny_spec()  # batch 256: 32 examples per device on a data axis of 8
TOL_ACC = 0.05
MIN_LEARNING = 0.03


def _constraints(lowered_text: str) -> list[str]:
    """Sharding constraints on named mesh axes in a lowered program (typed-key ops add nameless ones)."""
    found = re.findall(r"sdy\.sharding_constraint .*?<@\w+, (\[.*?\])>", lowered_text)
    return [c for c in found if '"' in c]


def test_one_run_batch_sharded_over_data_axis(devices8):
    hp = jax.tree.map(lambda x: x[0], sweep_hparams([0]))
    run = jax.jit(whole_run(SPEC))

    ref_compiled = run.lower(hp).compile()  # no mesh: constrain_batch is a no-op
    ref_state, ref_metrics = ref_compiled(hp)

    mesh = sharding.make_mesh(data=8)
    assert dict(mesh.shape) == {"runs": 1, "data": 8}
    with sharding.use_mesh(mesh):
        lowered = run.lower(hp)
        compiled = lowered.compile()
        state, metrics = compiled(hp)

    # the constraint is in the program: the sampled ChainBatch (perm [B, n], source_pos [B]) on "data" ...
    assert _constraints(lowered.as_text()) == ['[{"data"}, {}]', '[{"data"}]']
    assert not _constraints(run.lower(hp).as_text())
    # ... and took effect: after SPMD partitioning each device holds 256 / 8 = 32 examples
    per_device = f"s32[{SPEC.batch // 8},{SPEC.task.n}]"
    assert per_device in compiled.as_text() and per_device not in ref_compiled.as_text()
    assert "all-reduce" in compiled.as_text()  # gradients (and batch means) reduced over "data"
    # params stay replicated over the data axis
    assert state.params["A"].sharding.is_fully_replicated and len(state.params["A"].sharding.device_set) == 8

    got, ref = sharding.gather_runs(metrics), sharding.gather_runs(ref_metrics)
    for m in (got, ref):
        assert m["all/acc_all"][-1] > m["all/acc_all"][0] + MIN_LEARNING, m["all/acc_all"]
    assert abs(got["all/acc_all"][-1] - ref["all/acc_all"][-1]) <= TOL_ACC
    assert abs(got["train_acc"][-1] - ref["train_acc"][-1]) <= TOL_ACC


def test_constrain_batch_under_spmd_vmap_prepends_runs(devices8):
    """A sweep of 2 runs on a (runs=2, data=4) mesh: the batch constraint becomes P("runs", "data")."""
    mesh = sharding.make_mesh(data=4)
    hp = sweep_hparams([0, 1])
    with sharding.use_mesh(mesh):
        hp_dev = sharding.shard_runs(hp, mesh)
        lowered = jax.jit(jax.vmap(whole_run(SPEC), spmd_axis_name="runs")).lower(hp_dev)
        plain_vmap = jax.jit(jax.vmap(whole_run(SPEC))).lower(hp_dev)
    assert _constraints(lowered.as_text()) == ['[{"runs"}, {"data"}, {}]', '[{"runs"}, {"data"}]']
    # a plain vmap leaves the run axis free for the partitioner
    assert _constraints(plain_vmap.as_text()) == ['[{?}, {"data"}, {}]', '[{?}, {"data"}]']


@pytest.mark.parametrize("data", [1, 8])
def test_constrain_batch_only_with_a_data_axis(devices8, data):
    tree = {"x": jnp.zeros((16, 3)), "n": jnp.zeros((16,), jnp.int32), "s": jnp.float32(1.0),
            "k": jax.random.split(jax.random.key(0), 16)}
    f = jax.jit(sharding.constrain_batch)
    assert not _constraints(f.lower(tree).as_text())  # no mesh in context
    mesh = sharding.make_mesh(data=data)
    with sharding.use_mesh(mesh):
        text = f.lower(tree).as_text()
        out = f(tree)
        # inside a shard_map over every axis the data axis is manual: nothing to constrain
        local = jax.shard_map(sharding.constrain_batch, mesh=mesh, in_specs=P(), out_specs=P())
        assert not _constraints(jax.jit(local).lower(tree["x"]).as_text())
    expected = 3 if data > 1 else 0  # x, n and the key data; never the scalar
    assert len(_constraints(text)) == expected
    assert jax.dtypes.issubdtype(out["k"].dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(out["k"]), jax.random.key_data(tree["k"]))
    if data > 1:
        assert out["x"].sharding.spec == P("data") and out["x"].addressable_shards[0].data.shape == (2, 3)
