"""Autoregressive linear parity learner: a chain of linear predictors (spec parity_cot.md §2.2).

Outputs are int32 code vectors of K = d + 1 slots: bits +1 / -1, then `EOS_CODE` (= 2, the task's
EOS code; models never import tasks, so the value is repeated here and checked in the tests).
The model emits either a short output (y_1, EOS) or a long one (y_1..y_d, EOS):

- head 1 ("first"): score <w_first, x>;              P(y_1 = +1) = sigmoid(score / tau)
- head 2a ("stop"): score <w_2a, phi_2(x, y_1)> + b; P(EOS after y_1) = sigmoid(score / tau)
- head l = 2..d ("chain"): score <w_l, phi_l(x, y_1..y_{l-1})>; P(y_l = +1) = sigmoid(score / tau);
  after y_d: EOS.

Features (spec §2.2): phi_l = [x, y_1..y_{l-1}, y_{l-1} x] (all tokens so far, then the last token
times each input bit), dimension 2d + l - 1; `phi` builds it. The parameters store each head's
weights in three blocks that match those three parts, so no feature vector is ever concatenated
(on XLA:CPU in jaxlib 0.10.2 the YNNPACK reduce fusion silently miscomputes some reductions of
concatenated features, see tests/unit/test_ar_linear.py): stop_x/stop_y/stop_p (+ stop_b) for head
2a, and rows l - 2 of chain_x [d-1, d], chain_y [d-1, d-1] (entries j >= l - 1 never see a token and
stay 0) and chain_p [d-1, d] for head l. `head_weights` returns a head's flat weight vector in the
spec's order. The next prefix parity y_l = y_{l-1} x_l is the feature y_{l-1} x_l, so every chain
head can be exact. A leap-2 chain (y_{l-1} x_{2l-1} x_{2l}) is NOT linear in these features (with
the other bits fixed it is an XOR of two bits), so this model learns the full chain only.

Training (spec §2.2, Algorithms 2/3): logistic loss with L2 penalty (lam / 2)|w|^2 per head (the
stop bias included), SGD with eta_t = 1/(lam t) from the given start (w^(1) = 0 for pretraining),
iterate averaging: avg_t = avg_{t-1} + (1 + k)/(t + k) (w^(t) - avg_{t-1}) (k = 0: the uniform mean
of w^(1..T), UML Thm 14.11; k = 1: weights proportional to t; see `SGDHyper`). The model is the
average. Per-head horizons: heads 1 and 2a step once per sample; the chain heads step only on long
samples, with their own counter. With batch B > 1 a step averages the B gradients (chain heads: of
the long samples among them, and steps only when there is one): a documented deviation for speed;
B = 1 is the exact per-sample algorithm.
"""
from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp

EOS_CODE, PAD_CODE = 2, 0
HEAD_FIELDS = ("w_first", "stop_x", "stop_y", "stop_p", "stop_b")
CHAIN_FIELDS = ("chain_x", "chain_y", "chain_p")
GROUPS = ("head", "chain")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ARParams:
    w_first: jax.Array  # [d]        head 1 over x
    stop_x: jax.Array  # [d]         head 2a over x
    stop_y: jax.Array  # []          head 2a over y_1
    stop_p: jax.Array  # [d]         head 2a over y_1 x
    stop_b: jax.Array  # []          head 2a bias
    chain_x: jax.Array  # [d-1, d]   head l (row l-2) over x
    chain_y: jax.Array  # [d-1, d-1] head l over y_1..y_{l-1} (columns >= l-1 unused)
    chain_p: jax.Array  # [d-1, d]   head l over y_{l-1} x


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SGDState:
    w: ARParams  # current iterate w^(t+1)
    avg: ARParams  # running average of w^(1..t) (the model)
    t_head: jax.Array  # int32: steps taken by heads 1 and 2a
    t_chain: jax.Array  # int32: steps taken by the chain heads (long samples only)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SGDHyper:
    """Traced SGD knobs: lam (heads 1, 2a), lam_chain (chain heads), avg_power k of the averaging."""

    lam: jax.Array
    lam_chain: jax.Array
    avg_power: jax.Array

    @staticmethod
    def make(lam, lam_chain=None, avg_power=0.0) -> "SGDHyper":
        f32 = partial(jnp.asarray, dtype=jnp.float32)
        return SGDHyper(f32(lam), f32(lam if lam_chain is None else lam_chain), f32(avg_power))


