"""NTP pre-training and evaluation of the AR-linear parity learner on D(p_cot) (Tsilivis et al. 2510.11495).

Shared by the experiments that pretrain this model (parity-threshold: NTP alone; parity-star: NTP,
then STaR or policy gradient). `train_ntp` is spec §2.2's online SGD with per-head horizons: heads 1
and 2a see mixture samples of D(p_cot), the chain heads see long samples only (a separate long stream
is the same in distribution as the long samples of a mixture stream, and gives every p_cot the same
chain horizon). `evaluate` gives the greedy, sampled and exact metrics of EVAL_METRICS on fixed
prompts. Both are written for one run; the harness vmaps them over runs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.models import ar_linear as ar
from theoryrl.tasks import parity

# acc: greedy final answer correct (r_e2e of the greedy output); greedy_long / sampled_long: the output
# is the chain; sampled_{long,short}_correct: r_cot of tau = 1 samples split by length; p_first_x1:
# mean over x of P(y_1 = x_1); p_eos_x1: mean of P(EOS | y_1 = x_1); pi_{long,short}_correct: exact
# model probabilities of the correct chain / short answer, mean over x.
EVAL_METRICS = ("acc", "greedy_long", "sampled_long", "sampled_long_correct", "sampled_short_correct",
                "p_first_x1", "p_eos_x1", "pi_long_correct", "pi_short_correct")


def _demos(batch: parity.ParityBatch):
    return batch.x, batch.outputs, batch.length


def train_ntp(state: ar.SGDState, key, d: int, p_cot, head_steps: int, chain_steps: int,
              hyper: ar.SGDHyper) -> ar.SGDState:
    """NTP on D(p_cot): heads 1/2a on `head_steps` mixture samples, chain heads on `chain_steps`
    long samples (batch 1, fresh samples every step)."""
    mix = lambda k: _demos(parity.sample(k, d, p_cot, 1))  # noqa: E731
    long = lambda k: _demos(parity.sample(k, d, 1.0, 1))  # noqa: E731
    state, _ = ar.train_online(state, jax.random.fold_in(key, 0), mix, head_steps, hyper, ("head",))
    state, _ = ar.train_online(state, jax.random.fold_in(key, 1), long, chain_steps, hyper, ("chain",))
    return state


def evaluate(params: ar.ARParams, key, x_MxD) -> dict:
    """EVAL_METRICS of the AR-linear model on prompts x. The greedy and sampled decodes are one
    vmapped call over tau in {0, 1} (one program, not two)."""
    m, d = x_MxD.shape
    keys_2xM = jax.vmap(lambda k: jax.random.split(k, m))(jax.random.split(key))
    decode = jax.vmap(jax.vmap(ar.decode, (None, 0, 0, None)), (None, 0, None, 0))
    out_2xMxK, len_2xM = decode(params, keys_2xM, x_MxD, jnp.array([0.0, 1.0]))
    (g_out, s_out), (g_len, s_len) = out_2xMxK, len_2xM
    r_cot = parity.rewards("cot", x_MxD, s_out, s_len)
    targets = jax.vmap(jax.vmap(parity.targets, (0, None)), (None, 0))(x_MxD, jnp.array([True, False]))
    log_prob = jax.vmap(jax.vmap(ar.log_prob, (None, 0, 0, 0)), (None, None, 0, 0))
    pi_long, pi_short = jnp.mean(jnp.exp(log_prob(params, x_MxD, *targets)), axis=1)
    x = x_MxD.astype(jnp.float32)
    x1 = x[:, 0]
    return {"acc": jnp.mean(parity.rewards("e2e", x_MxD, g_out, g_len)),
            "greedy_long": jnp.mean(g_len == d),
            "sampled_long": jnp.mean(s_len == d),
            "sampled_long_correct": jnp.mean(r_cot * (s_len == d)),
            "sampled_short_correct": jnp.mean(r_cot * (s_len == 1)),
            "p_first_x1": jnp.mean(jax.nn.sigmoid(x1 * (x @ params.w_first))),
            "p_eos_x1": jnp.mean(jax.nn.sigmoid(jax.vmap(ar.stop_score, (None, 0, 0))(params, x, x1))),
            "pi_long_correct": pi_long, "pi_short_correct": pi_short}


def sgd_hyper(lam: float, lam_chain: float, avg_power: float) -> ar.SGDHyper:
    """A run's SGD knobs as float32 host scalars, to be held by its traced hp (the harness stacks
    them over runs)."""
    return ar.SGDHyper(np.float32(lam), np.float32(lam_chain), np.float32(avg_power))
