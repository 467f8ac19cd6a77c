"""Test-only synthetic tables with a known ground truth (never shipped, never in data/).

latency_ms = 2e-9 * FLOPs(batch 1, seq 256) + 0.5 ms per layer, times lognormal noise
(sigma 0.05) per repeat: a surrogate must recover this ranking almost perfectly and its 90%
interval must cover about 90% of fresh repeats. energy_J is all NaN (no meter) and memory_MB is
analytic, as on the CPU tables, so both must be reported unavailable.
"""
from __future__ import annotations

import numpy as np
import pytest

from hwgptbench import cost
from hwgptbench.profiling.profiling_set import profiling_set
from hwgptbench.space import get_space
from hwgptbench.tables import Table, write_table

SIGMA = 0.05


def true_latency(X, space) -> np.ndarray:
    return 2e-9 * cost.flops(X, space, 1, 256) + 0.5 * np.asarray(X)[:, 1]


def _profiling_rows(space: str, n: int):
    """The first n profiling-set architectures (a table's rows sit at their positions)."""
    archs = profiling_set(space, n)
    return get_space(space).encode(archs), [a.id for a in archs]


def make_table(space: str, n: int, seed: int, repeats: int = 5) -> Table:
    rng = np.random.default_rng(seed)
    X, ids = _profiling_rows(space, n)
    lat = true_latency(X, space)[:, None] * np.exp(SIGMA * rng.standard_normal((len(ids), repeats)))
    raw = {"latency_ms": lat, "energy_J": np.full((len(ids), 1), np.nan),
           "memory_MB": cost.memory_mb(X, space, 1, 256, "float32")[:, None]}
    prov = {"device": "testdev", "protocol": {"backend": "cpu", "batch": 1, "seq": 256, "dtype": "float32"},
            "hardware": {"cpu": {"cpu_model": "synthetic test fixture", "lscpu": "long text"}}}
    return Table("profile", space, "testdev", ids, np.arange(len(ids)), raw,
                 {"latency_ms": "ms", "energy_J": "J", "memory_MB": "MB"},
                 {"latency_ms": "measured", "energy_J": "measured", "memory_MB": "analytic"}, prov)


def true_perplexity(X, space, percent) -> np.ndarray:
    """Falls with parameters and with training progress (a power law)."""
    return 20 + 3000 * (cost.params(X, space) / 1e6) ** -0.5 * (percent / 100) ** -0.3


def make_perplexity_table(space: str, n: int) -> Table:
    """Like hwgptbench.training.evaluate.perplexity_table: one value per arch and fidelity, unit '1'."""
    X, ids = _profiling_rows(space, n)
    raw = {f"perplexity_f{p}": true_perplexity(X, space, p)[:, None] for p in (50, 100)}
    raw["perplexity_f50"][::7] = np.nan                  # not every arch at every fidelity
    return Table("perplexity", space, "perplexity", ids, np.arange(len(ids)), raw,
                 {m: "1" for m in raw}, {m: "measured" for m in raw}, {"fidelities": {}})


def make_data_dir(root, sizes=None, perplexity=()):
    sizes = sizes or {"s": 300, "m": 120, "l": 120}
    for i, (space, n) in enumerate(sizes.items()):
        write_table(make_table(space, n, seed=100 + i), root / space / "testdev.h5")
    for i, space in enumerate(perplexity):
        write_table(make_perplexity_table(space, 150), root / space / "perplexity.h5")
    return root


@pytest.fixture(scope="session")
def small_surrogates(tmp_path_factory):
    """Surrogates fitted on synthetic s tables only: a device and a perplexity table (about 3 s)."""
    from hwgptbench.surrogates import fit_all

    root = tmp_path_factory.mktemp("small")
    data = make_data_dir(root / "data", {"s": 200}, perplexity=["s"])
    fit_all(data, root / "surrogates", log=lambda *a: None)
    return root / "surrogates"
