"""theoryrl: theory-scale JAX reproductions of outcome-based RL for reasoning."""
import os

# XLA:CPU's experimental YNNPACK reduce fusion (jaxlib 0.10.2) returns wrong sums for some batched
# reductions over concatenated arrays inside jit (a 4096 x 10 repro is off by 14.0; eager and numpy
# agree). Turn that fusion off before the CPU backend starts; it is read once, at backend start-up,
# so importing theoryrl before the first JAX computation is enough. env.json records XLA_FLAGS.
_YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-reduce"
if "xla_cpu_experimental_ynn_fusion_type" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_YNN_FLAG}".strip()
