"""`Benchmark(space)`: the query object of hwgptbench.

Columns carry their unit and, for device metrics, the device: ``latency_ms@h100``. Exact columns
(``params``, ``flops``, ``memory_MB_analytic``) come from the closed-form cost model, never from a
surrogate; measured metrics come from the fitted surrogates in ``surrogates/`` (served by
`hwgptbench.surrogates`, numpy only), loaded lazily, once per Benchmark, checksums verified. Perplexity-table metrics
(``perplexity``) have no device. Other sources of numbers (`hwgptbench.sources`, e.g. HW-GPT-Bench's
published predictors: ``perplexity_hwgpt``) serve their own columns, labelled with their source and
kind in `metrics()`; no column ever falls back from one source to another. pandas is imported only
when a DataFrame is returned.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from . import cost
from .columns import Column
from .space import Arch, get_space
from .surrogates import MeanGroup, SurrogateStore
from .surrogates.design import design_matrices
from .validation import check_bool, check_seed, check_str_list, finite_nonnegative
from .sources import default_sources

__all__ = ["Benchmark", "EXACT_COLUMNS", "what_ships"]

# Exact columns: name -> (unit, description). FLOPs and memory at batch 1, sequence 1024, bf16.
EXACT_COLUMNS = {
    "params": ("1", "parameter count (tied embedding counted once)"),
    "flops": ("FLOP", "forward FLOPs at batch 1, sequence 1024 (FlopCounterMode convention)"),
    "memory_MB_analytic": ("MB", "analytic inference memory estimate, bf16, batch 1, sequence 1024"),
}
_EXACT_KIND = {"params": "exact", "flops": "exact", "memory_MB_analytic": "analytic"}
OUR_SOURCE, OUR_LICENCE = "hwgptbench", "MIT (hwgptbench)"
_EXACT = {                                # of a chunk's cost.Sums
    "params": lambda S: S.params,
    "flops": lambda S: S.flops(1, S.space.block_size),          # at the space's context
    "memory_MB_analytic": lambda S: cost.memory_mb(S, S.space, 1, None, "bfloat16"),
}
_INTEGER_COLUMNS = {"params", "flops"}     # exact counts, returned as ints
_CHUNK = 16384          # rows evaluated at a time: memory stays bounded for 10^6-row queries


class _Plan(NamedTuple):
    columns: list            # in the order asked
    models: dict             # column -> Surrogate (our surrogates' columns)
    design: dict             # column -> which design matrix it reads (index into designs)
    by_source: dict          # source -> its columns
    designs: list            # the (batch, seq) of each design matrix needed
    means: MeanGroup         # the distinct models, all together
    mean: dict               # column -> its model's place in means


class Benchmark:
    """Query exact and surrogate metrics of architectures of one search space.

    `surrogates` is the folder holding ``manifest.json`` (default: the shipped surrogates, or
    ``$HWGPTBENCH_SURROGATES``). `sources`: the other sources of numbers (default:
    `hwgptbench.sources.default_sources()`; ``()`` for none). Nothing is read until a column is
    first needed.
    """

    def __init__(self, space="s", surrogates=None, sources=None):
        self.space = get_space(space)
        self._store = SurrogateStore(surrogates)
        self._sources = default_sources() if sources is None else tuple(sources)
        self._names = None
        self._source_of = None
        self._plans: dict = {}             # tuple of columns -> _Plan

    def __repr__(self) -> str:
        return f"Benchmark(space={self.space.name!r})"

    def sample(self, n: int = 1, seed=None):
        return self.space.sample(n, seed=seed)

    # ---- what can be asked ------------------------------------------------------------------------
    def columns(self) -> list[str]:
        """Every column this benchmark can return: exact columns first, then our surrogates' columns,
        then the other sources' columns."""
        return list(EXACT_COLUMNS) + list(self._entries()) + list(self._sourced())

    def devices(self) -> dict[str, dict]:
        """Devices with at least one surrogate: hardware, profiling protocol, columns, and the
        metrics of their tables that have no surrogate (with the reason)."""
        out: dict[str, dict] = {}
        for col, e in self._entries().items():
            if e.get("device") is None:
                continue
            d = out.setdefault(e["device"], {"columns": [], "hardware": e.get("hardware", {}),
                                             "protocol": e.get("protocol", {}), "unavailable": {}})
            d["columns"].append(col)
        for u in self._store.unavailable(self.space.name):
            dev = Column.parse(u["column"]).device
            if dev is not None:
                out.setdefault(dev, {"columns": [], "hardware": {}, "protocol": {}, "unavailable": {}})
                out[dev]["unavailable"][u["column"]] = u["reason"]
        return out

    def metrics(self) -> dict[str, dict]:
        """column -> metric, device, unit, kind (`hwgptbench.sources.KINDS`), source and licence
        (where the numbers come from and under which terms), provenance ('analytic', 'measured',
        'modelled' or 'third-party'), estimator ('closed-form', 'surrogate' or 'predictor') and, for
        our surrogates, held-out quality."""
        out = {c: {"metric": c, "device": None, "unit": u, "kind": _EXACT_KIND[c],
                   "source": f"{OUR_SOURCE} cost model (closed form)", "licence": OUR_LICENCE,
                   "provenance": "analytic", "estimator": "closed-form", "description": d}
               for c, (u, d) in EXACT_COLUMNS.items()}
        for col, e in self._entries().items():
            desc = (f"surrogate of the median of repeated {e['data_source']} {e['metric']} "
                    f"({e['table']}, n_train={e['n_train']})")
            if e.get("alias_of"):
                desc = f"{e['alias_of']} (the last training fidelity): {desc}"
            kind = "trained" if e.get("kind") == "perplexity" else e["data_source"]
            out[col] = {"metric": e["metric"], "device": e.get("device"), "unit": e["unit"], "kind": kind,
                        "source": f"{OUR_SOURCE} surrogate of {e['table']}" + (
                            f" (rows measured by {e['measured_by']})" if e.get("measured_by") else ""),
                        "measured_by": e.get("measured_by"), "licence": OUR_LICENCE,
                        "provenance": e["data_source"], "estimator": "surrogate",
                        "description": desc, "quality": e.get("quality", {})}
        for col, src in self._sourced().items():
            d = src.describe(self.space.name, col)
            c = Column.parse(col)
            out[col] = {"metric": c.quantity, "device": c.device, "provenance": "third-party"
                        if d["kind"] == "third-party predictor" else d["kind"],
                        "estimator": "predictor", **{k: v for k, v in d.items() if k != "column"}}
        return out

    # ---- evaluation -------------------------------------------------------------------------------
    def evaluate(self, archs, columns, noise: bool = False, seed=None) -> np.ndarray:
        """Float64 array (n, len(columns)) for many architectures: the fast path for optimizers.

        `archs` may be a feature matrix (n, n_features) or any architectures (ids, dicts, Arch).
        With `noise`, surrogate columns are seeded draws of a single measurement (exact columns
        stay exact); each column's draws depend only on (seed, column), not on the other columns.
        """
        return self._evaluate(archs, check_str_list(columns, "columns", allow_empty=True), noise, seed)[0]

    def query(self, archs, metrics=None, devices=None, noise: bool = False, seed=None,
              interval: bool = False):
        """Metrics of one or many architectures.

        `metrics`: metric names (``latency_ms``, ``perplexity``, ``params``) or full column names
        (``latency_ms@h100``); `devices`: device names. None means all. Returns a pandas DataFrame
        (one row per architecture, in input order; columns like ``latency_ms@h100``), or a dict for
        a single architecture (an Arch, id string or HW-GPT-Bench dict). `interval` adds
        ``{column}:lo90`` and ``{column}:hi90``: a calibrated 90% interval for one new measurement,
        for each of our surrogates' columns. Exact columns have none; a third-party predictor with
        none (e.g. ``perplexity_hwgpt``) raises `IntervalUnavailable` when named in `metrics`, and
        gets no bounds when `metrics` is None (all columns). With `noise`, only our surrogates'
        columns are noisy draws; exact and predictor columns stay point values.
        """
        single = isinstance(archs, (Arch, str, Mapping))
        columns = self.select(metrics, devices)
        sourced = self._sourced()
        named = [c for c in columns if c in sourced]
        if interval is True and metrics is not None and named:   # named explicitly: a missing interval is said
            probe = self.space.features(self.space.encode([self.space.smallest()]))
            for c in named:               # raises IntervalUnavailable saying why: never invented
                sourced[c].interval(probe, [c])
        values, names = self._evaluate(archs, columns, noise, seed, interval)
        if single:
            row = dict(zip(names, values[0].tolist()))
            for c in _INTEGER_COLUMNS & row.keys():
                row[c] = int(row[c])
            return row
        import pandas as pd

        df = pd.DataFrame(values, columns=names, copy=False)
        for c in _INTEGER_COLUMNS:
            if c in df:
                df[c] = df[c].astype(np.int64)
        return df

    def _evaluate(self, archs, columns, noise, seed, interval=False):
        """(values, names): the columns, then with `interval` each surrogate column's bounds,
        evaluated in row chunks, each checked once by `SearchSpace.features`."""
        noise, interval = check_bool(noise, "noise"), check_bool(interval, "interval")
        seed = check_seed(seed)
        plan = self._plan(columns)
        names = list(columns)
        if interval:
            for c, s in plan.models.items():
                pct = round(100 * float(s.entry.get("coverage", 0.9)))
                names += [f"{c}:lo{pct}", f"{c}:hi{pct}"]
        if isinstance(archs, np.ndarray) and archs.dtype != object:
            X = archs[None, :] if archs.ndim == 1 else archs      # checked chunk by chunk below
        else:
            X = self.space.features(archs)                        # ids, dicts, Arch: encoded once
        rngs = {c: _column_rng(seed, c) for c in plan.models} if noise else {}
        out = np.empty((len(X), len(names)))
        for a in range(0, max(len(X), 1), _CHUNK):
            F = self.space.features(X if len(X) <= _CHUNK else X[a:a + _CHUNK])
            self._chunk(F, plan, rngs, interval, out[a:a + len(F)])
        if not finite_nonnegative(out):
            ok = (np.isfinite(out) & (out >= 0)).all(axis=0)     # a bug, never silently returned
            bad = [c for c, good in zip(names, ok) if not good]
            raise RuntimeError(f"non-finite or negative predictions in {bad}; please report this")
        return out, names

    def _plan(self, columns) -> _Plan:
        """How to evaluate these columns, worked out once per list of columns: each column's model
        and design matrix, the sources' columns, and the distinct models as one `MeanGroup` (a bare
        name and its fidelity, perplexity and perplexity_f100, are one model)."""
        key = tuple(columns)
        if key not in self._plans:
            self._check_columns(columns)
            sourced = self._sourced()
            models = {c: self._store.get(self.space.name, c) for c in columns
                      if c not in EXACT_COLUMNS and c not in sourced}
            shape = {c: self._design_key(s) for c, s in models.items()}
            by_source: dict = {}
            for c in columns:
                if c in sourced:
                    by_source.setdefault(sourced[c], []).append(c)
            designs = list(dict.fromkeys(shape.values()))
            design = {c: designs.index(k) for c, k in shape.items()}
            unique = {id(s): (s, design[c]) for c, s in models.items()}
            mean = {c: list(unique).index(id(s)) for c, s in models.items()}
            means = MeanGroup([s for s, _ in unique.values()], [k for _, k in unique.values()])
            if len(self._plans) >= 16:     # bounded (an xs plan holds ~1 MB of trees): callers may ask many lists
                self._plans.clear()
            self._plans[key] = _Plan(list(columns), models, design, by_source, designs, means, mean)
        return self._plans[key]

    def _chunk(self, F, plan, rngs, interval, out) -> None:
        """Evaluate the rows F into `out` (the columns, then the bounds)."""
        served = {c: v for src, cs in plan.by_source.items() for c, v in zip(cs, src.evaluate(F, cs).T)}
        S = cost.Sums(F, self.space)          # reduced once for the exact columns and every design
        D = design_matrices(S, self.space, plan.designs)         # (rows, designs, inputs)
        means = plan.means.predict(D, log=bool(rngs))            # each model once
        bounds = []
        for j, c in enumerate(plan.columns):
            if c in EXACT_COLUMNS:
                out[:, j] = _EXACT[c](S)
            elif c in served:
                out[:, j] = served[c]
            elif c in rngs:
                s = plan.models[c]
                out[:, j] = s.predict(D[:, plan.design[c]], noise=True, rng=rngs[c], log_mean=means[plan.mean[c]])
            else:
                out[:, j] = means[plan.mean[c]]
            if interval and c in plan.models:
                bounds += plan.models[c].interval(D[:, plan.design[c]])
        for j, v in enumerate(bounds, len(plan.columns)):
            out[:, j] = v

    def _design_key(self, s) -> tuple[int, int]:
        at = s.entry.get("derived_features_at", {})
        return int(at.get("batch", 1)), int(at.get("seq", self.space.block_size))

    def select(self, metrics=None, devices=None) -> list[str]:
        """The columns that `metrics` x `devices` name; a ValueError lists what is available."""
        if metrics is None and devices is None:
            return list(self._parsed())                              # every column
        entries = self._entries()
        all_devices = sorted({e["device"] for e in entries.values() if e.get("device")})
        if devices is not None:
            devices = check_str_list(devices, "devices")
            unknown = [d for d in devices if d not in all_devices]
            if unknown:
                raise ValueError(f"devices: unknown {unknown} for space {self.space.name!r}; "
                                 f"available: {all_devices}{self._missing_note()}")
        names = self._parsed()
        on = lambda col: col.device is None or devices is None or col.device in devices  # noqa: E731
        if metrics is None:
            return [c for c, col in names.items() if on(col)]
        metrics = check_str_list(metrics, "metrics")
        out = []
        for m in metrics:
            if m in names:                                          # a full column name
                hit = [m]
            else:                                                   # a metric: on the devices asked
                hit = [c for c, col in names.items() if col.quantity == m and on(col)]
            if not hit:
                raise ValueError(self._unknown_metric(m, devices, names))
            out += [c for c in hit if c not in out]
        return out

    # ---- internals --------------------------------------------------------------------------------
    def _entries(self) -> dict[str, dict]:
        return self._store.entries(self.space.name)

    def _sourced(self) -> dict:
        """column -> the source serving it, for the sources besides exact costs and our surrogates;
        a column two places claim is an error (no silent precedence)."""
        if self._source_of is None:
            taken = set(EXACT_COLUMNS) | set(self._entries())
            out: dict = {}
            for src in self._sources:
                for c in src.columns(self.space.name):
                    if c in taken or c in out:
                        raise ValueError(f"sources: column {c!r} of source {src.name!r} is also served "
                                         "elsewhere; a column has exactly one source")
                    out[c] = src
            self._source_of = out
        return self._source_of

    def _parsed(self) -> dict[str, Column]:
        """column name -> Column, parsed once (the store's entries never change once read)."""
        if self._names is None:
            self._names = {c: Column.parse(c) for c in self.columns()}
        return self._names

    def _check_columns(self, columns) -> None:
        if all(c in EXACT_COLUMNS for c in columns):
            return
        known = self._parsed()
        unknown = [c for c in columns if c not in known]
        if unknown:
            reasons = {u["column"]: u["reason"] for u in self._store.unavailable(self.space.name)}
            why = "".join(f"; {c} is unavailable: {reasons[c]}" for c in unknown if c in reasons)
            raise ValueError(f"columns: unknown {unknown}; available: {self.columns()}{why}"
                             f"{self._missing_note()}")

    def _unknown_metric(self, m, devices, names) -> str:
        reasons = {Column.parse(u["column"]): u["reason"] for u in self._store.unavailable(self.space.name)}
        why = [f"{c}: {r}" for c, r in reasons.items()
               if c.quantity == m and (devices is None or c.device in devices)]
        known = sorted({col.quantity for col in names.values()})
        scope = f" on devices {devices}" if devices is not None else ""
        import difflib
        other_source = [q for q in known if q.startswith(m + "_")]    # e.g. perplexity -> perplexity_hwgpt
        hint = ""
        if other_source:
            src = self.metrics()
            hint = "; other sources serve it under their own names (never in its place): " + ", ".join(
                f"{q!r} ({src[q]['kind']}, {src[q]['source']})" if q in src else repr(q) for q in other_source)
        elif "@" not in m and (near := difflib.get_close_matches(m, known, n=3)):
            hint = f"; did you mean {near}?"
        return (f"metrics: {m!r} is not available for space {self.space.name!r}{scope}"
                + (f" ({'; '.join(why)})" if why else "") + hint + self._what_would_serve(m)
                + f"; available metrics: {known}; columns: {list(names)}{self._missing_note()}")

    def _what_would_serve(self, m: str) -> str:
        """Why a column is not served and what would serve it: a device measured for other spaces,
        a device measured nowhere (or a misspelt one), our perplexity before its table exists."""
        import difflib

        from .space import SPACES
        try:
            col = Column.parse(m)
        except ValueError:
            return ""
        if col.device is not None:
            where = {sp: sorted({e.get("device") for e in self._store.entries(sp).values()} - {None})
                     for sp in SPACES}
            mine = where[self.space.name]
            if col.device in mine:
                return (f"; device {col.device!r} is measured for space {self.space.name!r}, but not "
                        f"{col.quantity!r}")
            others = [sp for sp, ds in where.items() if col.device in ds]
            if others:
                return (f"; device {col.device!r} is measured for space(s) {others}, not {self.space.name!r}: "
                        f"profile it (`hwgptbench profile --space {self.space.name} --device {col.device}` on that "
                        "device), then `hwgptbench fit-surrogates`")
            every = sorted({d for ds in where.values() for d in ds})
            near = difflib.get_close_matches(col.device, every, n=2, cutoff=0.8)    # h200x -> h200, not a100 -> h100
            if near:
                return f"; no device {col.device!r} in this benchmark: did you mean {near}?"
            return (f"; device {col.device!r} is measured nowhere in this benchmark (devices: {every}): "
                    f"measure it with `hwgptbench profile --device {col.device}` on a CPU or `hwgptbench gpu-plan` "
                    "on a GPU, then `hwgptbench fit-surrogates`")
        if col.quantity in ("perplexity", "accuracy"):
            how = ("`hwgptbench xs-pipeline` trains and scores it on CPUs (README, 'Regenerate the xs benchmark')"
                   if self.space.name == "xs" else "`hwgptbench gpu-plan` trains it on a GPU (scripts/GPU_RUNBOOK.md)")
            return (f"; our supernet's {col.quantity} for {self.space.name!r} comes from "
                    f"data/{self.space.name}/perplexity.h5, which is not shipped yet: {how}")
        others = [sp for sp in SPACES if sp != self.space.name and m in Benchmark(sp).columns()]
        if others:                         # e.g. HW-GPT-Bench's predictor, which covers s, m and l only
            src = Benchmark(others[0]).metrics()[m]["source"]
            return f"; {m!r} ({src}) is served for space(s) {others} only, not {self.space.name!r}"
        return ""

    def _missing_note(self) -> str:
        if self._store.manifest.get("missing"):
            return f" (no surrogates: {self._store.root}/manifest.json does not exist)"
        return ""


