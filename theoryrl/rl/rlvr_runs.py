"""Shared pieces of the RLVR-limits experiments (Yue et al., arXiv 2504.13837) on DAG-lite.

What. Spec `rlvr_limits.md` §6 on the shared stored DAG base (`rl/dag_runs.py`):
- Splits (§6.1): a fixed *train* set from the op band where the base's process-verified pass@1 is
  near `target_pass1` (Omni-MATH on Qwen2.5-7B: 9.9%) and pass@k near `target_passk` (67.2%), an
  *in-domain* test set from the same band, and an easier *out-of-domain* test set from the lower op
  whose base pass@1 is nearest `ood_pass1` (MATH500: ~35%). Chosen on the first (calibration) half
  of the base's stored table (`choose_splits`), or given explicitly (`train_band`, `ood_band`).
- Arms: the base (sampling only) and RL from it with any of six algorithms (`ALGORITHMS`, spec
  §6.2, `rl_spec`), optionally with `:G=<n>` rollouts per prompt or `:kl=<coef>` (k3 in the loss).
  PPO's critic is the base's trunk with a new scalar head (zero-initialised, so values start at 0).
- A run keeps its parameters at every step of `checkpoints` (`Snapshots`, part of the state, so a
  killed run resumes with them) and at its end samples `eval_samples` completions of every problem
  of every evaluation set at every `eval_temperatures` from every checkpoint (`eval_arrays`):
  per problem, process-verified and outcome-only correct counts and the mean token entropy.
Why counts: unbiased pass@k, ΔSE, solvable-set containment and the accuracy histograms (§2) are all
functions of (n, c) per problem, so every checkpoint of every arm costs [N] integers per set.
The metrics on those arrays (pass@k, the crossing k*, paired gains with the crossed seed x problem
bootstrap) are in `rl/rlvr_metrics.py`.
"""
from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core.config import is_int, require, require_finite_nonneg, require_float, require_int
from theoryrl.core.stages import Program, Run, RunPlan
from theoryrl.eval import dag_eval, lm_eval
from theoryrl.rl import dag_runs as dr
from theoryrl.rl.explore_runs import gain_metrics, stage_static  # noqa: F401  (shared with the exploration experiments)
from theoryrl.rl import lm_rl, lm_runs, ntp, sampling
from theoryrl.rl.advantages import AdvantageSpec
from theoryrl.rl.losses import LossSpec
from theoryrl.tasks.dag import generate as gen
from theoryrl.tasks.dag import verify as ver

ALGORITHMS = ("grpo", "ppo", "reinforce_pp", "rloo", "remax", "dapo")
SPLITS = ("train", "id", "ood")
SPLIT_KEYS = {"train": dr.EVAL_SEED + 30, "id": dr.EVAL_SEED + 31, "ood": dr.EVAL_SEED + 32}
EVAL_KEY = dr.EVAL_SEED + 33  # the sampling key of every evaluation: same samples for the same params
CURVE_PROBLEMS = 16  # ID problems whose pass@1 is logged at every chunk end (learning curves only)


