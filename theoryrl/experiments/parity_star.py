"""parity-star: STaR rounds double the odds of the long chain (spec §4 Theorem 2, §5 #1-#2).

Tsilivis et al. 2510.11495, Theorem 2: self-training on the model's own r_cot-correct samples maps
the long fraction p_n to 2 p_n / (1 + p_n), so p_n = 2^n p0 / (2^n p0 + 1 - p0), and greedy decoding
switches to the chain at the first n with 2^n > (1 - p0) / (2 p0). This checks the recursion and
the switch round, and that policy gradient reaches the same end. Three arms, per p0 and seed:
- calibrated: STaR on the exactly calibrated sampler of theory/parity.py; the "fit" is exact (the
  next q is the kept long fraction). r_e2e is not run here: it keeps the same pairs as r_cot.
- star: the AR-linear learner pretrained by NTP on D(p0) (rl/ar_linear_train.py), then `rounds`
  STaR rounds (rl/star.py) of `learned_prompts` fresh prompts, keep r = 1, `epochs` fresh-horizon
  SGD epochs on the kept pairs; rewards r_cot and r_e2e (comparison: keeps wrong chains too).
  `learned_prompts` is far above the spec's N = 8192 because every head must see enough kept
  samples of its kind in every round for Theorem 1 to apply; the paper tier runs at d = 25, where a
  sampled chain is fully correct w.p. c = sigmoid(w*)^(d-1) (theory.long_correct_factor), so the
  odds grow by about 2c per round.
- pg: the same pretrained learner post-trained with REINFORCE and GRPO (r_cot, plain SGD).
Long fraction at round n: q_n (calibrated) or pi_long_correct (learned); switch round: the first n
whose greedy decoding outputs the chain on at least half the eval prompts. Verdicts (three-valued
records, see `_judge`): the calibrated arm's are simulation checks of the theory's own recursion,
named sim_calibrated_... (issue 20; before: calibrated_...), and its rows say kind "simulation" with
`theory_final_acc` (the greedy accuracy the formula gives for the last q) instead of final_acc:
long fraction within `se_tol` delta-method standard errors of the closed form, switch round ==
formula for every seed. Learned arms (kind "learned"; judged only when NTP pre-training learned
the chain, pi(long correct) >= p0 / 2 at round 0): learned switch within `switch_tol` of the
formula and final greedy accuracy >= `acc_target`; pg reaches `acc_target` and grows the long
fraction beyond 2 SE. Measurements:
docs/results/parity-star.md.

Learning switched off (issue 20): pg_lr may be 0; the AR-linear learner has no learning rate
(eta_t = 1/(lam t)), its learning is head_samples / chain_samples (NTP), rounds and epochs (STaR)
and pg_steps, each of which may be 0 (0 samples: the zero-initialised model; 0 rounds / steps: the
arm runs no chunk and its claims, the simulation's too, are not judged; 0 epochs: STaR fits
nothing). Accuracy and switch claims are judged only when the start had not already reached them
(at p0 > 1/3 NTP alone generalises), so no claim passes with learning switched off.
"""
from __future__ import annotations

import dataclasses
import json
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core import prng
from theoryrl.core import verdicts as V
from theoryrl.core.config import (check_seeds, is_int, require, require_finite_nonneg, require_finite_positive,
                                  require_float, require_floats, require_int)
from theoryrl.core.experiment import Outcome, Program, Run, RunPlan, Runs
from theoryrl.core.results import load_npz
from theoryrl.experiments.parity_lm_common import NOTHING_TRAINED
from theoryrl.experiments.parity_threshold import long_correct_learned_min
from theoryrl.models import ar_linear as ar
from theoryrl.rl import star
from theoryrl.rl.ar_linear_train import evaluate, sgd_hyper, train_ntp
from theoryrl.tasks import parity
from theoryrl.theory import parity as th

ID = "parity-star"
TITLE = "Parity with short/long CoT: STaR long fraction and greedy switch vs round; REINFORCE/GRPO"
PAPER = ("Tsilivis et al. 2510.11495, Theorem 2 (STaR doubles the odds of the long chain; greedy switches after "
         "~log2((1-p0)/(2p0)) rounds)")

ARMS = ("calibrated", "star", "pg")