def what_ships(spaces=None) -> str:
    """A markdown table of what the installed package serves: columns x spaces (default: every
    space), with each column's kind and source (README's opening table is this text; a test keeps
    the two equal)."""
    from .space import SPACES
    rows: dict = {}
    for sp in spaces or SPACES:
        for col, m in Benchmark(sp).metrics().items():
            source = m["source"].replace(f"surrogate of {sp}/", "surrogate of {space}/")
            rows.setdefault((m["kind"], source, col), []).append(sp)
    grouped: dict = {}
    for (kind, source, col), sps in rows.items():
        grouped.setdefault((kind, source, ", ".join(sps)), []).append(f"`{col}`")
    order = {k: i for i, k in enumerate(("exact", "analytic", "measured", "trained", "modelled",
                                         "third-party predictor"))}
    lines = ["| columns | spaces | kind | source |", "|---|---|---|---|"]
    for (kind, source, sps), cols in sorted(grouped.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])):
        lines.append(f"| {', '.join(cols)} | {sps} | {kind} | {source} |")
    return "\n".join(lines) + "\n"


def _column_rng(seed, column: str) -> np.random.Generator:
    """A generator for one column: the same (seed, column) gives the same draws."""
    import hashlib

    if isinstance(seed, np.random.SeedSequence):
        seed = np.random.default_rng(seed)
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2 ** 63))
    key = int(hashlib.sha256(column.encode()).hexdigest()[:15], 16)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))
