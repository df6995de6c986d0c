"""bandit-diversity: "RL as sampling" at bandit scale, and what each exploration bonus changes.

Song, Kempe, Munos 2509.06941, Figure 2 and Table 2: at an equal budget of samples, RL solves more
training questions early but sampling from the base model eventually solves more, and RL's loss of
diversity on solved questions transfers to unsolved ones; outcome-based exploration bonuses (UCB
variants, batch) counter it. This reproduces those claims on many outcome bandits, where every
quantity is exact, as the cheap counterpart of the language-model runs.

Q questions, each an outcome bandit with K arms -> M outcomes and `correct` correct outcomes
(theoryrl.rl.bandit_pg). Every method draws G samples per question per round (budget k = G t) and
all are one vmapped program with traced knobs: base (lr = 0: sampling from the initial policy),
grpo (no bonus), ucb (naive historical UCB), ucb_mean, ucb_con(b0) and batch, each bonus weighted by
c, gated unless gate = false, added after normalisation. Cross-question coupling (`tie`: a shared
inverse temperature; `transfer`: a shared "skill" on correct answers) stands in for an LLM's
parameter sharing [I].

Rows per method (seed mean and standard error at the final budget): solved_frac, distinct_all,
distinct_unsolved, distinct_common_unsolved (on questions neither this method nor base solved),
batch_distinct_{solved,unsolved,all} (distinct answers in a batch of 8 from the final policy, the
Table 2 reading in bandit_pg.policy_metrics), pass1, diff_at_k, entropy, tau, skill.
Verdicts (`verdicts`): three-valued records; a comparison of methods passes only beyond 2 standard
errors over seeds (ties fail; one seed: not judged), and a claim about RL is judged only when the RL
methods it names learned (final pass@1 above base's beyond 2 SE), so a run with lr = 0 judges nothing;
nor does one with rounds = 0 (no sample drawn: empty curves, rows of NaN).
"""
from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from theoryrl.core import prng
from theoryrl.core.config import (
    check_seeds,
    is_int,
    require,
    require_finite_nonneg,
    require_float,
    require_int,
)
from theoryrl.core.experiment import Outcome, Program, RunPlan, Runs
from theoryrl.core.results import load_npz
from theoryrl.core.verdicts import Verdict, all_of, greater, judged_if, mean_se
from theoryrl.rl import bandit_pg as pg

ID = "bandit-diversity"
TITLE = "RL as sampling on many outcome bandits: solved questions and distinct answers, per exploration bonus"
PAPER = "Song, Kempe, Munos 2509.06941, Figure 2 (transfer of diversity degradation) and Table 2 (distinct answers)"

METHODS = {  # bonus weights; c, b0 and gate come from the config
    "base": {"lr": 0.0},
    "grpo": {},
    "ucb": {"ucb": 1.0},
    "ucb_mean": {"ucb_mean": 1.0},
    "ucb_con": {"ucb_con": 1.0},
    "batch": {"batch": 1.0},
}
TABLE_KEYS = ("solved_frac", "distinct_all", "distinct_unsolved", "batch_distinct_solved", "batch_distinct_unsolved",
              "batch_distinct_all", "pass1", "diff_at_k", "entropy", "tau", "skill")