@dataclasses.dataclass(frozen=True)
class Config:
    arms: tuple[str, ...] = ARMS
    p0s: tuple[float, ...] = (0.25, 0.1, 0.01)
    seeds: tuple[int, ...] = (42, 43, 44)
    rounds: int = 10
    calib_prompts: int = 8192
    learned_d: int = 25
    learned_prompts: int = 2 ** 20
    learned_batch: int = 1
    epochs: int = 1
    temperature: float = 1.0
    rewards: tuple[str, ...] = ("cot", "e2e")
    head_samples: int = 2_000_000
    chain_samples: int = 200_000
    lam: float = 1e-3
    lam_chain: float = 1e-3
    avg_power: float = 1.0
    estimators: tuple[str, ...] = star.PG_ESTIMATORS
    pg_steps: int = 1000
    pg_steps_per_chunk: int = 50
    pg_prompts: int = 64
    pg_group: int = 8
    pg_lr: float = 1.0
    eval_prompts: int = 4096
    se_tol: float = 4.0
    switch_tol: int = 1
    acc_target: float = 0.95

    def validate(self):
        require(len(self.arms) > 0 and set(self.arms) <= set(ARMS), "arms", self.arms, f"a subset of {ARMS}")
        # p0 >= 1e-6: the runs hold p0 in float32 (0 below 1.4e-45), and analyze counts STaR rounds while
        # 2^n <= (1 - p0)/(2 p0) (theory.parity.star_rounds; a float64 overflow for p0 near 0); at 1e-6 the
        # predicted switch round (~19) is already twice the tiers' 10 rounds
        require_floats(self.p0s, "p0s", 1e-6, 1.0, hi_open=True, allowed="values in [1e-6, 1)")
        check_seeds(self.seeds)
        # rounds <= 1000: analyze evaluates 2^round in float64 (overflows at 1024); 0 rounds, epochs, samples or
        # pg_steps: learning switched off (issue 20), that arm fits nothing
        require_int(self.rounds, "rounds", 0, 1000, "0..1000 (0: learning off)")
        # sizes ~16x-64x the paper tier (8192 calibration prompts, 2^20 STaR prompts, 2e6 / 2e5 samples)
        require_int(self.calib_prompts, "calib_prompts", 2, 4_194_304)
        require_int(self.learned_d, "learned_d", 3, 256)  # as parity_lm_common.check_ds: 5x the spec's d = 50
        require_int(self.learned_batch, "learned_batch", 1, 16_384)
        require(is_int(self.learned_prompts) and self.learned_batch <= self.learned_prompts <= 2 ** 24
                and self.learned_prompts % self.learned_batch == 0, "learned_prompts", self.learned_prompts,
                f"a positive multiple of learned_batch = {self.learned_batch}, at most 2^24")
        require_int(self.epochs, "epochs", 0, 100, "0..100 (0: the STaR fit keeps the params)")
        require_finite_positive(self.temperature, "temperature")
        require(len(self.rewards) > 0 and set(self.rewards) <= set(parity.REWARDS), "rewards", self.rewards,
                f"a subset of {parity.REWARDS}")
        require_int(self.head_samples, "head_samples", 0, 100_000_000, "0..100000000 (0: learning off)")
        require_int(self.chain_samples, "chain_samples", 0, 100_000_000, "0..100000000 (0: learning off)")
        # lam, lam_chain: float32 SGD with eta_t = 1/(lam t); 1e-8 keeps the first step -grad/lam finite
        require_float(self.lam, "lam", 1e-8, None)
        require_float(self.lam_chain, "lam_chain", 1e-8, None)
        # polynomial-decay averaging weight (1+k)/(t+k): for k far above the step count it is ~1 (no
        # averaging at all), and near float32 max the update (w - avg)(1 + k) overflows
        require_finite_nonneg(self.avg_power, "avg_power", hi=1e6)
        require(len(self.estimators) > 0 and set(self.estimators) <= set(star.PG_ESTIMATORS), "estimators",
                self.estimators, f"a subset of {star.PG_ESTIMATORS}")
        require_int(self.pg_steps_per_chunk, "pg_steps_per_chunk", 1, 1_000_000)
        require(is_int(self.pg_steps) and 0 <= self.pg_steps <= 1_000_000
                and self.pg_steps % self.pg_steps_per_chunk == 0, "pg_steps", self.pg_steps,
                f"a multiple of pg_steps_per_chunk = {self.pg_steps_per_chunk} in 0..1000000 (0: learning off)")
        require_int(self.pg_prompts, "pg_prompts", 1, 16_384)
        require_int(self.pg_group, "pg_group", 2, 1024, "2..1024 (GRPO needs a group)")
        require_finite_nonneg(self.pg_lr, "pg_lr")  # 0: learning switched off (issue 20)
        require_int(self.eval_prompts, "eval_prompts", 16, 1_048_576)
        require_finite_positive(self.se_tol, "se_tol")
        require_int(self.switch_tol, "switch_tol", 0, 1000)
        require_float(self.acc_target, "acc_target", 0.0, 1.0, lo_open=True)


