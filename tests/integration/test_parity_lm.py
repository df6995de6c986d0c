"""The parity transformer experiments end to end at tiny sizes: run folder, summary contract, the
checkpoint hand-over from NTP to RL, and figures."""
import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from theoryrl.core.experiment import execute
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Run
from theoryrl.experiments import parity_leap2, parity_rl, parity_separation, parity_threshold

TINY_LM = ["lm.d_model=16", "lm.n_layers=1", "lm.n_heads=2", "lm.batch=32", "lm.warmup_steps=2", "lm.eval_prompts=32"]


def _summary(folder):
    summary = json.loads((folder / "summary.json").read_text())
    assert (folder / "DONE").exists()
    assert summary["verdict"] and all(isinstance(v, bool) for v in summary["verdict"].values())
    return summary


RL_TINY = ["d=4", "seeds=42", *TINY_LM, "pretrain_steps_per_chunk=10", "rl_steps_per_chunk=2", "prompts_per_step=4",
           "group_size=2", "star_rounds=2", "star_prompts=32", "star_batch=16"]
GOOD_CLAIMS = ("grpo_good_generalises", "grpo_good_length_grows_from_1", "ntp_alone_stays_short")


def _stored_bases():
    root = Path(os.environ["THEORYRL_BASES"])  # the conftest gives every test its own store
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.exists() else []


def test_parity_rl_tiny_run_hands_the_ntp_checkpoints_to_rl(tmp_path):
    sets = [*RL_TINY, "pretrain_steps=30", "algorithms=grpo,star", "starts=good,early", "rl_steps=4"]
    folder = execute(parity_rl, "quick", sets, out=tmp_path / "rl", quiet=True)
    summary = _summary(folder)
    assert [(r["algorithm"], r["start"]) for r in summary["rows"]] == [
        (a, s) for a in ("grpo", "star") for s in ("good", "early")]
    arrays = load_npz(folder / "arrays.npz")
    # every row carries its base's gate, judged on the base's final chain-token accuracy (default good_acc 0.99)
    main_sound = bool(arrays["pretrain_main/chain_token_acc"][0, -1] >= 0.99)
    assert {r["base_gate_passed"] for r in summary["rows"]} == {main_sound}
    assert len({r["base_id"] for r in summary["rows"]}) == 1  # good and early: the one main base of seed 42
    assert "good_checkpoint_reached" in summary["verdict"]  # the learning check itself: always judged
    claims = {*GOOD_CLAIMS, "star_early_fails_to_generalise", "early_checkpoint_in_q_window"}
    assert claims <= set(summary["verdicts"])
    if not main_sound:  # every claim on an unlearned base is not judged (issue 20)
        assert claims <= set(summary["not_judged"])
    assert arrays["grpo/good/acc"].shape == (1, 3)  # [seeds, start + 2 chunks]
    assert arrays["star/good/acc"].shape == (1, 3)  # [seeds, start + 2 rounds]
    for alg in ("grpo", "star"):  # r_cot = 1 implies a correct final answer, example by example
        assert np.all(arrays[f"{alg}/good/greedy_cot"] <= arrays[f"{alg}/good/acc"])
    # the RL runs start from the pretraining checkpoints: the start evaluation (same eval inputs and key)
    # equals the pretraining history at the checkpoint's chunk (early: the first chunk with chain_q in the window)
    for start in ("good", "early"):
        row = next(r for r in summary["rows"] if r["algorithm"] == "grpo" and r["start"] == start)
        if row["ckpt_step"] == 0:  # no chunk in the chain_q window: the initial params, not in the history
            continue
        chunk = row["ckpt_step"] // 10 - 1
        assert arrays[f"grpo/{start}/acc"][0, 0] == arrays["pretrain_main/acc"][0, chunk]
        assert arrays[f"star/{start}/chain_token_acc"][0, 0] == arrays["pretrain_main/chain_token_acc"][0, chunk]
    assert [p.name for p in parity_rl.plot(folder, tmp_path / "fig")] == ["parity-rl.png"]


