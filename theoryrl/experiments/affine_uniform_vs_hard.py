"""affine-uniform-vs-hard: GRPO on L-Uniform vs L-Hard affine-equation chains (small-transformer analog).

Ran-Milo et al. 2601.15158, LLM experiment (spec chain_traversal.md §8.1, analog §8.3), at theory
scale. Stage "pretrain": a small decoder learns by NTP on shuffled affine-equation systems with
worked solutions of SHORT chains only (distances 1..pretrain_max_distance), its "minimal
proficiency"; the base is stored (one per seed, reused by every run that asks for the same one) and
gated: on every pre-trained distance it must write the worked solution's length. Stage "rl": from
each seed's base, GRPO with the outcome reward on `uniform` (distances 1..L-1), `hard` (L-1 only)
and `short` (1..short_max_distance, the analog of 5-Uniform -> 15-Hard), evaluated at every chunk
on every distance, greedy and sampled at the RL temperature, outcome and process-verified (answers
are small integers, so a guess is right ~1/#values of the time).
Why this design: the hardest distance lies two steps past the pre-trained ones (with L-1 = K+1 both
arms would face the same one-step gap). A token shift puts each step's first label within one hop of
its arithmetic, and a reading stage on short systems with the same token ids forms the in-context
lookup that long prompts never taught; NoPE leaves no position to count steps by. Slipped
demonstrations (`slip`) make the base right at each step with probability 1 - slip, the theory's
p_fwd < 1, so GRPO's groups carry variance; slip 0.8 keeps the Hard arm's expected correct samples
on the hardest distance small against its sample budget. The claims presuppose a sound base: they
are judged over the seeds whose base passes its gate (each record names the seeds it used; the
metrics average every seed), and not judged when none does. Thresholds are the paper's claims
(hard_level 0.957, fail_level 0.05); "stays low" claims need the uniform arm to have reached
hard_level in the same run, and arm comparisons (paired by seed) pass only beyond 2 SE, so they are
not judged with one gated seed (the quick tier). Learning off is legal: rl_lr = 0 leaves every arm
at its base (no claim passes), pretrain_lr = 0 leaves a base that fails its gate (nothing judged).
0 steps are legal too: rl_steps = 0 evaluates no RL policy (every claim not judged), pretrain_steps
= 0 (with reading_steps = 0) leaves the initial decoder as the base, which fails its gate.
"uniform_solves_hardest" presupposes that the base does not already solve the hardest distance,
so the claim is about what RL added and cannot pass with learning switched off.
Measurements, probes and status, by run: docs/results/affine-uniform-vs-hard.md.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core import prng
from theoryrl.core.bases import Gate
from theoryrl.core.config import (check_seeds, is_int, require, require_finite_nonneg, require_finite_positive,
                                  require_float, require_int, run_id, to_dict)
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, Program, Run, RunPlan, Runs, Stage
from theoryrl.core.verdicts import Verdict, at_least, at_most, greater, judged_if, mean_se, not_judged
from theoryrl.eval import lm_eval
from theoryrl.models import transformer as tfm
from theoryrl.models.transformer import TransformerSpec
from theoryrl.rl import lm_rl, lm_runs, ntp, sampling
from theoryrl.rl.advantages import AdvantageSpec
from theoryrl.rl.losses import LossSpec
from theoryrl.tasks import equations as eq

ID = "affine-uniform-vs-hard"
TITLE = "GRPO on affine-equation chains: Uniform-trained solves the hardest distance, Hard-only does not"
PAPER = "Ran-Milo et al. 2601.15158, LLM experiment (v1: 15-Uniform -> 95.7% on 15-Hard, 15-Hard-trained ~0%)"
ARMS = ("uniform", "hard", "short")


@dataclasses.dataclass(frozen=True)
class Config:
    chain_len: int = 6  # L: two chains of L variables; the hardest distance is L - 1
    pretrain_max_distance: int = 3  # NTP sees worked solutions of distances 1..this only
    short_max_distance: int = 3  # arm "short": RL on distances 1..this
    arms: tuple[str, ...] = ARMS
    seeds: tuple[int, ...] = (42,)
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    token_shift: int = 8  # previous tokens mixed into each attention input (models/transformer.py), 0 = off
    rope: bool = False  # False: no positional encoding (NoPE), so step counting has no position to read
    pretrain_steps: int = 5000  # NTP steps in all, the reading stage included (3,000 left 3 of 8 bases broken)
    reading_steps: int = 750  # the first NTP steps train on systems of reading_chain_len (0 = no reading stage)
    reading_chain_len: int = 3  # chain length of the reading stage (distances 1..this - 1)
    pretrain_batch: int = 32
    pretrain_lr: float = 3e-3
    rl_steps: int = 600
    prompts_per_step: int = 16
    group_size: int = 8
    rl_lr: float = 5e-4
    temperature: float = 1.0
    # NTP demonstrations slip: each edge step's arithmetic is off by one with this probability
    # (equations.slip_drift), so the base is a solver whose every step is right with probability
    # 1 - slip, the theory's p_fwd < 1; 0 = exact worked solutions. The theory's Hard-only failure needs
    # the base's success on the hardest distance, (1 - slip)^(L-1), to be negligible against the Hard
    # arm's sample budget N = rl_steps x prompts x G = 76,800: at 0.5 it draws ~2,400 correct solutions
    # and Hard caught up in most seeds; at 0.8 ~25 (0.2^5 x N), while a distance-1 GRPO group is still
    # mixed with probability 1 - 0.8^8 - 0.2^8 = 0.83, so Uniform keeps its signal
    slip: float = 0.8
    # direction of the slips (equations.slip_drift): "per_problem" (random per demonstration; a model that
    # imitates them slips either way, so opposite slips cancel and outcome reward credits some wrong
    # chains) or "global" (every slip +1, so a sampled chain's slips add up and the outcome reward
    # stays near process correctness)
    slip_sign: str = "per_problem"
    eval_samples: int = 4  # samples per eval problem at the RL temperature (sampled accuracy), 0 = greedy only
    reward: str = "answer"  # RL reward: "answer" (outcome, the paper's), "process" (verified steps), "format+answer"
    pretrain_chunk: int = 250  # NTP steps between greedy evaluations
    steps_per_chunk: int = 50  # RL steps between evaluations
    eval_per_distance: int = 64
    # the paper's claims (v1, Qwen-3B at L = 15): 15-Uniform reaches 95.7% on 15-Hard, 15-Hard-trained ~0%
    hard_level: float = 0.957  # "solves the hardest distance": uniform arm's seed-mean accuracy >= this
    fail_level: float = 0.05  # "Hard-only stays ~0": hard arm's seed-mean accuracy <= this

    def validate(self) -> None:
        require_int(self.chain_len, "chain_len", 3, 16)
        require_int(self.pretrain_max_distance, "pretrain_max_distance", 1, self.chain_len - 2,
                    f"1..{self.chain_len - 2} (below the hardest distance)")
        require_int(self.short_max_distance, "short_max_distance", 1, self.chain_len - 2, f"1..{self.chain_len - 2}")
        require(len(self.arms) > 0 and all(a in ARMS for a in self.arms) and len(set(self.arms)) == len(self.arms),
                "arms", self.arms, f"distinct values from {list(ARMS)}")
        check_seeds(self.seeds)
        # model and step bounds: ~8x the paper tier (d_model 256, 4 layers, 8 heads, 20k NTP steps at batch
        # 256, 600 RL steps of 64 x 8 samples); step counts stay far below 2^31 (int32 step keys)
        require_int(self.n_heads, "n_heads", 1, 64)
        require(is_int(self.d_model) and 8 <= self.d_model <= 2048 and self.d_model % self.n_heads == 0
                and (self.d_model // self.n_heads) % 2 == 0, "d_model", self.d_model,
                f"8..2048, divisible by n_heads = {self.n_heads} with an even head size")
        require_int(self.n_layers, "n_layers", 1, 48)
        require_int(self.token_shift, "token_shift", 0, 64, "0..64 (0 = off)")
        require_int(self.pretrain_chunk, "pretrain_chunk", 1, 1_000_000)
        require_int(self.steps_per_chunk, "steps_per_chunk", 1, 100_000)
        for knob, chunk, hi in (("pretrain_steps", "pretrain_chunk", 1_000_000),
                                ("rl_steps", "steps_per_chunk", 100_000)):
            value, size = getattr(self, knob), getattr(self, chunk)
            # 0: learning switched off (a program of 0 chunks: nothing trained, nothing evaluated)
            require(is_int(value) and 0 <= value <= hi and value % size == 0, knob, value,
                    f"0 (no training) or a multiple of {chunk} = {size}, at most {hi}")
        require(is_int(self.reading_steps) and (self.reading_steps == 0 or 0 < self.reading_steps < self.pretrain_steps),
                "reading_steps", self.reading_steps,
                f"0..{self.pretrain_steps - 1} (the reading stage is part of pretrain_steps)" if self.pretrain_steps
                else "0 (pretrain_steps = 0: no NTP at all)")
        require(is_int(self.reading_chain_len) and 2 <= self.reading_chain_len < self.chain_len, "reading_chain_len",
                self.reading_chain_len, f"2..{self.chain_len - 1}")
        require_int(self.pretrain_batch, "pretrain_batch", 1, 4096)
        require_int(self.prompts_per_step, "prompts_per_step", 1, 4096)
        require_int(self.eval_per_distance, "eval_per_distance", 1, 65_536)
        require_int(self.group_size, "group_size", 2, 1024)
        require(self.reward in eq.REWARDS, "reward", self.reward, " | ".join(eq.REWARDS))
        require_float(self.slip, "slip", 0.0, 1.0, hi_open=True)
        require(self.slip_sign in eq.SLIP_SIGNS, "slip_sign", self.slip_sign, " | ".join(eq.SLIP_SIGNS))
        require_int(self.eval_samples, "eval_samples", 0, 1024, "0..1024 (0 = greedy evaluation only)")
        require_finite_positive(self.temperature, "temperature")
        for knob in ("pretrain_lr", "rl_lr"):  # 0: learning switched off (a base that fails its gate / RL that
            require_finite_nonneg(getattr(self, knob), knob)  # leaves the base as it was), never a passed claim
        for knob in ("hard_level", "fail_level"):
            require_float(getattr(self, knob), knob, 0.0, 1.0)
        self.task().validate()

    def task(self) -> eq.EquationSpec:
        return eq.EquationSpec(chain_len=self.chain_len, value_margin=self._margin())

    def _margin(self) -> int:
        """Value tokens beyond the exact range for the drift of slipped demonstrations (none without slips,
        so the vocabulary of exact runs is unchanged)."""
        return self.chain_len - 1 if self.slip > 0 else 0

    def reading_task(self) -> eq.EquationSpec:
        """Short systems with the token ids of `task()` (same label pool and value range)."""
        return eq.EquationSpec(chain_len=self.reading_chain_len, num_labels=self.task().labels,
                               vocab_chain_len=self.chain_len, value_margin=self._margin())


TIERS = {
    "quick": Config(),
    "paper": Config(chain_len=15, pretrain_max_distance=3, short_max_distance=5, seeds=(42, 43, 44),
                    d_model=256, n_layers=4, n_heads=8, pretrain_steps=20_000, reading_steps=4_000,
                    reading_chain_len=4, pretrain_batch=256,
                    pretrain_lr=1e-3, rl_steps=600, prompts_per_step=64, rl_lr=3e-4, pretrain_chunk=1000,
                    steps_per_chunk=50, eval_per_distance=256),
}


def _model(cfg: Config) -> TransformerSpec:
    task = cfg.task()
    return TransformerSpec(vocab_size=eq.vocab(task).size, d_model=cfg.d_model, n_layers=cfg.n_layers,
                           n_heads=cfg.n_heads, n_kv_heads=cfg.n_heads, token_shift=cfg.token_shift, rope=cfg.rope,
                           max_len=eq.prompt_len(task) + eq.max_response_len(task))


def _sampler(cfg: Config) -> sampling.SamplerSpec:
    voc = eq.vocab(cfg.task())
    return sampling.SamplerSpec(max_new_tokens=eq.max_response_len(cfg.task()), eos_id=voc.eos_id, pad_id=voc.pad_id)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DistanceHp:
    """The traced task knob of a run (`lm_runs.PretrainHp.task` / `RLHp.task`): the distribution the
    distance to the target of each drawn system follows, over 1..L-1 (pre-training: the short
    distances; RL: the arm), so the arms are one vmapped program."""

    dist_probs_D: jax.Array  # float32 [L - 1]


def _arm_probs(cfg: Config, arm: str) -> np.ndarray:
    task = cfg.task()
    kind = {"uniform": "uniform", "hard": "hard", "short": f"short:{cfg.short_max_distance}"}[arm]
    return np.asarray(eq.distance_probs(task, kind), np.float32)


def _eval_data(cfg: Config, seed) -> dict:
    """Fixed greedy-eval problems of the run with `seed` (int32): `eval_per_distance` at each distance
    1..L-1 (EVAL stream)."""
    task, num_dist = cfg.task(), cfg.chain_len - 1
    key = prng.stream_key(prng.root_key(seed), prng.Stream.EVAL)
    one_hot = jnp.eye(num_dist, dtype=jnp.float32)
    per_dist = [eq.sample_problems(jax.random.fold_in(key, d), task, one_hot[d], cfg.eval_per_distance)
                for d in range(num_dist)]
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *per_dist)


def _eval_fn(cfg: Config, task: lm_rl.RLTask):
    model, sampler, num_dist = _model(cfg), _sampler(cfg), cfg.chain_len - 1

    def evaluate(params, hp: lm_runs.PretrainHp | lm_runs.RLHp, problems):
        scores = lm_eval.greedy_scores(model, sampler, task.score, params, problems.prompt_NxLp, None, problems)
        by_dist = lambda v: jnp.mean(v.reshape(num_dist, -1), axis=1)  # noqa: E731
        out = {"eval_acc": by_dist(scores["answer_correct"].astype(jnp.float32)),
               "eval_process_acc": by_dist(scores["process_correct"]), "eval_len": by_dist(scores["length"])}
        if cfg.eval_samples:
            # the policy's success probability, the quantity the theory tracks (greedy decoding of a
            # policy whose every step is right with probability > 1/2 never slips); the same key at
            # every evaluation, so curves compare policies on common random numbers
            key = jax.random.fold_in(prng.stream_key(prng.root_key(hp.seed), prng.Stream.EVAL), 1)
            sampled = lm_eval.sampled_scores(model, sampler, task.score, params, problems.prompt_NxLp, None, problems, key,
                                           cfg.eval_samples, temperature=cfg.temperature)
            out["eval_sample_acc"] = by_dist(sampled["answer_correct"].astype(jnp.float32))
            out["eval_sample_process_acc"] = by_dist(sampled["process_correct"].astype(jnp.float32))
        return out

    return evaluate


def _rl_task(cfg: Config, reward: str) -> lm_rl.RLTask:
    task = cfg.task()

    def sample_prompts(key, hp: lm_runs.RLHp, n):
        problems = eq.sample_problems(key, task, hp.task.dist_probs_D, n)
        return problems.prompt_NxLp, None, problems

    def score(problems, response_NxT, mask_NxT):
        out = eq.verify(task, problems, response_NxT, mask_NxT, reward=reward)
        return {"reward": out["reward_N"], "process_correct": out["process_correct_N"],
                "answer_correct": out["answer_correct_N"],
                "format_ok": out["format_ok_N"]}

    return lm_rl.RLTask(sample_prompts=sample_prompts, score=score)


PRETRAIN_PROGRAM = "affine_uniform_vs_hard.pretrain@1"  # bump when the pre-training numerics change
LENGTH_TOLERANCE = 4  # tokens: half an edge step (each step is 8 tokens)


def _pretrain_optim(cfg: Config) -> ntp.OptimSpec:
    # total_steps >= 1 for the optimiser's own check: with 0 steps it is built but never stepped
    return ntp.OptimSpec(lr=cfg.pretrain_lr, warmup_steps=min(200, cfg.pretrain_steps // 10),
                         total_steps=max(cfg.pretrain_steps, 1))


def _pretrain_program(cfg: Config) -> Program:
    """NTP: `reading_steps` on short systems padded to the long shapes, then worked solutions of
    distances 1..pretrain_max_distance (each step slipped with probability `slip`), evaluated at every
    chunk. Reads only what `_base_key` holds."""
    task, reading = cfg.task(), cfg.reading_task()
    # the evaluation reports correctness and length, never the reward: the base does not depend on it
    eval_task = _rl_task(cfg, reward="answer")
    reading_probs = jnp.asarray(eq.distance_probs(reading, "uniform"), jnp.float32)
    seq_len = eq.prompt_len(task) + eq.max_response_len(task)

    def batch_fn(key, hp: lm_runs.PretrainHp, step):
        def read(k):  # short systems, padded to the long shapes
            return eq.solution_tokens(reading, eq.sample_problems(k, reading, reading_probs, cfg.pretrain_batch), seq_len)

        def solve(k):
            if not cfg.slip:  # exact demonstrations keep the key use, so their data is that of runs before `slip`
                return eq.solution_tokens(task, eq.sample_problems(k, task, hp.task.dist_probs_D, cfg.pretrain_batch))
            k_problems, k_slip = jax.random.split(k)
            problems = eq.sample_problems(k_problems, task, hp.task.dist_probs_D, cfg.pretrain_batch)
            return eq.solution_tokens(task, problems, slip_key=k_slip, slip_prob=cfg.slip, slip_sign=cfg.slip_sign)

        return jax.lax.cond(step < cfg.reading_steps, read, solve, key)

    return lm_runs.pretrain_program(
        _model(cfg), _pretrain_optim(cfg), batch_fn, num_chunks=cfg.pretrain_steps // cfg.pretrain_chunk,
        steps_per_chunk=cfg.pretrain_chunk, data_fn=lambda hp: _eval_data(cfg, hp.seed),
        eval_fn=_eval_fn(cfg, eval_task))


def _base_key(cfg: Config, seed: int) -> dict:
    """The base's content address: everything `_pretrain_program` and its hp read (task, model,
    optimiser, chunking, the evaluation that writes its history, the seed), and no knob that only RL
    reads, so runs that differ in RL knobs alone share their bases."""
    return {"program": PRETRAIN_PROGRAM, "seed": int(seed),
            "task": {"chain_len": cfg.chain_len, "pretrain_max_distance": cfg.pretrain_max_distance,
                     "reading_steps": cfg.reading_steps, "reading_chain_len": cfg.reading_chain_len,
                     "slip": cfg.slip, "slip_sign": cfg.slip_sign, "spec": dataclasses.asdict(cfg.task()),
                     "reading_spec": dataclasses.asdict(cfg.reading_task())},
            "model": dataclasses.asdict(_model(cfg)),
            "optimiser": {"batch": cfg.pretrain_batch, "lr_scale": 1.0, **dataclasses.asdict(_pretrain_optim(cfg))},
            "pretrain_chunk": cfg.pretrain_chunk,
            # 0 NTP steps builds the optimiser of 1 step: marked, so it never shares an address with 1 step
            **({"no_ntp": True} if cfg.pretrain_steps == 0 else {}),
            "eval": {"per_distance": cfg.eval_per_distance, "samples": cfg.eval_samples,
                     "temperature": cfg.temperature, "sampler": dataclasses.asdict(_sampler(cfg))}}


def _pretrain_plans(cfg: Config) -> list[RunPlan]:
    """One NTP run per seed, all one vmapped program (the bucket names its static content)."""
    probs = np.asarray(eq.distance_probs(cfg.task(), f"short:{cfg.pretrain_max_distance}"), np.float32)
    static = {k: v for k, v in _base_key(cfg, 0).items() if k != "seed"}
    return [RunPlan(row={"seed": int(seed)}, bucket=("pretrain", run_id(static)), label="pretrain",
                    hp=lm_runs.PretrainHp(seed=np.int32(seed), lr_scale=np.float32(1.0),
                                          task=DistanceHp(dist_probs_D=probs)),
                    build=functools.partial(_pretrain_program, cfg), base_key=_base_key(cfg, seed))
            for seed in cfg.seeds]


def _gate(cfg: Config, run: Run) -> Gate:
    """A sound base writes the worked solution's length on every distance it was pre-trained on. A
    slip-only base is greedy-wrong everywhere (the slipped value is the mode), so its accuracy cannot
    tell it from one that never learned the lookup and stops early; its length can."""
    trained = np.arange(1, cfg.pretrain_max_distance + 1)
    if not len(run.history("eval_len")):  # 0 NTP steps: the initial decoder, never evaluated
        return Gate(passed=False, requirement=_requirement(cfg),
                    measured={"distance": trained.tolist(), "mean_greedy_len": None,
                              "note": "pretrain_steps = 0: nothing was trained or evaluated"})
    length = run.history("eval_len")[-1]
    return Gate(passed=_writes_trained_lengths(cfg, length), requirement=_requirement(cfg),
                measured={"distance": trained.tolist(), "mean_greedy_len": _floats(length[trained - 1]),
                          "solution_len": [int(n) for n in eq.solution_len(trained)]})


def _requirement(cfg: Config) -> str:
    return (f"mean greedy response length within {LENGTH_TOLERANCE} tokens of the worked solution's on every "
            f"pre-trained distance 1..{cfg.pretrain_max_distance}")


def _writes_trained_lengths(cfg: Config, base_len_by_distance) -> bool:
    trained = np.arange(1, cfg.pretrain_max_distance + 1)
    return bool(np.all(np.abs(np.asarray(base_len_by_distance)[trained - 1] - eq.solution_len(trained))
                       < LENGTH_TOLERANCE))


def _rl_spec(cfg: Config) -> lm_rl.RLSpec:
    return lm_rl.RLSpec(prompts_per_step=cfg.prompts_per_step, group_size=cfg.group_size,
                        advantage=AdvantageSpec(estimator="grpo"), loss=LossSpec(agg="token-mean"))


def _rl_program(cfg: Config) -> Program:
    optim = ntp.OptimSpec(lr=cfg.rl_lr, warmup_steps=0, total_steps=max(cfg.rl_steps, 1), schedule="constant",
                          weight_decay=0.0)
    return lm_runs.rl_program(_model(cfg), _sampler(cfg), _rl_spec(cfg), optim, _rl_task(cfg, cfg.reward),
                              num_chunks=cfg.rl_steps // cfg.steps_per_chunk, steps_per_chunk=cfg.steps_per_chunk,
                              data_fn=lambda hp: _eval_data(cfg, hp.seed),
                              eval_fn=_eval_fn(cfg, _rl_task(cfg, cfg.reward)))


def _rl_plans(cfg: Config, runs: Runs) -> list[RunPlan]:
    """One GRPO run per (seed, arm), seed-major, all one vmapped program (the arm is the traced
    distance distribution), each starting from its seed's base, restored by key path."""
    model = _model(cfg)
    bucket = ("rl", run_id({k: v for k, v in to_dict(cfg).items() if k != "seeds"}))
    plans = []
    for seed in cfg.seeds:
        base = runs.one(stage="pretrain", seed=int(seed))
        params = jax.tree.map(np.asarray, lm_runs.params_from_arrays(model, base.arrays))
        plans += [RunPlan(row={"seed": int(seed), "arm": arm}, bucket=bucket, label="rl",
                          hp=lm_runs.RLHp(seed=np.int32(seed), lr_scale=np.float32(1.0),
                                          temperature=np.float32(cfg.temperature), top_p=np.float32(1.0),
                                          init_params=params, task=DistanceHp(dist_probs_D=_arm_probs(cfg, arm))),
                          build=functools.partial(_rl_program, cfg), parent=base)
                  for arm in cfg.arms]
    return plans


