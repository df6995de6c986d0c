"""Negative tests of the chain gradient-flow verdicts (issue 20 §3): `analyze` fed synthetic runs
in three cases per verdict: the claim holds -> pass; it fails -> fail; nothing learned or a
precondition fails -> not judged. Plus the movement classification of unreached flows and the
float64 hard-only start field of Theorem 3 against the theory code.

The synthetic world (chain-flow-scaling): ms = (4, 8, 12), H = inf, init consts, hard set m-1,
mass_m = 12, cs = (0.5, 0.1, 0.01), ks = (1, 2, 3), rest hardest, float64; every run starts at c0 = 0.3,
b0 = 0.1 (forward-biased). Times are hand-made functions of m, c, k; log is natural.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theoryrl.core.stages import Run, Runs
from theoryrl.core.verdicts import FAIL, NOT_JUDGED, PASS
from theoryrl.experiments import chain_flow_common as fc
from theoryrl.experiments import chain_flow_scaling as sc
from theoryrl.theory import chain_flow as cf
from theoryrl.theory import flow_integrate as fi

C0 = 0.3
CFG = sc.Config(ms=(4, 8, 12), horizons=("inf",), inits=("consts",), hard_sets=("m-1",), mass_m=12,
                cs=(0.5, 0.1, 0.01), simple_k=1, rests=("hardest",), ks=(1, 2, 3), k_c=0.1, x64=True)


def fake_flow(m: int, t_eps, end: str = "reached", field: float = 1e-3, c0: float = C0, b0: float = 0.1) -> dict:
    """Arrays of one flow as `fc.run_flow` returns them, two saved points (start, last).
    end: reached (t_eps given) | guessing (alpha 2 -> 1, p_fwd 0.3 -> 0.01) | plateau (nothing moves)
    | cap (alpha 2 -> 3, p_fwd 0.3 -> 0.5, solver step limit)."""
    d = m - 1
    start = np.array([2.0, 0, 0, 0, 0])
    last = {"reached": [6.0, -2, 0.5, 0, 0], "guessing": [1.0, 0, -1, 0, 0], "plateau": start,
            "cap": [3.0, -0.5, 0, 0, 0]}[end]
    fwd_last = {"reached": 0.9, "guessing": 0.01, "plateau": 0.3, "cap": 0.5}[end]
    status = {"reached": fi.REACHED, "guessing": fi.TIME_CAP, "plateau": fi.TIME_CAP, "cap": fi.SOLVER_STOPPED}[end]
    p_fwd = np.array([np.full(d, 0.3), np.full(d, fwd_last)])
    success = np.array([np.full(d, 0.2), np.full(d, 0.9 if end == "reached" else 0.2)])
    return {"status": np.asarray(status), "last": np.asarray(1), "t": np.array([0.0, 1.0]),
            "t_eps": np.asarray(np.inf if t_eps is None else float(t_eps)), "t_end": np.asarray(1e9 if t_eps is None else t_eps),
            "num_steps": np.asarray(100), "consts": np.array([start, np.asarray(last, float)]),
            "c0": np.asarray(c0), "b0": np.asarray(b0), "grad_norm0": np.asarray(abs(field)),
            "field0": np.array([field, 0, 0, 0, 0]), "p_fwd": p_fwd, "p_jump": 1 - p_fwd, "success": success,
            "reach": success, "length": np.full((2, d), float(m)), "train_reward": np.array([0.2, 0.9])}


def shape(m):
    """The bound's m-shape for uniform distances: m^2 (m-1) / c0^3."""
    return m * m * (m - 1) / C0 ** 3


def world(t_a=lambda m: 10 * shape(m), t_b=lambda m: 10 * shape(m) * math.exp(m),
          field_b=lambda m: math.exp(-2 * m), t_c=lambda c: 100 / c, t_d=lambda k: 100 * C0 ** -(k + 2),
          end="reached", horizon="inf", cfg=CFG) -> Runs:
    """All runs of `cfg` at one init and horizon; a time function returning None, or end != reached,
    makes that run unreached (t_eps None) and ended as `end`."""
    runs = []

    def add(knobs, t, field=1e-3):
        state = end if (t is None or end != "reached") else "reached"
        runs.append(Run("flows", dict(knobs, init="consts", horizon=horizon),
                        fake_flow(knobs["m"], None if state != "reached" else t, state, field)))

    for m in cfg.ms:
        add(dict(part="a", m=m, train="uniform", c=None, k=None), t_a(m))
        add(dict(part="b", m=m, train="m-1", c=None, k=None), t_b(m), field_b(m))
    for c in cfg.cs:
        add(dict(part="c", m=cfg.mass_m, train="rest hardest", c=c, k=cfg.simple_k), t_c(c))
    for k in cfg.ks:
        add(dict(part="d", m=cfg.mass_m, train="rest hardest", c=cfg.k_c, k=k), t_d(k))
    return Runs(runs)


