"""affine-uniform-vs-hard end to end at a tiny size: two stages (NTP bases, stored and gated, then GRPO
from each seed's base), the summary contract, the invariants between its metrics, base reuse across
runs that differ only in RL knobs, the gate (a broken base leaves the claims not judged), the base's
content address, resume, and the figure."""
import dataclasses
import json
import os
import time

import numpy as np
import pytest

from theoryrl.core.bases import BaseStore, Gate, base_id
from theoryrl.core.config import ConfigError
from theoryrl.core.experiment import RunContext, execute, run_stages
from theoryrl.core.results import RunDir, load_npz
from theoryrl.core.stages import Runs
from theoryrl.experiments import affine_uniform_vs_hard as exp
from theoryrl.models import transformer as tfm
from theoryrl.rl import lm_runs
from theoryrl.tasks import equations as eq

TINY = ["chain_len=4", "slip=0", "eval_samples=0", "token_shift=4", "pretrain_max_distance=1", "reading_steps=10",
        "short_max_distance=2", "seeds=42", "d_model=32", "pretrain_steps=20", "pretrain_chunk=10",
        "pretrain_batch=16", "rl_steps=4", "steps_per_chunk=2", "prompts_per_step=4", "group_size=4",
        "eval_per_distance=8"]
# 150 NTP steps: enough for the tiny decoder to end its answer after the one trained step (20 are not)
SOUND = [k for k in TINY if not k.startswith(("seeds=", "slip=", "eval_samples=", "pretrain_steps=",
                                                  "pretrain_chunk="))] + [
    "seeds=42,43", "slip=0.5", "slip_sign=global", "eval_samples=2", "pretrain_steps=150", "pretrain_chunk=75"]
CLAIMS = ("uniform_solves_hardest", "hard_only_stays_low", "uniform_much_better_than_hard")
SUFFIXES = ("", "_verified", "_sampled", "_sampled_verified")
TIMES = {}


@pytest.fixture(scope="module")
def sound(tmp_path_factory):
    """The SOUND run in its own base store: (run folder, base store folder)."""
    root = tmp_path_factory.mktemp("affine")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("THEORYRL_BASES", str(root / "bases"))
        t0 = time.time()
        folder = execute(exp, "quick", SOUND, out=root / "a", quiet=True)
        TIMES["trains base"] = time.time() - t0
    return folder, root / "bases"


def _summary(folder):
    return json.loads((folder / "summary.json").read_text())


def _cfg(folder) -> exp.Config:
    saved = json.loads((folder / "config.json").read_text())["config"]
    return exp.Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})


