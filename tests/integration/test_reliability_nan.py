"""The NaN tripwire on real programs (issue 21, items 5 and 10), through the CLI entry point.

Three real experiments go non-finite mid-run; each must stop with exit status 2 and one `error:`
line naming the bucket, the chunk and "non-finite", write no DONE or summary.json, and keep its
folder resumable with a newest checkpoint from before the bad chunk (read back raw with orbax,
independently of the harness: finite state, history and step counter of the chunks before it).

- chain-emergence: a legal learning rate, softmax.lr=1e8 (validate() accepts every finite lr >= 0),
  genuinely overflows the attention after a few Adam steps of size ~lr. The bad chunk is read from
  the message, not assumed, and must be a later one (a run failing in chunk 0 saves nothing).
- bandit-regret has no float knob the program uses, and the AR-linear learner of parity-threshold
  is stable for every legal lam (>= 1e-8) and avg_power (its overflow, avg_power >= ~1e37, comes in
  chunk 0), so both are poisoned by monkeypatching a function their chunk function calls:
  `theory.bandits.run_steps` (reward sums s_K -> inf in chunk 2) and `rl.ar_linear_train.train_ntp`
  (weights w_first -> NaN in chunk 2, for the p_cot = 0.6 run only). Neither program has a `loss`
  metric, and their metrics stay finite: only the watch on the state can catch them. With the
  patch undone, the same command resumes from the kept checkpoint and finishes.
- `--debug` lets the FloatingPointError (raised by core/loop.py's check) through instead.
"""
import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from theoryrl import cli
from theoryrl.rl import ar_linear_train
from theoryrl.theory import bandits

BAD_CHUNK = 2  # the chunk the poisoned programs go non-finite in


def sets(*pairs: str) -> list[str]:
    return [a for kv in pairs for a in ("--set", kv)]


BANDIT = sets("arms=4", "outcomes=2", "horizon=60", "steps_per_chunk=10", "algorithms=arm_ucb", "seeds=42,43")
PARITY = sets("families=ar_linear", "ds=4", "p_cots=0.2,0.6", "seeds=42", "head_samples=250",
              "chain_samples=25", "chunks=5", "eval_prompts=16")
CHAIN = sets("m=3", "attention=softmax", "seeds=42", "softmax.batch=64", "softmax.dataset_size=0",
             "softmax.steps_per_epoch=1", "softmax.eval_size=64", "softmax.early_stop=false",
             "softmax.epochs=6", "softmax.epochs_per_chunk=1", "softmax.lr=1e8")


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("THEORYRL_BASES", str(tmp_path / "bases"))
    return tmp_path


