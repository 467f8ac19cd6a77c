"""Figures of the GPU tables in data/ that benchmarks.md quotes ("The first GPU lease", "Sources").

    python scripts/analyse_gpu_tables.py [--devices h100 h200]

Per table: rows; Kendall tau of latency with FLOPs (B8 x T1024, the GPU protocol's shape); the median
latency of the first and the last fifth of rows in measuring order (`measured_at`, or the reference
rows' run `position`) and tau of latency with that order (drift over the run); the analytic memory
estimate against the measured peak (estimate/measured - 1: median, min, max) and their tau. Values
are read as stored (withdrawn rows included: this is where their flaw shows).
"""
from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import kendalltau

from hwgptbench import cost, get_space
from hwgptbench.paths import data_dir
from hwgptbench.space import Arch
from hwgptbench.tables import load_dataframe


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", nargs="*", default=["h100", "h200"])
    args = ap.parse_args(argv)
    print("| table | rows | tau(latency, FLOPs) | latency first / last fifth (ms) | tau(latency, order) "
          "| estimate/measured - 1: median (min..max) | tau(memory, estimate) |")
    print("|---|---:|---:|---|---:|---|---:|")
    for device in args.devices:
        for space in ("s", "m", "l"):
            path = data_dir() / space / f"{device}.h5"
            if not path.exists():
                continue
            df = load_dataframe(path)
            X = get_space(space).encode([Arch.from_id(a) for a in df.index])
            lat, mem = df["latency_ms"].to_numpy(), df["memory_MB"].to_numpy()
            order = df["measured_at"] if "measured_at" in df else df["position"]
            by_time = lat[np.argsort(order.to_numpy(), kind="stable")]
            q = len(lat) // 5
            est = cost.memory_mb(X, space, batch=8, seq=1024, dtype="bfloat16")
            err = est / mem - 1
            print(f"| {space}/{device}.h5 | {len(df)} | {kendalltau(lat, cost.flops(X, space, 8, 1024))[0]:.2f} "
                  f"| {np.median(by_time[:q]):.2f} / {np.median(by_time[-q:]):.2f} "
                  f"| {kendalltau(lat, order)[0]:.2f} "
                  f"| {100 * np.median(err):+.1f}% ({100 * err.min():+.1f}..{100 * err.max():+.1f}) "
                  f"| {kendalltau(mem, est)[0]:.2f} |")


if __name__ == "__main__":
    main()