TIERS = {
    # learned arm at d = 10 with 2e5 / 2e4 pretraining samples (heads 1, 2a / chain heads)
    "quick": Config(seeds=(42, 43), rounds=8, learned_d=10, learned_prompts=2 ** 18, learned_batch=8,
                    head_samples=200_000, chain_samples=20_000, pg_steps=400, eval_prompts=2048),
    "paper": Config(),
}


# ----------------------------------------------------------------------------------------------
# programs (one run each; the runner vmaps them)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class CalibratedHp:
    """Traced knobs of one calibrated-sampler run: its seed and the initial long fraction p0."""

    seed: jax.Array  # int32 []
    p0: jax.Array  # float32 []


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class StarHp:
    """Traced knobs of one learned STaR run: seed, NTP pretraining on D(p0) with SGD knobs `sgd`
    (also STaR's fit), sampling temperature, and whether the reward is r_e2e (else r_cot)."""

    seed: jax.Array  # int32 []
    p0: jax.Array  # float32 []
    sgd: ar.SGDHyper
    temperature: jax.Array  # float32 []
    e2e: jax.Array  # bool []


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PolicyGradientHp:
    """Traced knobs of one policy-gradient run: seed, NTP pretraining on D(p0) with SGD knobs `sgd`,
    sampling temperature, the SGD rate lr, and whether the estimator is GRPO (else REINFORCE)."""

    seed: jax.Array  # int32 []
    p0: jax.Array  # float32 []
    sgd: ar.SGDHyper
    temperature: jax.Array  # float32 []
    lr: jax.Array  # float32 []
    grpo: jax.Array  # bool []


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class CalibratedState:
    """The calibrated sampler between rounds: its long fraction q and the rounds done."""

    q: jax.Array  # float32 []
    round: jax.Array  # int32 []


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LearnedState:
    """The AR-linear learner between STaR rounds (or policy-gradient chunks): its parameters and the
    rounds (chunks) done."""

    params: ar.ARParams
    round: jax.Array  # int32 []


def _eval_data(d: int, n: int):
    def data_fn(hp):
        return {"x_eval": parity.sample_prompts(prng.step_key(prng.root_key(hp.seed), prng.Stream.EVAL, 0), d, n)}

    return data_fn


def _calibrated_program(cfg: Config, d: int) -> Program:
    """STaR on the exactly calibrated sampler: params = q, fit = the kept long fraction."""

    def fit_fn(q, key, x, outputs, length, keep):
        return jnp.sum(keep * (length == d)) / jnp.maximum(jnp.sum(keep), 1.0)

    def sample_fn(q, key, x):
        return jax.vmap(th.calibrated_decode, (0, 0, None))(jax.random.split(key, x.shape[0]), x, q)

    def chunk_fn(state: CalibratedState, hp: CalibratedHp, data):
        q, r = state.q, state.round
        key = prng.step_key(prng.root_key(hp.seed), prng.Stream.DATA, r)
        new_q, ro = star.star_round(q, key, prompt_fn=lambda k: parity.sample_prompts(k, d, cfg.calib_prompts),
                                    sample_fn=sample_fn, reward_fn=partial(parity.rewards, "cot"), fit_fn=fit_fn)
        g_out, g_len = jax.vmap(th.calibrated_greedy, (0, None))(data["x_eval"], q)
        metrics = {"long_fraction": q, "next_long_fraction": new_q, "sampled_long": jnp.mean(ro.length == d),
                   "kept": jnp.mean(ro.keep), "acc": jnp.mean(parity.rewards("e2e", data["x_eval"], g_out, g_len)),
                   "greedy_long": jnp.mean(g_len == d)}
        return CalibratedState(q=new_q, round=r + 1), metrics

    return Program(data_fn=_eval_data(d, cfg.eval_prompts),
                   init_fn=lambda hp: CalibratedState(q=jnp.float32(hp.p0), round=jnp.int32(0)),
                   chunk_fn=chunk_fn, num_chunks=cfg.rounds, steps_per_chunk=1,
                   summarize=lambda m: {"q": float(np.mean(m["next_long_fraction"]))})


def _pretrained_init(cfg: Config, d: int):
    def init_fn(hp: StarHp | PolicyGradientHp):
        key = prng.stream_key(prng.root_key(hp.seed), prng.Stream.INIT)
        state = train_ntp(ar.init_sgd(ar.init_params(d)), key, d, hp.p0, cfg.head_samples, cfg.chain_samples,
                          hp.sgd)
        return LearnedState(params=ar.model(state), round=jnp.int32(0))

    return init_fn


