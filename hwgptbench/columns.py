"""`Column`: the one name of a benchmark column (what was measured, on which device, after how much
training), and the alias rule for metrics measured at several training fidelities.

A column is written ``{metric}[_f{p}][@{device}]``:

* ``params``, ``flops``, ``memory_MB_analytic``: exact columns (no device, no fidelity);
* ``latency_ms@h100``: a metric measured on a device;
* ``perplexity_f25``: a metric after p% of supernet training (a training *fidelity*), no device.

A metric served at several fidelities also answers to its bare name, the last fidelity:
``perplexity`` means ``perplexity_f100`` when ``perplexity_f{25,50,75,100}`` are served. This is
the only module that reads or writes column strings; everything else asks a `Column`.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

__all__ = ["Column", "fidelity_aliases", "resolve", "fidelities"]

_NAME = r"[A-Za-z][A-Za-z0-9_]*?"
_PATTERN = re.compile(rf"(?P<metric>{_NAME})(?:_f(?P<fidelity>[0-9]+))?(?:@(?P<device>[A-Za-z0-9][A-Za-z0-9_.-]*))?")


@dataclasses.dataclass(frozen=True)
class Column:
    """metric, device (None: not device-bound) and training fidelity in percent (None: final)."""

    metric: str
    device: str | None = None
    fidelity: int | None = None

    def __post_init__(self):
        if (not isinstance(self.metric, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", self.metric)
                or re.search(r"_f[0-9]+$", self.metric)):
            raise ValueError(f"column: metric must be a name like 'latency_ms' (a training fidelity "
                             f"goes in `fidelity`), got {self.metric!r}")
        if self.device is not None and (not isinstance(self.device, str) or "@" in self.device or not self.device):
            raise ValueError(f"column: device must be a name like 'h100' or None, got {self.device!r}")
        f = self.fidelity
        if f is not None and (isinstance(f, bool) or not isinstance(f, int) or not 0 < f <= 100):
            raise ValueError(f"column: fidelity must be a percentage 1..100 or None, got {f!r}")

    @classmethod
    def parse(cls, text) -> Column:
        """``Column.parse("latency_ms@h100")``; a Column is returned as it is."""
        if isinstance(text, Column):
            return text
        if not isinstance(text, str):
            raise TypeError(f"column: expected a name like 'latency_ms@h100', got {type(text).__name__}")
        m = _PATTERN.fullmatch(text)
        if m is None:
            raise ValueError(f"column: {text!r} is not a column name; expected "
                             "'{metric}[_f{percent}][@{device}]', e.g. 'latency_ms@h100', 'perplexity_f25'")
        fid = m["fidelity"]
        return cls(m["metric"], m["device"], int(fid) if fid is not None else None)

    def __str__(self) -> str:
        fid = f"_f{self.fidelity}" if self.fidelity is not None else ""
        dev = f"@{self.device}" if self.device is not None else ""
        return f"{self.metric}{fid}{dev}"

    @property
    def quantity(self) -> str:
        """The column without its device: ``latency_ms``, ``perplexity_f25`` (a table's metric name)."""
        return str(dataclasses.replace(self, device=None))

    def at(self, fidelity: int | None) -> Column:
        """The same column at another training fidelity (None: the bare, final name)."""
        return dataclasses.replace(self, fidelity=fidelity)

    def on(self, device: str | None) -> Column:
        """The same column on another device."""
        return dataclasses.replace(self, device=device)


def fidelity_aliases(columns: Iterable) -> dict[str, str]:
    """Bare name -> last fidelity, for every (metric, device) served at training fidelities and
    not also served under its bare name: ``{"perplexity": "perplexity_f100"}``."""
    cols = [Column.parse(c) for c in columns]
    names = {str(c) for c in cols}
    last: dict[Column, Column] = {}
    for c in cols:
        if c.fidelity is not None:
            bare = c.at(None)
            if bare not in last or c.fidelity > last[bare].fidelity:
                last[bare] = c
    return {str(b): str(c) for b, c in sorted(last.items(), key=str) if str(b) not in names}


def resolve(column, available: Iterable) -> str | None:
    """The name in `available` that answers `column`: itself, or for a bare name its last
    fidelity (the alias rule); None if nothing does."""
    available = [str(a) for a in available]
    name = str(Column.parse(column))
    if name in available:
        return name
    return fidelity_aliases(available).get(name)


def fidelities(column, available: Iterable) -> tuple[int, ...]:
    """Training fidelities (percent) at which `column` (bare or at a fidelity) is served."""
    base = Column.parse(column).at(None)
    return tuple(sorted({c.fidelity for c in map(Column.parse, available)
                         if c.fidelity is not None and c.at(None) == base}))
