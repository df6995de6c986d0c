"""affine-uniform-vs-hard end to end at a tiny size: two buckets (NTP, then GRPO from its checkpoint),
the summary contract, the invariants between its metrics, resume, and the figure."""
import json

import numpy as np
import pytest

from theoryrl.core.config import ConfigError
from theoryrl.core.experiment import execute
from theoryrl.core.results import load_npz
from theoryrl.experiments import affine_uniform_vs_hard as exp
from theoryrl.models import transformer as tfm
from theoryrl.rl import lm_runs
from theoryrl.tasks import equations as eq

TINY = ["chain_len=4", "slip=0", "eval_samples=0", "token_shift=4", "pretrain_max_distance=1", "reading_steps=10", "short_max_distance=2", "seeds=42,43", "d_model=32",
        "pretrain_steps=20", "pretrain_chunk=10", "pretrain_batch=16", "rl_steps=4", "steps_per_chunk=2",
        "prompts_per_step=4", "group_size=4", "eval_per_distance=8"]


def test_affine_tiny_run_summary_invariants_and_plot(tmp_path):
    folder = execute(exp, "quick", TINY, out=tmp_path / "a", quiet=True)
    summary = json.loads((folder / "summary.json").read_text())
    assert [(r["seed"], r["arm"]) for r in summary["rows"]] == [
        (s, a) for s in (42, 43) for a in ("uniform", "hard", "short")]
    claims = ("uniform_solves_hardest", "hard_only_stays_low", "uniform_much_better_than_hard")
    assert set(summary["verdict"]) == {*claims, *(c + "_verified" for c in claims), "short_below_uniform"}
    arrays = load_npz(folder / "arrays.npz")
    assert arrays["rl_eval_acc"].shape == (6, 2, 3)  # [runs, chunks, distances 1..L-1]
    assert arrays["pretrain_eval_acc"].shape == (2, 2, 3)
    # a process-verified solution is also a right answer, so its rate can never be higher
    assert np.all(arrays["rl_eval_process_acc"] <= arrays["rl_eval_acc"])
    assert np.all(arrays["pretrain_eval_process_acc"] <= arrays["pretrain_eval_acc"])
    # each verdict is its threshold applied to the reported metric it names
    m, v = summary["metrics"], summary["verdict"]
    assert v["hard_only_stays_low_verified"] == (m["hard_hard_process_acc"] <= 0.1)
    assert v["uniform_solves_hardest"] == (m["uniform_hard_acc"] >= 0.5)
    # the per-arm zero-advantage fraction is the mean of that arm's logged curve
    hard_runs = arrays["run_arm"] == "hard"
    assert np.isclose(m["hard_zero_adv_groups"], arrays["rl_zero_adv_groups"][hard_runs].mean())
    assert 0.0 <= m["uniform_zero_adv_groups"] <= 1.0
    # the base's solution probability: recomputed token by token from the logits of the saved base
    saved = json.loads((folder / "config.json").read_text())["config"]
    cfg = exp.Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})
    bucket = load_npz(folder / "buckets" / "pretrain.npz")
    model = exp._model(cfg)
    params = lm_runs.params_from_arrays(model, {k: v[1] for k, v in bucket.items()})
    problems = exp._eval_data(cfg, {"seed": np.int32(43)})
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
    for row in summary["rows"]:
        assert row["hard_acc"] == row["acc_by_distance"][-1]
        assert row["hard_process_acc"] == row["process_acc_by_distance"][-1]
        seed_index = (42, 43).index(row["seed"])
        np.testing.assert_array_equal(row["base_process_acc_by_distance"],
                                      arrays["pretrain_eval_process_acc"][seed_index, -1])
        base_len = arrays["pretrain_eval_len"][seed_index, -1]
        np.testing.assert_array_equal(row["base_len_by_distance"], base_len)
        # pre-trained on distance 1 only, whose worked solution is 18 tokens (10 + 8 per step)
        assert row["base_writes_trained_lengths"] == bool(abs(base_len[0] - 18) < 4)
    # the RL stage starts from the NTP checkpoint of its seed: both seeds' runs share one pretrained base
    assert summary["metrics"]["pretrained_hard_acc"] == np.mean([r["base_hard_acc"] for r in summary["rows"]])
    assert [p.name for p in exp.plot(folder, tmp_path / "fig")] == ["affine-uniform-vs-hard.png"]
    # a finished folder is not redone
    assert execute(exp, "quick", TINY, out=tmp_path / "a", quiet=True) == folder