def verdicts(runs, cfg=CFG, tag="consts,H=inf"):
    out = sc.analyze(cfg, runs)
    return {k.replace(f"[{tag}", "["): v for k, v in out.verdicts.items()}


A, GROWS, DECAY = "a_polynomial[]", "b_hard_over_uniform_grows[,m-1]", "b_start_field_decays_exponentially[,m-1]"
C_BOUND, C_TIGHT, D_BOUND = "c_T_times_c_bounded[,rest=hardest]", "c_tight_inverse[,rest=hardest]", "d_T_c0k_bounded[,rest=hardest]"


def test_every_verdict_passes_in_the_theorems_world():
    """T_a = 10 shape(m): log(T/shape) = log 10, slope 0 <= 0.25 (margin 0.25). T_b = T_a e^m: log ratio = m,
    slope 1 >= 0.01. field = e^(-2m): decay rates 2, 2 -> ratio 1 >= (1 + r_pow)/2 with r_pow =
    log(12/8)/log(8/4) = 0.585 -> 0.79. T_c = 100/c: slope 1 <= 1.1. T_d = 100 c0^-(k+2): slope 0 <= 0.25.
    Tightness with T_c = 100/c + 50 separately below."""
    v = verdicts(world())
    assert {k: x.status for k, x in v.items()} == {A: PASS, GROWS: PASS, DECAY: PASS, C_BOUND: PASS,
                                                  C_TIGHT: PASS, D_BOUND: PASS}
    assert v[A].value == pytest.approx(0.0, abs=1e-9) and v[A].margin == pytest.approx(0.25, abs=1e-9)
    assert v[GROWS].value == pytest.approx(1.0, abs=1e-9)
    assert v[DECAY].value == pytest.approx(1.0) and v[DECAY].threshold == pytest.approx((1 + math.log(1.5) / math.log(2)) / 2)
    assert v[C_BOUND].value == pytest.approx(1.0) and v[C_BOUND].margin == pytest.approx(0.1)
    assert v[D_BOUND].value == pytest.approx(0.0, abs=1e-9)
    assert v[A].paper and v[GROWS].paper  # the paper's statement is cited


def test_nothing_learned_is_never_judged():
    """Every flow plateaued (nothing moved, no time reached): no verdict may pass or fail."""
    none = lambda *_: None
    v = verdicts(world(t_a=none, t_b=none, t_c=none, t_d=none, end="plateau"))
    assert all(x.status == NOT_JUDGED for x in v.values()), {k: x.status for k, x in v.items()}
    assert "positive control" in v[GROWS].reason and "positive control" in v[DECAY].reason


def test_polynomial_in_m():
    """fail: T_a = 10 shape(m) m^2 -> log(T/shape) slope 2 > 0.25 (margin -1.75); a flow that went
    guessing at m = 12 also fails; not judged: H = m+1 (official regime) and an uncapped plateau."""
    v = verdicts(world(t_a=lambda m: 10 * shape(m) * m * m))
    assert v[A].status == FAIL and v[A].margin == pytest.approx(-1.75)
    assert verdicts(world(t_a=lambda m: None if m == 12 else 10 * shape(m), end="guessing"))[A].status == FAIL
    cfg = sc.Config(**{**CFG.__dict__, "horizons": ("m+1",)})
    v = verdicts(world(horizon="m+1", cfg=cfg), cfg=cfg, tag="consts,H=m+1")
    assert v[A].status == NOT_JUDGED and "H = inf" in v[A].reason
    assert v[C_BOUND].status == NOT_JUDGED and v[D_BOUND].status == NOT_JUDGED


def test_hard_over_uniform_grows():
    """fail: T_b = T_a e^(-m/4): log ratio slope -0.25 < 0.01. pass with lower bounds: hard unreached at
    m = 12 (cap, t_end = 1e9) counts as T >= 1e9 -- ratio 1e9 / (10 shape(12)) still rises.
    not judged: uniform unreached at m = 12 (the positive control); a float32 flow whose hard-only
    start field e^-24 = 3.8e-11 at m = 12 is below the 1e-8 float32 floor."""
    v = verdicts(world(t_b=lambda m: 10 * shape(m) * math.exp(-m / 4)))
    assert v[GROWS].status == FAIL and v[GROWS].value == pytest.approx(-0.25)
    v = verdicts(world(t_b=lambda m: None if m == 12 else 10 * shape(m) * math.exp(m / 4)))
    assert v[GROWS].status == PASS and v[GROWS].value > 0.01
    runs = world(t_a=lambda m: None if m == 12 else 10 * shape(m))
    assert verdicts(runs)[GROWS].status == NOT_JUDGED and verdicts(runs)[DECAY].status == NOT_JUDGED
    cfg32 = sc.Config(**{**CFG.__dict__, "x64": False})
    v = verdicts(world(cfg=cfg32), cfg=cfg32)
    assert v[GROWS].status == NOT_JUDGED and "float64" in v[GROWS].reason and v[DECAY].status == PASS


