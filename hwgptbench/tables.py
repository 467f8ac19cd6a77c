"""Measured tables in HDF5 (docs/PROTOCOLS.md section 5, which documents the layout).

A table is small enough to rewrite whole, so every write goes to a temporary file in the same
folder, is flushed to disk and then atomically renamed over the old one (files.replacing): an
interrupted writer leaves either the old or the new table, never a mix.

Every file carries the sha256 of its content (`content_sha256`: ids, positions, every array,
units, sources and provenance, in a fixed canonical order), and reading checks it, recomputes the
summaries and validates every value: ids must be architectures of the table's space at their
profiling-set positions (or, for a row measured outside the profiling set, e.g. the random
architectures of a reference measurement, position `NO_INDEX` and an id that parses as an
architecture of the space), repeats finite (NaN for missing) and non-negative. The checksum is
checked before any validation whose work depends on the content (a damaged index must not make a
reader build a huge profiling set). A changed or damaged
file is one `TableError` naming the file and what is wrong, never a silently different number.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import h5py
import numpy as np

from .files import replacing
from .space import get_space
from .validation import check_bool, check_path

__all__ = ["SCHEMA_VERSION", "Table", "read_table", "write_table", "load_dataframe", "merge_tables", "TableError",
           "upgrade_table", "NO_INDEX", "withdrawn_rows", "is_rehearsal"]

SCHEMA_VERSION = 2          # 2: content_sha256 (version 1 files: `upgrade_table`)
KINDS = ("profile", "perplexity")
NO_INDEX = -1               # a row identified by its arch id alone (not a profiling-set entry)


class TableError(ValueError):
    """A table file that is missing, of another schema, or inconsistent."""


@dataclasses.dataclass
class Table:
    """In-memory table: one row per architecture, raw repeats per metric (NaN where missing).

    raw[metric] has shape (n, k) for k repeats (k may differ between metrics); units maps each
    metric to its unit; sources maps each metric to 'measured', 'analytic' or 'modelled'.
    """

    kind: str
    space: str
    source: str                      # device name or 'perplexity'
    arch_ids: list[str]
    index: np.ndarray                # position of each row in the profiling set (NO_INDEX: none)
    raw: dict[str, np.ndarray]
    units: dict[str, str]
    sources: dict[str, str]
    provenance: dict
    extra: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)   # per-row columns
    series: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # (k, m) time series, not rows

    def __len__(self) -> int:
        return len(self.arch_ids)

    def summary(self) -> dict[str, np.ndarray]:
        """Per-row mean, std and count of finite repeats for each metric."""
        out = {}
        for m, a in self.raw.items():
            finite = np.isfinite(a)
            cnt = finite.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(cnt > 0, np.nansum(np.where(finite, a, 0), axis=1) / np.maximum(cnt, 1), np.nan)
                dev = np.where(finite, a - mean[:, None], 0)
                std = np.where(cnt > 1, np.sqrt((dev ** 2).sum(axis=1) / np.maximum(cnt - 1, 1)), np.nan)
            out[m], out[f"{m}_std"], out[f"{m}_n"] = mean, std, cnt
        return out

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise TableError(f"kind: {self.kind!r} is not one of {KINDS}")
        get_space(self.space)
        n = len(self.arch_ids)
        if self.index.shape != (n,):
            raise TableError(f"index: expected shape ({n},), got {self.index.shape}")
        if len(set(self.arch_ids)) != n:
            raise TableError("arch_ids: duplicate rows")
        for m, a in list(self.raw.items()) + list(self.extra.items()):
            if a.shape[0] != n:
                raise TableError(f"{m}: expected {n} rows, got {a.shape[0]}")
        for m, a in self.raw.items():
            if a.ndim != 2:
                raise TableError(f"raw/{m}: expected a 2-D (rows, repeats) array")
            if m not in self.units or m not in self.sources:
                raise TableError(f"raw/{m}: unit and source must be recorded")
            if not np.issubdtype(a.dtype, np.floating):
                raise TableError(f"raw/{m}: expected floating-point repeats, got {a.dtype}")
            bad = np.isinf(a) | (a < 0)
            if np.any(bad):
                r, c = np.argwhere(bad)[0]
                raise TableError(f"raw/{m}: row {r} ({self.arch_ids[r]}) repeat {c} is {a[r, c]}; repeats must be "
                                 "finite and >= 0 (NaN where missing)")
            if self.units[m] != "1" and not m.endswith("_" + self.units[m]):
                raise TableError(f"raw/{m}: the name must end in its unit _{self.units[m]}")
        for m, a in self.series.items():
            if a.ndim != 2 or not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)):
                raise TableError(f"series/{m}: expected a 2-D array of finite floats")
        self._validate_rows()

    def _validate_rows(self) -> None:
        """Ids are architectures of the space, each at its position of the profiling set; a row
        without one (NO_INDEX) has an id that is an architecture of the space, written canonically."""
        from .profiling.profiling_set import profiling_set
        from .space import Arch

        if not np.issubdtype(self.index.dtype, np.integer):
            raise TableError(f"index: expected integer profiling-set positions, got {self.index.dtype}")
        if len(self.index) and self.index.min() < NO_INDEX:
            raise TableError(f"index: positions must be >= 0 (or {NO_INDEX}: no profiling-set position), "
                             f"got {int(self.index.min())}")
        placed = self.index[self.index != NO_INDEX]
        if len(np.unique(placed)) != len(placed):
            raise TableError("index: a profiling-set position appears twice")
        for r in np.flatnonzero(self.index == NO_INDEX).tolist():
            aid = self.arch_ids[r]
            try:
                arch = Arch.from_id(aid)
            except (ValueError, TypeError) as e:
                raise TableError(f"arch_ids: row {r}: {aid!r} is not an architecture id ({e})") from None
            if arch.space != self.space or arch.id != aid:
                raise TableError(f"arch_ids: row {r}: {aid!r} is not an architecture of space {self.space!r} "
                                 "written canonically")
        if not len(placed):
            return
        archs = profiling_set(self.space, int(placed.max()) + 1)
        for r, (aid, i) in enumerate(zip(self.arch_ids, self.index.tolist())):
            if i != NO_INDEX and archs[i].id != aid:
                raise TableError(f"arch_ids: row {r} says {aid!r} but position {i} of the {self.space} "
                                 f"profiling set is {archs[i].id!r}")

    def content_sha256(self) -> str:
        """sha256 of everything the table holds, in a canonical order (what `content_sha256` stores)."""
        h = hashlib.sha256()

        def put(tag, data: bytes):
            h.update(f"{tag}:{len(data)}:".encode())
            h.update(data)
        for k in ("kind", "space", "source"):
            put(k, getattr(self, k).encode())
        for k in ("units", "sources", "provenance"):
            # as the file will hold it: JSON turns int keys into strings, which sort differently
            # ({64: .., 128: ..} is read back as {"128": .., "64": ..})
            put(k, json.dumps(json.loads(json.dumps(getattr(self, k))), sort_keys=True).encode())
        put("arch_id", "\n".join(self.arch_ids).encode())
        put("index", np.ascontiguousarray(self.index, dtype="<i8").tobytes())
        for group, arrays in (("raw", self.raw), ("extra", self.extra), ("series", self.series)):
            for m in sorted(arrays):
                a = np.asarray(arrays[m])
                put(f"{group}/{m}/{a.dtype.str}/{a.shape}", np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def append(self, arch_id: str, index: int, raw: dict[str, np.ndarray], extra: dict | None = None) -> None:
        """Add one row; raw[metric] is a 1-D array of repeats, padded/NaN to the table's width."""
        if arch_id in set(self.arch_ids):
            raise TableError(f"arch_ids: {arch_id} already in the table")
        self.arch_ids.append(arch_id)
        self.index = np.append(self.index, np.int64(index))
        for m, v in raw.items():
            v = np.asarray(v, dtype=np.float64).ravel()
            old = self.raw.get(m, np.zeros((len(self.arch_ids) - 1, len(v))))
            width = max(old.shape[1], len(v))
            row = np.full(width, np.nan)
            row[:len(v)] = v
            if old.shape[1] < width:
                old = np.hstack([old, np.full((old.shape[0], width - old.shape[1]), np.nan)])
            self.raw[m] = np.vstack([old, row[None, :]])
        n_old = len(self.arch_ids) - 1
        for m, v in (extra or {}).items():      # a column new to the table: missing (NaN) for the older rows
            old = self.extra.get(m, np.full(n_old, np.nan) if n_old else np.zeros(0, np.asarray(v).dtype))
            self.extra[m] = np.append(old, v)


