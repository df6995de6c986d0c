"""DAG-lite substrate: the shared pre-trained base, its gate, band calibration, and the RL program.

What. Zhang, Neubig and Yue (arXiv 2512.07783; spec `dag_arithmetic.md` §6, §8, §11) pre-train a
decoder on an in-distribution (ID) op band, then compare RL runs on bands defined *from the measured
base*: the edge of competence (pass@k_max 10-60%, pass@1 < 10%) and the too-hard band (pass@k_max
~ 0). This module is the piece every DAG experiment (and the RLVR-limits and LM-exploration ones)
shares, so they reuse one stored base:
- `BaseSpec`: everything a base's training reads; `base_key` is its content address in the store.
- `pretrain_program`: NTP on the ID band with the spec's easy/medium/hard mix (optionally with
  context B at op 2 only, `b_share`), curves of process-verified pass@1 / pass@S on the ID ops at
  every chunk, and, once trained, the evaluation table (`eval_table`) over every op 2..op_max with
  fixed problems and sampling keys, stored with the base so no experiment samples it again.
- `gate`: on every ID op, process-verified pass@1 and pass@k_max at least the base's thresholds
  (a base that never learned the lookup fails it).
- `calibrate`: the edge and hard bands (`Bands`, recorded in each summary), chosen on the first half
  of the table's problems; every gain is measured on the second half (`split_table`), so no gain
  comes from selecting ops where the base happened to score low.
- `rl_program`: GRPO with the DAG verifier's reward on a traced op mixture, evaluated at the end on
  the same fixed table as the base; `midtrain_program`: continued NTP on a traced mixture;
  `rl_token_equivalents` / `split_budget`: spec §8's compute matching between the two.
- `paired_gain_rows`, `paired_ratio_gain`, `band_ci`: paired bootstrap intervals over problems; rows
  pooled over seeds (one base each) resample seeds, then their problems (a cluster bootstrap).
Why the fixed evaluation key: every base and every RL arm is measured on the same problems with the
same sampling keys (common random numbers), which keeps paired differences' intervals tight.
"""
from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core import prng
from theoryrl.core.bases import Gate
from theoryrl.core.config import is_int, require, require_finite_nonneg, require_float, require_int, run_id
from theoryrl.core.stages import Program, Run, RunPlan, Stage
from theoryrl.eval import dag_eval, lm_eval, passk
from theoryrl.models import transformer as tfm
from theoryrl.rl import lm_exploration as lx
from theoryrl.rl import lm_rl, lm_runs, ntp, sampling
from theoryrl.rl.advantages import AdvantageSpec
from theoryrl.rl.losses import LossSpec
from theoryrl.tasks.dag import generate as gen
from theoryrl.tasks.dag import mix
from theoryrl.tasks.dag import verify as ver
from theoryrl.tasks.vocab import EOS_ID, PAD_ID

PRETRAIN_PROGRAM = "dag.pretrain@1"  # bump when the pre-training numerics or its evaluation change
EVAL_SEED = 20251208  # the fixed evaluation problems and sampling keys of every base and arm