def init_params(d: int) -> ARParams:
    if d < 2:
        raise ValueError(f"the AR-linear model needs d >= 2, got {d}")
    z = jnp.zeros
    return ARParams(z((d,)), z((d,)), z(()), z((d,)), z(()), z((d - 1, d)), z((d - 1, d - 1)), z((d - 1, d)))


def init_sgd(params: ARParams) -> SGDState:
    """SGD from `params` with fresh horizons (t = 0). With eta_1 = 1/lam the first step replaces w
    by -grad/lam, so a restart from any params is a fresh fit up to its first gradient."""
    return SGDState(params, params, jnp.int32(0), jnp.int32(0))


def _check_example(params: ARParams, x_D, outputs_K=None):
    d = params.w_first.shape[0]
    if x_D.shape != (d,):
        raise ValueError(f"x must be [d] = [{d}] (one example; vmap for batches), got {x_D.shape}")
    if outputs_K is not None and outputs_K.shape != (d + 1,):
        raise ValueError(f"outputs must be [d + 1] = [{d + 1}], got {outputs_K.shape}")


# ----------------------------------------------------------------------------------------------
# features in the spec's order (reference; the model works on the blocks)


def phi(x_D: jax.Array, y_prefix: jax.Array) -> jax.Array:
    """phi_l(x, y_1..y_{l-1}) = [x, y_1..y_{l-1}, y_{l-1} x] for l - 1 = len(y_prefix) >= 1."""
    x, y = jnp.asarray(x_D, jnp.float32), jnp.asarray(y_prefix, jnp.float32)
    return jnp.concatenate([x, y, y[-1] * x])


def head_weights(params: ARParams, head) -> jax.Array:
    """Flat weights of head 1 (over x), "2a" (over phi_2; bias separate) or l = 2..d (over phi_l)."""
    if head == 1:
        return params.w_first
    if head == "2a":
        return jnp.concatenate([params.stop_x, params.stop_y[None], params.stop_p])
    h = head - 2
    return jnp.concatenate([params.chain_x[h], params.chain_y[h, : h + 1], params.chain_p[h]])


# ----------------------------------------------------------------------------------------------
# scores and exact log-probabilities (one example)


def _seen(d: int) -> jax.Array:
    """[d-1, d-1] mask: head row h sees y_{j+1} iff j <= h."""
    return (jnp.arange(d - 1)[None, :] <= jnp.arange(d - 1)[:, None]).astype(jnp.float32)


def stop_score(params: ARParams, x: jax.Array, y1) -> jax.Array:
    return jnp.dot(params.stop_x, x) + params.stop_y * y1 + y1 * jnp.dot(params.stop_p, x) + params.stop_b


def scores(params: ARParams, x_D: jax.Array, y_D: jax.Array):
    """Teacher-forced scores (first, stop, chain [d - 1]) for output bits y (float +-1)."""
    x = x_D.astype(jnp.float32)
    d = x.shape[0]
    y = y_D.astype(jnp.float32)
    s_chain = params.chain_x @ x + (params.chain_y * _seen(d)) @ y[: d - 1] + y[: d - 1] * (params.chain_p @ x)
    return jnp.dot(params.w_first, x), stop_score(params, x, y[0]), s_chain


def _bits(outputs_K: jax.Array, d: int) -> jax.Array:
    """Output slots 0..d-1 as float bits, 0 where the slot is not a bit."""
    y = outputs_K[:d]
    return jnp.where(jnp.abs(y) == 1, y, 0).astype(jnp.float32)


def log_prob(params: ARParams, x_D: jax.Array, outputs_K: jax.Array, length, temperature=1.0) -> jax.Array:
    """Exact log pi(y | x) at sampling temperature tau; -inf for outputs the model cannot emit."""
    _check_example(params, x_D, outputs_K)
    d = x_D.shape[0]
    y = _bits(outputs_K, d)
    s_first, s_stop, s_chain = (s / temperature for s in scores(params, x_D, y))
    lp_first = jax.nn.log_sigmoid(y[0] * s_first)
    lp_short = lp_first + jax.nn.log_sigmoid(s_stop)
    lp_long = lp_first + jax.nn.log_sigmoid(-s_stop) + jnp.sum(jax.nn.log_sigmoid(y[1:] * s_chain))
    bits_ok = jnp.abs(outputs_K[:d]) == 1
    short_ok = (length == 1) & bits_ok[0] & (outputs_K[1] == EOS_CODE)
    long_ok = (length == d) & jnp.all(bits_ok) & (outputs_K[d] == EOS_CODE)
    return jnp.where(short_ok, lp_short, jnp.where(long_ok, lp_long, -jnp.inf))