def stages(cfg: Config) -> list[Stage]:
    return [Stage("pretrain", lambda runs: _pretrain_plans(cfg), store_bases=True, gate=functools.partial(_gate, cfg)),
            Stage("rl", functools.partial(_rl_plans, cfg))]


def _solution_probs(cfg: Config, params, seed: int) -> np.ndarray:
    """[distances, eval_per_distance]: probability of the whole worked solution of each eval problem
    under the model sampling at `temperature` (teacher-forced, one forward pass).

    GRPO learns on a prompt only when its G samples disagree. With solution probability p a group
    is mixed with probability 1 - p^G - (1 - p)^G, so problems with p near 0 or 1 (a policy that is
    deterministic on them) give no gradient, however many of them a distance has."""
    task, model = cfg.task(), _model(cfg)
    problems = _eval_data(cfg, np.int32(seed))
    tokens, loss_mask = eq.solution_tokens(task, problems)
    logp, _, _ = jax.jit(tfm.token_logprobs, static_argnums=0)(model, params, tokens, temperature=cfg.temperature)
    seq_logp = jnp.sum(logp * loss_mask[:, 1:], axis=1)
    return np.exp(np.asarray(seq_logp, np.float64)).reshape(cfg.chain_len - 1, cfg.eval_per_distance)


