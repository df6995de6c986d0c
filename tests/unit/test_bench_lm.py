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
