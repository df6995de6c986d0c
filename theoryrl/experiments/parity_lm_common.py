"""Shared pieces of the parity transformer experiments (spec parity_cot.md §5 #3-#4): the model and
NTP recipe (`LMSetup`), online demonstration batches, the RL task, the evaluation, an NTP
pre-training `Program` that keeps the checkpoints RL starts from, and the pieces that make it a
stored base (`PretrainSpec`, `pretrain_plan` with its base key, the gates `chain_learned_gate` and
`good_reached_gate`, `gate_failures` for not-judged claims, `rl_hp` for RL from a base).

Used by parity-threshold (its "transformer" family), parity-rl, parity-leap2 and parity-separation.

Sequence format (spec §7 #1, tasks/parity.py): `BOS x_1..x_d SEP y_1..y_k EOS`, loss on the output
tokens (flag `include_inputs` adds the input bits and SEP), the Llama-style decoder of
models/transformer.py (RoPE: relative positions; BOS anchors the start). Responses are sampled
with at most d + 1 new tokens (a full chain and its EOS).

Evaluation (`evaluate`, on fixed eval inputs, metric names shared with the AR-linear family):
- greedy: acc (final answer right = r_e2e), greedy_cot (r_cot), greedy_long (greedy output is a
  chain of the full length), greedy_len_median / greedy_len_mean (output bits before EOS: 1 for a
  short answer, the chain length for a long one, d + 1 when there is no EOS);
- sampled at tau = 1, one sample per input: sampled_long, sampled_long_correct (r_cot and long),
  sampled_short_correct (r_cot and short);
- teacher forced (exact, no sampling): pi_long_correct / pi_short_correct (mean over x of the
  model's probability of the correct chain / answer with its EOS), p_first_x1 (P(y_1 = the first
  chain token), x_1 for the full chain), p_eos_x1 (P(EOS | y_1 = the first chain token)), and
  chain_token_acc: the argmax accuracy on the long demonstration's tokens y_2..y_k and the final
  EOS, where at y_2 the argmax is over the two bits only (whether to continue after y_1 is the
  mixture's calibrated choice, not part of knowing the chain). This is spec §7 #3's
  "teacher-forced per-token accuracy on long chains"; chain_q: P(whole chain right | long output),
  the mean over x of the product over y_2..y_k of the model's probability of the right bit among
  the two bits (given the right prefix; a long output is one that continues with bits to the end).
  At per-token accuracy ~0.6, q is ~0.6^(k-1): RL from there mostly samples wrong chains.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core import prng
from theoryrl.core.config import is_int, require, require_finite_nonneg, require_int, require_ints
from theoryrl.core.bases import Gate
from theoryrl.core.stages import Program, Run, RunPlan
from theoryrl.models import transformer as tfm
from theoryrl.rl import lm_rl, lm_runs, ntp, sampling
from theoryrl.tasks import parity

@dataclasses.dataclass(frozen=True)
class LMSetup:
    """The decoder and its NTP recipe. Defaults: spec §7 #2 (GPT-2-size L = 4, width 128, 4 heads,
    AdamW lr 1e-3, warmup 1000, batch 512, fresh samples every step); the tiers shrink them."""

    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    batch: int = 512
    lr: float = 1e-3
    warmup_steps: int = 1000
    weight_decay: float = 0.0
    include_inputs: bool = False
    eval_prompts: int = 1024

    def validate(self) -> None:
        # sizes ~16x the spec's decoder (width 128, 4 layers, 4 heads, batch 512): what one accelerator holds
        # for sequences of up to 2 d + 3 = 515 tokens (d <= 256, check_ds)
        require_int(self.n_heads, "n_heads", 1, 64)
        require(is_int(self.d_model) and 8 <= self.d_model <= 2048 and self.d_model % self.n_heads == 0
                and (self.d_model // self.n_heads) % 2 == 0, "d_model", self.d_model,
                f"8..2048, divisible by n_heads = {self.n_heads} with an even head size")
        require_int(self.n_layers, "n_layers", 1, 48)
        require_int(self.batch, "batch", 1, 16_384)
        require_finite_nonneg(self.lr, "lr")  # 0: learning switched off (issue 20)
        require_int(self.warmup_steps, "warmup_steps", 0, 10_000_000)
        require_finite_nonneg(self.weight_decay, "weight_decay")
        require_int(self.eval_prompts, "eval_prompts", 16, 65_536)


def check_ds(values, knob: str, lo: int = 3, hi: int = 256) -> None:
    """Parity input length(s) d (an int or a tuple) in lo..hi: sequences are 2 d + 3 tokens (chain and
    answer) and the AR-linear model holds O(d^2) weights; hi = 256 is 5x the spec's largest d (50)."""
    if isinstance(values, (tuple, list)):
        require_ints(values, knob, lo, hi, allowed=f"integers in {lo}..{hi}")
    else:
        require_int(values, knob, lo, hi)