def analyze(cfg: Config, runs: Runs) -> Outcome:
    """Rows, one per seed and arm (`*_by_distance` lists run over distances 1..L-1): seed, arm,
    hard_acc, hard_process_acc, hard_len, base_hard_acc, acc_by_distance, process_acc_by_distance,
    base_process_acc_by_distance (the seed's base, greedy), base_len_by_distance (its mean greedy
    response length; the worked solution at distance d has eq.solution_len(d) = 10 + 8d tokens),
    base_writes_trained_lengths (the base's gate: False flags a base that stops early, so no arm can
    learn past it), base_id, base_gate_passed, in_verdicts (the seed's base passed, so its runs count
    in the verdicts), and with eval_samples > 0 hard_sample_acc, hard_sample_process_acc,
    sample_acc_by_distance, sample_process_acc_by_distance, base_sample_process_acc_by_distance.
    Metrics (over all seeds): pretrained and per-arm seed-mean greedy accuracy on the hardest distance
    (outcome and process-verified); per arm the mean fraction of GRPO groups with zero advantage; per
    distance d the base's mean probability of the whole worked solution (`pretrained_solution_prob_d<d>`,
    at the RL temperature) and the chance that a GRPO group on such a problem is mixed, i.e. has
    signal (`pretrained_mixed_group_prob_d<d>` = mean of 1 - p^G - (1 - p)^G). With eval_samples > 0
    also the base's sampled accuracy per distance (`pretrained_sample_acc_d<d>`,
    `pretrained_sample_process_acc_d<d>`) and per arm the sampled outcome and process-verified
    accuracy on the hardest distance (`<arm>_hard_sample_acc`, `<arm>_hard_sample_process_acc`).
    `verdict_seeds_excluded` (only when some base failed its gate): how many seeds the verdicts left out."""
    model, hard, dists = _model(cfg), cfg.chain_len - 2, range(cfg.chain_len - 1)  # hard: index of distance L-1
    bases = [runs.one(stage="pretrain", seed=int(seed)) for seed in cfg.seeds]
    rl = Runs([runs.one(stage="rl", seed=int(seed), arm=arm) for seed in cfg.seeds for arm in cfg.arms])
    solution_p = np.stack([_solution_probs(cfg, lm_runs.params_from_arrays(model, base.arrays), seed)
                           for base, seed in zip(bases, cfg.seeds, strict=True)])  # [seeds, D, E]
    mixed = 1.0 - solution_p ** cfg.group_size - (1.0 - solution_p) ** cfg.group_size
    base_acc = np.stack([_last(base.history("eval_acc")) for base in bases])  # [seeds, distances]
    base_of = {int(seed): base for seed, base in zip(cfg.seeds, bases)}
    sound = [int(seed) for seed, base in base_of.items() if base.gate is not None and base.gate.passed]
    rows = [_row(cfg, run, base_of[run.row["seed"]], in_verdicts=run.row["seed"] in sound) for run in rl]
    # GRPO learns only from groups whose G rewards differ; a policy that is right or wrong on a prompt
    # with probability ~1 leaves all its groups at zero advantage, whatever the reward rate
    zero_adv = rl.stack("history/zero_adv_groups")  # [runs, chunks]
    arm_of_run = np.array([run.row["arm"] for run in rl])
    arm_mean, arm_proc, arm_sampled = _by_arm(cfg, rows)
    metrics = {"pretrained_hard_acc": float(base_acc[:, hard].mean()),
               "pretrained_hard_process_acc": float(np.mean([_last(base.history("eval_process_acc"))[hard]
                                                             for base in bases])),
               **{f"pretrained_acc_d{d + 1}": float(base_acc[:, d].mean()) for d in dists},
               **{f"{a}_hard_acc": v for a, v in arm_mean.items()},
               **{f"{a}_hard_process_acc": v for a, v in arm_proc.items()},
               **{f"{a}_zero_adv_groups": _mean(zero_adv[arm_of_run == a]) for a in cfg.arms},
               **{f"pretrained_solution_prob_d{d + 1}": float(solution_p[:, d].mean()) for d in dists},
               **{f"pretrained_mixed_group_prob_d{d + 1}": float(mixed[:, d].mean()) for d in dists}}
    if cfg.eval_samples:
        base_sampled = np.stack([_last(base.history("eval_sample_acc")) for base in bases])  # [seeds, distances]
        base_sampled_proc = np.stack([_last(base.history("eval_sample_process_acc")) for base in bases])
        metrics.update({f"pretrained_sample_acc_d{d + 1}": float(base_sampled[:, d].mean()) for d in dists})
        metrics.update({f"pretrained_sample_process_acc_d{d + 1}": float(base_sampled_proc[:, d].mean())
                        for d in dists})
        metrics.update({f"{a}_hard_sample_acc": v for a, v in arm_sampled[""].items()})
        metrics.update({f"{a}_hard_sample_process_acc": v for a, v in arm_sampled["_verified"].items()})
    # the claims presuppose a base with the minimal proficiency: judged over the seeds whose base has it
    excluded = [int(seed) for seed in cfg.seeds if int(seed) not in sound]
    if excluded:
        metrics["verdict_seeds_excluded"] = float(len(excluded))
    records = _verdict(cfg, [row for row in rows if row["in_verdicts"]])
    used = (f"seeds {', '.join(map(str, sound))} (bases passed their gate)" if sound else "")
    used += f"; excluded: seeds {', '.join(map(str, excluded))} (base failed its gate)" if excluded else ""
    if not sound:
        reason = f"no seed's base passed its gate ({_requirement(cfg)}); failed: seeds {', '.join(map(str, excluded))}"
        records = {claim: dataclasses.replace(not_judged(reason), paper=v.paper) for claim, v in records.items()}
    else:
        records = {claim: dataclasses.replace(v, reason=f"{v.reason} [{used}]") for claim, v in records.items()}
    return Outcome.judged(metrics, rows, _PAPER, records,
                          {**_arrays(cfg, rl, bases), "pretrain_solution_prob": solution_p})


