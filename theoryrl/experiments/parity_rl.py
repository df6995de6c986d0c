"""parity-rl: RL after NTP makes a transformer generalise on parity (spec parity_cot.md §5 #3 (c)-(e), Fig. 3).

1. NTP pre-training (online batches of D(p_cot), `parity_lm_common.pretrain_program`, AdamW with
   warmup and cosine decay), every seed, at p_cot for `pretrain_steps` steps and at p_cot_low for
   `low_pretrain_steps`. Checkpoints (spec §7 #3): "good" = the end of the p_cot pre-training; its
   teacher-forced chain-token accuracy must be >= good_acc (verdict good_checkpoint_reached; the
   first chunk where it was is reported as pretrain_main_steps_to_good_mean); "early" = the last
   chunk end before that first chunk with accuracy < early_acc (the "RL too early" ablation);
   "low" = the end of the p_cot_low pre-training.
   Why the end and not the first chunk above good_acc: measured at d = 8, the chain's argmax is
   right (>= 0.99) a chunk or two before its probabilities are: there pi(long correct) and P(EOS |
   y_1 = x_1) are still far from p_cot and (1-p)/(1+p), and RL at lr 1e-3 from such a checkpoint
   collapsed to short answers for one of two seeds; from the calibrated end point every run of
   GRPO at lr 1e-4 .. 1e-3 reached accuracy 1 within 20 steps.
2. From each checkpoint, post-training with GRPO and REINFORCE (lm_rl with AdvantageSpec "grpo" /
   "reinforce", batch-mean baseline; one update per rollout batch, no KL) and STaR (rl/lm_star.py:
   N fresh prompts per round, keep r = 1, E epochs of NTP), all with reward r_cot at temperature
   `temperature`. Greedy accuracy and the median greedy response length (output bits before EOS:
   1 for the short answer, d for the chain) on fixed eval inputs after every chunk.

Rows (one per algorithm x start x seed): start/final acc and median length, greedy_long, steps (or
rounds) to acc_target, the checkpoint's step and chain-token accuracy. Verdicts, per algorithm:
<alg>_good_generalises (every seed: final acc >= acc_target and median length == d),
<alg>_good_length_grows_from_1 (every seed: start median 1, final median d); ntp_alone_stays_short
(at the end of the p_cot pre-training the greedy median length is 1 and accuracy <=
short_acc_max: NTP alone does not generalise at p_cot < 1/3); <alg>_early_length_grows and <alg>_early_fails_to_generalise (the
paper's "too early": the length grows but the model does not generalise); <alg>_low_length_grows
(p_cot = 0.01: mean greedy length grows). good/early checkpoint preconditions are verdicts too.

Defaults for what the paper leaves unknown (spec §7): see LMSetup; RL lr = pretraining lr / 10,
G = 8, no KL, token-mean loss, one update per rollout batch, tau = 1; STaR N = 8192, E = 1, the
pretraining optimiser (AdamW, lr 1e-3, constant) with a fresh state. The quick tier shrinks d to 8,
the model to L = 2, width 64, NTP to 1e3 steps x 128, RL to 16 x 8 per step and STaR to N = 512.

What was tried where claims do not reproduce (quick tier, d = 8):
- "too early": the early checkpoints (chain-token accuracy 0.55-0.60, steps 100-200; the accuracy
  jumps to 1.0 within one 100-step chunk) never sample a correct chain, r_cot never rewards a
  wrong one, so no algorithm grows the length: the "does not generalise" half holds, the "length
  grows" half does not (RL at lr 1e-3 and 1e-4 tried).
- p_cot = 0.01: NTP does not learn the chain within the quick budget (1.3e5 samples); neither did
  p_cot = 0.03 with 5e5 samples (batch 256), 0.05 or 0.125 at lr 3e-3, or 0.125 at lr 1e-3 with
  1.9e5, while 0.25 learns it in ~3e4 samples. RL from such a checkpoint cannot grow the length
  under r_cot. The paper tier (1e7 samples) is the test of this claim.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np

from theoryrl.core.config import require
from theoryrl.core.experiment import Outcome
from theoryrl.core.results import load_npz
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
    early_acc: float = 0.9
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
        require(isinstance(self.d, int) and self.d >= 3, "d", self.d, "an integer >= 3")
        require(0 < self.p_cot < 1 and 0 < self.p_cot_low < 1, "p_cot/p_cot_low", (self.p_cot, self.p_cot_low),
                "values in (0, 1)")
        require(len(self.seeds) > 0 and len(set(self.seeds)) == len(self.seeds), "seeds", self.seeds, "distinct seeds")
        for knob in ("pretrain_steps", "low_pretrain_steps"):
            v = getattr(self, knob)
            require(self.pretrain_steps_per_chunk >= 1 and v > 0 and v % self.pretrain_steps_per_chunk == 0, knob, v,
                    f"a positive multiple of pretrain_steps_per_chunk = {self.pretrain_steps_per_chunk}")
        require(0 < self.early_acc <= self.good_acc <= 1, "early_acc/good_acc", (self.early_acc, self.good_acc),
                "0 < early_acc <= good_acc <= 1")
        for knob, allowed in (("algorithms", ALGORITHMS), ("starts", STARTS)):
            v = getattr(self, knob)
            require(len(v) > 0 and set(v) <= set(allowed) and len(set(v)) == len(v), knob, v,
                    f"distinct values from {list(allowed)}")
        require(self.rl_steps_per_chunk >= 1 and self.rl_steps > 0 and self.rl_steps % self.rl_steps_per_chunk == 0,
                "rl_steps", self.rl_steps, f"a positive multiple of rl_steps_per_chunk = {self.rl_steps_per_chunk}")
        require(self.prompts_per_step >= 1, "prompts_per_step", self.prompts_per_step, ">= 1")
        require(self.group_size >= 2, "group_size", self.group_size, ">= 2 (GRPO needs a group)")
        for knob in ("rl_lr", "star_lr", "temperature"):
            require(getattr(self, knob) > 0, knob, getattr(self, knob), "> 0")
        require(self.star_rounds >= 1, "star_rounds", self.star_rounds, ">= 1")
        lm_star.StarSpec(self.star_prompts, self.star_epochs, self.star_batch).validate()
        require(0 < self.short_acc_max < self.acc_target <= 1, "short_acc_max/acc_target",
                (self.short_acc_max, self.acc_target), "0 < short_acc_max < acc_target <= 1")


TIERS = {
    # d = 8, L = 2, width 64, batch 128: the chain is learned in ~1e3 steps on a 2-core CPU
    "quick": Config(d=8, seeds=(42, 43), lm=plm.LMSetup(d_model=64, n_layers=2, batch=128, warmup_steps=100,
                                                         eval_prompts=512),
                    pretrain_steps=1000, low_pretrain_steps=1000, pretrain_steps_per_chunk=100, rl_steps=60,
                    rl_steps_per_chunk=5, prompts_per_step=16, star_rounds=6, star_prompts=512, star_batch=128),
    "paper": Config(),
}


def _pretrain(cfg: Config, ctx) -> dict:
    """{"main": every seed at p_cot for pretrain_steps, "low": at p_cot_low for low_pretrain_steps}
    (the bucket arrays)."""
    out = {}
    for name, p, steps in (("main", cfg.p_cot, cfg.pretrain_steps), ("low", cfg.p_cot_low, cfg.low_pretrain_steps)):
        if name == "low" and "low" not in cfg.starts:
            continue
        program = plm.pretrain_program(cfg.lm, cfg.d, steps=steps, steps_per_chunk=cfg.pretrain_steps_per_chunk,
                                       snapshots=True, good_acc=cfg.good_acc, early_acc=cfg.early_acc)
        hps = [{"seed": np.int32(s), "p_cot": np.float32(p), "lr_scale": np.float32(1.0)} for s in cfg.seeds]
        out[name] = plm.run_program(ctx, f"pretrain-{name}", program, hps)
    return out


def _start_params(cfg: Config, pre: dict, start: str, run: int):
    """The checkpoint a start names, as a params pytree (host arrays)."""
    prefix = "final/early_params/" if start == "early" else "final/params/"
    arrays = {k: v[run] for k, v in pre["low" if start == "low" else "main"].items() if k.startswith(prefix)}
    return jax.tree.map(np.asarray, lm_runs.params_from_arrays(plm.model_spec(cfg.lm, cfg.d), arrays, prefix))


def _program(cfg: Config, algorithm: str):
    model, d = plm.model_spec(cfg.lm, cfg.d), cfg.d
    data_fn, eval_fn = plm.rl_data_fn(model, d, cfg.lm.eval_prompts), plm.rl_eval_fn(model)
    task, sampler = plm.rl_task(d), plm.sampler_spec(d)
    if algorithm == "star":
        spec = lm_star.StarSpec(cfg.star_prompts, cfg.star_epochs, cfg.star_batch)
        return lm_star.star_program(model, sampler, spec, plm.rl_optim(cfg.star_lr, cfg.star_rounds), task,
                                    num_chunks=cfg.star_rounds, rounds_per_chunk=1, data_fn=data_fn, eval_fn=eval_fn)
    spec = lm_rl.RLSpec(prompts_per_step=cfg.prompts_per_step, group_size=cfg.group_size,
                        advantage=AdvantageSpec(estimator=algorithm), loss=LossSpec(agg="token-mean"))
    return lm_runs.rl_program(model, sampler, spec, plm.rl_optim(cfg.rl_lr, cfg.rl_steps), task,
                              num_chunks=cfg.rl_steps // cfg.rl_steps_per_chunk, steps_per_chunk=cfg.rl_steps_per_chunk,
                              data_fn=data_fn, eval_fn=eval_fn)


def _post_train(cfg: Config, ctx, pre: dict, algorithm: str) -> dict:
    hps = [{"seed": np.int32(seed), "lr_scale": np.float32(1.0), "temperature": np.float32(cfg.temperature),
            "top_p": np.float32(1.0), "init_params": _start_params(cfg, pre, start, i)}
           for start in cfg.starts for i, seed in enumerate(cfg.seeds)]
    program = dataclasses.replace(_program(cfg, algorithm), summarize=_summarize)
    return plm.run_program(ctx, f"rl-{algorithm}", program, hps)


def _summarize(m: dict) -> dict:
    return {k: float(np.mean(m[k])) for k in ("reward", "acc", "greedy_len_median", "sampled_long")}


def run(cfg: Config, ctx) -> Outcome:
    pre = _pretrain(cfg, ctx)
    post = {alg: _post_train(cfg, ctx, pre, alg) for alg in cfg.algorithms}
    return analyze(cfg, pre, post)


# ----------------------------------------------------------------------------------------------
# analysis


def _steps_to(acc: np.ndarray, target: float, per_chunk: int) -> int | None:
    hit = np.nonzero(acc >= target)[0]
    return int(hit[0]) * per_chunk if hit.size else None


def _checkpoint_info(cfg: Config, pre: dict, start: str, run: int) -> dict:
    """The start checkpoint's step and chain-token accuracy (from the pretraining history)."""
    pre = pre["low" if start == "low" else "main"]
    if start == "early":
        step = int(pre["history/early_step"][run, -1])
        return {"ckpt_step": step, "ckpt_chain_acc": float(pre["history/early_chain_acc"][run, -1]) if step else None}
    hist = pre["history/chain_token_acc"][run]
    return {"ckpt_step": len(hist) * cfg.pretrain_steps_per_chunk, "ckpt_chain_acc": float(hist[-1])}


