"""Does weight sharing rank architectures as training them on their own would? (benchmarks.md,
"The xs space: validity"). Two checks of one space's supernet perplexity:

* supernet vs standalone: a few architectures spread over the space, each trained alone on the
  same batches with the same schedule (``sandwich=1``), scored on the same test windows; Kendall
  tau between their perplexities and the supernet's at every fidelity;
* supernet vs supernet: a second supernet run with another seed scores the same architectures;
  the rank agreement between the two runs.
"""
from __future__ import annotations

import numpy as np

from ..space import Arch, get_space
from ..validation import check_int

__all__ = ["standalone_archs", "rank_agreement"]


def standalone_archs(space, k: int = 8, pool: int = 300) -> list[Arch]:
    """k architectures spread over the space by size: the profiling set's first `pool` positions
    (those scored at every fidelity) sorted by parameter count, one at each of the k quantiles
    (i + 0.5) / k. Deterministic: the profiling set is fixed."""
    from .. import cost
    from ..profiling.profiling_set import profiling_set

    k, pool = check_int(k, "k", 2), check_int(pool, "pool", 2)
    if k > pool:
        raise ValueError(f"k: at most pool ({pool}), got {k}")
    archs = profiling_set(space, pool)
    order = np.argsort(cost.params(archs, get_space(space).name), kind="stable")
    return [archs[order[int((i + 0.5) * pool / k)]] for i in range(k)]


def rank_agreement(a: dict[str, float], b: dict[str, float]) -> dict:
    """Kendall tau (and Spearman rho) between two {arch id: perplexity} maps on their common ids."""
    from scipy import stats
    ids = sorted(set(a) & set(b))
    if len(ids) < 3:
        return {"n": len(ids), "kendall_tau": float("nan"), "spearman": float("nan")}
    x, y = np.array([a[i] for i in ids]), np.array([b[i] for i in ids])
    return {"n": len(ids), "kendall_tau": float(stats.kendalltau(x, y)[0]),
            "spearman": float(stats.spearmanr(x, y)[0])}
