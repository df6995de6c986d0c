"""Shared pieces of the LM-exploration experiments (Song, Kempe, Munos, arXiv 2509.06941) on DAG-lite.

What. Spec `outcome_exploration.md` §7 on the shared DAG base (`rl/dag_runs.py`): a fixed training
set of Q questions from the base's calibrated *edge* band (some solved, many not), trained on for
many epochs by GRPO with or without an exploration term (`rl/lm_exploration.py`), next to "sampling
from the base" at the same budget (the same questions, order and sampling keys, no update). Every
arm of an experiment is a name (`ARM_OPTIONS`, e.g. "ucb_con", "ucb_con:b0=1", "ucb_con:nomask",
"base") whose choices are traced weights, so the RL arms of one base are one vmapped program.
A run keeps per question, at every chunk end: solved at least once, correct samples so far and
distinct answers so far (history "solved_Q" / "correct_Q" / "distinct_Q"). At its end it samples a
fixed held-out test set of the same band (`test_table`: process-verified correctness, the stated
answer, the mean token entropy of every sample, and how often two samples with the same reasoning
state different answers), so every arm-vs-arm difference is paired per problem.
Why process-verified "correct": answers are residues mod p, so at the quick tier's p = 23 a guess
is right 1 time in 23 and outcome-only "solved at least once" saturates by guessing within a few
epochs. The reward is therefore "strict" (the answer counts only when the derivation verifies): the
analogue of the paper's math answers, which are not guessable. Outcomes (the count tables,
distinct answers) are the stated answers, as in the paper.
Metrics are numpy on the saved arrays (`pass_rows`, `pass_auc_rows`, `diff_rows`, `entropy_split`,
`answer_only_rate`), paired across arms with `dag_runs.paired_gain_rows`.
"""
from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core.config import is_int, require, require_finite_nonneg, require_float, require_int, run_id, to_dict
from theoryrl.core.stages import Program, Run, RunPlan, Stage
from theoryrl.core.verdicts import FAIL, PASS, Verdict
from theoryrl.eval import dag_eval, diversity, lm_eval, passk
from theoryrl.rl import dag_runs as dr
from theoryrl.rl import lm_exploration as lx
from theoryrl.rl import lm_runs, ntp, sampling
from theoryrl.tasks.dag import generate as gen
from theoryrl.tasks.dag import tokens as tk
from theoryrl.tasks.dag import verify as ver

TRAIN_KEY, TEST_KEY = dr.EVAL_SEED + 20, dr.EVAL_SEED + 21  # fixed question sets, shared by every seed and arm
ARM_OPTIONS = ("b0=1", "nogate", "nomask", "before")