@dataclasses.dataclass(frozen=True)
class RLVRKnobs:
    """Static knobs of an RLVR run (spec §6.2-6.3, scaled down at the quick tier).

    RL: `steps` steps of `prompts_per_step` prompts x `group_size` rollouts drawn from the fixed train
    set, parameters kept at every step of `checkpoints` (increasing, the last = steps). Evaluation:
    `eval_samples` = n per problem at each of `eval_temperatures` with `eval_top_p`; pass@k up to
    k_max <= n. `keep_samples` > 0 keeps that many samples' tokens per ID problem at the last
    checkpoint and the first temperature (for perplexities). Split targets: see the module docstring;
    `train_band` / `ood_band` (lo, hi) override the calibrated choice."""

    steps: int = 96
    checkpoints: tuple[int, ...] = (96,)
    prompts_per_step: int = 8
    group_size: int = 8
    lr: float = 3e-4
    kl_coef: float = 0.0  # spec §6.2: no KL (the ablation's arm ":kl=1e-3" adds k3 in the loss)
    temperature: float = 1.0
    reward: str = "strict"  # process-verified (§6.4): the answer counts only when the derivation verifies
    dapo_oversample: int = 3  # DAPO draws this many x prompts and trains on the informative groups first
    train_problems: int = 192
    id_problems: int = 96
    ood_problems: int = 64
    eval_samples: int = 64
    k_max: int = 32
    eval_temperatures: tuple[float, ...] = (0.6,)
    eval_top_p: float = 0.95
    keep_samples: int = 0
    with_entropy: bool = False  # mean token entropy per sample: a second full forward pass (about 2x the cost)
    target_pass1: float = 0.10
    target_passk: float = 0.65
    ood_pass1: float = 0.35
    max_band_width: int = 2
    train_band: tuple[int, int] | None = None
    ood_band: tuple[int, int] | None = None
    eval_splits: tuple[str, ...] = SPLITS  # which of the three sets every model is evaluated on

    def validate(self) -> None:
        require_int(self.steps, "steps", 0, 10_000_000)
        require(isinstance(self.checkpoints, (tuple, list)) and len(self.checkpoints) >= 1
                and all(is_int(c) and c >= 1 for c in self.checkpoints)
                and all(a < b for a, b in zip(self.checkpoints, self.checkpoints[1:]))
                and (self.steps == 0 or self.checkpoints[-1] == self.steps), "checkpoints", self.checkpoints,
                f"strictly increasing positive step counts ending at steps = {self.steps}")
        require_int(self.prompts_per_step, "prompts_per_step", 1, 65_536)
        require_int(self.group_size, "group_size", 2, 1024)
        require_finite_nonneg(self.lr, "lr")
        require_finite_nonneg(self.kl_coef, "kl_coef")
        require_float(self.temperature, "temperature", 0.0, lo_open=True)
        require(self.reward in ver.REWARD_MODES, "reward", self.reward, " | ".join(ver.REWARD_MODES))
        require_int(self.dapo_oversample, "dapo_oversample", 1, 64)
        need = self.prompts_per_step * self.dapo_oversample
        require_int(self.train_problems, "train_problems", need, 1_000_000,
                    f"at least prompts_per_step x dapo_oversample = {need} (a step draws that many distinct ones)")
        require_int(self.id_problems, "id_problems", 1, 1_000_000)
        require_int(self.ood_problems, "ood_problems", 1, 1_000_000)
        require_int(self.eval_samples, "eval_samples", 1, dag_eval.MAX_SAMPLES)
        require(is_int(self.k_max) and 1 <= self.k_max <= self.eval_samples, "k_max", self.k_max,
                f"1..eval_samples = {self.eval_samples} (unbiased pass@k needs n >= k)")
        require(isinstance(self.eval_temperatures, (tuple, list)) and 1 <= len(self.eval_temperatures) <= 16
                and all(isinstance(t, (int, float)) and 0 < t <= 100 for t in self.eval_temperatures),
                "eval_temperatures", self.eval_temperatures, "1..16 temperatures in (0, 100]")
        require_float(self.eval_top_p, "eval_top_p", 0.0, 1.0, lo_open=True)
        require(isinstance(self.with_entropy, bool), "with_entropy", self.with_entropy, "true | false")
        require_int(self.keep_samples, "keep_samples", 0, self.eval_samples, f"0..eval_samples = {self.eval_samples}")
        for knob in ("target_pass1", "target_passk", "ood_pass1"):
            require_float(getattr(self, knob), knob, 0.0, 1.0)
        require_int(self.max_band_width, "max_band_width", 1, gen.OP_LIMIT)
        for knob in ("train_band", "ood_band"):
            band = getattr(self, knob)
            require(band is None or (isinstance(band, (tuple, list)) and len(band) == 2
                                     and all(is_int(o) for o in band) and 2 <= band[0] <= band[1] <= gen.OP_LIMIT),
                    knob, band, f"none (calibrated) or (lo, hi) with 2 <= lo <= hi <= {gen.OP_LIMIT} (a non-empty band)")

        require(isinstance(self.eval_splits, (tuple, list))
                and len(set(self.eval_splits)) == len(self.eval_splits) and all(x in SPLITS for x in self.eval_splits),
                "eval_splits", self.eval_splits, "distinct names of " + " | ".join(SPLITS) + " (none: extra sets only)")

    @property
    def steps_per_chunk(self) -> int:
        """Chunks end at every checkpoint: their gcd."""
        return math.gcd(*self.checkpoints) if self.steps else 1


