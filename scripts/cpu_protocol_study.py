#!/usr/bin/env python
"""The experiments behind CPU profiling protocol v2 (issue 14): how do rank agreement and level
error between two measurements of the same architectures grow with repeats spread over time, and
does a sentinel architecture re-measured throughout correct the machine's drift?

    taskset -c 1 python scripts/cpu_protocol_study.py measure --space s --n 100 --rounds 6 --reps 3 \\
        --out runs/cpu_study/s_e1.npz          # on a reserved core; everything else on the other
    python scripts/cpu_protocol_study.py analyse runs/cpu_study/s_e1.npz [--markdown]

`measure` visits n profiling-set architectures (positions 32.., past the corner architectures) in
`rounds` rounds, each round in a new seeded order; a visit builds the model, runs 1 warm-up and
`reps` timed forwards (fp32, B1 x T256, 1 thread), and records the machine's load (1-minute load
average, and how busy the other cores were during the visit, from /proc/stat). A fixed sentinel
architecture, kept built, is timed every `--sentinel-every` visits. Everything is saved raw (npz,
no pickle). `analyse` splits the rounds into two disjoint halves and reports, for every number of
rounds and repeats per half, Kendall tau and the median |log ratio| between the halves' medians,
raw and corrected by the sentinel's level at each visit's time.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def measure(args) -> int:
    import torch

    from hwgptbench.profiling.load import LoadProbe
    from hwgptbench.profiling.measure import measure_cpu, measure_decode_cpu
    from hwgptbench.profiling.profiling_set import profiling_set
    from hwgptbench.profiling.rounds import sentinel_arch
    from hwgptbench.profiling.run import build_model, weight_pool

    torch.set_num_threads(1)
    probe = LoadProbe()
    archs = profiling_set(args.space, args.start + args.n)[args.start:]
    pool = weight_pool(args.space, torch.device("cpu"), torch.float32, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    idx = torch.randint(0, 50257, (1, args.seq), generator=gen)
    sent = build_model(sentinel_arch(args.space), pool)
    rng = np.random.default_rng(args.seed)
    visits, sent_rows = [], []

    def time_sentinel():
        sent_rows.append([time.time(), *measure_cpu(sent, idx, 1, args.reps)["latency_ms"]])

    t_start = time.time()
    k = 0
    for r in range(args.rounds):
        order = rng.permutation(len(archs))
        for j in order:
            if k % args.sentinel_every == 0:
                time_sentinel()
            k += 1
            probe.start()
            t0 = time.time()
            tb = time.perf_counter()
            model = build_model(archs[j], pool)
            build_s = time.perf_counter() - tb
            ts = measure_cpu(model, idx, 1, args.reps)["latency_ms"].tolist()     # 1 warm-up, then timed
            # decode: an untimed prefill of T tokens then G timed steps, twice (the first right after
            # the forwards above, the second after another prefill)
            dec = measure_decode_cpu(model, 1, args.decode_prefill, args.decode_tokens, warmup=0, repeats=2,
                                     seed=int(j))["decode_ms"].tolist() if args.decode_tokens else []
            del model
            load = probe.stop()
            visits.append([j, r, t0, build_s, load["load1"], load["others_busy"], *ts, *dec])
        print(f"round {r + 1}/{args.rounds} done after {time.time() - t_start:.0f} s", flush=True)
    time_sentinel()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"space": args.space, "start": args.start, "n": args.n, "rounds": args.rounds, "reps": args.reps,
            "seq": args.seq, "threads": 1, "affinity": sorted(probe.mine), "sentinel": sentinel_arch(args.space).id,
            "arch_ids": [a.id for a in archs], "seconds": time.time() - t_start,
            "decode": {"prefill": args.decode_prefill, "tokens": args.decode_tokens, "repeats": 2 if args.decode_tokens else 0},
            "visit_columns": ["arch", "round", "t", "build_s", "load1", "others_busy", "ms x reps", "decode ms x 2"]}
    np.savez(out, visits=np.array(visits, dtype=np.float64), sentinel=np.array(sent_rows, dtype=np.float64),
             meta=np.array(json.dumps(meta)))
    print(out)
    return 0


def _agreement(a, b):
    from scipy.stats import kendalltau
    return float(kendalltau(a, b)[0]), float(np.median(np.abs(np.log(a / b))))


def _halves(V, x, n, half, r):
    """Each arch's median of x over rounds [0, r) and over [half, half + r): two independent estimates."""
    out = []
    for rs in (range(0, r), range(half, half + r)):
        m = np.isin(V[:, 1], list(rs))
        out.append(np.array([np.median(x[m & (V[:, 0] == j)]) for j in range(n)]))
    return out