@dataclasses.dataclass(frozen=True)
class ExploreKnobs:
    """Static knobs of an exploration run (spec §7.2-7.4, scaled down at the quick tier).

    num_questions Q fixed training questions of the edge band, seen `epochs` times (G samples each
    per epoch, so the cumulative budget per question is G * epochs); chunks of `epochs_per_chunk`
    epochs. c: the historical bonus weight; b0: UCB-Con's constant ("b0=1" arms use 1); c_batch:
    the batch penalty's weight. Test: `test_problems` held-out problems of the band, `test_samples`
    each at `temperature`, pass@k up to k_max, diff@`diff_k`. train_samples > 0 also samples every
    training question that often from the final model (a single checkpoint's pass@k).
    The quick tier's 64 questions (the issue asks for a few hundred) and 12 epochs are what fits
    about 20 minutes on a 2-core CPU for explore-historical's five arms (timings on the results
    pages); the paper tiers use spec §7.2's 1,024 x 30 (`PAPER_EXPLORE`)."""

    num_questions: int = 64
    epochs: int = 12
    epochs_per_chunk: int = 2
    prompts_per_step: int = 8
    group_size: int = 8
    lr: float = 3e-4
    # spec §8's default, k3 at 1e-3, is the paper tier's; off at the quick tier (it costs a reference pass per step)
    kl_coef: float = 0.0
    temperature: float = 1.0
    reward: str = "strict"
    c: float = 0.2
    b0: float = 0.5
    c_batch: float = 0.2
    test_problems: int = 32
    test_samples: int = 64
    k_max: int = 32
    diff_k: int = 8
    curve_samples: int = 4
    train_samples: int = 0

    @property
    def steps_per_epoch(self) -> int:
        return self.num_questions // self.prompts_per_step

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def validate(self) -> None:
        require_int(self.prompts_per_step, "prompts_per_step", 1, 65_536)
        require(is_int(self.num_questions) and 1 <= self.num_questions <= 1_000_000
                and self.num_questions % self.prompts_per_step == 0, "num_questions", self.num_questions,
                f"a positive multiple of prompts_per_step = {self.prompts_per_step} (whole epochs)")
        require_int(self.epochs_per_chunk, "epochs_per_chunk", 1, 100_000)
        require(is_int(self.epochs) and 0 <= self.epochs <= 100_000 and self.epochs % self.epochs_per_chunk == 0,
                "epochs", self.epochs, f"0 (no training) or a multiple of epochs_per_chunk = {self.epochs_per_chunk}")
        require_int(self.group_size, "group_size", 2, 1024)
        require_finite_nonneg(self.lr, "lr")
        require_finite_nonneg(self.kl_coef, "kl_coef")
        require_float(self.temperature, "temperature", 0.0, lo_open=True)
        require(self.reward in ver.REWARD_MODES, "reward", self.reward, " | ".join(ver.REWARD_MODES))
        lx.check_weights(self.c, self.b0, self.c_batch)
        require_int(self.test_problems, "test_problems", 1, 100_000)
        require_int(self.test_samples, "test_samples", 1, 4096)
        require(is_int(self.k_max) and 1 <= self.k_max <= self.test_samples, "k_max", self.k_max,
                f"1..test_samples = {self.test_samples} (unbiased pass@k needs n >= k)")
        require(is_int(self.diff_k) and 1 <= self.diff_k <= self.test_samples, "diff_k", self.diff_k,
                f"1..test_samples = {self.test_samples}")
        require_int(self.curve_samples, "curve_samples", 1, 1024)
        require(is_int(self.train_samples) and 0 <= self.train_samples <= 4096, "train_samples", self.train_samples,
                "0 (none) .. 4096")


# spec §7.2-7.4's setting, the paper tier of every exploration experiment: M = 1,024 edge questions,
# 30 epochs at G = 8 (k up to 240), 128 prompts per step, KL k3 1e-3, 256 test problems x 64 samples
PAPER_EXPLORE = ExploreKnobs(num_questions=1024, epochs=30, epochs_per_chunk=2, prompts_per_step=128, lr=3e-5,
                             kl_coef=1e-3, test_problems=256)


def parse_arm(name: str) -> tuple[str, tuple[str, ...]]:
    """"variant[:opt,opt]" -> (variant, opts); "base" = sampling from the base (no variant)."""
    variant, _, opts = str(name).partition(":")
    return variant, tuple(o for o in opts.split(",") if o)


def check_arms(arms, knob: str = "arms") -> None:
    """One-line ConfigErrors before compute: distinct arm names, each "base" or a known variant
    with known options (`ARM_OPTIONS`)."""
    require(isinstance(arms, (tuple, list)) and len(arms) >= 1 and len(set(arms)) == len(arms), knob, arms,
            "distinct arm names")
    for arm in arms:
        variant, opts = parse_arm(arm)
        if variant == "base":
            require(not opts, knob, arm, "'base' takes no options")
            continue
        require(variant in lx.VARIANTS, f"{knob}: variant", variant, " | ".join(("base",) + lx.VARIANTS))
        require(all(o in ARM_OPTIONS for o in opts), f"{knob}: option", arm,
                f"variant:option,... with options in {' | '.join(ARM_OPTIONS)}")


def arm_weights(arm: str, knobs: ExploreKnobs) -> tuple[dict, bool]:
    """(ExploreHp weights, learn) of an arm; "base" samples from the base (learn False, no term)."""
    variant, opts = parse_arm(arm)
    if variant == "base":
        return lx.variant_weights("grpo"), False
    return lx.variant_weights(variant, c=knobs.c, b0=1.0 if "b0=1" in opts else knobs.b0, c_batch=knobs.c_batch,
                              gating="nogate" not in opts, masking="nomask" not in opts,
                              after_norm="before" not in opts), True