@dataclasses.dataclass(frozen=True)
class Config:
    questions: int = 2048
    arms: int = 256
    outcomes: int = 50
    group: int = 8
    correct: int = 1
    rounds: int = 100
    rounds_per_chunk: int = 5
    methods: tuple[str, ...] = tuple(METHODS)
    lr: float = 0.5
    share: float = 1.0
    tie: float = 1.0
    transfer: float = 2.0
    beta: float = 1e-3
    c: float = 0.2
    b0: float = 0.5
    gate: bool = True
    max_difficulty: float = 8.0
    early_frac: float = 0.1
    seeds: tuple[int, ...] = tuple(range(42, 58))

    def validate(self):
        # sizes: each run holds questions x arms logits and their gradients, and all (method, seed) runs are one
        # vmapped program; bounds ~32x the paper tier (2048 questions x 256 arms, group 8)
        require_int(self.questions, "questions", 1, 65_536)
        require_int(self.arms, "arms", 1, 16_384)
        require(self.questions * self.arms <= 2 ** 24, "arms", self.arms,
                f"questions x arms <= 2^24 (questions = {self.questions})")
        require_int(self.outcomes, "outcomes", 1, self.arms, f"1..arms = {self.arms}")
        require_int(self.group, "group", 2, 1024, "2..1024 (group baselines and UCB-Mean need two samples)")
        require_int(self.correct, "correct", 1, self.outcomes - 1, f"1 .. outcomes - 1 = {self.outcomes - 1}")
        require_int(self.rounds_per_chunk, "rounds_per_chunk", 1, 100_000)
        # 0: learning switched off (no round: nothing sampled, nothing judged)
        require(is_int(self.rounds) and 0 <= self.rounds <= 100_000 and self.rounds % self.rounds_per_chunk == 0,
                "rounds", self.rounds, f"a multiple of rounds_per_chunk = {self.rounds_per_chunk} in 0..100000")
        require(len(self.methods) > 0 and all(m in METHODS for m in self.methods) and len(set(self.methods)) == len(
            self.methods), "methods", self.methods, f"distinct names from {list(METHODS)}")
        require_finite_nonneg(self.lr, "lr")  # 0: sampling from the initial policy (rl/bandit_pg.py)
        require_float(self.share, "share", 0.0, 1.0)
        for knob in ("tie", "transfer", "beta", "c", "max_difficulty"):
            require_finite_nonneg(getattr(self, knob), knob)
        require_float(self.early_frac, "early_frac", 0.0, 1.0, lo_open=True)
        check_seeds(self.seeds)


TIERS = {
    "quick": Config(questions=512, arms=64, outcomes=16, rounds=100, seeds=(42, 43, 44, 45)),
    "paper": Config(),
}


def spec_of(cfg: Config) -> pg.QuestionsSpec:
    return pg.QuestionsSpec(questions=cfg.questions, arms=cfg.arms, outcomes=cfg.outcomes, group=cfg.group,
                            correct=cfg.correct, max_difficulty=cfg.max_difficulty)


def hparams(cfg: Config, method: str, seed: int) -> pg.PgHp:
    """One run's traced knobs: the config's rates, no bonus, then the method's overrides (METHODS)."""
    hp = {"seed": seed, "lr": cfg.lr, "share": cfg.share, "tie": cfg.tie, "transfer": cfg.transfer, "beta": cfg.beta,
          "c": cfg.c, "ucb": 0.0, "ucb_mean": 0.0, "ucb_con": 0.0, "b0": cfg.b0, "batch": 0.0,
          "gate": 1.0 if cfg.gate else 0.0, **METHODS[method]}
    return pg.PgHp(**{k: np.int32(v) if k == "seed" else np.float32(v) for k, v in hp.items()})


def program(spec: pg.QuestionsSpec, num_chunks: int, rounds_per_chunk: int) -> Program:
    def data_fn(hp: pg.PgHp):
        return pg.make_questions(prng.stream_key(prng.root_key(hp.seed), prng.Stream.DATA), spec)

    def init_fn(hp: pg.PgHp):
        return pg.init_state(spec, data_fn(hp))

    def chunk_fn(state: pg.PgState, hp: pg.PgHp, data):
        state = pg.run_rounds(spec, state, hp, data, rounds_per_chunk)
        key = prng.step_key(prng.root_key(hp.seed), prng.Stream.EVAL, state.t)
        return state, pg.policy_metrics(spec, state, data, key)

    def final_fn(state: pg.PgState):
        return {"solved_Q": state.solved_Q, "distinct_Q": jnp.sum(state.seen_QxM, axis=-1)}

    return Program(data_fn=data_fn, init_fn=init_fn, chunk_fn=chunk_fn, num_chunks=num_chunks,
                   steps_per_chunk=rounds_per_chunk, final_fn=final_fn,
                   summarize=lambda m: {k: float(np.mean(m[k])) for k in ("solved_frac", "distinct_unsolved", "pass1")})