@dataclasses.dataclass(frozen=True)
class BaseSpec:
    """A DAG base: task shapes, the ID pre-training mixture, model, NTP and evaluation knobs.

    The ID band id_lo..id_hi is split into easy (id_lo..easy_max), medium (..medium_max) and hard
    (..id_hi), drawn with shares `mix` (spec §11.3: 20/30/50). `b_share`: the share of pre-training
    problems (not tokens: op-2 problems are short) in context B (context 1), all at op 2 (spec
    §11.8); the rest are context A (0). The defaults are the CPU quick tier: values mod 23, not the
    spec's 97, because the probe (notes/dag_lite_probe.md) saw a small decoder learn mod-23 tables
    within minutes, and the quick tier has one CPU hour for the whole base; the paper tiers use 97."""

    p: int = 23
    op_max: int = 10  # largest op evaluated anywhere: sets the longest prompt and solution
    max_distractors: int = 2
    id_lo: int = 2
    id_hi: int = 5
    easy_max: int = 2
    medium_max: int = 4
    mix: tuple[float, float, float] = (0.2, 0.3, 0.5)
    b_share: float = 0.0
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 512
    token_shift: int = 3
    rope: bool = False  # NoPE: nothing ties a step to an absolute position, so longer solutions can be read
    steps: int = 3000
    batch: int = 64
    lr: float = 2e-3
    warmup: int = 100
    chunk: int = 500
    curve_problems: int = 8  # per ID op, at every chunk (learning curves)
    curve_samples: int = 8
    eval_problems: int = 16  # per op 2..op_max, once trained (gate, calibration, every comparison)
    eval_samples: int = 64  # n; pass@k for k = 1..k_max
    k_max: int = 32
    temperature: float = 0.7  # spec §5.4 / §11.7
    gate_pass1: float = 0.3
    gate_passk: float = 0.9
    edge_passk_lo: float = 0.10
    edge_passk_hi: float = 0.60
    edge_pass1_max: float = 0.10
    hard_passk_max: float = 0.02  # spec §11.5 "pass@k_max ~ 0"

    def validate(self) -> None:
        self.task().validate()
        require_int(self.id_lo, "id_lo", 2, self.op_max - 1, f"2..{self.op_max - 1} (op_max = {self.op_max})")
        require_int(self.id_hi, "id_hi", self.id_lo, self.op_max - 1,
                    f"{self.id_lo}..{self.op_max - 1}: at least id_lo, below op_max (ops above it are judged)")
        require(is_int(self.easy_max) and self.id_lo <= self.easy_max <= self.id_hi, "easy_max", self.easy_max,
                f"in {self.id_lo}..{self.id_hi}")
        require(is_int(self.medium_max) and self.easy_max <= self.medium_max <= self.id_hi, "medium_max",
                self.medium_max, f"in {self.easy_max}..{self.id_hi}")
        require(isinstance(self.mix, (tuple, list)) and len(self.mix) == 3, "mix", self.mix, "three shares")
        shares = [mix.check_share(s, f"mix.{i}") for i, s in enumerate(self.mix)]
        require(abs(sum(shares) - 1.0) < 1e-6, "mix", self.mix, "shares summing to 1")
        require(shares[1] == 0 or self.medium_max > self.easy_max, "mix", self.mix,
                "no medium share when the medium band is empty (medium_max = easy_max)")
        require(shares[2] == 0 or self.id_hi > self.medium_max, "mix", self.mix,
                "no hard share when the hard band is empty (medium_max = id_hi)")
        mix.check_share(self.b_share, "b_share")
        require_int(self.n_heads, "n_heads", 1, 64)
        require(is_int(self.d_model) and 8 <= self.d_model <= 4096 and self.d_model % self.n_heads == 0
                and (self.d_model // self.n_heads) % 2 == 0, "d_model", self.d_model,
                f"8..4096, divisible by n_heads = {self.n_heads} with an even head size")
        require_int(self.n_layers, "n_layers", 1, 64)
        require_int(self.d_ff, "d_ff", 0, 65_536, "0 (SwiGLU default) .. 65536")
        require_int(self.token_shift, "token_shift", 0, 64)
        require_int(self.chunk, "chunk", 1, 1_000_000)
        require(is_int(self.steps) and 0 <= self.steps <= 10_000_000 and self.steps % self.chunk == 0, "steps",
                self.steps, f"0 (no pre-training) or a multiple of chunk = {self.chunk}")
        require_int(self.batch, "batch", 1, 65_536)
        require_finite_nonneg(self.lr, "lr")
        require_int(self.warmup, "warmup", 0, 10_000_000)
        for knob in ("curve_problems", "curve_samples"):
            require_int(getattr(self, knob), knob, 1, 65_536)
        require_int(self.eval_problems, "eval_problems", 2, 65_536,
                    "2..65536 per op (half calibrate the bands, the other half measure every gain)")
        require_int(self.eval_samples, "eval_samples", 1, dag_eval.MAX_SAMPLES)
        require_int(self.k_max, "k_max", 1, self.eval_samples,
                    f"1..eval_samples = {self.eval_samples} (unbiased pass@k needs n >= k)")
        require_float(self.temperature, "temperature", 0.0, lo_open=True)
        for knob in ("gate_pass1", "gate_passk", "edge_passk_lo", "edge_passk_hi", "edge_pass1_max", "hard_passk_max"):
            require_float(getattr(self, knob), knob, 0.0, 1.0)
        require(self.edge_passk_lo <= self.edge_passk_hi, "edge_passk_lo", self.edge_passk_lo,
                f"<= edge_passk_hi = {self.edge_passk_hi}")

    def task(self, op_max: int | None = None) -> gen.DagSpec:
        """The generator at these shapes (op_max defaults to the largest evaluated op)."""
        return gen.DagSpec(p=self.p, op_max=self.op_max if op_max is None else op_max,
                           max_distractors=self.max_distractors)

    @property
    def id_ops(self) -> list[int]:
        return list(range(self.id_lo, self.id_hi + 1))

    @property
    def eval_ops(self) -> list[int]:
        return list(range(2, self.op_max + 1))

    @property
    def gated_ops(self) -> list[int]:
        """The ID ops pre-training draws (its easy / medium / hard bands with a positive share): a
        base pre-trained without its hard ops (dag-pretrain-hard-exposure) is not gated on them."""
        bands = ((self.id_lo, self.easy_max), (self.easy_max + 1, self.medium_max), (self.medium_max + 1, self.id_hi))
        return [op for (lo, hi), share in zip(bands, self.mix) if share > 0 for op in range(lo, hi + 1)]


# The paper tier's base (spec §11.3: about 5M parameters, values mod 97, ID 2-8, k_max 128; one GPU)
# and RL (spec §11.6), shared by every DAG experiment so that they reuse one stored paper-tier base.
PAPER_BASE = BaseSpec(p=97, op_max=16, max_distractors=4, id_lo=2, id_hi=8, easy_max=3, medium_max=6, d_model=256,
                      n_layers=6, n_heads=8, d_ff=1024, steps=3000, batch=128, lr=1e-3, warmup=150, chunk=500,
                      curve_problems=16, curve_samples=16, eval_problems=64, eval_samples=256, k_max=128)


def model(base: BaseSpec) -> tfm.TransformerSpec:
    task = base.task()
    return tfm.TransformerSpec(vocab_size=task.vocab_size, d_model=base.d_model, n_layers=base.n_layers,
                               n_heads=base.n_heads, n_kv_heads=base.n_heads, d_ff=base.d_ff,
                               max_len=task.prompt_len + task.solution_len, rope=base.rope,
                               token_shift=base.token_shift)


def sampler(task: gen.DagSpec) -> sampling.SamplerSpec:
    return sampling.SamplerSpec(max_new_tokens=task.solution_len, eos_id=EOS_ID, pad_id=PAD_ID)


def shape_op(base: BaseSpec, op: int) -> int:
    """The generator shapes an op is evaluated at: the ID band's for ID ops, else op_max's (two
    compiled shapes instead of one per op; a prompt's padding never changes its tokens' meaning)."""
    return base.id_hi if op <= base.id_hi else base.op_max


def pretrain_op_probs(base: BaseSpec, spec: gen.DagSpec) -> np.ndarray:
    bands = [((base.id_lo, base.easy_max), base.mix[0]), ((base.easy_max + 1, base.medium_max), base.mix[1]),
             ((base.medium_max + 1, base.id_hi), base.mix[2])]
    return mix.op_probs(spec, [(band, share) for band, share in bands if share > 0])


def hard_share_mix(mix_: tuple[float, float, float], hard_share: float) -> tuple[float, float, float]:
    """The pre-training mix with the hard ID band at `hard_share` and the rest split between easy
    and medium in `mix_`'s ratio (spec §6.1's headroom presets), rounded to 12 digits so the same
    share always gives the same base address."""
    h = mix.check_share(hard_share, "hard_share")
    rest = mix_[0] + mix_[1]
    require(rest > 0, "mix", mix_, "an easy or medium share to rescale")
    return (round(mix_[0] * (1 - h) / rest, 12), round(mix_[1] * (1 - h) / rest, 12), round(h, 12))


# Read only by `gate` (judged again on every reuse of a stored base) and `calibrate` (run by each
# experiment on the stored table): no base's training or evaluation table depends on them, so the
# address holds them at these fixed placeholder values (the defaults when bases were first stored).
KEY_JUDGING = {"k_max": 32, "gate_pass1": 0.3, "gate_passk": 0.9, "edge_passk_lo": 0.10, "edge_passk_hi": 0.60,
               "edge_pass1_max": 0.10, "hard_passk_max": 0.0}


def base_key(base: BaseSpec, seed: int) -> dict:
    """The base's content address: every BaseSpec knob its training or evaluation table reads, the
    program version and the seed. The judging knobs enter as the fixed placeholders of KEY_JUDGING
    whatever they are set to, so bases that differ only in them are one base. The evaluation's
    sampling batch (eval_table's max_rows) is part of the program: changing it needs a version bump."""
    keyed = dataclasses.replace(base, **KEY_JUDGING)
    return {"program": PRETRAIN_PROGRAM, "seed": int(seed), "base": dataclasses.asdict(keyed),
            "eval_seed": EVAL_SEED}


# ---------------------------------------------------------------- evaluation


def eval_problems(base: BaseSpec, op: int, num: int, *, context: int = 0, salt: int = 0) -> gen.DagProblems:
    """`num` fixed problems of one op and context (the same for every base and arm)."""
    spec = base.task(shape_op(base, op))
    probs = np.zeros(spec.op_max + 1)
    probs[op] = 1.0
    params = mix.make_params(spec, probs, contexts=np.eye(3)[context])
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(EVAL_SEED), 1000 * salt + 10 * op + context), 0)
    return gen.sample(key, spec, params, num)


