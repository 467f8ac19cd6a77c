#!/usr/bin/env python
"""Where a CPU protocol-2 forward's time goes, for a few s architectures per embedding size: the
whole forward, the transformer body (final LayerNorm output), the LM head writing fresh logits
(as the forward does: a new 51 MB buffer, B1 x T256 x 50304 fp32) and into a buffer already
touched, the page-faulting alone (allocate + fill vs fill of touched memory), and decode as the
protocol measures it. Medians of 3
rounds, each with the models built afresh from the profiler's weight pool, 1 thread.

    taskset -c 1 python scripts/cpu_forward_parts.py   # on the reserved core, nothing else measuring
    taskset -c 1 python scripts/cpu_forward_parts.py --neighbour-mb 256 --neighbour-cpu 0

    for i in 1 2 3 4 5 6 7 8; do taskset -c 1 python scripts/cpu_forward_parts.py --sentinel; done

--sentinel measures only protocol 2's sentinel architecture, built once and kept (as the profiler
keeps it), over 5 rounds: one line per process, to see a process's speed mode and where it lies.
--neighbour-mb N runs, for the whole measurement, a process on another core that streams through an
N MB array (a += 1 in numpy): how much a memory-hungry neighbour on the other core moves the
reserved core's figures (shared last-level cache and memory bandwidth).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from hwgptbench import cost
from hwgptbench.profiling.measure import measure_decode_cpu
from hwgptbench.profiling.profiling_set import profiling_set
from hwgptbench.profiling.run import build_model, weight_pool
from hwgptbench.space import get_space


def _ms(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def parts_of(model, idx) -> dict[str, float]:
    """One measurement of each part for a built model (its first forward already run)."""
    W = model.wte[:, :model.active.embed_dim]
    h = model._hidden(idx, None)
    touched = torch.empty(1, idx.shape[1], W.shape[0])
    torch.matmul(h, W.t(), out=touched)
    return {"forward": _ms(lambda: model(idx)), "body": _ms(lambda: model._hidden(idx, None)),
            "head, fresh logits": _ms(lambda: F.linear(h, W)),
            "head, touched buffer": _ms(lambda: torch.matmul(h, W.t(), out=touched)),
            "allocate + fill logits": _ms(lambda: torch.empty(1, idx.shape[1], W.shape[0]).fill_(0)),
            "fill touched buffer": _ms(lambda: touched.fill_(0)),
            "decode per token (B1, T128, G16)": float(measure_decode_cpu(model, 1, 128, 16, 0, 1)["decode_ms"][0])}


_STREAM = "import numpy as np, sys\na = np.ones(int(sys.argv[1]) * 2**20 // 8)\nwhile True:\n    a += 1.0\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neighbour-mb", type=int, default=0, help="MB a neighbour streams through (default: none)")
    ap.add_argument("--neighbour-cpu", type=int, default=0, help="the neighbour's core (default: %(default)s)")
    ap.add_argument("--sentinel", action="store_true", help="only the sentinel, kept built (one line)")
    args = ap.parse_args()
    neighbour = None
    if args.neighbour_mb:
        neighbour = subprocess.Popen([sys.executable, "-c", _STREAM, str(args.neighbour_mb)])
        os.sched_setaffinity(neighbour.pid, {args.neighbour_cpu})
        time.sleep(2)
    try:
        measure_sentinel() if args.sentinel else measure()
    finally:
        if neighbour is not None:
            neighbour.kill()


def measure() -> None:
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    pool = weight_pool(get_space("s"), torch.device("cpu"), torch.float32, gen)
    archs = profiling_set("s", 132)[32:132]
    pick = [a for e in (192, 384, 768) for a in [x for x in archs if x.embed_dim == e][:3]]
    idx = torch.randint(0, cost.VOCAB_SIZE, (1, 256), generator=gen)
    parts: dict[int, dict[str, list[float]]] = {}
    with torch.inference_mode():
        for _ in range(3):
            for a in pick:
                model = build_model(a, pool)
                model(idx)
                for k, v in parts_of(model, idx).items():
                    parts.setdefault(a.embed_dim, {}).setdefault(k, []).append(v)
                del model
    print(json.dumps({f"E={e}": {k: round(float(np.median(v)), 1) for k, v in p.items()}
                      for e, p in parts.items()}, indent=1))


def measure_sentinel() -> None:
    from hwgptbench.profiling.rounds import sentinel_arch
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    pool = weight_pool(get_space("s"), torch.device("cpu"), torch.float32, gen)
    idx = torch.randint(0, cost.VOCAB_SIZE, (1, 256), generator=gen)
    parts: dict[str, list[float]] = {}
    with torch.inference_mode():
        model = build_model(sentinel_arch("s"), pool)
        model(idx)
        for _ in range(5):
            for k, v in parts_of(model, idx).items():
                parts.setdefault(k, []).append(v)
    print(json.dumps({"pid": os.getpid(), **{k: round(float(np.median(v)), 1) for k, v in parts.items()}}))


if __name__ == "__main__":
    main()