def plan(cfg: Config) -> list[RunPlan]:
    spec, num_chunks = spec_of(cfg), cfg.rounds // cfg.rounds_per_chunk
    build = partial(program, spec, num_chunks, cfg.rounds_per_chunk)
    return [RunPlan(row={"method": m, "seed": s}, bucket=(spec, num_chunks, cfg.rounds_per_chunk), label="pg",
                    hp=hparams(cfg, m, s), build=build) for m in cfg.methods for s in cfg.seeds]


def _mean_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    se = x.std(axis=0, ddof=1) / np.sqrt(x.shape[0]) if x.shape[0] > 1 else np.zeros_like(x[0])
    return x.mean(axis=0), se


def analyze(cfg: Config, runs: Runs) -> Outcome:
    M, S, chunks = len(cfg.methods), len(cfg.seeds), cfg.rounds // cfg.rounds_per_chunk
    runs_MS = [runs.one(method=m, seed=s) for m in cfg.methods for s in cfg.seeds]
    hist = {k: np.stack([np.asarray(r.history(k), np.float64) for r in runs_MS]).reshape(M, S, chunks)
            for k in TABLE_KEYS}
    # the values at the final budget; rounds = 0 has none (NaN), so every claim is not judged
    final = {k: v[..., -1] if chunks else np.full((M, S), np.nan) for k, v in hist.items()}
    solved_Q = np.stack([r.final("solved_Q") for r in runs_MS]).reshape(M, S, -1)
    distinct_Q = np.stack([r.final("distinct_Q") for r in runs_MS]).reshape(M, S, -1).astype(np.float64)
    if "base" in cfg.methods:
        b = cfg.methods.index("base")
        common = ~solved_Q & ~solved_Q[b][None]
        hist_common = np.where(common.any(axis=2), (distinct_Q * common).sum(axis=2) / np.maximum(common.sum(axis=2), 1),
                               np.nan)
        base_common = np.where(common.any(axis=2), (distinct_Q[b][None] * common).sum(axis=2)
                               / np.maximum(common.sum(axis=2), 1), np.nan)
    budget = cfg.group * cfg.rounds_per_chunk * np.arange(1, hist["solved_frac"].shape[-1] + 1)
    rows, metrics, table = [], {}, {}
    for i, method in enumerate(cfg.methods):
        row = {"method": method, "k": int(budget[-1]) if chunks else 0}
        for key in TABLE_KEYS:
            mean, se = _mean_se(final[key][i])
            row[key], row[f"{key}_se"] = float(mean), float(se)
        if "base" in cfg.methods:
            row["distinct_common_unsolved"] = _nanmean(hist_common[i])
            row["base_distinct_common_unsolved"] = _nanmean(base_common[i])
        rows.append(row)
        table[method] = row
        metrics.update({f"{method}/{k}": row[k] for k in TABLE_KEYS})
    early = max(int(np.ceil(cfg.early_frac * len(budget))) - 1, 0)
    early_solved = hist["solved_frac"][..., early] if chunks else np.full((M, S), np.nan)
    metrics["k_early"] = int(budget[early]) if chunks else 0
    for method in cfg.methods:
        metrics[f"{method}/solved_frac_early"] = float(early_solved[cfg.methods.index(method)].mean())
    per_seed = _per_seed(cfg, final, early_solved, hist_common if "base" in cfg.methods else None,
                         base_common if "base" in cfg.methods else None)
    verdict = verdicts(cfg, per_seed)
    arrays = {"budget": budget, "methods": np.array(cfg.methods),
              **{f"{k}_mean": hist[k].mean(axis=1) for k in TABLE_KEYS},
              **{f"{k}_se": _mean_se(np.moveaxis(hist[k], 1, 0))[1] for k in TABLE_KEYS}}
    paper = {"rl_solves_more_early": "RL solves more training questions early (Figure 2)",
             "base_solves_more_eventually": "at equal cumulative budget k = n t, base sampling eventually solves more",
             "transfer_of_diversity_degradation": "base sampling finds more distinct answers even on unsolved questions",
             "ucb_variants_solve_more_than_grpo": "historical (UCB) exploration solves more training questions",
             "ucb_con_best_for_solving": "UCB-Con is the best variant overall",
             "batch_most_distinct_on_unsolved": "Batch gives the most distinct answers on unsolved questions (Table 2: "
                                                "GRPO 4.805, UCB-Con 4.855, Batch 5.390)",
             "batch_gain_concentrated_on_unsolved": "Batch's extra diversity is on unsolved, not solved, questions"}
    return Outcome.judged(metrics, rows, paper, verdict, arrays)


