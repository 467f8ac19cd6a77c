"""Where a benchmark's numbers come from: one small protocol that every source of numbers
implements, and the contract test a new source runs.

A *source* serves columns of a space (``perplexity_hwgpt``, ``latency_ms@h200``) from its own
files and says what each one is (`describe`: unit, kind, where the numbers come from, licence,
quality). `Benchmark` asks its sources for every column that is not an exact cost; a source never
falls back to another one's numbers, and refitting our surrogates never touches another source's
files. Adding a source is one module here plus its files (docs/PROTOCOLS.md, "Sources").

Kinds (what a number is): ``exact`` (closed form, equals torch's own counts), ``analytic`` (a
closed-form estimate), ``measured`` (a surrogate of our measurements), ``trained`` (a surrogate
of perplexities scored by a network we trained), ``modelled`` (a labelled model, not a meter),
``third-party predictor`` (another project's published predictor, served unchanged).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Source", "IntervalUnavailable", "KINDS", "DESCRIBE_KEYS", "check_source", "default_sources"]

KINDS = ("exact", "analytic", "measured", "trained", "modelled", "third-party predictor")
DESCRIBE_KEYS = ("column", "unit", "kind", "source", "licence", "description")


class IntervalUnavailable(ValueError):
    """An interval was asked of a column whose source has none (it is never invented)."""


@runtime_checkable
class Source(Protocol):
    """What every source of numbers implements (numpy only: no torch on a query path)."""

    name: str

    def columns(self, space: str) -> list[str]:
        """The columns served for `space` (empty if none)."""

    def evaluate(self, F, columns) -> np.ndarray:
        """Float64 (len(F), len(columns)), finite and >= 0, for a checked `FeatureMatrix` F."""

    def interval(self, F, columns, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi), each (len(F), len(columns)); `IntervalUnavailable` says why there is none."""

    def describe(self, space: str, column: str) -> dict:
        """At least DESCRIBE_KEYS: what the column is, its unit and kind, where its numbers come
        from and under which licence."""


def default_sources() -> tuple:
    """The sources a `Benchmark` consults besides the exact costs and our fitted surrogates."""
    from .hwgpt import HWGPTPredictors
    return (HWGPTPredictors(),)


def check_source(source, spaces=("s", "m", "l"), n: int = 64, seed: int = 0) -> None:
    """Contract test for a source (like scikit-learn's check_estimator): raises AssertionError
    naming what is wrong. Checks the protocol, that every column describes itself with a known
    kind, that values are float64, finite, >= 0, deterministic and row-independent (a row's value
    does not depend on the rows beside it), and that an interval is either given with lo <= hi or
    refused with IntervalUnavailable."""
    from ..space import get_space

    assert isinstance(source, Source), f"{source!r} does not implement the Source protocol"
    assert isinstance(source.name, str) and source.name, "source.name must be a non-empty str"
    for space in spaces:
        cols = list(source.columns(space))
        sp = get_space(space)
        F = sp.features(sp.sample_features(n, seed=seed))
        for c in cols:
            d = source.describe(space, c)
            missing = [k for k in DESCRIBE_KEYS if not d.get(k)]
            assert not missing, f"{source.name}: describe({space!r}, {c!r}) lacks {missing}"
            assert d["kind"] in KINDS, f"{source.name}: {c}: kind {d['kind']!r} not in {KINDS}"
        if not cols:
            continue
        v = source.evaluate(F, cols)
        assert isinstance(v, np.ndarray) and v.dtype == np.float64 and v.shape == (n, len(cols)), \
            f"{source.name}: evaluate must return float64 ({n}, {len(cols)}), got {getattr(v, 'shape', v)}"
        assert np.isfinite(v).all() and (v >= 0).all(), f"{source.name}: non-finite or negative values in {space}"
        assert np.array_equal(v, source.evaluate(F, cols)), f"{source.name}: not deterministic"
        assert np.array_equal(v[::-1], source.evaluate(F[::-1], cols)), f"{source.name}: rows depend on each other"
        assert np.array_equal(v[:, ::-1], source.evaluate(F, cols[::-1])), f"{source.name}: columns depend on each other"
        try:
            lo, hi = source.interval(F, cols)
        except IntervalUnavailable as e:
            assert str(e), f"{source.name}: IntervalUnavailable must say why"
        else:
            assert lo.shape == hi.shape == v.shape and (lo <= hi).all(), f"{source.name}: bad interval"