def test_affine_tiny_run_summary_invariants_and_plot(sound, monkeypatch, tmp_path):
    folder, store = sound
    monkeypatch.setenv("THEORYRL_BASES", str(store))
    summary = _summary(folder)
    assert [(r["seed"], r["arm"]) for r in summary["rows"]] == [
        (s, a) for s in (42, 43) for a in ("uniform", "hard", "short")]
    # precondition: both bases end the distance-1 answer at the worked solution's length
    for row in summary["rows"]:
        assert row["base_gate_passed"] and row["in_verdicts"], row["base_len_by_distance"]
    assert "verdict_seeds_excluded" not in summary["metrics"]
    assert set(summary["verdicts"]) == {c + s for c in CLAIMS for s in SUFFIXES} | {"short_below_uniform"}
    arrays = load_npz(folder / "arrays.npz")
    assert arrays["rl_eval_acc"].shape == (6, 2, 3)  # [runs, chunks, distances 1..L-1]
    assert arrays["pretrain_eval_acc"].shape == (2, 2, 3)
    assert arrays["rl_eval_sample_acc"].shape == (6, 2, 3) and arrays["pretrain_eval_sample_acc"].shape == (2, 2, 3)
    # a process-verified solution is also a right answer, so its rate can never be higher
    assert np.all(arrays["rl_eval_process_acc"] <= arrays["rl_eval_acc"])
    assert np.all(arrays["pretrain_eval_process_acc"] <= arrays["pretrain_eval_acc"])
    assert np.all(arrays["rl_eval_sample_process_acc"] <= arrays["rl_eval_sample_acc"])
    # 2 samples of 8 problems per distance: the sampled rates are multiples of 1/16
    np.testing.assert_allclose(arrays["rl_eval_sample_acc"] * 16, np.round(arrays["rl_eval_sample_acc"] * 16), atol=1e-5)
    # each verdict is the paper's threshold applied to the reported metric it names (both seeds gated);
    # "stays low" is judged only when the uniform arm reached the threshold on the same measure
    m, v = summary["metrics"], summary["verdicts"]
    for suffix, metric in (("", "hard_acc"), ("_verified", "hard_process_acc"), ("_sampled", "hard_sample_acc"),
                           ("_sampled_verified", "hard_sample_process_acc")):
        up, low = v["uniform_solves_hardest" + suffix], v["hard_only_stays_low" + suffix]
        assert up["value"] == pytest.approx(m[f"uniform_{metric}"]) and up["threshold"] == 0.957
        assert up["status"] == ("pass" if m[f"uniform_{metric}"] >= 0.957 else "fail")
        assert low["value"] == pytest.approx(m[f"hard_{metric}"]) and low["threshold"] == 0.05
        assert low["status"] == (("pass" if m[f"hard_{metric}"] <= 0.05 else "fail") if up["status"] == "pass"
                                 else "not judged")
        assert "seeds 42, 43" in up["reason"]
    assert m["pretrained_sample_acc_d3"] == arrays["pretrain_eval_sample_acc"][:, -1, 2].mean()
    # the per-arm zero-advantage fraction is the mean of that arm's logged curve
    hard_runs = arrays["run_arm"] == "hard"
    assert np.isclose(m["hard_zero_adv_groups"], arrays["rl_zero_adv_groups"][hard_runs].mean())
    assert 0.0 <= m["uniform_zero_adv_groups"] <= 1.0
    # the base's solution probability: recomputed token by token from the logits of the stored base
    cfg = _cfg(folder)
    seed43 = [r for r in summary["rows"] if r["seed"] == 43]
    assert len({r["base_id"] for r in seed43}) == 1
    stored = BaseStore(store).load(seed43[0]["base_id"])
    model = exp._model(cfg)
    params = lm_runs.params_from_arrays(model, stored.arrays)
    problems = exp._eval_data(cfg, np.int32(43))
    tokens, loss_mask = eq.solution_tokens(cfg.task(), problems)
    i = cfg.eval_per_distance + 3  # distance 2, fourth problem
    logits = np.asarray(tfm.forward(model, params, tokens[i:i + 1]).logits_BxTxV[0], np.float64)
    p_next = np.exp(logits - logits.max(-1, keepdims=True))
    p_next /= p_next.sum(-1, keepdims=True)
    targets = np.flatnonzero(np.asarray(loss_mask[i]))
    expected = np.prod([p_next[t - 1, int(tokens[i, t])] for t in targets])
    np.testing.assert_allclose(arrays["pretrain_solution_prob"][1, 1, 3], expected, rtol=1e-4)
    mixed = 1 - arrays["pretrain_solution_prob"] ** 4 - (1 - arrays["pretrain_solution_prob"]) ** 4
    assert np.isclose(m["pretrained_mixed_group_prob_d2"], mixed[:, 1].mean())
    for r, row in enumerate(summary["rows"]):
        assert row["hard_acc"] == row["acc_by_distance"][-1]
        assert row["hard_process_acc"] == row["process_acc_by_distance"][-1]
        assert row["hard_sample_process_acc"] == row["sample_process_acc_by_distance"][-1]
        np.testing.assert_array_equal(row["sample_process_acc_by_distance"], arrays["rl_eval_sample_process_acc"][r, -1])
        seed_index = (42, 43).index(row["seed"])
        np.testing.assert_array_equal(row["base_process_acc_by_distance"],
                                      arrays["pretrain_eval_process_acc"][seed_index, -1])
        np.testing.assert_array_equal(row["base_sample_process_acc_by_distance"],
                                      arrays["pretrain_eval_sample_process_acc"][seed_index, -1])
        base_len = arrays["pretrain_eval_len"][seed_index, -1]
        np.testing.assert_array_equal(row["base_len_by_distance"], base_len)
        # pre-trained on distance 1 only, whose worked solution is 18 tokens (10 + 8 per step)
        assert row["base_writes_trained_lengths"] == bool(abs(base_len[0] - 18) < 4) == row["base_gate_passed"]
    # each RL run starts from its seed's base: the seed-mean of the rows' base accuracy is the metric
    assert summary["metrics"]["pretrained_hard_acc"] == np.mean([r["base_hard_acc"] for r in summary["rows"]])
    assert [p.name for p in exp.plot(folder, tmp_path / "fig")] == ["affine-uniform-vs-hard.png"]
    # a finished folder is not redone
    assert execute(exp, "quick", SOUND, out=folder, quiet=True) == folder