# ---------------------------------------------------------------- question sets


def band_problems(base: dr.BaseSpec, band: tuple[int, int], num: int, key: int) -> gen.DagProblems:
    """`num` fixed problems uniform over the band's ops, at the shapes of its top op."""
    shape = band[1]
    return gen.sample(jax.random.key(key), base.task(shape), dr.band_params(base, [band], shape), num)


def question_band(base: dr.BaseSpec, run: Run) -> tuple[tuple[int, int] | None, str | None]:
    """The base's edge band (calibrated on the first half of its table, `dag_runs.seed_status`) and
    why its seed is left out (None: usable)."""
    bands, why = dr.seed_status(base, run, need=("edge",))
    return bands.edge, why


# ---------------------------------------------------------------- the program


def explore_spec(base: dr.BaseSpec) -> lx.ExploreSpec:
    return lx.ExploreSpec(num_outcomes=base.p + 1, answer_token=tk.ANSWER)


def answer_only_pairs(response_SxT: np.ndarray, answer_S: np.ndarray) -> tuple[int, int]:
    """(pairs of samples with the same reasoning, i.e. the same tokens before the answer marker,
    that state different answers; pairs with the same reasoning). Samples without an answer are
    left out. Masking off lets a model game the bonus by changing only the answer (spec §3.3)."""
    keep = answer_S >= 0
    reasoning = np.where(np.cumsum(response_SxT == tk.ANSWER, axis=1) == 0, response_SxT, -1)[keep]
    answers = answer_S[keep]
    if answers.size < 2:
        return 0, 0
    _, group = np.unique(reasoning, axis=0, return_inverse=True)
    group = group.reshape(-1)
    same = group[:, None] == group[None, :]
    differ = answers[:, None] != answers[None, :]
    upper = np.triu(np.ones_like(same), k=1)
    return int(np.sum(same & differ & upper)), int(np.sum(same & upper))


def test_table(base: dr.BaseSpec, params, problems: gen.DagProblems, shape: int, num_samples: int, temperature: float,
               key, max_rows: int = 2048) -> dict:
    """One model on fixed problems (`dag_eval.sample_and_verify`, with entropies and tokens): [N, S]
    perfect / answer_correct (bool), answer (int, -1 none), entropy (mean token entropy, float); [N]
    answer-only pairs and same-reasoning pairs (`answer_only_pairs`)."""
    spec = base.task(shape)
    res = dag_eval.sample_and_verify(dr.model(base), dr.sampler(spec), params, spec, problems, key, num_samples,
                                     temperature=temperature, max_rows=max_rows, keep_tokens=True, with_entropy=True)
    pairs = np.array([answer_only_pairs(r, a) for r, a in zip(res["response_NxSxT"], res["answer_NxS"])], np.int64)
    return {"perfect": res["perfect_NxS"], "answer_correct": res["answer_correct_NxS"], "answer": res["answer_NxS"],
            "entropy": res["entropy_NxS"], "answer_only_pairs": pairs[:, 0], "same_reasoning_pairs": pairs[:, 1]}


def _curve_fn(base: dr.BaseSpec, knobs: ExploreKnobs, shape: int):
    """Test pass@1 (process-verified, `curve_samples` per test problem) at every chunk end."""
    spec_m, spec = dr.model(base), base.task(shape)
    samp = dr.sampler(spec)

    def score(problems, response_NxT, mask_NxT):
        del mask_NxT
        return {"perfect": ver.verify(spec, problems, response_NxT)["perfect_B"]}

    def curves(params, hp, problems):
        prompts, mask = gen.left_padded_prompts(problems)
        rollout = sampling.sample(spec_m, params, prompts, mask, jax.random.key(TEST_KEY + 1), knobs.curve_samples,
                                  samp, temperature=hp.temperature)
        return {"test_pass1": jnp.mean(lm_eval.score_samples(score, problems, rollout)["perfect"])}

    return curves


