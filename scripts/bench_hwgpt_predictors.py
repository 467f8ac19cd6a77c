"""Query speed of HW-GPT-Bench's predictors as served (numpy): 10,000 architectures of one column,
and single-architecture queries (mean of 200). Run on a reserved core:

    taskset -c 1 python scripts/bench_hwgpt_predictors.py
"""
import time

from hwgptbench import Benchmark, get_space

for space in ("s", "m", "l"):
    bench = Benchmark(space)
    X = get_space(space).sample_features(10_000, seed=0)
    bench.evaluate(X[:10], ["perplexity_hwgpt"])                 # load the weights once
    t = time.perf_counter()
    bench.evaluate(X, ["perplexity_hwgpt"])
    many = time.perf_counter() - t
    arch = get_space(space).sample(1, seed=1)[0]
    t = time.perf_counter()
    for _ in range(200):
        bench.query(arch, metrics=["perplexity_hwgpt"])
    one = (time.perf_counter() - t) / 200
    print(f"{space}: 10,000 architectures {many * 1e3:.1f} ms; one architecture {one * 1e6:.0f} us")

# the range served: 10^6 seeded random architectures per space, and the smallest and largest
for space in ("s", "m", "l"):
    sp, bench = get_space(space), Benchmark(space)
    v = bench.evaluate(sp.sample_features(10 ** 6, seed=1), ["perplexity_hwgpt"])[:, 0]
    ends = bench.evaluate(sp.encode([sp.smallest(), sp.largest()]), ["perplexity_hwgpt"])[:, 0]
    print(f"{space}: perplexity_hwgpt over 10^6 random {v.min():.1f}-{v.max():.1f}; "
          f"smallest {ends[0]:.1f}, largest {ends[1]:.1f}")
