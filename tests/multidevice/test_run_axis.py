"""The run axis on the mesh: a sweep of 8 runs, one per device (specs/jax_practice.md §9.3, §11).

Tolerances. A different layout (8 devices x 1 run vs 1 device x 8 runs) changes float rounding in
reductions; REINFORCE sampling turns that into a few flipped actions (§12.1), so the two layouts
are compared statistically, never bitwise. The seed-to-seed standard deviation of the final eval
accuracy in this setting is about 0.02 (512 eval instances per run, accuracy ~0.43 after 20 steps),
so two *independent* 8-seed means would differ by about 0.02 * sqrt(2 / 8) = 0.01. We allow 0.03
(3 sigma of that, 15 eval instances per run): a real layout bug (wrong seed per run, runs mixed up,
updates lost) moves the mean far more, and the runs also have to have learned (+0.03 over the
sweep) so the comparison is not between two untrained models. The shard_map and jit + sharding
formulations run the same per-device program and must agree exactly.
"""
import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from md_setup import sweep_hparams, tiny_spec, whole_run
from theoryrl.core import sharding

SPEC = tiny_spec()
N_RUNS = 8
TOL_MEAN_ACC = 0.03
MIN_LEARNING = 0.03


@pytest.fixture(scope="module")
def hp():
    return sweep_hparams(range(N_RUNS))


@pytest.fixture(scope="module")
def unsharded(hp):
    """The same 8 runs, vmapped on one device with no mesh."""
    return jax.jit(jax.vmap(whole_run(SPEC)))(hp)


@pytest.fixture(scope="module")
def sharded(hp):
    mesh = sharding.make_mesh()
    with sharding.use_mesh(mesh):
        hp_dev = sharding.shard_runs(hp, mesh)
        # out_shardings: leaves that do not depend on hp (epoch, Adam count) would otherwise come out
        # replicated under Auto propagation; every leaf of a sweep's state belongs on "runs".
        out = jax.jit(jax.vmap(whole_run(SPEC), spmd_axis_name="runs"),
                      out_shardings=sharding.runs_sharding(mesh))(hp_dev)
    return mesh, hp_dev, out


