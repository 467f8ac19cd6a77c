"""`hwgptbench query | fit-surrogates`: answers of the benchmark, and refitting its surrogates."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..columns import Column
from ..space import SPACES
from .arch import parse_arch
from .options import count, folder, named_destination, names, parse_with, require


def add_query(q) -> None:
    q.add_argument("arch", nargs="*",
                   help="string id, JSON dict (HW-GPT-Bench keys), @file.json, or 'random' "
                        "(none with --list)")
    q.add_argument("--space", default=None, choices=sorted(SPACES),
                   help="space of dict/random architectures (default: ids carry their own; random: s)")
    q.add_argument("-n", type=count(1, 10 ** 6, " (printed as a table; use Benchmark.evaluate for more)"),
                   default=1, help="how many architectures 'random' draws")
    q.add_argument("--devices", type=names, default=None,
                   help="comma-separated device names, e.g. h100,cpu_xeon_2c (default: all)")
    q.add_argument("--metrics", type=parse_with(columns), default=None,
                   help="comma-separated metrics or columns, e.g. latency_ms,params (default: all)")
    q.add_argument("--noise", action="store_true", help="seeded noisy draws instead of the median")
    q.add_argument("--interval", action="store_true", help="add the calibrated 90%% interval")
    q.add_argument("--seed", type=count(0), default=0, help="seed of 'random' and of --noise")
    q.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    q.add_argument("--list", action="store_true", help="list devices and metrics instead of querying")
    q.set_defaults(func=cmd_query)


def add_fit(f) -> None:
    f.add_argument("--data", type=folder, default=None, help="tables folder (default: the package's data/)")
    f.add_argument("--out", default=None,
                   help="surrogates folder, written (default: none; the package's own, surrogates/, only when named)")
    f.add_argument("--spaces", type=names, default=None, help="comma-separated spaces to refit (default: all)")
    f.add_argument("--nthread", type=count(1), default=1, help="xgboost threads")
    f.add_argument("--markdown", action="store_true", help="print the quality table as markdown")
    f.set_defaults(func=cmd_fit)


PARSERS = {"query": add_query, "fit-surrogates": add_fit}


def columns(text) -> list[str]:
    """Metric or column names (latency_ms, latency_ms@h100, perplexity_f75), each a valid column."""
    out = names(text)
    for n in out:
        Column.parse(n)
    return out


def _ids(space, X, chunk: int = 65536) -> list[str]:
    """Ids of feature rows, decoded a chunk at a time (no million Arch objects at once)."""
    return [a.id for i in range(0, len(X), chunk) for a in space.decode(X[i:i + chunk])]


def cmd_query(args) -> int:
    from ..benchmark import Benchmark

    if not args.arch:
        if not args.list:
            raise ValueError("arch: give one or more architectures (ids, JSON dicts, @file.json) or "
                             "'random' (with -n); or --list to see what is served")
        bench = Benchmark(args.space or "s")
        print(json.dumps({"devices": bench.devices(), "metrics": bench.metrics()}, indent=2, default=str))
        return 0
    if any(a == "random" for a in args.arch) and len(args.arch) > 1:
        raise ValueError("arch: 'random' cannot be mixed with explicit architectures")
    if args.arch == ["random"]:
        import numpy as np
        bench = Benchmark(args.space or "s")
        if not args.list and not args.noise:
            return _query_random(bench, args)
        # the draws of bench.sample(n, seed), held compactly (int16 holds every gene); only the ids
        # printed are made from the rows
        archs = bench.space.features(bench.space.sample_features(args.n, seed=args.seed, dtype=np.int16))
    else:
        if args.n != 1:
            raise ValueError(f"-n: counts the architectures of 'random'; got -n {args.n} with explicit ones")
        archs = [parse_arch(a, args.space) for a in args.arch]
        spaces = sorted({a.space for a in archs})
        if len(spaces) > 1:
            raise ValueError(f"arch: architectures of several spaces {spaces}; query one space at a time")
        if args.space and spaces[0] != args.space:
            raise ValueError(f"space: architecture is of space {spaces[0]!r}, --space says {args.space!r}")
        bench = Benchmark(spaces[0])
    if args.list:
        info = {"devices": bench.devices(), "metrics": bench.metrics()}
        print(json.dumps(info, indent=2, default=str))
        return 0
    df = bench.query(archs, metrics=args.metrics, devices=args.devices,
                     noise=args.noise, seed=args.seed, interval=args.interval)
    ids = [a.id for a in archs] if isinstance(archs, list) else _ids(bench.space, archs)
    df.insert(0, "arch_id", ids)
    if len(df) == 1 and not args.json:
        _print_record(df)
    else:
        _print_rows(df, args.json)
    return 0


def _query_random(bench, args) -> int:
    """`query random -n N`: the draws of `bench.sample(N, seed)`, sampled, answered and printed a
    block at a time, so that no step holds all N rows (a 10^6 query stays within a few hundred MB).
    With --noise the answer is made in one call instead: its seeded draws run over all rows."""
    import numpy as np
    first = True
    if args.json:
        print("[", end="")
    for block in bench.space.iter_sample_features(args.n, seed=args.seed, dtype=np.int16):
        X = bench.space.features(block)
        df = bench.query(X, metrics=args.metrics, devices=args.devices, interval=args.interval)
        df.insert(0, "arch_id", _ids(bench.space, X))
        if args.n == 1 and not args.json:
            _print_record(df)
            return 0
        _print_rows(df, args.json, header=first, bracket=False)
        first = False
    if args.json:
        print("\n]")
    return 0


def _print_record(df) -> None:
    """A one-row answer as aligned `name: value` lines."""
    rec = df.to_dict(orient="records")[0]
    width = max(map(len, rec))
    print("\n".join(f"{k:>{width}}: {v}" for k, v in rec.items()))


def _print_rows(df, as_json: bool, chunk: int = 10000, header: bool = True, bracket: bool = True) -> None:
    """Rows printed a chunk at a time (a 10^6-row answer never exists as one string): a JSON list
    of records, or an aligned table (columns as wide as the first chunk needs)."""
    import sys

    import pandas as pd
    out = sys.stdout
    if as_json:                       # bracket=False: a later part of one list (its "[" and "]" are the caller's)
        out.write("[" if bracket else "")
        for i in range(0, len(df), chunk):
            recs = df.iloc[i:i + chunk].to_dict(orient="records")
            out.write(("," if i or not header else "") + ",".join("\n  " + json.dumps(r) for r in recs))
        out.write("\n]\n" if bracket else "")
        return
    with pd.option_context("display.max_columns", None, "display.width", 250):
        for i in range(0, len(df), chunk):
            text = df.iloc[i:i + chunk].to_string(index=False, header=header and i == 0)
            out.write(text + "\n")


def cmd_fit(args) -> int:
    from ..paths import data_dir, is_shipped_surrogates, surrogates_dir

    for s in args.spaces or ():
        if s not in SPACES:
            raise ValueError(f"--spaces: unknown {s!r}; allowed: {sorted(SPACES)}")
    out = Path(named_destination(args.out, surrogates_dir(), "--out", is_shipped_surrogates))
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {str(out)!r} is a file; expected the surrogates folder")
    data = args.data or data_dir()
    if not any(Path(data).glob("*/*.h5")):       # fitting nothing would empty the surrogates folder
        raise ValueError(f"--data: no tables ({{space}}/*.h5) in {str(data)!r}; nothing to fit")
    require("xgboost", "scipy")
    from ..surrogates import FitSettings, fit_all, quality_table

    manifest = fit_all(data, out, FitSettings(nthread=args.nthread), spaces=args.spaces,
                       log=lambda msg: print(msg, file=sys.stderr))
    print(f"wrote {len(manifest['surrogates'])} surrogates and {out}/manifest.json", file=sys.stderr)
    if args.markdown:
        print(quality_table(manifest))
    return 0
