"""parity-threshold: NTP-only greedy accuracy vs the long-demonstration fraction p_cot (spec §5 #1).

Each run trains a model by next-token prediction on fresh samples of D(p_cot) and evaluates it on
`eval_prompts` fixed inputs after every chunk. Model families are registered in FAMILIES (a
family = one function cfg, d -> Program); today only the AR-linear learner (spec §2.2):
- heads 1 and 2a see `head_samples` fresh mixture samples; the chain heads see `chain_samples`
  fresh long samples (per-head horizons: the long heads count only long samples; a separate long
  stream is the same in distribution as the long samples of a mixture stream, and gives every
  p_cot the same chain horizon);
- SGD eta_t = 1/(lam t) from w = 0, batch 1, averaging power `avg_power` (1 by default, i.e.
  weights proportional to t; 0 is the spec's uniform average, which at lam = 1e-3 and 1e5 samples
  is still dominated by the first ~1/lam huge iterates: measured at d = 10, greedy accuracy 0.66 at
  p = 0.3 and P(EOS | y_1 = x_1) spread +-0.06 over inputs; at 1e6 samples it agrees).

Metrics per run (final chunk; history for the learning curves): acc (greedy final answer correct,
= r_e2e of the greedy output), greedy_long (greedy output is the chain), sampled_long,
sampled_long_correct, sampled_short_correct (tau = 1 samples, r_cot), p_first_x1 (mean over x
of P(y_1 = x_1)), p_eos_x1 (mean of P(EOS | y_1 = x_1)), pi_long_correct and pi_short_correct
(exact model probabilities of the correct chain / answer, mean over x).

Verdicts, per family and d: acc <= acc_short_max for every p <= 0.3, acc >= acc_long_min for every
p >= 0.4, the transition interval (largest p of the low regime, smallest p of the high regime)
contains 1/3; calibration: |p_first_x1 - (1+p)/2|, |p_eos_x1 - (1-p)/(1+p)|, |pi_long_correct - p|
and |pi_short_correct - (1-p)/2| all <= calib_tol (an SGD-bias tolerance, not a sampling error).
Metric p_half[family,d]: p where the seed-mean accuracy first crosses 0.75 (linear interpolation).
"""
from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core import prng
from theoryrl.core.config import require
from theoryrl.core.experiment import Outcome, Program, RunPlan
from theoryrl.core.results import load_npz
from theoryrl.models import ar_linear as ar
from theoryrl.tasks import parity
from theoryrl.theory import parity as th

ID = "parity-threshold"
TITLE = "Parity with short/long CoT: NTP greedy accuracy and calibration vs p_cot (threshold 1/3)"
PAPER = "Tsilivis et al. 2510.11495, Theorem 1 and Fig. 2 (greedy generalises iff p_cot > 1/3)"

EVAL_METRICS = ("acc", "greedy_long", "sampled_long", "sampled_long_correct", "sampled_short_correct",
                "p_first_x1", "p_eos_x1", "pi_long_correct", "pi_short_correct")
LOW_P, HIGH_P = 0.3, 0.4


@dataclasses.dataclass(frozen=True)
class Config:
    families: tuple[str, ...] = ("ar_linear",)
    ds: tuple[int, ...] = (10, 25, 50)
    p_cots: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.32, 0.34, 0.4, 0.6)
    seeds: tuple[int, ...] = (42, 43, 44)
    head_samples: int = 2_000_000
    chain_samples: int = 200_000
    chunks: int = 10
    lam: float = 1e-3
    lam_chain: float = 1e-3
    avg_power: float = 1.0
    eval_prompts: int = 4096
    acc_short_max: float = 0.6
    acc_long_min: float = 0.95
    calib_tol: float = 0.03

    def validate(self):
        require(len(self.families) > 0 and all(f in FAMILIES for f in self.families), "families", self.families,
                f"a subset of {list(FAMILIES)}")
        require(len(self.ds) > 0 and all(isinstance(d, int) and d >= 3 for d in self.ds), "ds", self.ds,
                "integers >= 3")
        require(len(self.p_cots) > 0 and all(0 < p < 1 for p in self.p_cots), "p_cots", self.p_cots, "values in (0, 1)")
        require(list(self.p_cots) == sorted(set(self.p_cots)), "p_cots", self.p_cots, "strictly increasing")
        require(len(self.seeds) > 0, "seeds", self.seeds, "at least one seed")
        require(self.chunks >= 1, "chunks", self.chunks, ">= 1")
        for knob in ("head_samples", "chain_samples"):
            n = getattr(self, knob)
            require(n >= self.chunks and n % self.chunks == 0, knob, n,
                    f"a positive multiple of chunks = {self.chunks}")
        require(self.lam > 0 and self.lam_chain > 0, "lam", (self.lam, self.lam_chain), "> 0")
        require(self.avg_power >= 0, "avg_power", self.avg_power, ">= 0")
        require(self.eval_prompts >= 16, "eval_prompts", self.eval_prompts, ">= 16")
        require(0 < self.acc_short_max < self.acc_long_min <= 1, "acc_short_max/acc_long_min",
                (self.acc_short_max, self.acc_long_min), "0 < acc_short_max < acc_long_min <= 1")
        require(self.calib_tol > 0, "calib_tol", self.calib_tol, "> 0")