def _final(base: dr.BaseSpec, knobs: ExploreKnobs, band: tuple[int, int], state: lx.ExploreState) -> dict:
    """Per run (host loop): the coverage state, and the test table (and, with train_samples, the
    training questions' table) of its final parameters."""
    out = {"counts_QxM": state.counts_QxM, "solved_Q": state.solved_Q, "correct_Q": state.correct_Q}
    num_runs = state.counts_QxM.shape[0]
    sets = [("test", band_problems(base, band, knobs.test_problems, TEST_KEY), knobs.test_samples)]
    if knobs.train_samples:
        sets.append(("train", band_problems(base, band, knobs.num_questions, TRAIN_KEY), knobs.train_samples))
    for name, problems, samples in sets:
        tables = [test_table(base, jax.tree.map(lambda x: x[r], state.train.params), problems, band[1], samples,
                             knobs.temperature, jax.random.key(TEST_KEY + 2)) for r in range(num_runs)]
        for field in tables[0]:
            out[f"{name}/{field}"] = np.stack([t[field] for t in tables])
    return out


def program(base: dr.BaseSpec, knobs: ExploreKnobs, band: tuple[int, int], learn: bool) -> Program:
    """GRPO (+ each run's exploration term) on the band's Q training questions, or (learn=False)
    sampling from the base on them; test pass@1 at every chunk end; the test table at the end."""
    spec = base.task(band[1])
    optim = ntp.OptimSpec(lr=knobs.lr, warmup_steps=0, total_steps=max(knobs.steps, 1), schedule="constant",
                          weight_decay=0.0)
    steps_per_chunk = knobs.epochs_per_chunk * knobs.steps_per_epoch
    return lx.explore_program(dr.model(base), dr.sampler(spec), dr.rl_spec(knobs), optim,
                              dr.question_task(spec, knobs.reward, 0.5), explore_spec(base),
                              num_chunks=knobs.epochs // knobs.epochs_per_chunk, steps_per_chunk=steps_per_chunk,
                              data_fn=lambda hp: band_problems(base, band, knobs.test_problems, TEST_KEY),
                              eval_fn=_curve_fn(base, knobs, band[1]), final_fn=partial(_final, base, knobs, band),
                              learn=learn)


def plans(base: dr.BaseSpec, knobs: ExploreKnobs, arms, seeds, runs, static: str) -> list[RunPlan]:
    """One run per (usable seed: gated base with an edge band; arm); the learning arms of a seed
    share a bucket (one vmapped program), "base" sampling has its own."""
    model_spec = dr.model(base)
    out = []
    for seed in seeds:
        base_run = runs.one(stage="pretrain", seed=int(seed))
        band, why = question_band(base, base_run)
        if why is not None:
            continue
        params = jax.tree.map(np.asarray, lm_runs.params_from_arrays(model_spec, base_run.arrays))
        questions = jax.tree.map(np.asarray, band_problems(base, band, knobs.num_questions, TRAIN_KEY))
        for arm in arms:
            weights, learn = arm_weights(arm, knobs)
            hp = lm_runs.RLHp(seed=np.int32(seed), lr_scale=np.float32(1.0), temperature=np.float32(knobs.temperature),
                              top_p=np.float32(1.0), init_params=params,
                              task=lx.QuestionsHp(questions, lx.explore_hp(weights)))
            out.append(RunPlan(row={"seed": int(seed), "arm": arm}, bucket=("explore", learn, band, static),
                               label=f"explore-{'rl' if learn else 'base'}", hp=hp,
                               build=partial(program, base, knobs, band, learn), parent=base_run))
    return out


# ---------------------------------------------------------------- metrics on saved arrays


def table_of(run: Run, name: str = "test") -> dict:
    pre = f"final/{name}/"
    return {k[len(pre):]: v for k, v in run.arrays.items() if k.startswith(pre)}


def pass_rows(table: dict, k: int) -> np.ndarray:
    """[N] unbiased process-verified pass@k per problem."""
    flags = np.asarray(table["perfect"])
    return passk.pass_at_k(np.full(flags.shape[0], flags.shape[1]), flags.sum(axis=1), k)


