#!/usr/bin/env python
"""Per profile table in data/: row count, latency range, noise (CV of repeats), and the Kendall
tau between measured latency and the cost model's FLOPs (a sanity check, not a target), and where
memory is measured the median relative error of the analytic memory estimate; for CPU protocol 2
the decode CV, the sentinel's CV over the run and the p90 of the load recorded with the rows.

Usage: python scripts/analyse_tables.py [--data-dir data] [--markdown]
       python scripts/analyse_tables.py --retest RETEST.h5   # test-retest against data/'s table
       python scripts/analyse_tables.py --decode             # how decode ranks differently from prefill
       python scripts/analyse_tables.py --drift DIR          # repeated probes over hours, in time order
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from hwgptbench import cost
from hwgptbench.space import Arch
from hwgptbench.tables import read_table


def profile_tables(data_dir: Path):
    """The profile tables in `data_dir` (not perplexity tables), as (path, Table)."""
    for path in sorted(Path(data_dir).glob("*/*.h5")):
        t = read_table(path)
        if t.kind == "profile":
            yield path, t


def embed_dims(arch_ids) -> np.ndarray:
    return np.array([Arch.from_id(a).embed_dim for a in arch_ids])


def analyse(path: Path, t) -> dict:
    lat = t.raw["latency_ms"]
    p = t.provenance["protocol"]
    med = np.nanmedian(lat, axis=1)
    cv = np.nanstd(lat, axis=1, ddof=1) / np.nanmean(lat, axis=1)
    fl = cost.flops(t.arch_ids, t.space, p["batch"], p["seq"])
    tau = kendalltau(med, fl).statistic if len(t) > 1 else float("nan")
    mem_err = float("nan")
    if t.sources.get("memory_MB") == "measured":
        est = cost.memory_mb(t.arch_ids, t.space, p["batch"], p["seq"], p["dtype"])
        mem_err = float(np.nanmedian(np.abs(est / t.raw["memory_MB"][:, 0] - 1)))
    dec_cv = float("nan")
    if "decode_ms" in t.raw:
        d = t.raw["decode_ms"]
        dec_cv = float(np.nanmedian(np.nanstd(d, axis=1, ddof=1) / np.nanmean(d, axis=1)))
    sent_cv = float("nan")                  # protocol 2: the sentinel's level over the whole run
    if "sentinel_latency_ms" in t.series:
        level = np.median(t.series["sentinel_latency_ms"][:, 1:], axis=1)
        sent_cv = float(np.std(level, ddof=1) / np.mean(level))
    load = t.extra.get("load1_max")
    busy = t.extra.get("others_busy_max")
    return {"sentinel_cv": sent_cv, "load1_max_p90": float(np.nanpercentile(load, 90)) if load is not None else float("nan"),
            "others_busy_p90": float(np.nanpercentile(busy, 90)) if busy is not None else float("nan"),
            "decode_cv_median": dec_cv, "mem_est_err": mem_err, "table": str(path), "space": t.space, "device": t.source, "rows": len(t),
            "repeats": lat.shape[1], "batch": p["batch"], "seq": p["seq"], "dtype": p["dtype"],
            "threads": p.get("threads"), "lat_min_ms": float(np.min(med)), "lat_max_ms": float(np.max(med)),
            "cv_median": float(np.nanmedian(cv)), "cv_p90": float(np.nanpercentile(cv, 90)),
            "tau_flops": float(tau)}


def matched(new, old):
    """Rows of `old` and `new` holding the same architectures: (i into old, j into new)."""
    pos = {a: i for i, a in enumerate(old.arch_ids)}
    both = [(pos[a], j) for j, a in enumerate(new.arch_ids) if a in pos]
    if not both:
        raise SystemExit("retest: no architecture in common")
    return tuple(map(np.array, zip(*both)))


def log_ratios(new, old, metric, i, j):
    """log(new median / old median) per matched architecture, with the old and new medians."""
    m_old = np.nanmedian(old.raw[metric][i], axis=1)
    m_new = np.nanmedian(new.raw[metric][j], axis=1)
    return np.log(m_new / m_old), m_old, m_new


def sentinel_level(t, metric) -> float:
    """The median over a run of the sentinel's per-visit medians."""
    return float(np.median(np.median(t.series[f"sentinel_{metric}"][:, 1:], axis=1)))


