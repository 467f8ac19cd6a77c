"""Argument checks for the optimisation API (in the style of scikit-learn's `check_scalar`).

Each returns the value as a plain Python type or raises an error that names the field, what was
given and what is allowed; nothing is coerced (a bool is not an int, "3" is not 3).
"""
from __future__ import annotations

import math
import numbers

__all__ = ["check_int", "check_number", "check_bool"]


def check_int(value, field: str, min_value: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{field}: expected an int, got {value!r} ({type(value).__name__})")
    if min_value is not None and value < min_value:
        raise ValueError(f"{field}: expected an int >= {min_value}, got {value!r}")
    return int(value)


def check_number(value, field: str, min_value: float | None = None, exclusive: bool = False) -> float:
    """A finite real number, >= `min_value` (> with `exclusive`)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{field}: expected a number, got {value!r} ({type(value).__name__})")
    below = min_value is not None and (value <= min_value if exclusive else value < min_value)
    if not math.isfinite(value) or below:
        bound = "" if min_value is None else f" {'>' if exclusive else '>='} {min_value:g}"
        raise ValueError(f"{field}: expected a finite number{bound}, got {value!r}")
    return float(value)


def check_bool(value, field: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{field}: expected True or False, got {value!r} ({type(value).__name__})")
    return value