def test_parity_rl_second_run_with_other_rl_knobs_reuses_the_base(tmp_path, capsys):
    sets = [*RL_TINY, "pretrain_steps=20", "algorithms=grpo", "starts=good", "rl_steps=2"]
    first = execute(parity_rl, "quick", [*sets, "rl_lr=1e-4"], out=tmp_path / "a")
    stored = _stored_bases()
    assert len(stored) == 1  # one seed, one base ("low" is not needed for starts=good)
    assert "reusing stored base" not in capsys.readouterr().err
    second = execute(parity_rl, "quick", [*sets, "rl_lr=3e-3"], out=tmp_path / "b")
    assert f"reusing stored base {stored[0]}" in capsys.readouterr().err
    assert _stored_bases() == stored  # nothing new was trained into the store
    rows = [json.loads((f / "summary.json").read_text())["rows"] for f in (first, second)]
    assert [r["base_id"] for r in rows[0]] == [r["base_id"] for r in rows[1]] == stored
    a, b = load_npz(first / "arrays.npz"), load_npz(second / "arrays.npz")
    assert np.array_equal(a["pretrain_main/loss"], b["pretrain_main/loss"])
    # both RL runs start from the same checkpoint: their start evaluations agree
    assert np.array_equal(a["grpo/good/chain_token_acc"][:, 0], b["grpo/good/chain_token_acc"][:, 0])


def test_parity_rl_failed_gate_leaves_dependent_claims_not_judged(tmp_path):
    # good_acc = 1: every eval chain token right after 10 NTP steps of a width-16 model; it will not be
    sets = [*RL_TINY, "pretrain_steps=10", "low_pretrain_steps=10", "good_acc=1.0", "algorithms=grpo",
            "starts=good,low", "rl_steps=2"]
    folder = execute(parity_rl, "quick", sets, out=tmp_path / "g", quiet=True)
    summary = _summary(folder)
    arrays = load_npz(folder / "arrays.npz")
    assert arrays["pretrain_main/chain_token_acc"][0, -1] < 1.0 and arrays["pretrain_low/chain_token_acc"][0, -1] < 1.0
    assert [r["base_gate_passed"] for r in summary["rows"]] == [False, False]
    assert len({r["base_id"] for r in summary["rows"]}) == 2  # main and low
    not_judged = summary["not_judged"]
    for claim in (*GOOD_CLAIMS, "grpo_low_length_grows"):
        assert claim in not_judged and claim not in summary["verdict"]
        assert "chain_token_acc" in not_judged[claim]  # the reason names what was measured
    assert summary["verdict"]["good_checkpoint_reached"] is False
    # the metrics are still reported
    assert summary["metrics"]["final_acc_mean[grpo,good]"] == float(arrays["grpo/good/acc"][0, -1])


def test_parity_threshold_transformer_family_tiny(tmp_path):
    sets = ["families=transformer", "lm_ds=4", "lm_p_cots=0.1,0.6", "seeds=42", *TINY_LM, "lm_steps=20",
            "lm_chunks=2"]
    folder = execute(parity_threshold, "quick", sets, out=tmp_path / "t", quiet=True)
    summary = _summary(folder)
    assert [(r["family"], r["d"], r["p_cot"]) for r in summary["rows"]] == [("transformer", 4, 0.1),
                                                                           ("transformer", 4, 0.6)]
    assert summary["rows"][0]["theory_p_first_x1"] == 0.55
    claims = {"transition_brackets_1/3[transformer,d=4]", "calibrated_p_eos_x1[transformer,d=4]"}
    assert claims <= set(summary["verdicts"])
    # 20 steps do not teach the chain (chain_token_acc < 0.99): both presuppose it, so neither is judged
    if summary["rows"][0]["chain_token_acc"] < 0.99:
        assert claims <= set(summary["not_judged"])
    arrays = load_npz(folder / "arrays.npz")
    assert arrays["transformer/hist_acc"].shape == (1, 2, 1, 2)  # [d, p, seeds, chunks]
    assert "final_acc" not in arrays  # the AR-linear layout only when that family ran
    for k in ("pi_long_correct", "pi_short_correct", "p_first_x1", "p_eos_x1"):
        assert np.all((arrays[f"transformer/final_{k}"] >= 0) & (arrays[f"transformer/final_{k}"] <= 1))
    assert [p.name for p in parity_threshold.plot(folder, tmp_path / "fig")] == ["parity-threshold.png"]


