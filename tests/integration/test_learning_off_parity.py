"""Learning switched off (issue 20): the parity experiments (parity-separation, parity-rl,
parity-threshold, parity-leap2, parity-star) run end to end at tiny sizes with (a) every learning
rate 0 (steps > 0) and (b) every step / round / sample count 0, finish, pass no claim, and leave
the model where it started.

Why: a claim that passes when nothing was learned is vacuous. Each case runs the real experiment
through `execute` into its own folder and base store (THEORYRL_BASES, see conftest). The AR-linear
learners have no learning rate (eta_t = 1/(lam t)): their "learning" is the number of samples, STaR
rounds or fit epochs, so their (a) cases switch those off instead, and parity-star's calibrated arm
(a simulation of the theory's recursion, no learner) is switched off by rounds = 0 in (b)."""
import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from theoryrl.core import verdicts as V
from theoryrl.core.experiment import execute
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Run, Runs
from theoryrl.experiments import parity_leap2, parity_rl, parity_separation, parity_star, parity_threshold
from theoryrl.experiments import parity_threshold as pt

TINY_LM = ["lm.d_model=16", "lm.n_layers=1", "lm.n_heads=2", "lm.batch=8", "lm.warmup_steps=1", "lm.eval_prompts=16"]


def _run(module, sets, out):
    folder = execute(module, "quick", sets, out=out, quiet=True)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["verdicts"], "no claim recorded"
    passed = [claim for claim, v in summary["verdicts"].items() if v["status"] == V.PASS]
    assert not passed, f"claims passed with learning switched off: {passed}"
    assert not any(summary["verdict"].values())
    return folder, summary


def _arrays(folder: Path) -> list[dict]:
    """The arrays of every bucket of the run and of every base in its store."""
    roots = [folder, Path(os.environ["THEORYRL_BASES"])]
    return [load_npz(path) for root in roots for path in sorted(root.rglob("*.npz"))]


def _histories(folder: Path, metric: str) -> list[np.ndarray]:
    """Every history of `metric` as [runs, chunks] (a stored base holds one run: [chunks])."""
    out = [np.atleast_2d(a[f"history/{metric}"]) for a in _arrays(folder) if f"history/{metric}" in a]
    assert out, f"no history of {metric}"
    return out


def _constant_over_chunks(history: np.ndarray) -> bool:
    return history.shape[1] > 0 and bool(np.all(history == history[:, :1]))


# ---------------------------------------------------------------- parity-separation
SEP = ["ds=4", "seeds=42", *TINY_LM, "steps_per_chunk=2", "rl_steps_per_chunk=1", "prompts_per_step=2", "group_size=2"]


def test_separation_lr_0(tmp_path):
    folder, summary = _run(parity_separation, [*SEP, "lm.lr=0", "rl_lr=0", "ntp_steps=4", "pre_steps=4", "rl_steps=2"],
                           tmp_path / "s")
    assert not any(r["learned"] for r in summary["rows"])
    # AdamW steps of size 0: greedy accuracy on the fixed eval prompts never moves, in NTP and in RL
    assert all(_constant_over_chunks(h) for h in _histories(folder, "acc"))
    rl = [a for a in _arrays(folder) if "history/start_acc" in a]  # RL evaluates its start beside each chunk end
    assert rl and all(np.array_equal(a["history/acc"], a["history/start_acc"]) for a in rl)


def test_separation_zero_steps(tmp_path):
    folder, summary = _run(parity_separation, [*SEP, "ntp_steps=0", "pre_steps=0", "rl_steps=0"], tmp_path / "s")
    assert [(r["arm"], r["learned"], r["final_acc"], r["cap"]) for r in summary["rows"]] == [
        ("ntp", False, None, 0), ("ntp_rl", False, None, 0)]
    assert all(h.shape[1] == 0 for h in _histories(folder, "acc"))  # no chunk ran: the initial models
    # 0 steps trained nothing: the learning check is not judged (issue 20 review item 7; lr 0 fails it)
    assert summary["verdicts"]["ntp_rl_learns_every_d"]["status"] == V.NOT_JUDGED
    assert parity_separation.plot(folder, tmp_path / "fig")  # the figure of a run that trained nothing


