"""Learning switched off (issue 20): affine-uniform-vs-hard, the bandit experiments, the chain
REINFORCE experiments and the gradient-flow experiments run end to end at tiny sizes with (a) every
learning rate 0 (steps > 0) and (b) every step / round / epoch count 0 (for the flows: the smallest
horizon they take), finish, pass no claim, and leave the model where it started.

Why: a claim that passes when nothing was learned is vacuous. Each case runs the real experiment
through `execute` into its own folder and base store (THEORYRL_BASES, see conftest)."""
import json
import os

import numpy as np
import pytest

from theoryrl.core.bases import BaseStore
from theoryrl.core.experiment import execute
from theoryrl.core.results import load_npz
from theoryrl.experiments import affine_uniform_vs_hard, bandit_diversity, bandit_regret


def _run(module, sets, out, plot=False):
    folder = execute(module, "quick", sets, out=out, quiet=True)
    if plot:  # the figure of an untrained run is drawn from its (possibly empty) histories
        assert all(p.exists() for p in module.plot(folder, out.parent / f"{out.name}-fig"))
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["verdicts"], "no claim recorded"
    passed = [claim for claim, v in summary["verdicts"].items() if v["status"] == "pass"]
    assert not passed, f"claims passed with learning switched off: {passed}"
    assert not any(summary["verdict"].values())
    return folder, summary, load_npz(folder / "arrays.npz")


# ---------------------------------------------------------------- affine-uniform-vs-hard
AFFINE = ["chain_len=3", "reading_chain_len=2", "slip=0", "eval_samples=0", "token_shift=2", "pretrain_max_distance=1",
          "short_max_distance=1", "seeds=42", "d_model=16", "n_layers=1", "n_heads=2", "pretrain_batch=4",
          "prompts_per_step=2", "group_size=2", "eval_per_distance=4", "pretrain_chunk=1", "steps_per_chunk=1"]


def _assert_base_is_initial(folder, summary):
    """The stored base of each seed is the decoder its INIT stream draws: NTP did not move it."""
    import jax

    from theoryrl.core import prng
    from theoryrl.models import transformer as tfm
    from theoryrl.rl import lm_runs

    saved = json.loads((folder / "config.json").read_text())["config"]
    cfg = affine_uniform_vs_hard.Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})
    model = affine_uniform_vs_hard._model(cfg)
    store = BaseStore(os.environ["THEORYRL_BASES"])
    for row in summary["rows"]:
        stored = lm_runs.params_from_arrays(model, store.load(row["base_id"]).arrays)
        initial = tfm.init_params(model, prng.stream_key(prng.root_key(np.int32(row["seed"])), prng.Stream.INIT))
        for a, b in zip(jax.tree.leaves(stored), jax.tree.leaves(initial), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-8)  # jitted vs eager init


# pretrain_lr = rl_lr = 0 in both cases: with 1 step or 0 steps the optimisers are the same (total_steps
# >= 1), so the 0-step run's programs are the 1-step run's (compiled once where the JAX cache is on, as in CI)
AFFINE_OFF = AFFINE + ["pretrain_lr=0", "rl_lr=0", "reading_steps=0"]


def test_affine_learning_rates_zero(tmp_path):
    """pretrain_lr = rl_lr = 0 with 1 NTP and 1 GRPO step: the base is the initial decoder, which fails its
    gate, and every RL arm ends where its base is (greedy evaluations equal on every distance)."""
    folder, summary, arrays = _run(affine_uniform_vs_hard, AFFINE_OFF + ["pretrain_steps=1", "rl_steps=1"],
                                   tmp_path / "lr0")
    assert all(v["status"] == "not judged" for v in summary["verdicts"].values())
    assert all(row["base_gate_passed"] is False for row in summary["rows"])
    _assert_base_is_initial(folder, summary)
    assert arrays["rl_eval_acc"].shape == (3, 1, 2)
    for key in ("eval_acc", "eval_process_acc", "eval_len"):  # one seed: every arm starts from base 0
        np.testing.assert_array_equal(arrays[f"rl_{key}"][:, -1], np.repeat(arrays[f"pretrain_{key}"][:, -1], 3, 0))


