"""chain-ood: length generalisation (Ran-Milo et al., Table 2 in v1).

Why: if REINFORCE learned a traversal rule rather than memorised short paths, it should run
unchanged on longer chains. Train on two chains of m_train = 4 inside a 24-vertex graph (the other
16 vertices isolated, each its own sink), then test greedily on two chains of m in {4, 8, 12}
inside the same 24-vertex graph, with distances uniform over 1..m-1 and a longer horizon (20).
The parameter shapes depend only on n = 24, so the trained model runs unchanged on every test size.
Early stopping uses the "val" set (m_train); the test sets are separate draws.

Verdicts (core/verdicts.py; SE over seeds), per attention and test size:
<attention>_test_m<m>_acc_ge_98 (test accuracy >= 0.98) and <attention>_test_m<m>_traversal_ge_<98|90>
(exact traversal >= 0.98 linear, where the official CSV has 100%; >= 0.90 softmax, whose OOD numbers
are not published: Table 1's softmax traversal level), both under both denominators (over
sink-reaching rollouts and over all rollouts, where a timeout counts as wrong). Preconditions:
- the run had the paper recipe's training budget (rollouts = batch x Adam steps, per attention).
  Why: the paper's claim is about its recipe. The quick tier trains on ~1.5M rollouts instead of
  ~3-4e8, and there linear attention at m = 12 sits on the threshold (the quick-tier values are
  in docs/results/chain-ood.md and moved across it with a numerics change), so a
  quick-tier pass or fail would report the recipe's budget and the seed, not the paper. Several
  quick-tier seeds that would show a margin cannot be afforded on the CPU tier, so the quick tier
  reports its values under `not judged` ("the paper's claim is judged at the paper tier"), with
  value and threshold in the record; a run with at least the paper's budget is judged.
- the training length was learned (val accuracy at m_train >= 0.98, both denominators): length
  generalisation presupposes it; a run that learned nothing is not judged.

One stage "train": a run per (attention, seed), every test size evaluated inside the run; analyze
selects runs by the row knobs attention, seed.

Knobs: n, m_train, m_test (tuple), attention (tuple), seeds, softmax.*, linear.* (lr = 0 switches
learning off), train_horizon, test_horizon. Row metrics per (attention, seed, m_test): test_acc /
test_acc_all, traversal / traversal_all, reached, len_correct. Summary metrics:
<attention>_test_m<m>_{acc, acc_all, traversal, traversal_all}, <attention>_val_acc_all.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from theoryrl.core.config import check_seeds, require, require_int
from theoryrl.core import verdicts as V
from theoryrl.core.stages import Outcome, Runs
from theoryrl.experiments import chain_common as cc
from theoryrl.rl.chain_trainer import EvalSet
from theoryrl.tasks.chain import ChainSpec

ID = "chain-ood"
TITLE = "Length generalisation: train m=4 in a 24-vertex graph, test m = 4, 8, 12"
PAPER = "Ran-Milo et al. 2601.15158, Table 2 (v1); official linear CSV: 100/100/100"


@dataclasses.dataclass(frozen=True)
class Config:
    n: int = 24
    m_train: int = 4
    m_test: tuple[int, ...] = (4, 8, 12)
    attention: tuple[str, ...] = ("softmax", "linear")
    seeds: tuple[int, ...] = (42, 43, 44)
    train_horizon: int = 13
    test_horizon: int = 20
    # the official OOD script hard-codes tmp = 1/20 for both attention types
    softmax: cc.ChainRecipe = cc.SOFTMAX_PAPER
    linear: cc.ChainRecipe = dataclasses.replace(cc.LINEAR_PAPER, tmp=1.0 / 20.0)

    def validate(self):
        # n <= 256: the graph size tasks/chain.py supports (permutations packed with 8 index bits)
        require_int(self.n, "n", 4, 2 * cc.MAX_M)
        require_int(self.m_train, "m_train", 2, cc.MAX_M)
        cc.check_ms(self.m_test, "m_test")
        for m in (self.m_train, *self.m_test):
            require(self.n >= 2 * m, "n", self.n, f"an integer >= 2m = {2 * m} for every train/test m")
        cc.check_choices("attention", self.attention, ("softmax", "linear"))
        check_seeds(self.seeds)
        require_int(self.train_horizon, "train_horizon", 1, 1024)  # as ChainRecipe.horizon
        require_int(self.test_horizon, "test_horizon", 1, 1024)


_QUICK = cc.ChainRecipe(batch=5000, dataset_size=0, epochs=30, steps_per_epoch=10, epochs_per_chunk=2)
TIERS = {
    "quick": Config(softmax=_QUICK, linear=_QUICK, seeds=(42, 43)),
    "paper": Config(),
}


def plan(cfg: Config) -> list:
    plans = []
    train_task = ChainSpec(cfg.m_train, cfg.n)
    for attention in cfg.attention:
        recipe = getattr(cfg, attention)
        evals = (EvalSet("val", train_task, recipe.eval_size, cfg.train_horizon),) + tuple(
            EvalSet(f"test_m{m}", ChainSpec(m, cfg.n), recipe.eval_size, cfg.test_horizon) for m in cfg.m_test)
        spec = cc.train_spec(recipe, train_task, attention, evals, horizon=cfg.train_horizon)
        probs = cc.uniform_distances(cfg.m_train)
        eval_probs = {"val": probs, **{f"test_m{m}": cc.uniform_distances(m) for m in cfg.m_test}}
        plans += [cc.plan_run({"attention": attention, "seed": s}, attention, spec, recipe,
                              cc.hparams(s, recipe, probs, eval_probs)) for s in cfg.seeds]
    return plans


def rollout_budget(recipe: cc.ChainRecipe) -> int:
    """Training rollouts a recipe can use: batch x Adam steps (early stopping may use fewer)."""
    return recipe.batch * recipe.epochs * recipe.num_steps_per_epoch


def traversal_need(attention: str) -> float:
    return 0.98 if attention == "linear" else 0.90


def analyze(cfg: Config, runs: Runs) -> Outcome:
    rows, arrays, metrics, verdicts = [], {}, {}, {}
    paper_cfg = TIERS["paper"]
    for attention in cfg.attention:
        recipe = getattr(cfg, attention)
        group = runs.where(attention=attention)  # its seeds, in plan order
        curves = cc.stack_curves(group, recipe.epochs, ("val", *(f"test_m{m}" for m in cfg.m_test)))
        arrays.update({f"{attention}/{k}": v for k, v in curves.items()})
        val_S = cc.both_denominators(cc.last_trained(curves["val/acc"]), cc.last_trained(curves["val/acc_all"]))
        val_mean = V.mean_se(val_S)[0]
        metrics[f"{attention}_val_acc_all"] = V.mean_se(cc.last_trained(curves["val/acc_all"]))[0]
        budget, paper_budget = rollout_budget(recipe), rollout_budget(getattr(paper_cfg, attention))
        preconditions = {
            f"training budget {budget:.3g} rollouts >= the paper recipe's {paper_budget:.3g} (quick tier: the paper's "
            "claim is judged at the paper tier; quick-tier value reported)": budget >= paper_budget,
            f"the training length m = {cfg.m_train} was learned (val accuracy {val_mean:.4g} >= 0.98, both "
            "denominators)": bool(val_mean >= 0.98)}
        for m in cfg.m_test:
            final = {k: cc.last_trained(curves[f"test_m{m}/{k}"]) for k in cc.ACC_KEYS}
            for j, run in enumerate(group):
                rows.append({**run.row, "m_train": cfg.m_train, "m_test": m,
                             **{("test_" + k if k.startswith("acc") else k): float(final[k][j]) for k in cc.ACC_KEYS}})
            metrics[f"{attention}_test_m{m}_acc"] = cc.mean_std(final["acc"])[0]
            metrics[f"{attention}_test_m{m}_acc_all"] = cc.mean_std(final["acc_all"])[0]
            metrics[f"{attention}_test_m{m}_traversal"] = cc.mean_std(final["traversal"])[0]
            metrics[f"{attention}_test_m{m}_traversal_all"] = cc.mean_std(final["traversal_all"])[0]
            cite = (f"Table 2: 100% at m = {m} (official linear CSV, std 0)" if attention == "linear"
                    else "Table 2: about 100% (softmax aggregate not published)")
            acc = cc.accuracy_at_least(final["acc"], final["acc_all"], 0.98, f"{attention} test accuracy at m = {m}")
            verdicts[f"{attention}_test_m{m}_acc_ge_98"] = V.judged_if(preconditions, acc).citing(cite)
            need = traversal_need(attention)
            trav = cc.accuracy_at_least(final["traversal"], final["traversal_all"], need,
                                        f"{attention} traversal accuracy at m = {m}")
            verdicts[f"{attention}_test_m{m}_traversal_ge_{int(need * 100)}"] = V.judged_if(preconditions, trav).citing(
                cite.replace("100%", "traversal 100%", 1) if attention == "linear" else cite)
    paper = {"claim": "about 100% test and traversal accuracy at every test size",
             "linear_test_pct": [100, 100, 100], "linear_traversal_pct": [100, 100, 100],
             "judged": "at the paper recipe's training budget, once the training length is learned"}
    return Outcome.judged(metrics, rows, paper, verdicts, arrays)


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    summary_rows = json.loads((Path(run_dir) / "summary.json").read_text())["rows"]
    fig, axes = plotting.subplots(1, 1, width=5.0)
    ax = axes[0, 0]
    attentions = sorted({r["attention"] for r in summary_rows})
    m_tests = sorted({r["m_test"] for r in summary_rows})
    width = 0.8 / (2 * len(attentions))
    for a_i, attention in enumerate(attentions):
        for j, key in enumerate(("test_acc", "traversal")):
            vals = [[r[key] for r in summary_rows if r["attention"] == attention and r["m_test"] == m] for m in m_tests]
            x = np.arange(len(m_tests)) + (2 * a_i + j - len(attentions) + 0.5) * width
            ax.bar(x, [np.mean(v) for v in vals], width, yerr=[np.std(v) for v in vals], label=f"{attention} {key}")
    ax.set_xticks(np.arange(len(m_tests)), [f"m={m}" for m in m_tests])
    ax.set_ylabel("greedy accuracy (trained at m=4)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("chain-ood: length generalisation")
    return [plotting.savefig(fig, Path(out_dir) / "chain-ood.png")]
