"""The stages protocol end to end (issue 19): a fake two-stage experiment driven by the real harness.

Both stages run the same cheap scalar program: `w <- w + lr * (target - w)` per step, so after T
steps `w_T = target + (w_0 - target) (1 - lr)^T` in closed form. Stage "pretrain" starts from a
seed-dependent w_0, is a stored base with a gate (|w - target| <= gate_tol); stage "rl" starts from
its parent's trained w and relaxes towards another target. Every test checks the harness's results
against that closed form or against what is on disk, never against the plans it built.
"""
import collections
import dataclasses
import functools
import json
import os
import shutil
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl import cli
from theoryrl.core import treepath
from theoryrl.core.bases import Gate
from theoryrl.core.ckpt import Checkpointer
from theoryrl.core.experiment import execute, execute_sweep
from theoryrl.core.stages import Outcome, Program, Run, RunPlan, Runs, Stage

BUILDS: collections.Counter = collections.Counter()  # stage name -> how often its program was built


@pytest.fixture(autouse=True)
def _count_builds_per_test():
    BUILDS.clear()


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (42, 43)
    target: float = 1.0
    pre_lr: float = 0.1
    pre_steps: int = 4  # steps per chunk
    pre_chunks: int = 3
    rl_target: float = -0.5
    rl_lr: float = 0.2
    rl_steps: int = 5
    rl_chunks: int = 2
    gate_tol: float = 10.0  # generous: a test that wants a failing gate tightens it


def w0_of(seed: int) -> float:
    return -float(seed - 41)


def closed_form(w0: float, target: float, lr: float, steps: int) -> float:
    return target + (w0 - target) * (1.0 - lr) ** steps


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class RelaxHp:
    w0: np.ndarray  # float32 [], the starting point
    target: np.ndarray  # float32 []
    lr: np.ndarray  # float32 []


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class RelaxState:
    w: jax.Array


def _relax_program(stage: str, num_chunks: int, steps_per_chunk: int) -> Program:
    BUILDS[stage] += 1

    def chunk_fn(state: RelaxState, hp: RelaxHp, target):
        def step(w, _):
            return w + hp.lr * (target - w), None

        w, _ = jax.lax.scan(step, state.w, None, length=steps_per_chunk)
        return RelaxState(w), {"w": w, "loss": jnp.square(target - w)}

    return Program(data_fn=lambda hp: hp.target, init_fn=lambda hp: RelaxState(hp.w0), chunk_fn=chunk_fn,
                   num_chunks=num_chunks, steps_per_chunk=steps_per_chunk,
                   final_fn=lambda state: {"params/w": state.w})


def _pretrain_plans(cfg: Config) -> list[RunPlan]:
    build = functools.partial(_relax_program, "pretrain", cfg.pre_chunks, cfg.pre_steps)
    return [RunPlan(row={"seed": s}, bucket=("pretrain", cfg.pre_chunks, cfg.pre_steps), label="pre",
                    hp=RelaxHp(np.float32(w0_of(s)), np.float32(cfg.target), np.float32(cfg.pre_lr)),
                    build=build,
                    base_key={"program": "test_stages.relax@1", "seed": s, "w0": w0_of(s), "target": cfg.target,
                              "lr": cfg.pre_lr, "steps_per_chunk": cfg.pre_steps, "chunks": cfg.pre_chunks})
            for s in cfg.seeds]


def _rl_plans(cfg: Config, runs: Runs) -> list[RunPlan]:
    build = functools.partial(_relax_program, "rl", cfg.rl_chunks, cfg.rl_steps)
    plans = []
    for parent in runs.where(stage="pretrain"):
        w = parent.tree({"w": 0.0})["w"]
        plans.append(RunPlan(row={"seed": parent.row["seed"]}, bucket=("rl", cfg.rl_chunks, cfg.rl_steps), label="rl",
                             hp=RelaxHp(np.float32(w), np.float32(cfg.rl_target), np.float32(cfg.rl_lr)),
                             build=build, parent=parent))
    return plans


def _gate(cfg: Config, run: Run) -> Gate:
    distance = abs(float(run.final("params/w")) - cfg.target)
    return Gate(distance <= cfg.gate_tol, f"|w - target| <= {cfg.gate_tol}", {"distance": distance})


def _stages(cfg: Config) -> list[Stage]:
    return [Stage("pretrain", lambda runs: _pretrain_plans(cfg), store_bases=True, gate=functools.partial(_gate, cfg)),
            Stage("rl", functools.partial(_rl_plans, cfg))]


