#!/usr/bin/env python
"""Query performance, memory and prediction sanity, for benchmarks.md (not a test: timings vary
by machine). Imports nothing beyond the core (numpy, pandas): no xgboost, scikit-learn or scipy.

Measures, with the shipped (or $HWGPTBENCH_SURROGATES) surrogates:
  * `import hwgptbench` time in fresh interpreters (median of --import-runs);
  * a fresh process's first surrogate answer: interpreter start, import, Benchmark, one
    single-architecture query of `latency_ms` (wall time of the whole process, median);
  * a 10,000-architecture query of every column of one device (feature matrix, Arch list, ids),
    and of every column the space serves (feature matrix);
  * the median single-architecture query (an Arch, and an id string);
  * --huge N random architectures per space (default 1,000,000) sampled as an int16 feature matrix
    and queried (every column) in a fresh process: peak RSS, and no negative, NaN or infinite
    prediction, mean or noisy.

    OMP_NUM_THREADS=1 python scripts/bench_query.py [--space s] [--device cpu_xeon_2c] [--huge 1000000]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

_HUGE = """
import json, resource, sys, time
import numpy as np
from hwgptbench import Benchmark
space, n = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
b = Benchmark(space)
X = b.space.sample_features(n, seed=0, dtype=np.int16)
df = b.query(X)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
seconds = time.perf_counter() - t0
v = df.to_numpy(dtype=np.float64)
del df
w = b.evaluate(X, b.columns(), noise=True, seed=1)
print(json.dumps({"space": space, "columns": len(b.columns()), "peak_MB": peak, "seconds": seconds,
                  "min": float(min(v.min(), w.min())), "negative": int((v < 0).sum() + (w < 0).sum()),
                  "nonfinite": int((~np.isfinite(v)).sum() + (~np.isfinite(w)).sum()),
                  "fit_libraries": [m for m in ("xgboost", "sklearn", "scipy") if m in sys.modules]}))
"""


def _median_ms(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts)


def _fresh(code: str, *args) -> str:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=True).stdout


def import_time(runs: int) -> float:
    code = "import time; t = time.perf_counter(); import hwgptbench; print(time.perf_counter() - t)"
    return 1e3 * statistics.median(float(_fresh(code)) for _ in range(runs))


def first_answer(arch_id: str, runs: int) -> float:
    """Wall time of a whole fresh process that answers one surrogate query."""
    code = (f"from hwgptbench import Benchmark; Benchmark({arch_id.split('-')[1]!r})"
            f".query({arch_id!r}, metrics=['latency_ms'])")
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        _fresh(code)
        ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="s")
    p.add_argument("--device", default=None, help="default: the first device with surrogates")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--single-repeats", type=int, default=2000)
    p.add_argument("--import-runs", type=int, default=10)
    p.add_argument("--huge", type=int, default=1_000_000, help="random archs per space (0: skip)")
    args = p.parse_args(argv)

    t_import = import_time(args.import_runs)
    import numpy as np

    from hwgptbench import SPACES, Benchmark

    b = Benchmark(args.space)
    devices = list(b.devices())
    device = args.device or (devices[0] if devices else None)
    cols = b.select(devices=[device]) if device else b.columns()
    X = b.space.sample_features(args.n, seed=0)
    archs = b.space.decode(X)
    ids = [a.id for a in archs]
    t_first = first_answer(ids[0], args.import_runs) if device else float("nan")
    b.query(X[:100], metrics=cols)                                  # load the surrogates once
    rows = [
        ("feature matrix", _median_ms(lambda: b.query(X, metrics=cols), args.repeats)),
        (f"feature matrix, every column ({len(b.columns())})", _median_ms(lambda: b.query(X), args.repeats)),
        ("list of Arch", _median_ms(lambda: b.query(archs, metrics=cols), args.repeats)),
        ("feature matrix, noise=True", _median_ms(lambda: b.query(X, metrics=cols, noise=True, seed=1), args.repeats)),
        ("evaluate() ndarray, feature matrix", _median_ms(lambda: b.evaluate(X, cols), args.repeats)),
        ("list of id strings", _median_ms(lambda: b.query(ids, metrics=cols), 3)),
    ]
    one, one_id = archs[0], ids[0]
    single = _median_ms(lambda: b.query(one, metrics=cols), args.single_repeats)
    single_all = _median_ms(lambda: b.query(one), args.single_repeats)
    single_id = _median_ms(lambda: b.query(one_id, metrics=cols), args.single_repeats // 4)

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"## query performance ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {load}, python {platform.python_version()}, numpy {np.__version__}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})")
    print(f"space {args.space}, device {device}, columns {cols}\n")
    print("| measurement | median |")
    print("|---|---:|")
    print(f"| `import hwgptbench` (fresh interpreter, {args.import_runs} runs) | {t_import:.1f} ms |")
    print(f"| fresh process to its first surrogate answer ({args.import_runs} runs) | {t_first:.0f} ms |")
    for name, ms in rows:
        print(f"| {args.n:,}-arch query, {name} | {ms:.1f} ms |")
    print(f"| single-arch query (Arch), device columns | {single * 1e3:.0f} µs |")
    print(f"| single-arch query (Arch), all {len(b.columns())} columns | {single_all * 1e3:.0f} µs |")
    print(f"| single-arch query (id string), device columns | {single_id * 1e3:.0f} µs |")

    if args.huge:
        print(f"\n## {args.huge:,} random architectures per space (int16 feature matrix, every column; "
              "fresh process each)\n")
        print("| space | columns | peak RSS (query) | seconds | min prediction | negative | NaN/inf |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for space in sorted(SPACES):
            r = json.loads(_fresh(_HUGE, space, str(args.huge)))
            print(f"| {space} | {r['columns']} | {r['peak_MB']:.0f} MB | {r['seconds']:.1f} | {r['min']:.4g} | "
                  f"{r['negative']} | {r['nonfinite']} |")
            if r["negative"] or r["nonfinite"] or r["fit_libraries"]:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