def test_separation_zero_steps_at_two_ds_judges_no_cost_growth():
    """With two d (analyze on the runs a 0-step run leaves: empty histories), both caps are 0 samples:
    no cost growth to compare, not judged (and no log2 of 0)."""
    cfg = dataclasses.replace(parity_separation.TIERS["quick"], ds=(4, 5), seeds=(1, 2), ntp_steps=0, pre_steps=0,
                              rl_steps=0)
    empty = np.zeros(0, np.float32)
    runs = Runs([Run(stage, {"arm": arm, "d": d, "seed": s}, {f"history/{k}": empty for k in keys})
                 for stage, arm, keys in (("ntp", "ntp", ("acc",)), ("pretrain", "ntp_rl", ("good_step",)),
                                          ("rl", "ntp_rl", ("acc", "start_acc")))
                 for d in cfg.ds for s in cfg.seeds])
    out = parity_separation.analyze(cfg, runs)
    assert out.verdicts["ntp_cost_grows_faster"].status == V.NOT_JUDGED
    assert not any(v.passed for v in out.verdicts.values())


# ---------------------------------------------------------------- parity-rl
# one RL program per case (each program compiles even with 0 chunks): GRPO at lr 0, STaR at 0 rounds
RL = ["d=4", "seeds=42", *TINY_LM, "pretrain_steps_per_chunk=2", "rl_steps_per_chunk=1", "prompts_per_step=2",
      "group_size=2", "star_prompts=16", "star_batch=16"]


def test_rl_lr_0(tmp_path):
    folder, summary = _run(parity_rl, [*RL, "algorithms=grpo", "starts=good,early", "lm.lr=0", "rl_lr=0", "star_lr=0",
                                       "pretrain_steps=4", "rl_steps=2"], tmp_path / "r")
    for r in summary["rows"]:  # RL at lr 0 leaves the start checkpoint as it was
        assert r["final_acc"] == r["start_acc"] and r["final_len_mean"] == r["start_len_mean"]
    assert all(_constant_over_chunks(h) for h in _histories(folder, "chain_token_acc"))
    assert summary["verdicts"]["good_checkpoint_reached"]["status"] == V.FAIL


def test_rl_zero_steps(tmp_path):
    folder, summary = _run(parity_rl, [*RL, "algorithms=star", "pretrain_steps=0", "low_pretrain_steps=0", "rl_steps=0",
                                       "star_rounds=0"], tmp_path / "r")
    assert {r["start"] for r in summary["rows"]} == {"good", "early", "low"}
    assert all(r["final_acc"] is None and r["ckpt_chain_acc"] is None for r in summary["rows"])
    assert all(h.shape[1] == 0 for h in _histories(folder, "acc"))
    # 0 NTP steps trained nothing: the learning check is not judged (issue 20 review item 7; lr 0 fails it)
    assert summary["verdicts"]["good_checkpoint_reached"]["status"] == V.NOT_JUDGED
    assert summary["metrics"]["pretrain_main_reached_good_fraction"] == 0.0
    assert parity_rl.plot(folder, tmp_path / "fig")


# ---------------------------------------------------------------- parity-threshold
TH_LM = ["lm_ds=4", "lm_p_cots=0.1,0.6", *TINY_LM, "lm_chunks=2"]


def test_threshold_lr_0(tmp_path):
    # the AR-linear family has no learning rate: its learning switched off is case (b)'s 0 samples
    folder, summary = _run(parity_threshold, ["families=transformer", "seeds=42", *TH_LM, "lm.lr=0", "lm_steps=4"],
                           tmp_path / "t")
    arrays = load_npz(folder / "arrays.npz")
    for k in ("acc", "p_first_x1", "chain_token_acc"):
        assert np.all(arrays[f"transformer/hist_{k}"] == arrays[f"transformer/hist_{k}"][..., :1])