def test_start_field_decays_exponentially():
    """fail: field = m^-3, a power law: rates 3 log 2 / 4 = 0.520 and 3 log 1.5 / 4 = 0.304, ratio
    0.585 = r_pow < 0.79. A field growing with m fails on its first interval."""
    v = verdicts(world(field_b=lambda m: m ** -3.0))
    assert v[DECAY].status == FAIL and v[DECAY].value == pytest.approx(math.log(1.5) / math.log(2))
    assert verdicts(world(field_b=lambda m: math.exp(m)))[DECAY].status == FAIL


def test_T_times_c_bounded():
    """fail: T_c = 100/c^2 -> slope 2 > 1.1 (margin -0.9); not judged: the smallest c plateaued."""
    v = verdicts(world(t_c=lambda c: 100 / c ** 2))
    assert v[C_BOUND].status == FAIL and v[C_BOUND].margin == pytest.approx(-0.9)
    v = verdicts(world(t_c=lambda c: None if c == 0.01 else 100 / c))
    assert v[C_BOUND].status == NOT_JUDGED and v[C_TIGHT].status == NOT_JUDGED


def test_tight_inverse():
    """pass: T = 100/c + 50: local slope log(10050/1050)/log 10 = 0.981, |0.981 - 1| <= 0.2. fail:
    T = 1000 c^-0.3, slope 0.3 (|.-1| = 0.7). not judged: hard-only field at m = mass_m = 12 is 1e-3
    (hard examples give signal), or the rest is not on the hardest distance."""
    v = verdicts(world(t_c=lambda c: 100 / c + 50))
    assert v[C_TIGHT].status == PASS and v[C_TIGHT].value == pytest.approx(1 - math.log10(10050 / 1050))
    v = verdicts(world(t_c=lambda c: 1000 * c ** -0.3))
    assert v[C_TIGHT].status == FAIL and v[C_TIGHT].value == pytest.approx(0.7)
    v = verdicts(world(field_b=lambda m: 1e-3 * math.exp(-m)))
    assert v[C_TIGHT].status == NOT_JUDGED and "no signal" in v[C_TIGHT].reason


def test_T_c0k_bounded():
    """fail: T_d = 100 c0^-2(k+2): slope of log(T c0^(k+2)) = -log 0.3 = 1.204 > 0.25; not judged: the
    largest k hit the solver cap (T only bounded below); a backward-biased start (b0 = 0) is not judged."""
    v = verdicts(world(t_d=lambda k: 100 * C0 ** (-2 * (k + 2))))
    assert v[D_BOUND].status == FAIL and v[D_BOUND].value == pytest.approx(-math.log(C0))
    v = verdicts(world(t_d=lambda k: None if k == 3 else 100 * C0 ** -(k + 2), end="cap"))
    assert v[D_BOUND].status == NOT_JUDGED


def test_unreached_flows_are_classified_by_movement():
    """guessing: alpha or p_fwd fell; plateau: nothing moved beyond 1e-3; cap: moved toward traversal."""
    assert fc.end_state(fake_flow(8, 10.0)) == "reached"
    assert fc.end_state(fake_flow(8, None, "guessing")) == "guessing"
    assert fc.end_state(fake_flow(8, None, "plateau")) == "plateau"
    assert fc.end_state(fake_flow(8, None, "cap")) == "cap"
    still = fake_flow(8, None, "plateau")
    still["consts"][1, 0] += 5e-4  # below the tolerance: still a plateau, though p_jump > p_fwd throughout
    assert fc.end_state(still) == "plateau"
    fell = fake_flow(8, None, "cap")
    fell["p_fwd"][1] = 0.29  # alpha rose but p_fwd at the farthest source fell: guessing
    assert fc.end_state(fell) == "guessing"


def test_hard_only_start_field_decays_like_the_theory_values():
    """float64, H = inf, (2, 0, 0), metric A: alpha-component about 1.5e-3, 1.9e-6, 3.2e-10, 1.5e-14 at
    m = 4, 8, 12, 16 (issue 20); `fc.start_field` computes it in float64 whatever the flow's precision."""
    expect = {4: 1.5077e-3, 8: 1.8574e-6, 12: 3.2284e-10, 16: 1.5173e-14}
    for m, value in expect.items():
        fs = cf.FlowSpec(m=m, horizon=0)
        field = fc.start_field(fs, np.array([2.0, 0, 0, 0, 0]), fc.hardest(m), "A")
        assert field.dtype == np.float64 and field[0] == pytest.approx(value, rel=1e-3)
    assert jnp.zeros(1).dtype == jnp.float32 and not jax.config.jax_enable_x64  # precision restored