def model_spec(setup: LMSetup, d: int) -> tfm.TransformerSpec:
    task = parity.ParitySpec(d)
    return tfm.TransformerSpec(vocab_size=parity.VOCAB_SIZE, d_model=setup.d_model, n_layers=setup.n_layers,
                               n_heads=setup.n_heads, n_kv_heads=setup.n_heads, max_len=task.seq_len)


def sampler_spec(d: int, greedy: bool = False) -> sampling.SamplerSpec:
    return sampling.SamplerSpec(max_new_tokens=d + 1, eos_id=parity.EOS_TOKEN, pad_id=parity.PAD_TOKEN, greedy=greedy)


def ntp_optim(setup: LMSetup, total_steps: int) -> ntp.OptimSpec:
    """AdamW, linear warmup, then cosine decay to lr/10 at `total_steps` (the spec names no decay; at a
    constant lr the calibrated P(EOS | y_1 = x_1) keeps fluctuating by ~0.1 from chunk to chunk, enough
    to flip greedy decoding on some inputs at p_cot = 0.25)."""
    # total_steps 0 (learning switched off, issue 20): no step is taken, the schedule only needs a horizon >= 1
    return ntp.OptimSpec(lr=setup.lr, warmup_steps=min(setup.warmup_steps, total_steps),
                         total_steps=max(total_steps, 1), schedule="cosine", final_lr_frac=0.1,
                         weight_decay=setup.weight_decay)


def rl_optim(lr: float, total_steps: int) -> ntp.OptimSpec:
    """The RL / STaR optimiser: AdamW at a constant lr, no warmup, no weight decay."""
    return ntp.OptimSpec(lr=lr, warmup_steps=0, total_steps=max(total_steps, 1), schedule="constant")


def demo_batch(key, d: int, p_cot, batch: int, leap: int = 1, include_inputs: bool = False):
    """A fresh batch of D(p_cot) demonstrations as (tokens_BxS, loss_mask_BxS); p_cot may be traced."""
    k_x, k_z = jax.random.split(key)
    x_BxD = parity.sample_prompts(k_x, d, batch)
    is_long_B = jax.random.bernoulli(k_z, p_cot, (batch,))
    return parity.encode_demos(x_BxD, is_long_B, leap, include_inputs)


def rl_task(d: int, leap: int = 1, reward: str = "cot") -> lm_rl.RLTask:
    """Prompts `BOS x SEP` drawn online; reward r_cot or r_e2e of the decoded response."""
    if reward not in parity.REWARDS:
        raise ValueError(f"reward must be one of {parity.REWARDS}, got {reward!r}")
    n = parity.chain_len(d, leap)

    def sample_prompts(key, hp, num):
        x_NxD = parity.sample_prompts(key, d, num)
        return parity.encode_prompts(x_NxD), None, x_NxD

    def score(x_NxD, response_NxT, mask_NxT):
        codes, length = parity.decode_outputs(response_NxT, mask_NxT)
        cot = parity.rewards("cot", x_NxD, codes, length, leap)
        e2e = parity.rewards("e2e", x_NxD, codes, length, leap)
        return {"reward": cot if reward == "cot" else e2e, "cot": cot, "e2e": e2e,
                "long": (length == n).astype(jnp.float32), "length": length.astype(jnp.float32)}

    return lm_rl.RLTask(sample_prompts=sample_prompts, score=score)