def pass_auc_rows(table: dict, k_max: int) -> np.ndarray:
    """[N] per problem, the mean of pass@k over k = 1..k_max: one number for "pass@k at every k"."""
    return np.mean([pass_rows(table, k) for k in range(1, k_max + 1)], axis=0)


def diff_rows(table: dict, k: int) -> np.ndarray:
    """[N] unbiased E[diff@k]: distinct stated answers among k of the n samples (`eval.diversity`)."""
    answers = np.asarray(table["answer"])
    return diversity.expected_distinct_in_k(answers, answers >= 0, k)


def solved_rows(table: dict) -> np.ndarray:
    """[N] whether any of the problem's samples is process-verified correct."""
    return np.asarray(table["perfect"]).any(axis=1)


def entropy_split(table: dict) -> dict:
    """Mean token entropy over correct, incorrect and all samples (NaN where there are none)."""
    ent, ok = np.asarray(table["entropy"], np.float64), np.asarray(table["perfect"], bool)
    mean = lambda sel: float(ent[sel].mean()) if sel.any() else float("nan")  # noqa: E731
    return {"correct": mean(ok), "incorrect": mean(~ok), "all": mean(np.ones_like(ok))}


def entropy_incorrect_rows(table: dict) -> np.ndarray:
    """[N] mean token entropy of each problem's incorrect samples (NaN with none)."""
    ent, bad = np.asarray(table["entropy"], np.float64), ~np.asarray(table["perfect"], bool)
    with np.errstate(invalid="ignore"):
        return np.where(bad.any(axis=1), (ent * bad).sum(axis=1) / np.maximum(bad.sum(axis=1), 1), np.nan)


def answer_only_rate(table: dict) -> float:
    """Among pairs of test samples with the same reasoning, the share stating different answers."""
    same = int(np.sum(table["same_reasoning_pairs"]))
    return float(np.sum(table["answer_only_pairs"]) / same) if same else float("nan")


def answer_only_rows(table: dict) -> np.ndarray:
    """[N] per problem: the share of its S(S-1)/2 sample pairs that have the same reasoning and state
    different answers (0 when none do): the paired unit of the masking claim."""
    s = np.asarray(table["answer"]).shape[1]
    return np.asarray(table["answer_only_pairs"], np.float64) / max(s * (s - 1) / 2, 1)


def coverage(run: Run) -> dict:
    """[chunks, Q] per question at every chunk end: solved (0/1), correct samples so far, distinct
    answers so far."""
    return {name: np.asarray(run.history(f"{name}_Q"), np.float64) for name in ("solved", "correct", "distinct")}