def run(capsys, eid: str, knobs: list[str], *flags: str) -> tuple[int, list[str]]:
    """`python -m theoryrl run eid` in-process: (exit status, non-empty stderr lines)."""
    capsys.readouterr()
    rc = cli.main(["run", eid, "--no-plot", "--ckpt-every", "1", *flags, *knobs])
    return rc, [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def poison_bandit(monkeypatch):
    real = bandits.run_steps

    def run_steps(algo, state, inst, root, num_steps):
        new = real(algo, state, inst, root, num_steps)
        bad = state.t == BAD_CHUNK * num_steps  # the step count entering chunk BAD_CHUNK
        return dataclasses.replace(new, s_K=jnp.where(bad, jnp.inf, new.s_K))

    monkeypatch.setattr(bandits, "run_steps", run_steps)


def poison_ar_linear(monkeypatch):
    real = ar_linear_train.train_ntp

    def train_ntp(state, key, d, p_cot, head_steps, chain_steps, hyper):
        new = real(state, key, d, p_cot, head_steps, chain_steps, hyper)
        bad = (state.t_head == BAD_CHUNK * head_steps) & (p_cot > 0.5)
        return dataclasses.replace(new, w=dataclasses.replace(new.w, w_first=jnp.where(bad, jnp.nan, new.w.w_first)))

    monkeypatch.setattr(ar_linear_train, "train_ntp", train_ntp)


def the_run_dir(root: Path, eid: str) -> Path:
    (run_dir,) = (root / "results" / eid).iterdir()
    return run_dir


def raw_checkpoint(run_dir: Path) -> tuple[str, list[int], dict]:
    """(bucket folder name, saved steps, the newest step's tree as saved), read with orbax alone."""
    (bucket,) = (run_dir / "ckpt").iterdir()
    steps = sorted(int(p.name) for p in bucket.iterdir() if p.name.isdigit())
    mngr = ocp.CheckpointManager(bucket.resolve())
    try:
        tree = mngr.restore(steps[-1], args=ocp.args.StandardRestore())
    finally:
        mngr.close()
    return bucket.name, steps, jax.tree.map(np.asarray, tree)


def check_stopped(rc: int, err: list[str], root: Path, eid: str, leaf: str) -> tuple[Path, int, dict]:
    """The acceptance checks of a run the tripwire stopped; returns (run folder, bad chunk, newest state)."""
    assert rc == 2, err
    assert len(err) == 1 and err[0].startswith("error:"), err
    line = err[0]
    run_dir = the_run_dir(root, eid)
    bucket, steps, tree = raw_checkpoint(run_dir)
    assert f"[{eid}:{bucket}]" in line and "non-finite" in line and f"state leaf '{leaf}'" in line, line
    bad = int(line.split("after chunk ", 1)[1].split(" ", 1)[0])
    assert bad >= 1, line
    assert not (run_dir / "DONE").exists() and not (run_dir / "summary.json").exists()
    assert (run_dir / "config.json").exists()
    assert steps[-1] == bad  # the newest checkpoint holds the state entering the bad chunk ...
    for path, x in jax.tree_util.tree_leaves_with_path(tree):
        if x.dtype.kind == "f":
            assert np.isfinite(x).all(), jax.tree_util.keystr(path)  # ... which is finite
    assert {x.shape[0] for x in jax.tree.leaves(tree["history"])} == {bad}
    logged = {json.loads(ln)["chunk"] for ln in (run_dir / "metrics.jsonl").read_text().splitlines()}
    assert logged == set(range(bad))  # no line of the bad chunk
    return run_dir, bad, tree["state"]


def check_resumes(capsys, root: Path, eid: str, knobs: list[str], bad: int, num_chunks: int) -> None:
    rc, err = run(capsys, eid, knobs)
    assert rc == 0, err
    assert any(f"resuming from checkpoint at chunk {bad} " in ln for ln in err), err
    run_dir = the_run_dir(root, eid)
    assert (run_dir / "DONE").exists()
    logged = {json.loads(ln)["chunk"] for ln in (run_dir / "metrics.jsonl").read_text().splitlines()}
    assert logged == set(range(num_chunks))


def test_chain_emergence_with_a_legal_huge_lr_stops_at_its_first_non_finite_chunk(here, capsys):
    assert cli.main(["run", "chain-emergence", "--dry-run", *CHAIN]) == 0  # the knob is legal
    rc, err = run(capsys, "chain-emergence", CHAIN, "--quiet")
    _, bad, state = check_stopped(rc, err, here, "chain-emergence", "params/A")
    assert bad < 5  # it blew up before the last chunk, so this is a mid-run stop
    np.testing.assert_array_equal(state["epoch"], [bad])  # one epoch per chunk


def test_bandit_regret_state_going_infinite_stops_the_run_and_it_resumes(here, capsys, monkeypatch):
    with monkeypatch.context() as patch:
        poison_bandit(patch)
        rc, err = run(capsys, "bandit-regret", BANDIT, "--quiet")
    _, bad, state = check_stopped(rc, err, here, "bandit-regret", "s_K")
    assert bad == BAD_CHUNK and "(runs 0, 1)" in err[0]
    np.testing.assert_array_equal(state["t"], [bad * 10, bad * 10])
    check_resumes(capsys, here, "bandit-regret", BANDIT, bad, 6)


def test_ar_linear_state_going_nan_stops_the_run_naming_the_run_and_it_resumes(here, capsys, monkeypatch):
    with monkeypatch.context() as patch:
        poison_ar_linear(patch)
        rc, err = run(capsys, "parity-threshold", PARITY, "--quiet")
    _, bad, state = check_stopped(rc, err, here, "parity-threshold", "sgd/w/w_first")
    assert bad == BAD_CHUNK and "(runs 1)" in err[0]  # only the p_cot = 0.6 run
    np.testing.assert_array_equal(state["chunk"], [bad, bad])
    check_resumes(capsys, here, "parity-threshold", PARITY, bad, 5)


def test_debug_shows_the_tripwire_traceback_instead_of_the_line(here, capsys, monkeypatch):
    poison_bandit(monkeypatch)
    capsys.readouterr()
    with pytest.raises(FloatingPointError, match=rf"non-finite values after chunk {BAD_CHUNK} ") as err:
        cli.main(["run", "bandit-regret", "--debug", "--quiet", "--no-plot", "--ckpt-every", "1", *BANDIT])
    assert not [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert any(Path(entry.path).name == "loop.py" for entry in err.traceback)  # raised by the driver's check
