#!/usr/bin/env python3
"""Does torch.compile help sandwich training? Compile the blocks of a small supernet and run a few
different sub-networks: print each one's max |compiled - eager| difference, its wall time (compiling
included) and dynamo's count of distinct graphs. Result here: a new graph for every new per-layer
configuration, so random sub-networks never reach a compiled steady state (see benchmarks.md)."""
import time

import torch
import torch._dynamo
from torch._dynamo.utils import counters

from hwgptbench.model import GPT
from hwgptbench.space import get_space
from hwgptbench.training.supernet import sample_sub_networks

torch.set_num_threads(1)
torch._dynamo.config.allow_unspec_int_on_nn_module = True    # ints on modules as symbols, not constants
torch._dynamo.config.cache_size_limit = 64
SP = get_space("s")
TINY = SP.arch(192, 10, [4] * 10, [12] * 10, True)
m = GPT(TINY, device="cpu", dtype=torch.float32)
x = torch.randint(0, 50257, (1, 32))
subs = [TINY, SP.smallest()] + sample_sub_networks(SP, TINY, 4, 0)
with torch.no_grad():
    eager = []
    for a in subs:
        m.set_sub_network(a)
        eager.append(m(x))
    for blk in m.blocks:
        blk.compile(dynamic=True)
    t = time.time()
    for k, a in enumerate(subs):
        t1 = time.time()
        m.set_sub_network(a)
        y = m(x)
        print(k, a.id, f"max|diff| {float((y - eager[k]).abs().max()):.1e}", f"{time.time() - t1:.1f} s", flush=True)
print("dynamo", dict(counters["stats"]), f"total {time.time() - t:.1f} s")
