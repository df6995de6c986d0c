"""chain-simple-mass: how much simple-example mass does the hardest distance need?

Ran-Milo et al., Theorems 2-3: with (k, c)-simple data REINFORCE solves the chain in time ~ 1/c;
without simple examples it needs exponential time or settles on guessing. Why: the theorems'
quantity is the mass c of easy examples, so we sweep c directly. At fixed m, training puts mass c
uniformly on the simple distances 1..k and the rest (1 - c) on the hardest distance m-1
(`rest = "hardest"`, the hard task plus a fraction c of simple examples) or uniformly on k+1..m-1
(`rest = "uniform"`). The greedy accuracy on the hardest distance is measured after every epoch;
the outcome is the number of REINFORCE steps to reach 90% (over all rollouts, timeouts counted as
wrong), or null when the budget runs out.

Verdict steps_to_90_decrease_as_c_grows (core/verdicts.py): per c, the mean over seeds of the
steps to the level, a run that never reaches it charged budget + steps_per_epoch (the earliest it
could have reached it: a lower bound). Pass iff the smallest c is slower than the largest c beyond
2 SE over seeds and no larger c is slower than the c before it beyond 2 SE (the decrease is beyond
noise and monotone within noise); the Spearman correlation is reported, no longer judged. Judged
only when some c reached the level in every seed (the hardest distance was learned at all); one
seed gives no SE, so it is not judged.

One stage "train": a run per (c, seed); all share one shape, so the whole sweep is one vmapped
program (c is a traced distribution). analyze groups runs by their c knob.

Knobs: m, simple_k, c (tuple), rest, attention, seeds, level, recipe.* (lr = 0 switches learning off). Row metrics: steps_to_90
(null: not reached), final hard_acc / hard_acc_all / hard_traversal. Summary metrics:
c=<c>_steps_to_90_median (censored runs count as +inf; null when the median is censored),
c=<c>_steps_to_90_mean / _se (censored runs charged budget + steps_per_epoch: a lower bound),
c=<c>_reached_frac, spearman_c_vs_steps.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from theoryrl.core.config import check_seeds, require, require_float, require_floats
from theoryrl.core import verdicts as V
from theoryrl.core.stages import Outcome, Runs
from theoryrl.core.results import load_npz
from theoryrl.experiments import chain_common as cc
from theoryrl.rl.chain_trainer import EvalSet
from theoryrl.tasks.chain import ChainSpec, simple_mass, uniform_over

ID = "chain-simple-mass"
TITLE = "Steps to solve the hardest distance vs simple-example mass c"
PAPER = "Ran-Milo et al. 2601.15158, Theorems 2-3 (time ~ 1/c with (k, c)-simple data; exponential without)"


@dataclasses.dataclass(frozen=True)
class Config:
    m: int = 8
    simple_k: int = 1
    c: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.5)
    rest: str = "hardest"
    attention: str = "softmax"
    seeds: tuple[int, ...] = (42, 43, 44)
    level: float = 0.9
    recipe: cc.ChainRecipe = cc.ChainRecipe(dataset_size=0, epochs=300, steps_per_epoch=10, early_stop=False)

    def validate(self):
        cc.check_ms(self.m)
        require(self.m >= 3, "m", self.m, ">= 3 (needs a simple and a hard distance)")
        require(1 <= self.simple_k < self.m - 1, "simple_k", self.simple_k, f"1 <= simple_k < m-1 = {self.m - 1}")
        require_floats(self.c, "c", 0.0, 1.0)
        require(self.rest in ("hardest", "uniform"), "rest", self.rest, "hardest or uniform")
        cc.check_choices("attention", (self.attention,), ("softmax", "linear"))
        check_seeds(self.seeds)
        require_float(self.level, "level", 0.0, 1.0, lo_open=True)


TIERS = {
    "quick": Config(m=5, c=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0), seeds=(42, 43, 44),
                    recipe=cc.ChainRecipe(batch=2000, dataset_size=0, epochs=120, steps_per_epoch=5, early_stop=False,
                                          eval_size=1000, epochs_per_chunk=10)),
    "paper": Config(),
}


def train_distribution(cfg: Config, c: float) -> np.ndarray:
    if cfg.rest == "uniform":
        return simple_mass(cfg.m, c, cfg.simple_k)
    probs = c * uniform_over(range(1, cfg.simple_k + 1), cfg.m)
    probs[cfg.m - 2] += 1.0 - c
    return probs


def plan(cfg: Config) -> list:
    recipe, m = cfg.recipe, cfg.m
    task = ChainSpec(m, 2 * m)
    spec = cc.train_spec(recipe, task, cfg.attention, (EvalSet("hard", task, recipe.eval_size, recipe.horizon or m + 1),))
    hardest = uniform_over([m - 1], m)
    return [cc.plan_run({"c": c, "seed": s, "simple_k": cfg.simple_k, "rest": cfg.rest}, cfg.attention, spec, recipe,
                        cc.hparams(s, recipe, train_distribution(cfg, c), {"hard": hardest}))
            for c in cfg.c for s in cfg.seeds]


def steps_to(curve: np.ndarray, level: float, steps_per_epoch: int):
    hit = np.flatnonzero(np.nan_to_num(curve, nan=-1.0) >= level)
    return int(hit[0] + 1) * steps_per_epoch if hit.size else None


def spearman(x, y) -> float:
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    if np.std(rx) == 0 or np.std(ry) == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def analyze(cfg: Config, runs: Runs) -> Outcome:
    trained = runs.where(stage="train")  # every run, in plan order (c, seed)
    curves = cc.stack_curves(trained, cfg.recipe.epochs, ("hard",))
    spe = cfg.recipe.num_steps_per_epoch
    final = {k: cc.last_trained(curves[f"hard/{k}"]) for k in ("acc", "acc_all", "traversal")}
    rows, metrics = [], {}
    steps = []
    for i, run in enumerate(trained):
        s = steps_to(curves["hard/acc_all"][i], cfg.level, spe)
        steps.append(np.inf if s is None else s)
        rows.append({**run.row, "steps_to_90": s, "hard_acc": float(final["acc"][i]),
                     "hard_acc_all": float(final["acc_all"][i]), "hard_traversal": float(final["traversal"][i])})
    steps = np.array(steps, dtype=np.float64)
    run_c = np.array([r.row["c"] for r in trained])
    cap = cfg.recipe.epochs * spe + spe  # a run that never reached the level: at least this many steps
    cs = sorted(set(cfg.c))
    arms = []
    for c in cs:
        med = float(np.median(steps[run_c == c]))
        metrics[f"c={c}_steps_to_90_median"] = med if np.isfinite(med) else None
        metrics[f"c={c}_reached_frac"] = float(np.mean(np.isfinite(steps[run_c == c])))
        charged = cc.charged(steps[run_c == c], cap)
        metrics[f"c={c}_steps_to_90_mean"], metrics[f"c={c}_steps_to_90_se"] = V.mean_se(charged)
        arms.append((f"c = {c}", charged))
    finite_budget = cfg.recipe.epochs * spe * 2.0  # rank censored runs above every observed value
    metrics["spearman_c_vs_steps"] = spearman(run_c, np.where(np.isfinite(steps), steps, finite_budget))
    learned = any(np.all(np.isfinite(steps[run_c == c])) for c in cs)
    if len(cs) < 2:
        trend = V.not_judged(f"a single c ({cs}): no trend to judge")
    else:
        trend = cc.decreasing_beyond_noise(arms, f"steps to {cfg.level} on distance m-1 (never: >= {cap})")
    verdicts = {"steps_to_90_decrease_as_c_grows": V.judged_if(
        {f"the hardest distance was learned at some c (every seed of some c reached {cfg.level})": learned},
        trend).citing("Theorems 2-3: T ~ 1/c with (k, c)-simple data; no simple mass: exponential time or a "
                      "guessing optimum (no published numbers)")}
    arrays = {**curves, "run_c": run_c, "run_seed": np.array([r.row["seed"] for r in trained]), "steps_to_90": steps}
    paper = {"claim": "more simple-example mass -> fewer steps to solve the hardest distance (theory: T ~ 1/c; "
                      "no simple mass: exponential time or a guessing optimum)"}
    return Outcome.judged(metrics, rows, paper, verdicts, arrays)


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
    budget = cfg["recipe"]["epochs"] * (cfg["recipe"]["steps_per_epoch"] if not cfg["recipe"]["dataset_size"]
                                        else cfg["recipe"]["dataset_size"] // cfg["recipe"]["batch"])
    fig, axes = plotting.subplots(1, 2, width=4.8)
    cs = sorted(set(arrays["run_c"].tolist()))
    ax = axes[0, 0]
    for c in cs:
        sel = arrays["run_c"] == c
        s = arrays["steps_to_90"][sel]
        reached = s[np.isfinite(s)]
        if reached.size:
            ax.errorbar([c], [reached.mean()], yerr=[reached.std()], fmt="o", color="C0", capsize=3)
        if (~np.isfinite(s)).any():
            ax.plot([c], [budget], "v", color="C3")
    ax.axhline(budget, color="C3", lw=0.8, ls="--", label="budget (triangles: not reached)")
    ax.set_xlabel("simple-example mass c")
    ax.set_ylabel(f"steps to {int(100 * cfg['level'])}% on distance m-1")
    ax.legend(fontsize=8)
    ax2 = axes[0, 1]
    for j, c in enumerate(cs):
        curve = arrays["hard/acc_all"][arrays["run_c"] == c]
        ax2.plot(np.arange(1, curve.shape[1] + 1), np.nanmean(curve, axis=0), label=f"c = {c}", color=f"C{j}")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("greedy accuracy, hardest distance")
    ax2.set_ylim(-0.02, 1.02)
    ax2.legend(fontsize=8)
    fig.suptitle(f"chain-simple-mass (m = {cfg['m']}, k = {cfg['simple_k']}, rest on {cfg['rest']})")
    return [plotting.savefig(fig, Path(out_dir) / "chain-simple-mass.png")]