def eval_prompts(hp: lm_runs.PretrainHp | lm_runs.RLHp, d: int, num: int) -> jax.Array:
    """The run's fixed eval inputs (EVAL stream, step 0)."""
    return parity.sample_prompts(prng.step_key(prng.root_key(hp.seed), prng.Stream.EVAL, 0), d, num)


def _decode(model, params, prompts, key, greedy: bool, d: int):
    rollout = sampling.sample(model, params, prompts, None, key, 1, sampler_spec(d, greedy))
    return parity.decode_outputs(rollout.tokens_PxGxT[:, 0], rollout.mask_PxGxT[:, 0])


def _teacher_forced(model, params, x_MxD, leap: int) -> dict:
    m, d = x_MxD.shape
    n, plen = parity.chain_len(d, leap), d + 2
    tok_long, mask_long = parity.encode_demos(x_MxD, jnp.ones((m,), bool), leap)
    tok_short, mask_short = parity.encode_demos(x_MxD, jnp.zeros((m,), bool), leap)
    tokens = jnp.concatenate([tok_long, tok_short])
    logp_all = jax.nn.log_softmax(tfm.forward(model, params, tokens).logits_BxTxV[:, :-1], axis=-1)
    logp_tok = jnp.take_along_axis(logp_all, tokens[:, 1:, None], axis=-1)[..., 0]  # [2M, S-1]
    seq_logp = jnp.sum(logp_tok * jnp.concatenate([mask_long, mask_short])[:, 1:], axis=1)
    # logits row s predicts token s + 1: rows plen .. plen + n - 1 predict y_2 .. y_n and the EOS
    chain_logp = logp_all[:m, plen:plen + n]
    chain_logp = chain_logp.at[:, 0, parity.EOS_TOKEN].set(-jnp.inf)  # y_2: bits only (see module docstring)
    hit = jnp.argmax(chain_logp, axis=-1) == tok_long[:, plen + 1:plen + n + 1]
    # chain_q: rows plen .. plen + n - 2 predict the bits y_2 .. y_n; the right bit's share of the two bits
    bits_logp = logp_all[:m, plen:plen + n - 1][..., jnp.array([parity.PLUS_TOKEN, parity.MINUS_TOKEN])]
    right_logp = jnp.take_along_axis(logp_all[:m, plen:plen + n - 1], tok_long[:, plen + 1:plen + n, None],
                                     axis=-1)[..., 0]
    q_M = jnp.exp(jnp.sum(right_logp - jax.nn.logsumexp(bits_logp, axis=-1), axis=1))
    return {"chain_q": jnp.mean(q_M),
            "pi_long_correct": jnp.mean(jnp.exp(seq_logp[:m])), "pi_short_correct": jnp.mean(jnp.exp(seq_logp[m:])),
            "p_first_x1": jnp.mean(jnp.exp(logp_tok[:m, plen - 1])),
            "p_eos_x1": jnp.mean(jnp.exp(logp_all[:m, plen, parity.EOS_TOKEN])),
            "chain_token_acc": jnp.mean(hit.astype(jnp.float32))}