def retest(path: Path, data_dir: Path, against: Path | None = None) -> None:
    """Architectures measured again later (same device and protocol): how far the medians moved,
    for latency and (where measured) decode, overall and per embedding size, and the sentinel's
    level in both runs. `against`: compare with that table instead of data/'s."""
    new = read_table(path)
    old = read_table(against or data_dir / new.space / f"{new.source}.h5")
    i, j = matched(new, old)
    gap = (np.median(new.extra["measured_at"][j]) - np.median(old.extra["measured_at"][i])) / 60
    E = embed_dims([new.arch_ids[k] for k in j])
    for metric in ("latency_ms", "decode_ms"):
        if metric not in old.raw or metric not in new.raw:
            continue
        r, m_old, m_new = log_ratios(new, old, metric, i, j)
        print(f"{new.space}/{new.source} {metric}: {len(i)} archs measured again {gap:.0f} min later "
              f"(median); log(new/old median): median {np.median(r):+.3f}, median |.| "
              f"{np.median(np.abs(r)):.3f}, p90 |.| {np.percentile(np.abs(r), 90):.3f}; Kendall tau old vs "
              f"new {kendalltau(m_old, m_new).statistic:.3f}")
        print("  median log ratio (p10, p90) per embedding size: " + "; ".join(
            f"E={e}: {np.median(r[E == e]):+.3f} ({np.percentile(r[E == e], 10):+.3f}, "
            f"{np.percentile(r[E == e], 90):+.3f}), n={np.sum(E == e)}" for e in np.unique(E)))
        if f"sentinel_{metric}" in old.series and f"sentinel_{metric}" in new.series:
            print(f"  sentinel {metric}: median level {sentinel_level(old, metric):.1f} then "
                  f"{sentinel_level(new, metric):.1f}")


def drift(directory: Path, data_dir: Path) -> None:
    """Markdown: each table in `directory` (repeated measurements of the same architectures in
    fresh processes, e.g. by scripts/cpu_drift_study.sh), in time order, against data/'s table:
    median log ratio per embedding size and Kendall tau, for latency and decode, and the sentinel."""
    tables = sorted((read_table(p) for p in Path(directory).glob("*.h5")),
                    key=lambda t: float(np.min(t.extra["measured_at"])))
    if not tables:
        raise SystemExit(f"drift: no table in {directory}")
    old = read_table(data_dir / tables[0].space / f"{tables[0].source}.h5")
    metrics = [m for m in ("latency_ms", "decode_ms") if m in old.raw]
    dims = np.unique(embed_dims(tables[0].arch_ids))
    head = ["started (UTC)"] + [f"{m} E={e}" for m in metrics for e in dims] + [f"tau {m}" for m in metrics] \
        + [f"sentinel {m}" for m in metrics]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for t in tables:
        i, j = matched(t, old)
        E = embed_dims([t.arch_ids[k] for k in j])
        cells, taus = [], []
        for m in metrics:
            r, m_old, m_new = log_ratios(t, old, m, i, j)
            cells += [f"{np.median(r[E == e]):+.3f}" for e in dims]
            taus.append(f"{kendalltau(m_old, m_new).statistic:.3f}")
        sent = [f"{sentinel_level(t, m):.1f}" for m in metrics]
        start = time.strftime("%H:%M", time.gmtime(float(np.min(t.extra["measured_at"]))))
        print("| " + " | ".join([start] + cells + taus + sent) + " |")
    print("\nCells: median log(probe / table) of the architectures of that embedding size; the table's "
          "sentinel levels: " + ", ".join(f"{m} {sentinel_level(old, m):.1f}" for m in metrics))
    if all(list(t.arch_ids) == list(tables[0].arch_ids) for t in tables):
        i, j = matched(tables[0], old)
        E = embed_dims([tables[0].arch_ids[k] for k in j])
        for m in metrics:                   # ranks among architectures of one width: the probes' median vs the table
            probes = np.median([np.nanmedian(t.raw[m], axis=1) for t in tables], axis=0)[j]
            table = np.nanmedian(old.raw[m][i], axis=1)
            print(f"{m}: Kendall tau within embedding size, median of the probes vs the table: " + ", ".join(
                f"E={e} {kendalltau(probes[E == e], table[E == e]).statistic:.3f}" for e in dims))
    if len(tables) >= 6:
        print()
        spread_over_processes(tables, metrics)