def _star_program(cfg: Config, d: int) -> Program:
    def chunk_fn(state: LearnedState, hp: StarHp, data):
        params, r = state.params, state.round
        root = prng.root_key(hp.seed)
        calls = star.ar_linear_callables(d, "cot", cfg.learned_prompts, hp.temperature, hp.sgd,
                                         epochs=cfg.epochs, batch=cfg.learned_batch)

        def reward_fn(x, outputs, length):  # hp.e2e is traced: r_cot and r_e2e arms share a program
            e2e, cot = (parity.rewards(kind, x, outputs, length) for kind in ("e2e", "cot"))
            return jnp.where(hp.e2e, e2e, cot)

        new_params, ro = star.star_round(params, prng.step_key(root, prng.Stream.DATA, r),
                                         prompt_fn=calls["prompt_fn"], sample_fn=calls["sample_fn"],
                                         reward_fn=reward_fn, fit_fn=calls["fit_fn"])
        before = evaluate(params, prng.step_key(root, prng.Stream.EVAL, 2 * r + 1), data["x_eval"])
        after = evaluate(new_params, prng.step_key(root, prng.Stream.EVAL, 2 * r + 2), data["x_eval"])
        kept_long = ro.keep * (ro.length == d)
        cot_ok = parity.rewards("cot", ro.prompts, ro.outputs, ro.length)
        metrics = {**{f"before_{k}": v for k, v in before.items()}, **{f"after_{k}": v for k, v in after.items()},
                   "sampled_long": jnp.mean(ro.length == d), "kept": jnp.mean(ro.keep),
                   "kept_long": jnp.sum(kept_long) / jnp.maximum(jnp.sum(ro.keep), 1.0),
                   "kept_long_wrong": jnp.sum(kept_long * (1.0 - cot_ok)) / jnp.maximum(jnp.sum(kept_long), 1.0)}
        return LearnedState(params=new_params, round=r + 1), metrics

    return Program(data_fn=_eval_data(d, cfg.eval_prompts), init_fn=_pretrained_init(cfg, d), chunk_fn=chunk_fn,
                   num_chunks=cfg.rounds, steps_per_chunk=1,
                   summarize=lambda m: {"acc": float(np.mean(m["after_acc"])),
                                        "long": float(np.mean(m["after_pi_long_correct"]))})


def _pg_program(cfg: Config, d: int) -> Program:
    def chunk_fn(state: LearnedState, hp: PolicyGradientHp, data):
        params, c = state.params, state.round
        root = prng.root_key(hp.seed)
        calls = star.ar_linear_callables(d, "cot", cfg.pg_prompts, hp.temperature, hp.sgd)

        def advantage_fn(rewards_PxG):  # hp.grpo is traced: both estimators share a program
            return jnp.where(hp.grpo, star.pg_advantages("grpo", rewards_PxG),
                             star.pg_advantages("reinforce", rewards_PxG))

        def step(p, t):
            key = prng.step_key(root, prng.Stream.POLICY, c * cfg.pg_steps_per_chunk + t)
            grads, ro, _ = star.policy_gradient(p, key, prompt_fn=calls["prompt_fn"], sample_fn=calls["sample_fn"],
                                                reward_fn=calls["reward_fn"], log_prob_fn=calls["log_prob_fn"],
                                                advantage_fn=advantage_fn, group=cfg.pg_group)
            return star.sgd_apply(p, grads, hp.lr), jnp.mean(ro.reward)

        before = evaluate(params, prng.step_key(root, prng.Stream.EVAL, 2 * c + 1), data["x_eval"])
        new_params, reward_T = jax.lax.scan(step, params, jnp.arange(cfg.pg_steps_per_chunk))
        after = evaluate(new_params, prng.step_key(root, prng.Stream.EVAL, 2 * c + 2), data["x_eval"])
        metrics = {**{f"before_{k}": v for k, v in before.items()}, **{f"after_{k}": v for k, v in after.items()},
                   "reward": jnp.mean(reward_T)}
        return LearnedState(params=new_params, round=c + 1), metrics

    return Program(data_fn=_eval_data(d, cfg.eval_prompts), init_fn=_pretrained_init(cfg, d), chunk_fn=chunk_fn,
                   num_chunks=cfg.pg_steps // cfg.pg_steps_per_chunk, steps_per_chunk=cfg.pg_steps_per_chunk,
                   summarize=lambda m: {"acc": float(np.mean(m["after_acc"])), "reward": float(np.mean(m["reward"]))})