def test_rl_knobs_reuse_the_base(sound, monkeypatch, tmp_path, capsys):
    folder, store = sound
    monkeypatch.setenv("THEORYRL_BASES", str(store))
    t0 = time.time()
    again = execute(exp, "quick", SOUND + ["rl_lr=1e-3"], out=tmp_path / "b", quiet=False)
    TIMES["reuses base"] = time.time() - t0
    log = capsys.readouterr().err
    first, second = _summary(folder), _summary(again)
    ids = {r["seed"]: r["base_id"] for r in first["rows"]}
    assert len(set(ids.values())) == 2
    assert {r["seed"]: r["base_id"] for r in second["rows"]} == ids
    for bid in ids.values():
        assert f"reusing stored base {bid}" in log
    assert "stored base" not in log.replace("reusing stored base", "")  # nothing new was trained into the store
    assert sorted(p.name for p in store.iterdir() if not p.name.startswith(".")) == sorted(ids.values())
    assert not [p for p in (again / "buckets").iterdir() if p.name.startswith("pretrain")]
    # the same bases, so the same base metrics; the RL runs did change
    assert second["metrics"]["pretrained_solution_prob_d2"] == first["metrics"]["pretrained_solution_prob_d2"]
    assert [r["base_len_by_distance"] for r in second["rows"]] == [r["base_len_by_distance"] for r in first["rows"]]
    print(f"\naffine tiny wall times: {', '.join(f'{k} {v:.1f} s' for k, v in TIMES.items())}")


def test_verdicts_are_judged_over_the_seeds_whose_base_passed(sound):
    """Seed 43's base marked failed: the claims are judged on seed 42's runs alone."""
    folder, store = sound
    cfg = _cfg(folder)
    ctx = RunContext(exp.ID, "quick", RunDir(folder), quiet=True, store=BaseStore(store))
    (runs,) = run_stages(ctx, exp, [cfg])  # every run loaded: bases from the store, RL from its bucket
    assert all(run.reused for run in runs.where(stage="pretrain"))
    failed = Gate(False, "marked failed by the test", {})
    runs = Runs([dataclasses.replace(run, gate=failed) if run.row["seed"] == 43 else run for run in runs])
    outcome = exp.analyze(cfg, runs)
    full = _summary(folder)
    assert outcome.metrics.pop("verdict_seeds_excluded") == 1.0
    assert outcome.metrics == full["metrics"]  # the metrics still cover every seed
    assert [(r["seed"], r["in_verdicts"], r["base_gate_passed"]) for r in outcome.rows] == [
        (s, s == 42, s == 42) for s in (42, 43) for _ in cfg.arms]
    row = {r["arm"]: r for r in outcome.rows if r["seed"] == 42}
    v = outcome.verdicts
    assert all("seeds 42 (bases passed their gate); excluded: seeds 43" in x.reason for x in v.values() if x.judged)
    assert v["uniform_solves_hardest"].value == row["uniform"]["hard_acc"]
    assert v["uniform_solves_hardest"].passed == (row["uniform"]["hard_acc"] >= cfg.hard_level)
    assert v["hard_only_stays_low_verified"].value == row["hard"]["hard_process_acc"]
    # one gated seed: no standard error, so the comparisons of arms are not judged
    assert not v["uniform_much_better_than_hard_sampled"].judged and not v["short_below_uniform"].judged


def test_learning_off_is_legal_and_passes_no_claim(sound, monkeypatch, tmp_path):
    """rl_lr = 0 from the stored sound bases: every RL run ends as its base (greedy accuracy equal on every
    distance), the uniform arm does not reach the threshold, so no claim passes."""
    store = sound[1]
    monkeypatch.setenv("THEORYRL_BASES", str(store))
    off = execute(exp, "quick", SOUND + ["rl_lr=0"], out=tmp_path / "off", quiet=True)
    summary, arrays = _summary(off), load_npz(off / "arrays.npz")
    assert not any(summary["verdict"].values())
    assert not any(v["status"] == "pass" for v in summary["verdicts"].values())
    seed_index = [(42, 43).index(int(s)) for s in arrays["run_seed"]]
    np.testing.assert_array_equal(arrays["rl_eval_acc"][:, -1], arrays["pretrain_eval_acc"][seed_index, -1])


