"""NTP loss against a numpy cross-entropy, the optimiser's schedule and lr_scale, and overfitting."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.core.config import ConfigError
from theoryrl.models import transformer as tfm
from theoryrl.rl import ntp

SPEC = tfm.TransformerSpec(vocab_size=12, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, max_len=16)
TOKENS = jnp.array([[2, 5, 7, 1, 9, 3, 3, 11], [4, 6, 0, 8, 6, 10, 2, 1], [1, 2, 3, 4, 5, 6, 7, 8],
                    [11, 9, 7, 5, 3, 1, 0, 2]], jnp.int32)
# (no sequence starts with a repeated token: RoPE carries relative positions only, so a model cannot
# tell [a] from [a, a] and could not fit both continuations)
# the first three tokens are the prompt (never targets); row 3 also drops its last target
LOSS_MASK = jnp.array([[0, 0, 0, 1, 1, 1, 1, 1]] * 3 + [[0, 0, 0, 1, 1, 1, 1, 0]], jnp.float32)


def _random_params(spec, seed, std=0.3):
    """numpy draws into the abstract param tree (compiling jax RNG programs is slow on CPU)."""
    leaves, treedef = jax.tree.flatten(jax.eval_shape(lambda k: tfm.init_params(spec, k), jax.random.key(0)))
    rng = np.random.default_rng(seed)
    return jax.tree.unflatten(treedef, [jnp.asarray(std * rng.standard_normal(leaf.shape) + (leaf.ndim == 1),
                                                    jnp.float32) for leaf in leaves])


PARAMS = _random_params(SPEC, 0)
loss_fn = jax.jit(ntp.ntp_loss, static_argnums=0)


def test_loss_and_accuracy_equal_a_numpy_cross_entropy():
    loss, metrics = loss_fn(SPEC, PARAMS, TOKENS, LOSS_MASK)
    logits = np.asarray(jax.jit(tfm.forward, static_argnums=0)(SPEC, PARAMS, TOKENS).logits_BxTxV, np.float64)
    tokens, mask = np.asarray(TOKENS), np.asarray(LOSS_MASK)
    total, hits, count = 0.0, 0, 0
    for b in range(4):
        for t in range(7):
            if mask[b, t + 1]:  # position t predicts token t + 1
                z = logits[b, t]
                total += np.log(np.sum(np.exp(z - z.max()))) + z.max() - z[tokens[b, t + 1]]
                hits += int(np.argmax(z) == tokens[b, t + 1])
                count += 1
    assert count == 19
    np.testing.assert_allclose(loss, total / count, rtol=1e-5)
    np.testing.assert_allclose(metrics["token_acc"], hits / count, rtol=1e-6)
    assert float(metrics["num_targets"]) == 19.0


def test_masked_targets_do_not_affect_the_loss():
    # row 3's last token is only a target, and its target is masked: changing it changes nothing
    changed = TOKENS.at[3, 7].set(6)
    np.testing.assert_array_equal(loss_fn(SPEC, PARAMS, changed, LOSS_MASK)[0],
                                  loss_fn(SPEC, PARAMS, TOKENS, LOSS_MASK)[0])
    # ...whereas with its target counted, the same change does
    full = LOSS_MASK.at[3, 7].set(1.0)
    assert float(jnp.abs(loss_fn(SPEC, PARAMS, changed, full)[0] - loss_fn(SPEC, PARAMS, TOKENS, full)[0])) > 1e-4


def test_schedule_values():
    spec = ntp.OptimSpec(lr=2.0, warmup_steps=10, total_steps=110, final_lr_frac=0.1)
    got = [float(ntp.learning_rate(spec, s)) for s in (0, 4, 9, 10, 60, 110, 500)]
    # warmup lr*(s+1)/10, then cosine 0.1 + 0.9 * (1 + cos(pi * (s - 10) / 100)) / 2, held at 0.1 * lr
    np.testing.assert_allclose(got, [0.2, 1.0, 2.0, 2.0, 2.0 * 0.55, 0.2, 0.2], rtol=1e-6)
    quarter = 2.0 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 0.25)))
    np.testing.assert_allclose(float(ntp.learning_rate(spec, 35)), quarter, rtol=1e-6)
    const = ntp.OptimSpec(lr=2.0, warmup_steps=4, schedule="constant")
    np.testing.assert_allclose([float(ntp.learning_rate(const, s)) for s in (0, 3, 999)], [0.5, 2.0, 2.0], rtol=1e-6)


@pytest.mark.parametrize("step", [0, 5])
def test_optimizer_applies_lr_scale_times_schedule(step):
    spec = ntp.OptimSpec(lr=0.5, warmup_steps=4, total_steps=20, grad_clip=0.0)
    params = {"w": jnp.array([[1.0, -2.0]]), "b": jnp.array([3.0])}
    grads = {"w": jnp.array([[0.3, -0.7]]), "b": jnp.array([-2.0])}
    tx = ntp.make_optimizer(spec, lr_scale=0.25)
    state = tx.init(params)
    for _ in range(step):  # zero gradients leave Adam's moments at 0 but advance the schedule
        _, state = tx.update(jax.tree.map(jnp.zeros_like, grads), state, params)
    updates, _ = tx.update(grads, state, params)
    # after bias correction, Adam's first nonzero step is g / (|g| + eps) = sign(g)
    beta_fix = np.sqrt(1 - 0.95 ** (step + 1)) / (1 - 0.9 ** (step + 1)) * (1 - 0.9) / np.sqrt(1 - 0.95)
    lr = 0.25 * float(ntp.learning_rate(spec, step))
    np.testing.assert_allclose(updates["w"], -lr * beta_fix * np.sign([[0.3, -0.7]]), rtol=1e-4)
    np.testing.assert_allclose(updates["b"], -lr * beta_fix * np.sign([-2.0]), rtol=1e-4)


def test_weight_decay_only_on_matrices():
    spec = ntp.OptimSpec(lr=0.1, warmup_steps=0, schedule="constant", weight_decay=0.5, grad_clip=0.0)
    params = {"w": jnp.array([[1.0, -2.0]]), "b": jnp.array([3.0])}
    tx = ntp.make_optimizer(spec)
    zero = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.1 * 0.5 * np.array([[1.0, -2.0]]), rtol=1e-6)
    np.testing.assert_array_equal(updates["b"], [0.0])


def test_traced_lr_scale_zero_leaves_params_unchanged():
    spec = ntp.OptimSpec(lr=1e-2, warmup_steps=0)

    @jax.jit
    @functools.partial(jax.vmap, in_axes=(0, None))
    def one_step(lr_scale, params):
        tx = ntp.make_optimizer(spec, lr_scale=lr_scale)
        new, _, metrics = ntp.ntp_step(SPEC, tx, params, tx.init(params), TOKENS, LOSS_MASK)
        return new, metrics["loss"]

    new, loss = one_step(jnp.array([0.0, 1.0]), PARAMS)
    for before, after in zip(jax.tree.leaves(PARAMS), jax.tree.leaves(new), strict=True):
        np.testing.assert_array_equal(after[0], before)
        assert float(jnp.max(jnp.abs(after[1] - before))) > 1e-4
    np.testing.assert_allclose(loss[0], loss[1])


def _keyed_batch(key, step):
    """The four fixed sequences, with target masks read off the key's bits and the step (cheap functions of both)."""
    bits = jax.random.key_data(key)[-1] ^ step.astype(jnp.uint32)
    mask_T = ((bits >> jnp.arange(8, dtype=jnp.uint32)) & 1).astype(jnp.float32)
    return TOKENS, jnp.broadcast_to(mask_T[None, :], TOKENS.shape)