# spec §6.2-6.3, the paper tier of every RLVR experiment: 2,000 train / 800 ID / 500 OOD problems, 128
# prompts x 8 rollouts for 450 steps (checkpoints 150 / 300 / 450), n = 256 = k_max at T = 0.6 (one GPU)
PAPER_RLVR = RLVRKnobs(steps=450, checkpoints=(150, 300, 450), prompts_per_step=128, lr=3e-5, train_problems=2000,
                       id_problems=800, ood_problems=500, eval_samples=256, k_max=256)


# ---------------------------------------------------------------- arms


_OPTION_KNOBS = {"G": "group_size", "kl": "kl_coef", "train": "train_band"}  # arm option -> RLVRKnobs field


def parse_arm(name: str) -> tuple[str, dict]:
    """"algorithm[:G=n][:kl=c][:train=band]" -> (algorithm, knob overrides); "base" = the base,
    sampled only. train=lo-hi trains on that op band instead of the calibrated train band; train=id
    on the base's pre-training (ID) band, train=edge on its calibrated edge band (`dag_runs.calibrate`;
    a seed without one is left out). The evaluation sets stay the experiment's."""
    head, *opts = str(name).split(":")
    over = {}
    for opt in opts:
        knob, _, value = opt.partition("=")
        if _OPTION_KNOBS.get(knob) in over:
            raise ValueError(f"option {knob!r} given twice in arm {name!r}")
        if knob == "G":
            over["group_size"] = int(value)
        elif knob == "kl":
            over["kl_coef"] = float(value)
        elif knob == "train" and value in ("id", "edge"):
            over["train_band"] = value
        elif knob == "train":
            lo, _, hi = value.partition("-")
            over["train_band"] = (int(lo), int(hi))
        else:
            raise ValueError(f"unknown option {opt!r} in arm {name!r} (allowed: G=<int>, kl=<float>, "
                             "train=<lo>-<hi> | id | edge)")
    return head, over


def check_arms(arms, knob: str = "arms") -> None:
    """One-line ConfigError for an unknown algorithm or option, before any compute."""
    require(isinstance(arms, (tuple, list)) and len(arms) >= 1 and len(set(arms)) == len(arms), knob, arms,
            "distinct arm names")
    for arm in arms:
        try:
            head, over = parse_arm(arm)
        except ValueError as err:
            require(False, knob, arm, str(err))
        require(head == "base" or head in ALGORITHMS, knob, arm, "base | " + " | ".join(ALGORITHMS)
                + " (with options :G=<int>, :kl=<float>, :train=<lo>-<hi> | id | edge)")
        require(head != "base" or not over, knob, arm, "the base arm takes no options")
        require(over.get("group_size", 2) in range(2, 1025), knob, arm, "G in 2..1024")
        require(0.0 <= over.get("kl_coef", 0.0) < 1e6, knob, arm, "kl >= 0")
        band = over.get("train_band", "id")
        require(isinstance(band, str) or 2 <= band[0] <= band[1] <= gen.OP_LIMIT, knob, arm,
                f"train=lo-hi with 2 <= lo <= hi <= {gen.OP_LIMIT} (a non-empty band)")


def arm_knobs(arm: str, knobs: RLVRKnobs) -> tuple[str, RLVRKnobs]:
    head, over = parse_arm(arm)
    return head, dataclasses.replace(knobs, **over)