def _per_seed(cfg: Config, final: dict, early_solved: np.ndarray, common: np.ndarray | None,
              base_common: np.ndarray | None) -> dict[str, dict[str, np.ndarray]]:
    """method -> quantity -> [seeds]: the per-seed values the verdicts compare (seed means and their
    standard errors are what the rows report); `final` / `early_solved`: [methods, seeds] at the final /
    early budget. `common_unsolved` / `base_common_unsolved`: cumulative
    distinct answers of the method / of base on the questions neither solved (NaN for a seed with none)."""
    out = {}
    for i, method in enumerate(cfg.methods):
        out[method] = {key: final[key][i] for key in ("solved_frac", "pass1", "batch_distinct_solved",
                                                      "batch_distinct_unsolved")}
        out[method]["solved_frac_early"] = early_solved[i]
        if common is not None:
            out[method]["common_unsolved"] = common[i]
            out[method]["base_common_unsolved"] = base_common[i]
    return out


def _nanmean(x: np.ndarray) -> float:
    """Mean over the seeds that have a value; NaN (without numpy's warning) when none has."""
    x = np.asarray(x, np.float64)
    return float(np.nanmean(x)) if np.any(~np.isnan(x)) else float("nan")


def _arm(x: np.ndarray) -> tuple[float, float]:
    """Seed mean and SE of one method's per-seed values (NaN seeds left out; SE NaN below two seeds)."""
    return mean_se(x[~np.isnan(x)])


def _beats(t: dict, a: str, b: str, key: str, what: str) -> Verdict:
    """Method a's seed mean of `key` exceeds method b's by more than 2 SE of the difference."""
    (ma, sa), (mb, sb) = _arm(t[a][key]), _arm(t[b][key])
    return greater(ma, mb, se_a=sa, se_b=sb, what=what)


def _paired(diff_S: np.ndarray, what: str) -> Verdict:
    """The seed mean of a paired per-seed difference (same seed: same questions) is > 2 SE above 0."""
    m, se = _arm(diff_S)
    return greater(m, 0.0, se_a=se, se_b=0.0, what=what)