def _star_hp(cfg: Config, seed: int, p0: float, e2e: bool) -> StarHp:
    return StarHp(seed=np.int32(seed), p0=np.float32(p0), sgd=sgd_hyper(cfg.lam, cfg.lam_chain, cfg.avg_power),
                  temperature=np.float32(cfg.temperature), e2e=np.bool_(e2e))


def _pg_hp(cfg: Config, seed: int, p0: float, grpo: bool) -> PolicyGradientHp:
    return PolicyGradientHp(seed=np.int32(seed), p0=np.float32(p0),
                            sgd=sgd_hyper(cfg.lam, cfg.lam_chain, cfg.avg_power),
                            temperature=np.float32(cfg.temperature), lr=np.float32(cfg.pg_lr), grpo=np.bool_(grpo))


def arm_variants(cfg: Config) -> list[tuple[str, str]]:
    """(arm, variant) of every run of one (p0, seed): STaR's reward, or pg's estimator."""
    out = [("calibrated", "cot")] if "calibrated" in cfg.arms else []
    if "star" in cfg.arms:
        out += [("star", reward) for reward in cfg.rewards]
    if "pg" in cfg.arms:
        out += [("pg", est) for est in cfg.estimators]
    return out


def _plan(cfg: Config, arm: str, variant: str, p0: float, seed: int) -> RunPlan:
    d, row = cfg.learned_d, {"arm": arm, "variant": variant, "p0": p0, "seed": seed}
    if arm == "calibrated":
        return RunPlan(row, ("calibrated", d), "calibrated", CalibratedHp(np.int32(seed), np.float32(p0)),
                       partial(_calibrated_program, cfg, d))
    if arm == "star":
        return RunPlan(row, ("star", d), f"star-d{d}", _star_hp(cfg, seed, p0, e2e=variant == "e2e"),
                       partial(_star_program, cfg, d))
    return RunPlan(row, ("pg", d), f"pg-d{d}", _pg_hp(cfg, seed, p0, grpo=variant == "grpo"),
                   partial(_pg_program, cfg, d))


def plan(cfg: Config) -> list[RunPlan]:
    return [_plan(cfg, arm, variant, p0, s) for p0 in cfg.p0s for s in cfg.seeds for arm, variant in arm_variants(cfg)]


# ----------------------------------------------------------------------------------------------
# analysis


def curves(arm: str, run: Run) -> dict[str, np.ndarray]:
    """Per-run curves over n = 0..rounds (STaR) or chunk boundaries (pg): long fraction, acc, greedy_long."""
    h = {k[len("history/"):]: np.asarray(v, np.float64) for k, v in run.arrays.items() if k.startswith("history/")}
    if not len(next(iter(h.values()))):  # 0 rounds / steps (issue 20): nothing ran, no point of any curve
        return {k: np.zeros(0) for k in ("long", "acc", "greedy_long") + (() if arm == "calibrated" else
                                                                          ("sampled_long",))}
    if arm == "calibrated":
        q = np.append(h["long_fraction"], h["next_long_fraction"][-1])
        greedy_long = np.append(h["greedy_long"], float(th.greedy_goes_long(q[-1])))
        acc = np.append(h["acc"], np.nan)  # the last model's greedy accuracy is not measured
        return {"long": q, "acc": acc, "greedy_long": greedy_long}
    pick = lambda k: np.append(h[f"before_{k}"], h[f"after_{k}"][-1])  # noqa: E731
    return {"long": pick("pi_long_correct"), "acc": pick("acc"), "greedy_long": pick("greedy_long"),
            "sampled_long": pick("sampled_long")}


def switch_round(greedy_long: np.ndarray) -> int | None:
    hit = np.nonzero(greedy_long >= 0.5)[0]
    return int(hit[0]) if hit.size else None


def _steps_to(acc: np.ndarray, target: float, steps_per_chunk: int) -> int | None:
    hit = np.nonzero(acc >= target)[0]
    return int(hit[0]) * steps_per_chunk if hit.size else None