TX = ntp.make_optimizer(ntp.OptimSpec(lr=1e-2, warmup_steps=10, total_steps=200, final_lr_frac=0.1))
chunk_fn = jax.jit(lambda p, s, k, t0: ntp.ntp_chunk(SPEC, TX, _keyed_batch, p, s, k, t0, 100))  # one compile


def test_ntp_chunk_step_t_uses_fold_in_key_t():
    key = jax.random.key(3)
    _, _, metrics = chunk_fn(PARAMS, TX.init(PARAMS), key, 7)
    masks = [_keyed_batch(jax.random.fold_in(key, t), jnp.int32(t))[1] for t in range(7, 107)]
    np.testing.assert_array_equal(metrics["num_targets"], [float(jnp.sum(m[:, 1:])) for m in masks])
    np.testing.assert_allclose(metrics["loss"][0], loss_fn(SPEC, PARAMS, TOKENS, masks[0])[0], rtol=1e-5)


def test_ntp_chunk_overfits_four_sequences():
    params, state, key = PARAMS, TX.init(PARAMS), jax.random.key(0)
    first, _ = loss_fn(SPEC, PARAMS, TOKENS, jnp.ones_like(LOSS_MASK))
    for c in range(2):
        params, state, metrics = chunk_fn(params, state, key, c * 100)
    assert metrics["loss"].shape == (100,)
    loss, metrics = loss_fn(SPEC, params, TOKENS, jnp.ones_like(LOSS_MASK))  # every target of the 4 sequences
    assert float(first) > 2.0 and float(loss) < 0.02 and float(metrics["token_acc"]) == 1.0


def test_bad_optimizer_knobs_are_config_errors():
    with pytest.raises(ConfigError, match="'schedule'"):
        ntp.make_optimizer(ntp.OptimSpec(schedule="linear"))
    with pytest.raises(ConfigError, match="'final_lr_frac'"):
        ntp.OptimSpec(final_lr_frac=1.5).validate()