def _row(cfg: Config, run: Run, base: Run, in_verdicts: bool) -> dict:
    hard = cfg.chain_len - 2
    last = {k[len("history/"):]: _last(v) for k, v in run.arrays.items() if k.startswith("history/")}
    base_last = {k[len("history/"):]: _last(v) for k, v in base.arrays.items() if k.startswith("history/")}
    return {"seed": run.row["seed"], "arm": run.row["arm"], "hard_acc": float(last["eval_acc"][hard]),
            "hard_process_acc": float(last["eval_process_acc"][hard]),
            "hard_len": float(last["eval_len"][hard]),
            "base_hard_acc": float(base_last["eval_acc"][hard]),
            "base_hard_process_acc": float(base_last["eval_process_acc"][hard]),
            "acc_by_distance": _floats(last["eval_acc"]),
            "process_acc_by_distance": _floats(last["eval_process_acc"]),
            # the seed's base, so a multi-seed run shows which bases learned the short chains
            "base_process_acc_by_distance": _floats(base_last["eval_process_acc"]),
            "base_len_by_distance": _floats(base_last["eval_len"]),
            "base_writes_trained_lengths": _writes_trained_lengths(cfg, base_last["eval_len"]),
            **({"hard_sample_acc": float(last["eval_sample_acc"][hard]),
                "hard_sample_process_acc": float(last["eval_sample_process_acc"][hard]),
                "base_hard_sample_acc": float(base_last["eval_sample_acc"][hard]),
                "base_hard_sample_process_acc": float(base_last["eval_sample_process_acc"][hard]),
                "sample_acc_by_distance": _floats(last["eval_sample_acc"]),
                "sample_process_acc_by_distance": _floats(last["eval_sample_process_acc"]),
                "base_sample_process_acc_by_distance": _floats(base_last["eval_sample_process_acc"])}
               if cfg.eval_samples else {}),
            **run.base_info(), "in_verdicts": in_verdicts}