def _row(cfg: Config, row: dict, c: dict) -> dict:
    if not len(c["long"]):  # 0 rounds / steps: nothing was trained or simulated
        return {**row, "kind": "simulation" if row["arm"] == "calibrated" else "learned",
                "formula_rounds": th.star_rounds(row["p0"]) if row["arm"] != "pg" else None, "switch_round": None,
                "max_abs_dev_closed_form": None, "steps_to_acc_target": None, "final_long": None,
                **({} if row["arm"] == "calibrated" else {"final_acc": None})}
    if row["arm"] == "pg":
        return {**row, "kind": "learned", "formula_rounds": None, "switch_round": None, "max_abs_dev_closed_form": None,
                "steps_to_acc_target": _steps_to(c["acc"], cfg.acc_target, cfg.pg_steps_per_chunk),
                "final_long": float(c["long"][-1]), "final_acc": float(c["acc"][-1])}
    closed = th.star_closed_form(row["p0"], np.arange(len(c["long"])))
    out = {**row, "formula_rounds": th.star_rounds(row["p0"]), "switch_round": switch_round(c["greedy_long"]),
           "max_abs_dev_closed_form": float(np.max(np.abs(c["long"] - closed))), "steps_to_acc_target": None,
           "final_long": float(c["long"][-1])}
    if row["arm"] == "calibrated":  # a simulation of the theory: its last greedy accuracy is the formula's value
        return {**out, "kind": "simulation", "theory_final_acc": float(th.greedy_accuracy(c["long"][-1]))}
    return {**out, "kind": "learned", "final_acc": float(c["acc"][-1])}


def _pretrained_learned(cfg: Config, p0: float, stack: dict) -> dict[str, bool]:
    """Precondition of every learned-arm claim (issue 20): NTP pre-training taught the chain, i.e.
    pi(long correct) >= p0 / 2 at round 0 on every seed, and at least twice the untrained model's
    (parity_threshold.long_correct_learned_min, as its chain_learned for the AR-linear family);
    otherwise there is no long chain for STaR or RL to amplify."""
    pi0 = float(np.min(stack["long"][:, 0]))
    least = float(long_correct_learned_min(p0, cfg.learned_d))
    return {f"the pretrained learner learned the chain: pi(long correct) >= max(p0 / 2, 2^-d) = {least:g} on every "
            f"seed (measured min {pi0:.4g})": pi0 >= least}


def _start_below_target(cfg: Config, stack: dict) -> dict[str, bool]:
    """Precondition of the accuracy claims (issue 20): the pretrained learner's greedy accuracy at
    round / step 0 is below acc_target on every seed, so reaching it is the post-training's doing
    (at p0 > 1/3 NTP alone already generalises, and the claim would pass with nothing learned)."""
    return {f"the start's greedy accuracy is below acc_target = {cfg.acc_target} on every seed (post-training has "
            "something to learn)": bool(np.all(stack["acc"][:, 0] < cfg.acc_target))}


