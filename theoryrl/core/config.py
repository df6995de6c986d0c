"""Frozen-dataclass configs, typed `--set a.b=v` overrides, canonical JSON and run ids.

Every experiment config is a (possibly nested) frozen dataclass. Overrides are parsed with the
target field's declared type, unknown keys are errors, and `validate()` on each dataclass checks
ranges *before any compute* so that bad input fails with one line naming the knob.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from typing import Any, Sequence


class ConfigError(ValueError):
    """A bad knob value: the message names the knob, the value and what is allowed."""


def require(ok: bool, knob: str, value: Any, allowed: str) -> None:
    """Raise a one-line ConfigError unless `ok`."""
    if not ok:
        raise ConfigError(f"invalid value for '{knob}': {value!r} (allowed: {allowed})")


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
    """Call `validate()` on every dataclass in the tree (children first); errors from a nested
    group name the dotted knob (e.g. 'softmax.horizon')."""
    for f in dataclasses.fields(cfg):
        child = getattr(cfg, f.name)
        if dataclasses.is_dataclass(child):
            try:
                validate(child)
            except ConfigError as err:
                raise ConfigError(str(err).replace("invalid value for '", f"invalid value for '{f.name}.", 1)) from None
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