def _by_arm(cfg: Config, rows: list[dict]) -> tuple[dict, dict, dict | None]:
    """Seed-mean accuracy on the hardest distance per arm over `rows`: greedy outcome, greedy
    process-verified and, with eval_samples > 0, sampled ({"": outcome, "_verified": process-verified})."""
    sampled = ({"": _arm_means(cfg, rows, "hard_sample_acc"),
                "_verified": _arm_means(cfg, rows, "hard_sample_process_acc")} if cfg.eval_samples else None)
    return _arm_means(cfg, rows, "hard_acc"), _arm_means(cfg, rows, "hard_process_acc"), sampled


def _floats(values) -> list[float]:
    return [float(x) for x in values]


def _last(history: np.ndarray) -> np.ndarray:
    """The last evaluation of a [chunks, ...] history; NaN of its trailing shape when the stage ran 0
    chunks (learning switched off: nothing was trained or evaluated), so every claim on it is not judged."""
    history = np.asarray(history)
    return history[-1] if len(history) else np.full(history.shape[1:], np.nan)


def _mean(values: np.ndarray) -> float:
    """Mean of a possibly empty array (0 RL chunks: no group was drawn): NaN, without numpy's warning."""
    return float(np.mean(values)) if np.size(values) else float("nan")


def _arm_means(cfg: Config, rows: list[dict], key: str) -> dict:
    return {a: float(np.mean([row[key] for row in rows if row["arm"] == a])) for a in cfg.arms}