def test_threshold_zero_samples(tmp_path):
    # p_cot = 0.05 at d = 4: half the long mass (0.025) is below the untrained model's pi(long correct)
    # 2^-5, so "the chain was learned" must also ask for more than the untrained model has; otherwise
    # greedy_short_for_p_le_0.3 passes on the untrained model (greedy accuracy ~0.5)
    sets = ["families=ar_linear,transformer", "ds=4", "p_cots=0.05,0.6", "seeds=42", "head_samples=0",
            "chain_samples=0", "chunks=2", "eval_prompts=64", *TH_LM, "lm_steps=0"]
    folder, summary = _run(parity_threshold, sets, tmp_path / "t")
    arrays = load_npz(folder / "arrays.npz")
    # every chunk evaluates the zero-initialised model: every head a fair coin
    assert np.all(arrays["hist_pi_long_correct"] == pt.untrained_long_correct(4))
    assert np.all(arrays["hist_p_first_x1"] == 0.5)
    assert arrays["transformer/hist_acc"].shape[-1] == 0
    assert all(r["acc"] is None for r in summary["rows"] if r["family"] == "transformer")
    assert summary["verdicts"]["greedy_short_for_p_le_0.3[ar_linear,d=4]"]["status"] == V.NOT_JUDGED
    assert parity_threshold.plot(folder, tmp_path / "fig")


# ---------------------------------------------------------------- parity-leap2
LEAP = ["d=4", "p_cots=0.2,0.3", "seeds=42", *TINY_LM, "chunks=2"]


def test_leap2_lr_0(tmp_path):
    folder, summary = _run(parity_leap2, [*LEAP, "chains=leap2", "lm.lr=0", "steps=4"], tmp_path / "l")
    hist = load_npz(folder / "arrays.npz")["leap2/hist_chain_token_acc"]
    assert np.all(hist == hist[..., :1])
    assert summary["verdicts"]["chain_learned[leap2]"]["status"] == V.FAIL


def test_leap2_zero_steps(tmp_path):
    folder, summary = _run(parity_leap2, [*LEAP, "chains=full", "steps=0"], tmp_path / "l")
    assert all(r["acc"] is None for r in summary["rows"])
    assert load_npz(folder / "arrays.npz")["full/hist_acc"].shape == (2, 1, 0)
    # 0 steps trained nothing: even the learning check is not judged (issue 20 review item 7; lr 0 fails it)
    assert {k: v["status"] for k, v in summary["verdicts"].items()} == {
        "chain_learned[full]": V.NOT_JUDGED, "full_stays_short_below_1/3": V.NOT_JUDGED}
    assert parity_leap2.plot(folder, tmp_path / "fig")


# ---------------------------------------------------------------- parity-star
STAR = ["seeds=42", "learned_d=4", "learned_prompts=64", "learned_batch=8", "pg_steps_per_chunk=1", "pg_prompts=4",
        "pg_group=2", "eval_prompts=16", "calib_prompts=64"]


def test_star_lr_0(tmp_path):
    # pg at lr 0; STaR has no learning rate: its fit is switched off by 0 epochs (the rounds still sample).
    # p0 = 0.5 > 1/3: NTP alone already generalises, so the accuracy and switch claims must not credit
    # post-training with it
    sets = [*STAR, "arms=star,pg", "p0s=0.25,0.5", "head_samples=4000", "chain_samples=400", "rounds=2", "epochs=0",
            "pg_lr=0", "pg_steps=2"]
    folder, summary = _run(parity_star, sets, tmp_path / "p")
    arrays = load_npz(folder / "arrays.npz")
    for key in ("star,cot,0", "star,e2e,1", "pg,grpo,0", "pg,reinforce,1"):
        assert np.all(arrays[f"{key}/long"] == arrays[f"{key}/long"][:, :1]), key  # pi(long correct) never moves


def test_star_zero_rounds_and_samples(tmp_path):
    sets = [*STAR, "p0s=0.25", "head_samples=0", "chain_samples=0", "rounds=0", "pg_steps=0"]
    folder, summary = _run(parity_star, sets, tmp_path / "p")
    # the calibrated arm is a simulation of the theory, no learner: 0 rounds simulate nothing, not judged
    assert {k: v["status"] for k, v in summary["verdicts"].items()} == {k: V.NOT_JUDGED for k in summary["verdicts"]}
    assert "sim_calibrated_switch_round_equals_formula[p0=0.25]" in summary["verdicts"]
    assert all(r["final_long"] is None for r in summary["rows"])
    assert all(h.shape[1] == 0 for h in _histories(folder, "acc"))
    assert parity_star.plot(folder, tmp_path / "fig")