TIERS = {
    # heads 1/2a: 2e5 mixture samples; chain heads: 2e4 long samples (spec §7 #8 asks >= 1e5 each)
    "quick": Config(seeds=(42, 43), head_samples=200_000, chain_samples=20_000, chunks=5, eval_prompts=2048),
    "paper": Config(),
}


# ----------------------------------------------------------------------------------------------
# shared with parity-star: pretraining and evaluation of the AR-linear learner


def _demos(batch: parity.ParityBatch):
    return batch.x, batch.outputs, batch.length


def train_ar_linear(state: ar.SGDState, key, d: int, p_cot, head_steps: int, chain_steps: int,
                    hyper: ar.SGDHyper) -> ar.SGDState:
    """NTP on D(p_cot): heads 1/2a on `head_steps` mixture samples, chain heads on `chain_steps`
    long samples (batch 1, fresh samples every step)."""
    mix = lambda k: _demos(parity.sample(k, d, p_cot, 1))  # noqa: E731
    long = lambda k: _demos(parity.sample(k, d, 1.0, 1))  # noqa: E731
    state, _ = ar.train_online(state, jax.random.fold_in(key, 0), mix, head_steps, hyper, ("head",))
    state, _ = ar.train_online(state, jax.random.fold_in(key, 1), long, chain_steps, hyper, ("chain",))
    return state


def evaluate(params: ar.ARParams, key, x_MxD) -> dict:
    """Greedy, sampled (tau = 1) and exact metrics of the AR-linear model on prompts x (see EVAL_METRICS).
    The greedy and sampled decodes are one vmapped call over tau in {0, 1} (one program, not two)."""
    m, d = x_MxD.shape
    keys_2xM = jax.vmap(lambda k: jax.random.split(k, m))(jax.random.split(key))
    decode = jax.vmap(jax.vmap(ar.decode, (None, 0, 0, None)), (None, 0, None, 0))
    out_2xMxK, len_2xM = decode(params, keys_2xM, x_MxD, jnp.array([0.0, 1.0]))
    (g_out, s_out), (g_len, s_len) = out_2xMxK, len_2xM
    r_cot = parity.rewards("cot", x_MxD, s_out, s_len)
    targets = jax.vmap(jax.vmap(parity.targets, (0, None)), (None, 0))(x_MxD, jnp.array([True, False]))
    log_prob = jax.vmap(jax.vmap(ar.log_prob, (None, 0, 0, 0)), (None, None, 0, 0))
    pi_long, pi_short = jnp.mean(jnp.exp(log_prob(params, x_MxD, *targets)), axis=1)
    x = x_MxD.astype(jnp.float32)
    x1 = x[:, 0]
    return {"acc": jnp.mean(parity.rewards("e2e", x_MxD, g_out, g_len)),
            "greedy_long": jnp.mean(g_len == d),
            "sampled_long": jnp.mean(s_len == d),
            "sampled_long_correct": jnp.mean(r_cot * (s_len == d)),
            "sampled_short_correct": jnp.mean(r_cot * (s_len == 1)),
            "p_first_x1": jnp.mean(jax.nn.sigmoid(x1 * (x @ params.w_first))),
            "p_eos_x1": jnp.mean(jax.nn.sigmoid(jax.vmap(ar.stop_score, (None, 0, 0))(params, x, x1))),
            "pi_long_correct": pi_long, "pi_short_correct": pi_short}


def hyper_of(hp: dict) -> ar.SGDHyper:
    return ar.SGDHyper(hp["lam"], hp["lam_chain"], hp["avg_power"])


# ----------------------------------------------------------------------------------------------
# model families: cfg, d -> Program (hp: seed, p, lam, lam_chain, avg_power)


