"""affine-uniform-vs-hard: GRPO on L-Uniform vs L-Hard affine-equation chains (small-transformer analog).

Ran-Milo et al.'s LLM experiment (spec chain_traversal.md §8.1, analog §8.3) at theory scale:
1. pre-train a small Llama-style decoder by next-token prediction on shuffled affine-equation systems
   with worked solutions of SHORT chains only (distances 1..pretrain_max_distance): its "minimal
   proficiency" (the analog of the pretrained LLM, and of the theory's forward-bias assumption);
2. from that checkpoint, GRPO with the binary outcome reward (well-formed and right answer) on
   (i) `uniform`: distances 1..L-1, (ii) `hard`: distance L-1 only, (iii) `short`: distances
   1..short_max_distance (the analog of "5-Uniform -> 15-Hard");
3. evaluate greedy accuracy on every distance, above all the hardest one (L-1), at every chunk.
Answers are small integers (not mod p), as in the paper's v1; a uniform guess among the value
tokens succeeds with probability ~1/#values, so the process-verified accuracy is reported too.

The decoder has a token shift (`token_shift`, models/transformer.py): each attention input also
mixes in the k previous tokens. Each CoT step copies `± c = x_w` from the equation `x_u ± c = x_w .`
found by its first variable x_u, an in-context lookup. Without the shift a 2-layer decoder on the
quick budget never learned it: after 4,000 NTP steps the greedy policy wrote one edge step at every
distance (distance-1 accuracy 0.45), and probes at batch 32-128 for 1,500-2,000 steps left the
retrieved sign, constant and label near chance. With k = 1 the sign and constant are learned by
step 1,250 but the label, four tokens after x_u, is not; k = 4 puts x_u within one hop of it.

Why L = 6 with NTP on distances 1..3 in the quick tier: the claim needs a base that fails on the
hardest distance. A base trained on distances 1..K is expected to stop or break past K (its CoT
positions beyond K steps were never trained), so Hard-only RL on distance L-1 would start from
reward ~0, while Uniform RL also sees distance K+1, one step past what the base knows. With
L - 1 = K + 1 (e.g. L = 4, K = 2) both arms face the same one-step gap and the comparison says
little.

Why a reading stage: the CoT's label copy is a content lookup over the whole prompt (find the
equation of x_u among 2L-1 shuffled ones). Trained on L = 6 systems from the start, the model never
formed it on the quick budget: for every x_w it copied the target of `Find x_t` (right only on the
last step), so the base solved distance 1 and wrote one step at every distance, and no GRPO arm
got past that (measured at 250f1e7; 0.17 / 0.11 / 0.16 outcome accuracy at distance 5 for uniform /
hard / short, 0 process-verified). Probes changing the edge format (`x_u = x_w ∓ c .`), the token
shift (k = 1, 2, 4) or rope_theta (1e6) left the same plateau; with NTP on distances 2..3 only, where
the target is always wrong on the first step, that step's x_w was still never right after 500
steps. On L = 3 systems (a 31-token prompt) the lookup forms within 750 steps, and it carries over:
750 reading steps, then 750 steps on L = 6, gave process-verified accuracy 0.94 / 0.58 / 0.45 on
distances 1 / 2 / 3 and 0 on 4 and 5 (probe). This is the analog of the paper's pretrained LLM,
which can read equations before it sees the task. The reading systems share the token ids of the
long ones (EquationSpec.vocab_chain_len) and are padded to the long sequence length.

Status at the quick tier's defaults (slip 0.8, 5,000 NTP steps; measured at 007c653 on 2 CPU cores,
seed 42, run b5be94363538, ~47 min): Uniform >> Hard on the hardest distance, Hard-only does NOT stay ~0.
The base is a slip-only solver at per-step success 0.2: sampled process-verified 0.19 / 0.06 / 0.02 / 0 /
0 on distances 1..5, greedy 0 everywhere (the slipped value is the mode). After 600 GRPO steps, on
distance 5: uniform greedy 0.91 (verified 0.91, sampled verified 0.87); hard greedy 0.42 (verified
0.20, sampled verified 0.15, rising steadily from step 200); short 0.83 / 0.83 / 0.78. Verdicts:
every `uniform_solves_hardest*` and `uniform_much_better_than_hard*` passes (gaps 0.49 greedy outcome,
0.71 verified, 0.72 sampled verified), `short_below_uniform` passes, every `hard_only_stays_low*` fails.
Hard's outcome reward is also earned by answers right by coincidence (slips of both signs cancel:
sampled outcome 0.20 vs verified 0 at distance 5 from step 50). The short arm does far better than
the paper's "low". Two more seeds at these defaults (`--set seeds=43,44`, measured at 34ef654 on 2 CPU
cores, run 725ead9adcec), on distance 5, greedy outcome / greedy verified / sampled verified:
- seed 44 (sound base: greedy lengths 18 / 26 / 34 / 42 / 50, the worked solutions'; sampled verified
  0.22 / 0.04 / 0.02 / 0 / 0.004): uniform 0.77 / 0.73 / 0.72, hard 0.41 / 0.11 / 0.04, short 0.64 /
  0.64 / 0.64. Uniform >> Hard on every measure (gap 0.36 outcome, 0.62 verified, 0.68 sampled
  verified); Hard stays low on the verified measures.
- seed 43 (broken base: it stops after two steps at every distance >= 2, greedy length 26 where the
  distance-3 solution has 34, so `base_writes_trained_lengths` is False; sampled verified 0.23 / 0.04 /
  0 / 0 / 0): no arm gets past distance 2 (uniform 0.09 / 0 / 0, hard 0.03 / 0 / 0, short 0.16 / 0 / 0;
  uniform and short solve distances 1-2 at 0.92-1).
The 2-seed means therefore fail the Uniform verdicts (uniform 0.43 outcome); seed 43 is the base that
also stayed broken at 5,000 NTP steps in the slip-0.65 probe below. `slip_sign=global` (every slip +1,
so slips cannot cancel) is a knob for probing the Hard arm's coincidental answers; not measured yet.

Earlier status (slip 0.5, 3,000 NTP steps): the claim does NOT reproduce robustly at L = 6. One seed on 2 CPU cores (42, below) passes the
`_sampled_verified` verdicts. A second (`--set seeds=43`, measured at ba6244b, 41 min) fails the
Uniform ones: on distance 5, sampled process-verified, the base stands at 0.008, uniform reaches only
0.20 (0.09 at step 100, 0.16 at 300), hard collapses to 0 (0.02 even on distance 1), short 0.15; the
Hard-only verdicts pass. Over 8 seeds Hard-only RL does not stay at ~0 either: where the base is
sound it mostly catches up with Uniform within 600 steps. What holds in every sound base (21 of 21
runs over the two CPU seeds, the seed study and both probes below) is that Uniform is ahead of Hard
on the hardest distance at step 200, by 0.04-0.57: Uniform learns it faster.

Seed study (measured at ba6244b on one H200 GPU, `--set seeds=42,43,44,45,46,47,48,49 --set
rl_steps=1200`, about 4 min for all 24 runs; the GPU's numerics differ from the CPU's, so its seed 42 is
not the CPU run). Sampled process-verified accuracy on distance 5, uniform / hard / short, at step
200 and at step 600 (the quick tier's end; constant lr and per-step keys make the 1,200-step run's
first 600 steps those of a 600-step run):
- seed 42: 0.14 / 0.01 / 0.15 at 200, 0.25 / 0 / 0.24 at 600 (0.46 / 0 / 0.33 at 1,200);
- seeds 44, 45, 47, 48: 0.55 / 0.17 / 0.64, 0.37 / 0.06 / 0.44, 0.66 / 0.41 / 0.57, 0.34 / 0.04 /
  0.23 at 200; 0.82 / 0.75 / 0.77, 0.77 / 0.25 / 0.74, 0.71 / 0.73 / 0.68, 0.62 / 0.66 / 0.28 at 600;
- seeds 43, 46, 49: 0 everywhere (broken bases, below).
Two things break the claim:
1. Three of 8 bases never learn the L = 6 lookup in 3,000 NTP steps (greedy process-verified 0 / 0 /
   0.09 on distance 3, a training distance; NTP loss 0.14-0.22 against 0.08-0.09, still falling):
   no arm gets past distance 2. With 5,000 NTP steps one of 8 stays broken (probes below).
2. Where the base is a slip-only solver its distance-5 success, 0.02-0.04 at the RL temperature, gives
   Hard-only GRPO signal: 16 prompts x 8 samples x 600 steps draw ~1,000 correct solutions, and
   sharpening one step's coin sharpens every step (the parameters are shared), so Hard catches up
   (3 of the 5 sound seeds by step 600, a fourth by 1,200; seed 42's base stood at 0.008).
   The theory's Hard-only failure needs the base's success on the hardest distance to be negligible
   against the sample budget (p^(L-1) x samples << 1); at L = 6 it is not. Probe, same 8 seeds,
   `slip=0.65` (per-step success 0.35, base distance-5 success ~0.01) and 5,000 NTP steps: at step
   200 uniform 0.31-0.64 and hard 0-0.23 in all 7 sound seeds (means 0.49 / 0.09), at step 600
   uniform 0.54-0.92, hard 0.64-0.85 in 6 of them and 0 in one (seed 48). Probe `slip=0.5` with
   5,000 NTP steps: at 600, uniform 0.11-0.91, hard 0-0.91; hard within 0.01 of uniform or above it in
   3 of 7 sound seeds, near 0 in 2 (0 and 0.06).
The regime of the claim needs a longer hardest distance, L ~ 12-15: the paper tier, not run (by
`bench lm`'s training rate on an H200, ~54 TFLOP/s at 5M parameters, its 3-seed NTP alone is ~25 min).

The one-seed quick tier (measured at 1e6b3d2 on 2 CPU cores, seed 42, 41 min: 10.5 min NTP, 30 min
GRPO; rerun at 899c27b, 40 min, with the same numbers and the figure redrawn byte for byte): on the
policy's success probability at the hardest distance (sampled at the RL temperature and
process-verified, so no answer right by coincidence counts) it passes the verdicts' levels.
The base (slip 0.5, NoPE, token shift 8) is a slip-only solver: sampled process-verified 0.56 / 0.29
/ 0.11 / 0.06 / 0.02 on distances 1..5 (0.5^d), greedy 1 / 0.98 / 0.84 / 0.67 / 0.48 outcome.
After 600 GRPO steps, sampled process-verified on distance 5: uniform 0.57 (0.02 -> 0.27 at step 200
-> 0.51 at 350 -> 0.57; 0.97 / 0.88 / 0.71 / 0.65 / 0.57 by distance), hard 0.09 (0.01-0.07 through
step 500, 0.10 at 550: at `fail_level`, and creeping up), short 0.39. The `_sampled_verified`
verdicts all pass (uniform >= 0.5, hard <= 0.1, gap 0.48 >= 0.4), as does `short_below_uniform`.
On greedy decoding the picture is muddier because greedy decoding of the base never slips where the
right value is the mode, so the greedy base already solved 0.48 of distance 5: uniform ends at 0.72
outcome (0.62 verified), hard at 0.38 (0.16), so `uniform_solves_hardest` passes and
`uniform_much_better_than_hard` fails on outcome (gap 0.34) and passes verified; `hard_only_stays_low`
fails on greedy (hard-only RL lowers the base's 0.48, it does not stay at ~0) and on sampled outcome
(0.27, answers right by coincidence after wrong arithmetic). The short arm (RL on distances 1..3,
the analog of 5-Uniform -> 15-Hard) reaches 0.39: below uniform, far from "low". The paper's 95.7%
at L = 15 is not approached at L = 6, and the paper tier (L = 15) inherits this design and has not
been run. At 300 GRPO steps (09fbad7, the previous default) uniform stood at 0.42, below `hard_level`.

The earlier quick tier (exact demonstrations, RoPE, token shift 4, 1,500 NTP and 120 GRPO steps;
run it with `--set slip=0 --set rope=true --set token_shift=4 --set pretrain_steps=1500 --set
rl_steps=120 --set eval_samples=0`), measured at 3d1df8e on 2 CPU cores, one seed: the
claim does NOT reproduce. The base has the minimal proficiency the claim needs (process-verified
0.94 / 0.67 / 0.44 on distances 1 / 2 / 3, 0 on 4 and 5: it answers after three steps; 511b1b7 on
another machine measured 0.94 / 0.80 / 0.61), but 120 GRPO steps do not extend it: at distance 5
every arm stays at 0 process-verified accuracy (outcome: uniform 0.11, hard 0.12, short 0.14, the
guess level), and the hard arm loses distances 1..3 (0.22 / 0.17 / 0.14). The base's probability of
the correct worked solution is spread on distances 1..3 (a GRPO group there is mixed with
probability 0.54 / 0.71 / 0.66) and at most 2e-6 on every distance-4 and -5 problem (median 1e-12):
a correct solution there is practically never sampled, so there is nothing to reinforce; 61-78%
of all groups had zero advantage (also at temperature 1.5, measured at 511b1b7).

Why RL adds no step (probes at b5d3fec with `rope=False`, NoPE, so the base can length-generalise;
L = 6, one seed): the base's errors past its training distances are deterministic per problem, not
per-step slips, so GRPO's groups carry no variance there.
- NTP on distances 1..3, 2,000 steps: the NoPE base generalises on its own, process-verified
  1 / 1 / 1 / 0.98 / 0.70 on distances 1..5 (0.95 / 0.88 on distances 4 / 5 over 256 other
  problems), so the premise (base ~0 on the hardest) fails.
- Same, 4,000 steps: 1 / 1 / 1 / 0.28 / 0.09. Teacher-forced, the correct solution has probability
  > 0.05 for 29% of distance-4 problems and < 1e-4 at the first wrong token for most of the rest (the
  step-4 x_u copies the previous step's x_u; or its value is wrong); 97-98% of GRPO groups had zero
  advantage, and 120 steps at lr 1e-4 left distance 4 at 0.23.
- NTP on distances 1..2 (2,000 steps): 1 / 1 / 0.47 / 0.12 / 0, the premise's shape, but again
  bimodal per problem (on distance 3 the least likely token of the correct solution has median
  probability 2e-4 at temperature 1, 3.5e-3 at 1.5); after 120 GRPO
  steps at lr 2e-4 the uniform arm is 1 / 1 / 0.31 / 0 / 0, the hard arm 0.89 / 0.55 / 0.06 / 0 / 0.
- Under-trained bases (1,500 steps; or L = 8 at 2,000 steps: 0.92 / 0.88 / 0.16 / 0.03 / 0 ...)
  leave the lookup itself unlearned, and 120 GRPO steps at lr 2e-4 do not move the frontier; at lr
  5e-4 the uniform arm collapses (distance 1: 0.89 -> 0.08) on rewards earned by guessed answers.
- Signal is the bottleneck, not only the outcome reward's guessability: from the distances-1..2
  base with `reward=process` (no credit for guessed answers) at lr 1e-4, 120 steps, 93-95% of the
  uniform arm's groups had zero advantage; it moved distance 4 from 0.12 to 0.25 and distance 5
  from 0 to 0.05, and the hard arm stayed at 0 on distance 5 (one seed, 64 problems per distance):
  the claim's direction, far from its size. With the outcome reward and 3x the prompts (48 per
  step, lr 1e-4, 120 steps; 88-92% zero-advantage groups) the same base ends process-verified
  1 / 1 / 0.64 / 0.22 / 0.06 on uniform, 1 / 1 / 0.45 / 0.02 / 0 on hard (outcome 0.17 on distance 5:
  guesses) and 1 / 1 / 0.55 / 0.11 / 0 on short: the uniform arm pushes the frontier out slowly.
The theory's policy slips at random at every step (p_fwd < 1), and an LLM's base plausibly does too
(our inference, not measured); a small decoder after NTP is nearly deterministic per problem. The
metric `<arm>_zero_adv_groups` (fraction of GRPO groups with zero advantage) reports this in every
run.

A base stochastic per step by design (`slip`, probes at 5bc7470's code with `rope=False`, L = 6,
`eval_samples=4`, one seed): NTP demonstrations whose every edge step slips by one with probability
`slip` (one direction per problem, so a slip always fails the answer), the analog of the theory's
p_fwd < 1. Greedy decoding of such a base never slips where it has learned the step (the right
value is the mode), so these runs are judged on sampled accuracy at the RL temperature (`_sampled`
verdicts), the policy's success probability that the theory's gradient flow moves.
- slip 0.5, 2,000 NTP steps: the base is under-trained at the later steps (greedy process-verified
  0.92 / 0.88 / 0.39 / 0.12 / 0.03; lookups right, values off by 1-3 from the third step on).
  Uniform GRPO sharpens distances 1-2 (sampled 0.55 -> 0.80, 0.35 -> 0.69) and leaves distance 5
  at 0.15 -> 0.19 sampled (0.02 process-verified); hard 0.11; short 0.10. 25-37% of the uniform
  arm's groups had zero advantage, against 61-78% with exact demonstrations.
- slip 0.4, 3,500 NTP steps: base greedy process-verified 1 / 1 / 0.75 / 0.30 / 0.12, sampled
  process-verified 0.67 / 0.40 / 0.13 / 0.03 / 0.02 (a slip-only solver would give 0.6^d:
  0.60 / 0.36 / 0.22 / 0.13 / 0.08, so steps 3+ fail for other reasons). After 120 GRPO steps,
  sampled process-verified: uniform 0.90 / 0.84 / 0.40 / 0.18 / 0.06, hard 0.25 / 0.16 / 0.06 /
  0 / 0.01, short 0.97 / 0.93 / 0.54 / 0.24 / 0.08. Uniform > Hard at every distance and Hard-only
  stays at 0 on the hardest, but the uniform arm's gain is at the steps the base already does well
  (per-step success of steps 1-2 rises to ~0.9) and does not carry to steps 3-5 (~0.45 each), so
  distance 5 stays far below `hard_level`, and the short arm (never trained past distance 3) does
  as well as uniform there: the transfer across steps that the theory's shared parameters give
  for free is missing in this decoder.
- slip 0.5 with `token_shift=8`, 3,000 NTP steps: the shift window now holds a step's first label
  (x_u), so each step's arithmetic reads v_u in one hop, and the base is a slip-only solver:
  sampled process-verified 0.56 / 0.29 / 0.11 / 0.06 / 0.02 against 0.5^d = 0.50 / 0.25 / 0.13 /
  0.06 / 0.03 (greedy process-verified 1 / 0.98 / 0.83 / 0.67 / 0.45). After 120 GRPO steps,
  sampled process-verified on distance 5: uniform 0.02 -> 0.14, hard 0.02 (stays), short 0.21;
  by distance, uniform 0.79 / 0.59 / 0.25 / 0.15 / 0.14. The theory's direction (Uniform > Hard,
  Hard-only stuck at its base rate), at a size far below the paper's, with short >= uniform. The
  outcome reward also pays for answers right by coincidence (sampled outcome 0.29 vs 0.14
  process-verified at distance 5 on uniform), and greedy accuracy falls under RL (uniform's
  distance 1: 1.0 -> 0.83): GRPO sharpens the policy onto some wrong values too.
- The same base, 300 GRPO steps (arms uniform and hard only): sampled process-verified accuracy on
  distance 5 rises steadily on uniform (0.02 -> 0.14 at step 120 -> 0.29 at 180 -> 0.42 at 300,
  0.95 / 0.82 / 0.56 / 0.48 / 0.42 by distance) while hard stays at its base rate for 200 steps
  (0.01-0.03) and then starts to climb (0.09 at 300); greedy: uniform 1 / 0.94 / 0.70 / 0.58 / 0.56
  process-verified, hard 0.78 / 0.39 / 0.23 / 0.12 / 0.12 (below its base at every distance).
  These became the quick tier's settings.

All (seed, arm) RL runs are one vmapped program (the arm is the traced distance distribution).
Knobs: see Config. Row keys (one row per seed and arm; `*_by_distance` lists run over distances 1..L-1):
seed, arm, hard_acc, hard_process_acc, hard_len, base_hard_acc, acc_by_distance, process_acc_by_distance,
base_process_acc_by_distance (the seed's base, greedy), base_len_by_distance (its mean greedy response
length; the worked solution at distance d has eq.solution_len(d) = 10 + 8d tokens),
base_writes_trained_lengths (that length within 4 tokens of the solution's on every pre-trained
distance: False flags a base that stops early, so no arm can learn past it), and with eval_samples > 0 hard_sample_acc,
hard_sample_process_acc, sample_acc_by_distance, sample_process_acc_by_distance,
base_sample_process_acc_by_distance.
Metrics: pretrained and per-arm seed-mean greedy accuracy on the hardest distance (outcome and
process-verified); per arm the mean fraction of GRPO groups with zero advantage; per distance d the
base's mean probability of the whole worked solution (`pretrained_solution_prob_d<d>`, at the RL
temperature) and the chance that a GRPO group on such a problem is mixed, i.e. has signal
(`pretrained_mixed_group_prob_d<d>` = mean of 1 - p^G - (1 - p)^G). With eval_samples > 0 also the
base's sampled accuracy per distance (`pretrained_sample_acc_d<d>`) and per arm the sampled outcome
and process-verified accuracy on the hardest distance (`<arm>_hard_sample_acc`,
`<arm>_hard_sample_process_acc`).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from theoryrl.core import prng
from theoryrl.core.config import require
from theoryrl.core.experiment import Outcome
from theoryrl.core.results import load_npz
from theoryrl.models import transformer as tfm
from theoryrl.models.transformer import TransformerSpec
from theoryrl.rl import lm_rl, lm_runs, ntp, sampling
from theoryrl.rl.advantages import AdvantageSpec
from theoryrl.rl.losses import LossSpec
from theoryrl.tasks import equations as eq

ID = "affine-uniform-vs-hard"
TITLE = "GRPO on affine-equation chains: Uniform-trained solves the hardest distance, Hard-only does not"
PAPER = "Ran-Milo et al. 2601.15158, LLM experiment (v1: 15-Uniform -> 95.7% on 15-Hard, 15-Hard-trained ~0%)"
ARMS = ("uniform", "hard", "short")


@dataclasses.dataclass(frozen=True)
class Config:
    chain_len: int = 6  # L: two chains of L variables; the hardest distance is L - 1
    pretrain_max_distance: int = 3  # NTP sees worked solutions of distances 1..this only
    short_max_distance: int = 3  # arm "short": RL on distances 1..this
    arms: tuple[str, ...] = ARMS
    seeds: tuple[int, ...] = (42,)
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    token_shift: int = 8  # previous tokens mixed into each attention input (models/transformer.py), 0 = off
    rope: bool = False  # False: no positional encoding (NoPE), so step counting has no position to read
    pretrain_steps: int = 5000  # NTP steps in all, the reading stage included (3,000 left 3 of 8 bases broken)
    reading_steps: int = 750  # the first NTP steps train on systems of reading_chain_len (0 = no reading stage)
    reading_chain_len: int = 3  # chain length of the reading stage (distances 1..this - 1)
    pretrain_batch: int = 32
    pretrain_lr: float = 3e-3
    rl_steps: int = 600
    prompts_per_step: int = 16
    group_size: int = 8
    rl_lr: float = 5e-4
    temperature: float = 1.0
    # NTP demonstrations slip: each edge step's arithmetic is off by one with this probability
    # (equations.slip_drift), so the base is a solver whose every step is right with probability
    # 1 - slip, the theory's p_fwd < 1; 0 = exact worked solutions. The theory's Hard-only failure needs
    # the base's success on the hardest distance, (1 - slip)^(L-1), to be negligible against the Hard
    # arm's sample budget N = rl_steps x prompts x G = 76,800: at 0.5 it draws ~2,400 correct solutions
    # and Hard caught up in most seeds; at 0.8 ~25 (0.2^5 x N), while a distance-1 GRPO group is still
    # mixed with probability 1 - 0.8^8 - 0.2^8 = 0.83, so Uniform keeps its signal
    slip: float = 0.8
    # direction of the slips (equations.slip_drift): "per_problem" (random per demonstration; a model that
    # imitates them slips either way, so opposite slips cancel and outcome reward credits some wrong
    # chains) or "global" (every slip +1, so a sampled chain's slips add up and the outcome reward
    # stays near process correctness)
    slip_sign: str = "per_problem"
    eval_samples: int = 4  # samples per eval problem at the RL temperature (sampled accuracy), 0 = greedy only
    reward: str = "answer"  # RL reward: "answer" (outcome, the paper's), "process" (verified steps), "format+answer"
    pretrain_chunk: int = 250  # NTP steps between greedy evaluations
    steps_per_chunk: int = 50  # RL steps between evaluations
    eval_per_distance: int = 64
    hard_level: float = 0.5  # "solves the hardest distance": uniform arm's seed-mean greedy accuracy >= this
    fail_level: float = 0.1  # "Hard-only stays ~0": hard arm's seed-mean greedy accuracy <= this

    def validate(self) -> None:
        require(3 <= self.chain_len <= 16, "chain_len", self.chain_len, "3..16")
        require(1 <= self.pretrain_max_distance < self.chain_len - 1, "pretrain_max_distance",
                self.pretrain_max_distance, f"1..{self.chain_len - 2} (below the hardest distance)")
        require(1 <= self.short_max_distance < self.chain_len - 1, "short_max_distance", self.short_max_distance,
                f"1..{self.chain_len - 2}")
        require(len(self.arms) > 0 and all(a in ARMS for a in self.arms) and len(set(self.arms)) == len(self.arms),
                "arms", self.arms, f"distinct values from {list(ARMS)}")
        require(len(self.seeds) > 0, "seeds", self.seeds, "at least one seed")
        require(self.d_model >= 8 and self.n_heads >= 1 and self.d_model % self.n_heads == 0
                and (self.d_model // self.n_heads) % 2 == 0, "d_model", self.d_model,
                "divisible by n_heads with an even head size")
        require(self.n_layers >= 1, "n_layers", self.n_layers, ">= 1")
        require(self.token_shift >= 0, "token_shift", self.token_shift, ">= 0 (0 = off)")
        require(0 <= self.reading_steps < self.pretrain_steps, "reading_steps", self.reading_steps,
                f"0..{self.pretrain_steps - 1} (the reading stage is part of pretrain_steps)")
        require(2 <= self.reading_chain_len < self.chain_len, "reading_chain_len", self.reading_chain_len,
                f"2..{self.chain_len - 1}")
        for knob, chunk in (("pretrain_steps", "pretrain_chunk"), ("rl_steps", "steps_per_chunk")):
            value, size = getattr(self, knob), getattr(self, chunk)
            require(size >= 1 and value >= size and value % size == 0, knob, value,
                    f"a positive multiple of {chunk} = {size}")
        for knob in ("pretrain_batch", "prompts_per_step", "eval_per_distance"):
            require(getattr(self, knob) >= 1, knob, getattr(self, knob), ">= 1")
        require(self.group_size >= 2, "group_size", self.group_size, ">= 2")
        require(self.reward in eq.REWARDS, "reward", self.reward, " | ".join(eq.REWARDS))
        require(0.0 <= self.slip < 1.0, "slip", self.slip, "in [0, 1)")
        require(self.slip_sign in eq.SLIP_SIGNS, "slip_sign", self.slip_sign, " | ".join(eq.SLIP_SIGNS))
        require(self.eval_samples >= 0, "eval_samples", self.eval_samples, ">= 0 (0 = greedy evaluation only)")
        for knob in ("pretrain_lr", "rl_lr", "temperature"):
            require(getattr(self, knob) > 0, knob, getattr(self, knob), "> 0")
        self.task().validate()

    def task(self) -> eq.EquationSpec:
        return eq.EquationSpec(chain_len=self.chain_len, value_margin=self._margin())

    def _margin(self) -> int:
        """Value tokens beyond the exact range for the drift of slipped demonstrations (none without slips,
        so the vocabulary of exact runs is unchanged)."""
        return self.chain_len - 1 if self.slip > 0 else 0

    def reading_task(self) -> eq.EquationSpec:
        """Short systems with the token ids of `task()` (same label pool and value range)."""
        return eq.EquationSpec(chain_len=self.reading_chain_len, num_labels=self.task().labels,
                               vocab_chain_len=self.chain_len, value_margin=self._margin())


TIERS = {
    "quick": Config(),
    "paper": Config(chain_len=15, pretrain_max_distance=3, short_max_distance=5, seeds=(42, 43, 44),
                    d_model=256, n_layers=4, n_heads=8, pretrain_steps=20_000, reading_steps=4_000,
                    reading_chain_len=4, pretrain_batch=256,
                    pretrain_lr=1e-3, rl_steps=600, prompts_per_step=64, rl_lr=3e-4, pretrain_chunk=1000,
                    steps_per_chunk=50, eval_per_distance=256),
}


def _model(cfg: Config) -> TransformerSpec:
    task = cfg.task()
    return TransformerSpec(vocab_size=eq.vocab(task).size, d_model=cfg.d_model, n_layers=cfg.n_layers,
                           n_heads=cfg.n_heads, n_kv_heads=cfg.n_heads, token_shift=cfg.token_shift, rope=cfg.rope,
                           max_len=eq.prompt_len(task) + eq.max_response_len(task))


def _sampler(cfg: Config) -> sampling.SamplerSpec:
    voc = eq.vocab(cfg.task())
    return sampling.SamplerSpec(max_new_tokens=eq.max_response_len(cfg.task()), eos_id=voc.eos_id, pad_id=voc.pad_id)


def _arm_probs(cfg: Config, arm: str) -> np.ndarray:
    task = cfg.task()
    kind = {"uniform": "uniform", "hard": "hard", "short": f"short:{cfg.short_max_distance}"}[arm]
    return np.asarray(eq.distance_probs(task, kind), np.float32)


def _eval_data(cfg: Config, hp) -> dict:
    """Fixed greedy-eval problems: `eval_per_distance` at each distance 1..L-1 (EVAL stream)."""
    task, num_dist = cfg.task(), cfg.chain_len - 1
    key = prng.stream_key(prng.root_key(hp["seed"]), prng.Stream.EVAL)
    one_hot = jnp.eye(num_dist, dtype=jnp.float32)
    per_dist = [eq.sample_problems(jax.random.fold_in(key, d), task, one_hot[d], cfg.eval_per_distance)
                for d in range(num_dist)]
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *per_dist)


def _eval_fn(cfg: Config, task: lm_rl.RLTask):
    model, sampler, num_dist = _model(cfg), _sampler(cfg), cfg.chain_len - 1

    def evaluate(params, hp, problems):
        scores = lm_rl.greedy_scores(model, sampler, task, params, problems.prompt_NxLp, None, problems)
        by_dist = lambda v: jnp.mean(v.reshape(num_dist, -1), axis=1)  # noqa: E731
        out = {"eval_acc": by_dist(scores["answer_correct"].astype(jnp.float32)),
               "eval_process_acc": by_dist(scores["process_correct"]), "eval_len": by_dist(scores["length"])}
        if cfg.eval_samples:
            # the policy's success probability, the quantity the theory tracks (greedy decoding of a
            # policy whose every step is right with probability > 1/2 never slips); the same key at
            # every evaluation, so curves compare policies on common random numbers
            key = jax.random.fold_in(prng.stream_key(prng.root_key(hp["seed"]), prng.Stream.EVAL), 1)
            sampled = lm_rl.sampled_scores(model, sampler, task, params, problems.prompt_NxLp, None, problems, key,
                                           cfg.eval_samples, temperature=cfg.temperature)
            out["eval_sample_acc"] = by_dist(sampled["answer_correct"].astype(jnp.float32))
            out["eval_sample_process_acc"] = by_dist(sampled["process_correct"].astype(jnp.float32))
        return out

    return evaluate


def _rl_task(cfg: Config) -> lm_rl.RLTask:
    task = cfg.task()

    def sample_prompts(key, hp, n):
        problems = eq.sample_problems(key, task, hp["dist_probs"], n)
        return problems.prompt_NxLp, None, problems

    def score(problems, response_NxT, mask_NxT):
        out = eq.verify(task, problems, response_NxT, mask_NxT, reward=cfg.reward)
        return {"reward": out["reward_N"], "process_correct": out["process_correct_N"],
                "answer_correct": out["answer_correct_N"],
                "format_ok": out["format_ok_N"]}

    return lm_rl.RLTask(sample_prompts=sample_prompts, score=score)


def _pretrain(cfg: Config, ctx) -> list[dict]:
    task, reading, rl_task = cfg.task(), cfg.reading_task(), _rl_task(cfg)
    probs = np.asarray(eq.distance_probs(task, f"short:{cfg.pretrain_max_distance}"), np.float32)
    reading_probs = jnp.asarray(eq.distance_probs(reading, "uniform"), jnp.float32)
    seq_len = eq.prompt_len(task) + eq.max_response_len(task)

    def batch_fn(key, hp, step):
        def read(k):  # short systems, padded to the long shapes
            return eq.solution_tokens(reading, eq.sample_problems(k, reading, reading_probs, cfg.pretrain_batch), seq_len)

        def solve(k):
            if not cfg.slip:  # exact demonstrations keep the key use, so their data is that of runs before `slip`
                return eq.solution_tokens(task, eq.sample_problems(k, task, hp["dist_probs"], cfg.pretrain_batch))
            k_problems, k_slip = jax.random.split(k)
            problems = eq.sample_problems(k_problems, task, hp["dist_probs"], cfg.pretrain_batch)
            return eq.solution_tokens(task, problems, slip_key=k_slip, slip_prob=cfg.slip, slip_sign=cfg.slip_sign)

        return jax.lax.cond(step < cfg.reading_steps, read, solve, key)

    optim = ntp.OptimSpec(lr=cfg.pretrain_lr, warmup_steps=min(200, cfg.pretrain_steps // 10),
                          total_steps=cfg.pretrain_steps)
    program = lm_runs.pretrain_program(
        _model(cfg), optim, batch_fn, num_chunks=cfg.pretrain_steps // cfg.pretrain_chunk,
        steps_per_chunk=cfg.pretrain_chunk, data_fn=lambda hp: _eval_data(cfg, hp), eval_fn=_eval_fn(cfg, rl_task))
    hps = [{"seed": np.int32(s), "lr_scale": np.float32(1.0), "dist_probs": probs} for s in cfg.seeds]
    arrays = ctx.train_runs("pretrain", data_fn=program.data_fn, init_fn=program.init_fn,
                            chunk_fn=program.chunk_fn, hps=hps, num_chunks=program.num_chunks,
                            steps_per_chunk=program.steps_per_chunk, final_fn=program.final_fn)
    return [{k: v[i] for k, v in arrays.items()} for i in range(len(cfg.seeds))]


def _rl_spec(cfg: Config) -> lm_rl.RLSpec:
    return lm_rl.RLSpec(prompts_per_step=cfg.prompts_per_step, group_size=cfg.group_size,
                        advantage=AdvantageSpec(estimator="grpo"), loss=LossSpec(agg="token-mean"))


def _post_train(cfg: Config, ctx, pretrained: list[dict]) -> dict:
    model = _model(cfg)
    optim = ntp.OptimSpec(lr=cfg.rl_lr, warmup_steps=0, total_steps=cfg.rl_steps, schedule="constant",
                          weight_decay=0.0)
    program = lm_runs.rl_program(model, _sampler(cfg), _rl_spec(cfg), optim, _rl_task(cfg),
                                 num_chunks=cfg.rl_steps // cfg.steps_per_chunk, steps_per_chunk=cfg.steps_per_chunk,
                                 data_fn=lambda hp: _eval_data(cfg, hp), eval_fn=_eval_fn(cfg, _rl_task(cfg)))
    hps = []
    for i, seed in enumerate(cfg.seeds):
        params = lm_runs.params_from_arrays(model, pretrained[i])
        for arm in cfg.arms:
            hps.append({"seed": np.int32(seed), "lr_scale": np.float32(1.0), "temperature": np.float32(cfg.temperature),
                        "top_p": np.float32(1.0), "dist_probs": _arm_probs(cfg, arm),
                        "init_params": jax.tree.map(np.asarray, params)})
    return ctx.train_runs("rl", data_fn=program.data_fn, init_fn=program.init_fn, chunk_fn=program.chunk_fn,
                          hps=hps, num_chunks=program.num_chunks, steps_per_chunk=program.steps_per_chunk)


def _solution_probs(cfg: Config, params, seed: int) -> np.ndarray:
    """[distances, eval_per_distance]: probability of the whole worked solution of each eval problem
    under the model sampling at `temperature` (teacher-forced, one forward pass).

    GRPO learns on a prompt only when its G samples disagree. With solution probability p a group
    is mixed with probability 1 - p^G - (1 - p)^G, so problems with p near 0 or 1 (a policy that is
    deterministic on them) give no gradient, however many of them a distance has."""
    task, model = cfg.task(), _model(cfg)
    problems = _eval_data(cfg, {"seed": np.int32(seed)})
    tokens, loss_mask = eq.solution_tokens(task, problems)
    logp, _, _ = jax.jit(tfm.token_logprobs, static_argnums=0)(model, params, tokens, temperature=cfg.temperature)
    seq_logp = jnp.sum(logp * loss_mask[:, 1:], axis=1)
    return np.exp(np.asarray(seq_logp, np.float64)).reshape(cfg.chain_len - 1, cfg.eval_per_distance)


def run(cfg: Config, ctx) -> Outcome:
    pretrained = _pretrain(cfg, ctx)
    model = _model(cfg)
    solution_p = np.stack([_solution_probs(cfg, lm_runs.params_from_arrays(model, pre), seed)
                           for pre, seed in zip(pretrained, cfg.seeds, strict=True)])  # [seeds, D, E]
    mixed = 1.0 - solution_p ** cfg.group_size - (1.0 - solution_p) ** cfg.group_size
    rl = _post_train(cfg, ctx, pretrained)
    hard = cfg.chain_len - 2  # index of distance L-1
    base_acc = np.stack([p["history/eval_acc"][-1] for p in pretrained])  # [seeds, distances]
    base_len = np.stack([p["history/eval_len"][-1] for p in pretrained])  # [seeds, distances]
    curves = rl["history/eval_acc"]  # [runs, chunks, distances]
    rows, arms_of_run = [], []
    for i, seed in enumerate(cfg.seeds):
        for j, arm in enumerate(cfg.arms):
            r = i * len(cfg.arms) + j
            arms_of_run.append(arm)
            rows.append({"seed": int(seed), "arm": arm, "hard_acc": float(curves[r, -1, hard]),
                         "hard_process_acc": float(rl["history/eval_process_acc"][r, -1, hard]),
                         "hard_len": float(rl["history/eval_len"][r, -1, hard]),
                         "base_hard_acc": float(base_acc[i, hard]),
                         "acc_by_distance": _floats(curves[r, -1]),
                         "process_acc_by_distance": _floats(rl["history/eval_process_acc"][r, -1]),
                         # the seed's base, so a multi-seed run shows which bases learned the short chains
                         "base_process_acc_by_distance": _floats(pretrained[i]["history/eval_process_acc"][-1]),
                         # a slip-only base is greedy-wrong everywhere (the slipped value is the mode), so
                         # its process accuracy cannot tell a sound base from one that never learned the
                         # lookup; its greedy length can: a sound base writes d steps on distance d
                         "base_len_by_distance": _floats(base_len[i]),
                         "base_writes_trained_lengths": _writes_trained_lengths(cfg, base_len[i]),
                         **({"hard_sample_acc": float(rl["history/eval_sample_acc"][r, -1, hard]),
                             "hard_sample_process_acc": float(rl["history/eval_sample_process_acc"][r, -1, hard]),
                             "sample_acc_by_distance": _floats(rl["history/eval_sample_acc"][r, -1]),
                             "sample_process_acc_by_distance": _floats(rl["history/eval_sample_process_acc"][r, -1]),
                             "base_sample_process_acc_by_distance":
                                 _floats(pretrained[i]["history/eval_sample_process_acc"][-1])}
                            if cfg.eval_samples else {})})
    arm_mean = _arm_means(cfg, rows, "hard_acc")
    arm_proc = _arm_means(cfg, rows, "hard_process_acc")
    arm_sampled = ({"": _arm_means(cfg, rows, "hard_sample_acc"),
                    "_verified": _arm_means(cfg, rows, "hard_sample_process_acc")} if cfg.eval_samples else None)
    # GRPO learns only from groups whose G rewards differ; a policy that is right or wrong on a prompt
    # with probability ~1 leaves all its groups at zero advantage, whatever the reward rate
    zero_adv = np.asarray(rl["history/zero_adv_groups"])  # [runs, chunks]
    arm_zero = {a: float(zero_adv[np.array(arms_of_run) == a].mean()) for a in cfg.arms}
    metrics = {"pretrained_hard_acc": float(base_acc[:, hard].mean()),
               "pretrained_hard_process_acc": float(np.mean([p["history/eval_process_acc"][-1][hard]
                                                             for p in pretrained])),
               **{f"pretrained_acc_d{d + 1}": float(base_acc[:, d].mean()) for d in range(cfg.chain_len - 1)},
               **{f"{a}_hard_acc": v for a, v in arm_mean.items()},
               **{f"{a}_hard_process_acc": v for a, v in arm_proc.items()},
               **{f"{a}_zero_adv_groups": v for a, v in arm_zero.items()},
               **{f"pretrained_solution_prob_d{d + 1}": float(solution_p[:, d].mean()) for d in range(cfg.chain_len - 1)},
               **{f"pretrained_mixed_group_prob_d{d + 1}": float(mixed[:, d].mean()) for d in range(cfg.chain_len - 1)}}
    if cfg.eval_samples:
        base_sampled = np.stack([p["history/eval_sample_acc"][-1] for p in pretrained])  # [seeds, distances]
        base_sampled_proc = np.stack([p["history/eval_sample_process_acc"][-1] for p in pretrained])
        metrics.update({f"pretrained_sample_acc_d{d + 1}": float(base_sampled[:, d].mean())
                        for d in range(cfg.chain_len - 1)})
        metrics.update({f"pretrained_sample_process_acc_d{d + 1}": float(base_sampled_proc[:, d].mean())
                        for d in range(cfg.chain_len - 1)})
        metrics.update({f"{a}_hard_sample_acc": v for a, v in arm_sampled[""].items()})
        metrics.update({f"{a}_hard_sample_process_acc": v for a, v in arm_sampled["_verified"].items()})
    return Outcome(metrics=metrics, rows=rows, paper=_PAPER, verdict=_verdict(cfg, arm_mean, arm_proc, arm_sampled),
                   arrays={**_arrays(cfg, rl, pretrained, arms_of_run), "pretrain_solution_prob": solution_p})


def _writes_trained_lengths(cfg: Config, base_len_by_distance) -> bool:
    """The base's minimal proficiency, as far as its greedy output shows it: on every distance it was
    pre-trained on, its mean greedy length is within half a step (4 tokens) of the worked solution's."""
    trained = np.arange(1, cfg.pretrain_max_distance + 1)
    return bool(np.all(np.abs(np.asarray(base_len_by_distance)[trained - 1] - eq.solution_len(trained)) < 4))