def evaluate(model: tfm.TransformerSpec, params, x_MxD: jax.Array, key, leap: int = 1) -> dict:
    """Greedy, sampled (tau = 1) and teacher-forced metrics on inputs x (see module docstring)."""
    if x_MxD.ndim != 2:
        raise ValueError(f"x_MxD must be [M, d], got shape {x_MxD.shape}")
    d = x_MxD.shape[1]
    n = parity.chain_len(d, leap)
    prompts = parity.encode_prompts(x_MxD)
    g_out, g_len = _decode(model, params, prompts, key, True, d)
    s_out, s_len = _decode(model, params, prompts, jax.random.fold_in(key, 1), False, d)
    s_cot = parity.rewards("cot", x_MxD, s_out, s_len, leap)
    g_len_f = g_len.astype(jnp.float32)
    return {"acc": jnp.mean(parity.rewards("e2e", x_MxD, g_out, g_len, leap)),
            "greedy_cot": jnp.mean(parity.rewards("cot", x_MxD, g_out, g_len, leap)),
            "greedy_long": jnp.mean((g_len == n).astype(jnp.float32)),
            "greedy_len_median": jnp.median(g_len_f), "greedy_len_mean": jnp.mean(g_len_f),
            "sampled_long": jnp.mean((s_len == n).astype(jnp.float32)),
            "sampled_long_correct": jnp.mean(s_cot * (s_len == n)),
            "sampled_short_correct": jnp.mean(s_cot * (s_len == 1)),
            **_teacher_forced(model, params, x_MxD, leap)}


def eval_key(hp: lm_runs.PretrainHp | lm_runs.RLHp):
    """One fixed key per run for the sampled eval metrics (common random numbers across chunks)."""
    return prng.step_key(prng.root_key(hp.seed), prng.Stream.EVAL, 1)


# ----------------------------------------------------------------------------------------------
# NTP pre-training with the checkpoints RL starts from


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DemoMix:
    """The traced task knob of parity pre-training (`lm_runs.PretrainHp.task`): the demonstration
    mixture D(p_cot), a long chain with probability p_cot, else the short answer."""

    p_cot: jax.Array  # float32 []


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PretrainState:
    """One NTP run between chunks: parameters, optimiser state, steps taken, and with `snapshots` the
    checkpoints RL starts from (None without): "good" and "early" params, the steps they were taken
    at, and the chain-token accuracy and chain_q at "early" (see pretrain_program)."""

    params: Any
    opt: Any
    step: jax.Array  # int32 []
    good: Any = None
    good_step: jax.Array | None = None  # int32 [], -1 until "good" is reached
    early: Any = None
    early_step: jax.Array | None = None  # int32 [], 0 = the initial params
    early_chain_acc: jax.Array | None = None  # float32 []
    early_q: jax.Array | None = None  # float32 []


def _where_tree(cond, new, old):
    return jax.tree.map(lambda a, b: jnp.where(cond, a, b), new, old)


def _update_snapshots(state: PretrainState, new: PretrainState, ev: dict, p_cot, *, good_acc: float,
                      good_pi_frac: float, early_q_min: float, early_q_max: float) -> PretrainState:
    """`new` with the snapshot fields updated (see pretrain_program): "good" is taken once, at the first
    chunk that meets its criterion; "early" once, at the first chunk with early_q_min <= chain_q <=
    early_q_max (issue 20: a model that gets the whole chain right in at least half of its long
    outputs, not one whose long outputs are nearly all wrong, where any outcome reward must shorten
    the output). The two are independent: argmax chain-token accuracy reaches 0.99 while chain_q
    is still ~0.6 (quick tier, d = 8), so the q window mostly lies after "good" is first reached."""
    before_good = state.good_step < 0
    reach = before_good & (ev["chain_token_acc"] >= good_acc) & (ev["pi_long_correct"] >= good_pi_frac * p_cot)
    early = (state.early_step <= 0) & (ev["chain_q"] >= early_q_min) & (ev["chain_q"] <= early_q_max)
    return dataclasses.replace(new, good=_where_tree(reach, new.params, state.good),
                               good_step=jnp.where(reach, new.step, state.good_step),
                               early=_where_tree(early, new.params, state.early),
                               early_step=jnp.where(early, new.step, state.early_step),
                               early_chain_acc=jnp.where(early, ev["chain_token_acc"], state.early_chain_acc),
                               early_q=jnp.where(early, ev["chain_q"], state.early_q))