def spread_over_processes(tables, metrics) -> None:
    """What spreading an architecture's visits over processes (and tens of minutes) would buy,
    from the probes themselves: agreement between two single probes (each: 3 visits in one process,
    as protocol 2 measures) vs between the medians of two disjoint triples of probes (each
    architecture: 3 processes, interleaved in time), for consecutive probes k.."""
    ids = tables[0].arch_ids
    if any(list(t.arch_ids) != list(ids) for t in tables):
        raise SystemExit("drift: the probes hold different architectures")
    print("| metric | compared | pairs | Kendall tau (median, worst) | median abs log ratio (median, worst) |")
    print("|---|---|---:|---|---|")
    for m in metrics:
        med = np.array([np.nanmedian(t.raw[m], axis=1) for t in tables])        # (probes, archs)
        singles = [(med[k], med[k + 1]) for k in range(len(tables) - 1)]
        triples = [(np.median(med[[k, k + 2, k + 4]], axis=0), np.median(med[[k + 1, k + 3, k + 5]], axis=0))
                   for k in range(len(tables) - 5)]
        for label, pairs in (("one process each (probe k vs k+1)", singles),
                             ("3 processes each (probes k, k+2, k+4 vs k+1, k+3, k+5)", triples)):
            taus = [kendalltau(a, b).statistic for a, b in pairs]
            lr = [float(np.median(np.abs(np.log(b / a)))) for a, b in pairs]
            print(f"| {m} | {label} | {len(pairs)} | {np.median(taus):.3f}, {np.min(taus):.3f} | "
                  f"{100 * np.median(lr):.1f}%, {100 * np.max(lr):.1f}% |")


def prefill_vs_decode(t) -> None:
    """Kendall tau between prefill latency and decode ms/token, over the table and within each
    embedding size (where width alone no longer orders them), and what each correlates with."""
    if "decode_ms" not in t.raw:
        return
    p = t.provenance["protocol"]
    lat = np.nanmedian(t.raw["latency_ms"], axis=1)
    dec = np.nanmedian(t.raw["decode_ms"], axis=1)
    E = embed_dims(t.arch_ids)
    kv = cost.kv_cache_mb(t.arch_ids, t.space, p["decode_batch"], p["decode_prefill"] + p["decode_tokens"], p["dtype"])
    w = cost.weights_mb(t.arch_ids, t.space, p["dtype"])
    tau = lambda a, b: kendalltau(a, b).statistic  # noqa: E731
    within = ", ".join(f"E={e}: {tau(lat[E == e], dec[E == e]):.2f} (n={np.sum(E == e)})" for e in np.unique(E))
    print(f"{t.space}/{t.source}: {len(t)} archs; decode/prefill ms ratio {np.min(dec / lat):.3f}-"
          f"{np.max(dec / lat):.3f}; Kendall tau(prefill, decode) {tau(lat, dec):.2f} overall, within "
          f"embedding size {within}; tau(decode, weights MB) {tau(dec, w):.2f}, tau(decode, KV-cache MB) "
          f"{tau(dec, kv):.2f}; tau(prefill, FLOPs) {tau(lat, cost.flops(t.arch_ids, t.space, p['batch'], p['seq'])):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--retest", type=Path, help="a table of re-measured archs to compare with data/")
    ap.add_argument("--against", type=Path, help="with --retest: compare with this table instead of data/'s")
    ap.add_argument("--decode", action="store_true", help="prefill vs decode, per table with decode_ms")
    ap.add_argument("--drift", type=Path, help="a folder of repeated probes (scripts/cpu_drift_study.sh)")
    args = ap.parse_args()
    if args.decode:
        for _, t in profile_tables(args.data_dir):
            prefill_vs_decode(t)
        return
    if args.drift:
        return drift(args.drift, Path(args.data_dir))
    if args.retest:
        return retest(args.retest, Path(args.data_dir), args.against)
    rows = [analyse(path, t) for path, t in profile_tables(args.data_dir)]
    cols = ["space", "device", "rows", "repeats", "batch", "seq", "dtype", "threads",
            "lat_min_ms", "lat_max_ms", "cv_median", "cv_p90", "tau_flops", "decode_cv_median", "sentinel_cv", "load1_max_p90",
            "others_busy_p90", "mem_est_err"]
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    if args.markdown:
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for r in rows:
            print("| " + " | ".join(fmt(r[c]) for c in cols) + " |")
    else:
        for r in rows:
            print("  ".join(f"{c}={fmt(r[c])}" for c in cols))


if __name__ == "__main__":
    main()