def eval_table(base: BaseSpec, params, *, ops=None, context: int = 0, num_problems: int | None = None,
               num_samples: int | None = None, temperature: float | None = None) -> dict:
    """Sample and verify one model on the fixed problems of every op: [O, N, S] arrays perfect,
    answer_correct and strict, with ops [O]. One run's params (no run axis)."""
    ops = base.eval_ops if ops is None else list(ops)
    n = base.eval_problems if num_problems is None else num_problems
    s = base.eval_samples if num_samples is None else num_samples
    temperature = base.temperature if temperature is None else temperature
    spec_m = model(base)
    out = {"perfect": [], "answer_correct": [], "strict": []}
    for op in ops:
        spec = base.task(shape_op(base, op))
        key = jax.random.fold_in(jax.random.key(EVAL_SEED + 1), 100 * op + context)
        res = dag_eval.sample_and_verify(spec_m, sampler(spec), params, spec,
                                         eval_problems(base, op, n, context=context), key, s,
                                         temperature=temperature, max_rows=2048)
        for name in out:
            out[name].append(res[f"{name}_NxS"])
    table = {name: np.stack(v) for name, v in out.items()}
    table["ops"] = np.asarray(ops, np.int64)
    return table


def table_arrays(table: dict, prefix: str) -> dict:
    return {f"{prefix}/{k}": v for k, v in table.items()}


def table_from_arrays(arrays: dict, prefix: str) -> dict:
    """The table `eval_table` stored under "final/<prefix>/..." of a run's arrays."""
    pre = f"final/{prefix}/"
    return {k[len(pre):]: v for k, v in arrays.items() if k.startswith(pre)}


def pass_curves(table: dict, k_max: int, kind: str = "perfect") -> np.ndarray:
    """[O, k_max] unbiased pass@k (k = 1..k_max) per op, mean over problems."""
    flags = np.asarray(table[kind])
    ks = np.arange(1, k_max + 1)
    return np.stack([passk.pass_at_k_curve(np.full(flags.shape[1], flags.shape[2]), flags[o].sum(axis=1), ks)
                     for o in range(flags.shape[0])])


def curve_arrays(tables: dict, keys, k_max: int) -> dict:
    """Per table (rows in `keys` order) and op: process-verified pass@1 and pass@k_max and outcome-only
    pass@k_max, [R, O] each: the arrays experiments save for their figures."""
    curves = [pass_curves(tables[key], k_max) for key in keys]
    outcome = [pass_curves(tables[key], k_max, "answer_correct")[:, -1] for key in keys]
    return {"pass1_RxO": np.stack([c[:, 0] for c in curves]), "passk_RxO": np.stack([c[:, -1] for c in curves]),
            "outcome_passk_RxO": np.stack(outcome)}


def per_problem_pass(table: dict, k: int, kind: str = "perfect") -> np.ndarray:
    """[O, N] unbiased pass@k of every problem (the unit a paired bootstrap resamples)."""
    flags = np.asarray(table[kind])
    return passk.pass_at_k(np.full(flags.shape[:2], flags.shape[2]), flags.sum(axis=2), k)


# ---------------------------------------------------------------- pre-training


def _curve_data(base: BaseSpec) -> dict:
    """Fixed learning-curve problems: curve_problems per ID op, at the ID shapes."""
    parts = [eval_problems(base, op, base.curve_problems, salt=1) for op in base.id_ops]
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)


def _curve_fn(base: BaseSpec):
    """Process-verified pass@1 and pass@S (S = curve_samples) per ID op, at temperature."""
    spec_m, spec = model(base), base.task(base.id_hi)
    samp, num_ops = sampler(spec), len(base.id_ops)

    def score(problems, response_NxT, mask_NxT):
        del mask_NxT
        res = ver.verify(spec, problems, response_NxT)
        return {"perfect": res["perfect_B"], "answer_correct": res["answer_correct_B"]}

    def curves(params, problems):
        prompts, mask = gen.left_padded_prompts(problems)
        key = jax.random.key(EVAL_SEED + 2)
        rollout = sampling.sample(spec_m, params, prompts, mask, key, base.curve_samples, samp,
                                  temperature=base.temperature)
        scores = lm_eval.score_samples(score, problems, rollout)
        perfect_OxNxS = scores["perfect"].reshape(num_ops, base.curve_problems, base.curve_samples)
        answer_OxNxS = scores["answer_correct"].reshape(num_ops, base.curve_problems, base.curve_samples)
        return {"id_pass1": jnp.mean(perfect_OxNxS, axis=(1, 2)),
                "id_passS": jnp.mean(jnp.max(perfect_OxNxS, axis=2), axis=1),
                "id_outcome_pass1": jnp.mean(answer_OxNxS, axis=(1, 2))}

    return curves


def _optim(base: BaseSpec) -> ntp.OptimSpec:
    return ntp.OptimSpec(lr=base.lr, warmup_steps=min(base.warmup, max(base.steps, 1)),
                         total_steps=max(base.steps, 1), schedule="cosine", final_lr_frac=0.1)


