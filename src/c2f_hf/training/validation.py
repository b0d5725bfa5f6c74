"""Checks of the values a user hands to training, one function per kind of value.

Each check takes the field's name and the value and returns the value in its declared type, or raises a ValueError
that names the field, what was expected and what came: `save_every: expected a positive integer, got '1e3'`.
Numbers convert only exactly: an integer field takes `1000` or `1000.0` but not `1000.5`, `True` or the text
`'1e3'`; a number field takes integers, floats and number text (PyYAML reads `1e-3` as text), never NaN or an
infinity.
"""

import math
from collections.abc import Callable
from typing import Any

Check = Callable[[str, Any], Any]


def _refuse(name: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"{name}: expected {expected}, got {value!r}")


def _exact_integer(value: Any) -> int | None:
    """`value` as an int when it is exactly one (an int, or a float without fraction), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _finite_number(value: Any) -> float | None:
    """`value` as a finite float (from an int, a float or number text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def integer_in(low: int, high: int | None = None, bounds: str | None = None) -> Check:
    """A check of integers in `[low, high]` (no upper bound when `high` is None); `bounds` words the range."""
    if bounds is None:
        bounds = f"an integer in [{low}, {high}]" if high is not None else f"an integer of at least {low}"

    def check(name: str, value: Any) -> int:
        number = _exact_integer(value)
        if number is None or number < low or (high is not None and number > high):
            raise _refuse(name, bounds, value)
        return number

    return check


positive_integer = integer_in(1, bounds="a positive integer")
non_negative_integer = integer_in(0, bounds="a non-negative integer")


def number_in(low: float, high: float, high_included: bool, bounds: str) -> Check:
    """A check of finite numbers in `[low, high]`, or `[low, high)` without `high_included`; `bounds` words it."""

    def check(name: str, value: Any) -> float:
        number = _finite_number(value)
        if number is None or number < low or number > high or (number == high and not high_included):
            raise _refuse(name, bounds, value)
        return number

    return check


def positive_number(name: str, value: Any) -> float:
    """A finite number above 0."""
    number = _finite_number(value)
    if number is None or number <= 0.0:
        raise _refuse(name, "a positive finite number", value)
    return number


non_negative_number = number_in(0.0, math.inf, True, "a non-negative finite number")
probability = number_in(0.0, 1.0, True, "a probability in [0, 1]")
fraction = number_in(0.0, 1.0, False, "a number in [0, 1)")


def flag(name: str, value: Any) -> bool:
    """A boolean (YAML `true` / `false`)."""
    if not isinstance(value, bool):
        raise _refuse(name, "true or false", value)
    return value


def text(name: str, value: Any) -> str:
    """A string (quote numbers in YAML: `revision: '0123'`)."""
    if not isinstance(value, str):
        raise _refuse(name, "text", value)
    return value


def optional(check: Check) -> Check:
    """`check`, or None."""
    return lambda name, value: None if value is None else check(name, value)


def one_of(choices: list[str]) -> Check:
    """A check of one string among `choices`."""

    def check(name: str, value: Any) -> str:
        if value not in choices or not isinstance(value, str):
            raise _refuse(name, f"one of {choices}", value)
        return value

    return check


def text_list(name: str, value: Any) -> list[str]:
    """A list of strings, or one comma-separated string."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, (list, tuple)):
        raise _refuse(name, "a list of text", value)
    return [text(f"{name}[{index}]", item) for index, item in enumerate(value)]


def fraction_pair(name: str, value: Any) -> tuple[float, float]:
    """Two numbers in [0, 1) (Adam's betas)."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _refuse(name, "two numbers in [0, 1)", value)
    return tuple(fraction(f"{name}[{index}]", item) for index, item in enumerate(value))


def mapping_of(checks: dict[str, Check]) -> Check:
    """A check of a mapping whose keys are among `checks` and whose values pass theirs (named `field.key`)."""

    def check(name: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueError(f"{name}: expected a mapping, got {type(value).__name__}")
        unknown = sorted(str(key) for key in value if key not in checks)
        if unknown:
            raise ValueError(f"{name}: unknown fields {unknown}; allowed: {sorted(checks)}")
        return {key: checks[key](f"{name}.{key}", item) for key, item in value.items()}

    return check
