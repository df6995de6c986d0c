"""Host-side builders of DAG-lite mixture knobs, each checked before any compute (one-line ConfigError).

Spec `dag_arithmetic.md` §6.1, §11.3-11.8 (Zhang, Neubig and Yue, arXiv 2512.07783): pre-training
mixes op bands with shares (easy/medium/hard 20/30/50), the experiments name disjoint ID / edge / hard
bands, and the context study puts a small share of context B into pre-training. A band is an
inclusive (lo, hi) pair of ops inside the spec's range 2..op_max; bands of one mixture, and named
bands such as ID / edge / hard, must not overlap (an op in two bands would count twice).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from theoryrl.core.config import is_finite, is_int, require
from theoryrl.tasks.dag import tokens as tk
from theoryrl.tasks.dag.generate import DagParams, DagSpec

SUM_TOL = 1e-6


def check_band(spec: DagSpec, band, knob: str = "band") -> tuple[int, int]:
    """An inclusive (lo, hi) op band: non-empty and inside the generator's range 2..op_max."""
    ok = isinstance(band, (tuple, list)) and len(band) == 2 and all(is_int(b) for b in band)
    require(ok, knob, band, "a pair (lo, hi) of integers")
    lo, hi = band
    require(lo <= hi, knob, band, "a non-empty band: lo <= hi")
    require(2 <= lo and hi <= spec.op_max, knob, band, f"ops inside the generator's range 2..{spec.op_max}")
    return int(lo), int(hi)


def check_bands(spec: DagSpec, bands: Mapping[str, Sequence[int]], disjoint: bool = True) -> dict:
    """Named bands ({"id": (2, 8), "edge": (9, 11), ...}), each valid, pairwise disjoint if asked."""
    require(isinstance(bands, Mapping) and len(bands) > 0, "bands", bands, "a non-empty mapping name -> (lo, hi)")
    out = {name: check_band(spec, band, f"bands.{name}") for name, band in bands.items()}
    names = list(out)
    for i, a in enumerate(names):
        for b in names[i + 1:] if disjoint else ():
            (alo, ahi), (blo, bhi) = out[a], out[b]
            require(ahi < blo or bhi < alo, f"bands.{b}", out[b], f"a band disjoint from bands.{a} = {out[a]}")
    return out


def check_share(value, knob: str) -> float:
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    require(is_finite(value) and 0.0 <= value <= 1.0, knob, value, "a share in [0, 1]")
    return float(value)


def op_probs(spec: DagSpec, mixture: Sequence[tuple[Sequence[int], float]]) -> np.ndarray:
    """Distribution over op 0..op_max from [((lo, hi), share), ...]: disjoint bands, shares in [0, 1]
    summing to 1, each share spread uniformly over its band (§6.1's presets)."""
    require(isinstance(mixture, (tuple, list)) and len(mixture) > 0, "op_mixture", mixture,
            "a non-empty list of ((lo, hi), share)")
    for i, m in enumerate(mixture):
        require(isinstance(m, (tuple, list)) and len(m) == 2, f"op_mixture.{i}", m, "a pair ((lo, hi), share)")
    bands = check_bands(spec, {f"{i}": m[0] for i, m in enumerate(mixture)})
    shares = [check_share(m[1], f"op_mixture.{i}.share") for i, m in enumerate(mixture)]
    require(abs(sum(shares) - 1.0) < SUM_TOL, "op_mixture", shares, "shares summing to 1")
    probs = np.zeros(spec.op_max + 1)
    for (lo, hi), share in zip(bands.values(), shares):
        probs[lo:hi + 1] += share / (hi - lo + 1)
    return probs


def _check_probs(probs, size: int, knob: str, zero_below: int = 0) -> np.ndarray:
    arr = np.asarray(probs, dtype=np.float64)
    require(arr.shape == (size,), knob, np.asarray(probs).tolist(), f"a vector of {size} probabilities")
    require(bool(np.all(np.isfinite(arr)) and np.all((arr >= 0) & (arr <= 1))), knob, arr.tolist(),
            "shares in [0, 1]")
    require(abs(arr.sum() - 1.0) < SUM_TOL, knob, arr.tolist(), "entries summing to 1")
    require(bool(np.all(arr[:zero_below] == 0)), knob, arr.tolist(), f"no mass below op {zero_below}")
    return arr


def context_probs(b_share: float = 0.0, *, a: int = 0, b: int = 1) -> np.ndarray:
    """Context a with share 1 - b_share, context b with b_share (§11.8's exposure knob)."""
    check_share(b_share, "context_b_share")
    require(is_int(a) and is_int(b) and a != b and 0 <= min(a, b) and max(a, b) < tk.NUM_CONTEXTS,
            "contexts", (a, b), f"two distinct contexts in 0..{tk.NUM_CONTEXTS - 1}")
    probs = np.zeros(tk.NUM_CONTEXTS)
    probs[a], probs[b] = 1.0 - b_share, b_share
    return probs


def distractor_probs(spec: DagSpec, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Distractor count uniform over lo..hi (default 0..max_distractors)."""
    hi = spec.max_distractors if hi is None else hi
    require(is_int(lo) and is_int(hi) and 0 <= lo <= hi <= spec.max_distractors, "distractors", (lo, hi),
            f"a non-empty band inside 0..{spec.max_distractors}")
    probs = np.zeros(spec.max_distractors + 1)
    probs[lo:hi + 1] = 1.0 / (hi - lo + 1)
    return probs


def make_params(spec: DagSpec, ops, contexts=None, distractors=None) -> DagParams:
    """DagParams from checked host vectors; `ops` is a probability vector over 0..op_max or a
    mixture list for `op_probs`; contexts default to context 0 only, distractors to uniform."""
    if isinstance(ops, (tuple, list)) and ops and isinstance(ops[0], (tuple, list)):
        ops = op_probs(spec, ops)
    ops = _check_probs(ops, spec.op_max + 1, "op_probs", zero_below=2)
    contexts = _check_probs(context_probs() if contexts is None else contexts, tk.NUM_CONTEXTS, "context_probs")
    dis = _check_probs(distractor_probs(spec) if distractors is None else distractors, spec.max_distractors + 1,
                       "distractor_probs")
    return DagParams(jnp.asarray(ops, jnp.float32), jnp.asarray(contexts, jnp.float32), jnp.asarray(dis, jnp.float32))
