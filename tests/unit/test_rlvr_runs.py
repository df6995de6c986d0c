"""rl/rlvr_runs: splits, the crossing k*, arms and algorithms, bad input, and one RL step of every
algorithm on the DAG task with the process-verified reward.

Expected values are derived in each docstring from exact pass@k (`math.comb`)."""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from theoryrl.core.config import ConfigError
from theoryrl.core.prng import root_key
from theoryrl.models import transformer as tfm
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import lm_rl, lm_runs, ntp
from theoryrl.rl import rlvr_metrics as rm
from theoryrl.rl import rlvr_runs as rr
from theoryrl.tasks.dag import generate as gen


def exact_pass(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def test_crossing_k_on_hand_curves():
    """k* is the first k (1-based) where the base's curve reaches RL's."""
    assert rm.crossing_k([0.1, 0.3, 0.5], [0.3, 0.35, 0.4]) == 3.0
    assert rm.crossing_k([0.3, 0.4], [0.3, 0.5]) == 1.0  # a tie at k = 1: RL is not above the base
    assert rm.crossing_k([0.1, 0.2], [0.3, 0.4]) == float("inf")


def test_crossing_ci_on_an_exact_count_table():
    """Base: every one of N = 400 problems has c = 2 of n = 8, so base pass@k = 1 - C(6,k)/C(8,k):
    0.25, 0.4643, 0.6429 at k = 1, 2, 3. RL: half the problems c = 8, half c = 0, so RL pass@k = 0.5
    at every k. The mean curves cross at k* = 3. Resampling problems moves only RL's share f of
    solved problems (sd sqrt(0.25 / 400) = 0.025): k* = 2 when f < 0.4643 (z = -1.43, probability
    0.076, more than the 2.5% tail), 3 when 0.4643 <= f <= 0.6429 (all but a 1e-8 tail); so the 95%
    interval is [2, 3] and every resample crosses."""
    n, N = 8, 400
    base = rm.curve_rows(np.full(N, 2), n, 4)
    rl = rm.curve_rows(np.r_[np.full(N // 2, 8), np.zeros(N // 2, int)], n, 4)
    np.testing.assert_allclose(base[0, :3], [exact_pass(8, 2, k) for k in (1, 2, 3)], rtol=1e-12)
    got = rm.crossing_ci(base, rl, num_resamples=4000)
    assert got["k_star"] == 3.0 and got["lo"] == 2.0 and got["hi"] == 3.0 and got["frac_crossing"] == 1.0
    with pytest.raises(ValueError, match="equal non-empty"):
        rm.crossing_ci(base, rl[:, :2])


def test_crossing_ci_never_crossing_has_an_infinite_interval():
    """RL solves every problem every time and the base half of the time per problem: base pass@k =
    1 - 0.5^k < 1 for k <= 4 (n = 8, c = 4: exactly 1 - C(4,k)/C(8,k) < 1), so no resample crosses."""
    rl = rm.curve_rows(np.full(50, 8), 8, 4)
    base = rm.curve_rows(np.full(50, 4), 8, 4)
    got = rm.crossing_ci(base, rl, num_resamples=200)
    assert got["k_star"] == float("inf") and got["hi"] == float("inf") and got["frac_crossing"] == 0.0


def _table(counts_by_op: dict, n: int = 8) -> dict:
    """A calibration table whose op o has per-problem correct counts counts_by_op[o] (4 problems)."""
    ops = sorted(counts_by_op)
    perfect = np.zeros((len(ops), 4, n), bool)
    for i, o in enumerate(ops):
        for j, c in enumerate(counts_by_op[o]):
            perfect[i, j, :c] = True
    return {"perfect": perfect, "answer_correct": perfect, "strict": perfect, "ops": np.asarray(ops)}


def test_choose_splits_on_a_hand_built_table():
    """n = 8, k_max = 4. Per op (pass@1, pass@4) from exact counts:
    ops 2-4 all c = 8: (1, 1); op 5 all c = 3: (0.375, 1 - C(5,4)/C(8,4) = 0.9286);
    op 6 half c = 1: (0.0625, 0.5 (1 - 35/70) = 0.25); op 7 half c = 2: (0.125, 0.5 (1 - 15/70) = 0.3929);
    op 8 all c = 0. Miss |p1 - 0.10| + |p4 - 0.65|: op 5 0.554, op 6 0.4375, op 7 0.282; op 8 is
    never solved, so no band may hold it. Band (6, 7) has worst miss 0.4375 > 0.282: train = (7, 7).
    OOD: below 7, pass@1 nearest 0.35 is op 5 (0.375)."""
    base = dataclasses.replace(dr.BaseSpec(), eval_samples=8, k_max=4)
    table = _table({2: [8] * 4, 3: [8] * 4, 4: [8] * 4, 5: [3] * 4, 6: [1, 1, 0, 0], 7: [2, 2, 0, 0], 8: [0] * 4})
    splits, why = rr.choose_splits(base, rr.RLVRKnobs(), table)
    assert why is None and splits.train == (7, 7) and splits.ood == (5, 5)
    assert splits.pass1[7] == pytest.approx(0.125) and splits.passk[7] == pytest.approx(0.5 * (1 - 15 / 70))
    # a given band wins over calibration; nothing below op 2 means no OOD set
    splits, _ = rr.choose_splits(base, rr.RLVRKnobs(train_band=(2, 3)), table)
    assert splits.train == (2, 3) and splits.ood is None
    # an all-zero table has no train band: the seed is left out with the reason
    splits, why = rr.choose_splits(base, rr.RLVRKnobs(), _table({o: [0] * 4 for o in range(2, 9)}))
    assert splits is None and "empty" in why


@pytest.mark.parametrize("knob, value, match", [
    ("k_max", 65, "unbiased pass@k needs n >= k"),  # eval_samples = 64
    ("train_band", (5, 4), "non-empty band"),
    ("ood_band", (3, 2), "non-empty band"),
    ("checkpoints", (64, 32, 96), "strictly increasing"),
    ("checkpoints", (32, 64), "ending at steps = 96"),
    ("train_problems", 23, "at least prompts_per_step x dapo_oversample = 24"),
    ("eval_splits", ("id", "test"), "distinct names"),
    ("eval_temperatures", (), "1..16 temperatures"),
])
def test_bad_knobs_are_one_line_errors(knob, value, match):
    with pytest.raises(ConfigError, match=match) as err:
        dataclasses.replace(rr.RLVRKnobs(), **{knob: value}).validate()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("arms, match", [
    (("base", "sac"), "base \\| grpo"), (("grpo:G=1",), "G in 2..1024"), (("grpo:temp=2",), "unknown option"),
    (("grpo:train=6-5",), "non-empty band"), (("base:G=8",), "no options"), (("grpo", "grpo"), "distinct"),
    (("grpo:G=8:G=32",), "given twice"),
])
def test_unknown_arms_are_one_line_errors(arms, match):
    with pytest.raises(ConfigError, match=match) as err:
        rr.check_arms(arms)
    assert "\n" not in str(err.value)


def test_arm_options_and_algorithm_specs():
    """The options become knob overrides; each algorithm maps onto the zoo's estimator and DAPO /
    ReMax draw extra samples: DAPO (3 - 1) x 8 x 8 = 128 per step, ReMax one greedy rollout per prompt."""
    knobs = rr.RLVRKnobs()
    head, k = rr.arm_knobs("grpo:G=32:kl=0.001:train=2-5", knobs)
    assert head == "grpo" and (k.group_size, k.kl_coef, k.train_band) == (32, 0.001, (2, 5))
    assert rr.parse_arm("ppo:train=edge") == ("ppo", {"train_band": "edge"})
    est = {a: rr.rl_spec(a, knobs).advantage.estimator for a in rr.ALGORITHMS}
    assert est == {"grpo": "grpo", "ppo": "gae", "reinforce_pp": "reinforce_pp", "rloo": "rloo", "remax": "remax",
                   "dapo": "dapo"}
    dapo = rr.rl_spec("dapo", knobs)
    assert dapo.oversample == 3 and dapo.loss.clip_high == 0.28 and rr.rl_spec("grpo", knobs).oversample == 1
    assert rr.rl_spec("grpo", knobs).loss.kl == "none"
    assert rr.rl_spec("grpo", dataclasses.replace(knobs, kl_coef=1e-3)).loss.kl_kind == "k3"
    assert [rr.extra_samples_per_step(a, knobs) for a in ("dapo", "remax", "grpo")] == [128, 8, 0]
    assert rr.model_spec(dr.BaseSpec(), "ppo").value_head and not rr.model_spec(dr.BaseSpec(), "grpo").value_head
    with pytest.raises(ConfigError, match="algorithm"):
        rr.rl_spec("sac", knobs)


REAL_FIXED_SET_TASK = rr.fixed_set_task
TINY_BASE = dataclasses.replace(dr.BaseSpec(), op_max=4, id_hi=3, medium_max=3, mix=(0.5, 0.5, 0.0), d_model=16,
                                n_layers=1, n_heads=2, d_ff=32)


def planted_task(spec, reward: str = "strict"):
    """The fixed-set DAG task (prompts from the set, the verifier's scores), with the reward replaced by
    the parity of each response's first token: a tiny random decoder never earns the process reward,
    and a constant reward has zero advantage everywhere, so this makes every algorithm's update non-zero."""
    task = REAL_FIXED_SET_TASK(spec, reward)

    def score(problems, response_NxT, mask_NxT):
        out = task.score(problems, response_NxT, mask_NxT)
        return {**out, "reward": (response_NxT[:, 0] % 2).astype(jnp.float32)}

    return dataclasses.replace(task, score=score)


def _hp(params, problems, seed=1):
    return lm_runs.RLHp(seed=jnp.int32(seed), lr_scale=jnp.float32(1), temperature=jnp.float32(1),
                        top_p=jnp.float32(1), init_params=params, task=rr.FixedSet(problems))


def test_every_algorithm_takes_a_step_on_the_dag_task():
    """One RL step of each of the six algorithms on fixed DAG problems (a tiny decoder, op_max 4), the
    responses scored by the verifier (its process-verified "train_perfect" is reported): metrics are
    finite, the step counter moves, and with a non-constant reward within groups (`planted_task`) the
    policy's parameters change; PPO's value head (zero-initialised by `start_params`) is trained too."""
    spec = TINY_BASE.task(4)
    problems = rr.set_problems(TINY_BASE, (3, 4), 8, 0)
    knobs = rr.RLVRKnobs(prompts_per_step=4, group_size=4, train_problems=8, dapo_oversample=2)
    task = planted_task(spec)
    for algorithm in rr.ALGORITHMS:
        model = rr.model_spec(TINY_BASE, algorithm)
        params = tfm.init_params(model, jax.random.key(0))
        tx = optax.adam(1e-2)
        state = lm_rl.TrainState(params, tx.init(params), jnp.int32(0))
        step = jax.jit(lambda st, hp: lm_rl.rl_step(model, dr.sampler(spec), rr.rl_spec(algorithm, knobs), tx, task,
                                                   st, hp, hp.init_params))
        new, metrics = step(state, _hp(params, problems))
        assert int(new.step) == 1, algorithm
        assert all(np.isfinite(np.asarray(v)).all() for v in metrics.values()), algorithm
        assert "train_perfect" in metrics and 0.0 < float(metrics["informative_drawn"]) <= 1.0, algorithm
        moved = np.abs(np.asarray(new.params["embed"][...]) - np.asarray(params["embed"][...])).max()
        assert moved > 0, algorithm
        if algorithm == "ppo":
            assert float(metrics["value_loss"]) > 0 and np.abs(np.asarray(new.params["value_w"][...])).max() > 0


def test_program_keeps_the_parameters_of_every_checkpoint(monkeypatch):
    """rlvr_runs.program with checkpoints (1, 3): chunks of gcd = 1 step; after 3 chunks snapshot 0 holds
    the parameters after step 1 and snapshot 1 those after step 3, each equal to lm_rl.rl_step applied
    that many times from the same state (an independent loop), and the two differ (the planted reward
    makes every step move the parameters)."""
    monkeypatch.setattr(rr, "fixed_set_task", planted_task)
    base, band = TINY_BASE, (3, 3)
    knobs = rr.RLVRKnobs(steps=3, checkpoints=(1, 3), prompts_per_step=2, group_size=2, train_problems=6, lr=1e-2)
    sets = [("id", band, 2, rr.SPLIT_KEYS["id"])]
    prog = rr.program(base, knobs, "grpo", sets, band, band)
    problems = rr.set_problems(base, band, 6, rr.SPLIT_KEYS["train"])
    params = tfm.init_params(rr.model_spec(base, "grpo"), jax.random.key(3))
    hp = _hp(params, problems, seed=5)
    state, data = prog.init_fn(hp), prog.data_fn(hp)
    chunk = jax.jit(prog.chunk_fn)
    for _ in range(prog.num_chunks):
        state, _ = chunk(state, hp, data)
    assert prog.num_chunks == 3 and int(state.train.step) == 3
    # the reference: the same step function, called in a plain loop
    spec = base.task(band[1])
    tx = ntp.make_optimizer(ntp.OptimSpec(lr=1e-2, warmup_steps=0, total_steps=3, schedule="constant",
                                          weight_decay=0.0), lr_scale=hp.lr_scale)
    ref = lm_rl.TrainState(params, tx.init(params), jnp.int32(0))
    step = jax.jit(lambda st: lm_rl.rl_step(rr.model_spec(base, "grpo"), dr.sampler(spec), rr.rl_spec("grpo", knobs), tx,
                                            rr.fixed_set_task(spec, knobs.reward), st, hp, hp.init_params)[0])
    after = []
    for _ in range(3):
        ref = step(ref)
        after.append(ref.params)
    for c, t in ((0, 0), (1, 2)):
        for got, want in zip(jax.tree.leaves(jax.tree.map(lambda x: x[c], state.params_C)),
                             jax.tree.leaves(after[t])):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    diff = [np.abs(np.asarray(a[0]) - np.asarray(a[1])).max() for a in jax.tree.leaves(state.params_C)]
    assert max(diff) > 0


def test_fixed_set_task_draws_distinct_problems_of_the_set():
    """Each step draws prompts_per_step distinct rows of the fixed set (without replacement)."""
    base = dr.BaseSpec()
    problems = rr.set_problems(base, (3, 3), 6, 0)
    task = rr.fixed_set_task(base.task(3), "strict")
    hp = lm_runs.RLHp(seed=jnp.int32(0), lr_scale=jnp.float32(1), temperature=jnp.float32(1), top_p=jnp.float32(1),
                      init_params=None, task=rr.FixedSet(problems))
    for t in range(5):
        _, _, drawn = task.sample_prompts(jax.random.fold_in(root_key(0), t), hp, 6)
        # all six rows, each once: the answers' multiset and the prompts match the set's, permuted
        order = [int(np.flatnonzero((np.asarray(problems.prompt_BxLp) == row).all(axis=1))[0])
                 for row in np.asarray(drawn.prompt_BxLp)]
        assert sorted(order) == list(range(6))


def test_set_problems_are_fixed_and_of_the_band():
    base = dr.BaseSpec()
    a, b = rr.set_problems(base, (5, 6), 32, 7), rr.set_problems(base, (5, 6), 32, 7)
    np.testing.assert_array_equal(a.prompt_BxLp, b.prompt_BxLp)
    assert set(np.asarray(a.op_B).tolist()) == {5, 6}
    assert gen.take(a, np.arange(3)).answer_B.shape == (3,)