_PAPER = {"uniform_hard_acc (L=15, Qwen-3B)": 0.957, "hard_only_hard_acc": 0.0, "5-uniform -> 15-hard": "low"}


_MEASURES = {"": "hard_acc", "_verified": "hard_process_acc", "_sampled": "hard_sample_acc",
             "_sampled_verified": "hard_sample_process_acc"}
_CITE = {"uniform_solves_hardest": "15-Uniform: 95.7% on 15-Hard (Qwen-3B, v1)",
         "hard_only_stays_low": "15-Hard-trained: ~0% on 15-Hard",
         "uniform_much_better_than_hard": "95.7% vs ~0% on 15-Hard",
         "short_below_uniform": "5-Uniform -> 15-Hard: low"}


def _verdict(cfg: Config, rows: list[dict]) -> dict[str, Verdict]:
    """The paper's claims on the hardest distance over `rows` (the gated seeds' runs), judged on the
    greedy outcome accuracy (the paper's measure), again, suffixed `_verified`, on the greedy
    process-verified accuracy, and, suffixed `_sampled` / `_sampled_verified` when eval_samples > 0,
    on the outcome / process-verified accuracy of samples at the RL temperature (the policy's success
    probability, what the theory's gradient flow moves). The answer space is a few dozen integers, so
    a policy that writes well-formed steps with guessed values scores near `fail_level` on outcome
    alone; a verified solution cannot be a guess.
    Thresholds are the paper's claims (hard_level 0.957, fail_level 0.05 by default) on the seed mean,
    with its SE over seeds recorded. "Stays low" claims (`hard_only_stays_low`, `short_below_uniform`)
    need the positive control in the same run: the uniform arm reached hard_level on that measure,
    so the low score is not an untrained or broken policy. `uniform_solves_hardest` presupposes that
    the bases did not already reach hard_level on that measure (rows' base_hard_*; unknown counts as
    not reached): the claim is what RL added, so RL with learning switched off cannot pass it. Arm comparisons are paired by seed (one
    base per seed) and pass only beyond 2 SE of the mean difference: with one gated seed they are
    not judged. `uniform_much_better_than_hard` asks the difference to exceed hard_level - fail_level
    beyond 2 SE."""
    verdict = {}
    suffixes = ["", "_verified"] + (["_sampled", "_sampled_verified"] if cfg.eval_samples else [])

    def per_seed(arm: str, key: str) -> dict[int, float]:
        return {row["seed"]: float(row[key]) for row in rows if row["arm"] == arm}

    def paired(a: str, b: str, key: str, gap: float, what: str) -> Verdict:
        xa, xb = per_seed(a, key), per_seed(b, key)
        mean, se = mean_se([xa[s] - xb[s] for s in xa])
        if not xa:
            return not_judged("no gated seed")
        return greater(mean, gap, se_a=se, se_b=0.0, what=what + (" (one seed: no SE)" if len(xa) < 2 else ""))

    for suffix in suffixes:
        key = _MEASURES[suffix]
        uniform = mean_se(per_seed("uniform", key).values()) if "uniform" in cfg.arms else None
        control = {f"positive control: the uniform arm reached {cfg.hard_level} on {key}":
                   "uniform" in cfg.arms and bool(uniform[0] >= cfg.hard_level)}
        if "uniform" in cfg.arms:
            base = mean_se(row.get("base_" + key, np.nan) for row in rows if row["arm"] == "uniform")[0]
            verdict["uniform_solves_hardest" + suffix] = judged_if(
                {f"the bases do not already reach {cfg.hard_level} on {key} (seed mean {base:.4g})":
                 not base >= cfg.hard_level},
                at_least(uniform[0], cfg.hard_level, se=uniform[1], what=f"uniform arm's seed-mean {key}"))
        if "hard" in cfg.arms:
            hard_mean, hard_se = mean_se(per_seed("hard", key).values())
            verdict["hard_only_stays_low" + suffix] = judged_if(control, at_most(
                hard_mean, cfg.fail_level, se=hard_se, what=f"hard arm's seed-mean {key}"))
        if {"uniform", "hard"} <= set(cfg.arms):
            verdict["uniform_much_better_than_hard" + suffix] = paired(
                "uniform", "hard", key, cfg.hard_level - cfg.fail_level,
                f"uniform - hard {key}, paired by seed, against hard_level - fail_level")
        if suffix == "" and {"uniform", "short"} <= set(cfg.arms):
            verdict["short_below_uniform"] = judged_if(control, paired(
                "uniform", "short", key, 0.0, f"uniform - short {key}, paired by seed"))
    return {claim: v.citing(_CITE[claim.split("_verified")[0].split("_sampled")[0]]) for claim, v in verdict.items()}


