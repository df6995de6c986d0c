"""Measured peak rates of this machine's default JAX backend, for roofline fractions.

    peak = measure()   # {"matmul_gflops": ..., "bandwidth_gbs": ..., "backend": ..., ...}

- matmul: float32 GEMMs (jnp.matmul, default precision) of a few sizes, 2*N^3 flops per call;
  the best rate is reported.
- bandwidth: a large float32 scale in place (x <- 2*x, donated buffer: read + write, no fresh
  pages to fault in) and a large reduction (sum(x): read only); the larger of the two rates is
  reported, counting the bytes that must move.

Each number is the best of a few timed calls after a warm-up (a peak, not a typical rate). The result
is cached per process (and per backend), since it costs a few seconds.
"""
from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp


def _best_seconds(fn, *args, reps: int) -> float:
    jax.block_until_ready(fn(*args))  # compile + warm-up
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best


def _best_seconds_inplace(fn, x, reps: int) -> float:
    """Like _best_seconds for a function whose (donated) input is replaced by its output."""
    x = jax.block_until_ready(fn(x))
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        x = jax.block_until_ready(fn(x))
        best = min(best, time.perf_counter() - start)
    return best


def matmul_gflops(size: int, reps: int = 5) -> float:
    """float32 GEMM rate (GFLOP/s) of a size x size x size product."""
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
    seconds = _best_seconds(jax.jit(jnp.matmul), a, b, reps=reps)
    return 2.0 * size**3 / seconds / 1e9


def bandwidth_gbs(num_bytes: int, reps: int = 5) -> dict:
    """Memory bandwidth (GB/s) of a streaming copy (read + write) and a reduction (read)."""
    nbytes = 4 * (num_bytes // 4)
    sum_s = _best_seconds(jax.jit(jnp.sum), jnp.ones((nbytes // 4,), jnp.float32), reps=reps)
    scale = jax.jit(lambda v: v * 0.5, donate_argnums=0)
    copy_s = _best_seconds_inplace(scale, jnp.ones((nbytes // 4,), jnp.float32), reps=reps)
    return {"copy_gbs": 2.0 * nbytes / copy_s / 1e9, "reduce_gbs": nbytes / sum_s / 1e9}


@functools.cache
def _measure(backend: str, quick: bool) -> dict:
    on_cpu = backend == "cpu"
    sizes = ((1024,) if quick else (1024, 2048)) if on_cpu else (4096, 8192)
    num_bytes = (256 if quick else 512) * 2**20 if on_cpu else 2 * 2**30
    bw = bandwidth_gbs(num_bytes)
    rates = {size: matmul_gflops(size) for size in sizes}
    best = max(rates, key=rates.get)
    return {
        "backend": backend,
        "device": str(jax.devices()[0].device_kind),
        "matmul_gflops": rates[best],
        "matmul_size": best,
        "bandwidth_gbs": max(bw["copy_gbs"], bw["reduce_gbs"]),
        **bw,
        "bandwidth_bytes": num_bytes,
    }


def measure(quick: bool = False) -> dict:
    """Peak float32 matmul GFLOP/s and memory GB/s of the default backend (cached per process)."""
    return dict(_measure(jax.default_backend(), quick))


if __name__ == "__main__":
    print(measure())