def _judge(cfg: Config, arm: str, variant: str, p0: float, stack: dict, members: Runs, metrics: dict,
           verdicts: dict):
    """Metrics and verdict records of one (arm, variant, p0) over its seeds.
    - calibrated (a simulation of Theorem 2's recursion, named `sim_...`, issue 20): the largest
      deviation from the closed form in delta-method SEs <= se_tol; the switch round equals the
      formula on every seed (value: max |switch - formula|), judged when the simulated rounds reach
      the formula's round;
    - star (learned): every seed switches within switch_tol rounds of the formula (value: max
      |switch - formula|, inf when a seed never switches), judged when no seed's greedy output was
      already long at round 0 (issue 20: else the switch is pre-training's, and would be "found"
      with nothing fitted); min final greedy accuracy >= acc_target (`_start_below_target`);
    - pg (learned): min final greedy accuracy >= acc_target (`_start_below_target`); the seed-mean
      growth of pi(long correct) beyond 2 SE (one seed: not judged).
    Every learned claim is judged only when pre-training learned the chain (`_pretrained_learned`).
    An arm of 0 rounds / steps (issue 20: learning switched off) ran nothing: its claims are not
    judged (for the calibrated arm: no round was simulated)."""
    tag = f"{arm},{variant},p0={p0}"
    formula = th.star_rounds(p0)
    paper_switch = f"greedy switches to the chain at round {formula} = first n with 2^n > (1 - p0)/(2 p0) (Theorem 2)"
    if not stack["long"].shape[1]:
        why = V.not_judged(f"{'no round was simulated' if arm == 'calibrated' else NOTHING_TRAINED} "
                           f"({'pg_steps' if arm == 'pg' else 'rounds'} = 0)")
        names = {"pg": [f"pg_reaches_acc_target[{tag}]", f"pg_long_fraction_grows[{tag}]"],
                 "calibrated": [f"sim_calibrated_long_fraction_within_{cfg.se_tol:g}se[p0={p0}]",
                                f"sim_calibrated_switch_round_equals_formula[p0={p0}]"],
                 "star": [f"learned_{variant}_switch_within_{cfg.switch_tol}[p0={p0}]",
                          f"learned_{variant}_final_acc[p0={p0}]"]}[arm]
        verdicts.update({name: why for name in names})
        if arm == "pg":
            metrics[f"steps_to_acc_target[{tag}]"] = None
        else:
            metrics[f"switch_round_mean[{tag}]"] = metrics[f"max_abs_dev_closed_form[{tag}]"] = None
        return
    if arm == "pg":
        reach = [_steps_to(a, cfg.acc_target, cfg.pg_steps_per_chunk) for a in stack["acc"]]
        metrics[f"steps_to_acc_target[{tag}]"] = float(np.mean(reach)) if None not in reach else None
        learned = _pretrained_learned(cfg, p0, stack)
        verdicts[f"pg_reaches_acc_target[{tag}]"] = V.judged_if({**learned, **_start_below_target(cfg, stack)},
                                                                V.at_least(
            float(stack["acc"][:, -1].min()), cfg.acc_target, what="min final greedy accuracy over seeds")).citing(
            "REINFORCE and GRPO also reach perfect accuracy")
        growth, se = V.mean_se(stack["long"][:, -1] - stack["long"][:, 0])
        verdicts[f"pg_long_fraction_grows[{tag}]"] = V.judged_if(learned, V.greater(
            growth, 0.0, se_a=se, se_b=0.0, what="seed-mean growth of pi(long correct)")).citing(
            "REINFORCE and GRPO increase the length")
        return
    switches = [switch_round(g) for g in stack["greedy_long"]]
    metrics[f"switch_round_mean[{tag}]"] = float(np.mean(switches)) if None not in switches else None
    dev = np.abs(stack["long"] - th.star_closed_form(p0, np.arange(stack["long"].shape[1]))[None])
    metrics[f"max_abs_dev_closed_form[{tag}]"] = float(dev.max())
    off = float(max(np.inf if sw is None else abs(sw - formula) for sw in switches))
    if arm == "calibrated":
        se = th.star_long_fraction_se(p0, cfg.rounds, cfg.calib_prompts)
        metrics[f"max_dev_in_se[{tag}]"] = float(np.max(dev[:, 1:] / se[None, 1:]))
        verdicts[f"sim_calibrated_long_fraction_within_{cfg.se_tol:g}se[p0={p0}]"] = V.at_most(
            metrics[f"max_dev_in_se[{tag}]"], cfg.se_tol,
            what="simulation: max |q_n - closed form| in delta-method SEs over rounds and seeds").citing(
            "p_n = 2^n p0 / (2^n p0 + 1 - p0) (Theorem 2)")
        verdicts[f"sim_calibrated_switch_round_equals_formula[p0={p0}]"] = V.judged_if(
            {f"the simulated rounds ({cfg.rounds}) reach the formula's switch round {formula}": formula <= cfg.rounds},
            V.at_most(off, 0.0, what="simulation: max |switch round - formula| over seeds")).citing(paper_switch)
        return
    metrics[f"kept_long_wrong_mean[{tag}]"] = float(np.mean([r.history("kept_long_wrong") for r in members]))
    learned = _pretrained_learned(cfg, p0, stack)
    short_at_0 = {"the pretrained learner's greedy output is short at round 0 on every seed (STaR has a switch to "
                  "make)": bool(np.all(stack["greedy_long"][:, 0] < 0.5))}
    verdicts[f"learned_{variant}_switch_within_{cfg.switch_tol}[p0={p0}]"] = V.judged_if({**learned, **short_at_0},
                                                                                      V.at_most(
        off, cfg.switch_tol, what="max |switch round - formula| over seeds (inf: never switched)")).citing(paper_switch)
    verdicts[f"learned_{variant}_final_acc[p0={p0}]"] = V.judged_if({**learned, **_start_below_target(cfg, stack)},
                                                                    V.at_least(
        float(stack["acc"][:, -1].min()), cfg.acc_target, what="min final greedy accuracy over seeds")).citing(
        "greedy becomes long and correct (accuracy 1) after the switch (Theorem 2)")


