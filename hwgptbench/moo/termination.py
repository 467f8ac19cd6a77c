"""When an optimisation loop stops: small termination objects, combined with ``|`` (any of).

The loop calls ``termination.done(progress)`` before every ask; any object with such a method
works (e.g. a target hypervolume of your own). Checks happen between batches, so a run may go
past a limit by up to one batch (`runner.run` records only the first `budget` evaluations).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

from .validation import check_int, check_number

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


class MaxEvals(Termination):
    """Stop after `n` evaluations."""

    def __init__(self, n: int):
        self.n = check_int(n, "n_evals", min_value=1)

    def done(self, progress):
        return progress.n_evals >= self.n

    def __repr__(self):
        return f"MaxEvals({self.n})"


class MaxTime(Termination):
    """Stop after `seconds` of wall-clock time (not reproducible: it depends on the machine)."""

    def __init__(self, seconds: float):
        self.seconds = check_number(seconds, "seconds")

    def done(self, progress):
        return progress.elapsed_s >= self.seconds

    def __repr__(self):
        return f"MaxTime({self.seconds:g})"


class MaxCost(Termination):
    """Stop once the simulated training cost reaches `trainings` full trainings.

    Only training counts: an optimizer that keeps re-asking architectures already trained to the
    asked fidelity spends nothing, so bound such runs with MaxEvals or MaxTime as well."""

    def __init__(self, trainings: float):
        self.trainings = check_number(trainings, "trainings")

    def done(self, progress):
        return progress.cost >= self.trainings

    def __repr__(self):
        return f"MaxCost({self.trainings:g})"


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