def _analyze(cfg: Config, runs: Runs) -> Outcome:
    rows = [{"stage": r.stage, **r.row, "w": float(r.final("params/w")), "chunks": len(r.history("w")),
             "reused": r.reused, **r.base_info()} for r in runs]
    sound = all(r.gate.passed for r in runs.where(stage="rl"))
    not_judged = {} if sound else {"rl_reaches_target": "a base failed its gate"}
    verdict = {"rl_reaches_target": True} if sound else {}
    return Outcome({"rl_w_mean": float(np.mean(runs.where(stage="rl").stack("final/params/w")))}, rows, {}, verdict,
                   {"rl_w": runs.where(stage="rl").stack("final/params/w")}, not_judged)


def make_module(eid: str, **quick) -> types.SimpleNamespace:
    return types.SimpleNamespace(ID=eid, TITLE=eid, PAPER="-", Config=Config, TIERS={"quick": Config(**quick)},
                                 stages=_stages, analyze=_analyze, plot=lambda run_dir, out_dir: [])


def summary_rows(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "summary.json").read_text())["rows"]


def row(rows: list[dict], **knobs) -> dict:
    (found,) = [r for r in rows if all(r.get(k) == v for k, v in knobs.items())]
    return found


def stored_bases() -> list[Path]:
    root = Path(os.environ["THEORYRL_BASES"])
    return sorted(p for p in root.iterdir() if (p / "DONE").exists())


def expected_pre(seed: int, cfg: Config = Config()) -> float:
    return closed_form(w0_of(seed), cfg.target, cfg.pre_lr, cfg.pre_chunks * cfg.pre_steps)


def expected_rl(seed: int, cfg: Config = Config()) -> float:
    return closed_form(expected_pre(seed, cfg), cfg.rl_target, cfg.rl_lr, cfg.rl_chunks * cfg.rl_steps)


# ---- stage dependency ------------------------------------------------------------------------------
def test_rl_stage_continues_from_the_pretrained_parameters(tmp_path):
    run_dir = execute(make_module("fake-a"), "quick", [], out=tmp_path / "run", quiet=True)
    rows = summary_rows(run_dir)
    cfg = Config()
    for s in cfg.seeds:
        pre, rl = row(rows, stage="pretrain", seed=s), row(rows, stage="rl", seed=s)
        np.testing.assert_allclose(pre["w"], expected_pre(s), rtol=1e-5)
        np.testing.assert_allclose(rl["w"], expected_rl(s), rtol=1e-5)
        # from scratch (w_0 instead of the trained w) the RL run would end elsewhere
        scratch = closed_form(w0_of(s), cfg.rl_target, cfg.rl_lr, cfg.rl_chunks * cfg.rl_steps)
        assert abs(rl["w"] - scratch) > 1e-2
        assert (pre["chunks"], rl["chunks"]) == (cfg.pre_chunks, cfg.rl_chunks)
        # the base's identity and gate travel into the downstream row
        assert rl["base_id"] == pre["base_id"] and rl["base_gate_passed"] is True and rl["reused"] is False


# ---- base store ------------------------------------------------------------------------------------
def test_a_base_declared_by_two_experiments_is_trained_once(tmp_path, capsys):
    execute(make_module("fake-a"), "quick", [], out=tmp_path / "a", quiet=True)
    assert BUILDS == {"pretrain": 1, "rl": 1}
    capsys.readouterr()
    run_b = execute(make_module("fake-b"), "quick", [], out=tmp_path / "b", quiet=False)
    log = capsys.readouterr().err
    assert BUILDS == {"pretrain": 1, "rl": 2}  # fake-b trained its RL stage only
    assert log.count("reusing stored base") == 2 and "[fake-b:pretrain] reusing stored base" in log
    assert len(stored_bases()) == 2  # one per seed, produced by fake-a
    for base in stored_bases():
        assert json.loads((base / "config.json").read_text())["experiment"] == "fake-a"
    rows_a, rows_b = summary_rows(tmp_path / "a"), summary_rows(run_b)
    for s in Config().seeds:
        assert row(rows_b, stage="pretrain", seed=s)["reused"] is True
        assert row(rows_b, stage="pretrain", seed=s)["base_id"] == row(rows_a, stage="pretrain", seed=s)["base_id"]
        np.testing.assert_allclose(row(rows_b, stage="rl", seed=s)["w"], expected_rl(s), rtol=1e-5)
    assert [p.name.split("-")[0] for p in (run_b / "buckets").glob("*.npz")] == ["rl"]  # no pre-training bucket


