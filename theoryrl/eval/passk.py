"""pass@k (unbiased), bootstrap intervals, solvable sets, ΔSE and accuracy histograms (host-side numpy).

Specs: `rl_algorithms.md` §6 and `rlvr_limits.md` §2. Per problem, n samples of which c pass:

    pass@k = 1 - C(n-c, k) / C(n, k)  (= 1 if n - c < k)
           = 1 - prod_{i=n-c+1..n} (1 - k/i)          (the stable product form, float64)

Every factor of the product lies in (0, 1] when n - c >= k, so it neither overflows (as the
binomials do for n = 1024) nor underflows the way a ratio of two products would. These functions
run on evaluation counts after sampling, never inside jit, so they are plain numpy.
"""
from __future__ import annotations

import numpy as np

# accuracy-histogram bins of rlvr_limits.md §2.3: 0, (0, 0.1], ..., (0.8, 0.9], (0.9, 1), 1
HISTOGRAM_LABELS = ("0",) + tuple(f"({j / 10:g},{(j + 1) / 10:g}]" for j in range(9)) + ("(0.9,1)", "1")


def _as_counts(x, name: str) -> np.ndarray:
    """Integer-valued array (any real dtype holding whole numbers) as int64; ValueError otherwise."""
    arr = np.asarray(x)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold whole numbers, got {arr.ravel()[:8].tolist()}...")
    arr = arr.astype(np.int64)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got min {arr.min()}")
    return arr


def pass_at_k(n, c, k) -> np.ndarray:
    """Unbiased pass@k per problem (float64); n, c, k broadcast (n may differ per problem).

    Raises ValueError for negative or non-integer counts, k < 1, k > n or c > n.
    """
    n, c, k = (_as_counts(v, name) for v, name in ((n, "n"), (c, "c"), (k, "k")))
    n, c, k = np.broadcast_arrays(n, c, k)
    if np.any(k < 1):
        raise ValueError(f"k must be >= 1, got min k = {k.min()}")
    if np.any(k > n):
        at = tuple(np.argwhere(k > n)[0])
        raise ValueError(f"k must be <= n (pass@k needs n >= k samples), got k = {k[at]} > n = {n[at]}")
    if np.any(c > n):
        at = tuple(np.argwhere(c > n)[0])
        raise ValueError(f"c must be <= n (correct among n samples), got c = {c[at]} > n = {n[at]}")
    out = np.ones(n.shape, np.float64)
    live = n - c >= k  # otherwise every k-subset holds a correct sample
    if not np.any(live):
        return out
    n_l, c_l, k_l = n[live], c[live], k[live]
    width = int(c_l.max())
    # factor j of problem p is 1 - k/i with i = n - j, j < c; masked factors are 1
    j = np.arange(width)[None, :]
    i = (n_l[:, None] - j).astype(np.float64)
    factors = np.where(j < c_l[:, None], 1.0 - k_l[:, None] / np.maximum(i, 1.0), 1.0)
    out[live] = 1.0 - np.prod(factors, axis=1)
    return out


def _per_problem(n, c) -> tuple[np.ndarray, np.ndarray]:
    n, c = np.broadcast_arrays(_as_counts(n, "n"), _as_counts(c, "c"))
    if n.ndim != 1:
        raise ValueError(f"n and c must broadcast to one count per problem (1-D), got shape {n.shape}")
    return n, c


def pass_at_k_per_problem(n, c, ks) -> np.ndarray:
    """[problems, len(ks)] matrix of pass@k values."""
    n, c = _per_problem(n, c)
    ks = _as_counts(np.atleast_1d(ks), "ks")
    if ks.ndim != 1:
        raise ValueError(f"ks must be 1-D, got shape {ks.shape}")
    return pass_at_k(n[:, None], c[:, None], ks[None, :])


def pass_at_k_curve(n, c, ks) -> np.ndarray:
    """Mean pass@k over problems, one value per k in ks."""
    return pass_at_k_per_problem(n, c, ks).mean(axis=0)