def analyze(cfg: Config, pre: dict, post: dict) -> Outcome:
    d, S = cfg.d, len(cfg.seeds)
    rows, metrics, verdict, arrays = [], {}, {}, {}
    for alg, res in post.items():
        per_chunk = 1 if alg == "star" else cfg.rl_steps_per_chunk
        for j, start in enumerate(cfg.starts):
            sel = slice(j * S, (j + 1) * S)
            c = {k: plm.curve(res[f"history/{k}"][sel], res[f"history/start_{k}"][sel]) for k in CURVE_KEYS}
            arrays.update({f"{alg}/{start}/{k}": v for k, v in c.items()})
            arrays[f"{alg}/{start}/reward"] = res["history/reward"][sel]
            for i, seed in enumerate(cfg.seeds):
                info = _checkpoint_info(cfg, pre, start, i)
                rows.append({"algorithm": alg, "start": start, "seed": int(seed), **info,
                             "start_acc": float(c["acc"][i, 0]), "final_acc": float(c["acc"][i, -1]),
                             "start_len_median": float(c["greedy_len_median"][i, 0]),
                             "final_len_median": float(c["greedy_len_median"][i, -1]),
                             "start_len_mean": float(c["greedy_len_mean"][i, 0]),
                             "final_len_mean": float(c["greedy_len_mean"][i, -1]),
                             "final_greedy_long": float(c["greedy_long"][i, -1]),
                             "steps_to_acc_target": _steps_to(c["acc"][i], cfg.acc_target, per_chunk)})
            tag = f"{alg},{start}"
            metrics[f"final_acc_mean[{tag}]"] = float(c["acc"][:, -1].mean())
            metrics[f"final_len_median_mean[{tag}]"] = float(c["greedy_len_median"][:, -1].mean())
            reach = [_steps_to(a, cfg.acc_target, per_chunk) for a in c["acc"]]
            metrics[f"{'rounds' if alg == 'star' else 'steps'}_to_acc_target_mean[{tag}]"] = (
                float(np.mean(reach)) if None not in reach else None)
            _judge(cfg, alg, start, c, verdict)
    _pretrain_summary(cfg, pre, metrics, verdict, arrays)
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
    return Outcome(metrics, rows, paper, verdict, arrays)


