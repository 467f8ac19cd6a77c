"""Argument checks for every public entry point (in the style of scikit-learn's `check_scalar`).

Each returns the value as a plain Python type or raises an error that names the field, what was
given and what is allowed; nothing is coerced (a bool is not an int, "3" is not 3, "False" is not
False). TypeError for a value of the wrong type, ValueError for one out of range.
"""
from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

__all__ = ["check_int", "check_number", "check_bool", "check_seed", "check_str_list", "check_path", "plain_ints",
           "finite_nonnegative"]


def _given(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_int(value, field: str, min_value: int | None = None, max_value: int | None = None) -> int:
    if type(value) is not int and (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{field}: expected an int, got {_given(value)}")
    if (min_value is not None and value < min_value) or (max_value is not None and value > max_value):
        lo = "" if min_value is None else f" >= {min_value}"
        hi = "" if max_value is None else f"{' and' if lo else ''} <= {max_value}"
        raise ValueError(f"{field}: expected an int{lo}{hi}, got {value!r}")
    return int(value)


def finite_nonnegative(a: np.ndarray) -> bool:
    """Every entry finite and >= 0 (NaN fails), checked with one min and one max: the test that a
    prediction is servable, on every query's hot path."""
    return a.size == 0 or bool(a.min() >= 0 and a.max() < np.inf)


def check_number(value, field: str, min_value: float | None = None, exclusive: bool = False) -> float:
    """A finite real number, >= `min_value` (> with `exclusive`)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{field}: expected a number, got {_given(value)}")
    below = min_value is not None and (value <= min_value if exclusive else value < min_value)
    if not math.isfinite(value) or below:
        bound = "" if min_value is None else f" {'>' if exclusive else '>='} {min_value:g}"
        raise ValueError(f"{field}: expected a finite number{bound}, got {value!r}")
    return float(value)


def check_bool(value, field: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{field}: expected True or False, got {_given(value)}")
    return bool(value)


def check_seed(value, field: str = "seed"):
    """None, an int >= 0, or a numpy Generator / SeedSequence (passed through); what
    `np.random.default_rng` takes, minus what it would take silently (bools) or refuse deep inside
    numpy (negative ints, floats, strings, lists)."""
    if value is None or isinstance(value, (np.random.Generator, np.random.SeedSequence)):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{field}: expected None, an int >= 0, a numpy Generator or SeedSequence, "
                        f"got {_given(value)}")
    if value < 0:
        raise ValueError(f"{field}: expected an int >= 0 (or None), got {value!r}")
    return int(value)


def check_str_list(value, field: str, allow_empty: bool = False) -> list[str]:
    """One name (a str) or a list/tuple of names, as a list; anything else (a dict, a set, an int,
    a list holding a non-str) names the field."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"{field}: expected a str or a list of str, got {_given(value)}")
    bad = [v for v in items if not isinstance(v, str)]
    if bad:
        raise TypeError(f"{field}: expected a str or a list of str, got non-str entries {bad!r}")
    if not items and not allow_empty:
        raise ValueError(f"{field}: expected at least one name, got an empty {type(value).__name__}")
    return list(items)


def check_path(value, field: str):
    """A str or os.PathLike, as a pathlib.Path (an int or None names the field)."""
    import os
    from pathlib import Path

    if not isinstance(value, (str, os.PathLike)) or value == "":
        raise TypeError(f"{field}: expected a file path (str or pathlib.Path), got {_given(value)}")
    return Path(value)


def plain_ints(config) -> None:
    """Turn numpy integers in a frozen dataclass's fields into Python ints, in place (call from
    ``__post_init__``). A config is written into JSON (provenance, training state), which refuses
    numpy scalars; without this a numpy int accepted by `check_int` would fail only at the first
    write, after the work it describes was done."""
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        if isinstance(v, np.integer):
            object.__setattr__(config, f.name, int(v))