def analyse(args) -> int:
    z = np.load(args.file, allow_pickle=False)
    meta = json.loads(str(z["meta"]))
    V, S = z["visits"], z["sentinel"]
    n, rounds, reps = meta["n"], meta["rounds"], meta["reps"]
    ms = V[:, 6:6 + reps]
    dec = V[:, 6 + reps:]
    # sentinel level at each visit: the median of its repeats, interpolated in time, over its overall median
    s_level = np.median(S[:, 1:], axis=1)
    level = np.interp(V[:, 2], S[:, 0], s_level) / np.median(s_level)
    half = rounds // 2
    lines = [f"{meta['space']}: {n} archs, {rounds} rounds x {reps} repeats, {meta['seconds'] / 60:.1f} min; "
             f"sentinel {meta['sentinel']} CV {np.std(s_level) / np.mean(s_level):.1%} "
             f"(range {s_level.min():.1f}-{s_level.max():.1f} ms); load1 median {np.median(V[:, 4]):.2f}, "
             f"other cores busy median {np.nanmedian(V[:, 5]):.0%}", "",
             "Prefill latency: agreement between two disjoint sets of rounds (each arch's median)", "",
             "| rounds per half | repeats per visit | tau | median abs log ratio | tau (sentinel-corrected) | "
             "median abs log ratio (corrected) |", "|---:|---:|---:|---:|---:|---:|"]
    for r in range(1, half + 1):
        for k in range(1, reps + 1):
            raw = _agreement(*_halves(V, ms[:, :k], n, half, r))
            cor = _agreement(*_halves(V, ms[:, :k] / level[:, None], n, half, r))
            lines.append(f"| {r} | {k} | {raw[0]:.3f} | {raw[1]:.2%} | {cor[0]:.3f} | {cor[1]:.2%} |")
    if dec.shape[1]:
        lines += ["", f"Decode ms/token (B1, T{meta['decode']['prefill']}, G{meta['decode']['tokens']}): "
                      "first timed pass after the forwards / second pass", "",
                  "| rounds per half | pass | tau | median abs log ratio |", "|---:|---|---:|---:|"]
        for r in range(1, half + 1):
            for name, x in (("first", dec[:, :1]), ("second", dec[:, 1:2]), ("both", dec)):
                t, lr = _agreement(*_halves(V, x, n, half, r))
                lines.append(f"| {r} | {name} | {t:.3f} | {lr:.2%} |")
        dcv = np.abs(np.log(dec[:, 0] / dec[:, 1]))
        lines.append(f"\nfirst vs second decode pass of one visit: median abs log ratio {np.median(dcv):.2%}")
    cv = np.std(ms, axis=1, ddof=1) / np.mean(ms, axis=1)
    lines += ["", f"within-visit CV of the {reps} forward repeats: median {np.median(cv):.1%}, "
                  f"p90 {np.percentile(cv, 90):.1%}"]
    per = [np.median(ms[V[:, 0] == j], axis=1) for j in range(n)]
    bv = np.median([np.std(p, ddof=1) / np.mean(p) for p in per])
    lines.append(f"between-visit CV of one arch's visit medians: median {bv:.1%}")
    first = np.array([np.median(ms[(V[:, 0] == j)][:, 0]) for j in range(n)])
    rest = np.array([np.median(ms[(V[:, 0] == j)][:, 1:]) for j in range(n)])
    lines.append(f"first timed forward of a visit vs the others: median ratio {np.median(first / rest):.3f}")
    print("\n".join(lines))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--space", default="s")
    m.add_argument("--n", type=int, default=100)
    m.add_argument("--start", type=int, default=32, help="first profiling-set position (32: past the corners)")
    m.add_argument("--rounds", type=int, default=6)
    m.add_argument("--reps", type=int, default=3)
    m.add_argument("--seq", type=int, default=256)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--sentinel-every", type=int, default=10)
    m.add_argument("--decode-prefill", type=int, default=128)
    m.add_argument("--decode-tokens", type=int, default=16, help="0: no decode")
    m.add_argument("--out", required=True)
    m.set_defaults(func=measure)
    a = sub.add_parser("analyse")
    a.add_argument("file")
    a.set_defaults(func=analyse)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
