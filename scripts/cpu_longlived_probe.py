#!/usr/bin/env python
"""A long-lived process beside scripts/cpu_drift_study.sh: right after each drift probe (a fresh
profiler process) ends, it measures the same 5 s architectures (3 of E=192, 1 of 384, 1 of 768
from positions 32-61; forward and decode as protocol 2 does, each model built afresh from the
profiler's weight pool, medians of 3) and appends a JSON line. If the fresh processes move and
this one does not, a speed mode belongs to the process; if both move, to the time.

    taskset -c 1 python scripts/cpu_longlived_probe.py runs/cpu_v2/drift/longlived.jsonl 8000 &
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import torch

from hwgptbench import cost
from hwgptbench.profiling.measure import measure_decode_cpu
from hwgptbench.profiling.profiling_set import profiling_set
from hwgptbench.profiling.run import build_model, weight_pool
from hwgptbench.space import get_space


def probe_running() -> bool:
    return subprocess.run(["pgrep", "-f", "drift/probe_"], capture_output=True).returncode == 0


def measure(pick, pool, idx) -> dict:
    res = {}
    with torch.inference_mode():
        for k, arch in enumerate(pick):
            model = build_model(arch, pool)
            model(idx)
            fwd = []
            for _ in range(3):
                t = time.perf_counter()
                model(idx)
                fwd.append((time.perf_counter() - t) * 1e3)
            dec = [float(measure_decode_cpu(model, 1, 128, 16, 0, 1, seed=0)["decode_ms"][0]) for _ in range(3)]
            res[f"{k}:E{arch.embed_dim}"] = (round(float(np.median(fwd)), 1), round(float(np.median(dec)), 2))
            del model
    return res


def main() -> None:
    out_path, seconds = sys.argv[1], float(sys.argv[2])
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    pool = weight_pool(get_space("s"), torch.device("cpu"), torch.float32, gen)
    archs = profiling_set("s", 62)[32:62]
    pick = [x for x in archs if x.embed_dim == 192][:3] + [[x for x in archs if x.embed_dim == e][0] for e in (384, 768)]
    idx = torch.randint(0, cost.VOCAB_SIZE, (1, 256), generator=gen)
    end, was, first = time.time() + seconds, False, True
    with open(out_path, "a") as out:
        while time.time() < end:
            now = probe_running()
            if first or (was and not now):
                time.sleep(5)
                out.write(json.dumps({"t": time.time(), "hhmm": time.strftime("%H:%M", time.gmtime()),
                                      "res": measure(pick, pool, idx)}) + "\n")
                out.flush()
                first = False
            was = now
            time.sleep(5)


if __name__ == "__main__":
    main()