def test_base_address_changes_with_pretraining_knobs_only(tmp_path):
    mod = make_module("fake-a")

    def base_ids(sets):
        run_dir = execute(mod, "quick", sets, out=tmp_path / "-".join(sets or ["default"]), quiet=True)
        return {r["seed"]: r["base_id"] for r in summary_rows(run_dir) if r["stage"] == "pretrain"}, run_dir

    default, _ = base_ids([])
    for rl_only in (["rl_lr=0.3"], ["rl_target=0.25"], ["rl_steps=3"]):
        ids, run_dir = base_ids(rl_only)
        assert ids == default, rl_only
        assert all(r["reused"] for r in summary_rows(run_dir) if r["stage"] == "pretrain")
    # the RL knob did take effect
    np.testing.assert_allclose(row(summary_rows(tmp_path / "rl_lr=0.3"), stage="rl", seed=42)["w"],
                               expected_rl(42, Config(rl_lr=0.3)), rtol=1e-5)
    assert len(stored_bases()) == 2
    seen = set(default.values())
    for pre in (["pre_lr=0.2"], ["target=2.0"], ["pre_steps=5"]):
        ids, run_dir = base_ids(pre)
        assert not seen & set(ids.values()), pre
        seen |= set(ids.values())
        assert not any(r["reused"] for r in summary_rows(run_dir) if r["stage"] == "pretrain")
    assert len(stored_bases()) == 2 + 3 * 2


# ---- checkpoints whose structure changed -----------------------------------------------------------
def test_unflatten_names_missing_extra_and_misshapen_keys():
    like = {"embed": np.zeros((3, 2)), "blocks": [{"wq": np.zeros((2, 2))}]}
    saved = treepath.flatten({"embed": np.ones((3, 2)), "blocks": [{"wq": np.ones((2, 2))}]}, "final/params/")
    renamed = {k.replace("wq", "w_query"): v for k, v in saved.items()}
    with pytest.raises(treepath.StructureMismatch, match=r"missing 'blocks/0/wq'.*unexpected 'blocks/0/w_query'"):
        treepath.unflatten(like, renamed, "final/params/")
    with pytest.raises(treepath.StructureMismatch, match=r"missing 'blocks/0/wq', unexpected none"):
        treepath.unflatten(like, {"final/params/embed": np.ones((3, 2))}, "final/params/")
    with pytest.raises(treepath.StructureMismatch, match=r"missing none, unexpected 'blocks/1/wq'"):
        treepath.unflatten(like, {**saved, "final/params/blocks/1/wq": np.ones((2, 2))}, "final/params/")
    with pytest.raises(treepath.StructureMismatch, match=r"'final/params/embed' has shape \(2, 3\), expected \(3, 2\)"):
        treepath.unflatten(like, {**saved, "final/params/embed": np.ones((2, 3))}, "final/params/")


def test_checkpoint_restored_into_a_changed_structure_names_the_key(tmp_path):
    with Checkpointer(tmp_path / "ckpt") as ckpt:
        ckpt.save(3, {"state": {"w": jnp.ones(2), "bias": jnp.zeros(())}})
    with Checkpointer(tmp_path / "ckpt") as ckpt:
        restored = ckpt.restore(3, {"state": {"w": jnp.zeros(2), "bias": jnp.ones(())}})
        np.testing.assert_array_equal(restored["state"]["w"], np.ones(2))
        with pytest.raises(treepath.StructureMismatch, match=r"state\.bias.*state\.gain|state\.gain.*state\.bias"):
            ckpt.restore(3, {"state": {"w": jnp.zeros(2), "gain": jnp.zeros(())}})