def budget_per_chunk(knobs: ExploreKnobs) -> np.ndarray:
    """Cumulative samples per question k = G * epochs at every chunk end."""
    return knobs.group_size * knobs.epochs_per_chunk * np.arange(1, knobs.epochs // knobs.epochs_per_chunk + 1)


def epoch_success(run: Run, knobs: ExploreKnobs) -> np.ndarray:
    """[chunks, Q] success rate of each chunk's samples per question (differences of correct_Q)."""
    correct = coverage(run)["correct"]
    per_chunk = np.diff(np.concatenate([np.zeros((1, correct.shape[1])), correct]), axis=0)
    return per_chunk / (knobs.group_size * knobs.epochs_per_chunk)


def cross_checkpoint_coverage(run: Run, knobs: ExploreKnobs) -> np.ndarray:
    """[chunks] mean over questions of 1 - prod_{s <= t} (1 - p_s)^n with p_s each chunk's measured
    success rate and n its samples per question: the paper's RL curve (spec §2.1), the expected
    coverage across checkpoints. It is not any single model's pass@k."""
    p = np.clip(epoch_success(run, knobs), 0.0, 1.0)
    n = knobs.group_size * knobs.epochs_per_chunk
    return 1.0 - np.exp(np.cumsum(n * np.log1p(-np.minimum(p, 1.0 - 1e-12)), axis=0)).mean(axis=1)


def arm_row(run: Run, knobs: ExploreKnobs) -> dict:
    """One arm's summary, each with a 95% bootstrap interval (`_lo` / `_hi`) over training questions
    or test problems: training coverage at the end, test pass@1/8/k_max, E[diff@diff_k] on solved /
    unsolved / all test problems, mean token entropy on correct / incorrect / all test samples (a
    ratio over the resampled problems), and the answer-only rate (no interval)."""
    cov, table = coverage(run), table_of(run)
    row = {}

    def put(name, stats):
        row[name], row[f"{name}_lo"], row[f"{name}_hi"] = stats

    if cov["solved"].size:
        solved_Q, distinct_Q = cov["solved"][-1], cov["distinct"][-1]
        put("train_solved_frac", _ci(solved_Q))
        put("train_distinct", _ci(distinct_Q))
        put("train_distinct_unsolved", _ci(distinct_Q[solved_Q < 0.5]))
    for k in sorted({1, 8, knobs.k_max} & set(range(1, knobs.k_max + 1))):
        put(f"test_pass{k}", _ci(pass_rows(table, k)))
    solved, diff = solved_rows(table), diff_rows(table, knobs.diff_k)
    for name, sel in (("solved", solved), ("unsolved", ~solved), ("all", np.ones_like(solved))):
        put(f"test_diff{knobs.diff_k}_{name}", _ci(diff[sel]))
    ent, ok = np.asarray(table["entropy"], np.float64), np.asarray(table["perfect"], bool)
    for name, sel in (("correct", ok), ("incorrect", ~ok), ("all", np.ones_like(ok))):
        put(f"test_entropy_{name}", _ratio_ci((ent * sel).sum(axis=1), sel.sum(axis=1)))
    row["test_answer_only_rate"] = answer_only_rate(table)
    return row


def _masked_mean(x, sel) -> float:
    sel = np.asarray(sel, bool)
    return float(np.asarray(x, np.float64)[sel].mean()) if sel.any() else float("nan")


def _ci(rows, num_resamples: int = 2000, alpha: float = 0.05) -> tuple[float, float, float]:
    """(mean, lo, hi): percentile bootstrap over rows; NaNs with none."""
    return _ratio_ci(rows, np.ones(np.shape(rows)), num_resamples, alpha)


def _ratio_ci(num, den, num_resamples: int = 2000, alpha: float = 0.05) -> tuple[float, float, float]:
    """(sum num / sum den, lo, hi) with the percentile bootstrap over rows (resamples whose
    denominator is 0 are dropped); NaNs when the denominator is 0."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    if num.size == 0 or den.sum() == 0:
        return (float("nan"),) * 3
    idx = np.random.default_rng(0).integers(0, num.size, size=(num_resamples, num.size))
    n_b, d_b = num[idx].sum(axis=1), den[idx].sum(axis=1)
    boots = n_b[d_b > 0] / d_b[d_b > 0]
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return float(num.sum() / den.sum()), float(lo), float(hi)


def paired(rows_a: dict, rows_b: dict, seeds) -> dr.Gain:
    """a - b of per-problem (or per-question) values pooled over seeds (`rows_x[seed]`), with the
    cluster bootstrap over seeds; rows where either is NaN are dropped pairwise."""
    a, b, cl = [], [], []
    for s in seeds:
        x, y = np.asarray(rows_a[s], np.float64), np.asarray(rows_b[s], np.float64)
        ok = np.isfinite(x) & np.isfinite(y)
        a.append(x[ok])
        b.append(y[ok])
        cl.append(np.full(int(ok.sum()), int(s)))
    return dr.paired_gain_rows(np.concatenate(a), np.concatenate(b), clusters=np.concatenate(cl))


# ---------------------------------------------------------------- what every exploration experiment shares


@dataclasses.dataclass(frozen=True)
class Collected:
    """An experiment's finished runs: `runs[(seed, arm)]`, the seeds judged (gated base with an edge
    band, every arm run), the ones left out with why, and each seed's edge band."""

    runs: dict
    seeds: list
    skipped: dict
    bands: dict