def rl_spec(algorithm: str, knobs: RLVRKnobs) -> lm_rl.RLSpec:
    """The six algorithms of Yue et al. Table 2 on the zoo (spec `rl_algorithms.md`), one update per
    rollout batch, token-mean loss, no KL unless kl_coef > 0 (k3 in the loss). PPO: GAE(1, 1) with
    the value head. DAPO: clip-higher 0.28 and dynamic sampling (`dapo_oversample` x prompts drawn;
    the measured share of informative groups is logged, "informative_drawn"); its overlong shaping is
    off (responses end far below the sampler's length cap).
    Two simplifications, the same for every algorithm: with one on-policy update per batch the
    importance ratio is exactly 1, so the PPO / DAPO clips (clip-higher included) never act, and
    DAPO differs from GRPO by its dynamic sampling and nothing else; PPO's value head sits on the
    policy's trunk, so its value loss also trains the trunk (VeRL's critic is a separate network)."""
    require(algorithm in ALGORITHMS, "algorithm", algorithm, " | ".join(ALGORITHMS))
    estimator = {"ppo": "gae"}.get(algorithm, algorithm)
    kl = {} if knobs.kl_coef == 0 else {"kl": "loss", "kl_kind": "k3", "kl_coef": knobs.kl_coef}
    loss = LossSpec(agg="token-mean", clip_high=0.28 if algorithm == "dapo" else 0.2, **kl)
    return lm_rl.RLSpec(prompts_per_step=knobs.prompts_per_step, group_size=knobs.group_size,
                        advantage=AdvantageSpec(estimator=estimator), loss=loss,
                        oversample=knobs.dapo_oversample if algorithm == "dapo" else 1)


def extra_samples_per_step(algorithm: str, knobs: RLVRKnobs) -> int:
    """Samples drawn per step beyond prompts_per_step x group_size: DAPO's oversampled groups, ReMax's
    greedy rollout per prompt."""
    if algorithm == "dapo":
        return (knobs.dapo_oversample - 1) * knobs.prompts_per_step * knobs.group_size
    return knobs.prompts_per_step if algorithm == "remax" else 0


def model_spec(base: dr.BaseSpec, algorithm: str):
    spec = dr.model(base)
    return dataclasses.replace(spec, value_head=True) if algorithm == "ppo" else spec


def start_params(base: dr.BaseSpec, algorithm: str, base_run: Run):
    """The base's parameters (host arrays); PPO's also get the zero-initialised scalar value head."""
    spec = model_spec(base, algorithm)
    arrays = dict(base_run.arrays)
    if spec.value_head:
        arrays["final/params/value_w/value"] = np.zeros((spec.d_model,), np.float32)
        arrays["final/params/value_b/value"] = np.zeros((), np.float32)
    return jax.tree.map(np.asarray, lm_runs.params_from_arrays(spec, arrays))


# ---------------------------------------------------------------- splits


@dataclasses.dataclass(frozen=True)
class Splits:
    """The op bands of the three sets (ood None when no op lies below the train band), with the
    calibration numbers they were chosen on."""

    train: tuple[int, int]
    ood: tuple[int, int] | None
    pass1: dict
    passk: dict
    rule: str
    miss: float = float("nan")  # the train band's worst op |pass@1 - target| + |pass@k - target|: the regime gap

    def band(self, split: str) -> tuple[int, int] | None:
        return self.ood if split == "ood" else self.train

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def choose_splits(base: dr.BaseSpec, knobs: RLVRKnobs, table: dict) -> tuple[Splits | None, str | None]:
    """Bands from a base's calibration table (first half of its problems, pass@k at the base's k_max):
    train = the contiguous band of at most max_band_width ops, every op solved at least once, whose
    worst op minimises |pass@1 - target_pass1| + |pass@k - target_passk| (the worst op, not the band
    mean: a solved ID op next to an unsolved one would match the targets on average while neither is
    near them); ood = the op below it whose pass@1 is nearest ood_pass1. Returns (splits, None) or
    (None, why no train band exists)."""
    curves = dr.pass_curves(table, base.k_max)
    ops = [int(o) for o in table["ops"]]
    pass1 = {op: float(curves[i, 0]) for i, op in enumerate(ops)}
    passk_ = {op: float(curves[i, -1]) for i, op in enumerate(ops)}
    rule = (f"train: <= {knobs.max_band_width} consecutive ops, each with pass@{base.k_max} > 0, minimising the "
            f"worst op's |pass@1 - {knobs.target_pass1}| + |pass@{base.k_max} - {knobs.target_passk}|; ood: the op below "
            f"the train band with pass@1 nearest {knobs.ood_pass1}")
    train = None if knobs.train_band is None else tuple(knobs.train_band)
    if train is None:
        cands = [(lo, hi) for lo in ops for hi in ops if lo <= hi < lo + knobs.max_band_width
                 and all(o in passk_ and passk_[o] > 0 for o in range(lo, hi + 1))]
        if not cands:
            return None, f"no op of the base has calibration pass@{base.k_max} > 0: the train band is empty"
        miss = lambda o: abs(pass1[o] - knobs.target_pass1) + abs(passk_[o] - knobs.target_passk)  # noqa: E731
        train = min(cands, key=lambda b: (max(miss(o) for o in range(b[0], b[1] + 1)), b[0] - b[1]))
        rule = "calibrated " + rule
    else:
        rule = f"train band given ({train}); " + rule
    ood = None if knobs.ood_band is None else tuple(knobs.ood_band)
    if ood is None:
        below = [o for o in ops if o < train[0]]
        ood = (lambda o: (o, o))(min(below, key=lambda o: abs(pass1[o] - knobs.ood_pass1))) if below else None
    miss = max(abs(pass1[o] - knobs.target_pass1) + abs(passk_[o] - knobs.target_passk)
               for o in range(train[0], train[1] + 1) if o in pass1) if train[0] in pass1 else float("nan")
    return Splits(train, ood, pass1, passk_, rule, float(miss)), None