def _ar_linear_program(cfg: Config, d: int) -> Program:
    head_steps, chain_steps = cfg.head_samples // cfg.chunks, cfg.chain_samples // cfg.chunks

    def data_fn(hp):
        key = prng.step_key(prng.root_key(hp["seed"]), prng.Stream.EVAL, 0)
        return {"x_eval": parity.sample_prompts(key, d, cfg.eval_prompts)}

    def init_fn(hp):
        return {"sgd": ar.init_sgd(ar.init_params(d)), "chunk": jnp.int32(0)}

    def chunk_fn(state, hp, data):
        root, c = prng.root_key(hp["seed"]), state["chunk"]
        sgd = train_ar_linear(state["sgd"], prng.step_key(root, prng.Stream.DATA, c), d, hp["p"], head_steps,
                              chain_steps, hyper_of(hp))
        metrics = evaluate(ar.model(sgd), prng.step_key(root, prng.Stream.EVAL, c + 1), data["x_eval"])
        return {"sgd": sgd, "chunk": c + 1}, metrics

    return Program(data_fn=data_fn, init_fn=init_fn, chunk_fn=chunk_fn, num_chunks=cfg.chunks,
                   steps_per_chunk=head_steps, summarize=lambda m: {"acc": float(np.mean(m["acc"]))})


FAMILIES = {"ar_linear": _ar_linear_program}


def plan(cfg: Config) -> list[RunPlan]:
    plans = []
    for family in cfg.families:
        for d in cfg.ds:
            for p in cfg.p_cots:
                for s in cfg.seeds:
                    hp = {"seed": np.int32(s), "p": np.float32(p), "lam": np.float32(cfg.lam),
                          "lam_chain": np.float32(cfg.lam_chain), "avg_power": np.float32(cfg.avg_power)}
                    plans.append(RunPlan(row={"family": family, "d": d, "p_cot": p, "seed": s}, bucket=(family, d),
                                         label=f"{family}-d{d}", hp=hp, build=partial(FAMILIES[family], cfg, d)))
    return plans


# ----------------------------------------------------------------------------------------------
# analysis


def theory_row(p: float) -> dict:
    return {"theory_p_first_x1": th.p_first_is_x1(p), "theory_p_eos_x1": th.p_eos_given_first_x1(p),
            "theory_long_correct": p, "theory_short_correct": (1 - p) / 2, "theory_acc": float(th.greedy_accuracy(p))}


def transition(ps: np.ndarray, acc_max: np.ndarray, acc_min: np.ndarray, low: float, high: float):
    """(largest p of the low regime, smallest p of the high regime), or None: the low regime is the
    longest prefix of the p grid where every seed has acc <= low, the high regime the longest
    suffix where every seed has acc >= high."""
    n_low = int(np.argmin(np.append(acc_max <= low, False)))
    n_high = int(np.argmin(np.append((acc_min >= high)[::-1], False)))
    return (float(ps[n_low - 1]) if n_low else None), (float(ps[len(ps) - n_high]) if n_high else None)


def crossing(ps: np.ndarray, acc: np.ndarray, level: float = 0.75) -> float | None:
    """First p where acc crosses `level` upwards (linear interpolation)."""
    for i in range(1, len(ps)):
        if acc[i - 1] < level <= acc[i]:
            return float(ps[i - 1] + (level - acc[i - 1]) * (ps[i] - ps[i - 1]) / (acc[i] - acc[i - 1]))
    return None