def collect(base: dr.BaseSpec, arms, seeds, runs) -> Collected:
    found, judged, skipped, bands = {}, [], {}, {}
    for seed in seeds:
        band, why = question_band(base, runs.one(stage="pretrain", seed=int(seed)))
        bands[int(seed)] = band
        for run in runs.where(stage="explore", seed=int(seed)):
            found[(int(seed), run.row["arm"])] = run
        if why is None and any((int(seed), a) not in found for a in arms):
            why = "not every arm was run"
        if why is None:
            judged.append(int(seed))
        else:
            skipped[int(seed)] = why
    return Collected(found, judged, skipped, bands)


def summary_rows(col: Collected, knobs: ExploreKnobs) -> list[dict]:
    return [{"seed": s, "arm": a, "edge_band": col.bands[s], **arm_row(run, knobs)}
            for (s, a), run in sorted(col.runs.items())]


def stages(cfg, arms) -> list[Stage]:
    """An exploration experiment's stages: the shared base (stored, gated), then its arms from it."""
    return [dr.pretrain_stage(cfg.base, cfg.seeds),
            Stage("explore", lambda runs: plans(cfg.base, cfg.explore, arms, cfg.seeds, runs, stage_static(cfg)))]


def stage_static(cfg) -> str:
    """The knobs every run of an experiment shares (its bucket key): the config without seeds."""
    return run_id({k: v for k, v in to_dict(cfg).items() if k != "seeds"})


def why_not_judged(col: Collected, knobs: ExploreKnobs) -> str | None:
    """Why no claim can be judged (no usable seed, or no training), else None."""
    if not col.seeds:
        return "no seed has a gated base with an edge band and every arm run: " + "; ".join(
            f"seed {s}: {why}" for s, why in col.skipped.items())
    if knobs.epochs == 0:
        return "epochs = 0: no training step was taken"
    return None


def test_gain(col: Collected, arm_a: str, arm_b: str, rows_fn) -> dr.Gain:
    """a - b of `rows_fn(test table)` per test problem, pooled over the judged seeds."""
    return paired({s: rows_fn(table_of(col.runs[(s, arm_a)])) for s in col.seeds},
                  {s: rows_fn(table_of(col.runs[(s, arm_b)])) for s in col.seeds}, col.seeds)


def gain_text(g: dr.Gain, what: str, side: str = "above 0") -> str:
    return f"{what}: paired gain {g.diff:+.3f}, 95% interval [{g.lo:+.3f}, {g.hi:+.3f}] (must be {side})"


def above_zero(g: dr.Gain, what: str, paper: str) -> Verdict:
    return Verdict(PASS if g.lo > 0 else FAIL, g.diff, 0.0, g.lo, g.se, gain_text(g, what), paper=paper)


def below_zero(g: dr.Gain, what: str, paper: str) -> Verdict:
    return Verdict(PASS if g.hi < 0 else FAIL, g.diff, 0.0, -g.hi, g.se, gain_text(g, what, "below 0"), paper=paper)


def gain_metrics(metrics: dict, name: str, g: dr.Gain) -> None:
    metrics.update({name: g.diff, f"{name}_lo": g.lo, f"{name}_hi": g.hi, f"{name}_n": g.num_problems})


def curve_arrays(col: Collected, arms, knobs: ExploreKnobs) -> dict:
    """Figure arrays, arms stacked in `arms` order and pooled over the judged seeds: test pass@k
    (k = 1..k_max) [A, K], training solved share and distinct answers per budget [A, C]."""
    out = {"arms_A": np.asarray(list(arms)), "budget_C": budget_per_chunk(knobs)}
    if not col.seeds or knobs.epochs == 0:
        return out
    ks = np.arange(1, knobs.k_max + 1)
    def pooled_pass(arm, k):
        return np.concatenate([pass_rows(table_of(col.runs[(s, arm)]), k) for s in col.seeds]).mean()

    out["test_passk_AxK"] = np.array([[pooled_pass(a, k) for k in ks] for a in arms])
    for name in ("solved", "distinct"):
        out[f"train_{name}_AxC"] = np.stack([np.concatenate([coverage(col.runs[(s, a)])[name] for s in col.seeds],
                                                            axis=1).mean(axis=1) for a in arms])
    return out