def seed_splits(base: dr.BaseSpec, knobs: RLVRKnobs, base_run: Run) -> tuple[Splits | None, str | None]:
    """A stored base's splits and why its seed is left out (None: usable)."""
    if base_run.gate is None or not base_run.gate.passed:
        return None, "base failed its gate"
    return choose_splits(base, knobs, dr.split_table(dr.table_from_arrays(base_run.arrays, "eval"))[0])


def split_sizes(knobs: RLVRKnobs) -> dict:
    return {"train": knobs.train_problems, "id": knobs.id_problems, "ood": knobs.ood_problems}


def eval_sets(knobs: RLVRKnobs, splits: Splits, op_sets=()) -> list[tuple[str, tuple[int, int], int, int]]:
    """(name, band, problems, key) of every evaluation set: the three splits (ood when it exists),
    then `op_sets` = (name, band, problems) extras such as one set per op."""
    sizes = split_sizes(knobs)
    out = [(s, splits.band(s), sizes[s], SPLIT_KEYS[s]) for s in SPLITS
           if s in knobs.eval_splits and splits.band(s) is not None]
    out += [(name, tuple(band), num, dr.EVAL_SEED + 40 + i) for i, (name, band, num) in enumerate(op_sets)]
    return out


def set_problems(base: dr.BaseSpec, band: tuple[int, int], num: int, key: int) -> gen.DagProblems:
    """`num` fixed problems uniform over the band's ops, at the shapes of its top op."""
    return gen.sample(jax.random.key(key), base.task(band[1]), dr.band_params(base, [band], band[1]), num)


# ---------------------------------------------------------------- the program


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class FixedSet:
    """hp.task of an RLVR run: the fixed train problems (every step draws distinct ones of them)."""

    problems: Any


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Snapshots:
    """The training state and the parameters at every checkpoint, stacked [C, ...]."""

    train: lm_rl.TrainState
    params_C: Any


def fixed_set_task(spec: gen.DagSpec, reward: str) -> lm_rl.RLTask:
    """`dag_runs.rl_task`'s verifier on prompts drawn without replacement from hp.task.problems."""
    scored = dr.rl_task(spec, reward, 0.5)

    def sample_prompts(key, hp, n):
        num = hp.task.problems.answer_B.shape[0]
        problems = gen.take(hp.task.problems, jax.random.choice(key, num, (n,), replace=False))
        prompts, mask = gen.left_padded_prompts(problems)
        return prompts, mask, problems

    return lm_rl.RLTask(sample_prompts=sample_prompts, score=scored.score)