def test_affine_zero_steps(tmp_path):
    """pretrain_steps = reading_steps = rl_steps = 0: no history at all, the stored base is the initial
    decoder, and nothing is judged."""
    folder, summary, arrays = _run(affine_uniform_vs_hard, AFFINE_OFF + ["pretrain_steps=0", "rl_steps=0"],
                                   tmp_path / "steps0", plot=True)
    assert all(v["status"] == "not judged" for v in summary["verdicts"].values())
    assert arrays["rl_eval_acc"].shape == (3, 0, 2) and arrays["pretrain_eval_acc"].shape == (1, 0, 2)
    assert all(row["base_gate_passed"] is False for row in summary["rows"])
    _assert_base_is_initial(folder, summary)


# ---------------------------------------------------------------- bandit-regret (no learning rate: steps)
def test_bandit_regret_zero_horizon(tmp_path):
    """horizon = 0: no arm is pulled, the regret table is empty, nothing is judged."""
    sets = ["arms=20,40", "outcomes=2,5", "horizon=0", "steps_per_chunk=100", "algorithms=arm_ucb,outcome_ucb",
            "seeds=42,43", "fit_from=0"]
    _, summary, arrays = _run(bandit_regret, sets, tmp_path / "r", plot=True)
    assert all(v["status"] == "not judged" for v in summary["verdicts"].values())
    assert arrays["regret_mean"].shape == (2, 2, 2, 0)
    assert all(row["T"] == 0 and row["arms_tried"] == 0 and row["regret"] == 0 for row in summary["rows"])


# ---------------------------------------------------------------- bandit-diversity
DIVERSITY = ["questions=16", "arms=8", "outcomes=4", "rounds_per_chunk=2", "seeds=42,43"]


def test_bandit_diversity_lr_zero(tmp_path):
    """lr = 0: every method samples from the initial policy (pass@1 never moves), nothing is judged."""
    _, summary, arrays = _run(bandit_diversity, DIVERSITY + ["rounds=4", "lr=0"], tmp_path / "lr0")
    assert all(v["status"] == "not judged" for v in summary["verdicts"].values())
    np.testing.assert_allclose(arrays["pass1_mean"][:, 0], arrays["pass1_mean"][:, -1], rtol=0, atol=1e-6)


def test_bandit_diversity_zero_rounds(tmp_path):
    """rounds = 0: no sample drawn, nothing solved, nothing judged."""
    _, summary, arrays = _run(bandit_diversity, DIVERSITY + ["rounds=0"], tmp_path / "r0", plot=True)
    assert all(v["status"] == "not judged" for v in summary["verdicts"].values())
    assert arrays["solved_frac_mean"].shape[-1] == 0


# ---------------------------------------------------------------- chain REINFORCE experiments (chain_common)
def _recipe(prefix):
    return [f"{prefix}.batch=16", f"{prefix}.dataset_size=0", f"{prefix}.steps_per_epoch=1", f"{prefix}.eval_size=16",
            f"{prefix}.epochs_per_chunk=1", f"{prefix}.early_stop=false"]


CHAIN = {  # experiment -> (tiny sets, the recipe's prefix, an eval curve [runs, epochs] of arrays.npz)
    "chain-emergence": (["m=3", "attention=softmax", "seeds=42,43"] + _recipe("softmax"), "softmax",
                        "softmax/m3/test/acc"),
    "chain-simple-vs-hard": (["m=3", "num_start_positions=1,2", "seeds=42,43"] + _recipe("recipe"), "recipe",
                             "test/acc"),
    "chain-ood": (["n=8", "m_train=3", "m_test=4", "attention=softmax", "seeds=42,43", "train_horizon=4",
                   "test_horizon=6"] + _recipe("softmax"), "softmax", "softmax/test_m4/acc"),
    "chain-simple-mass": (["m=3", "c=0.2,1.0", "seeds=42,43"] + _recipe("recipe"), "recipe", "hard/acc"),
}


@pytest.mark.parametrize("eid", list(CHAIN))
def test_chain_learning_rate_zero(eid, tmp_path):
    """lr = 0 (Adam steps of size 0): the greedy evaluation on the fixed eval set never moves."""
    from theoryrl import experiments

    sets, recipe, curve = CHAIN[eid]
    _, _, arrays = _run(experiments.get(eid), sets + [f"{recipe}.lr=0", f"{recipe}.epochs=2"], tmp_path / eid)
    assert arrays[curve].shape[1] == 2
    np.testing.assert_array_equal(arrays[curve][:, 0], arrays[curve][:, -1])