def _judge(cfg: Config, alg: str, start: str, c: dict, verdict: dict) -> None:
    acc, med, mean = c["acc"], c["greedy_len_median"], c["greedy_len_mean"]
    if start == "good":
        verdict[f"{alg}_good_generalises"] = bool(np.all((acc[:, -1] >= cfg.acc_target) & (med[:, -1] == cfg.d)))
        verdict[f"{alg}_good_length_grows_from_1"] = bool(np.all((med[:, 0] == 1) & (med[:, -1] == cfg.d)))
    elif start == "early":
        verdict[f"{alg}_early_length_grows"] = bool(np.all(mean[:, -1] > mean[:, 0]))
        verdict[f"{alg}_early_fails_to_generalise"] = bool(np.all(acc[:, -1] < cfg.acc_target))
    else:
        verdict[f"{alg}_low_length_grows"] = bool(np.all(mean[:, -1] > mean[:, 0]))


def _pretrain_summary(cfg: Config, pre: dict, metrics: dict, verdict: dict, arrays: dict) -> None:
    for name, res in pre.items():
        for k in ("chain_token_acc", "acc", "greedy_len_median", "sampled_long", "p_eos_x1", "loss", "samples"):
            arrays[f"pretrain_{name}/{k}"] = res[f"history/{k}"]
        good_step = res["history/good_step"][:, -1]
        reached = good_step >= 0
        metrics[f"pretrain_{name}_reached_good_fraction"] = float(reached.mean())
        metrics[f"pretrain_{name}_steps_to_good_mean"] = float(good_step.mean()) if reached.all() else None
        metrics[f"pretrain_{name}_final_chain_token_acc_mean"] = float(res["history/chain_token_acc"][:, -1].mean())
    arrays["pretrain_p_cot"] = np.array([cfg.p_cot, cfg.p_cot_low][:len(pre)], np.float32)
    main = pre["main"]
    verdict["good_checkpoint_reached"] = bool(np.all(main["history/chain_token_acc"][:, -1] >= cfg.good_acc))
    verdict["early_checkpoint_below_early_acc"] = bool(np.all(main["history/early_step"][:, -1] > 0))
    # NTP alone: greedy decoding at the end of the p_cot pre-training
    acc, med = main["history/acc"][:, -1], main["history/greedy_len_median"][:, -1]
    metrics["ntp_final_acc_mean"] = float(acc.mean())
    metrics["ntp_final_len_median_mean"] = float(med.mean())
    verdict["ntp_alone_stays_short"] = bool(np.all((med == 1) & (acc <= cfg.short_acc_max)))


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