def curve_fn(base: dr.BaseSpec, algorithm: str, shape: int):
    """ID pass@1 (process-verified, 4 samples of CURVE_PROBLEMS problems) at every chunk end."""
    spec_m, spec = model_spec(base, algorithm), base.task(shape)

    def curves(params, hp, problems):
        prompts, mask = gen.left_padded_prompts(problems)
        rollout = sampling.sample(spec_m, params, prompts, mask, jax.random.key(EVAL_KEY + 1), 4, dr.sampler(spec),
                                  temperature=hp.temperature)
        score = lambda pr, r, m: {"perfect": ver.verify(spec, pr, r)["perfect_B"]}  # noqa: E731
        return {"id_pass1": jnp.mean(lm_eval.score_samples(score, problems, rollout)["perfect"])}

    return curves


def eval_arrays(base: dr.BaseSpec, knobs: RLVRKnobs, sets, params_list, algorithm: str = "base") -> dict:
    """One model's evaluation at each of its checkpoints (`params_list`, host or device pytrees):
    "<set>/t<i>/perfect_CxN", "answer_correct_CxN" (correct counts of n = eval_samples), "entropy_CxN"
    (mean token entropy of the samples, with with_entropy) at eval temperature i, and with keep_samples the last
    checkpoint's first-temperature tokens "id/response_NxKxT" with their "id/perfect_NxK". The
    model spec is the algorithm's (PPO's has the value head, which sampling ignores)."""
    out, spec_m = {}, model_spec(base, algorithm)
    key = jax.random.key(EVAL_KEY)
    for name, band, num, set_key in sets:
        problems = set_problems(base, band, num, set_key)
        spec = base.task(band[1])
        for ti, temp in enumerate(knobs.eval_temperatures):
            parts = {"perfect": [], "answer_correct": [], "entropy": []}
            for c, params in enumerate(params_list):
                keep = name == "id" and knobs.keep_samples > 0 and c == len(params_list) - 1 and ti == 0
                res = dag_eval.sample_and_verify(spec_m, dr.sampler(spec), params, spec, problems,
                                                 jax.random.fold_in(key, ti), knobs.eval_samples,
                                                 temperature=temp, top_p=knobs.eval_top_p, max_rows=4096,
                                                 keep_tokens=keep, with_entropy=knobs.with_entropy)
                parts["perfect"].append(res["perfect_NxS"].sum(axis=1))
                parts["answer_correct"].append(res["answer_correct_NxS"].sum(axis=1))
                if knobs.with_entropy:
                    parts["entropy"].append(res["entropy_NxS"].mean(axis=1))
                if keep:
                    out["id/response_NxKxT"] = res["response_NxSxT"][:, :knobs.keep_samples]
                    out["id/perfect_NxK"] = res["perfect_NxS"][:, :knobs.keep_samples]
            for field, rows in parts.items():
                if rows:
                    out[f"{name}/t{ti}/{field}_CxN"] = np.stack(rows)
    return out


def _final(base: dr.BaseSpec, knobs: RLVRKnobs, sets, algorithm: str, state: Snapshots) -> dict:
    """Per run (host loop over the run axis): `eval_arrays` of its checkpoints."""
    num_runs = state.train.step.shape[0]
    per_run = []
    for r in range(num_runs):
        ckpts = [jax.tree.map(lambda x: x[r, c], state.params_C) for c in range(len(knobs.checkpoints))]
        per_run.append(eval_arrays(base, knobs, sets, ckpts, algorithm))
    return {k: np.stack([a[k] for a in per_run]) for k in per_run[0]}


def _base_arrays(base: dr.BaseSpec, knobs: RLVRKnobs, sets, params) -> dict:
    """The base arm's run: `eval_arrays` of the base (one checkpoint), stored like a program's final."""
    return {f"final/{k}": v for k, v in eval_arrays(base, knobs, sets, [params]).items()}