def pretrain_program(setup: LMSetup, d: int, *, leap: int = 1, steps: int, steps_per_chunk: int,
                     snapshots: bool = False, good_acc: float = 0.99, good_pi_frac: float = 0.0,
                     early_q_min: float = 0.5, early_q_max: float = 0.99, learned_acc: float = 0.99,
                     stop_at: str | None = None) -> Program:
    """NTP on fresh D(p_cot) batches; hp: `pretrain_hp(seed, p_cot)` (an lm_runs.PretrainHp whose task is a
    DemoMix). State: a PretrainState. Metrics per chunk: the step means of loss / token_acc, `evaluate`
    on the run's eval inputs, samples seen, and learned (greedy accuracy >= learned_acc).

    snapshots: also keep "good" = the first chunk-end params with chain_token_acc >= good_acc and
    pi_long_correct >= good_pi_frac * p_cot (the final params when never reached; good_step = -1)
    and "early" = the first chunk-end params with early_q_min <= chain_q <= early_q_max (the initial
    params when none; early_step = 0); final arrays "params/...", "good_params/...",
    "early_params/..." (lm_runs.params_from_arrays with prefix "final/good_params/"). stop_at: a
    metric name (e.g. "good_reached" or "learned") that ends the bucket once every run has it set.
    """
    model = model_spec(setup, d)
    optim = ntp_optim(setup, steps)
    if steps % steps_per_chunk:
        raise ValueError(f"steps {steps} must be a multiple of steps_per_chunk {steps_per_chunk}")

    def data_fn(hp: lm_runs.PretrainHp):
        return {"x_eval": eval_prompts(hp, d, setup.eval_prompts)}

    def init_fn(hp: lm_runs.PretrainHp):
        params = tfm.init_params(model, prng.stream_key(prng.root_key(hp.seed), prng.Stream.INIT))
        state = PretrainState(params=params, opt=ntp.make_optimizer(optim, hp.lr_scale).init(params),
                              step=jnp.int32(0))
        if snapshots:
            state = dataclasses.replace(state, good=params, early=params, good_step=jnp.int32(-1),
                                        early_step=jnp.int32(0), early_chain_acc=jnp.float32(0.0),
                                        early_q=jnp.float32(0.0))
        return state

    def chunk_fn(state: PretrainState, hp: lm_runs.PretrainHp, data):
        tx = ntp.make_optimizer(optim, lr_scale=hp.lr_scale)
        key = prng.stream_key(prng.root_key(hp.seed), prng.Stream.DATA)
        p_cot = hp.task.p_cot
        batch_fn = lambda k, _step: demo_batch(k, d, p_cot, setup.batch, leap, setup.include_inputs)  # noqa: E731
        params, opt, m = ntp.ntp_chunk(model, tx, batch_fn, state.params, state.opt, key, state.step,
                                       steps_per_chunk)
        step = state.step + steps_per_chunk
        ev = evaluate(model, params, data["x_eval"], eval_key(hp), leap)
        new = PretrainState(params=params, opt=opt, step=step)
        metrics = {"loss": jnp.mean(m["loss"]), "token_acc": jnp.mean(m["token_acc"]), **ev,
                   "samples": (step * setup.batch).astype(jnp.float32),
                   "learned": (ev["acc"] >= learned_acc).astype(jnp.float32)}
        if snapshots:
            new = _update_snapshots(state, new, ev, p_cot, good_acc=good_acc, good_pi_frac=good_pi_frac,
                                    early_q_min=early_q_min, early_q_max=early_q_max)
            metrics.update(good_step=new.good_step, early_step=new.early_step, early_chain_acc=new.early_chain_acc,
                           early_q=new.early_q,
                           good_reached=(new.good_step >= 0).astype(jnp.float32))
        return new, metrics

    def final_one(state: PretrainState):
        good = _where_tree(state.good_step >= 0, state.good, state.params)
        return {**lm_runs.params_to_arrays(state.params),
                **{f"good_{k}": v for k, v in lm_runs.params_to_arrays(good).items()},
                **{f"early_{k}": v for k, v in lm_runs.params_to_arrays(state.early).items()}}

    # final_fn sees the stacked runs: vmap the one-run version
    return Program(data_fn=data_fn, init_fn=init_fn, chunk_fn=chunk_fn, num_chunks=steps // steps_per_chunk,
                   steps_per_chunk=steps_per_chunk, final_fn=jax.vmap(final_one) if snapshots else None,
                   all_stopped=(lambda m: np.asarray(m[stop_at]) > 0) if stop_at else None,
                   summarize=lambda m: {k: float(np.mean(m[k])) for k in ("loss", "acc", "chain_token_acc",
                                                                            "greedy_len_median")})


