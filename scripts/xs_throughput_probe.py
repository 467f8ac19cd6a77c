"""Supernet training throughput of the xs space on one core, fp32 vs bf16 autocast (the figures
of benchmarks.md "The xs space"). A probe, not a benchmark: 4 timed sandwich steps after 2 warm-up
steps, batch B x 256 tokens, 1 thread.

    taskset -c 1 python scripts/xs_throughput_probe.py 8      # with the other core idle
"""
import time, torch, sys
from hwgptbench.training.sandwich import TrainConfig, step_archs, sample_batch
from hwgptbench.training.supernet import build_model, _optimizer, _loss
from hwgptbench.training.corpus import load_split
torch.set_num_threads(1)
cfg = TrainConfig(space="xs", batch=int(sys.argv[1]), steps=1000)
tok = load_split("corpus_cache/gpt2_8192", "train")
import numpy as np
dev = torch.device("cpu")
for dt in ("fp32", "bf16"):
    m = build_model(cfg, dev); opt = _optimizer(m, cfg, dev)
    n = 0
    for s in range(6):
        if s == 2: t0 = time.perf_counter()
        x, y = sample_batch(tok, cfg.batch, cfg.seq, np.random.default_rng(s))
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        for a in step_archs(cfg, s):
            m.set_sub_network(a)
            with torch.autocast("cpu", torch.bfloat16, enabled=dt == "bf16"):
                loss = _loss(m, x, y)
            (loss / 4).backward()
        opt.step(); opt.zero_grad()
        if s >= 2: n += cfg.batch * cfg.seq
    dtt = time.perf_counter() - t0
    print(f"B={cfg.batch} T={cfg.seq} {dt}: {dtt/4:.2f} s/step {n/dtt:.0f} supernet tok/s", flush=True)