# ---- the quality gate ------------------------------------------------------------------------------
def test_a_failed_gate_is_in_the_rows_and_the_base_is_listed_as_failing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("THEORYRL_BASES")  # the default store: <results root>/bases
    cfg = Config(pre_steps=5, pre_chunks=4, gate_tol=0.3)
    # |w_T - target| = |w_0 - target| 0.9^20: seed 42 is 2 * 0.12 = 0.24 away (passes), seed 43 0.36 (fails)
    passes = {s: abs(expected_pre(s, cfg) - cfg.target) <= cfg.gate_tol for s in cfg.seeds}
    assert passes == {42: True, 43: False}
    results = tmp_path / "results"
    run_dir = execute(make_module("fake-a", **dataclasses.asdict(cfg)), "quick", [], out=tmp_path / "run", quiet=True,
                      results_root=results)
    rows = summary_rows(run_dir)
    ids = {}
    for s in cfg.seeds:
        for stage in ("pretrain", "rl"):
            assert row(rows, stage=stage, seed=s)["base_gate_passed"] is passes[s]
        ids[s] = row(rows, stage="pretrain", seed=s)["base_id"]
        gate = json.loads((results / "bases" / ids[s] / "gate.json").read_text())
        assert gate["passed"] is passes[s]
        np.testing.assert_allclose(gate["measured"]["distance"], abs(expected_pre(s, cfg) - cfg.target), rtol=1e-5)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "rl_reaches_target" in summary["not_judged"] and "rl_reaches_target" not in summary["verdict"]
    capsys.readouterr()
    assert cli.main(["bases", "--results", str(results)]) == 0
    listing = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(listing) == set(ids.values())
    assert " FAIL " in listing[ids[43]] and " pass " in listing[ids[42]]


# ---- selection by row knobs ------------------------------------------------------------------------
def test_runs_are_selected_by_row_knobs():
    def run(stage, i, **row):
        return Run(stage, row, {"final/x": np.array([i, i + 0.5])})

    runs = Runs([run("pre", 0, seed=42), run("pre", 1, seed=43),
                 run("rl", 2, seed=42, arm="uniform"), run("rl", 3, seed=42, arm="hard"),
                 run("rl", 4, seed=43, arm="uniform"), run("rl", 5, seed=43, arm="hard")])
    assert [r.final("x")[0] for r in runs.where(stage="rl", arm="uniform")] == [2, 4]
    assert [r.final("x")[0] for r in runs.where(seed=42)] == [0, 2, 3]
    assert len(runs.where(arm="uniform", stage="pre")) == 0  # a knob a row lacks never matches
    assert runs.one(stage="rl", arm="hard", seed=43).final("x")[0] == 5
    with pytest.raises(LookupError, match="0 runs match"):
        runs.one(stage="rl", arm="easy")
    with pytest.raises(LookupError, match="2 runs match"):
        runs.one(stage="rl", seed=42)
    assert runs.values("seed") == [42, 43] and runs.values("arm") == ["uniform", "hard"]
    assert runs.values("stage") == ["pre", "rl"]
    np.testing.assert_array_equal(runs.where(arm="hard").stack("final/x"), [[3, 3.5], [5, 5.5]])


# ---- sweeps run in stages --------------------------------------------------------------------------
def test_sweep_runs_every_stage_with_one_program_per_bucket_and_each_base_once(tmp_path):
    rl_lrs = ("0.2", "0.3")
    run_dir = execute_sweep(make_module("fake-a"), "quick", [("rl_lr", list(rl_lrs))], seeds=2, sets=[],
                            out=tmp_path / "sweep", quiet=True)
    assert BUILDS == {"pretrain": 1, "rl": 1}  # one compiled program per stage
    buckets = sorted(p.name for p in (run_dir / "buckets").glob("*.npz"))
    assert [b.split("-")[0] for b in buckets] == ["pretrain", "rl"]
    with np.load(run_dir / "buckets" / buckets[0]) as pre, np.load(run_dir / "buckets" / buckets[1]) as rl:
        # 2 grid points x 2 seeds = 4 pre-training plans but only 2 distinct bases; 4 RL runs
        assert pre["final/params/w"].shape == (2,) and rl["final/params/w"].shape == (4,)
    assert len(stored_bases()) == 2
    rows = summary_rows(run_dir)
    assert len(rows) == 2 * 2 * 2  # grid points x seeds x stages
    for lr in rl_lrs:
        for s in (42, 43):
            pre, rl = row(rows, rl_lr=lr, stage="pretrain", seed=s), row(rows, rl_lr=lr, stage="rl", seed=s)
            np.testing.assert_allclose(pre["w"], expected_pre(s), rtol=1e-5)
            np.testing.assert_allclose(rl["w"], expected_rl(s, Config(rl_lr=float(lr))), rtol=1e-5)
            assert rl["base_id"] == row(rows, rl_lr=rl_lrs[0], stage="pretrain", seed=s)["base_id"]