def _batch_fn(base: BaseSpec):
    spec = base.task(base.id_hi)
    a = mix.make_params(spec, pretrain_op_probs(base, spec))
    op2 = np.zeros(spec.op_max + 1)
    op2[2] = 1.0
    b = mix.make_params(spec, op2, contexts=np.eye(3)[1])

    def batch(key, step):
        del step
        k_a, k_b, k_pick = jax.random.split(key, 3)
        problems = gen.sample(k_a, spec, a, base.batch)
        if base.b_share > 0:  # static: runs without context B draw exactly what they drew before it existed
            from_b = gen.sample(k_b, spec, b, base.batch)
            pick = jax.random.uniform(k_pick, (base.batch,)) < base.b_share
            problems = jax.tree.map(lambda x, y: jnp.where(pick.reshape((-1,) + (1,) * (x.ndim - 1)), y, x),
                                    problems, from_b)
        return gen.sequences(problems)

    return batch


def pretrain_program(base: BaseSpec) -> Program:
    """NTP from a fresh init (seed in hp, a `lm_runs.PretrainHp`), curves at every chunk, and the
    evaluation table of the trained base as final arrays ("final/eval/...")."""
    curves = _curve_fn(base)
    program = lm_runs.pretrain_program(
        model(base), _optim(base), lambda key, hp, step: _batch_fn(base)(key, step),
        num_chunks=base.steps // base.chunk, steps_per_chunk=base.chunk, data_fn=lambda hp: _curve_data(base),
        eval_fn=lambda params, hp, data: curves(params, data))
    return dataclasses.replace(program, final_fn=partial(_final_with_table, base))


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """Which evaluation table a program writes at its end: `ops` (None: every op 2..op_max) and
    `samples` per problem (None: the base's eval_samples); `none` writes no table (a stage whose
    next stage measures)."""

    ops: tuple[int, ...] | None = None
    samples: int | None = None
    none: bool = False
    contexts: tuple[int, ...] = (0,)  # one table per context, under `table_prefix(context)`


def table_prefix(context: int) -> str:
    """Where a run's arrays keep its table of one context: "eval" (context A) or "eval_c<context>"."""
    return "eval" if context == 0 else f"eval_c{context}"


def _final_with_table(base: BaseSpec, state, table: TableSpec = TableSpec()) -> dict:
    """Trained parameters by key path, plus every run's evaluation table (host loop over runs)."""
    out = lm_runs.params_to_arrays(state.params)
    if table.none:
        return out
    num_runs = jax.tree.leaves(state.params)[0].shape[0]
    for context in table.contexts:
        tables = [eval_table(base, jax.tree.map(lambda x: x[r], state.params), ops=table.ops,
                             num_samples=table.samples, context=context) for r in range(num_runs)]
        for name in tables[0]:
            out[f"{table_prefix(context)}/{name}"] = np.stack([t[name] for t in tables])
    return out


# ---------------------------------------------------------------- gate and bands


@dataclasses.dataclass(frozen=True)
class Bands:
    """Op bands calibrated from a base's table: id (pre-training's), edge and hard (None when the
    base has no such band), with the per-op numbers they were chosen on."""

    id: tuple[int, int]
    edge: tuple[int, int] | None
    hard: tuple[int, int] | None
    pass1: dict
    passk: dict
    rule: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _ops_text(ops: list[int]) -> str:
    return f"{ops[0]}..{ops[-1]}" if ops == list(range(ops[0], ops[-1] + 1)) else ", ".join(map(str, ops))


def gate_requirement(base: BaseSpec, ops=None) -> str:
    which = "pre-trained ID op" if ops is None and base.gated_ops != base.id_ops else "ID op"
    ops = base.gated_ops if ops is None else list(ops)
    return (f"process-verified pass@1 >= {base.gate_pass1} and pass@{base.k_max} >= {base.gate_passk} on every "
            f"{which} {_ops_text(ops)} (n = {base.eval_samples} samples of {base.eval_problems} problems per op "
            f"at T = {base.temperature})")


def gate(base: BaseSpec, run: Run, ops=None) -> Gate:
    """Pass iff pass@1 and pass@k_max reach the thresholds on every op of `ops` (default: the ID ops
    pre-training draws); the record holds every ID op's numbers."""
    ops_gated = base.gated_ops if ops is None else list(ops)
    table = table_from_arrays(run.arrays, "eval")
    curves = pass_curves(table, base.k_max)
    ops_T = [int(o) for o in table["ops"]]
    pass1 = {op: float(curves[i, 0]) for i, op in enumerate(ops_T) if op in base.id_ops}
    passk_ = {op: float(curves[i, -1]) for i, op in enumerate(ops_T) if op in base.id_ops}
    ok = all(pass1[o] >= base.gate_pass1 and passk_[o] >= base.gate_passk for o in ops_gated)
    measured = {"pass1": pass1, f"pass{base.k_max}": passk_}
    if base.steps == 0:
        measured["note"] = "steps = 0: the initial decoder, never trained"
    return Gate(passed=bool(ok), requirement=gate_requirement(base, ops), measured=measured)


def calibrate(base: BaseSpec, table: dict) -> Bands:
    """Edge: the first maximal run of consecutive ops above the ID band whose pass@k_max is in
    [edge_passk_lo, edge_passk_hi] and pass@1 below edge_pass1_max. Hard: the ops above the edge (or
    above the ID band when there is no edge) with pass@k_max <= hard_passk_max, the first maximal
    run of them. Spec §11.5."""
    curves = pass_curves(table, base.k_max)
    ops = [int(o) for o in table["ops"]]
    pass1 = {op: float(curves[i, 0]) for i, op in enumerate(ops)}
    passk_ = {op: float(curves[i, -1]) for i, op in enumerate(ops)}
    above = [op for op in ops if op > base.id_hi]
    is_edge = [base.edge_passk_lo <= passk_[o] <= base.edge_passk_hi and pass1[o] < base.edge_pass1_max
               for o in above]
    edge = _first_run(above, is_edge)
    after = [o for o in above if edge is None or o > edge[1]]
    hard = _first_run(after, [passk_[o] <= base.hard_passk_max for o in after])
    rule = (f"edge: pass@{base.k_max} in [{base.edge_passk_lo}, {base.edge_passk_hi}] and pass@1 < "
            f"{base.edge_pass1_max}; hard: pass@{base.k_max} <= {base.hard_passk_max}; both above the ID band")
    return Bands(id=(base.id_lo, base.id_hi), edge=edge, hard=hard, pass1=pass1, passk=passk_, rule=rule)


