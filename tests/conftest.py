import os

os.environ.setdefault("MPLBACKEND", "Agg")

import theoryrl  # noqa: E402,F401  (sets XLA_FLAGS before the CPU backend starts)
import jax  # noqa: E402

# silent broadcasting bugs become errors in tests (nanodo's convention)
jax.config.update("jax_numpy_rank_promotion", "raise")


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _own_base_store(tmp_path_factory, monkeypatch):
    """Every test gets its own base store, so no test reuses another's bases and none writes into
    the working directory's results/bases."""
    monkeypatch.setenv("THEORYRL_BASES", str(tmp_path_factory.mktemp("bases")))
