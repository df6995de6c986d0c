"""One process of the loopback multi-host test (run by test_multihost.py, not collected by pytest).

argv: coordinator_address num_processes process_id, or none: then the THEORYRL_COORDINATOR,
THEORYRL_NUM_PROCESSES and THEORYRL_PROCESS_ID environment variables are used. Prints `STARTED` once the distributed runtime
is up (or `INIT_FAILED ...` and exits 3 if it cannot start), then one line `RESULT {json}`.
"""
import json
import sys

import jax

jax.config.update("jax_num_cpu_devices", 2)

from theoryrl.core import sharding  # noqa: E402


def main():
    args = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 1 else ()
    try:
        sharding.initialize_distributed(*args)
    except (RuntimeError, jax.errors.JaxRuntimeError) as e:  # the runtime itself could not start
        print(f"INIT_FAILED {type(e).__name__}: {e}", flush=True)
        sys.exit(3)
    sharding.initialize_distributed(*args)  # idempotent: no second join
    print("STARTED", flush=True)

    import numpy as np
    from md_setup import sweep_hparams, tiny_spec, whole_run

    mesh = sharding.make_mesh()
    spec = tiny_spec(batch=64, steps_per_epoch=2, epochs_per_chunk=2, eval_size=128)
    hp = sweep_hparams(range(4))  # the full sweep, identical on every process (the default convention)
    rows = sharding.process_run_slice(4, mesh)
    with sharding.use_mesh(mesh):
        hp_global = sharding.shard_runs(hp, mesh)
        # the process-local convention: each process passes only its own rows
        seeds_local = sharding.shard_runs(hp.seed[rows], mesh, process_local=True)
        keys = sharding.shard_runs(jax.random.split(jax.random.key(0), 4), mesh)  # typed keys
        seed_sum = jax.jit(lambda s: s.sum())(seeds_local)
        key_bits = jax.jit(jax.vmap(lambda k: jax.random.bits(k, dtype=jax.numpy.uint32)))(keys)
        _, metrics = jax.jit(jax.vmap(whole_run(spec), spmd_axis_name="runs"))(hp_global)
        acc_mean = jax.jit(lambda a: a.mean())(metrics["all/acc_all"])
        out = sharding.gather_runs({"acc": metrics["all/acc_all"], "key_bits": key_bits, "keys": keys})
    print("RESULT " + json.dumps({
        "process_index": jax.process_index(), "process_count": jax.process_count(),
        "device_count": jax.device_count(), "local_device_count": jax.local_device_count(),
        "rows": [rows.start, rows.stop], "acc_spec": str(metrics["all/acc_all"].sharding.spec),
        "seed_sum": int(seed_sum), "acc_mean": float(acc_mean),
        "acc": np.asarray(out["acc"]).tolist(), "key_bits": np.asarray(out["key_bits"]).tolist(),
        "keys_shape": list(out["keys"].shape),
    }), flush=True)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
