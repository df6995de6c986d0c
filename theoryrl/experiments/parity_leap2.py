"""parity-leap2: does NTP on a partial ("leap-2") chain generalise below p_cot = 1/3? (spec §1, §5 #3 (f), Fig. 15)

The transformer of parity_lm_common is trained by NTP alone on D(p_cot) for every p_cot in
`p_cots` and for both demonstration chains of tasks/parity.py: "full" (x1, x1x2, ..., prod x: d
tokens) and "leap2" (x1x2, x1..x4, ...: ceil(d/2) tokens, each a 2-step update y_l = y_{l-1}
x_{2l-1} x_{2l}). Greedy accuracy (final answer), greedy long fraction and the calibration metrics
are measured on fixed eval inputs after every chunk (parity_lm_common.evaluate with the chain's leap).

Note on the theory: with a leap-2 chain the first token of a long demonstration is x1x2, which a
short answer prod(x) (d >= 3) is independent of, so an exactly calibrated model has P(y_1 = x1x2)
= (1+p)/2 and P(EOS | y_1 = x1x2) = (1-p)/(1+p): the same 1/3 greedy threshold as the full chain.
The paper's Fig. 15 reports that NTP with the partial chain generalises below 1/3; whatever
mechanism produces that must come from the transformer's learning dynamics, not from the
calibrated optimum. This experiment reports what happens at the tier's sizes.

Measurements: docs/results/parity-leap2.md.

Verdicts: leap2_generalises_below_1/3 (every p < 1/3 and seed: leap-2 greedy accuracy >= acc_long_min),
full_stays_short_below_1/3 (every p < 1/3 and seed: full-chain accuracy <= acc_short_max),
leap2_beats_full_below_1/3 (seed-mean accuracy higher for leap-2 at every p < 1/3), and the
chain-learned preconditions (final teacher-forced chain-token accuracy >= chain_acc_min).
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np

from theoryrl.core.config import check_seeds, is_int, require, require_float, require_floats, require_int
from theoryrl.core.stages import Outcome, RunPlan, Runs, Stage
from theoryrl.core.results import load_npz
from theoryrl.experiments import parity_lm_common as plm
from theoryrl.tasks import parity
from theoryrl.theory import parity as th

ID = "parity-leap2"
TITLE = "Parity with short/long CoT: NTP on a leap-2 partial chain vs the full chain below p_cot = 1/3"
PAPER = "Tsilivis et al. 2510.11495, Fig. 15 (a leap-2 partial chain lets NTP generalise below p_cot = 1/3)"

CHAINS = tuple(parity.CHAINS)
KEYS = ("acc", "greedy_long", "greedy_len_median", "sampled_long", "p_first_x1", "p_eos_x1", "pi_long_correct",
        "chain_token_acc")


@dataclasses.dataclass(frozen=True)
class Config:
    d: int = 25
    p_cots: tuple[float, ...] = (0.1, 0.2, 0.25, 0.3, 0.4)
    chains: tuple[str, ...] = CHAINS
    seeds: tuple[int, ...] = (42, 43, 44)
    lm: plm.LMSetup = plm.LMSetup()
    steps: int = 20_000  # 2e4 x 512 = 1e7 samples (spec §7 #9)
    chunks: int = 20
    acc_short_max: float = 0.6
    acc_long_min: float = 0.95
    chain_acc_min: float = 0.99

    def validate(self) -> None:
        plm.check_ds(self.d, "d", lo=4)  # >= 4: a leap-2 chain of >= 2 tokens
        require_floats(self.p_cots, "p_cots", 0.0, 1.0, lo_open=True, hi_open=True)
        require(list(self.p_cots) == sorted(set(self.p_cots)), "p_cots", self.p_cots, "increasing values in (0, 1)")
        require(any(p < th.GREEDY_THRESHOLD for p in self.p_cots), "p_cots", self.p_cots,
                "at least one value below 1/3")
        require(len(self.chains) > 0 and set(self.chains) <= set(CHAINS) and len(set(self.chains)) == len(self.chains),
                "chains", self.chains, f"distinct values from {list(CHAINS)}")
        check_seeds(self.seeds)
        # steps: 500x the paper tier's 2e4 (int32 step keys stay far from overflow)
        require_int(self.chunks, "chunks", 1, 10_000)
        require(is_int(self.steps) and self.chunks <= self.steps <= 10_000_000 and self.steps % self.chunks == 0,
                "steps", self.steps, f"a positive multiple of chunks = {self.chunks}, at most 10000000")
        require_float(self.acc_short_max, "acc_short_max", 0.0, 1.0, lo_open=True)
        require_float(self.acc_long_min, "acc_long_min", self.acc_short_max, 1.0, lo_open=True,
                      allowed=f"acc_short_max = {self.acc_short_max} < acc_long_min <= 1")
        require_float(self.chain_acc_min, "chain_acc_min", 0.0, 1.0, lo_open=True)


TIERS = {
    "quick": Config(d=8, p_cots=(0.25, 0.3), seeds=(42, 43),
                    lm=plm.LMSetup(d_model=64, n_layers=2, batch=128, warmup_steps=100, eval_prompts=512),
                    steps=1000, chunks=5),
    "paper": Config(),
}


def _plans(cfg: Config) -> list[RunPlan]:
    """One NTP run per (chain, p_cot, seed); each chain is one vmapped program (the bucket names every
    static setting, so sweep points with another d or budget never share a program)."""
    plans = []
    for chain in cfg.chains:
        build = functools.partial(plm.pretrain_program, cfg.lm, cfg.d, leap=parity.CHAINS[chain], steps=cfg.steps,
                                  steps_per_chunk=cfg.steps // cfg.chunks)
        bucket = (chain, cfg.d, cfg.steps, cfg.chunks, cfg.lm)
        plans += [RunPlan(row={"chain": chain, "p_cot": p, "seed": int(s)}, bucket=bucket, label=f"ntp-{chain}",
                          hp=plm.pretrain_hp(s, p), build=build)
                  for p in cfg.p_cots for s in cfg.seeds]
    return plans


def stages(cfg: Config) -> list[Stage]:
    return [Stage("ntp", lambda runs: _plans(cfg))]


def analyze(cfg: Config, runs: Runs) -> Outcome:
    ps = np.array(cfg.p_cots)
    below = ps < th.GREEDY_THRESHOLD
    rows, metrics, verdict, arrays = [], {}, {}, {}
    final = {}
    for chain in cfg.chains:
        # [P, S, chunks] per metric, selected by knobs
        hist = {k: np.stack([np.stack([runs.one(chain=chain, p_cot=p, seed=int(s)).history(k) for s in cfg.seeds])
                             for p in cfg.p_cots]) for k in KEYS}
        final[chain] = {k: v[..., -1] for k, v in hist.items()}  # [P, S]
        arrays.update({f"{chain}/hist_{k}": v for k, v in hist.items()})
        for j, p in enumerate(cfg.p_cots):
            rows.append({"chain": chain, "p_cot": p, "chain_len": parity.chain_len(cfg.d, parity.CHAINS[chain]),
                         **{k: float(final[chain][k][j].mean()) for k in KEYS},
                         "acc_min_seed": float(final[chain]["acc"][j].min()),
                         "acc_max_seed": float(final[chain]["acc"][j].max()),
                         "theory_p_first": th.p_first_is_x1(p), "theory_p_eos": th.p_eos_given_first_x1(p)})
            metrics[f"acc_mean[{chain},p={p}]"] = float(final[chain]["acc"][j].mean())
        verdict[f"chain_learned[{chain}]"] = bool(np.all(final[chain]["chain_token_acc"] >= cfg.chain_acc_min))
        acc = final[chain]["acc"][below]
        if chain == "leap2":
            verdict["leap2_generalises_below_1/3"] = bool(np.all(acc >= cfg.acc_long_min))
        else:
            verdict["full_stays_short_below_1/3"] = bool(np.all(acc <= cfg.acc_short_max))
    if {"full", "leap2"} <= set(cfg.chains):
        gap = final["leap2"]["acc"].mean(1) - final["full"]["acc"].mean(1)
        metrics["min_acc_gap_leap2_minus_full_below_1/3"] = float(gap[below].min())
        verdict["leap2_beats_full_below_1/3"] = bool(np.all(gap[below] > 0))
    arrays.update({"p_cots": ps, "chains": np.array(list(cfg.chains)),
                   "samples_at_chunk": cfg.steps // cfg.chunks * cfg.lm.batch * np.arange(1, cfg.chunks + 1)})
    paper = {"fig15": "with the leap-2 partial chain, NTP generalises (greedy accuracy ~1) below p_cot = 1/3",
             "full_chain": "with the full chain, greedy stays at (x_1, EOS) (~50%) for p_cot < 1/3 (Theorem 1)",
             "calibrated_theory": "a calibrated model has the same 1/3 threshold for both chains (module docstring)",
             "settings": f"d = {cfg.d}, L = {cfg.lm.n_layers}, width {cfg.lm.d_model}, batch {cfg.lm.batch}, "
                         f"lr {cfg.lm.lr}, {cfg.steps} steps ({cfg.steps * cfg.lm.batch} samples)"}
    return Outcome(metrics, rows, paper, verdict, arrays)


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arr = load_npz(Path(run_dir) / "arrays.npz")
    ps, chains = arr["p_cots"], [str(c) for c in arr["chains"]]
    fig, axes = plotting.subplots(1, 3, width=4.2)
    for c, chain in enumerate(chains):
        acc = arr[f"{chain}/hist_acc"][..., -1]  # [P, S]
        axes[0, 0].errorbar(ps, acc.mean(1), yerr=[acc.mean(1) - acc.min(1), acc.max(1) - acc.mean(1)], marker="os"[c],
                            capsize=2, color=f"C{c}", label=chain)
        for k, key in enumerate(("p_first_x1", "p_eos_x1")):
            axes[0, 1].plot(ps, arr[f"{chain}/hist_{key}"][..., -1].mean(1), "os"[c] + "-:"[k], color=f"C{c}",
                            label=f"{chain}: {key}")
        curve = arr[f"{chain}/hist_acc"].mean(1)  # [P, chunks]
        for j, p in enumerate(ps):
            axes[0, 2].plot(arr["samples_at_chunk"], curve[j], "-:"[c], color=plotting.plt.cm.viridis(j / len(ps)),
                            label=f"{chain}, p = {p:g}")
    grid = np.linspace(ps.min(), ps.max(), 100)
    axes[0, 1].plot(grid, (1 + grid) / 2, "k", lw=1, alpha=0.5)
    axes[0, 1].plot(grid, (1 - grid) / (1 + grid), "k", lw=1, alpha=0.5)
    axes[0, 0].axvline(1 / 3, color="k", ls=":", lw=1)
    axes[0, 0].set(xlabel="p_cot", ylabel="NTP greedy accuracy", ylim=(0.4, 1.02), title="greedy accuracy (seed range)")
    axes[0, 0].legend(fontsize=7)
    axes[0, 1].set(xlabel="p_cot", ylabel="probability", title="P(first chain token), P(EOS | it) (black: calibrated)")
    axes[0, 1].legend(fontsize=6)
    axes[0, 2].set(xscale="log", xlabel="samples", ylabel="greedy accuracy", title="learning curves")
    axes[0, 2].legend(fontsize=6, ncol=2)
    settings = json.loads((Path(run_dir) / "summary.json").read_text())["paper"]["settings"]
    fig.suptitle(f"parity-leap2: {settings}", fontsize=9)
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]