def withdrawn_rows(table: Table) -> dict[str, tuple[np.ndarray, str]]:
    """metric -> (row mask, reason) of measurements kept as evidence but not to be served.

    A table's provenance may list ``withdrawn``: ``[{"metric", "until_measured_at", "reason"}]``
    when a flaw of the measuring code was found after the rows were taken (the values stay in the
    file, unchanged; surrogates are not fitted on them). Rows measured later (``extra/measured_at``
    after ``until_measured_at``), e.g. by a fixed profiler, are not withdrawn."""
    out = {}
    at = table.extra.get("measured_at")
    for w in table.provenance.get("withdrawn", []):
        mask = np.ones(len(table), bool) if at is None else np.asarray(at) <= float(w["until_measured_at"])
        out[w["metric"]] = (mask, str(w["reason"]))
    return out


def is_rehearsal(table: Table) -> bool:
    """Whether a table comes from a rehearsal (fake meters, tiny networks, tiny counts): its
    provenance says so, or its device is a rehearsal's ('rehearsal*'); both are under the checksum."""
    return bool(table.provenance.get("rehearsal")) or table.source.startswith("rehearsal")


def write_table(table: Table, path) -> None:
    """Validate and atomically (re)write `table` at `path`, with its content checksum."""
    table.validate()
    with replacing(path, mode=0o666) as tmp:      # tables are for everyone to read
        with h5py.File(tmp, "w") as f:
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["content_sha256"] = table.content_sha256()
            f.attrs["kind"] = table.kind
            f.attrs["space"] = table.space
            f.attrs["source"] = table.source
            f.attrs["provenance"] = json.dumps(table.provenance, sort_keys=True)
            f.attrs["units"] = json.dumps(table.units, sort_keys=True)
            f.attrs["sources"] = json.dumps(table.sources, sort_keys=True)
            f.create_dataset("arch_id", data=np.array(table.arch_ids, dtype=object),
                             dtype=h5py.string_dtype("utf-8"))
            f.create_dataset("index", data=table.index.astype(np.int64))
            for m, a in table.raw.items():
                f.create_dataset(f"raw/{m}", data=a.astype(np.float64))
            for m, a in table.summary().items():
                f.create_dataset(f"summary/{m}", data=a)
            for m, a in table.extra.items():
                f.create_dataset(f"extra/{m}", data=a)
            for m, a in table.series.items():
                f.create_dataset(f"series/{m}", data=a)


