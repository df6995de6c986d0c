import os

os.environ.setdefault("MPLBACKEND", "Agg")

import theoryrl  # noqa: E402,F401  (sets XLA_FLAGS before the CPU backend starts)
import jax  # noqa: E402

# silent broadcasting bugs become errors in tests (nanodo's convention)
jax.config.update("jax_numpy_rank_promotion", "raise")