def _arrays(cfg: Config, rl: Runs, bases: list[Run]) -> dict:
    base_hist = lambda name: np.stack([base.history(name) for base in bases])  # noqa: E731  [seeds, chunks, ...]
    return {"rl_eval_acc": rl.stack("history/eval_acc"), "rl_eval_process_acc": rl.stack("history/eval_process_acc"),
            "rl_eval_len": rl.stack("history/eval_len"), "rl_reward": rl.stack("history/reward"),
            "rl_zero_adv_groups": rl.stack("history/zero_adv_groups"), "rl_entropy": rl.stack("history/entropy"),
            "run_arm": np.array([run.row["arm"] for run in rl]), "run_seed": np.array([run.row["seed"] for run in rl]),
            "pretrain_eval_acc": base_hist("eval_acc"), "pretrain_eval_process_acc": base_hist("eval_process_acc"),
            "pretrain_eval_len": base_hist("eval_len"), "pretrain_loss": base_hist("loss"),
            **({"rl_eval_sample_acc": rl.stack("history/eval_sample_acc"),
                "rl_eval_sample_process_acc": rl.stack("history/eval_sample_process_acc"),
                "pretrain_eval_sample_acc": base_hist("eval_sample_acc"),
                "pretrain_eval_sample_process_acc": base_hist("eval_sample_process_acc")}
               if cfg.eval_samples else {})}


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    # a stage of 0 steps (learning switched off) has empty [runs, 0, ...] histories: one NaN evaluation
    # stands in, so the figure is drawn (empty) instead of failing on the last evaluation
    arrays = {k: np.full((v.shape[0], 1) + v.shape[2:], np.nan) if v.ndim >= 2 and v.shape[1] == 0 else v
              for k, v in arrays.items()}
    cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
    sampled = cfg["eval_samples"] > 0
    # step 0 is the pre-trained base every arm starts from
    steps = cfg["steps_per_chunk"] * np.arange(0, arrays["rl_eval_acc"].shape[1] + 1)
    hard = cfg["chain_len"] - 2
    seed_index_of_run = [cfg["seeds"].index(int(seed)) for seed in arrays["run_seed"]]

    def from_base(rl_key: str, sel: np.ndarray) -> np.ndarray:
        """[runs of the arm, 1 + chunks] on the hardest distance, the base's final evaluation first."""
        base_of_run = arrays[rl_key.replace("rl_", "pretrain_", 1)][seed_index_of_run, -1, hard][sel]
        return np.concatenate([base_of_run[:, None], arrays[rl_key][sel][:, :, hard]], axis=1)

    fig, axes = plotting.subplots(1, 2, width=4.6, height=4.2)
    ax = axes[0, 0]
    for j, arm in enumerate(cfg["arms"]):
        sel = arrays["run_arm"] == arm
        curve = from_base("rl_eval_acc", sel)
        ax.plot(steps, curve.mean(0), color=f"C{j}", label=arm)
        ax.fill_between(steps, curve.min(0), curve.max(0), color=f"C{j}", alpha=0.2)
        ax.plot(steps, from_base("rl_eval_process_acc", sel).mean(0), ":", color=f"C{j}")
        if sampled:
            ax.plot(steps, from_base("rl_eval_sample_process_acc", sel).mean(0), "--", color=f"C{j}")
    ax.set_xlabel("GRPO step")
    ax.plot([], [], "k:", label="process-verified")
    if sampled:
        ax.plot([], [], "k--", label=f"sampled (T = {cfg['temperature']:g}), process-verified")
    ax.set_ylabel(f"accuracy, distance {cfg['chain_len'] - 1} (solid: greedy)")
    ax.set_ylim(-0.02, 1.02)
    _legend_below(ax)
    ax2 = axes[0, 1]
    dists = np.arange(1, cfg["chain_len"])
    ax2.plot(dists, arrays["pretrain_eval_acc"][:, -1].mean(0), "k--", marker="o", label="pre-trained (NTP)")
    ax2.plot(dists, arrays["pretrain_eval_process_acc"][:, -1].mean(0), "k:", marker="x", label="process-verified (dotted)")
    if sampled:
        ax2.plot(dists, arrays["pretrain_eval_sample_process_acc"][:, -1].mean(0), "k--", marker="s", alpha=0.5,
                 label="sampled, process-verified (dashed)")
    for j, arm in enumerate(cfg["arms"]):
        sel = arrays["run_arm"] == arm
        ax2.plot(dists, arrays["rl_eval_acc"][sel][:, -1].mean(0), marker="o", color=f"C{j}", label=f"after RL: {arm}")
        ax2.plot(dists, arrays["rl_eval_process_acc"][sel][:, -1].mean(0), ":", marker="x", color=f"C{j}")
        if sampled:
            ax2.plot(dists, arrays["rl_eval_sample_process_acc"][sel][:, -1].mean(0), "--", marker="s", color=f"C{j}")
    ax2.set_xticks(dists)
    ax2.set_xlabel("distance to the target")
    ax2.set_ylabel("accuracy (solid: greedy outcome)")
    ax2.set_ylim(-0.02, 1.02)
    _legend_below(ax2)
    fig.suptitle(f"affine-uniform-vs-hard (L = {cfg['chain_len']}, NTP on distances 1..{cfg['pretrain_max_distance']})")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]


def _legend_below(ax) -> None:
    """Under the axes: every arm's curves cross the whole panel, so no corner inside is free."""
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
