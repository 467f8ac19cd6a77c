"""Which surrogates the tables in ``data/`` allow: one target per (space, table, metric), and the
reason for every metric that cannot have one (all NaN, analytic, too few architectures)."""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..columns import Column
from ..space import SPACES
from .store import SurrogateError, sha256

__all__ = ["Target", "discover", "median_of_repeats"]


@dataclasses.dataclass
class Target:
    space: str
    table: str                # path relative to the data folder, e.g. "s/cpu_xeon_2c.h5"
    kind: str                 # "profile" (a device table) or "perplexity"
    source: str               # device name or "perplexity"
    metric: str               # the table's metric name, e.g. "latency_ms", "perplexity_f25"
    unit: str
    data_source: str          # "measured" or "modelled"

    @property
    def key(self) -> str:
        return f"{self.space}/{self.source}/{self.metric}"

    @property
    def device(self) -> str | None:
        return self.source if self.kind == "profile" else None

    @property
    def column(self) -> str:
        """``latency_ms@h100`` for a device table; ``perplexity_f25`` (no device) for a perplexity table."""
        return str(Column.parse(self.metric).on(self.device))


def median_of_repeats(raw) -> np.ndarray:
    """Per-architecture median of the finite repeats (NaN where there is none)."""
    raw = np.asarray(raw, dtype=np.float64)
    ok = np.isfinite(raw).any(axis=1)
    out = np.full(raw.shape[0], np.nan)
    if ok.any():
        out[ok] = np.nanmedian(raw[ok], axis=1)
    return out


def discover(data_dir, min_rows: int = 20):
    """Every (table, metric) in `data_dir` that can get a surrogate, and why the others cannot.

    Returns (targets, unavailable, snapshots); `snapshots` maps table paths to (Table, sha256)
    read from one private copy of each file, so the hash and the contents agree even while a
    profiler keeps replacing the table.
    """
    from ..tables import read_table, withdrawn_rows

    data_dir = Path(data_dir)
    targets, unavailable, snapshots = [], [], {}
    for space in sorted(SPACES):
        folder = data_dir / space
        for path in sorted(folder.glob("*.h5")) if folder.is_dir() else ():
            rel = f"{space}/{path.name}"
            with tempfile.TemporaryDirectory() as tmp:
                snap = Path(tmp) / path.name
                shutil.copyfile(path, snap)
                sha = sha256(snap.read_bytes())
                table = read_table(snap)
            if table.space != space:
                raise SurrogateError(f"table {rel}: says space {table.space!r} but lies in {space}/")
            withdrawn = withdrawn_rows(table)
            for metric, (mask, _) in withdrawn.items():     # kept in the file, never fitted on
                if metric in table.raw:
                    table.raw[metric] = np.where(mask[:, None], np.nan, table.raw[metric])
            snapshots[rel] = (table, sha)
            for metric in sorted(table.raw):
                t = Target(space, rel, table.kind, table.source, metric, table.units[metric],
                           table.sources[metric])
                reason = _unavailable(t, table.raw[metric], min_rows)
                if reason and metric in withdrawn:
                    mask, why = withdrawn[metric]
                    reason = (f"all {len(mask)} rows withdrawn: {why}" if mask.all() else
                              f"{reason} once {int(mask.sum())} rows were withdrawn: {why}")
                if reason:
                    unavailable.append({"key": t.key, "column": t.column, "table": rel,
                                        "space": space, "reason": reason})
                else:
                    targets.append(t)
    return targets, unavailable, snapshots


def _unavailable(t: Target, raw, min_rows: int) -> str | None:
    med = median_of_repeats(raw)
    n_ok = int(np.sum(np.isfinite(med) & (med > 0)))
    if t.data_source == "analytic":
        return "analytic column (the exact memory_MB_analytic column covers it)"
    if n_ok == 0:
        return "no finite measurement (e.g. no energy meter on this device)"
    if n_ok < min_rows:
        return f"only {n_ok} architectures measured (< {min_rows})"
    return None