def analyze(cfg: Config, runs: Runs) -> Outcome:
    rows, metrics, verdicts, arrays = [], {}, {}, {}
    for p0 in cfg.p0s:
        for s in cfg.seeds:
            for arm, variant in arm_variants(cfg):
                run = runs.one(arm=arm, variant=variant, p0=p0, seed=s)
                rows.append(_row(cfg, run.row, curves(arm, run)))
    for p0 in cfg.p0s:
        for arm, variant in arm_variants(cfg):
            members = Runs([runs.one(arm=arm, variant=variant, p0=p0, seed=s) for s in cfg.seeds])
            per_seed = [curves(arm, r) for r in members]
            stack = {k: np.stack([c[k] for c in per_seed]) for k in per_seed[0]}
            arrays.update({f"{arm},{variant},{cfg.p0s.index(p0)}/{k}": v for k, v in stack.items()})
            metrics[f"formula_rounds[p0={p0}]"] = th.star_rounds(p0)
            metrics[f"ceil_log2_rounds[p0={p0}]"] = th.star_rounds_log2(p0)
            _judge(cfg, arm, variant, p0, stack, members, metrics, verdicts)
    arrays.update({"p0s": np.array(cfg.p0s), "rounds": np.int32(cfg.rounds),
                   "pg_steps_per_chunk": np.int32(cfg.pg_steps_per_chunk)})
    paper = {"recursion": "STaR with r_cot: p_{n+1} = 2 p_n/(1 + p_n), p_n = 2^n p0/(2^n p0 + 1 - p0)",
             "switch": "greedy becomes long and correct at the first n with 2^n > (1 - p0)/(2 p0) (0.25 -> 1, "
                       "0.1 -> 3, 0.01 -> 6)",
             "pg": "REINFORCE and GRPO also increase length and reach perfect accuracy",
             "e2e": "r_e2e also keeps wrong chains whose final bit is right (comparison arm)",
             "settings": f"calibrated N = {cfg.calib_prompts}; learned d = {cfg.learned_d}, N = {cfg.learned_prompts}, "
                         f"batch {cfg.learned_batch}, E = {cfg.epochs}, tau = {cfg.temperature}, lam = {cfg.lam}"}
    return Outcome.judged(metrics, rows, paper, verdicts, arrays)


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arr = load_npz(Path(run_dir) / "arrays.npz")
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    p0s = arr["p0s"]
    fig, axes = plotting.subplots(1, 4, width=4.2)
    styles = {("calibrated", "cot"): ("o", "-"), ("star", "cot"): ("s", "--"), ("star", "e2e"): ("^", ":")}
    n = np.arange(int(arr["rounds"]) + 1)
    for i, p0 in enumerate(p0s):
        closed = th.star_closed_form(float(p0), n)
        for ax in axes[0, :2]:
            ax.plot(n, closed, color=f"C{i}", lw=3, alpha=0.3, label=f"p0 = {p0:g} (closed form)")
        for (arm, variant), (marker, ls) in styles.items():
            key = f"{arm},{variant},{i}"
            if f"{key}/long" not in arr or arr[f"{key}/long"].shape[1] == 0:  # 0 rounds: nothing to draw
                continue
            ax = axes[0, 0] if arm == "calibrated" else axes[0, 1]
            label = f"{arm} {variant}" if i == 0 else None
            ax.plot(n, arr[f"{key}/long"].mean(0), marker=marker, ls=ls, color=f"C{i}", ms=3, label=label)
            axes[0, 2].plot(n, arr[f"{key}/greedy_long"].mean(0), marker=marker, ls=ls, color=f"C{i}", ms=3,
                            label=label)
        axes[0, 2].axvline(th.star_rounds(float(p0)), color=f"C{i}", lw=1, alpha=0.5)
        for j, est in enumerate(("reinforce", "grpo")):
            key = f"pg,{est},{i}"
            if f"{key}/acc" in arr:
                steps = np.arange(arr[f"{key}/acc"].shape[1]) * int(arr["pg_steps_per_chunk"])
                axes[0, 3].plot(steps, arr[f"{key}/acc"].mean(0), ls=["-", "--"][j], color=f"C{i}",
                                label=f"{est}, p0 = {p0:g}")
    axes[0, 0].set(xlabel="STaR round n", ylabel="long fraction", title="calibrated sampler vs closed form")
    axes[0, 1].set(xlabel="STaR round n", ylabel="pi(long correct)", title="AR-linear learner (thick: closed form)")
    axes[0, 2].set(xlabel="STaR round n", ylabel="greedy long fraction", title="greedy switch (lines: formula round)")
    axes[0, 3].set(xlabel="policy-gradient step", ylabel="greedy accuracy", title="REINFORCE / GRPO (r_cot)")
    for ax in axes[0]:
        ax.legend(fontsize=6)
    fig.suptitle(f"parity-star ({summary['paper']['settings']})", fontsize=9)
    return [plotting.savefig(fig, Path(out_dir) / "parity-star.png")]