def read_table(path, verify: bool = True) -> Table:
    """Read, checksum-verify and validate a table (see the module docstring); TableError naming
    the file on another schema, a checksum that does not match, or inconsistent contents."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"table: no such file {str(path)!r}")
    try:
        t, stored, version, summary = _read(path)
    except TableError:
        raise
    except Exception as e:       # h5py/JSON errors of a damaged file: one clear error
        raise TableError(f"table: {str(path)!r} is damaged or not an HDF5 table ({type(e).__name__}: {e})") from None
    if version != SCHEMA_VERSION and verify:
        hint = " (upgrade it with hwgptbench.tables.upgrade_table)" if version == 1 else ""
        raise TableError(f"schema_version: {str(path)!r} has {version!r}, this version reads {SCHEMA_VERSION}{hint}")
    if verify:                   # first: validation's work depends on the content (e.g. the index)
        try:
            got = t.content_sha256()
        except Exception as e:   # arrays of a damaged file that cannot even be hashed
            raise TableError(f"table {str(path)!r}: damaged ({type(e).__name__}: {e})") from None
        if got != stored:
            raise TableError(f"table {str(path)!r}: content sha256 {got[:12]}... does not match the stored "
                             f"{str(stored)[:12]}... (the file was changed or damaged); refusing to read it")
    try:
        t.validate()
    except TableError as e:
        raise TableError(f"table {str(path)!r}: {e}") from None
    if verify:
        for m, a in t.summary().items():
            if m not in summary or not np.array_equal(summary[m], a, equal_nan=True):
                raise TableError(f"table {str(path)!r}: summary/{m} does not match its raw repeats")
    return t


def _read(path: Path):
    with h5py.File(path, "r") as f:
        version = f.attrs.get("schema_version")
        try:
            t = Table(
                kind=str(f.attrs["kind"]), space=str(f.attrs["space"]), source=str(f.attrs["source"]),
                arch_ids=[s.decode() if isinstance(s, bytes) else str(s) for s in f["arch_id"][()]],
                index=f["index"][()],
                raw={m: f[f"raw/{m}"][()] for m in f.get("raw", {})},
                units=json.loads(f.attrs["units"]), sources=json.loads(f.attrs["sources"]),
                provenance=json.loads(f.attrs["provenance"]),
                extra={m: f[f"extra/{m}"][()] for m in f.get("extra", {})},
                series={m: f[f"series/{m}"][()] for m in f.get("series", {})},
            )
        except KeyError as e:
            raise TableError(f"table: {str(path)!r} lacks {e}") from None
        summary = {m: f[f"summary/{m}"][()] for m in f.get("summary", {})}
        stored = f.attrs.get("content_sha256")
    return t, str(stored) if stored is not None else None, version, summary


def upgrade_table(path) -> Table:
    """Rewrite a schema-1 table (no checksum) as the current schema, its contents validated."""
    t = read_table(path, verify=False)
    write_table(t, path)
    return read_table(path)


def load_dataframe(path, raw: bool = False):
    """A pandas DataFrame indexed by arch id: summary columns (mean, std, n) per metric, extra
    columns, and with raw=True one column per repeat (`latency_ms[3]`)."""
    import pandas as pd

    t = read_table(check_path(path, "path"))
    check_bool(raw, "raw")
    cols = {"profiling_index": t.index}
    cols.update(t.summary())
    cols.update(t.extra)
    if raw:
        for m, a in t.raw.items():
            for j in range(a.shape[1]):
                cols[f"{m}[{j}]"] = a[:, j]
    df = pd.DataFrame(cols, index=pd.Index(t.arch_ids, name="arch_id"))
    df.attrs.update(kind=t.kind, space=t.space, source=t.source, units=t.units,
                    sources=t.sources, provenance=t.provenance)
    return df


def merge_tables(base: Table, new: Table) -> Table:
    """Rows of `base` plus the rows of `new` it lacks (same kind, space, source and protocol).

    Used to bring tables measured elsewhere (a lent GPU machine, another session) into data/:
    rows are never duplicated and an existing row is never replaced.
    """
    for field in ("kind", "space", "source"):
        if getattr(base, field) != getattr(new, field):
            raise TableError(f"{field}: cannot merge {getattr(new, field)!r} into {getattr(base, field)!r}")
    if base.provenance.get("protocol_key") != new.provenance.get("protocol_key"):
        raise TableError(f"protocol: cannot merge rows measured with {new.provenance.get('protocol_key')} "
                         f"into a table measured with {base.provenance.get('protocol_key')}")
    if base.units != new.units or base.sources != new.sources:
        raise TableError("units/sources: the tables disagree")
    out = Table(base.kind, base.space, base.source, list(base.arch_ids), base.index.copy(),
                {m: a.copy() for m, a in base.raw.items()}, dict(base.units), dict(base.sources),
                json.loads(json.dumps(base.provenance)), {m: a.copy() for m, a in base.extra.items()})
    have = set(out.arch_ids)
    for r, aid in enumerate(new.arch_ids):
        if aid not in have:
            out.append(aid, int(new.index[r]), {m: a[r] for m, a in new.raw.items()},
                       {m: a[r] for m, a in new.extra.items()})
            have.add(aid)
    runs = out.provenance.setdefault("runs", [])
    known = {json.dumps(r, sort_keys=True) for r in runs}
    runs.extend(r for r in new.provenance.get("runs", []) if json.dumps(r, sort_keys=True) not in known)
    for m in set(base.series) | set(new.series):        # time series: the union of both, in time order
        parts = [t.series[m] for t in (base, new) if m in t.series]
        out.series[m] = np.unique(np.vstack(parts), axis=0) if len(parts) > 1 else parts[0].copy()
    return out