# ----------------------------------------------------------------------------------------------
# NTP pre-training as a stored base, the gates on it, and RL from it

# bump when pretrain_program's numerics change (@2: "early" chosen by chain_q, issue 20)
PRETRAIN_PROGRAM = "parity_lm_common.pretrain_program@2"


@dataclasses.dataclass(frozen=True)
class PretrainSpec:
    """Every static argument of `pretrain_program` (its traced hp: `pretrain_hp`).
    Hashable: a bucket key, and the static half of a stored base's key."""

    setup: LMSetup
    d: int
    steps: int
    steps_per_chunk: int
    leap: int = 1
    snapshots: bool = False
    good_acc: float = 0.99
    good_pi_frac: float = 0.0
    early_q_min: float = 0.5
    early_q_max: float = 0.99
    learned_acc: float = 0.99
    stop_at: str | None = None

    def program(self) -> Program:
        return pretrain_program(self.setup, self.d, leap=self.leap, steps=self.steps,
                                steps_per_chunk=self.steps_per_chunk, snapshots=self.snapshots,
                                good_acc=self.good_acc, good_pi_frac=self.good_pi_frac,
                                early_q_min=self.early_q_min, early_q_max=self.early_q_max,
                                learned_acc=self.learned_acc, stop_at=self.stop_at)


def pretrain_hp(seed: int, p_cot: float) -> lm_runs.PretrainHp:
    """The hp of one `pretrain_program` run, as the experiments have always built it: seed int32,
    p_cot and lr_scale (1) float32."""
    return lm_runs.PretrainHp(seed=np.int32(seed), lr_scale=np.float32(1.0), task=DemoMix(p_cot=np.float32(p_cot)))


def pretrain_plan(spec: PretrainSpec, *, row: dict, label: str, seed: int, p_cot: float) -> RunPlan:
    """One NTP run of `spec` as a RunPlan with hp `pretrain_hp(seed, p_cot)`; bucket (label, spec):
    runs of one label and spec are one vmapped program; base_key: everything the program reads, for a
    base-storing stage."""
    static = dataclasses.asdict(spec)  # the LMSetup becomes a nested dict
    return RunPlan(row=row, bucket=(label, spec), label=label, hp=pretrain_hp(seed, p_cot),
                   build=spec.program, base_key={"program": PRETRAIN_PROGRAM, **static, "p_cot": float(p_cot),
                                                 "seed": int(seed), "lr_scale": 1.0})


NOTHING_TRAINED = "nothing was trained (0 steps: learning switched off)"


def trained(history) -> bool:
    """One run's history ([chunks, ...]) has at least one chunk: a program of 0 chunks (learning
    switched off, issue 20) leaves every history empty."""
    return len(history) > 0