def analyze(cfg: Config, results: list[dict]) -> Outcome:
    F, D, P, S = len(cfg.families), len(cfg.ds), len(cfg.p_cots), len(cfg.seeds)
    hist = {k: np.stack([np.asarray(r[f"history/{k}"], np.float64) for r in results]).reshape(F, D, P, S, -1)
            for k in EVAL_METRICS}
    final = {k: v[..., -1] for k, v in hist.items()}  # [F, D, P, S]
    ps = np.array(cfg.p_cots)
    rows, metrics, verdict = [], {}, {}
    theory = {"p_first_x1": th.p_first_is_x1(ps), "p_eos_x1": th.p_eos_given_first_x1(ps),
              "pi_long_correct": ps, "pi_short_correct": (1 - ps) / 2}
    for f, family in enumerate(cfg.families):
        for i, d in enumerate(cfg.ds):
            tag = f"{family},d={d}"
            acc_S = final["acc"][f, i]  # [P, S]
            for j, p in enumerate(cfg.p_cots):
                means = {k: float(final[k][f, i, j].mean()) for k in EVAL_METRICS}
                row = {"family": family, "d": d, "p_cot": p, **means,
                       "acc_min_seed": float(acc_S[j].min()), "acc_max_seed": float(acc_S[j].max()), **theory_row(p)}
                rows.append(row)
            mean_acc = acc_S.mean(axis=1)
            lo, hi = transition(ps, acc_S.max(axis=1), acc_S.min(axis=1), cfg.acc_short_max, cfg.acc_long_min)
            metrics[f"p_half[{tag}]"] = crossing(ps, mean_acc)
            metrics[f"transition_low[{tag}]"], metrics[f"transition_high[{tag}]"] = lo, hi
            verdict[f"greedy_short_for_p_le_0.3[{tag}]"] = bool(np.all(acc_S[ps <= LOW_P] <= cfg.acc_short_max))
            verdict[f"greedy_long_for_p_ge_0.4[{tag}]"] = bool(np.all(acc_S[ps >= HIGH_P] >= cfg.acc_long_min))
            verdict[f"transition_brackets_1/3[{tag}]"] = bool(lo is not None and hi is not None and lo < 1 / 3 < hi)
            for k, want in theory.items():
                err = np.abs(final[k][f, i] - want[:, None])
                metrics[f"max_abs_err_{k}[{tag}]"] = float(err.max())
                verdict[f"calibrated_{k}[{tag}]"] = bool(err.max() <= cfg.calib_tol)
            metrics[f"lam_optimum_long_correct_factor[{tag}]"] = th.long_correct_factor(cfg.lam_chain, d)
            factor = final["pi_long_correct"][f, i] / ps[:, None]
            metrics[f"measured_long_correct_factor[{tag}]"] = float(np.mean(factor))
    arrays = {**{f"final_{k}": v for k, v in final.items()}, **{f"hist_{k}": v for k, v in hist.items()},
              "p_cots": ps, "ds": np.array(cfg.ds), "families": np.array(cfg.families),
              "head_samples_at_chunk": cfg.head_samples // cfg.chunks * np.arange(1, cfg.chunks + 1)}
    paper = {"greedy_threshold": "greedy decoding outputs the chain (accuracy 1) iff p_cot > 1/3; below it outputs "
                                 "(x_1, EOS), correct half the time (Theorem 1, Fig. 2)",
             "calibration": "sampled long-correct fraction ~ p_cot, short-correct ~ (1 - p_cot)/2; P(y_1 = x_1) = "
                            "(1+p)/2, P(EOS | y_1 = x_1) = (1-p)/(1+p) (Lemma 1, Props 1-3)",
             "samples": f"heads 1/2a: {cfg.head_samples} mixture samples, chain heads: {cfg.chain_samples} "
                        "long samples",
             "sgd": f"eta_t = 1/(lam t), lam = {cfg.lam}, lam_chain = {cfg.lam_chain}, averaging power {cfg.avg_power}"}
    return Outcome(metrics, rows, paper, verdict, arrays)


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arr = load_npz(Path(run_dir) / "arrays.npz")
    ps, ds, families = arr["p_cots"], arr["ds"], [str(f) for f in arr["families"]]
    fig, axes = plotting.subplots(1, 3, width=4.4)
    grid = np.linspace(ps.min(), ps.max(), 200)
    for f, family in enumerate(families):
        for i, d in enumerate(ds):
            acc = arr["final_acc"][f, i]
            axes[0, 0].errorbar(ps, acc.mean(-1), yerr=[acc.mean(-1) - acc.min(-1), acc.max(-1) - acc.mean(-1)],
                                marker="o", ms=3, capsize=2, label=f"{family}, d = {d}")
            curve = arr["hist_acc"][f, i, :, :, :].mean(axis=1)  # [P, chunks]
            if i == len(ds) - 1:
                for j, p in enumerate(ps):
                    axes[0, 2].plot(arr["head_samples_at_chunk"], curve[j], color=plotting.plt.cm.viridis(j / len(ps)),
                                    label=f"p = {p:g}")
        for k, (key, theory, name) in enumerate([("p_first_x1", (1 + grid) / 2, "P(y1 = x1)"),
                                                 ("p_eos_x1", (1 - grid) / (1 + grid), "P(EOS | y1 = x1)"),
                                                 ("pi_long_correct", grid, "pi(long correct)"),
                                                 ("pi_short_correct", (1 - grid) / 2, "pi(short correct)")]):
            axes[0, 1].plot(grid, theory, color=f"C{k}", lw=1, alpha=0.6)
            for i, d in enumerate(ds):
                axes[0, 1].plot(ps, arr[f"final_{key}"][f, i].mean(-1), ["o", "s", "^", "v"][i % 4], color=f"C{k}",
                                ms=3, label=f"{name}" if i == 0 and f == 0 else None)
    axes[0, 0].axvline(1 / 3, color="k", ls=":", lw=1)
    axes[0, 0].set(xlabel="p_cot", ylabel="greedy accuracy (final answer)",
                   title="NTP greedy accuracy (bars: seed range)")
    axes[0, 0].legend(fontsize=7)
    axes[0, 1].set(xlabel="p_cot", ylabel="probability", title="calibration (lines: theory; markers: d)")
    axes[0, 1].legend(fontsize=7)
    axes[0, 2].set(xscale="log", xlabel="mixture samples seen by heads 1/2a", ylabel="greedy accuracy",
                   title=f"learning curves, d = {ds[-1]}")
    axes[0, 2].legend(fontsize=6, ncol=2)
    fig.suptitle("parity-threshold: the 1/3 threshold of NTP on short/long CoT mixtures")
    return [plotting.savefig(fig, Path(out_dir) / "parity-threshold.png")]
