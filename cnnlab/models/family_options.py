"""Option specifications for the model families: default, one-line doc and a value check.

A check returns None for a valid value, otherwise the text that follows
`<key>.<option>: ` in the ConfigError message ("must be a positive integer, got -2").
"""

from collections.abc import Callable
from dataclasses import dataclass

STEMS = ("auto", "small", "medium", "classic")


@dataclass(frozen=True)
class Option:
    default: object
    doc: str
    check: Callable[[object], "str | None"]


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive_int(value):
    if _is_int(value) and value > 0:
        return None
    return f"must be a positive integer, got {value!r}"


def positive_number(value):
    if _is_number(value) and value > 0:
        return None
    return f"must be a positive number, got {value!r}"


def boolean(value):
    if isinstance(value, bool):
        return None
    return f"must be true or false, got {value!r}"


def one_of(*choices):
    def check(value):
        if value in choices:
            return None
        listed = " | ".join("null" if choice is None else str(choice) for choice in choices)
        return f"must be one of {listed}, got {value!r}"

    return check


def int_between(low, high, allow_none=False):
    def check(value):
        if (allow_none and value is None) or (_is_int(value) and low <= value <= high):
            return None
        prefix = "null or " if allow_none else ""
        return f"must be {prefix}an integer from {low} to {high}, got {value!r}"

    return check


def auto_or_positive_int(value):
    if value == "auto" or positive_int(value) is None:
        return None
    return f"must be auto or a positive integer, got {value!r}"


def positive_int_or_list(value):
    if positive_int(value) is None:
        return None
    if isinstance(value, list) and value and all(positive_int(item) is None for item in value):
        return None
    return f"must be a positive integer or a non-empty list of positive integers, got {value!r}"
