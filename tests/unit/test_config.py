import dataclasses

import pytest

from theoryrl.core.config import (ConfigError, apply_overrides, canonical_json, from_dict, parse_value, require,
                                  run_id, to_dict, validate)


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