# ----------------------------------------------------------------------------------------------
# decoding (one example)


def _positive(score, u, temperature):
    """Sampled sign: P(+) = sigmoid(score / tau) via tau * logit(u) < score; tau = 0 is greedy (score > 0)."""
    threshold = jnp.where(temperature > 0, temperature * jax.scipy.special.logit(u), 0.0)
    return score > threshold


def decode(params: ARParams, key: jax.Array, x_D: jax.Array, temperature=1.0) -> tuple[jax.Array, jax.Array]:
    """Sample (temperature > 0) or greedily decode (temperature = 0) one output: (codes [d + 1], length)."""
    _check_example(params, x_D)
    d = x_D.shape[0]
    x = x_D.astype(jnp.float32)
    u = jax.random.uniform(key, (d + 1,))
    y1 = jnp.where(_positive(jnp.dot(params.w_first, x), u[0], temperature), 1.0, -1.0)
    stop = _positive(stop_score(params, x, y1), u[1], temperature)
    base_H, prod_H, chain_y = params.chain_x @ x, params.chain_p @ x, params.chain_y * _seen(d)

    def step(y_D, h):  # head row h emits y_{h+2} from y_1..y_{h+1}
        s = base_H[h] + jnp.dot(chain_y[h], y_D[: d - 1]) + y_D[h] * prod_H[h]
        return y_D.at[h + 1].set(jnp.where(_positive(s, u[h + 2], temperature), 1.0, -1.0)), None

    y_full, _ = jax.lax.scan(step, jnp.zeros((d,)).at[0].set(y1), jnp.arange(d - 1))
    long_out = jnp.append(y_full.astype(jnp.int32), jnp.int32(EOS_CODE))
    short_out = jnp.full((d + 1,), PAD_CODE, jnp.int32).at[0].set(y1.astype(jnp.int32)).at[1].set(EOS_CODE)
    return jnp.where(stop, short_out, long_out), jnp.where(stop, 1, d).astype(jnp.int32)


# ----------------------------------------------------------------------------------------------
# SGD (per-head logistic loss + L2, eta_t = 1/(lam t), iterate averaging)


def _logistic(score, label):
    """(loss, d loss / d score) of softplus(-label * score)."""
    return jax.nn.softplus(-label * score), -label * jax.nn.sigmoid(-label * score)


def example_grads(params: ARParams, x_D: jax.Array, outputs_K: jax.Array, length):
    """Loss gradients (no L2) of every head on one demonstration (the chain part is meaningful only
    for a long one). Returns (grads: ARParams, loss of heads 1 + 2a, chain loss (0 if short), is_long)."""
    _check_example(params, x_D, outputs_K)
    d = x_D.shape[0]
    x = x_D.astype(jnp.float32)
    y = _bits(outputs_K, d)
    is_long = length == d
    s_first, s_stop, s_chain = scores(params, x, y)
    l_first, g_first = _logistic(s_first, y[0])
    l_stop, g_stop = _logistic(s_stop, jnp.where(is_long, -1.0, 1.0))
    l_chain, g_H = _logistic(s_chain, y[1:])
    g_Hx1 = g_H[:, None]
    grads = ARParams(w_first=g_first * x, stop_x=g_stop * x, stop_y=g_stop * y[0], stop_p=g_stop * y[0] * x,
                     stop_b=g_stop, chain_x=g_Hx1 * x[None, :], chain_y=g_Hx1 * _seen(d) * y[None, : d - 1],
                     chain_p=(g_H * y[: d - 1])[:, None] * x[None, :])
    return grads, l_first + l_stop, jnp.where(is_long, jnp.sum(l_chain), 0.0), is_long


def _sgd_update(w, avg, g, t_new, lam, avg_power, active):
    """If `active`: avg_t = avg_{t-1} + (1+k)/(t+k) (w^(t) - avg_{t-1}), then w^(t+1) = w^(t) -
    (g + lam w^(t)) / (lam t)."""
    t = jnp.maximum(t_new, 1).astype(jnp.float32)
    new_avg = avg + (w - avg) * (1.0 + avg_power) / (t + avg_power)
    new_w = (1.0 - 1.0 / t) * w - g / (lam * t)
    return jnp.where(active, new_w, w), jnp.where(active, new_avg, avg)