def _floats(values) -> list[float]:
    return [float(x) for x in values]


def _arm_means(cfg: Config, rows: list[dict], key: str) -> dict:
    return {a: float(np.mean([row[key] for row in rows if row["arm"] == a])) for a in cfg.arms}


_PAPER = {"uniform_hard_acc (L=15, Qwen-3B)": 0.957, "hard_only_hard_acc": 0.0, "5-uniform -> 15-hard": "low"}


def _verdict(cfg: Config, acc: dict, process_acc: dict, sampled: dict | None = None) -> dict:
    """The paper's claims on the hardest distance, judged on the greedy outcome accuracy (the paper's
    measure), again, suffixed `_verified`, on the greedy process-verified accuracy, and, suffixed
    `_sampled` / `_sampled_verified` when eval_samples > 0, on the outcome / process-verified
    accuracy of samples at the RL temperature (the policy's success probability, what the theory's
    gradient flow moves). The answer space is a few
    dozen integers, so a policy that writes well-formed steps with guessed values scores about 0.1 on
    outcome alone (measured at 250f1e7), near `fail_level`; a verified solution cannot be a guess."""
    verdict = {}
    judged = [("", acc), ("_verified", process_acc)]
    judged += [("_sampled" + kind, by_arm) for kind, by_arm in (sampled or {}).items()]
    for suffix, by_arm in judged:
        if "uniform" in cfg.arms:
            verdict["uniform_solves_hardest" + suffix] = by_arm["uniform"] >= cfg.hard_level
        if "hard" in cfg.arms:
            verdict["hard_only_stays_low" + suffix] = by_arm["hard"] <= cfg.fail_level
        if {"uniform", "hard"} <= set(cfg.arms):
            verdict["uniform_much_better_than_hard" + suffix] = (
                by_arm["uniform"] - by_arm["hard"] >= cfg.hard_level - cfg.fail_level)
    if {"uniform", "short"} <= set(cfg.arms):
        verdict["short_below_uniform"] = acc["short"] < acc["uniform"]
    return verdict


