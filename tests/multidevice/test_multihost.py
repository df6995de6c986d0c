"""Two processes x 2 CPU devices joined over loopback (specs/jax_practice.md §10).

Each process runs `_multihost_worker.py`: initialize_distributed, make_mesh over the 4 global
devices, shard_runs of a 4-run sweep (full-sweep and process-local conventions, and typed keys),
one jitted vmapped trainer chunk, gather_runs. Both must report identical gathered results, and
those must match this (8-device, single-process) session: exactly for the layout-independent
key bits and seeds, statistically for the trained accuracy (4 runs x 128 eval instances after 4
steps; the mean may move by a few flipped instances across layouts, §12.1: we allow 0.05).
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from md_setup import sweep_hparams, tiny_spec, whole_run

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TIMEOUT_S = 120
TOL_MEAN_ACC = 0.05


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join([str(REPO), str(HERE)]), **extra)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    env["XLA_FLAGS"] = " ".join(flags)
    return env


def _run_workers(n: int = 2) -> list[tuple[int, str, str]]:
    address = f"127.0.0.1:{_free_port()}"
    worker = [sys.executable, str(HERE / "_multihost_worker.py")]
    # process 0 joins through arguments, the others through the THEORYRL_* environment variables
    commands = [(worker + [address, str(n), "0"], _env())] + [
        (worker, _env(THEORYRL_COORDINATOR=address, THEORYRL_NUM_PROCESSES=str(n), THEORYRL_PROCESS_ID=str(i)))
        for i in range(1, n)]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for cmd, env in commands]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT_S)
            results.append((p.returncode, out, err))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        outs = [p.communicate() for p in procs]
        if not any("STARTED" in o for o, _ in outs):
            pytest.skip(f"distributed runtime did not start within {TIMEOUT_S}s: {outs[0][1][-500:]}")
        pytest.fail(f"multi-host workers timed out after {TIMEOUT_S}s: " + " | ".join(e[-800:] for _, e in outs))
    return results


@pytest.mark.slow
def test_two_processes_on_loopback_agree():
    results = _run_workers()
    failed = [line for _, out, _ in results for line in out.splitlines() if line.startswith("INIT_FAILED")]
    if failed:
        pytest.skip(f"distributed runtime could not start on this machine: {failed[0][:500]}")
    for rc, out, err in results:
        assert rc == 0, err[-3000:]
    reports = [json.loads(line[len("RESULT "):]) for _, out, _ in results
               for line in out.splitlines() if line.startswith("RESULT ")]
    assert len(reports) == 2
    assert sorted(r["process_index"] for r in reports) == [0, 1]
    for r in reports:
        assert (r["process_count"], r["device_count"], r["local_device_count"]) == (2, 4, 2)
        assert r["acc_spec"] == "P('runs',)" and r["keys_shape"] == [4, 2]
        assert r["seed_sum"] == 0 + 1 + 2 + 3  # process-local rows assembled into one global array
    assert sorted(r["rows"] for r in reports) == [[0, 2], [2, 4]]
    a, b = reports
    for k in ("acc", "acc_mean", "key_bits", "seed_sum"):  # gathered results identical on both processes
        assert a[k] == b[k], k

    keys = jax.random.split(jax.random.key(0), 4)
    expected_bits = jax.vmap(lambda k: jax.random.bits(k, dtype=jax.numpy.uint32))(keys)
    assert a["key_bits"] == np.asarray(expected_bits).tolist()  # typed keys survived shard_runs exactly

    spec = tiny_spec(batch=64, steps_per_epoch=2, epochs_per_chunk=2, eval_size=128)
    _, metrics = jax.jit(jax.vmap(whole_run(spec)))(sweep_hparams(range(4)))
    acc = np.asarray(a["acc"])
    assert acc.shape == (4, 2)
    np.testing.assert_allclose(a["acc_mean"], acc.mean(), rtol=1e-6)
    assert abs(acc[:, -1].mean() - float(metrics["all/acc_all"][:, -1].mean())) <= TOL_MEAN_ACC
