"""theoryrl: theory-scale JAX reproductions of outcome-based RL for reasoning.

From a notebook: `theoryrl.run("chain-emergence", m=3)` runs an experiment as the CLI does and
returns its run folder; `theoryrl.load(run_dir)` reads the summary, rows, verdicts and arrays.
"""
import os

# XLA:CPU's experimental YNNPACK reduce fusion (jaxlib 0.10.2) returns wrong sums for some batched
# reductions over concatenated arrays inside jit (a 4096 x 10 repro is off by 14.0; eager and numpy
# agree). Turn that fusion off before the CPU backend starts; it is read once, at backend start-up,
# so importing theoryrl before the first JAX computation is enough. env.json records XLA_FLAGS.
_YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-reduce"
if "xla_cpu_experimental_ynn_fusion_type" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_YNN_FLAG}".strip()

# the notebook entry point (theoryrl/api.py imports jax and the experiments only when called)
from theoryrl.api import Results, load, run  # noqa: E402

__all__ = ["Results", "load", "run"]