def _arrays(cfg: Config, rl: dict, pretrained: list[dict], arms_of_run: list[str]) -> dict:
    return {"rl_eval_acc": rl["history/eval_acc"], "rl_eval_process_acc": rl["history/eval_process_acc"],
            "rl_eval_len": rl["history/eval_len"], "rl_reward": rl["history/reward"],
            "rl_zero_adv_groups": rl["history/zero_adv_groups"], "rl_entropy": rl["history/entropy"],
            "run_arm": np.array(arms_of_run), "run_seed": np.repeat(np.array(cfg.seeds), len(cfg.arms)),
            "pretrain_eval_acc": np.stack([p["history/eval_acc"] for p in pretrained]),
            "pretrain_eval_process_acc": np.stack([p["history/eval_process_acc"] for p in pretrained]),
            "pretrain_eval_len": np.stack([p["history/eval_len"] for p in pretrained]),
            "pretrain_loss": np.stack([p["history/loss"] for p in pretrained]),
            **({"rl_eval_sample_acc": rl["history/eval_sample_acc"],
                "rl_eval_sample_process_acc": rl["history/eval_sample_process_acc"],
                "pretrain_eval_sample_acc": np.stack([p["history/eval_sample_acc"] for p in pretrained]),
                "pretrain_eval_sample_process_acc": np.stack([p["history/eval_sample_process_acc"] for p in pretrained])}
               if cfg.eval_samples else {})}