def _first_run(ops: list[int], flags: list[bool]) -> tuple[int, int] | None:
    """(first, last) op of the first maximal run of consecutive flagged ops, or None."""
    run: list[int] = []
    for op, flag in zip(ops, flags):
        if flag:
            run.append(op)
        elif run:
            break
    return (run[0], run[-1]) if run else None


# ---------------------------------------------------------------- RL


@dataclasses.dataclass(frozen=True)
class RLKnobs:
    """Static knobs of a DAG RL run (spec §11.6; the quick tier scales steps and batch down).
    reward: a `verify.REWARD_MODES` mode; alpha: its outcome weight for "mix" / "mix_gated".
    kl_coef 0 = no KL term; otherwise k3 in the loss (spec §11.6)."""

    steps: int = 60
    chunk: int = 20
    prompts_per_step: int = 8
    group_size: int = 8
    lr: float = 3e-4
    reward: str = "outcome"
    alpha: float = 0.5
    kl_coef: float = 0.0
    temperature: float = 1.0
    curve_problems: int = 4  # per op 2..op_max, at every chunk (curves only; the verdicts use the table)
    curve_samples: int = 4

    def validate(self) -> None:
        require_int(self.chunk, "chunk", 1, 1_000_000)
        require(is_int(self.steps) and 0 <= self.steps <= 10_000_000 and self.steps % self.chunk == 0, "steps",
                self.steps, f"0 (no RL) or a multiple of chunk = {self.chunk}")
        require_int(self.prompts_per_step, "prompts_per_step", 1, 65_536)
        require_int(self.group_size, "group_size", 2, 1024)
        require_finite_nonneg(self.lr, "lr")
        require(self.reward in ver.REWARD_MODES, "reward", self.reward, " | ".join(ver.REWARD_MODES))
        require_float(self.alpha, "alpha", 0.0, 1.0)
        require_finite_nonneg(self.kl_coef, "kl_coef")
        require_float(self.temperature, "temperature", 0.0, lo_open=True)
        require_int(self.curve_problems, "curve_problems", 1, 65_536)
        require_int(self.curve_samples, "curve_samples", 1, 1024)


PAPER_RL = RLKnobs(steps=200, chunk=20, prompts_per_step=128, group_size=8, lr=3e-5, kl_coef=1e-3, curve_problems=8,
                   curve_samples=8)


def rl_task(spec: gen.DagSpec, reward: str, alpha: float) -> lm_rl.RLTask:
    """Prompts from the run's traced `DagParams` (hp.task), scored by the verifier."""

    def sample_prompts(key, hp: lm_runs.RLHp, n):
        problems = gen.sample(key, spec, hp.task, n)
        prompts, mask = gen.left_padded_prompts(problems)
        return prompts, mask, problems

    def score(problems, response_NxT, mask_NxT):
        del mask_NxT  # the verifier stops at EOS
        res = ver.verify(spec, problems, response_NxT)
        return {"reward": ver.reward(res, reward, alpha), "perfect": res["perfect_B"].astype(jnp.float32),
                "answer_correct": res["answer_correct_B"].astype(jnp.float32),
                "process_reward": res["process_reward_B"]}

    return lm_rl.RLTask(sample_prompts=sample_prompts, score=score)


def question_task(spec: gen.DagSpec, reward: str, alpha: float):
    """The DAG task on fixed questions for `lm_exploration` (Song et al. on this substrate): the
    verifier's reward, "correct" = full reward (what gating reads), "answer" = the stated residue
    (-1 when none), so every residue mod p is one outcome and "no answer" one more."""
    def prompts(problems):
        return gen.left_padded_prompts(problems)

    def score(problems, response_NxT, mask_NxT):
        del mask_NxT  # the verifier stops at EOS
        res = ver.verify(spec, problems, response_NxT)
        r = ver.reward(res, reward, alpha)
        return {"reward": r, "correct": (r >= 1.0).astype(jnp.float32), "answer": res["answer_B"],
                "perfect": res["perfect_B"].astype(jnp.float32),
                "answer_correct": res["answer_correct_B"].astype(jnp.float32)}

    return lx.QuestionTask(prompts=prompts, score=score, num_values=spec.p)


def _rl_curve_data(base: BaseSpec, rl: RLKnobs):
    """Fixed curve problems: rl.curve_problems per op 2..op_max, at the op_max shapes."""
    spec = base.task()
    parts = []
    for op in base.eval_ops:
        probs = np.zeros(spec.op_max + 1)
        probs[op] = 1.0
        key = jax.random.fold_in(jax.random.key(EVAL_SEED + 3), op)
        parts.append(gen.sample(key, spec, mix.make_params(spec, probs), rl.curve_problems))
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)


def _rl_curve_fn(base: BaseSpec, rl: RLKnobs):
    """Process-verified pass@1 per op 2..op_max at the evaluation temperature (a few problems)."""
    spec_m, spec = model(base), base.task()
    samp, num_ops = sampler(spec), len(base.eval_ops)

    def score(problems, response_NxT, mask_NxT):
        del mask_NxT
        return {"perfect": ver.verify(spec, problems, response_NxT)["perfect_B"]}

    def curves(params, hp, problems):
        del hp
        prompts, mask = gen.left_padded_prompts(problems)
        rollout = sampling.sample(spec_m, params, prompts, mask, jax.random.key(EVAL_SEED + 4), rl.curve_samples,
                                  samp, temperature=base.temperature)
        perfect = lm_eval.score_samples(score, problems, rollout)["perfect"]
        return {"op_pass1": jnp.mean(perfect.reshape(num_ops, -1), axis=1)}

    return curves


def rl_spec(rl) -> lm_rl.RLSpec:
    """GRPO with token-mean loss and k3 KL in the loss when kl_coef > 0, from any knobs with
    prompts_per_step, group_size and kl_coef (`RLKnobs`, `explore_runs.ExploreKnobs`)."""
    kl = {} if rl.kl_coef == 0 else {"kl": "loss", "kl_kind": "k3", "kl_coef": rl.kl_coef}
    return lm_rl.RLSpec(prompts_per_step=rl.prompts_per_step, group_size=rl.group_size,
                        advantage=AdvantageSpec(estimator="grpo"), loss=LossSpec(agg="token-mean", **kl))