def bootstrap_ci(per_problem_values, *, num_resamples: int = 1000, alpha: float = 0.05, seed: int = 0):
    """(mean, lo, hi): percentile bootstrap over problems (resampled with replacement).

    A [problems] vector gives floats; a [problems, K] matrix gives per-column arrays, every column
    resampled with the same problem indices (so a pass@k curve's CIs are paired across k).
    """
    values = np.asarray(per_problem_values, np.float64)
    if values.ndim not in (1, 2) or values.shape[0] < 1:
        raise ValueError(f"per_problem_values must be [problems] or [problems, K], got shape {values.shape}")
    if num_resamples < 1 or not 0.0 < alpha < 1.0:
        raise ValueError(f"need num_resamples >= 1 and 0 < alpha < 1, got {num_resamples}, {alpha}")
    num = values.shape[0]
    rng = np.random.Generator(np.random.PCG64(seed))
    idx = rng.integers(0, num, size=(num_resamples, num))
    # resample means as (multiplicity counts) @ values: no [resamples, problems, K] tensor
    flat_idx = (np.arange(num_resamples)[:, None] * num + idx).ravel()
    counts = np.bincount(flat_idx, minlength=num_resamples * num).reshape(num_resamples, num).astype(np.float64)
    flat = values.reshape(num, -1)
    means = counts @ flat / num
    lo, hi = np.quantile(means, [alpha / 2, 1.0 - alpha / 2], axis=0)
    mean = flat.mean(axis=0)
    if values.ndim == 1:
        return float(mean[0]), float(lo[0]), float(hi[0])
    return mean, lo, hi


def pass_at_k_with_ci(n, c, ks, **bootstrap_kw) -> dict:
    """{"k", "mean", "lo", "hi"}: the pass@k curve with bootstrap CIs over problems."""
    ks = np.atleast_1d(np.asarray(ks))
    mean, lo, hi = bootstrap_ci(pass_at_k_per_problem(n, c, ks), **bootstrap_kw)
    return dict(k=ks.astype(np.int64), mean=mean, lo=lo, hi=hi)


def solvable_set(c) -> np.ndarray:
    """S(model) = problems with at least one correct sample (rlvr_limits.md §2.2)."""
    return _as_counts(c, "c") >= 1


def coverage_containment(c_a, c_b) -> dict:
    """Solvable-set counts of two models on the same problems; `b_subset_of_a` iff S_b ⊆ S_a."""
    s_a, s_b = solvable_set(c_a), solvable_set(c_b)
    if s_a.shape != s_b.shape or s_a.ndim != 1:
        raise ValueError(f"c_a and c_b must be 1-D over the same problems, got {s_a.shape} and {s_b.shape}")
    only_b = int(np.sum(s_b & ~s_a))
    return dict(solved_a=int(s_a.sum()), solved_b=int(s_b.sum()), both=int(np.sum(s_a & s_b)),
                only_a=int(np.sum(s_a & ~s_b)), only_b=only_b, b_subset_of_a=only_b == 0)


def delta_se(base_n, base_c, rl_n, rl_c, k_base: int = 256) -> float:
    """ΔSE = pass@k_base(base) - pass@1(RL), each averaged over problems (rlvr_limits.md §2.5)."""
    return float(pass_at_k_curve(base_n, base_c, [k_base])[0] - pass_at_k_curve(rl_n, rl_c, [1])[0])


def accuracy_histogram(n, c) -> tuple[np.ndarray, tuple[str, ...]]:
    """Counts of problems per accuracy bin 0, (0,0.1], ..., (0.8,0.9], (0.9,1), 1 (12 bins).

    Bins are decided in exact integer arithmetic (ceil(10c/n)), so c/n = 0.1 lands in (0, 0.1].
    """
    n, c = _per_problem(n, c)
    if np.any(n < 1) or np.any(c > n):
        raise ValueError("accuracy_histogram needs 0 <= c <= n and n >= 1 per problem")
    tenths = (10 * c + n - 1) // n  # ceil(10 c / n) in 0..10
    bins = np.where(c == 0, 0, np.where(c == n, 11, tenths))
    return np.bincount(bins, minlength=12).astype(np.int64), HISTOGRAM_LABELS