def test_affine_slipped_demonstrations_and_sampled_evaluation(tmp_path):
    knobs = [k for k in TINY if not k.startswith("seeds=")] + ["seeds=42", "arms=uniform,hard", "slip=0.5",
                                                               "slip_sign=global", "eval_samples=2"]
    folder = execute(exp, "quick", knobs, out=tmp_path / "s", quiet=True)
    assert json.loads((folder / "config.json").read_text())["config"]["slip_sign"] == "global"
    summary = json.loads((folder / "summary.json").read_text())
    m, v = summary["metrics"], summary["verdict"]
    claims = ("uniform_solves_hardest", "hard_only_stays_low", "uniform_much_better_than_hard")
    assert set(v) == {c + suffix for c in claims for suffix in ("", "_verified", "_sampled", "_sampled_verified")}
    arrays = load_npz(folder / "arrays.npz")
    assert arrays["rl_eval_sample_acc"].shape == (2, 2, 3) and arrays["pretrain_eval_sample_acc"].shape == (1, 2, 3)
    assert arrays["pretrain_eval_sample_process_acc"].shape == (1, 2, 3)
    # 2 samples of 8 problems per distance: the sampled rates are multiples of 1/16
    np.testing.assert_allclose(arrays["rl_eval_sample_acc"] * 16, np.round(arrays["rl_eval_sample_acc"] * 16), atol=1e-5)
    assert np.all(arrays["rl_eval_sample_process_acc"] <= arrays["rl_eval_sample_acc"])
    assert v["uniform_solves_hardest_sampled"] == (m["uniform_hard_sample_acc"] >= 0.5)
    assert v["hard_only_stays_low_sampled"] == (m["hard_hard_sample_acc"] <= 0.1)
    assert v["uniform_solves_hardest_sampled_verified"] == (m["uniform_hard_sample_process_acc"] >= 0.5)
    assert m["pretrained_sample_acc_d3"] == arrays["pretrain_eval_sample_acc"][0, -1, 2]
    assert m["pretrained_sample_process_acc_d3"] == arrays["pretrain_eval_sample_process_acc"][0, -1, 2]
    for r, row in enumerate(summary["rows"]):
        assert row["hard_sample_process_acc"] == row["sample_process_acc_by_distance"][-1]
        np.testing.assert_array_equal(row["sample_process_acc_by_distance"], arrays["rl_eval_sample_process_acc"][r, -1])
        np.testing.assert_array_equal(row["base_sample_process_acc_by_distance"],
                                      arrays["pretrain_eval_sample_process_acc"][0, -1])
    # slipped demonstrations drift by up to L-1 = 3: the vocabulary holds 3 more values on each side
    cfg = exp.Config(chain_len=4, pretrain_max_distance=1, short_max_distance=2, slip=0.5)
    exact = exp.Config(chain_len=4, pretrain_max_distance=1, short_max_distance=2, slip=0.0)
    assert cfg.task().num_values == exact.task().num_values + 6
    assert cfg.reading_task().value0 == cfg.task().value0 and cfg.reading_task().num_values == cfg.task().num_values
    assert [p.name for p in exp.plot(folder, tmp_path / "fig")] == ["affine-uniform-vs-hard.png"]


def test_bad_reward_is_named_before_any_compute():
    with pytest.raises(ConfigError, match="'reward'"):
        exp.Config(reward="exact").validate()
    with pytest.raises(ConfigError, match="'slip'"):
        exp.Config(slip=1.0).validate()
    with pytest.raises(ConfigError, match="'slip_sign'"):
        exp.Config(slip_sign="down").validate()
    with pytest.raises(ConfigError, match="'eval_samples'"):
        exp.Config(eval_samples=-1).validate()
