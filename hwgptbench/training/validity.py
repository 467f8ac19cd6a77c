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

__all__ = ["standalone_archs", "rank_agreement", "split_half_agreement"]


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


def pairs_in_order(a: dict[str, float], b: dict[str, float], group) -> dict:
    """Of the pairs of common ids in one group (`group(id)`, e.g. the embedding width), how many
    `a` and `b` order the same way: with 8 networks of 3 widths, Kendall tau over all of them is
    mostly the widths' order; the pairs within a width are the finer test."""
    ids = sorted(set(a) & set(b))
    pairs = [(i, j) for k, i in enumerate(ids) for j in ids[k + 1:] if group(i) == group(j)]
    same = sum((a[i] - a[j]) * (b[i] - b[j]) > 0 for i, j in pairs)
    return {"pairs": len(pairs), "in_order": int(same)}


def split_half_agreement(a: list[dict], b: list[dict], n_boot: int = 1000, seed: int = 0) -> dict:
    """Is the reordering between two fidelities (score rows `a` and `b`, with ``window_nll``) more
    than evaluation noise? Windows are split into two halves (even and odd); ``same`` is Kendall
    tau between b's two halves (one model, two disjoint samples of text: the noise ceiling),
    ``cross`` between a's first half and b's second (and vice versa, averaged): two models on
    disjoint samples, as noisy as ``same``. ``cross`` below ``same`` by more than the bootstrap
    interval over architectures means the landscape still moved between the fidelities."""
    from scipy import stats
    wa = {r["arch_id"]: np.asarray(r["window_nll"]) for r in a}
    wb = {r["arch_id"]: np.asarray(r["window_nll"]) for r in b}
    ids = sorted(set(wa) & set(wb))
    if len(ids) < 3:
        return {"n": len(ids)}
    A, B = np.array([wa[i] for i in ids]), np.array([wb[i] for i in ids])
    a0, a1, b0, b1 = A[:, 0::2].mean(1), A[:, 1::2].mean(1), B[:, 0::2].mean(1), B[:, 1::2].mean(1)

    def taus(k):
        same = stats.kendalltau(b0[k], b1[k])[0]
        cross = (stats.kendalltau(a0[k], b1[k])[0] + stats.kendalltau(a1[k], b0[k])[0]) / 2
        return same, cross

    same, cross = taus(np.arange(len(ids)))
    rng = np.random.default_rng(seed)
    diff = np.array([np.subtract(*taus(rng.integers(0, len(ids), len(ids)))) for _ in range(n_boot)])
    lo, hi = np.percentile(diff, [5, 95])
    return {"n": len(ids), "windows_per_half": int(A.shape[1] // 2), "same": float(same), "cross": float(cross),
            "same_minus_cross": float(same - cross), "same_minus_cross_90": [float(lo), float(hi)],
            "full_tau": float(stats.kendalltau(A.mean(1), B.mean(1))[0])}
