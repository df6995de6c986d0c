"""The FLOP accounting behind `bench lm`'s MFU, against hand-counted values."""
from theoryrl.benchmarks import lm
from theoryrl.models import transformer as tfm

SPEC = tfm.TransformerSpec(vocab_size=8, d_model=4, n_layers=2, n_heads=2, n_kv_heads=2, d_ff=8, max_len=16)


def test_sample_flops_count_the_cache_slots_each_decode_step_reads():
    params = SPEC.num_params()
    per_token = lambda keys: 2 * params + 4 * 2 * 4 * keys  # noqa: E731  2 layers, d_model 4
    prefill = 3 * 2 * per_token(2)  # 3 prompts of 2 tokens attend over 2 positions
    # one block: each of the 3 decode steps reads all 2 + 3 slots; 3 prompts x G 2 rows
    assert lm.sample_flops(SPEC, 3, 2, 2, 3) == prefill + 6 * 3 * per_token(5)
    # blocks of 2: steps 0 and 1 read 2 + 2 slots, step 2 reads 2 + 3
    assert lm.sample_flops(SPEC, 3, 2, 2, 3, cache_block=2) == prefill + 6 * (2 * per_token(4) + per_token(5))


def test_grpo_flops_add_one_forward_for_the_behaviour_pass():
    """2 prompts x G 2, prompt 2 + response 3 (sequence 5): the update is forward + backward = 3 forwards
    of 4 sequences x 5 tokens over 5 keys; the behaviour pass is a fourth."""
    params = SPEC.num_params()
    forward = 4 * 5 * (2 * params + 4 * 2 * 4 * 5)
    sample = lm.sample_flops(SPEC, 2, 2, 2, 3)
    assert lm.grpo_flops(SPEC, 2, 2, 2, 3, behaviour_pass=False) == sample + 3 * forward
    assert lm.grpo_flops(SPEC, 2, 2, 2, 3, behaviour_pass=True) == sample + 4 * forward


def test_reference_grpo_step_equals_the_fast_step():
    """The reference (separate behaviour pass) and `lm_rl.rl_step` (the update's own pass serves as
    behaviour) take the same two steps: same prompts and samples, loss, reward, parameters (float32
    rounding of two differently fused programs: 1e-6)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from theoryrl.benchmarks import reference_lm
    from theoryrl.rl import lm_rl, lm_runs, ntp, sampling

    spec = tfm.TransformerSpec(vocab_size=6, d_model=32, n_layers=1, n_heads=2, n_kv_heads=2, max_len=12)
    sampler = sampling.SamplerSpec(max_new_tokens=4, eos_id=1, pad_id=0)
    rl_spec = lm_rl.RLSpec(prompts_per_step=4, group_size=4)
    assert lm_rl.single_on_policy_update(rl_spec)  # so the fast step skips the behaviour pass
    tx = ntp.make_optimizer(ntp.OptimSpec(lr=1e-2, warmup_steps=0, schedule="constant"))
    task = lm._first_token_task(prompt_len=3, vocab=6)
    params = tfm.init_params(spec, jax.random.key(0))
    hp = lm_runs.RLHp(seed=jnp.int32(0), lr_scale=jnp.float32(1.0), temperature=jnp.float32(1.0),
                      top_p=jnp.float32(1.0), init_params=params)
    steps = {"fast": jax.jit(lambda st: lm_rl.rl_step(spec, sampler, rl_spec, tx, task, st, hp, params)),
             "ref": jax.jit(lambda st: reference_lm.grpo_step(spec, sampler, rl_spec, tx, task, st, hp))}
    results = {}
    for name, step in steps.items():
        state, metrics = lm_rl.TrainState(params, tx.init(params), jnp.int32(0)), []
        for _ in range(2):
            state, m = step(state)
            metrics.append(m)
        results[name] = (state, metrics)
    (fast, fast_metrics), (ref, ref_metrics) = results["fast"], results["ref"]
    assert 0 < float(fast_metrics[0]["reward"]) < 1  # some groups have non-zero advantages
    for a, b in zip(jax.tree.leaves(fast.params), jax.tree.leaves(ref.params), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    moved = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(fast.params), jax.tree.leaves(params)))
    assert moved > 1e-3  # the comparison is between two real updates
    for mf, mr in zip(fast_metrics, ref_metrics):
        for key in ("loss", "reward", "ratio_mean", "response_len"):
            np.testing.assert_allclose(mf[key], mr[key], atol=1e-6, err_msg=key)