def plot(run_dir: Path, out_dir: Path) -> list[Path]:
    from theoryrl.core import plotting

    arrays = load_npz(Path(run_dir) / "arrays.npz")
    cfg = json.loads((Path(run_dir) / "config.json").read_text())["config"]
    # step 0 is the pre-trained base every arm starts from
    steps = cfg["steps_per_chunk"] * np.arange(0, arrays["rl_eval_acc"].shape[1] + 1)
    hard = cfg["chain_len"] - 2
    seed_index_of_run = [cfg["seeds"].index(int(seed)) for seed in arrays["run_seed"]]

    def from_base(rl_key: str, sel: np.ndarray) -> np.ndarray:
        """[runs of the arm, 1 + chunks] on the hardest distance, the base's final evaluation first."""
        base_of_run = arrays[rl_key.replace("rl_", "pretrain_", 1)][seed_index_of_run, -1, hard][sel]
        return np.concatenate([base_of_run[:, None], arrays[rl_key][sel][:, :, hard]], axis=1)

    fig, axes = plotting.subplots(1, 2, width=4.6, height=4.2)
    ax = axes[0, 0]
    for j, arm in enumerate(cfg["arms"]):
        sel = arrays["run_arm"] == arm
        curve = from_base("rl_eval_acc", sel)
        ax.plot(steps, curve.mean(0), color=f"C{j}", label=arm)
        ax.fill_between(steps, curve.min(0), curve.max(0), color=f"C{j}", alpha=0.2)
        ax.plot(steps, from_base("rl_eval_process_acc", sel).mean(0), ":", color=f"C{j}")
        if "pretrain_eval_sample_process_acc" in arrays:
            ax.plot(steps, from_base("rl_eval_sample_process_acc", sel).mean(0), "--", color=f"C{j}")
    ax.set_xlabel("GRPO step")
    ax.plot([], [], "k:", label="process-verified")
    if "pretrain_eval_sample_process_acc" in arrays:
        ax.plot([], [], "k--", label=f"sampled (T = {cfg['temperature']:g}), process-verified")
    ax.set_ylabel(f"accuracy, distance {cfg['chain_len'] - 1} (solid: greedy)")
    ax.set_ylim(-0.02, 1.02)
    _legend_below(ax)
    ax2 = axes[0, 1]
    dists = np.arange(1, cfg["chain_len"])
    ax2.plot(dists, arrays["pretrain_eval_acc"][:, -1].mean(0), "k--", marker="o", label="pre-trained (NTP)")
    ax2.plot(dists, arrays["pretrain_eval_process_acc"][:, -1].mean(0), "k:", marker="x", label="process-verified (dotted)")
    if "pretrain_eval_sample_process_acc" in arrays:  # absent from runs saved before bfc22d1
        ax2.plot(dists, arrays["pretrain_eval_sample_process_acc"][:, -1].mean(0), "k--", marker="s", alpha=0.5,
                 label="sampled, process-verified (dashed)")
    for j, arm in enumerate(cfg["arms"]):
        sel = arrays["run_arm"] == arm
        ax2.plot(dists, arrays["rl_eval_acc"][sel][:, -1].mean(0), marker="o", color=f"C{j}", label=f"after RL: {arm}")
        ax2.plot(dists, arrays["rl_eval_process_acc"][sel][:, -1].mean(0), ":", marker="x", color=f"C{j}")
        if "rl_eval_sample_acc" in arrays:
            ax2.plot(dists, arrays["rl_eval_sample_process_acc"][sel][:, -1].mean(0), "--", marker="s", color=f"C{j}")
    ax2.set_xticks(dists)
    ax2.set_xlabel("distance to the target")
    ax2.set_ylabel("accuracy (solid: greedy outcome)")
    ax2.set_ylim(-0.02, 1.02)
    _legend_below(ax2)
    fig.suptitle(f"affine-uniform-vs-hard (L = {cfg['chain_len']}, NTP on distances 1..{cfg['pretrain_max_distance']})")
    return [plotting.savefig(fig, Path(out_dir) / f"{ID}.png")]


def _legend_below(ax) -> None:
    """Under the axes: every arm's curves cross the whole panel, so no corner inside is free."""
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
