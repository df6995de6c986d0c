"""STaR for the decoder: the kept-pair sequences, the weighted NTP fit (exact update counts, dropped pairs
change nothing), and a STaR round end to end on a one-token task."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.eval import lm_eval
from theoryrl.models import transformer as tfm
from theoryrl.rl import lm_rl, lm_runs, lm_star, ntp, sampling

PAD, BOS, EOS, FIRST_SYMBOL, NUM_SYMBOLS = 0, 1, 2, 3, 4
MODEL = tfm.TransformerSpec(vocab_size=FIRST_SYMBOL + NUM_SYMBOLS, d_model=16, n_layers=1, n_heads=2, n_kv_heads=2,
                            max_len=8)
TX = ntp.make_optimizer(ntp.OptimSpec(lr=1e-2, warmup_steps=0, schedule="constant", grad_clip=0.0))
PARAMS = tfm.init_params(MODEL, jax.random.key(0))


def _count(opt_state) -> int:
    """The optimiser's update counter (optax's ScaleByScheduleState.count)."""
    return int(opt_state[-1].count)


def _seqs(n: int, seed: int = 0):
    """n random 2-token prompts [BOS, a] and 2-token responses [b, EOS] as fit() inputs."""
    rng = np.random.default_rng(seed)
    prompts = np.stack([np.full(n, BOS), FIRST_SYMBOL + rng.integers(0, NUM_SYMBOLS, n)], axis=1)
    response = np.stack([FIRST_SYMBOL + rng.integers(0, NUM_SYMBOLS, n), np.full(n, EOS)], axis=1)
    return lm_star.response_sequences(jnp.asarray(prompts, jnp.int32), None, jnp.asarray(response, jnp.int32),
                                      jnp.ones((n, 2), jnp.float32))


def test_response_sequences_mark_exactly_the_valid_response_tokens():
    # row 0: prompt left-padded by one, response "5 EOS" then padding; row 1: full prompt, response "3 4 EOS"
    prompts = jnp.array([[PAD, BOS, 3], [BOS, 4, 6]], jnp.int32)
    prompt_mask = jnp.array([[0, 1, 1], [1, 1, 1]], bool)
    response = jnp.array([[5, EOS, PAD], [3, 4, EOS]], jnp.int32)
    mask = jnp.array([[1, 1, 0], [1, 1, 1]], jnp.float32)
    tokens, kv_mask, positions, loss_mask = lm_star.response_sequences(prompts, prompt_mask, response, mask)
    np.testing.assert_array_equal(tokens, [[PAD, BOS, 3, 5, EOS, PAD], [BOS, 4, 6, 3, 4, EOS]])
    np.testing.assert_array_equal(kv_mask, [[0, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])
    # RoPE positions count real tokens: row 0's BOS is at position 0, its response starts at 2
    np.testing.assert_array_equal(positions, [[0, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5]])
    np.testing.assert_array_equal(loss_mask, [[0, 0, 0, 1, 1, 0], [0, 0, 0, 1, 1, 1]])


def test_kept_first_order_is_a_permutation_with_the_kept_pairs_first():
    weight = jnp.array([0, 1, 0, 0, 1, 1, 0, 0], jnp.float32)
    order = np.asarray(lm_star._kept_first_order(jax.random.key(3), weight))
    assert sorted(order.tolist()) == list(range(8))
    assert set(order[:3].tolist()) == {1, 4, 5}


fit_jit = jax.jit(lm_star.fit, static_argnums=(0, 1), static_argnames=("epochs", "batch_size"))


@pytest.mark.parametrize("kept, batch, epochs", [(3, 2, 2), (0, 4, 1), (8, 4, 1)])
def test_fit_makes_ceil_kept_over_batch_updates_per_epoch(kept, batch, epochs):
    weight = jnp.asarray(np.arange(8) < kept, jnp.float32)
    state = lm_star.FitState(params=PARAMS, opt=TX.init(PARAMS))
    new, metrics = fit_jit(MODEL, TX, state, jax.random.key(1), _seqs(8), weight, epochs=epochs, batch_size=batch)
    updates = epochs * -(-kept // batch)
    assert _count(new.opt) == updates
    assert float(metrics["fit_updates"]) == updates
    if kept == 0:  # nothing kept: not one parameter moves (no Adam momentum step either)
        jax.tree.map(np.testing.assert_array_equal, new.params, PARAMS)


def test_one_kept_pair_in_a_full_batch_equals_one_ntp_step_on_that_pair_alone():
    seqs = _seqs(4)
    weight = jnp.array([0, 0, 1, 0], jnp.float32)
    state = lm_star.FitState(params=PARAMS, opt=TX.init(PARAMS))
    new, _ = fit_jit(MODEL, TX, state, jax.random.key(2), seqs, weight, epochs=1, batch_size=4)
    tokens, kv_mask, positions, loss_mask = (x[2:3] for x in seqs)
    want, _, _ = jax.jit(ntp.ntp_step, static_argnums=(0, 1))(MODEL, TX, PARAMS, TX.init(PARAMS), tokens, loss_mask,
                                                              kv_mask_BxT=kv_mask, positions_BxT=positions)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), new.params, want)


def _sample_prompts(key, hp, n):
    symbol = FIRST_SYMBOL + jax.random.randint(key, (n,), 0, NUM_SYMBOLS)
    return jnp.stack([jnp.full((n,), BOS), symbol], axis=1).astype(jnp.int32), None, {"symbol": symbol}


def _score(problems, response_NxT, mask_NxT):
    return {"reward": (response_NxT[:, 0] == problems["symbol"]).astype(jnp.float32),
            "first_is_eos": (response_NxT[:, 0] == EOS).astype(jnp.float32)}


def test_star_rounds_learn_the_one_token_task():
    """Reward 1 iff the first response token repeats the prompt's symbol: a random decoder succeeds
    w.p. ~1/7; STaR keeps the successes and fits them, so greedy success must reach >= 0.9."""
    task = lm_rl.RLTask(sample_prompts=_sample_prompts, score=_score)
    sampler = sampling.SamplerSpec(max_new_tokens=2, eos_id=EOS, pad_id=PAD)
    spec = lm_star.StarSpec(prompts_per_round=64, epochs=2, batch_size=16)
    hp = lm_runs.RLHp(seed=jnp.int32(0), lr_scale=jnp.float32(1.0), temperature=jnp.float32(1.0),
                      top_p=jnp.float32(1.0), init_params=PARAMS)
    state = lm_rl.TrainState(PARAMS, TX.init(PARAMS), jnp.int32(0))

    @jax.jit
    def run(state):
        return jax.lax.scan(lambda st, _: lm_star.star_step(MODEL, sampler, spec, TX, task, st, hp), state, None,
                            length=12)

    state, metrics = run(state)
    metrics = jax.device_get(metrics)
    np.testing.assert_array_equal(metrics["kept"], metrics["reward"])  # kept = the pairs with reward 1
    assert int(state.step) == 12
    assert metrics["reward"][0] < 0.4
    prompts, _, problems = _sample_prompts(jax.random.key(7), hp, 64)
    greedy = lm_eval.greedy_scores(MODEL, sampler, task.score, state.params, prompts, None, problems)
    assert float(jnp.mean(greedy["reward"])) >= 0.9, metrics["reward"]