def test_a_sweep_over_the_gate_judges_each_point_by_its_own_gate_and_trains_the_base_once(tmp_path):
    """gate_tol is read by the gate only, so it is not in the base key: both points share the bases.
    With pre_steps=5, pre_chunks=4 the bases end 0.24 (seed 42) and 0.36 (seed 43) from the target
    (see the failed-gate test), so tol 0.3 fails seed 43 only and tol 1.0 passes both."""
    run_dir = execute_sweep(make_module("fake-a", pre_steps=5, pre_chunks=4), "quick", [("gate_tol", ["0.3", "1.0"])],
                            seeds=2, sets=[], out=tmp_path / "sweep", quiet=True)
    assert BUILDS == {"pretrain": 1, "rl": 1} and len(stored_bases()) == 2
    rows = summary_rows(run_dir)
    for stage in ("pretrain", "rl"):
        assert row(rows, gate_tol="0.3", stage=stage, seed=42)["base_gate_passed"] is True
        assert row(rows, gate_tol="0.3", stage=stage, seed=43)["base_gate_passed"] is False
        assert all(row(rows, gate_tol="1.0", stage=stage, seed=s)["base_gate_passed"] is True for s in (42, 43))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["not_judged"]) == {"gate_tol=0.3|rl_reaches_target"}
    assert set(summary["verdict"]) == {"gate_tol=1.0|rl_reaches_target"}


def test_a_resume_after_some_bases_were_published_trains_the_rest_under_their_own_rows(tmp_path, capsys):
    """A crash after the pre-training bucket finished and seed 42's base was published, but before
    seed 43's was: the resumed run reuses 42's base and trains 43 alone. The bucket of [42, 43] in the
    run folder's cache must not be mistaken for the bucket of [43] (same program, other runs)."""
    mod = make_module("fake-a")
    run_dir = execute(mod, "quick", [], out=tmp_path / "run", quiet=True)
    ids = {r["seed"]: r["base_id"] for r in summary_rows(run_dir) if r["stage"] == "pretrain"}
    shutil.rmtree(Path(os.environ["THEORYRL_BASES"]) / ids[43])
    for name in ("DONE", "summary.json"):
        (run_dir / name).unlink()
    BUILDS.clear()
    capsys.readouterr()
    execute(mod, "quick", [], out=run_dir, quiet=False)
    log = capsys.readouterr().err
    assert f"reusing stored base {ids[42]}" in log and f"stored base {ids[43]}" in log
    assert BUILDS["pretrain"] == 1  # 43 trained alone
    rows = summary_rows(run_dir)
    for s in (42, 43):
        np.testing.assert_allclose(row(rows, stage="pretrain", seed=s)["w"], expected_pre(s), rtol=1e-5)
        np.testing.assert_allclose(row(rows, stage="rl", seed=s)["w"], expected_rl(s), rtol=1e-5)
    assert row(rows, stage="pretrain", seed=42)["reused"] and not row(rows, stage="pretrain", seed=43)["reused"]
    assert len(list((run_dir / "buckets").glob("pretrain-*.npz"))) == 2
    assert len(list((run_dir / "buckets").glob("rl-*.npz"))) == 1  # the same RL runs: loaded from the cache


def test_a_base_published_from_a_cached_bucket_keeps_its_training_time(tmp_path):
    mod = make_module("fake-a")
    run_dir = execute(mod, "quick", [], out=tmp_path / "run", quiet=True)
    (bucket,) = (run_dir / "buckets").glob("pretrain-*.json")
    trained_s = json.loads(bucket.read_text())["wall_s"]
    shutil.rmtree(Path(os.environ["THEORYRL_BASES"]))  # the bases are lost, the run folder's cache is not
    for name in ("DONE", "summary.json"):
        (run_dir / name).unlink()
    execute(mod, "quick", [], out=run_dir, quiet=True)
    for base in stored_bases():
        assert json.loads((base / "meta.json").read_text())["wall_s"] == trained_s


def test_a_base_reused_by_every_point_of_a_sweep_is_announced_once(tmp_path, capsys):
    execute(make_module("fake-a"), "quick", [], out=tmp_path / "a", quiet=True)
    capsys.readouterr()
    execute_sweep(make_module("fake-a"), "quick", [("rl_lr", ["0.2", "0.3", "0.4"])], seeds=2, sets=[],
                  out=tmp_path / "sweep", quiet=False)
    assert capsys.readouterr().err.count("reusing stored base") == 2  # one per seed, not per grid point
