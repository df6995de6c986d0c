"""parity-rl: RL after NTP makes a transformer generalise on parity (spec parity_cot.md §5 #3 (c)-(e), Fig. 3).

Tsilivis et al. (2510.11495, Sec. 3.1) show that a decoder pre-trained by NTP on a mixture with
few long chains (p_cot < 1/3) greedily answers short (~50%), yet outcome-reward RL from it grows
the response to the full chain and generalises; RL from a model that has not learned the chain
("too early") does not. Two stages:
1. "pretrain" (stored bases, `parity_lm_common.pretrain_plan`): NTP on D(p_cot), base "main" at
   p_cot for `pretrain_steps`, base "low" at p_cot_low for `low_pretrain_steps` (only when a start
   needs it), every seed. Gate: the chain is learned, final teacher-forced chain_token_acc >=
   good_acc. Starts: "good" = the end of main (the end, not the first chunk above good_acc: there
   the chain's probabilities are not yet calibrated; see docs/results/parity-rl.md), "early" =
   main's first chunk end with early_q_min <= chain_q <= early_q_max (chain_q = P(whole
   chain right | long output), parity_lm_common; issue 20: at chain-token accuracy ~0.6 chain_q is
   ~0.03 and any outcome reward must shorten the output, a fact about the reward, not a
   non-reproduction), "low" = the end of low.
2. "rl": GRPO, REINFORCE (lm_rl, batch-mean baseline, no KL) and STaR (rl/lm_star.py) with reward
   r_cot at `temperature` from each start, every seed; one vmapped program per algorithm. Greedy
   accuracy and median greedy length (1: short answer, d: the chain) after every chunk.

Rows per (algorithm, start, seed), with the base's id and gate. Verdicts (three-valued records,
core/verdicts.py) per algorithm: <alg>_good_generalises (min final accuracy >= acc_target and min
final median length >= d over seeds), <alg>_good_length_grows_from_1 (judged when every start's
median length is 1), <alg>_early_length_grows and <alg>_low_length_grows (seed-mean growth of the
mean greedy length beyond 2 SE: one seed is not judged), <alg>_early_fails_to_generalise (max final
accuracy < acc_target; issue 20: judged only when the chain was learned (main's gate) and the
positive control <alg>_good_generalises passed in the same run); ntp_alone_stays_short (judged
only when main learned the chain: final chain_token_acc >= good_acc, 0.99 by default); the
checkpoint checks good_checkpoint_reached (the learning check itself: a trained main base that
did not learn the chain fails; one of 0 NTP steps trained nothing and is not judged) and
early_checkpoint_in_q_window (before: early_checkpoint_below_early_acc; the recorded chain_q of the
chosen early checkpoint, early_q, lies in [early_q_min, early_q_max] on every seed; judged only when
main learned the chain and every seed has an early checkpoint). Every claim on a base is
not judged when that base failed its gate. p_cot = 0.01 ("low", issue 20): judged only when
pi(long correct) >= p_cot_low / 2 after NTP. The paper's NTP budget for a small p_cot would scale
like 1/p_cot; here it is the knob low_pretrain_steps, and both tiers set it equal to
pretrain_steps (not 25x for 0.25 / 0.01), so the low base may learn neither the chain nor the long
mass; the low claims are then not judged (values in docs/results/parity-rl.md).
The quick tier's NTP chunks are 50 steps (100 before) so that a chunk end falls inside the q window
during the fast transition. Defaults for what
the paper leaves open (spec §7): LMSetup; RL lr = NTP lr / 10, G = 8, token-mean loss, one update
per rollout batch, tau = 1; STaR N = 8192, E = 1, AdamW lr 1e-3 constant with a fresh state.
Learning switched off (issue 20): lm.lr, rl_lr, star_lr may be 0 and pretrain_steps,
low_pretrain_steps, rl_steps, star_rounds may be 0 (that stage runs no chunk: a base of 0 NTP steps
fails its gate and good_checkpoint_reached is not judged, an RL stage of 0 steps has empty curves
and its claims are not judged); no claim passes then. star_epochs stays >= 1 (rl/lm_star.StarSpec).
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np

from theoryrl.core import verdicts as V
from theoryrl.core.config import (check_seeds, is_int, require, require_finite_nonneg, require_finite_positive,
                                  require_float, require_int)
from theoryrl.core.results import load_npz
from theoryrl.core.stages import Outcome, Run, RunPlan, Runs, Stage
from theoryrl.experiments import parity_lm_common as plm
from theoryrl.rl import lm_rl, lm_runs, lm_star
from theoryrl.rl.advantages import AdvantageSpec
from theoryrl.rl.losses import LossSpec

ID = "parity-rl"
TITLE = "Parity with short/long CoT: GRPO, REINFORCE and STaR after NTP grow the response length and generalise"
PAPER = ("Tsilivis et al. 2510.11495, Sec. 3.1 and Fig. 3 (length 1 -> d, greedy accuracy 50% -> 100%; too-early "
         "RL does not generalise; p_cot = 0.01 still grows)")

ALGORITHMS = ("grpo", "reinforce", "star")
STARTS = ("good", "early", "low")
CURVE_KEYS = ("acc", "greedy_cot", "greedy_long", "greedy_len_median", "greedy_len_mean", "sampled_long",
              "chain_token_acc")


@dataclasses.dataclass(frozen=True)
class Config:
    d: int = 50
    p_cot: float = 0.25
    p_cot_low: float = 0.01
    seeds: tuple[int, ...] = (42, 43, 44)
    lm: plm.LMSetup = plm.LMSetup()
    pretrain_steps: int = 20_000  # 20k x 512 = 1.0e7 samples (spec §7 #3, #9)
    low_pretrain_steps: int = 20_000
    pretrain_steps_per_chunk: int = 500
    good_acc: float = 0.99
    early_q_min: float = 0.5
    early_q_max: float = 0.99
    algorithms: tuple[str, ...] = ALGORITHMS
    starts: tuple[str, ...] = STARTS
    rl_steps: int = 1000
    rl_steps_per_chunk: int = 50
    prompts_per_step: int = 64
    group_size: int = 8
    rl_lr: float = 1e-4
    temperature: float = 1.0
    star_rounds: int = 20
    star_prompts: int = 8192
    star_epochs: int = 1
    star_batch: int = 512
    star_lr: float = 1e-3
    acc_target: float = 0.99
    short_acc_max: float = 0.6

    def validate(self) -> None:
        plm.check_ds(self.d, "d")
        require_float(self.p_cot, "p_cot", 0.0, 1.0, lo_open=True, hi_open=True)
        require_float(self.p_cot_low, "p_cot_low", 0.0, 1.0, lo_open=True, hi_open=True)
        check_seeds(self.seeds)
        # step and sample bounds: ~50x-500x the paper tier (20k NTP steps, 1000 RL steps of 64 x 8, STaR 20 rounds
        # of 8192 prompts); step counts stay far below 2^31 (int32 step keys)
        # 0 steps / rounds: learning switched off (issue 20), that stage runs no chunk
        require_int(self.pretrain_steps_per_chunk, "pretrain_steps_per_chunk", 1, 1_000_000)
        for knob in ("pretrain_steps", "low_pretrain_steps"):
            v = getattr(self, knob)
            require(is_int(v) and 0 <= v <= 10_000_000 and v % self.pretrain_steps_per_chunk == 0, knob, v,
                    f"a multiple of pretrain_steps_per_chunk = {self.pretrain_steps_per_chunk} in 0..10000000 "
                    "(0: learning off)")
        require_float(self.early_q_min, "early_q_min", 0.0, 1.0)
        require_float(self.early_q_max, "early_q_max", self.early_q_min, 1.0,
                      allowed=f"early_q_min = {self.early_q_min} <= early_q_max <= 1")
        require_float(self.good_acc, "good_acc", 0.0, 1.0, lo_open=True)
        for knob, allowed in (("algorithms", ALGORITHMS), ("starts", STARTS)):
            v = getattr(self, knob)
            require(len(v) > 0 and set(v) <= set(allowed) and len(set(v)) == len(v), knob, v,
                    f"distinct values from {list(allowed)}")
        require_int(self.rl_steps_per_chunk, "rl_steps_per_chunk", 1, 1_000_000)
        require(is_int(self.rl_steps) and 0 <= self.rl_steps <= 1_000_000
                and self.rl_steps % self.rl_steps_per_chunk == 0, "rl_steps", self.rl_steps,
                f"a multiple of rl_steps_per_chunk = {self.rl_steps_per_chunk} in 0..1000000 (0: learning off)")
        require_int(self.prompts_per_step, "prompts_per_step", 1, 4096)
        require_int(self.group_size, "group_size", 2, 1024, "2..1024 (GRPO needs a group)")
        for knob in ("rl_lr", "star_lr"):  # 0: learning switched off (issue 20)
            require_finite_nonneg(getattr(self, knob), knob)
        require_finite_positive(self.temperature, "temperature")
        require_int(self.star_rounds, "star_rounds", 0, 1000, "0..1000 (0: learning off)")
        # lm_star.StarSpec's own check names its fields; these name the knobs set here
        require_int(self.star_batch, "star_batch", 1, 16_384)
        require(is_int(self.star_prompts) and self.star_batch <= self.star_prompts <= 1_048_576
                and self.star_prompts % self.star_batch == 0, "star_prompts", self.star_prompts,
                f"a positive multiple of star_batch = {self.star_batch}, at most 1048576")
        require_int(self.star_epochs, "star_epochs", 1, 100)
        lm_star.StarSpec(self.star_prompts, self.star_epochs, self.star_batch).validate()
        require_float(self.short_acc_max, "short_acc_max", 0.0, 1.0, lo_open=True)
        require_float(self.acc_target, "acc_target", self.short_acc_max, 1.0, lo_open=True,
                      allowed=f"short_acc_max = {self.short_acc_max} < acc_target <= 1")


TIERS = {
    # d = 8, L = 2, width 64, batch 128: the chain is learned in ~1e3 steps on a 2-core CPU
    "quick": Config(d=8, seeds=(42, 43), lm=plm.LMSetup(d_model=64, n_layers=2, batch=128, warmup_steps=100,
                                                         eval_prompts=512),
                    pretrain_steps=1000, low_pretrain_steps=1000, pretrain_steps_per_chunk=50, rl_steps=60,
                    rl_steps_per_chunk=5, prompts_per_step=16, star_rounds=6, star_prompts=512, star_batch=128),
    "paper": Config(),
}


BASE_OF = {"good": "main", "early": "main", "low": "low"}  # the pretrain base each start's checkpoint is from
PREFIX = {"good": "final/params/", "early": "final/early_params/", "low": "final/params/"}


def _bases(cfg: Config) -> list[tuple[str, float, int]]:
    """(base, p_cot, NTP steps): "main" always (NTP alone is judged on it), "low" when a start needs it."""
    out = [("main", cfg.p_cot, cfg.pretrain_steps)]
    return out + ([("low", cfg.p_cot_low, cfg.low_pretrain_steps)] if "low" in cfg.starts else [])


def _pretrain_plans(cfg: Config) -> list[RunPlan]:
    """One NTP run per (base, seed); each base is its own vmapped program (as it always was)."""
    plans = []
    for name, p_cot, steps in _bases(cfg):
        spec = plm.PretrainSpec(cfg.lm, cfg.d, steps=steps, steps_per_chunk=cfg.pretrain_steps_per_chunk,
                                snapshots=True, good_acc=cfg.good_acc, early_q_min=cfg.early_q_min,
                                early_q_max=cfg.early_q_max)
        plans += [plm.pretrain_plan(spec, row={"base": name, "p_cot": p_cot, "seed": int(s)}, label=f"pretrain-{name}",
                                    seed=s, p_cot=p_cot) for s in cfg.seeds]
    return plans


def _program(cfg: Config, algorithm: str):
    model, d = plm.model_spec(cfg.lm, cfg.d), cfg.d
    data_fn, eval_fn = plm.rl_data_fn(model, d, cfg.lm.eval_prompts), plm.rl_eval_fn(model)
    task, sampler = plm.rl_task(d), plm.sampler_spec(d)
    if algorithm == "star":
        spec = lm_star.StarSpec(cfg.star_prompts, cfg.star_epochs, cfg.star_batch)
        program = lm_star.star_program(model, sampler, spec, plm.rl_optim(cfg.star_lr, cfg.star_rounds), task,
                                       num_chunks=cfg.star_rounds, rounds_per_chunk=1, data_fn=data_fn,
                                       eval_fn=eval_fn)
    else:
        spec = lm_rl.RLSpec(prompts_per_step=cfg.prompts_per_step, group_size=cfg.group_size,
                            advantage=AdvantageSpec(estimator=algorithm), loss=LossSpec(agg="token-mean"))
        program = lm_runs.rl_program(model, sampler, spec, plm.rl_optim(cfg.rl_lr, cfg.rl_steps), task,
                                     num_chunks=cfg.rl_steps // cfg.rl_steps_per_chunk,
                                     steps_per_chunk=cfg.rl_steps_per_chunk, data_fn=data_fn, eval_fn=eval_fn)
    return dataclasses.replace(program, summarize=_summarize)


def _program_key(cfg: Config, algorithm: str) -> tuple:
    """Every static value `_program` reads: equal keys (also across sweep points) are one program."""
    common = (algorithm, cfg.d, cfg.lm)
    if algorithm == "star":
        return common + (cfg.star_prompts, cfg.star_epochs, cfg.star_batch, cfg.star_lr, cfg.star_rounds)
    return common + (cfg.prompts_per_step, cfg.group_size, cfg.rl_lr, cfg.rl_steps, cfg.rl_steps_per_chunk)


def _rl_plans(cfg: Config, runs: Runs) -> list[RunPlan]:
    """One run per (algorithm, start, seed) from its base's checkpoint; one program per algorithm,
    its runs start-major then seed."""
    model = plm.model_spec(cfg.lm, cfg.d)
    plans = []
    for alg in cfg.algorithms:
        build = functools.partial(_program, cfg, alg)
        for start in cfg.starts:
            for s in cfg.seeds:
                base = runs.one(stage="pretrain", base=BASE_OF[start], seed=int(s))
                plans.append(RunPlan(row={"algorithm": alg, "start": start, "seed": int(s)},
                                     bucket=("rl", _program_key(cfg, alg)), label=f"rl-{alg}",
                                     hp=plm.rl_hp(model, base, PREFIX[start], seed=s, temperature=cfg.temperature),
                                     build=build, parent=base))
    return plans


def _summarize(m: dict) -> dict:
    return {k: float(np.mean(m[k])) for k in ("reward", "acc", "greedy_len_median", "sampled_long")}


def stages(cfg: Config) -> list[Stage]:
    return [Stage("pretrain", lambda runs: _pretrain_plans(cfg), store_bases=True,
                  gate=functools.partial(plm.chain_learned_gate, good_acc=cfg.good_acc)),
            Stage("rl", lambda runs: _rl_plans(cfg, runs))]


# ----------------------------------------------------------------------------------------------
# analysis


def _steps_to(acc: np.ndarray, target: float, per_chunk: int) -> int | None:
    hit = np.nonzero(acc >= target)[0]
    return int(hit[0]) * per_chunk if hit.size else None


def _checkpoint_info(cfg: Config, base: Run, start: str) -> dict:
    """The start checkpoint's step and chain-token accuracy (from its base's pretraining history)."""
    if start == "early":
        step = _early_step(base)
        return {"ckpt_step": step, "ckpt_chain_acc": float(base.history("early_chain_acc")[-1]) if step else None,
                "ckpt_chain_q": float(base.history("early_q")[-1]) if step else None}
    hist = base.history("chain_token_acc")
    return {"ckpt_step": len(hist) * cfg.pretrain_steps_per_chunk,
            "ckpt_chain_acc": float(hist[-1]) if plm.trained(hist) else None}


def _early_step(base: Run) -> int:
    """The step of the base's "early" checkpoint; 0 (none: the initial params) also for a base of 0
    NTP steps, which has no history."""
    hist = base.history("early_step")
    return int(hist[-1]) if plm.trained(hist) else 0


def _last(a_SxC: np.ndarray) -> np.ndarray:
    """[S] last-chunk values; NaN for a stage of 0 chunks (nothing was trained, nothing measured)."""
    return a_SxC[:, -1] if a_SxC.shape[1] else np.full(a_SxC.shape[0], np.nan)


def _first(a_SxC: np.ndarray) -> np.ndarray:
    return a_SxC[:, 0] if a_SxC.shape[1] else np.full(a_SxC.shape[0], np.nan)


def _num(x) -> float | None:
    """A row / metric value: None where nothing was measured (NaN)."""
    x = float(x)
    return None if np.isnan(x) else x


def _stack(rl: list[Run], key: str) -> np.ndarray:
    return np.stack([r.history(key) for r in rl])


def analyze(cfg: Config, runs: Runs) -> Outcome:
    d = cfg.d
    rows, metrics, verdicts, arrays, curves = [], {}, {}, {}, {}
    bases = {(name, int(s)): runs.one(stage="pretrain", base=name, seed=int(s))
             for name, _, _ in _bases(cfg) for s in cfg.seeds}
    for alg in cfg.algorithms:
        per_chunk = 1 if alg == "star" else cfg.rl_steps_per_chunk
        for start in cfg.starts:
            rl = [runs.one(stage="rl", algorithm=alg, start=start, seed=int(s)) for s in cfg.seeds]  # [S]
            c = {k: plm.curve(_stack(rl, k), _stack(rl, f"start_{k}")) for k in CURVE_KEYS}
            arrays.update({f"{alg}/{start}/{k}": v for k, v in c.items()})
            arrays[f"{alg}/{start}/reward"] = _stack(rl, "reward")
            # a stage of 0 RL steps / STaR rounds (issue 20) has empty curves: its values are None
            first, last = ({k: f(v) for k, v in c.items()} for f in (_first, _last))
            for i, run in enumerate(rl):
                info = _checkpoint_info(cfg, bases[BASE_OF[start], run.row["seed"]], start)
                rows.append({"algorithm": alg, "start": start, "seed": run.row["seed"], **info,
                             "start_acc": _num(first["acc"][i]), "final_acc": _num(last["acc"][i]),
                             "start_len_median": _num(first["greedy_len_median"][i]),
                             "final_len_median": _num(last["greedy_len_median"][i]),
                             "start_len_mean": _num(first["greedy_len_mean"][i]),
                             "final_len_mean": _num(last["greedy_len_mean"][i]),
                             "final_greedy_long": _num(last["greedy_long"][i]),
                             "steps_to_acc_target": _steps_to(c["acc"][i], cfg.acc_target, per_chunk),
                             **run.base_info()})
            tag = f"{alg},{start}"
            metrics[f"final_acc_mean[{tag}]"] = _num(last["acc"].mean())
            metrics[f"final_len_median_mean[{tag}]"] = _num(last["greedy_len_median"].mean())
            reach = [_steps_to(a, cfg.acc_target, per_chunk) for a in c["acc"]]
            metrics[f"{'rounds' if alg == 'star' else 'steps'}_to_acc_target_mean[{tag}]"] = (
                float(np.mean(reach)) if None not in reach else None)
            curves[alg, start] = c
    for alg in cfg.algorithms:  # "good" first: the "early" claims read its verdict as their positive control
        for start in sorted(cfg.starts, key=STARTS.index):
            verdicts.update(_claims(cfg, alg, start, curves[alg, start], bases, verdicts))
    _pretrain_summary(cfg, bases, metrics, verdicts, arrays)
    arrays.update({"seeds": np.array(cfg.seeds), "algorithms": np.array(cfg.algorithms), "starts": np.array(cfg.starts),
                   "d": np.int32(d), "rl_steps_per_chunk": np.int32(cfg.rl_steps_per_chunk)})
    paper = {"fig3": "from a p_cot = 0.25 NTP checkpoint (d = 50), GRPO, REINFORCE and STaR grow the greedy response "
                     "length from 1 to d while greedy accuracy goes from ~50% to 100% (3 seeds)",
             "ntp_alone": "NTP alone at p_cot = 0.25 does not generalise (greedy outputs x_1, EOS)",
             "too_early": "RL from a checkpoint that has not learned the chain may grow the length without "
                          "generalising",
             "p_cot_0.01": "length increases for almost all checkpoints",
             "settings": f"d = {d}, p_cot = {cfg.p_cot} / {cfg.p_cot_low}, L = {cfg.lm.n_layers}, width "
                         f"{cfg.lm.d_model}, NTP batch {cfg.lm.batch}, lr {cfg.lm.lr}, {cfg.pretrain_steps} / "
                         f"{cfg.low_pretrain_steps} NTP steps; RL {cfg.prompts_per_step}x{cfg.group_size}, lr "
                         f"{cfg.rl_lr}, {cfg.rl_steps} steps; STaR N = {cfg.star_prompts}, E = {cfg.star_epochs}, "
                         f"{cfg.star_rounds} rounds; tau = {cfg.temperature}"}
    return Outcome.judged(metrics, rows, paper, verdicts, arrays)


def _no_early_checkpoint(cfg: Config, bases: dict) -> str | None:
    """Why the "early" claims cannot be judged, or None. early_step 0 means no chunk of the main
    pre-training ended with chain_q in [early_q_min, early_q_max], so the "early" checkpoint would be
    the random initialisation, not a model that has begun but not finished learning the chain."""
    never = [int(s) for s in cfg.seeds if _early_step(bases["main", int(s)]) <= 0]
    return (f"no early checkpoint (chain_q was never in [{cfg.early_q_min}, {cfg.early_q_max}] at a chunk end) "
            f"for seeds {never}") if never else None


def _early_q_window(cfg: Config, bases: dict) -> V.Verdict:
    """early_checkpoint_in_q_window: on every seed, chain_q of the chosen "early" checkpoint (the
    base's recorded early_q: chain_q at early_step, measured when the checkpoint was taken) lies in
    [early_q_min, early_q_max]. Value: the q of the seed nearest an edge (or furthest outside);
    threshold: that edge; margin: min over seeds of min(q - early_q_min, early_q_max - q), >= 0 to
    pass. The margin uses the edges in float32, as the selection (_update_snapshots) compared them
    (the threshold shows the knob's value).
    Not judged when a seed has no early checkpoint (early_step 0: chain_q never fell in the window
    at a chunk end, or 0 NTP steps): there is no checkpoint whose q could be judged."""
    why = _no_early_checkpoint(cfg, bases)
    if why is not None:
        return V.not_judged(why)
    lo, hi = float(np.float32(cfg.early_q_min)), float(np.float32(cfg.early_q_max))
    qs = [float(bases["main", int(s)].history("early_q")[-1]) for s in cfg.seeds]
    edge = [(q - lo, q, cfg.early_q_min) if q - lo <= hi - q else (hi - q, q, cfg.early_q_max) for q in qs]
    margin, q, threshold = min(edge)
    return V.Verdict(V.PASS if margin >= 0 else V.FAIL, q, threshold, margin, None,
                     f"chain_q of the early checkpoint in [{cfg.early_q_min}, {cfg.early_q_max}] on every seed "
                     f"(seed values {[round(x, 4) for x in qs]}); reported: the seed nearest an edge")


def _all_of(parts: list[V.Verdict]) -> V.Verdict:
    """Several conditions of one claim: the first that is not judged, else the first that fails,
    else the one with the smallest margin."""
    for status in (V.NOT_JUDGED, V.FAIL):
        hit = [v for v in parts if v.status == status]
        if hit:
            return hit[0]
    return min(parts, key=lambda v: v.margin)


def _below(value: float, threshold: float, what: str) -> V.Verdict:
    """Pass iff value < threshold (strict: "fails to generalise" means below the target)."""
    return V.Verdict(V.PASS if value < threshold else V.FAIL, value, threshold, threshold - value, None, what)


def _grows(start_S: np.ndarray, final_S: np.ndarray, what: str) -> V.Verdict:
    """The seed-mean of final - start exceeds 0 by more than 2 SE of the per-seed differences (one
    seed: no SE, not judged)."""
    diff, se = V.mean_se(np.asarray(final_S, np.float64) - np.asarray(start_S, np.float64))
    return V.greater(diff, 0.0, se_a=se, se_b=0.0, what=what)


def _base_sound(cfg: Config, bases: dict, base: str) -> dict[str, bool]:
    """Precondition of every claim on a base: its gate passed (the chain was learned)."""
    why = plm.gate_failures([bases[base, int(s)] for s in cfg.seeds], ("base", "seed"))
    return {f"base {base} learned the chain (final chain_token_acc >= good_acc = {cfg.good_acc})"
            + ("" if why is None else f" [{why}]"): why is None}


def _low_long_enough(cfg: Config, bases: dict) -> dict[str, bool]:
    """p_cot = 0.01 (issue 20): RL can only grow what NTP left: pi(long correct) >= p_cot_low / 2 at the
    end of the low pre-training, on every seed."""
    pi = float(np.min([_last(bases["low", int(s)].history("pi_long_correct")[None])[0]
                       for s in cfg.seeds]))  # NaN after 0 NTP steps: not met
    return {f"pi(long correct) >= p_cot_low / 2 = {cfg.p_cot_low / 2:g} after NTP (measured {pi:.4g})":
            bool(pi >= cfg.p_cot_low / 2)}


def _claims(cfg: Config, alg: str, start: str, c: dict, bases: dict, done: dict) -> dict[str, V.Verdict]:
    """Verdicts of one (algorithm, start) over seeds; preconditions: the base's gate, plus
    - early: an early checkpoint exists, and "fails to generalise" needs the positive control
      <alg>_good_generalises passed in the same run (RL from the learned chain works, so a failure
      from "early" is about timing, not the recipe) and the chain learned (the main gate);
    - low: pi(long correct) >= p_cot_low / 2 after NTP (`_low_long_enough`);
    - good: "generalises" needs a start below acc_target on every seed (else it passes unlearned);
    - every claim: the RL stage ran (issue 20: 0 RL steps / STaR rounds train nothing, the curves
      are empty)."""
    ran = c["acc"].shape[1] > 0
    if not ran:  # NaN curves of one point: every value below is "not measured"
        c = {k: np.full((v.shape[0], 1), np.nan) for k, v in c.items()}
    acc, med, mean = c["acc"], c["greedy_len_median"], c["greedy_len_mean"]
    sound = {**_base_sound(cfg, bases, BASE_OF[start]),
             f"the {alg} stage ran at least one chunk ({plm.NOTHING_TRAINED} otherwise)": ran}
    if start == "good":
        length = V.at_least(float(med[:, -1].min()), cfg.d, what="min final median greedy length over seeds")
        # a start that already generalises (e.g. p_cot > 1/3) would pass with nothing learned
        below = {f"the start's greedy accuracy is below acc_target = {cfg.acc_target:g} on every seed":
                 bool(np.all(acc[:, 0] < cfg.acc_target))}
        return {f"{alg}_good_generalises": V.judged_if({**sound, **below}, _all_of([
                    V.at_least(float(acc[:, -1].min()), cfg.acc_target, what="min final greedy accuracy over seeds"),
                    length])).citing("greedy accuracy 50% -> 100% and length 1 -> d after RL (Fig. 3)"),
                f"{alg}_good_length_grows_from_1": V.judged_if(
                    {**sound, "the start's median greedy length is 1 on every seed (NTP alone answers short)":
                     bool(np.all(med[:, 0] == 1))}, length).citing("response length grows from 1 to d (Fig. 3)")}
    if start == "early":
        why = _no_early_checkpoint(cfg, bases)
        early = {**sound, "an early checkpoint exists" + ("" if why is None else f" [{why}]"): why is None}
        control = done.get(f"{alg}_good_generalises")
        return {f"{alg}_early_length_grows": V.judged_if(early, _grows(
                    mean[:, 0], mean[:, -1], "seed-mean growth of the mean greedy length")).citing(
                    "RL from a too-early checkpoint may still grow the length (Sec. 3.1)"),
                f"{alg}_early_fails_to_generalise": V.judged_if(
                    {**early, f"positive control: {alg}_good_generalises passed in this run":
                     control is not None and control.passed},
                    _below(float(acc[:, -1].max()), cfg.acc_target, "max final greedy accuracy over seeds")).citing(
                    "RL started too early does not generalise despite the length increase (Sec. 3.1)")}
    return {f"{alg}_low_length_grows": V.judged_if({**sound, **_low_long_enough(cfg, bases)}, _grows(
        mean[:, 0], mean[:, -1], "seed-mean growth of the mean greedy length")).citing(
        "at p_cot = 0.01: length increase for almost all checkpoints")}


def _pretrain_summary(cfg: Config, bases: dict, metrics: dict, verdicts: dict, arrays: dict) -> None:
    hist = {}  # base name -> metric -> [S, chunks]
    for name, _, _ in _bases(cfg):
        mine = [bases[name, int(s)] for s in cfg.seeds]
        hist[name] = {k: np.stack([b.history(k) for b in mine])
                      for k in ("chain_token_acc", "acc", "greedy_len_median", "sampled_long", "p_eos_x1", "loss",
                                "samples", "good_step", "early_step", "pi_long_correct")}
        for k in ("chain_token_acc", "acc", "greedy_len_median", "sampled_long", "p_eos_x1", "loss", "samples"):
            arrays[f"pretrain_{name}/{k}"] = hist[name][k]
        good_step = _last(hist[name]["good_step"])  # NaN after 0 NTP steps: never reached
        reached = good_step >= 0
        metrics[f"pretrain_{name}_reached_good_fraction"] = float(reached.mean())
        metrics[f"pretrain_{name}_steps_to_good_mean"] = float(good_step.mean()) if reached.all() else None
        metrics[f"pretrain_{name}_final_chain_token_acc_mean"] = _num(_last(hist[name]["chain_token_acc"]).mean())
        metrics[f"pretrain_{name}_final_pi_long_correct_mean"] = _num(_last(hist[name]["pi_long_correct"]).mean())
    arrays["pretrain_p_cot"] = np.array([cfg.p_cot, cfg.p_cot_low][:len(hist)], np.float32)
    main = hist["main"]
    sound = _base_sound(cfg, bases, "main")
    what = "min final chain_token_acc of main over seeds"
    # the learning check itself (issue 20 review): a trained main base that did not learn the chain
    # fails (the claim is "it learns"); a main base of 0 NTP steps trained nothing: not judged
    verdicts["good_checkpoint_reached"] = V.at_least(
        float(main["chain_token_acc"][:, -1].min()), cfg.good_acc, what=what) if main["acc"].shape[1] else (
        V.not_judged(f"{what}: {plm.NOTHING_TRAINED} (pretrain_steps = 0)", None, cfg.good_acc))
    verdicts["early_checkpoint_in_q_window"] = V.judged_if(sound, _early_q_window(cfg, bases))
    # NTP alone: greedy decoding at the end of the p_cot pre-training (a claim about a model that knows the chain)
    acc, med = _last(main["acc"]), _last(main["greedy_len_median"])
    metrics["ntp_final_acc_mean"] = _num(acc.mean())
    metrics["ntp_final_len_median_mean"] = _num(med.mean())
    verdicts["ntp_alone_stays_short"] = V.judged_if(sound, _all_of([
        V.at_most(float(acc.max()), cfg.short_acc_max, what="max final NTP greedy accuracy over seeds"),
        V.at_most(float(med.max()), 1, what="max final NTP median greedy length over seeds")])).citing(
        "NTP alone at p_cot = 0.25 does not generalise: greedy outputs (x_1, EOS) (Sec. 3.1, Theorem 1)")


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arr = load_npz(Path(run_dir) / "arrays.npz")
    algs, starts, d = [str(a) for a in arr["algorithms"]], [str(s) for s in arr["starts"]], int(arr["d"])
    fig, axes = plotting.subplots(2, len(algs) + 1, width=3.8)
    styles = {"good": "-", "early": "--", "low": ":"}
    for a, alg in enumerate(algs):
        per = 1 if alg == "star" else int(arr["rl_steps_per_chunk"])
        for s, start in enumerate(starts):
            for r, key in enumerate(("acc", "greedy_len_median")):
                y = arr[f"{alg}/{start}/{key}"]
                x = per * np.arange(y.shape[1])
                for i in range(y.shape[0]):
                    axes[r, a].plot(x, y[i], styles[start], color=f"C{s}", alpha=0.8,
                                    label=f"start: {start}" if i == 0 else None)
        axes[0, a].set(title=alg, ylabel="greedy accuracy", ylim=(-0.02, 1.02))
        axes[1, a].set(xlabel="round" if alg == "star" else "step", ylabel="median greedy length", ylim=(0, d + 1.5))
        axes[0, a].legend(fontsize=7)
    for n, (name, p) in enumerate(zip(("main", "low"), arr["pretrain_p_cot"])):
        for i in range(arr[f"pretrain_{name}/acc"].shape[0]):
            label = f"p_cot = {p:g}" if i == 0 else None
            axes[0, -1].plot(arr[f"pretrain_{name}/samples"][i], arr[f"pretrain_{name}/chain_token_acc"][i],
                             "-:"[n], color=f"C{n}", label=label)
            axes[1, -1].plot(arr[f"pretrain_{name}/samples"][i], arr[f"pretrain_{name}/acc"][i], "-:"[n], color=f"C{n}")
    axes[0, -1].set(title="NTP pre-training", xscale="log", ylabel="teacher-forced chain-token acc")
    axes[1, -1].set(xscale="log", xlabel="samples", ylabel="greedy accuracy (NTP only)")
    axes[0, -1].legend(fontsize=6)
    settings = json.loads((Path(run_dir) / "summary.json").read_text())["paper"]["settings"]
    fig.suptitle(f"parity-rl: {settings}", fontsize=8)
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