def chain_learned_gate(run: Run, *, good_acc: float) -> Gate:
    """A base RL can start from knows the chain: final teacher-forced chain_token_acc >= good_acc.
    A base of 0 NTP steps fails it: nothing was trained."""
    if not trained(run.history("chain_token_acc")):
        return Gate(False, f"final teacher-forced chain_token_acc >= {good_acc}; {NOTHING_TRAINED}",
                    {"chain_token_acc": None})
    acc = run.history("chain_token_acc")[-1]  # float32, compared as the verdicts always compared it
    return Gate(bool(acc >= good_acc), f"final teacher-forced chain_token_acc >= {good_acc}",
                {"chain_token_acc": float(acc)})


def good_reached_gate(run: Run) -> Gate:
    """The snapshot RL starts from exists: the "good" checkpoint was reached (good_step >= 0); never
    with 0 NTP steps (nothing was trained)."""
    if not trained(run.history("good_step")):
        return Gate(False, f"the good checkpoint was reached (good_step >= 0) within the NTP steps; {NOTHING_TRAINED}",
                    {"good_step": -1, "chain_token_acc": None})
    step = int(run.history("good_step")[-1])
    return Gate(step >= 0, "the good checkpoint was reached (good_step >= 0) within the NTP steps",
                {"good_step": step, "chain_token_acc": float(run.history("chain_token_acc")[-1])})


def gate_failures(runs: Sequence[Run], knobs: Sequence[str] = ("seed",)) -> str | None:
    """Why claims that presuppose the bases of `runs` are not judged: the failed gates (a run
    without a gate counts as failed), or None when every gate passed."""
    failed = [r for r in runs if r.gate is None or not r.gate.passed]
    if not failed:
        return None
    what = "; ".join(", ".join(f"{k} {r.row[k]}" for k in knobs) + (
        ": no gate" if r.gate is None else f": measured {r.gate.measured}") for r in failed)
    requirement = next((r.gate.requirement for r in failed if r.gate is not None), "a gate")
    return f"base gate failed ({requirement}) for {what}"


def record_claim(verdict: dict, not_judged: dict, claim: str, value, unsound: str | None) -> None:
    """A claim that presupposes sound bases: a verdict when `unsound` is None (every gate passed),
    else not judged with that reason."""
    if unsound is None:
        verdict[claim] = bool(value)
    else:
        not_judged[claim] = unsound


def rl_hp(model: tfm.TransformerSpec, parent: Run, prefix: str, *, seed: int, temperature: float) -> lm_runs.RLHp:
    """hp of an RL or STaR run that starts from `parent`'s checkpoint saved under `prefix`
    ("final/params/", "final/good_params/", ...), restored by key path. The parity RL task has no
    traced knobs (task None)."""
    params = lm_runs.params_from_arrays(model, parent.arrays, prefix)
    return lm_runs.RLHp(seed=np.int32(seed), lr_scale=np.float32(1.0), temperature=np.float32(temperature),
                        top_p=np.float32(1.0), init_params=jax.tree.map(np.asarray, params))


def rl_data_fn(model: tfm.TransformerSpec, d: int, num_eval: int, leap: int = 1):
    """RL eval data: the eval inputs and `evaluate` of the starting checkpoint (hp.init_params)."""

    def data_fn(hp: lm_runs.RLHp):
        x = eval_prompts(hp, d, num_eval)
        return {"x_eval": x, "start": evaluate(model, hp.init_params, x, eval_key(hp), leap)}

    return data_fn


def rl_eval_fn(model: tfm.TransformerSpec, leap: int = 1):
    """RL eval at every chunk end; the starting checkpoint's metrics ride along as start_<name>."""

    def eval_fn(params, hp: lm_runs.RLHp, data):
        return {**evaluate(model, params, data["x_eval"], eval_key(hp), leap),
                **{f"start_{k}": v for k, v in data["start"].items()}}

    return eval_fn


def curve(history: np.ndarray, start: np.ndarray) -> np.ndarray:
    """[runs, chunks] chunk-end values with the start value prepended: [runs, chunks + 1]."""
    return np.concatenate([np.asarray(start)[:, :1], np.asarray(history)], axis=1)
