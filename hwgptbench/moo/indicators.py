"""Quality indicators (thin wrappers over moocore), all for minimised objectives."""
from __future__ import annotations

import numpy as np

__all__ = ["hypervolume", "igd_plus", "nondominated", "hv_curve", "eaf", "eafdiff"]


def _points(F, k=None) -> np.ndarray:
    F = np.asarray(F, dtype=np.float64)
    if F.ndim == 1:
        F = F[None, :]
    if F.ndim != 2 or (k is not None and F.shape[1] != k):
        raise ValueError(f"objectives: expected shape (n, {k if k is not None else 'k'}), got {F.shape}")
    if not np.all(np.isfinite(F)):
        raise ValueError("objectives: must be finite")
    return F


def hypervolume(F, ref) -> float:
    """Hypervolume dominated by F and bounded by ref (points not dominating ref add nothing)."""
    import moocore
    ref = np.asarray(ref, dtype=np.float64)
    F = _points(F, ref.size)
    F = F[np.all(F < ref, axis=1)]
    return float(moocore.hypervolume(F, ref=ref)) if len(F) else 0.0


def igd_plus(F, reference_front) -> float:
    """IGD+ of F against a reference front (0 when F weakly dominates the whole front)."""
    import moocore
    R = _points(reference_front)
    return float(moocore.igd_plus(_points(F, R.shape[1]), ref=R))


def nondominated(F) -> np.ndarray:
    """Boolean mask of the non-dominated rows of F (duplicates of a non-dominated point all kept)."""
    import moocore
    F = _points(F)
    return moocore.is_nondominated(F, keep_weakly=True) if len(F) else np.zeros(0, bool)


def hv_curve(F, ref, at=None) -> tuple[np.ndarray, np.ndarray]:
    """Hypervolume of the first n evaluations, for each n in `at` (default: every evaluation).

    Keeps a running non-dominated archive, so it costs one small HV computation per checkpoint.
    """
    import moocore
    ref = np.asarray(ref, dtype=np.float64)
    F = _points(F, ref.size)
    n = len(F)
    at = np.arange(1, n + 1) if at is None else np.asarray(at, dtype=np.int64)
    if at.size and (at.min() < 1 or at.max() > n or np.any(np.diff(at) <= 0)):
        raise ValueError(f"at: expected increasing evaluation counts in [1, {n}]")
    out = np.empty(len(at))
    archive = np.empty((0, ref.size))
    start = 0
    for i, stop in enumerate(at):
        new = F[start:stop]
        new = new[np.all(new < ref, axis=1)]
        if len(new):
            archive = np.vstack([archive, new])
            archive = archive[moocore.is_nondominated(archive)]
        out[i] = float(moocore.hypervolume(archive, ref=ref)) if len(archive) else 0.0
        start = stop
    return at, out


def eaf(sets, percentiles=(25, 50, 75)) -> list[np.ndarray]:
    """Empirical attainment surfaces: one array of points per percentile (2 objectives).

    `sets`: a list of (n_i, 2) objective arrays, one per run.
    """
    import moocore
    pts, ids = _stack(sets)
    out = moocore.eaf(pts, sets=ids, percentiles=list(percentiles))
    return [out[np.isclose(out[:, -1], p)][:, :-1] for p in percentiles]


def eafdiff(sets_a, sets_b, intervals: int | None = None) -> np.ndarray:
    """EAF differences (moocore.eafdiff, rectangles): rows x1,y1,x2,y2,diff with diff > 0 where A attains more."""
    import moocore
    pa, ia = _stack(sets_a)
    pb, ib = _stack(sets_b)
    x = np.column_stack([pa, ia])
    y = np.column_stack([pb, ib])
    try:
        return moocore.eafdiff(x, y, intervals=intervals, rectangles=True)
    except ValueError as e:        # moocore 0.3 fails to shape an empty answer (the EAFs are equal)
        if "array of size 0" not in str(e):
            raise
        return np.empty((0, 5))


def _stack(sets):
    if not len(sets):
        raise ValueError("sets: expected at least one run")
    pts = [_points(s) for s in sets]
    ids = np.concatenate([np.full(len(p), i + 1) for i, p in enumerate(pts)])
    return np.vstack(pts), ids