def program(base: dr.BaseSpec, knobs: RLVRKnobs, algorithm: str, sets, train_band: tuple[int, int],
            id_band: tuple[int, int]) -> Program:
    """RL from hp.init_params on hp.task's fixed problems (train band shapes), parameters kept at every
    checkpoint, pass@1 on held-out problems of `id_band` (the training band) logged at every chunk end,
    and `eval_arrays` of every checkpoint at the end."""
    spec = base.task(train_band[1])
    optim = ntp.OptimSpec(lr=knobs.lr, warmup_steps=0, total_steps=max(knobs.steps, 1), schedule="constant",
                          weight_decay=0.0)
    spc = knobs.steps_per_chunk
    inner = lm_runs.rl_program(model_spec(base, algorithm), dr.sampler(spec), rl_spec(algorithm, knobs), optim,
                               fixed_set_task(spec, knobs.reward), num_chunks=knobs.steps // spc, steps_per_chunk=spc,
                               data_fn=lambda hp: set_problems(base, id_band, CURVE_PROBLEMS, SPLIT_KEYS["id"]),
                               eval_fn=curve_fn(base, algorithm, id_band[1]))
    checkpoints = jnp.asarray(knobs.checkpoints, jnp.int32)

    def init_fn(hp):
        train = inner.init_fn(hp)
        return Snapshots(train, jax.tree.map(lambda x: jnp.stack([x] * len(knobs.checkpoints)), train.params))

    def chunk_fn(state: Snapshots, hp, data):
        train, metrics = inner.chunk_fn(state.train, hp, data)
        hit_C = checkpoints == train.step
        params_C = jax.tree.map(lambda s, p: jnp.where(hit_C.reshape((-1,) + (1,) * p.ndim), p[None], s),
                                state.params_C, train.params)
        return Snapshots(train, params_C), metrics

    return dataclasses.replace(inner, init_fn=init_fn, chunk_fn=chunk_fn, final_fn=partial(_final, base, knobs, sets, algorithm))


def _train_band(base: dr.BaseSpec, arm_k: RLVRKnobs, splits: Splits, base_run: Run) -> tuple[int, int] | None:
    """The op band an arm trains on (None: the base has no such band)."""
    band = arm_k.train_band
    if band is None:
        return splits.train
    if band == "id":
        return (base.id_lo, base.id_hi)
    if band == "edge":
        return dr.seed_status(base, base_run, need=("edge",))[0].edge
    return tuple(band)


def plans(base: dr.BaseSpec, knobs: RLVRKnobs, arms, seeds, runs, static: str, op_sets=()) -> list[RunPlan]:
    """Per usable seed (gated base with a train band): the "base" arm (a compute run: `eval_arrays`
    of the base) and one RL run per other arm; arms with equal programs share a bucket."""
    out = []
    for seed in seeds:
        base_run = runs.one(stage="pretrain", seed=int(seed))
        splits, why = seed_splits(base, knobs, base_run)
        if why is not None:
            continue
        sets = eval_sets(knobs, splits, op_sets)
        for arm in arms:
            algorithm, arm_k = arm_knobs(arm, knobs)
            row = {"seed": int(seed), "arm": arm}
            if algorithm == "base":
                params = lm_runs.params_from_arrays(dr.model(base), base_run.arrays)
                out.append(RunPlan(row=row, bucket=("rlvr-base", static, seed), label="rlvr-base", parent=base_run,
                                   compute=partial(_base_arrays, base, knobs, sets, params)))
                continue
            band = _train_band(base, arm_k, splits, base_run)
            if band is None:
                continue
            # the resolved band, not "id" / "edge", keys the bucket: seeds whose bands differ get their own program
            arm_k = dataclasses.replace(arm_k, train_band=None if arm_k.train_band is None else band)
            train = jax.tree.map(np.asarray, set_problems(base, band, knobs.train_problems, SPLIT_KEYS["train"]))
            hp = lm_runs.RLHp(seed=np.int32(seed), lr_scale=np.float32(1.0), temperature=np.float32(arm_k.temperature),
                              top_p=np.float32(1.0), init_params=start_params(base, algorithm, base_run),
                              task=FixedSet(train))
            out.append(RunPlan(row=row, bucket=("rlvr", algorithm, arm_k, tuple(sets), static), label=f"rlvr-{algorithm}",
                               hp=hp, build=partial(program, base, arm_k, algorithm, sets, band, band),
                               parent=base_run))
    return out
