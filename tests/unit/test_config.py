import dataclasses

import pytest

from theoryrl.core.config import (ConfigError, apply_overrides, canonical_json, check_seeds, from_dict, parse_value,
                                  require, require_finite_nonneg, require_finite_positive, require_float,
                                  require_floats, require_int, require_ints, run_id, to_dict, validate)


@dataclasses.dataclass(frozen=True)
class Inner:
    lr: float = 0.01
    horizon: int | None = None

    def validate(self):
        require(self.horizon is None or self.horizon >= 1, "horizon", self.horizon, ">= 1")


@dataclasses.dataclass(frozen=True)
class Outer:
    m: tuple[int, ...] = (4, 8)
    name: str = "x"
    flag: bool = False
    inner: Inner = Inner()


def test_typed_overrides_parse_by_field_type():
    cfg = apply_overrides(Outer(), ["m=4", "inner.lr=3e-2", "flag=true", "inner.horizon=7", "name=abc"])
    assert cfg == Outer(m=(4,), name="abc", flag=True, inner=Inner(lr=0.03, horizon=7))
    assert apply_overrides(Outer(), ["m=[4, 12]"]).m == (4, 12)
    assert apply_overrides(Outer(), ["m=4,12"]).m == (4, 12)
    assert apply_overrides(Outer(), ["inner.horizon=none"]).inner.horizon is None


@pytest.mark.parametrize("assignment, words", [
    ("nope=1", "unknown key 'nope'"),
    ("inner.nope=1", "unknown key 'inner.nope'"),
    ("m=4.5", "'m'"),
    ("inner.lr=fast", "'inner.lr'"),
    ("flag=maybe", "'flag'"),
    ("inner=3", "group"),
    ("novalue", "key=value"),
])
def test_bad_overrides_name_the_knob(assignment, words):
    with pytest.raises(ConfigError, match=words):
        apply_overrides(Outer(), [assignment])


def test_nested_validation_names_dotted_knob():
    with pytest.raises(ConfigError, match=r"'inner.horizon': 0"):
        validate(apply_overrides(Outer(), ["inner.horizon=0"]))


def test_round_trip_and_run_id_depend_only_on_content():
    cfg = apply_overrides(Outer(), ["inner.lr=0.5"])
    assert from_dict(Outer, to_dict(cfg)) == cfg
    # key order does not matter; any value change does
    assert canonical_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert run_id({"b": 1, "a": 2}) == run_id({"a": 2, "b": 1})
    assert run_id(to_dict(cfg)) != run_id(to_dict(Outer()))
    assert len(run_id({})) == 12


def test_parse_value_int_accepts_integral_floats_only():
    assert parse_value("1e3", int, "k") == 1000
    with pytest.raises(ConfigError):
        parse_value("1.5", int, "k")


@dataclasses.dataclass(frozen=True)
class Seeded:
    seeds: tuple[int, ...] = (1, 2)
    probs: tuple[float, ...] = (0.5, 0.5)
    seed: int = 0
    inner: Inner = Inner()


@pytest.mark.parametrize("assignment, knob", [
    ("inner.lr=nan", "inner.lr"), ("inner.lr=inf", "inner.lr"), ("inner.lr=-inf", "inner.lr"),
    ("inner.lr=1e39", "inner.lr"),  # finite in float64, inf in the float32 the programs use
    ("probs=0.5,nan", "probs"), ("seeds=3,3", "seeds"), ("seeds=2147483648", "seeds"),
    ("seed=-2147483649", "seed"),
])
def test_generic_checks_cover_fields_by_type_and_name(assignment, knob):
    # Seeded has no validate() of its own: these come from the field types and the names seeds/seed
    with pytest.raises(ConfigError, match=f"'{knob}'"):
        validate(apply_overrides(Seeded(), [assignment]))


def test_generic_checks_accept_good_values():
    validate(apply_overrides(Seeded(), ["seeds=-2147483648,2147483647", "probs=0,1e38", "inner.lr=0"]))


@pytest.mark.parametrize("value, ok", [(0.0, False), (1e-300, True), (3.0, True), (float("nan"), False),
                                       (float("inf"), False), (True, False), ("1", False)])
def test_require_finite_positive(value, ok):
    if ok:
        require_finite_positive(value, "k")
    else:
        with pytest.raises(ConfigError, match="'k'"):
            require_finite_positive(value, "k")


def test_range_helpers_open_and_closed_ends():
    require_finite_nonneg(0.0, "k")
    require_float(1.0, "k", 0.0, 1.0, lo_open=True)
    for bad in (0.0, 1.0 + 1e-12, float("nan")):
        with pytest.raises(ConfigError):
            require_float(bad, "k", 0.0, 1.0, lo_open=True)
    with pytest.raises(ConfigError):
        require_float(1.0, "k", 0.0, 1.0, hi_open=True)
    require_floats((0.0, 1.0), "k", 0.0, 1.0)
    with pytest.raises(ConfigError):
        require_floats((0.0, float("nan")), "k", 0.0, 1.0)
    with pytest.raises(ConfigError):
        require_floats((), "k")  # at least one by default


def test_int_helpers_reject_non_integers_and_out_of_range():
    require_int(5, "k", 1, 5)
    for bad in (0, 6, True, 2.0, None):
        with pytest.raises(ConfigError, match="'k'"):
            require_int(bad, "k", 1, 5)
    require_ints((1, 5), "k", 1, 5)
    for bad in ((), (1, 6), (1, 1), 3):
        with pytest.raises(ConfigError):
            require_ints(bad, "k", 1, 5, distinct=True)


def test_check_seeds_count_type_and_duplicates():
    check_seeds((0, 2 ** 31 - 1))
    for bad in ((), (1, 1), (2 ** 31,), (1.0,), tuple(range(1025))):
        with pytest.raises(ConfigError, match="'seeds'"):
            check_seeds(bad)
