#!/usr/bin/env python
"""A single architecture's query of every column, for benchmarks.md (not a test: timings vary by
machine and by the moment on a shared VM).

Timing (default): per space, the median of --repeats single queries (`Benchmark.query(arch)`, one
`Arch`, every column), one line per run; alternate runs of two trees (PYTHONPATH) to compare them
under the same noise.

Instructions (--count N): only warm up and run N queries of one space, untimed. Under valgrind the
instruction count of a run with N queries minus one with 0, over N, is the cost of one query,
independent of the machine's load:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python scripts/bench_single_query.py --space s --count 300
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python scripts/bench_single_query.py --space s --count 0
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from hwgptbench import Benchmark


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", action="append", help="default: xs, s, m and l")
    p.add_argument("--repeats", type=int, default=2000)
    p.add_argument("--count", type=int, default=None, help="untimed: run this many queries (for valgrind)")
    args = p.parse_args(argv)
    spaces = args.space or ["xs", "s", "m", "l"]
    medians = []
    for space in spaces:
        b = Benchmark(space)
        arch = b.space.sample(1, seed=0)[0]
        for _ in range(200):                      # surrogates loaded, plan built, caches warm
            b.query(arch)
        if args.count is not None:
            for _ in range(args.count):
                b.query(arch)
            continue
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            b.query(arch)
            times.append(time.perf_counter() - t)
        medians.append(f"{space} {statistics.median(times) * 1e6:.0f} µs")
    if medians:
        print(time.strftime("%H:%M:%S", time.gmtime()), " | ".join(medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