def test_parity_leap2_tiny(tmp_path):
    sets = ["d=5", "p_cots=0.2,0.3", "chains=leap2", "seeds=42", *TINY_LM, "steps=20", "chunks=2"]
    folder = execute(parity_leap2, "quick", sets, out=tmp_path / "l", quiet=True)
    summary = _summary(folder)
    # d = 5: the leap-2 chain is x1x2, x1..x4, x1..x5 (3 tokens)
    assert [(r["chain"], r["p_cot"], r["chain_len"]) for r in summary["rows"]] == [("leap2", 0.2, 3), ("leap2", 0.3, 3)]
    assert set(summary["verdicts"]) == {"leap2_generalises_below_1/3", "chain_learned[leap2]"}
    # 20 steps do not teach the chain: the claim that presupposes it is not judged, the check fails
    assert summary["verdict"] == {"chain_learned[leap2]": False}
    assert "leap2_generalises_below_1/3" in summary["not_judged"]
    assert load_npz(folder / "arrays.npz")["leap2/hist_acc"].shape == (2, 1, 2)  # [p, seeds, chunks]
    assert [p.name for p in parity_leap2.plot(folder, tmp_path / "fig")] == ["parity-leap2.png"]


def test_parity_separation_tiny(tmp_path):
    sets = ["ds=4", "seeds=42", *TINY_LM, "ntp_steps=20", "pre_steps=20", "steps_per_chunk=10", "rl_steps=4",
            "rl_steps_per_chunk=2", "prompts_per_step=4", "group_size=2"]
    folder = execute(parity_separation, "quick", sets, out=tmp_path / "s", quiet=True)
    summary = _summary(folder)
    assert [(r["arm"], r["d"]) for r in summary["rows"]] == [("ntp", 4), ("ntp_rl", 4)]
    caps = {"ntp": 20 * 32, "ntp_rl": 20 * 32 + 4 * 4 * 2}
    for r in summary["rows"]:
        assert r["cap"] == caps[r["arm"]]
        assert (r["samples"] is None) == (not r["learned"])
        assert r["samples"] is None or r["samples"] <= caps[r["arm"]]  # a learned run stays within its cap
    assert summary["metrics"]["cap_samples[ntp]"] == caps["ntp"]
    # the ntp_rl row carries its stored base's gate: the good checkpoint was reached, i.e. it has pretrain samples
    ntp_row, rl_row = summary["rows"]
    assert "base_id" not in ntp_row and len(_stored_bases()) == 1
    assert rl_row["base_id"] == _stored_bases()[0]
    assert rl_row["base_gate_passed"] == (rl_row["pretrain_samples"] is not None)
    # reaching the checkpoint is part of the arm's cost: the claim is judged either way, and a failed
    # base is an ntp_rl run that did not learn
    assert "ntp_rl_learns_every_d" in summary["verdict"]  # a positive claim: judged whatever happened
    if not rl_row["base_gate_passed"]:
        assert rl_row["learned"] is False and summary["verdict"]["ntp_rl_learns_every_d"] is False
    assert [p.name for p in parity_separation.plot(folder, tmp_path / "fig")] == ["parity-separation.png"]


def test_parity_rl_early_claims_are_not_judged_without_an_early_checkpoint():
    """early_step is the first main-pretraining step whose chunk ended with chain_q in the window (0: none did,
    so the 'early' start would be the random init). Seed 43 never was below it -> not judged, naming 43."""
    cfg = dataclasses.replace(parity_rl.TIERS["quick"], seeds=(42, 43))

    def base(seed, early_steps):
        return Run("pretrain", {"base": "main", "seed": seed}, {"history/early_step": np.array(early_steps)})

    both = {("main", 42): base(42, [100, 200, 200]), ("main", 43): base(43, [0, 300, 300])}
    assert parity_rl._no_early_checkpoint(cfg, both) is None
    one_never = {("main", 42): base(42, [100, 200, 200]), ("main", 43): base(43, [0, 0, 0])}
    assert parity_rl._no_early_checkpoint(cfg, one_never) == (
        "no early checkpoint (chain_q was never in [0.5, 0.99] at a chunk end) for seeds [43]")
