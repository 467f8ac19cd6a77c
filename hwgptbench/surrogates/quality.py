"""The quality report of a surrogate on its held-out architectures (never used for fitting or
calibration), and the markdown table of a manifest's quality for benchmarks.md. Fit-time only
(scipy, extra ``fit``)."""
from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["held_out_quality", "quality_table"]


def held_out_quality(mu: np.ndarray, truth: np.ndarray, repeats: np.ndarray, lo: np.ndarray,
                     hi: np.ndarray) -> dict:
    """Rank, error and interval-coverage figures of log predictions `mu` against the measured
    medians `truth`, the raw `repeats` (NaN-padded) and the interval (lo, hi) of each architecture."""
    pred = np.exp(mu)
    log_truth = np.log(truth)
    inside = (repeats >= lo[:, None]) & (repeats <= hi[:, None])
    return {
        "kendall_tau": float(stats.kendalltau(pred, truth)[0]),
        "spearman": float(stats.spearmanr(pred, truth)[0]),
        "r2": float(1 - np.sum((pred - truth) ** 2) / np.sum((truth - truth.mean()) ** 2)),
        "r2_log": float(1 - np.sum((mu - log_truth) ** 2) / np.sum((log_truth - log_truth.mean()) ** 2)),
        "mape": float(np.mean(np.abs(pred - truth) / truth)),
        "mdape": float(np.median(np.abs(pred - truth) / truth)),
        "coverage90": float(inside[np.isfinite(repeats)].mean()),
        "coverage90_median": float(np.mean((truth >= lo) & (truth <= hi))),
        "median_interval_width_rel": float(np.median((hi - lo) / pred)),
    }


def quality_table(manifest: dict) -> str:
    """Markdown table of the held-out quality of every surrogate (for benchmarks.md)."""
    rows = ["| space | column | n_train | n_test | Kendall tau | Spearman | R^2 | MAPE | 90% coverage |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for e in manifest["surrogates"].values():
        q = e["quality"]
        f = lambda k, fmt="{:.3f}": fmt.format(q[k]) if q.get(k) is not None else "n/a"  # noqa: E731
        rows.append(f"| {e['space']} | `{e['column']}` | {e['n_train']} | {e['n_test']} | {f('kendall_tau')} | "
                    f"{f('spearman')} | {f('r2')} | {f('mape', '{:.1%}')} | {f('coverage90', '{:.1%}')} |")
    for u in manifest.get("unavailable", []):
        rows.append(f"| {u['space']} | `{u['column']}` | – | – | unavailable: {u['reason']} | | | | |")
    return "\n".join(rows)
