"""Pytrees saved by key path (core/treepath.py): round trips, and a changed structure names the key."""
import jax
import numpy as np
import pytest

from theoryrl.core import treepath
from theoryrl.models import transformer as tfm
from theoryrl.rl import lm_runs

SPEC = tfm.TransformerSpec(vocab_size=7, d_model=8, n_layers=2, n_heads=2, n_kv_heads=1, max_len=8)


def _nested():
    return {"a": [np.arange(3, dtype=np.int32), {"b": np.ones((2, 2), np.float32)}], "c": np.float32(1.5)}


def test_nested_dict_and_list_round_trip_with_names_by_key_path():
    tree = _nested()
    flat = treepath.flatten(tree, "final/params/")
    assert sorted(flat) == ["final/params/a/0", "final/params/a/1/b", "final/params/c"]
    like = jax.tree.map(np.zeros_like, tree)
    # other prefixes in the same dict take no part
    back = treepath.unflatten(like, {**flat, "history/loss": np.zeros(4)}, "final/params/")
    assert jax.tree.structure(back) == jax.tree.structure(tree)
    for got, want in zip(jax.tree.leaves(back), jax.tree.leaves(tree)):
        np.testing.assert_array_equal(got, want)


def test_leaves_are_matched_by_name_not_by_position():
    tree = {"x": np.zeros(2), "y": np.ones(2)}
    # the same leaves in another insertion order: restored by name, so x stays zeros
    flat = {"y": np.ones(2), "x": np.zeros(2)}
    back = treepath.unflatten(tree, flat)
    np.testing.assert_array_equal(back["x"], np.zeros(2))
    np.testing.assert_array_equal(back["y"], np.ones(2))


def test_transformer_params_round_trip_under_their_layer_names():
    params = tfm.init_params(SPEC, jax.random.key(0))
    arrays = lm_runs.params_to_arrays(params, "final/params")
    assert "final/params/blocks/0/wq/value" in arrays and "final/params/embed/value" in arrays
    # every parameter is saved exactly once: the sizes add up to the spec's own count
    assert sum(np.size(v) for v in arrays.values()) == SPEC.num_params()
    back = lm_runs.params_from_arrays(SPEC, arrays, "final/params/")
    assert jax.tree.structure(back) == jax.tree.structure(params)
    for (path, got), want in zip(jax.tree_util.tree_flatten_with_path(back)[0], jax.tree.leaves(params)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=treepath.key_name(path))


def test_params_of_another_depth_are_refused_naming_the_layer():
    deeper = tfm.TransformerSpec(vocab_size=7, d_model=8, n_layers=3, n_heads=2, n_kv_heads=1, max_len=8)
    arrays = lm_runs.params_to_arrays(tfm.init_params(SPEC, jax.random.key(0)), "final/params")
    with pytest.raises(treepath.StructureMismatch, match="missing 'blocks/2/attn_norm/scale/value'"):
        lm_runs.params_from_arrays(deeper, arrays, "final/params/")
    shallower = tfm.TransformerSpec(vocab_size=7, d_model=8, n_layers=1, n_heads=2, n_kv_heads=1, max_len=8)
    with pytest.raises(treepath.StructureMismatch, match="unexpected 'blocks/1/attn_norm/scale/value'"):
        lm_runs.params_from_arrays(shallower, arrays, "final/params/")