def rl_program(base: BaseSpec, rl: RLKnobs, shape_op_max: int, table: TableSpec = TableSpec()) -> Program:
    """RL from hp.init_params on prompts drawn from hp.task (a `DagParams` over ops <= shape_op_max,
    the shapes of this program), curves at every chunk, and the evaluation table at the end."""
    spec = base.task(shape_op_max)
    optim = ntp.OptimSpec(lr=rl.lr, warmup_steps=0, total_steps=max(rl.steps, 1), schedule="constant",
                          weight_decay=0.0)
    program = lm_runs.rl_program(model(base), sampler(spec), rl_spec(rl), optim, rl_task(spec, rl.reward, rl.alpha),
                                 num_chunks=rl.steps // rl.chunk, steps_per_chunk=rl.chunk,
                                 data_fn=lambda hp: _rl_curve_data(base, rl), eval_fn=_rl_curve_fn(base, rl))
    return dataclasses.replace(program, final_fn=partial(_final_with_table, base, table=table))


def rl_hp(base_params, task_params: gen.DagParams, seed: int, rl: RLKnobs) -> lm_runs.RLHp:
    return lm_runs.RLHp(seed=np.int32(seed), lr_scale=np.float32(1.0), temperature=np.float32(rl.temperature),
                        top_p=np.float32(1.0), init_params=base_params, task=task_params)


def band_params(base: BaseSpec, bands, shape_op_max: int, context_probs=None) -> gen.DagParams:
    """DagParams uniform over the ops of the given (lo, hi) bands (ops counted once)."""
    spec = base.task(shape_op_max)
    probs = np.zeros(spec.op_max + 1)
    for lo, hi in bands:
        probs[lo:hi + 1] = 1.0
    return mix.make_params(spec, probs / probs.sum(), contexts=context_probs)


# ---------------------------------------------------------------- paired comparisons


@dataclasses.dataclass(frozen=True)
class Gain:
    """Paired difference a - b of mean pass@k over the same problems, with a percentile bootstrap
    interval over problems and its standard error (the bootstrap's standard deviation)."""

    a: float
    b: float
    diff: float
    lo: float
    hi: float
    se: float
    num_problems: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def paired_gain(table_a: dict, table_b: dict, ops, k: int, *, kind: str = "perfect", num_resamples: int = 2000,
                alpha: float = 0.05, seed: int = 0) -> Gain:
    """a - b on the problems of `ops`, where a and b were sampled on the same fixed problems (tables
    of `eval_table`)."""
    return paired_gain_rows(band_rows(table_a, ops, k, kind), band_rows(table_b, ops, k, kind),
                            num_resamples=num_resamples, alpha=alpha, seed=seed)


