"""Theory predictions for parity with short/long CoT mixtures (spec parity_cot.md §1, §4).

With long-demonstration fraction p (d >= 2):
- Lemma 1: the logistic-optimal first head puts weight ln((1+p)/(1-p)) on x_1, so
  P(y_1 = x_1) = (1 + p)/2 (a short answer is independent of x_1).
- Stop head: P(EOS | y_1 = x_1) = (1 - p)/(1 + p), P(continue | y_1 = x_1) = 2p/(1 + p), and
  P(EOS | y_1 != x_1) = 1. Greedy decoding continues the chain iff 2p/(1+p) > 1/2 iff p > 1/3.
- STaR with r_cot on a calibrated sampler keeps a correct long chain w.p. p and a correct short
  answer w.p. (1 - p)/2, so the kept long fraction is p' = 2p/(1 + p): the odds p/(1-p) double,
  p_n = 2^n p_0 / (2^n p_0 + 1 - p_0).
- Round count: greedy goes long at the first n with p_n > 1/3, i.e. 2^n > (1 - p_0)/(2 p_0) =: r.
  This is ceil(log2 r) except when r is an exact power of two 2^k (k >= 0): then p_k = 1/3 exactly,
  greedy is tied at round k (we count a tie as short, as "continue iff p > 1/3" does), and the
  count is k + 1 = ceil(log2 r) + 1. For r < 1 (p_0 > 1/3) the count is 0.
- Finite lam: a chain head's target is a single feature (y_{l-1} x_l, every other feature is
  uncorrelated with it), so the L2-regularised population optimum is w* e_k with
  sigmoid(-w*) = lam w*; a sampled chain is then fully correct with probability sigmoid(w*)^(d-1)
  (0.78 at lam = 1e-3, d = 50), a bias of Theorem 1's long-chain calibration.

`calibrated_decode` is the exactly calibrated sampler of spec §5 #2 (no learning noise): first
token x_1 w.p. (1+q)/2 (else -x_1); after x_1 the correct chain w.p. 2q/(1+q) (else EOS); after
-x_1 always EOS. It emits the correct long chain w.p. q and a short answer w.p. 1 - q, which is
correct w.p. 1/2.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.tasks import parity

GREEDY_THRESHOLD = 1.0 / 3.0


def first_head_weight(p):
    """Lemma 1: the calibrated first head's weight on x_1, ln((1+p)/(1-p))."""
    return np.log((1.0 + p) / (1.0 - p))


def p_first_is_x1(p):
    return (1.0 + p) / 2.0


def p_eos_given_first_x1(p):
    return (1.0 - p) / (1.0 + p)


def greedy_goes_long(p) -> bool:
    return p > GREEDY_THRESHOLD


def greedy_accuracy(p):
    """Expected greedy accuracy of a calibrated model: 1 above the threshold, 1/2 below."""
    return np.where(np.asarray(p) > GREEDY_THRESHOLD, 1.0, 0.5)


def star_step(p):
    """One STaR round with r_cot on a calibrated sampler: p -> 2p / (1 + p)."""
    return 2.0 * p / (1.0 + p)


def star_closed_form(p0, n):
    """p_n = 2^n p0 / (2^n p0 + 1 - p0)."""
    two_n = 2.0 ** np.asarray(n, dtype=np.float64)
    return two_n * p0 / (two_n * p0 + 1.0 - p0)


def star_rounds(p0: float) -> int:
    """Smallest n >= 0 with 2^n > (1 - p0)/(2 p0), i.e. p_n > 1/3 (exact in float64)."""
    if not 0.0 < p0 < 1.0:
        raise ValueError(f"p0 must be in (0, 1), got {p0!r}")
    r = (1.0 - p0) / (2.0 * p0)
    n = 0
    while 2.0 ** n <= r:
        n += 1
    return n


def star_rounds_log2(p0: float) -> int:
    """max(0, ceil(log2((1 - p0)/(2 p0)))): equals `star_rounds` unless r is a power of two."""
    return max(0, math.ceil(math.log2((1.0 - p0) / (2.0 * p0))))


def star_long_fraction_se(p0: float, rounds: int, prompts: int) -> np.ndarray:
    """Delta-method standard error of the calibrated-sampler STaR long fraction q_n, n = 0..rounds.

    Given q_n, round n keeps about K = N (1 + q_n)/2 pairs and q_{n+1} is a binomial fraction with
    variance f(1 - f)/K, f = 2q/(1+q); the error of q_n propagates through f'(q) = 2/(1 + q)^2.
    """
    var, out = 0.0, [0.0]
    p = p0
    for _ in range(rounds):
        f = star_step(p)
        var = (2.0 / (1.0 + p) ** 2) ** 2 * var + f * (1.0 - f) / (prompts * (1.0 + p) / 2.0)
        out.append(math.sqrt(var))
        p = f
    return np.array(out)


def chain_head_weight(lam: float) -> float:
    """w* with sigmoid(-w*) = lam w*: a chain head's L2-regularised population optimum (bisection)."""
    if lam <= 0:
        raise ValueError(f"lam must be > 0, got {lam!r}")
    lo, hi = 0.0, 1.0 / lam  # lam w - sigmoid(-w) is increasing, < 0 at 0 and > 0 at 1/lam
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if lam * mid - 1.0 / (1.0 + math.exp(mid)) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def long_correct_factor(lam: float, d: int) -> float:
    """P(sampled chain fully correct | the model continues after y_1 = x_1) at the regularised optimum."""
    return (1.0 / (1.0 + math.exp(-chain_head_weight(lam)))) ** (d - 1)


# ----------------------------------------------------------------------------------------------
# the exactly calibrated sampler (one example; vmap for batches)


def calibrated_decode(key: jax.Array, x_D: jax.Array, q) -> tuple[jax.Array, jax.Array]:
    """One output of the calibrated sampler with long fraction q: (codes [d + 1], length)."""
    u_first, u_stop = jax.random.uniform(key, (2,))
    first_is_x1 = u_first < (1.0 + q) / 2.0
    go_long = first_is_x1 & (u_stop < 2.0 * q / (1.0 + q))
    return _calibrated_output(x_D, first_is_x1, go_long)


def calibrated_greedy(x_D: jax.Array, q) -> tuple[jax.Array, jax.Array]:
    """Greedy decoding of the calibrated sampler: x_1, then the chain iff q > 1/3 (ties: EOS)."""
    first_is_x1 = q > 0.0
    return _calibrated_output(x_D, first_is_x1, first_is_x1 & (q > GREEDY_THRESHOLD))


def _calibrated_output(x_D, first_is_x1, go_long):
    long_out, _ = parity.targets(x_D, True)
    first = jnp.where(first_is_x1, x_D[0], -x_D[0]).astype(jnp.int32)
    short_out = parity.pad_output(first[None], x_D.shape[0] + 1)
    return jnp.where(go_long, long_out, short_out), jnp.where(go_long, x_D.shape[0], 1).astype(jnp.int32)
