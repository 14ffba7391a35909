"""The validation machinery of params.yaml: a schema is a dict of key -> Field.

`validate_section` fills defaults, rejects unknown keys (with a did-you-mean) and checks
types and ranges; every check takes (value, dotted key) and raises a ConfigError naming the key.
"""

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnnlab.errors import ConfigError

REQUIRED = object()


@dataclass(frozen=True)
class Field:
    check: Callable[[Any, str], Any]
    default: Any = REQUIRED
    help: str = ""


# --- value checks: each takes (value, key) and returns the value or raises ConfigError ---


def _type_name(value):
    return "null" if value is None else type(value).__name__


def choice(*options):
    def check(value, key):
        if value not in options:
            hint = did_you_mean(value, options)
            raise ConfigError(f"{key}: unknown value {value!r}{hint}; choose one of {', '.join(map(str, options))}")
        return value

    return check


def boolean(value, key):
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: must be true or false, got {value!r}")
    return value


def text(value, key):
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: must be a non-empty string, got {value!r}")
    return value


def number(low=None, high=None, *, low_open=False, high_open=False, integer=False):
    """A number within [low, high]; `*_open` excludes that bound."""

    def check(value, key):
        wanted = "an integer" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            raise ConfigError(f"{key}: must be {wanted}, got {value!r} ({_type_name(value)})")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number, got {value!r}")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            raise ConfigError(f"{key}: must be {_bounds(low, high, low_open, high_open)}, got {value!r}")
        return value

    return check


def _bounds(low, high, low_open, high_open):
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    return " and ".join(parts)


def optional(check):
    def check_optional(value, key):
        return None if value is None else check(value, key)

    return check_optional


def size_pair(value, key):
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if not (isinstance(value, (list, tuple)) and len(value) == 2):
        raise ConfigError(f"{key}: must be [height, width] (two positive integers), got {value!r}")
    return [number(1, 4096, integer=True)(v, f"{key}[{i}]") for i, v in enumerate(value)]


def auto_or_positive_int(value, key):
    if value == "auto":
        return value
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{key}: must be auto or a positive integer, got {value!r}")
    return number(1, integer=True)(value, key)


def positive_int_or_list(value, key):
    """A positive integer, or a non-empty list of them (checked as `key[i]`)."""
    if isinstance(value, list) and value:
        return [number(1, integer=True)(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{key}: must be a positive integer or a non-empty list of positive integers, got {value!r}")
    return number(1, integer=True)(value, key)


def section(schema):
    """A nested mapping validated against `schema`."""

    def check(value, key):
        return validate_section(value, schema, key)

    return check


def optional_section(schema):
    """A nested mapping that may be null (feature off); `true` means all defaults."""

    def check(value, key):
        if value is None or value is False:
            return None
        return validate_section({} if value is True else value, schema, key)

    return check


def did_you_mean(word, options):
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validate_section(values, schema, key):
    """Fill defaults and check every key of a mapping; unknown keys are errors."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{key}: must be a mapping of settings, got {values!r}")
    for name in values:
        if name not in schema:
            raise ConfigError(f"{key}.{name}: unknown key{did_you_mean(name, schema)}; known keys: {', '.join(schema)}")
    result = {}
    for name, field in schema.items():
        if name in values:
            result[name] = field.check(values[name], f"{key}.{name}")
        elif field.default is REQUIRED:
            raise ConfigError(f"{key}.{name}: missing (required)")
        else:
            result[name] = field.check(field.default, f"{key}.{name}")
    return result
