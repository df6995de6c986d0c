"""Every bad knob value is a one-line ConfigError naming the knob the user set, from `validate()`,
before any compute (issue 21, items 1-3): size bounds, finite floats, distinct int32 seeds.

The sweeps enumerate every experiment's config fields (experiments.MODULES, mod.TIERS,
dataclasses.fields), so a knob added later is covered without editing this file. Nothing here
trains: each case is an override plus `validate`, well under a second.
"""
import dataclasses
import math
import sys
import time
import typing

import jax
import numpy as np
import pytest

from theoryrl import experiments
from theoryrl.core import prng
from theoryrl.core.config import ConfigError, apply_overrides, validate

IDS = list(experiments.MODULES)


def _quick(eid):
    return experiments.get(eid).TIERS["quick"]


def _knobs(cfg, prefix=""):
    """(dotted knob, declared type) of every leaf field of a (nested) config."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            yield from _knobs(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", hints[f.name]


def _scalar_type(typ):
    """int / float / other for int, float, T | None and tuple[T, ...]."""
    args = [a for a in typing.get_args(typ) if a is not type(None) and a is not Ellipsis]
    base = args[0] if typing.get_origin(typ) is not None and args else typ
    return base if base in (int, float) else None


def _knobs_of_type(typ):
    return [(eid, knob) for eid in IDS for knob, t in _knobs(_quick(eid)) if _scalar_type(t) is typ]


def _rejected(eid, assignment):
    with pytest.raises(ConfigError) as err:
        validate(apply_overrides(_quick(eid), [assignment]))
    return str(err.value)


@pytest.mark.parametrize("eid", IDS)
@pytest.mark.parametrize("tier", ["quick", "paper"])
def test_every_tier_still_validates(eid, tier):
    validate(experiments.get(eid).TIERS[tier])


# the issue's cases: (experiment, --set, knob the error must name)
ISSUE_CASES = [
    ("chain-emergence", "m=200", "m"),  # today: a late error naming n
    ("chain-emergence", "m=1e12", "m"),  # today: hangs in set(range(1, m))
    ("chain-emergence", "seeds=3000000000", "seeds"),  # today: OverflowError (int32 seeds)
    ("bandit-regret", "arms=1e12", "arms"),
    ("parity-rl", "d=1e12", "d"),
    ("parity-threshold", "ds=1e12", "ds"),
    ("parity-threshold", "lam=1e-300", "lam"),  # today: OverflowError in analyze
    ("parity-threshold", "lam_chain=1e-4", "lam_chain"),  # analyze's chain-head optimum overflows
    ("chain-flow-vs-reinforce", "record_every=0", "record_every"),  # today: ZeroDivisionError
    ("chain-flow-vs-reinforce", "record_every=-8", "record_every"),
    ("chain-emergence", "softmax.lr=inf", "softmax.lr"),
    ("chain-emergence", "linear.tmp=nan", "linear.tmp"),
    ("parity-threshold", "lam=inf", "lam"),
    ("bandit-diversity", "tie=inf", "tie"),
    ("parity-rl", "temperature=nan", "temperature"),
    ("chain-flow-scaling", "init_consts=inf,0,0", "init_consts"),
    ("chain-flow-structure", "init_consts=2,nan,0", "init_consts"),
    ("chain-emergence", "seeds=5,5", "seeds"),
    ("chain-ood", "n=1000", "n"),
    ("chain-flow-structure", "seed=4294967296", "seed"),
    ("parity-rl", "star_batch=100000", "star_batch"),  # not StarSpec's own field name
    ("chain-flow-scaling", "opts.atol=inf", "opts.atol"),
]


@pytest.mark.parametrize("eid, assignment, knob", ISSUE_CASES)
def test_issue_cases_are_one_line_errors_naming_the_knob(eid, assignment, knob):
    start = time.perf_counter()
    message = _rejected(eid, assignment)
    assert f"'{knob}'" in message and "\n" not in message
    assert time.perf_counter() - start < 2.0  # bounds are checked before any O(size) work


@pytest.mark.parametrize("eid, knob", _knobs_of_type(float))
@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "1e39"])  # 1e39 is inf in float32
def test_every_float_knob_rejects_non_finite(eid, knob, bad):
    assert f"'{knob}'" in _rejected(eid, f"{knob}={bad}")


@pytest.mark.parametrize("eid, knob", _knobs_of_type(int))
def test_every_int_knob_has_an_upper_bound(eid, knob):
    assert f"'{knob}'" in _rejected(eid, f"{knob}=1e12")


@pytest.mark.parametrize("eid, knob", [(e, k) for e, k in _knobs_of_type(int) if k not in ("seeds", "seed")])
def test_every_int_knob_rejects_negative(eid, knob):
    assert f"'{knob}'" in _rejected(eid, f"{knob}=-1")


SEEDED = [eid for eid in IDS if any(f.name == "seeds" for f in dataclasses.fields(_quick(eid)))]


@pytest.mark.parametrize("eid", SEEDED)
def test_duplicate_seeds_are_an_error_everywhere(eid):
    assert "'seeds'" in _rejected(eid, "seeds=5,7,5")
    validate(apply_overrides(_quick(eid), ["seeds=5,7"]))


@pytest.mark.parametrize("eid", SEEDED)
def test_seeds_must_fit_int32(eid):
    assert "'seeds'" in _rejected(eid, f"seeds={2 ** 31}")
    assert "'seeds'" in _rejected(eid, f"seeds={-2 ** 31 - 1}")
    validate(apply_overrides(_quick(eid), [f"seeds={2 ** 31 - 1},{-2 ** 31}"]))


def test_int32_seed_bound_is_what_the_programs_accept():
    # the runs hold their seed as np.int32 and build the root key from it: the bound is that type's range
    for seed in (2 ** 31 - 1, -2 ** 31):
        jax.random.key_data(prng.root_key(np.int32(seed)))
    with pytest.raises(OverflowError):
        np.int32(2 ** 31)


def test_chain_length_bound_is_the_task_limit():
    from theoryrl.tasks.chain import ChainSpec
    ChainSpec(128, 256)  # the largest m accepted: its graph is valid
    with pytest.raises(ConfigError, match="'n'"):
        ChainSpec(129, 258)  # one more and the task itself refuses, naming n
    validate(apply_overrides(_quick("chain-emergence"), ["m=128"]))
    assert "'m'" in _rejected("chain-emergence", "m=129")


def test_lam_chain_bound_keeps_analyze_finite():
    from theoryrl.theory import parity as th
    smallest = 7.1e-4
    validate(apply_overrides(_quick("parity-threshold"), [f"lam_chain={smallest}"]))
    assert math.isfinite(th.long_correct_factor(smallest, 256))
    below = 1.0 / (2.0 * math.log(sys.float_info.max)) * 0.99
    with pytest.raises(OverflowError):
        th.long_correct_factor(below, 10)  # what analyze would hit below the bound
    assert "'lam_chain'" in _rejected("parity-threshold", f"lam_chain={below}")


@pytest.mark.parametrize("eid, assignment", [
    ("chain-emergence", "softmax.lr=0"),  # Adam steps of size 0
    ("chain-simple-mass", "recipe.lr=0"),
    ("bandit-diversity", "lr=0"),  # sampling from the initial policy (rl/bandit_pg.py)
    ("chain-flow-vs-reinforce", "adam_lr=0"),
    # issue 20: 0 steps / rounds / epochs and every learning rate 0 (num_chunks = 0 is a legal program)
    ("affine-uniform-vs-hard", "rl_steps=0"),
    ("affine-uniform-vs-hard", "rl_lr=0"),
    ("affine-uniform-vs-hard", "pretrain_lr=0"),
    ("bandit-regret", "horizon=0"),  # no learning rate: the pulls are its learning
    ("bandit-diversity", "rounds=0"),
    ("chain-emergence", "softmax.epochs=0"),
    ("chain-emergence", "linear.lr=0"),
    ("chain-simple-vs-hard", "recipe.epochs=0"),
    ("chain-simple-vs-hard", "recipe.lr=0"),
    ("chain-ood", "softmax.epochs=0"),
    ("chain-ood", "linear.lr=0"),
    ("chain-simple-mass", "recipe.epochs=0"),
    ("chain-flow-vs-reinforce", "sgd_lr=0"),
    ("chain-flow-vs-reinforce", "sgd_steps=0"),
    ("chain-flow-vs-reinforce", "adam_steps=0"),
])
def test_learning_switched_off_stays_legal(eid, assignment):
    validate(apply_overrides(_quick(eid), [assignment]))


def test_affine_zero_ntp_steps_needs_zero_reading_steps():
    """pretrain_steps = 0 is legal with reading_steps = 0 (the reading stage is part of the NTP steps)."""
    validate(apply_overrides(_quick("affine-uniform-vs-hard"), ["pretrain_steps=0", "reading_steps=0", "rl_steps=0"]))
    assert "'reading_steps'" in _rejected("affine-uniform-vs-hard", "pretrain_steps=0")
    assert "'rl_steps'" in _rejected("affine-uniform-vs-hard", "rl_steps=25")  # still a multiple of steps_per_chunk
    assert "'horizon'" in _rejected("bandit-regret", "horizon=1000")  # one chunk: no T-exponent to fit


# learning switched off in the parity experiments (issue 20): every learning rate and every step / round /
# epoch / sample count of a training stage accepts 0, alone or all at once; per-chunk sizes stay >= 1
PARITY_OFF = [
    ("parity-separation", ["lm.lr=0", "rl_lr=0", "ntp_steps=0", "pre_steps=0", "rl_steps=0"]),
    ("parity-rl", ["lm.lr=0", "rl_lr=0", "star_lr=0", "pretrain_steps=0", "low_pretrain_steps=0", "rl_steps=0",
                   "star_rounds=0"]),
    ("parity-threshold", ["lm.lr=0", "head_samples=0", "chain_samples=0", "lm_steps=0"]),
    ("parity-leap2", ["lm.lr=0", "steps=0"]),
    ("parity-star", ["pg_lr=0", "rounds=0", "epochs=0", "pg_steps=0", "head_samples=0", "chain_samples=0"]),
]


@pytest.mark.parametrize("eid, assignments", PARITY_OFF)
def test_parity_learning_switched_off_is_legal(eid, assignments):
    for assignment in assignments:
        validate(apply_overrides(_quick(eid), [assignment]))
    validate(apply_overrides(_quick(eid), assignments))


@pytest.mark.parametrize("eid, assignment, knob", [
    ("parity-separation", "steps_per_chunk=0", "steps_per_chunk"),
    ("parity-separation", "rl_steps=5", "rl_steps"),  # still a multiple of rl_steps_per_chunk = 10
    ("parity-rl", "pretrain_steps_per_chunk=0", "pretrain_steps_per_chunk"),
    ("parity-rl", "rl_steps_per_chunk=0", "rl_steps_per_chunk"),
    ("parity-threshold", "chunks=0", "chunks"),
    ("parity-threshold", "lm_chunks=0", "lm_chunks"),
    ("parity-leap2", "chunks=0", "chunks"),
    ("parity-star", "pg_steps_per_chunk=0", "pg_steps_per_chunk"),
])
def test_parity_per_chunk_sizes_stay_positive(eid, assignment, knob):
    assert f"'{knob}'" in _rejected(eid, assignment)