@pytest.mark.parametrize("eid", list(CHAIN))
def test_chain_zero_epochs(eid, tmp_path):
    """epochs = 0: no epoch trained or evaluated; every claim is not judged."""
    from theoryrl import experiments

    sets, recipe, curve = CHAIN[eid]
    _, summary, arrays = _run(experiments.get(eid), sets + [f"{recipe}.epochs=0"], tmp_path / eid, plot=True)
    assert all(v["status"] == "not judged" for v in summary["verdicts"].values())
    assert arrays[curve].shape[1] == 0


# ---------------------------------------------------------------- gradient-flow experiments
# no learning rate: learning switched off is the shortest flow the options take (t_max > 0 is
# FlowOpts' own bound, so 1e-3 with t_first 1e-4 stands for t = 0); the constants barely move
TINY_FLOW = ["opts.t_max=1e-3", "opts.t_first=1e-4", "opts.num_save=4", "x64=false"]


def _barely_moved(rows, start=2.0):
    for row in rows:  # init consts (alpha, beta, gamma) = (2, 0, 0)
        assert row["t_eps"] is None and row["t_end"] <= 1.001e-3  # float32 time
        assert abs(row["final_alpha"] - start) < 1e-3 and abs(row["final_beta"]) < 1e-3


def test_chain_flow_scaling_tiny_horizon(tmp_path):
    from theoryrl.experiments import chain_flow_scaling

    sets = ["ms=3,4", "horizons=inf", "inits=consts", "hard_sets=m-1", "mass_m=3", "cs=0.5", "ks=",
            "rests=hardest"] + TINY_FLOW
    _, summary, _ = _run(chain_flow_scaling, sets, tmp_path / "s")
    assert all(v["status"] == "not judged" for v in summary["verdicts"].values())
    _barely_moved(summary["rows"])


def test_chain_flow_structure_tiny_horizon(tmp_path):
    from theoryrl.experiments import chain_flow_structure

    sets = ["m=3", "attentions=linear", "inits=consts", "horizons=inf", "m_tests=4", "iso_n=6", "full_m=2",
            "num_labellings=2", "full_t_max=1e-3"] + [s for s in TINY_FLOW if not s.startswith("x64")]
    _, summary, _ = _run(chain_flow_structure, sets, tmp_path / "s")
    assert all(v["status"] != "pass" for v in summary["verdicts"].values())
    _barely_moved([r for r in summary["rows"] if "t_end" in r])  # the symmetric flows
    assert all(r["t_eps"] is None for r in summary["rows"])  # and the full-A flow: never reached eps


REINFORCE = ["m=3", "batch=16", "record_every=2", "seeds=42,43", "eval_labellings=1"]


def test_chain_flow_vs_reinforce_learning_rates_zero(tmp_path):
    """sgd_lr = adam_lr = 0: SGD and Adam REINFORCE never leave A = a0 (every probe is the start)."""
    from theoryrl.experiments import chain_flow_vs_reinforce

    sets = REINFORCE + ["sgd_lr=0", "adam_lr=0", "sgd_steps=4", "adam_steps=4"]
    _, summary, arrays = _run(chain_flow_vs_reinforce, sets, tmp_path / "lr0")
    assert all(v["status"] == "not judged" for v in summary["verdicts"].values())
    for key in ("sgd/42/consts", "adam/43/consts"):
        assert arrays[key].shape[0] == 3
        np.testing.assert_array_equal(arrays[key][0], arrays[key][-1])


def test_chain_flow_vs_reinforce_zero_steps(tmp_path):
    """sgd_steps = adam_steps = 0: only the step-0 probe of A = a0; nothing is judged."""
    from theoryrl.experiments import chain_flow_vs_reinforce

    _, summary, arrays = _run(chain_flow_vs_reinforce, REINFORCE + ["sgd_steps=0", "adam_steps=0"], tmp_path / "s0")
    assert all(v["status"] == "not judged" for v in summary["verdicts"].values())
    assert arrays["sgd/42/consts"].shape[0] == 1 and arrays["ascent/consts"].shape[0] == 1
