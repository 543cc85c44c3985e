"""Building an algorithm's frozen Config from user overrides, with one-line errors.

Values may come as Python objects (the API) or strings (``--set key=value`` on the command line);
strings are parsed by the type of the field's default.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from pgzoo.errors import PgzooError, check

MAX_INT = 2**31 - 1  # integer fields size arrays and count steps in 32 bits
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _parse(name: str, default: Any, value: Any, optional_float: bool = False) -> Any:
    value = _parse_value(name, default, value, optional_float)
    if isinstance(value, float):
        check(math.isfinite(value), f"{name} must be a finite number, got {value!r}")
    elif isinstance(value, int) and not isinstance(value, bool):
        check(abs(value) <= MAX_INT, f"{name} must be at most {MAX_INT:,} in magnitude, "
              f"got {value!r}")
    elif isinstance(value, tuple):
        check(all(1 <= v <= MAX_INT for v in value),
              f"{name} must be positive integers (layer sizes) such as 64,64, got "
              f"{','.join(map(str, value)) or 'nothing'}")
    return value


def _parse_value(name: str, default: Any, value: Any, optional_float: bool = False) -> Any:
    if optional_float:  # a float field whose default None means "off"
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "")):
            return None
        return _parse_value(name, 0.0, value)
    kind = type(default)
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        try:
            if kind is bool:
                if text.lower() in _TRUE | _FALSE:
                    return text.lower() in _TRUE
                raise ValueError
            if kind is tuple:
                return tuple(int(v) for v in text.strip("()[] ").split(",") if v.strip())
            return kind(float(text)) if kind is int and float(text).is_integer() else kind(text)
        except ValueError:
            kind_name = _type_name(default)
            article = "an" if kind_name[0] in "aeiou" else "a"
            raise PgzooError(f"{name} must be {article} {kind_name}, got {value!r}") from None
    if kind is bool:
        check(isinstance(value, bool), f"{name} must be true or false, got {value!r}")
    elif kind is int:
        check(isinstance(value, int) and not isinstance(value, bool),
              f"{name} must be an integer, got {value!r}")
    elif kind is float:
        check(isinstance(value, int | float) and not isinstance(value, bool),
              f"{name} must be a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:
            raise PgzooError(f"{name} must be a finite number, got an integer of "
                             f"{len(str(abs(value)))} digits") from None
    elif kind is tuple:
        check(isinstance(value, list | tuple) and all(isinstance(v, int) for v in value),
              f"{name} must be a list of integers such as 64,64, got {value!r}")
        value = tuple(value)
    elif kind is str:
        check(isinstance(value, str), f"{name} must be a string, got {value!r}")
    return value


def _type_name(default: Any) -> str:
    return {bool: "boolean (true/false)", int: "integer", float: "number",
            tuple: "list of integers such as 64,64", str: "string"}.get(type(default), "value")


def build(cls: type, overrides: Mapping[str, Any], algo: str) -> Any:
    """``cls(**overrides)`` with unknown keys and ill-typed values rejected in one line."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise PgzooError(f"unknown config key {unknown[0]!r} for {algo}; valid keys: "
                         + ", ".join(fields))
    values = {k: _parse(k, fields[k].default, v, fields[k].default is None)
              for k, v in overrides.items()}
    return cls(**values)


def positive(config: Any, *names: str) -> None:
    """Each named field is > 0 (or None, for optional fields that are off)."""
    for name in names:
        value = getattr(config, name)
        check(value is None or value > 0, f"{name} must be > 0, got {value!r}")


def non_negative(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        check(value >= 0, f"{name} must be >= 0, got {value!r}")


def unit_interval(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        check(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value!r}")


def one_of(config: Any, name: str, options) -> None:
    value = getattr(config, name)
    check(value in options, f"{name} must be one of {', '.join(map(str, options))}, got {value!r}")


def to_dict(config: Any) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def check_divides(config: Any, name: str, total: int, total_name: str) -> None:
    value = getattr(config, name)
    check(value > 0 and total % value == 0,
          f"{name} must divide {total_name} = {total}, got {value!r}")