def test_failed_gate_leaves_the_claims_not_judged(tmp_path):
    # 20 NTP steps: the base has not learned where the answer ends
    folder = execute(exp, "quick", TINY, out=tmp_path / "t", quiet=True)
    summary = _summary(folder)
    (bid,) = {r["base_id"] for r in summary["rows"]}
    stored = BaseStore(os.environ["THEORYRL_BASES"]).load(bid)  # this test's own store (conftest)
    measured = stored.gate.measured
    assert measured["distance"] == [1]
    lengths, solution = np.array(measured["mean_greedy_len"]), eq.solution_len(np.array(measured["distance"]))
    assert np.any(np.abs(lengths - solution) >= 4)  # it really fails: not the worked solution's length
    np.testing.assert_array_equal(lengths, load_npz(folder / "arrays.npz")["pretrain_eval_len"][0, -1, :1])
    assert not stored.gate.passed
    for row in summary["rows"]:
        assert row["base_gate_passed"] is False and row["in_verdicts"] is False
        assert row["base_writes_trained_lengths"] is False
    assert summary["verdict"] == {}
    claims = {c + s for c in CLAIMS for s in ("", "_verified")} | {"short_below_uniform"}
    assert set(summary["not_judged"]) == claims
    assert all("seeds 42" in reason for reason in summary["not_judged"].values())
    assert summary["metrics"]["verdict_seeds_excluded"] == 1.0
    assert [p.name for p in exp.plot(folder, tmp_path / "fig")] == ["affine-uniform-vs-hard.png"]


def _base_ids(cfg: exp.Config) -> list[str]:
    return [base_id(plan.base_key) for plan in exp.stages(cfg)[0].plans(Runs())]


def test_base_address_changes_with_pretraining_knobs_only():
    cfg = exp.Config(chain_len=4, pretrain_max_distance=1, short_max_distance=2, seeds=(42, 43))
    ids = _base_ids(cfg)
    assert len(set(ids)) == 2  # one base per seed
    pretraining = {"slip": 0.5, "slip_sign": "global", "pretrain_lr": 1e-3, "pretrain_steps": 1000,
                   "pretrain_batch": 16, "pretrain_chunk": 125, "reading_steps": 500, "d_model": 64, "n_layers": 1,
                   "n_heads": 2, "token_shift": 2, "rope": True, "eval_per_distance": 32, "eval_samples": 0,
                   "temperature": 1.5, "chain_len": 5, "reading_chain_len": 2, "pretrain_max_distance": 2}
    rl_only = {"rl_lr": 1e-3, "rl_steps": 300, "prompts_per_step": 8, "group_size": 4, "arms": ("uniform",),
               "short_max_distance": 1, "steps_per_chunk": 25, "hard_level": 0.6, "fail_level": 0.2,
               "reward": "process"}
    # every knob is one or the other, so a new knob has to be placed
    assert set(pretraining) | set(rl_only) | {"seeds"} == {f.name for f in dataclasses.fields(exp.Config)}
    for knob, value in pretraining.items():
        assert set(_base_ids(dataclasses.replace(cfg, **{knob: value}))).isdisjoint(ids), knob
    for knob, value in rl_only.items():
        assert _base_ids(dataclasses.replace(cfg, **{knob: value})) == ids, knob
    assert _base_ids(dataclasses.replace(cfg, seeds=(43,))) == ids[1:]


def test_slip_widens_the_value_range():
    # slipped demonstrations drift by up to L-1 = 3: the vocabulary holds 3 more values on each side
    cfg = exp.Config(chain_len=4, pretrain_max_distance=1, short_max_distance=2, slip=0.5)
    exact = exp.Config(chain_len=4, pretrain_max_distance=1, short_max_distance=2, slip=0.0)
    assert cfg.task().num_values == exact.task().num_values + 6
    assert cfg.reading_task().value0 == cfg.task().value0 and cfg.reading_task().num_values == cfg.task().num_values


def test_bad_reward_is_named_before_any_compute():
    with pytest.raises(ConfigError, match="'reward'"):
        exp.Config(reward="exact").validate()
    with pytest.raises(ConfigError, match="'slip'"):
        exp.Config(slip=1.0).validate()
    with pytest.raises(ConfigError, match="'slip_sign'"):
        exp.Config(slip_sign="down").validate()
    with pytest.raises(ConfigError, match="'eval_samples'"):
        exp.Config(eval_samples=-1).validate()