def cluster_weights(clusters, num_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """[R, n] bootstrap draw counts of n rows grouped in clusters (e.g. the seeds whose problems were
    pooled): each resample draws the clusters with replacement, then each drawn cluster's rows with
    replacement, so seed-to-seed variation (one base per seed) widens the interval as it should."""
    clusters = np.asarray(clusters)
    members = [np.flatnonzero(clusters == c) for c in np.unique(clusters)]
    weights = np.zeros((num_resamples, clusters.size))
    picks = rng.integers(0, len(members), size=(num_resamples, len(members)))
    for r in range(num_resamples):
        for c in picks[r]:
            np.add.at(weights[r], members[c][rng.integers(0, members[c].size, size=members[c].size)], 1.0)
    return weights


def crossed_weights(num_rows: int, clusters, num_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """[R, N] draw counts of rows pooled seed by seed (`clusters`: each row's seed) when every seed
    was evaluated on the same fixed problems in the same order (`eval_problems` and the RLVR sets do
    not depend on the seed): seeds and problems are crossed, so each resample draws seeds with
    replacement and one problem-index vector, applied to every drawn seed. Resampling each seed's
    problems on their own (`cluster_weights`) would count the shared problem effect as independent
    across seeds and make the intervals too narrow. Rows that are not equal seed-major blocks fall
    back to the nested `cluster_weights`; one seed is the plain bootstrap over rows."""
    def counts(n: int) -> np.ndarray:
        idx = rng.integers(0, n, size=(num_resamples, n))
        flat = (np.arange(num_resamples)[:, None] * n + idx).ravel()
        return np.bincount(flat, minlength=num_resamples * n).reshape(num_resamples, n).astype(float)

    if clusters is None or np.unique(np.asarray(clusters)).size <= 1:
        return counts(num_rows)
    clusters = np.asarray(clusters)
    seeds = list(dict.fromkeys(clusters.tolist()))  # in pooling order
    per = num_rows // len(seeds)
    blocked = all(np.all(clusters[i * per:(i + 1) * per] == s) for i, s in enumerate(seeds))
    if per * len(seeds) != num_rows or not blocked:
        return cluster_weights(clusters, num_resamples, rng)
    seed_w, problem_w = counts(len(seeds)), counts(per)
    return (seed_w[:, :, None] * problem_w[:, None, :]).reshape(num_resamples, num_rows)


def same_problems(ops_by_seed) -> bool:
    """Whether rows pooled seed by seed over these per-seed op lists are the same problems for every
    seed (the `crossed` argument of the paired gains): fixed bands yes, per-seed calibrated bands
    only when every seed calibrated the same ops."""
    return len({tuple(int(o) for o in ops) for ops in ops_by_seed}) <= 1


def _single_cluster(clusters, n: int) -> bool:
    return clusters is None or np.unique(np.asarray(clusters)).size <= 1 or n == 0


def _weights(clusters, n: int, num_resamples: int, rng: np.random.Generator, crossed: bool) -> np.ndarray:
    return crossed_weights(n, clusters, num_resamples, rng) if crossed else cluster_weights(clusters, num_resamples, rng)


def paired_gain_rows(a_rows, b_rows, *, clusters=None, crossed: bool = False, num_resamples: int = 2000,
                     alpha: float = 0.05, seed: int = 0) -> Gain:
    """Gain of per-problem values a_rows - b_rows (matched row by row, e.g. pooled over seeds); NaN
    with no rows. `clusters` (one label per row, e.g. its seed): a cluster bootstrap over them, crossed
    with the problems (`crossed_weights`) when every seed's rows are the same problems (`crossed`,
    see `same_problems`), else nested (`cluster_weights`); with one cluster (or None) the plain
    bootstrap over rows."""
    a_rows, b_rows = np.asarray(a_rows, np.float64), np.asarray(b_rows, np.float64)
    if a_rows.shape != b_rows.shape or a_rows.ndim != 1:
        raise ValueError(f"paired rows must be two equal 1-D arrays, got {a_rows.shape} and {b_rows.shape}")
    if clusters is not None and np.shape(clusters) != a_rows.shape:
        raise ValueError(f"clusters must label every row: {np.shape(clusters)} for {a_rows.shape} rows")
    if a_rows.size == 0:
        return Gain(*(float("nan"),) * 6, 0)
    diff = a_rows - b_rows
    rng = np.random.default_rng(seed)
    if _single_cluster(clusters, diff.size):
        boots = diff[rng.integers(0, diff.size, size=(num_resamples, diff.size))].mean(axis=1)
    else:
        w = _weights(clusters, diff.size, num_resamples, rng, crossed)
        boots = (w @ diff) / w.sum(axis=1)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    se = float(boots.std(ddof=1)) if num_resamples > 1 else float("nan")
    return Gain(float(a_rows.mean()), float(b_rows.mean()), float(diff.mean()), float(lo), float(hi), se,
                int(diff.size))


def seed_clusters(rows_by_seed) -> np.ndarray:
    """The seed of every row of rows pooled seed by seed (`rows_by_seed`: (seed, rows) pairs, in
    pooling order): the clusters of `paired_gain_rows`' cluster bootstrap."""
    return np.concatenate([np.full(np.asarray(rows).shape[0], int(s)) for s, rows in rows_by_seed] or [np.zeros(0, int)])


def band_rows(table: dict, ops, k: int, kind: str = "perfect") -> np.ndarray:
    """[problems of `ops`] per-problem pass@k, ops in the given order (absent ops skipped)."""
    ops_T = [int(o) for o in table["ops"]]
    per = per_problem_pass(table, k, kind)
    picked = [per[ops_T.index(o)] for o in ops if o in ops_T]
    return np.concatenate(picked) if picked else np.zeros(0)


def band_pass(table: dict, ops, k: int, kind: str = "perfect") -> float:
    rows = band_rows(table, ops, k, kind)
    return float(rows.mean()) if rows.size else float("nan")


def pool_tables(tables: list[dict]) -> dict:
    """Tables of the same ops (e.g. one per seed) as one, problems concatenated."""
    ops = tables[0]["ops"]
    if any(not np.array_equal(t["ops"], ops) for t in tables):
        raise ValueError("pooled tables must cover the same ops")
    out = {k: np.concatenate([t[k] for t in tables], axis=1) for k in tables[0] if k != "ops"}
    out["ops"] = ops
    return out


def hacking_rate(table: dict, ops) -> float:
    """P(answer right and process wrong | answer right) pooled over the samples of `ops` (spec
    §11.10, as `verify.hacking_rate`); NaN when no answer there is right."""
    hacked, right = hacking_rows(table, ops)
    return float(hacked.sum() / right.sum()) if right.sum() else float("nan")


def hacking_rows(table: dict, ops) -> tuple[np.ndarray, np.ndarray]:
    """Per problem of `ops`: (hacked, right) sample counts, hacked = answer right and not perfect."""
    ops_T = [int(o) for o in table["ops"]]
    idx = [ops_T.index(o) for o in ops if o in ops_T]
    if not idx:
        return np.zeros(0), np.zeros(0)
    answer = np.concatenate([np.asarray(table["answer_correct"][i], bool) for i in idx])
    perfect = np.concatenate([np.asarray(table["perfect"][i], bool) for i in idx])
    return (answer & ~perfect).sum(axis=1).astype(np.float64), answer.sum(axis=1).astype(np.float64)


def paired_ratio_gain(num_a, den_a, num_b, den_b, *, clusters=None, crossed: bool = False, num_resamples: int = 2000,
                      alpha: float = 0.05, seed: int = 0) -> Gain:
    """a - b of pooled ratios sum(num) / sum(den) (e.g. hacking rates), problems resampled jointly for
    both (paired); NaN where a ratio has no denominator. `clusters`, `crossed` as in `paired_gain_rows`."""
    arrays = [np.asarray(x, np.float64) for x in (num_a, den_a, num_b, den_b)]
    n = arrays[0].size
    if any(x.shape != (n,) for x in arrays):
        raise ValueError("paired ratio rows must be four equal 1-D arrays")
    if clusters is not None and np.shape(clusters) != (n,):
        raise ValueError(f"clusters must label every row: {np.shape(clusters)} for {n} rows")

    def ratio(num, den):  # denominators may be fractions (e.g. headroom 1 - pass@1), not only counts
        total = den.sum(axis=-1)
        return np.where(total > 0, num.sum(axis=-1) / np.where(total > 0, total, 1.0), np.nan)

    a, b = float(ratio(arrays[0], arrays[1])), float(ratio(arrays[2], arrays[3]))
    if n == 0 or not (np.isfinite(a) and np.isfinite(b)):
        return Gain(a, b, a - b, float("nan"), float("nan"), float("nan"), n)
    rng = np.random.default_rng(seed)
    if _single_cluster(clusters, n):
        idx = rng.integers(0, n, size=(num_resamples, n))
        boots = ratio(arrays[0][idx], arrays[1][idx]) - ratio(arrays[2][idx], arrays[3][idx])
    else:
        w = _weights(clusters, n, num_resamples, rng, crossed)
        boots = ratio(w * arrays[0], w * arrays[1]) - ratio(w * arrays[2], w * arrays[3])
    boots = boots[np.isfinite(boots)]
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return Gain(a, b, a - b, float(lo), float(hi), float(boots.std(ddof=1)), n)


# ---------------------------------------------------------------- stages shared by the DAG experiments


def pretrain_plans(base: BaseSpec, seeds) -> list[RunPlan]:
    """One stored base per seed, all one vmapped program (its bucket names the static knobs)."""
    static = {k: v for k, v in base_key(base, 0).items() if k != "seed"}
    return [RunPlan(row={"seed": int(seed)}, bucket=("pretrain", run_id(static)), label="pretrain",
                    hp=lm_runs.PretrainHp(seed=np.int32(seed), lr_scale=np.float32(1.0)),
                    build=partial(pretrain_program, base), base_key=base_key(base, seed))
            for seed in seeds]


def pretrain_stage(base: BaseSpec, seeds) -> Stage:
    return Stage("pretrain", lambda runs: pretrain_plans(base, seeds), store_bases=True, gate=partial(gate, base))


def pretrain_stage_over(bases: dict, seeds, knob: str, gate_ops=None) -> Stage:
    """One stored base per (knob value, seed) for experiments whose arms differ in pre-training
    (`bases`: knob value -> BaseSpec); rows carry `knob`. Each base is gated by its own spec, on
    `gate_ops` when given (the same ops for every arm, so the gate does not select on the knob)."""

    def plans(runs) -> list[RunPlan]:
        return [dataclasses.replace(plan, row={**plan.row, knob: value})
                for value, base in bases.items() for plan in pretrain_plans(base, seeds)]

    return Stage("pretrain", plans, store_bases=True, gate=lambda run: gate(bases[run.row[knob]], run, gate_ops))


def split_table(table: dict) -> tuple[dict, dict]:
    """(calibration half, evaluation half) of a table: its first and second halves of problems.

    The bands are chosen on the first half and every gain is measured on the second. Choosing the
    hard band as "the ops where the base scored 0" and then measuring gains on those same problems
    would credit any arm that merely samples differently with a gain (regression to the mean from a
    selected 0); problems drawn independently of the selection carry no such bias."""
    half = table["perfect"].shape[1] // 2
    calib = {k: (v if k == "ops" else v[:, :half]) for k, v in table.items()}
    evaluation = {k: (v if k == "ops" else v[:, half:]) for k, v in table.items()}
    return calib, evaluation


def eval_half(arrays: dict, context: int = 0) -> dict:
    """The evaluation half of the table (of one context) stored in a run's arrays."""
    return split_table(table_from_arrays(arrays, table_prefix(context)))[1]


def seed_status(base: BaseSpec, run: Run, need=("edge", "hard")) -> tuple[Bands, str | None]:
    """A base run's bands, calibrated on the first half of its table, and why its seed is left out
    of the verdicts (None: judged)."""
    bands = calibrate(base, split_table(table_from_arrays(run.arrays, "eval"))[0])
    if run.gate is None or not run.gate.passed:
        return bands, "base failed its gate"
    missing = [name for name in need if getattr(bands, name) is None]
    return bands, (f"base has no {' and no '.join(missing)} band" if missing else None)


def ops_of(band) -> list[int]:
    return [] if band is None else list(range(band[0], band[1] + 1))


def gates(runs, seeds) -> dict:
    """seed -> the base's gate record (None where the base has no gate)."""
    out = {}
    for seed in seeds:
        gate_ = runs.one(stage="pretrain", seed=int(seed)).gate
        out[int(seed)] = None if gate_ is None else gate_.to_dict()
    return out


# ---------------------------------------------------------------- mid-training and compute matching


def rl_token_equivalents(prompts_per_step: int, group_size: int, rollout_len: int) -> float:
    """Pre-training-token equivalents of one RL step, spec §8: T_RL = (5/3) N G L (an RL token costs
    ~10 P FLOPs: 2 P to sample, 2 P for the reference pass, 6 P to train; a pre-training token 6 P)."""
    return 5.0 / 3.0 * prompts_per_step * group_size * rollout_len


def split_budget(budget_tokens: float, cpt_fraction: float, cpt_tokens_per_step: float,
                 rl_tokens_per_step: float) -> tuple[int, int]:
    """(CPT steps, RL steps) spending `cpt_fraction` of the budget on mid-training and the rest on
    RL, each rounded to the nearest whole step (spec §8: budgets round to the step sizes)."""
    cpt = mix.check_share(cpt_fraction, "cpt_fraction")
    require(budget_tokens > 0, "budget", budget_tokens, "a positive number of token equivalents")
    return (int(round(cpt * budget_tokens / cpt_tokens_per_step)),
            int(round((1.0 - cpt) * budget_tokens / rl_tokens_per_step)))


def midtrain_program(base: BaseSpec, shape_op_max: int, *, steps: int, chunk: int, lr: float, batch: int,
                     table: TableSpec = TableSpec()) -> Program:
    """Continued pre-training (NTP, spec §6.2 / §11.9) from hp.init_params (an `lm_runs.RLHp`'s: the
    base) on problems drawn from hp.task (a `DagParams`, traced, so mixtures of equal shapes share a
    bucket) at the shapes of op `shape_op_max`; constant lr after a 10% warmup. The base's learning
    curves on the ID ops at every chunk, the evaluation table at the end."""
    spec_m, spec = model(base), base.task(shape_op_max)
    optim = ntp.OptimSpec(lr=lr, warmup_steps=max(1, steps // 10), total_steps=max(steps, 1), schedule="constant")
    curves = _curve_fn(base)

    def init_fn(hp: lm_runs.RLHp):
        tx = ntp.make_optimizer(optim, lr_scale=hp.lr_scale)
        return lm_rl.TrainState(hp.init_params, tx.init(hp.init_params), jnp.int32(0))

    def chunk_fn(state: lm_rl.TrainState, hp: lm_runs.RLHp, data):
        tx = ntp.make_optimizer(optim, lr_scale=hp.lr_scale)
        # the seed's data stream, folded apart from its pre-training batches
        key = jax.random.fold_in(prng.stream_key(prng.root_key(hp.seed), prng.Stream.DATA), 1)

        def batch_fn(k, t):
            del t
            return gen.sequences(gen.sample(k, spec, hp.task, batch))

        params, opt, metrics = ntp.ntp_chunk(spec_m, tx, batch_fn, state.params, state.opt, key, state.step, chunk)
        metrics = {name: jnp.mean(v, axis=0) for name, v in metrics.items()}
        metrics.update(curves(params, data))
        return lm_rl.TrainState(params, opt, state.step + chunk), metrics

    return Program(data_fn=lambda hp: _curve_data(base), init_fn=init_fn, chunk_fn=chunk_fn, num_chunks=steps // chunk,
                   steps_per_chunk=chunk, final_fn=partial(_final_with_table, base, table=table))


def band_ci(table: dict, ops, k: int, kind: str = "perfect", *, num_resamples: int = 2000, alpha: float = 0.05,
            seed: int = 0) -> tuple[float, float, float]:
    """(mean, lo, hi): pass@k over the problems of `ops` with a percentile bootstrap interval over
    problems; NaNs with no problem."""
    rows = band_rows(table, ops, k, kind)
    if rows.size == 0:
        return float("nan"), float("nan"), float("nan")
    boots = rows[np.random.default_rng(seed).integers(0, rows.size, size=(num_resamples, rows.size))].mean(axis=1)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return float(rows.mean()), float(lo), float(hi)