def _assert_runs_sharded(tree, n_dev):
    for path, x in jax.tree_util.tree_leaves_with_path(tree):
        name = jax.tree_util.keystr(path)
        assert x.sharding.spec[0] == "runs" and all(s is None for s in x.sharding.spec[1:]), (name, x.sharding)
        shards = x.addressable_shards
        assert len(shards) == n_dev and len({s.device for s in shards}) == n_dev, name
        assert all(s.data.shape == (x.shape[0] // n_dev,) + x.shape[1:] for s in shards), name
        assert sorted(s.index[0].start for s in shards) == list(range(0, x.shape[0], x.shape[0] // n_dev)), name


def test_sweep_sharded_over_runs_matches_one_device(devices8, unsharded, sharded):
    mesh, hp_dev, (state, metrics) = sharded
    assert dict(mesh.shape) == {"runs": 8, "data": 1}
    _assert_runs_sharded(hp_dev, 8)
    _assert_runs_sharded((state.params, state.opt, metrics), 8)
    ref_state, ref_metrics = unsharded
    assert len(ref_metrics["loss"].sharding.device_set) == 1

    got, ref = sharding.gather_runs(metrics), sharding.gather_runs(ref_metrics)
    assert got["all/acc_all"].shape == (N_RUNS, SPEC.epochs_per_chunk)
    for m in (got, ref):  # both layouts trained: the sweep's mean eval accuracy rose
        acc = m["all/acc_all"].mean(axis=0)
        assert acc[-1] > acc[0] + MIN_LEARNING, acc
        assert np.all(np.isfinite(m["loss"]))
    for name in ("all/acc_all", "train_acc"):
        diff = abs(got[name][:, -1].mean() - ref[name][:, -1].mean())
        assert diff <= TOL_MEAN_ACC, (name, diff)
    # the seeds reached the right runs: per-run final accuracy is strongly correlated across layouts
    assert np.corrcoef(got["all/acc_all"][:, -1], ref["all/acc_all"][:, -1])[0, 1] > 0.5


def test_shard_map_formulation_agrees_exactly(sharded, hp):
    mesh, hp_dev, (state, metrics) = sharded
    # check_vma=False: the trainer's scans start from unvarying constants (e.g. rollout_one's carry),
    # which the varying-manual-axes checker rejects; the per-device program is unaffected.
    run_local = jax.shard_map(jax.vmap(whole_run(SPEC)), mesh=mesh, in_specs=P("runs"), out_specs=P("runs"),
                              check_vma=False)
    with sharding.use_mesh(mesh):
        state_sm, metrics_sm = jax.jit(run_local)(hp_dev)
    _assert_runs_sharded((state_sm.params, metrics_sm), 8)
    jax.tree.map(np.testing.assert_array_equal, sharding.gather_runs((state.params, state.opt, metrics)),
                 sharding.gather_runs((state_sm.params, state_sm.opt, metrics_sm)))


def test_pad_unpad_five_runs_on_eight_devices(devices8):
    mesh = sharding.make_mesh()
    tree = {"seed": np.arange(5, dtype=np.int32), "lr": jax.numpy.linspace(0.1, 0.5, 5),
            "w": np.arange(15.0).reshape(5, 3), "key": jax.random.split(jax.random.key(1), 5)}
    with pytest.raises(ValueError, match="pad_runs"):
        sharding.shard_runs(tree, mesh)
    padded, n_pad = sharding.pad_runs(tree, mesh.shape["runs"])
    assert n_pad == 3
    assert isinstance(padded["seed"], np.ndarray) and padded["seed"].tolist() == [0, 1, 2, 3, 4, 4, 4, 4]
    np.testing.assert_array_equal(padded["w"][5:], np.repeat(tree["w"][4:], 3, axis=0))
    np.testing.assert_array_equal(jax.random.key_data(padded["key"][5:]),
                                  np.repeat(jax.random.key_data(tree["key"][4:]), 3, axis=0))
    assert sharding.pad_runs(padded, 8)[1] == 0
    with sharding.use_mesh(mesh):
        placed = sharding.shard_runs(padded, mesh)
        assert jax.dtypes.issubdtype(placed["key"].dtype, jax.dtypes.prng_key)
        _assert_runs_sharded({k: v for k, v in placed.items() if k != "key"}, 8)
        assert placed["key"].sharding.spec[0] == "runs"
        # a per-run computation on the padded, sharded sweep, then drop the padding
        bits = jax.jit(jax.vmap(lambda k, s: jax.random.bits(k, dtype=jax.numpy.uint32) + s.astype("uint32")))(
            placed["key"], placed["seed"])
    back = sharding.unpad_runs(sharding.gather_runs({"bits": bits, **placed}), n_pad)
    assert back["bits"].shape == (5,) and back["seed"].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(back["key"], jax.random.key_data(tree["key"]))
    np.testing.assert_array_equal(back["w"], tree["w"])
    expected = jax.vmap(lambda k: jax.random.bits(k, dtype=jax.numpy.uint32))(tree["key"])
    np.testing.assert_array_equal(back["bits"], np.asarray(expected) + np.arange(5, dtype=np.uint32))
    assert sharding.unpad_runs(tree, 0) is tree


def test_initialize_distributed_is_a_no_op_on_one_host(monkeypatch):
    for var in (sharding.ENV_COORDINATOR, sharding.ENV_NUM_PROCESSES, sharding.ENV_PROCESS_ID):
        monkeypatch.delenv(var, raising=False)
    sharding.initialize_distributed()
    assert jax.process_count() == 1 and not jax.distributed.is_initialized()
    with pytest.raises(ValueError, match="must all be given"):
        sharding.initialize_distributed(coordinator_address="127.0.0.1:1")
    monkeypatch.setenv(sharding.ENV_NUM_PROCESSES, "2")
    with pytest.raises(ValueError, match="must all be given"):
        sharding.initialize_distributed()
    with pytest.raises(ValueError, match="process_id=2"):
        sharding.initialize_distributed("127.0.0.1:1", 2, 2)


def test_make_mesh_shapes_and_errors(devices8):
    for data, shape in ((1, (8, 1)), (2, (4, 2)), (8, (1, 8))):
        mesh = sharding.make_mesh(data)
        assert mesh.axis_names == ("runs", "data") and mesh.devices.shape == shape
        assert set(mesh.axis_types) == {jax.sharding.AxisType.Auto}
        assert sorted(d.id for d in mesh.devices.flat) == list(range(8))
    for bad in (0, 3, 16, 2.0):
        with pytest.raises(ValueError, match="data="):
            sharding.make_mesh(bad)
    mesh = sharding.make_mesh()
    with sharding.use_mesh(mesh):
        assert jax.sharding.get_abstract_mesh().axis_names == ("runs", "data")
    assert jax.sharding.get_abstract_mesh().empty