def verdicts(cfg: Config, t: dict) -> dict[str, Verdict]:
    """Each claim whose methods were run. Comparisons between methods pass only beyond 2 standard
    errors over seeds (a tie is a fail); with one seed there is no SE and they are not judged.
    Every claim about RL presupposes that the RL methods it names learned: their final pass@1 above
    base's (lr = 0) beyond 2 SE; without base in the run there is no such reference and it is not
    judged. A run with lr = 0 everywhere therefore judges nothing."""
    have = set(cfg.methods)
    rl = [m for m in cfg.methods if m != "base"]
    learned = {m: ("base" in have and _beats(t, m, "base", "pass1", f"{m} pass@1 vs base").passed) for m in rl}

    def pre(*methods: str) -> dict[str, bool]:
        return {"base (lr = 0) was run, the reference for learning": "base" in have,
                **{f"{m} learned (final pass@1 above base's by > 2 SE)": learned[m] for m in methods}}

    out = {}
    if {"base", "grpo"} <= have:
        out["rl_solves_more_early"] = judged_if(pre("grpo"), _beats(
            t, "grpo", "base", "solved_frac_early", "grpo - base, fraction solved at the early budget"))
        out["base_solves_more_eventually"] = judged_if(pre("grpo"), _beats(
            t, "base", "grpo", "solved_frac", "base - grpo, fraction solved at the final budget"))
        out["transfer_of_diversity_degradation"] = judged_if(pre("grpo"), _paired(
            t["grpo"]["base_common_unsolved"] - t["grpo"]["common_unsolved"],
            "base - grpo, cumulative distinct answers on questions neither solved (paired by seed)"))
    ucbs = [m for m in ("ucb", "ucb_mean", "ucb_con") if m in have]
    if "grpo" in have and ucbs:
        out["ucb_variants_solve_more_than_grpo"] = judged_if(pre("grpo", *ucbs), all_of(
            {m: _beats(t, m, "grpo", "solved_frac", f"{m} - grpo, fraction solved") for m in ucbs},
            "every UCB variant - grpo, fraction solved"))
    if "ucb_con" in have and len(rl) > 1:
        out["ucb_con_best_for_solving"] = judged_if(pre(*rl), all_of(
            {m: _beats(t, "ucb_con", m, "solved_frac", f"ucb_con - {m}, fraction solved") for m in rl if m != "ucb_con"},
            "ucb_con - every other RL method, fraction solved"))
    if "batch" in have and len(rl) > 1:
        out["batch_most_distinct_on_unsolved"] = judged_if(pre(*rl), all_of(
            {m: _beats(t, "batch", m, "batch_distinct_unsolved", f"batch - {m}, distinct answers in a batch of 8 "
                       "on unsolved questions") for m in rl if m != "batch"},
            "batch - every other RL method, distinct answers in a batch of 8 on unsolved questions")).citing(
            "Table 2, unsolved: GRPO 4.805, UCB-Con 4.855, Batch 5.390")
    if {"batch", "grpo"} <= have:
        gain_u = t["batch"]["batch_distinct_unsolved"] - t["grpo"]["batch_distinct_unsolved"]
        gain_s = t["batch"]["batch_distinct_solved"] - t["grpo"]["batch_distinct_solved"]
        out["batch_gain_concentrated_on_unsolved"] = judged_if(pre("batch", "grpo"), _paired(
            gain_u - gain_s, "batch's gain over grpo in distinct answers (batch of 8): unsolved - solved, "
                             "paired by seed")).citing("Table 2: Batch - GRPO = +0.585 unsolved, +0.005 solved")
    return out


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arr = load_npz(Path(run_dir) / "arrays.npz")
    # rounds = 0 (learning switched off): empty curves; one NaN point stands in, so the figure is drawn empty
    arr = {key: np.full(v.shape[:-1] + (1,), np.nan) if v.dtype.kind in "fiu" and v.shape[-1:] == (0,) else v
           for key, v in arr.items()}
    methods, k = [str(m) for m in arr["methods"]], arr["budget"]
    fig, axes = plotting.subplots(1, 3, width=4.4)
    for col, (key, label) in enumerate((("solved_frac", "questions solved at least once"),
                                        ("distinct_unsolved", "cumulative distinct answers, unsolved questions"))):
        ax = axes[0, col]
        for i, m in enumerate(methods):
            mean, se = arr[f"{key}_mean"][i], arr[f"{key}_se"][i]
            ax.plot(k, mean, color=f"C{i}", label=m, ls="--" if m == "base" else "-")
            ax.fill_between(k, mean - se, mean + se, color=f"C{i}", alpha=0.2)
        ax.set_xlabel("samples per question k = G t")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    ax = axes[0, 2]
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        vals = [arr[f"batch_distinct_{s}_mean"][i, -1] for s in ("solved", "unsolved", "all")]
        ax.bar(np.arange(3) + i * width, vals, width, color=f"C{i}", label=m)
    ax.set_xticks(np.arange(3) + 0.4 - width / 2, ["solved", "unsolved", "all"])
    ax.set_ylabel("distinct answers in a batch of 8 (final policy)")
    ax.legend(fontsize=7)
    fig.suptitle("bandit-diversity: RL as sampling, and exploration bonuses")
    return [plotting.savefig(fig, Path(out_dir) / "bandit-diversity.png")]
