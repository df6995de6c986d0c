"""Frozen-dataclass configs, typed `--set a.b=v` overrides, canonical JSON and run ids.

Every experiment config is a (possibly nested) frozen dataclass. Overrides are parsed with the
target field's declared type, unknown keys are errors, and `validate()` on each dataclass checks
ranges *before any compute* so that bad input fails with one line naming the knob.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from typing import Any, Sequence


class ConfigError(ValueError):
    """A bad knob value: the message names the knob, the value and what is allowed."""


def require(ok: bool, knob: str, value: Any, allowed: str) -> None:
    """Raise a one-line ConfigError unless `ok`."""
    if not ok:
        raise ConfigError(f"invalid value for '{knob}': {value!r} (allowed: {allowed})")


# The largest magnitude a float knob may have: the programs hold their float knobs in float32, where a
# larger value is inf. A fact of the number format, not a tunable choice.
FLOAT32_MAX = 3.4028234663852886e38
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
MAX_SEEDS = 1024  # seeds of one run or one sweep point: more is a typo, not a study


def is_int(value: Any) -> bool:
    """A true integer (bools, floats and numpy scalars of other kinds are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite(value: Any) -> bool:
    """A real number that is neither NaN nor +-inf and fits float32 (where the programs hold it)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and abs(value) <= FLOAT32_MAX)


def _range_text(lo, hi, lo_open: bool, hi_open: bool) -> str:
    left = "" if lo is None else f"{lo} <{'' if lo_open else '='} "
    right = "" if hi is None else f" <{'' if hi_open else '='} {hi}"
    return f"{left}x{right}"


def require_int(value: Any, knob: str, lo: int, hi: int, allowed: str | None = None) -> None:
    """One-line ConfigError unless `value` is an integer in lo..hi. Every size knob has a finite `hi`
    (what one accelerator can run), checked before anything is allocated or looped over."""
    require(is_int(value) and lo <= value <= hi, knob, value, allowed or f"an integer in {lo}..{hi}")


def require_ints(values: Any, knob: str, lo: int, hi: int, *, min_len: int = 1, max_len: int = 1024,
                 distinct: bool = False, allowed: str | None = None) -> None:
    """A tuple of lo..hi integers with min_len..max_len entries (distinct ones if asked)."""
    ok = (isinstance(values, (tuple, list)) and min_len <= len(values) <= max_len
          and all(is_int(v) and lo <= v <= hi for v in values)
          and (not distinct or len(set(values)) == len(values)))
    text = allowed or (f"{'distinct ' if distinct else ''}integers in {lo}..{hi}, "
                       f"{min_len}..{max_len} of them")
    require(ok, knob, values, text)


def require_float(value: Any, knob: str, lo: float | None = None, hi: float | None = None, *,
                  lo_open: bool = False, hi_open: bool = False, allowed: str | None = None) -> None:
    """One-line ConfigError unless `value` is a finite number (never NaN or inf) in the given range
    (bounds None: unbounded on that side, up to the float32 range)."""
    ok = is_finite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    require(ok, knob, value, allowed or f"a finite number with {_range_text(lo, hi, lo_open, hi_open)}")


def require_finite_positive(value: Any, knob: str, hi: float | None = None) -> None:
    """A finite number > 0 (the common case: rates, temperatures, tolerances)."""
    require_float(value, knob, 0.0, hi, lo_open=True)


def require_finite_nonneg(value: Any, knob: str, hi: float | None = None) -> None:
    """A finite number >= 0 (a learning rate of 0 = learning switched off; penalties; noise)."""
    require_float(value, knob, 0.0, hi)


def require_floats(values: Any, knob: str, lo: float | None = None, hi: float | None = None, *,
                   lo_open: bool = False, hi_open: bool = False, min_len: int = 1, max_len: int = 1024,
                   allowed: str | None = None) -> None:
    """A tuple of finite numbers in a range, with min_len..max_len entries."""
    ok = isinstance(values, (tuple, list)) and min_len <= len(values) <= max_len
    for v in values if ok else ():
        ok = ok and is_finite(v) and (lo is None or (v > lo if lo_open else v >= lo)) \
            and (hi is None or (v < hi if hi_open else v <= hi))
    require(ok, knob, values,
            allowed or f"finite numbers with {_range_text(lo, hi, lo_open, hi_open)}, {min_len}..{max_len} of them")


def check_seeds(seeds: Any, knob: str = "seeds", max_count: int = MAX_SEEDS) -> None:
    """Run seeds: 1..max_count distinct int32 values (every program builds its key from an int32 seed;
    a repeated seed would be the same run twice, averaged as if it were two)."""
    require(isinstance(seeds, (tuple, list)) and 1 <= len(seeds) <= max_count, knob, seeds,
            f"1..{max_count} seeds")
    require(all(is_int(s) and INT32_MIN <= s <= INT32_MAX for s in seeds), knob, seeds,
            f"integers in {INT32_MIN}..{INT32_MAX} (int32)")
    require(len(set(seeds)) == len(seeds), knob, seeds,
            "distinct seeds (a repeated seed is the same run twice)")


def _check_generic(cfg) -> None:
    """Checks every config gets from its field types alone, so a knob added later is covered: a float
    knob (scalar, optional or tuple) is finite and within float32; a `seeds` tuple is distinct int32
    seeds; a `seed` is an int32."""
    hints = _field_types(type(cfg))
    for f in dataclasses.fields(cfg):
        value, typ = getattr(cfg, f.name), hints.get(f.name)
        if dataclasses.is_dataclass(value):
            continue
        if f.name == "seeds" and isinstance(value, tuple):
            check_seeds(value, f.name)
        elif f.name == "seed":
            require(is_int(value) and INT32_MIN <= value <= INT32_MAX, f.name, value,
                    f"an integer in {INT32_MIN}..{INT32_MAX} (int32)")
        if _is_float_type(typ):
            items = value if isinstance(value, tuple) else (value,)
            require(all(v is None or is_finite(v) for v in items), f.name, value,
                    "finite numbers (no NaN or inf) within the float32 range")


def _is_float_type(typ: Any) -> bool:
    if typ is float:
        return True
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType, tuple):
        return any(_is_float_type(a) for a in typing.get_args(typ) if a is not Ellipsis)
    return False


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parse_scalar(text: str, typ: type, knob: str):
    if typ is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"invalid value for '{knob}': {text!r} (allowed: true/false)")
    if typ is int:
        try:
            as_float = float(text)
        except ValueError:
            raise ConfigError(f"invalid value for '{knob}': {text!r} (allowed: an integer)") from None
        if not as_float.is_integer():
            raise ConfigError(f"invalid value for '{knob}': {text!r} (allowed: an integer)")
        return int(as_float)
    if typ is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"invalid value for '{knob}': {text!r} (allowed: a number)") from None
    if typ is str:
        return text
    raise ConfigError(f"'{knob}' has type {typ} which cannot be set from the command line")


def parse_value(text: str, typ: Any, knob: str):
    """Parse `text` as a value of type `typ` (int, float, bool, str, tuple[T, ...], T | None)."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if text.strip().lower() in ("none", "null"):
            return None
        return parse_value(text, args[0], knob)
    if origin is tuple:
        (elem, *rest) = typing.get_args(typ)
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                items = json.loads(stripped)
            except json.JSONDecodeError as err:
                raise ConfigError(f"invalid value for '{knob}': {text!r} ({err})") from None
            items = [str(x) for x in items]
        else:
            items = [s for s in stripped.split(",") if s.strip() != ""]
        return tuple(_parse_scalar(s, elem, knob) for s in items)
    return _parse_scalar(text, typ, knob)


def apply_overrides(cfg, assignments: Sequence[str]):
    """Return `cfg` with each 'dotted.key=value' applied; raises ConfigError on unknown keys."""
    for assignment in assignments:
        if "=" not in assignment:
            raise ConfigError(f"--set expects key=value, got {assignment!r}")
        key, text = assignment.split("=", 1)
        cfg = _set_path(cfg, key.strip().split("."), text, key.strip())
    return cfg


def _set_path(obj, path: list[str], text: str, knob: str):
    names = [f.name for f in dataclasses.fields(obj)]
    head = path[0]
    if head not in names:
        raise ConfigError(f"unknown key '{knob}' (known keys here: {', '.join(names)})")
    current = getattr(obj, head)
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"unknown key '{knob}': '{head}' has no sub-keys")
        return dataclasses.replace(obj, **{head: _set_path(current, path[1:], text, knob)})
    if dataclasses.is_dataclass(current):
        raise ConfigError(f"'{knob}' is a group; set one of its keys, e.g. {knob}.<key>=...")
    value = parse_value(text, _field_types(type(obj))[head], knob)
    return dataclasses.replace(obj, **{head: value})


def validate(cfg) -> None:
    """Call `validate()` on every dataclass in the tree (children first), after the checks every
    field gets from its type (finite floats, distinct int32 seeds); errors from a nested group name
    the dotted knob (e.g. 'softmax.horizon')."""
    for f in dataclasses.fields(cfg):
        child = getattr(cfg, f.name)
        if dataclasses.is_dataclass(child):
            try:
                validate(child)
            except ConfigError as err:
                raise ConfigError(str(err).replace("invalid value for '", f"invalid value for '{f.name}.", 1)) from None
    _check_generic(cfg)
    if hasattr(cfg, "validate"):
        cfg.validate()


def to_dict(cfg) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls, data: dict):
    """Rebuild a (nested) config dataclass from `to_dict` output."""
    hints = _field_types(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        typ, value = hints[f.name], data[f.name]
        if dataclasses.is_dataclass(typ):
            value = from_dict(typ, value)
        elif typing.get_origin(typ) is tuple and value is not None:
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def run_id(data: Any) -> str:
    """First 12 hex digits of sha256 of the canonical JSON: the results folder name."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:12]
