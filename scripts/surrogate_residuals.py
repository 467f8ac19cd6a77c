#!/usr/bin/env python
"""Where a latency surrogate's error comes from: its residual against each table's measured
medians, by decile of measurement time, next to the spread of an architecture's own repeats.

A residual that moves with the clock (the machine got faster or slower while the table was being
measured) cannot be learnt from the architecture; it bounds what any surrogate can reach.

    OMP_NUM_THREADS=1 python scripts/surrogate_residuals.py [--device cpu_xeon_2c] [--spaces s,m,l]
"""
import argparse

import numpy as np

from hwgptbench import Benchmark
from hwgptbench.columns import Column
from hwgptbench.paths import data_dir
from hwgptbench.tables import read_table

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--device", default="cpu_xeon_2c")
p.add_argument("--metric", default="latency_ms")
p.add_argument("--spaces", default="s,m,l")
args = p.parse_args()
print("| space | rows | median log(measured median / surrogate) per decile of measurement time | "
      "median abs log deviation of a repeat from its arch's median |")
print("|---|---:|---|---:|")
for space in args.spaces.split(","):
    path = data_dir() / space / f"{args.device}.h5"
    col = str(Column(args.metric, args.device))
    b = Benchmark(space)
    if not path.exists() or col not in b.columns():
        continue
    t = read_table(path)
    raw = t.raw[args.metric]
    med = np.nanmedian(raw, axis=1)
    r = np.log(med / b.evaluate(t.arch_ids, [col])[:, 0])
    deciles = np.array_split(np.argsort(t.extra["measured_at"]), 10)
    spread = np.nanmedian(np.abs(np.log(raw) - np.log(med)[:, None]), axis=1)
    print(f"| {space} | {len(t)} | {' '.join(f'{np.median(r[i]):+.3f}' for i in deciles)} | "
          f"{np.median(spread):.3f} |")
