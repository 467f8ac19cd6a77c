"""When an optimisation loop stops: small termination objects, combined with ``|`` (any of).

The loop calls ``termination.done(progress)`` before every ask; any object with such a method
works (e.g. a target hypervolume of your own). Checks happen between batches, so a run may go
past a limit by up to one batch (`runner.run` records only the first `budget` evaluations).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

from ..validation import check_int, check_number

__all__ = ["Progress", "Termination", "MaxEvals", "MaxTime", "MaxCost", "AnyOf", "as_termination"]


@dataclass(frozen=True)
class Progress:
    """Where a run stands after its last told batch."""

    n_evals: int = 0          # evaluations so far
    n_batches: int = 0
    elapsed_s: float = 0.0    # wall-clock since the first ask (asks, evaluations and tells)
    optimizer_s: float = 0.0  # of which inside ask() and tell()
    cost: float = 0.0         # simulated training time so far, in full trainings (see loop.py)


class Termination:
    """Base class: subclasses implement `done(progress) -> bool`."""

    def done(self, progress: Progress) -> bool:
        raise NotImplementedError

    def __or__(self, other) -> AnyOf:
        return AnyOf(self, other)


class _Limit(Termination):
    """Stop once a field of Progress reaches `limit`."""

    field = ""

    def done(self, progress):
        return getattr(progress, self.field) >= self.limit

    def __repr__(self):
        return f"{type(self).__name__}({self.limit:g})"


class MaxEvals(_Limit):
    """Stop after `n` evaluations."""

    field = "n_evals"

    def __init__(self, n: int):
        self.limit = check_int(n, "n_evals", min_value=1)


class MaxTime(_Limit):
    """Stop after `seconds` of wall-clock time (not reproducible: it depends on the machine)."""

    field = "elapsed_s"

    def __init__(self, seconds: float):
        self.limit = check_number(seconds, "seconds", min_value=0, exclusive=True)


class MaxCost(_Limit):
    """Stop once the simulated training cost reaches `trainings` full trainings.

    Only training counts: an optimizer that keeps re-asking architectures already trained to the
    asked fidelity spends nothing, so bound such runs with MaxEvals or MaxTime as well."""

    field = "cost"

    def __init__(self, trainings: float):
        self.limit = check_number(trainings, "trainings", min_value=0, exclusive=True)


class AnyOf(Termination):
    """Stop as soon as any of the given terminations would."""

    def __init__(self, *terminations):
        if not terminations:
            raise ValueError("AnyOf: expected at least one termination")
        flat = []
        for t in map(as_termination, terminations):
            flat.extend(t.terminations if isinstance(t, AnyOf) else [t])
        self.terminations = tuple(flat)

    def done(self, progress):
        return any(t.done(progress) for t in self.terminations)

    def __repr__(self):
        return " | ".join(map(repr, self.terminations))


def as_termination(termination):
    """A termination object as given, or an int meaning MaxEvals(int)."""
    if isinstance(termination, numbers.Integral) and not isinstance(termination, bool):
        return MaxEvals(termination)
    if not callable(getattr(termination, "done", None)):
        raise TypeError(f"termination: expected MaxEvals(n), MaxTime(seconds), MaxCost(trainings), "
                        f"a combination with |, an object with done(progress), or an int number of "
                        f"evaluations; got {termination!r}")
    return termination
