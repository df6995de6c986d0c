"""The exploration experiments' claims on hand-built runs: each passes where its effect is built in,
fails where the arms are identical (what learning off gives: the same questions, keys and samples),
and is not judged without training, without a usable seed, or without enough unsolved questions.

Runs are built directly (history of per-question coverage, final test tables), so every expected
verdict follows from the numbers written here: e.g. RL solving 8 of 20 questions in the first
epoch against the base's 0 is a paired gain of 0.4 whose bootstrap interval lies above 0.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from theoryrl.core.stages import Run
from theoryrl.core.verdicts import FAIL, NOT_JUDGED, PASS
from theoryrl.experiments import explore_ablations as abl
from theoryrl.experiments import explore_batch as bat
from theoryrl.experiments import explore_historical as his
from theoryrl.experiments import explore_rl_as_sampling as ras
from theoryrl.rl import explore_runs as er

KNOBS = er.ExploreKnobs(num_questions=20, prompts_per_step=2, group_size=2, epochs=2, epochs_per_chunk=1,
                        test_samples=8, k_max=8, diff_k=4)


def _table(perfect, answers=None, entropy=None, answer_only=None) -> dict:
    perfect = np.asarray(perfect, bool)
    n = perfect.shape[0]
    return {"perfect": perfect, "answer_correct": perfect,
            "answer": np.zeros(perfect.shape, np.int32) if answers is None else np.asarray(answers),
            "entropy": np.ones(perfect.shape) if entropy is None else np.asarray(entropy, float),
            "answer_only_pairs": np.zeros(n, np.int64) if answer_only is None else np.asarray(answer_only),
            "same_reasoning_pairs": np.full(n, 28, np.int64)}


def _run(arm, solved, distinct, table, correct=None) -> Run:
    solved = np.asarray(solved, float)
    arrays = {"history/solved_Q": solved, "history/distinct_Q": np.asarray(distinct, float),
              "history/correct_Q": solved if correct is None else np.asarray(correct, float)}
    arrays.update({f"final/test/{k}": v for k, v in table.items()})
    return Run(stage="explore", row={"seed": 42, "arm": arm}, arrays=arrays)


def _col(runs: dict, seeds=(42,)) -> er.Collected:
    return er.Collected(runs={(42, a): r for a, r in runs.items()}, seeds=list(seeds), skipped={} if seeds else
                        {42: "base failed its gate"}, bands={42: (6, 6)})


def _statuses(verdicts) -> dict:
    return {k: v.status for k, v in verdicts.items()}


def _same_everywhere(arms, q=20, n=30):
    flat = _table(np.zeros((n, 8)))
    return {a: _run(a, np.zeros((2, q)), np.ones((2, q)), flat) for a in arms}


# ---------------------------------------------------------------- explore-rl-as-sampling


def _ras_runs():
    """20 questions. RL: 8 solved after epoch 1 (base: 0), still 8 at the end; base: 14 at the end.
    Neither solves questions 14..19 (6 >= min_unsolved 5), where RL has 1 distinct answer, base 4."""
    rl_solved = np.zeros((2, 20))
    rl_solved[:, :8] = 1
    base_solved = np.zeros((2, 20))
    base_solved[1, :14] = 1
    table = _table(np.zeros((4, 8)))
    return {"grpo": _run("grpo", rl_solved, np.ones((2, 20)), table),
            "base": _run("base", base_solved, np.full((2, 20), 4.0), table)}


def test_rl_as_sampling_passes_where_built_in():
    v, m = ras._verdicts(ras.Config(explore=KNOBS, early_epochs=1), _col(_ras_runs()))
    assert _statuses(v) == {n: PASS for n in ras.NAMES}
    assert m["rl_minus_base_solved_at_2"] == pytest.approx(0.4)
    assert m["base_minus_rl_solved_at_4"] == pytest.approx(0.3)
    assert m["rl_minus_base_distinct_unsolved_at_4"] == pytest.approx(-3.0)
    assert m["rl_minus_base_distinct_unsolved_at_4_n"] == 6


def test_rl_as_sampling_fails_with_identical_arms_and_is_not_judged_without_training():
    cfg = ras.Config(explore=KNOBS, early_epochs=1)
    v, _ = ras._verdicts(cfg, _col(_same_everywhere(ras.ARMS)))
    assert _statuses(v) == {n: FAIL for n in ras.NAMES}
    v, _ = ras._verdicts(dataclasses.replace(cfg, explore=dataclasses.replace(KNOBS, epochs=0)), _col(_ras_runs()))
    assert _statuses(v) == {n: NOT_JUDGED for n in ras.NAMES}
    v, _ = ras._verdicts(cfg, _col(_ras_runs(), seeds=()))
    assert set(_statuses(v).values()) == {NOT_JUDGED} and "base failed its gate" in v[ras.NAMES[0]].reason
    v, _ = ras._verdicts(dataclasses.replace(cfg, min_unsolved=7), _col(_ras_runs()))
    assert v["rl_fewer_distinct_unsolved"].status == NOT_JUDGED and v["rl_solves_more_early"].status == PASS


# ---------------------------------------------------------------- explore-historical


def _his_runs(ucb_con_correct=6, ucb_solves=True):
    """30 test problems x 8 samples: GRPO never right, UCB variants right 4 of 8 on every problem,
    UCB-Con 6 of 8. Training: UCB solves every question (or none), GRPO none."""
    n = 30

    def tab(c):
        p = np.zeros((n, 8), bool)
        p[:, :c] = True
        return _table(p)

    runs = {a: _run(a, np.zeros((2, 20)), np.ones((2, 20)), tab(4)) for a in his.ARMS}
    runs["grpo"] = _run("grpo", np.zeros((2, 20)), np.ones((2, 20)), tab(0))
    runs["ucb_con"] = _run("ucb_con", np.ones((2, 20)), np.ones((2, 20)), tab(ucb_con_correct))
    runs["ucb"] = _run("ucb", np.full((2, 20), float(ucb_solves)), np.full((2, 20), 5.0), tab(4))
    return runs


def test_historical_passes_where_built_in():
    v, m = his._verdicts(his.Config(explore=KNOBS), _col(_his_runs()))
    st = _statuses(v)
    for arm in his.UCB_ARMS:
        assert st[his.claim_name(arm)] == PASS
    assert st["ucb_con_best_overall"] == PASS
    assert st["ucb_solves_more_train"] == PASS and st["ucb_con_solves_more_train"] == PASS
    # every question solved by UCB: none left that neither solved
    assert st["ucb_rewards_new_wrong_answers"] == NOT_JUDGED
    v, _ = his._verdicts(his.Config(explore=KNOBS), _col(_his_runs(ucb_solves=False)))
    assert v["ucb_rewards_new_wrong_answers"].status == PASS  # 5 distinct vs GRPO's 1 on all 20 unsolved


def test_historical_fails_with_identical_arms_and_when_ucb_con_is_not_best():
    v, _ = his._verdicts(his.Config(explore=KNOBS), _col(_same_everywhere(his.ARMS)))
    assert _statuses(v) == {n: FAIL for n in his.NAMES}
    v, _ = his._verdicts(his.Config(explore=KNOBS), _col(_his_runs(ucb_con_correct=4)))
    assert v["ucb_con_best_overall"].status == FAIL and v["ucb_con_beats_grpo_every_k"].status == PASS


def test_historical_not_judged_without_training_or_seed():
    for cfg, col in ((his.Config(explore=dataclasses.replace(KNOBS, epochs=0)), _col(_his_runs())),
                     (his.Config(explore=KNOBS), _col(_his_runs(), seeds=()))):
        v, _ = his._verdicts(cfg, col)
        assert set(_statuses(v).values()) == {NOT_JUDGED}


# ---------------------------------------------------------------- explore-batch


def _bat_runs(batch_pass1_shift=0):
    """420 problems x 8 samples. Problems 0..19: neither arm right; GRPO states one answer, batch 8
    distinct. Problems 20..419: GRPO right 2 of 8 on half of them and 0 on the other half, batch
    right 1 of 8 on each (same mean pass@1 0.125 of those, pass@8 0.5 vs 1). Batch's entropy is 2
    on every sample, GRPO's 1. batch_pass1_shift > 0 moves GRPO's right samples up (batch pass@1 lower)."""
    n = 420
    g, b = np.zeros((n, 8), bool), np.zeros((n, 8), bool)
    g[20:220, :2 + batch_pass1_shift] = True
    b[20:, :1] = True
    g_ans = np.full((n, 8), 7)
    b_ans = np.tile(np.arange(8), (n, 1))
    runs = {a: _run(a, np.zeros((2, 20)), np.ones((2, 20)), _table(g, g_ans)) for a in bat.ARMS}
    runs["batch"] = _run("batch", np.zeros((2, 20)), np.ones((2, 20)), _table(b, b_ans, entropy=np.full((n, 8), 2.0)))
    return runs


def test_batch_passes_where_built_in():
    v, m = bat._verdicts(bat.Config(explore=KNOBS), _col(_bat_runs()))
    assert _statuses(v) == {n: PASS for n in bat.NAMES}
    assert m["batch_minus_grpo_pass1"] == pytest.approx(0.0, abs=1e-12)
    assert m["batch_minus_grpo_pass8"] == pytest.approx(0.5 * 400 / 420)
    assert m["batch_minus_grpo_diff4_unsolved_n"] == 20


def test_batch_fails_with_identical_arms_or_a_pass1_drop_and_judges_nothing_untrained():
    v, _ = bat._verdicts(bat.Config(explore=KNOBS), _col(_same_everywhere(bat.ARMS)))
    assert _statuses(v) == {"batch_more_distinct_unsolved": FAIL, "batch_higher_pass_at_kmax": FAIL,
                            "batch_pass1_unchanged": NOT_JUDGED, "batch_entropy_incorrect_higher": FAIL}
    v, _ = bat._verdicts(bat.Config(explore=KNOBS), _col(_bat_runs(batch_pass1_shift=4)))
    assert v["batch_pass1_unchanged"].status == FAIL and v["batch_higher_pass_at_kmax"].status == PASS
    v, _ = bat._verdicts(bat.Config(explore=dataclasses.replace(KNOBS, epochs=0)), _col(_bat_runs()))
    assert set(_statuses(v).values()) == {NOT_JUDGED}
    v, _ = bat._verdicts(bat.Config(explore=KNOBS, flat_margin=0.005), _col(_bat_runs()))
    assert v["batch_pass1_unchanged"].status == NOT_JUDGED and "half-width" in v["batch_pass1_unchanged"].reason


# ---------------------------------------------------------------- explore-ablations


def test_ablations_masking_claim_pass_fail_not_judged():
    """Masking off: 10 of each problem's 28 sample pairs share reasoning and differ in the answer;
    masking on: none."""
    cfg = abl.Config(explore=KNOBS)
    runs = _same_everywhere(cfg.arms)
    v, _ = abl._verdicts(cfg, _col(runs))
    assert _statuses(v) == {"masking_off_games_answer": FAIL}
    runs[f"{cfg.variant}:nomask"] = _run("x", np.zeros((2, 20)), np.ones((2, 20)),
                                         _table(np.zeros((30, 8)), answer_only=np.full(30, 10)))
    v, m = abl._verdicts(cfg, _col(runs))
    assert _statuses(v) == {"masking_off_games_answer": PASS}
    assert m["nomask_minus_default_answer_only"] == pytest.approx(10 / 28)
    v, _ = abl._verdicts(abl.Config(explore=dataclasses.replace(KNOBS, epochs=0)), _col(runs))
    assert _statuses(v) == {"masking_off_games_answer": NOT_JUDGED}


def test_ablations_reject_grpo_or_an_unknown_variant():
    from theoryrl.core.config import ConfigError

    for variant in ("grpo", "ucb_sqrt"):
        with pytest.raises(ConfigError):
            abl.Config(variant=variant).validate()