def sgd_step(state: SGDState, x_BxD, outputs_BxK, length_B, weight_B, hyper: SGDHyper, groups=GROUPS):
    """One SGD step on B demonstrations with 0/1 weights (weight 0 = absent). `groups` (static):
    which head groups learn, "head" (heads 1 and 2a, every sample) and/or "chain" (heads 2..d, long
    samples only); a group left out is not computed at all. Returns (state, summed loss)."""
    if x_BxD.ndim != 2 or outputs_BxK.ndim != 2 or length_B.ndim != 1 or weight_B.ndim != 1:
        raise ValueError(f"sgd_step wants x [B, d], outputs [B, d + 1], length [B], weight [B]; got "
                         f"{x_BxD.shape}, {outputs_BxK.shape}, {length_B.shape}, {weight_B.shape}")
    if not groups or any(g not in GROUPS for g in groups):
        raise ValueError(f"groups must be a non-empty subset of {GROUPS}, got {groups!r}")
    grads, lh_B, lc_B, long_B = jax.vmap(example_grads, (None, 0, 0, 0))(state.w, x_BxD, outputs_BxK, length_B)
    m_B = weight_B.astype(jnp.float32)
    mc_B = m_B * long_B
    t_head = state.t_head + ((jnp.sum(m_B) > 0) & ("head" in groups)).astype(jnp.int32)
    t_chain = state.t_chain + ((jnp.sum(mc_B) > 0) & ("chain" in groups)).astype(jnp.int32)
    new_w, new_avg = dict(vars(state.w)), dict(vars(state.avg))
    loss = jnp.float32(0.0)
    for group, fields, m, t, lam, loss_B in (("head", HEAD_FIELDS, m_B, t_head, hyper.lam, lh_B),
                                             ("chain", CHAIN_FIELDS, mc_B, t_chain, hyper.lam_chain, lc_B)):
        if group not in groups:
            continue
        count = jnp.sum(m)
        for name in fields:
            g = jnp.tensordot(m, getattr(grads, name), axes=1) / jnp.maximum(count, 1.0)
            new_w[name], new_avg[name] = _sgd_update(new_w[name], new_avg[name], g, t, lam, hyper.avg_power,
                                                     count > 0)
        loss = loss + jnp.dot(m, loss_B)
    return SGDState(ARParams(**new_w), ARParams(**new_avg), t_head, t_chain), loss


def train_online(state: SGDState, key: jax.Array, sample_fn, steps: int, hyper: SGDHyper, groups=GROUPS):
    """`steps` SGD steps of the head `groups`, each on a fresh batch `sample_fn(key_t) ->
    (x [B, d], outputs, length)` with key_t = fold_in(key, t). Returns (state, mean loss per sample)."""

    def body(carry, t):
        st, total = carry
        x, outputs, length = sample_fn(jax.random.fold_in(key, t))
        st, loss = sgd_step(st, x, outputs, length, jnp.ones(x.shape[0]), hyper, groups)
        return (st, total + loss), x.shape[0]

    (state, total), sizes = jax.lax.scan(body, (state, jnp.float32(0.0)), jnp.arange(steps))
    return state, total / jnp.sum(sizes)


def fit(params: ARParams, key: jax.Array, x_NxD, outputs_NxK, length_N, weight_N, hyper: SGDHyper, *,
        epochs: int, batch: int) -> ARParams:
    """NTP on a fixed weighted dataset (e.g. STaR's kept pairs): `epochs` shuffled passes of
    batch-`batch` SGD started at `params` with fresh horizons; returns the averaged iterate. A head
    group that sees no sample keeps its start params. N must be a multiple of `batch`; weight-0
    samples are skipped (they do not advance t)."""
    n = x_NxD.shape[0]
    if n % batch:
        raise ValueError(f"fit needs N = {n} to be a multiple of batch = {batch}")

    def epoch(st, e):
        perm = jax.random.permutation(jax.random.fold_in(key, e), n).reshape(n // batch, batch)

        def body(s, idx):
            return sgd_step(s, x_NxD[idx], outputs_NxK[idx], length_N[idx], weight_N[idx], hyper)[0], None

        return jax.lax.scan(body, st, perm)[0], None

    state, _ = jax.lax.scan(epoch, init_sgd(params), jnp.arange(epochs))
    fitted = {}
    for fields, t in ((HEAD_FIELDS, state.t_head), (CHAIN_FIELDS, state.t_chain)):
        fitted.update({name: jnp.where(t > 0, getattr(state.avg, name), getattr(params, name)) for name in fields})
    return ARParams(**fitted)


def model(state: SGDState) -> ARParams:
    """The trained predictor: the averaged iterate."""
    return state.avg
