"""`hwgptbench query` and `hwgptbench fit-surrogates`."""
from __future__ import annotations

import json
import sys

from .columns import Column
from .space import SPACES, as_arch


def parse_arch(text: str, space: str | None = None):
    """An architecture from a string id, a JSON dict (HW-GPT-Bench keys) or '@file.json'."""
    text = text.strip()
    if text.startswith("@"):
        with open(text[1:]) as f:
            text = f.read().strip()
    if text.startswith("{"):
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"arch: not valid JSON ({e})") from None
        return as_arch(d, space)
    return as_arch(text, space)


def register(sub) -> None:
    q = sub.add_parser("query", help="metrics of architectures: exact columns and surrogate predictions")
    q.add_argument("arch", nargs="+",
                   help="string id, JSON dict (HW-GPT-Bench keys), @file.json, or 'random'")
    q.add_argument("--space", default=None, choices=sorted(SPACES),
                   help="space of dict/random architectures (ids carry their own; default s)")
    q.add_argument("-n", type=int, default=1, help="how many architectures 'random' draws")
    q.add_argument("--devices", default=None, help="comma-separated device names (default: all)")
    q.add_argument("--metrics", default=None,
                   help="comma-separated metrics or columns, e.g. latency_ms,params (default: all)")
    q.add_argument("--noise", action="store_true", help="seeded noisy draws instead of the median")
    q.add_argument("--interval", action="store_true", help="add the calibrated 90%% interval")
    q.add_argument("--seed", type=int, default=0, help="seed of 'random' and of --noise (default 0)")
    q.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    q.add_argument("--list", action="store_true", help="list devices and metrics instead of querying")
    q.set_defaults(func=cmd_query)

    f = sub.add_parser("fit-surrogates", help="fit one surrogate per (space, device, metric) found in data/")
    f.add_argument("--data", default=None, help="tables folder (default: the package's data/)")
    f.add_argument("--out", default=None, help="surrogates folder (default: the package's surrogates/)")
    f.add_argument("--spaces", default=None, help="comma-separated spaces to refit (default: all)")
    f.add_argument("--nthread", type=int, default=1, help="xgboost threads (default 1; needs the `fit` extra)")
    f.add_argument("--markdown", action="store_true", help="print the quality table as markdown")
    f.set_defaults(func=cmd_fit)


def _split(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _columns(text):
    """--metrics: metric or column names, each checked as a column name."""
    names = _split(text)
    for n in names or ():
        try:
            Column.parse(n)
        except ValueError as e:
            raise ValueError(f"--metrics: {e}") from None
    return names


def cmd_query(args) -> int:
    from .benchmark import Benchmark

    if any(a == "random" for a in args.arch) and len(args.arch) > 1:
        raise ValueError("arch: 'random' cannot be mixed with explicit architectures")
    if args.arch == ["random"]:
        bench = Benchmark(args.space or "s")
        archs = bench.sample(args.n, seed=args.seed)
    else:
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
    df = bench.query(archs, metrics=_columns(args.metrics), devices=_split(args.devices),
                     noise=args.noise, seed=args.seed, interval=args.interval)
    df.insert(0, "arch_id", [a.id for a in archs])
    if args.json:
        print(json.dumps(df.to_dict(orient="records"), indent=2))
    else:
        import pandas as pd

        if len(df) == 1:
            rec = df.to_dict(orient="records")[0]
            width = max(map(len, rec))
            print("\n".join(f"{k:>{width}}: {v}" for k, v in rec.items()))
        else:
            with pd.option_context("display.max_columns", None, "display.width", 250):
                print(df.to_string(index=False))
    return 0


def cmd_fit(args) -> int:
    from .paths import data_dir, surrogates_dir
    try:
        from .surrogates import FitSettings, fit_all, quality_table
    except ImportError as e:                   # the `fit` extra is missing: say so, not a traceback
        raise ValueError(str(e)) from None

    settings = FitSettings(nthread=args.nthread)
    spaces = _split(args.spaces)
    for s in spaces or ():
        if s not in SPACES:
            raise ValueError(f"spaces: unknown {s!r}; allowed: {sorted(SPACES)}")
    out = args.out or surrogates_dir()
    manifest = fit_all(args.data or data_dir(), out, settings, spaces=spaces,
                       log=lambda msg: print(msg, file=sys.stderr))
    print(f"wrote {len(manifest['surrogates'])} surrogates and {out}/manifest.json", file=sys.stderr)
    if args.markdown:
        print(quality_table(manifest))
    return 0
