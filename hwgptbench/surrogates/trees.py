"""Gradient-boosted trees evaluated in numpy, from the booster files xgboost saved (``.ubj``).

All trees are flattened into one set of node arrays (leaves point to themselves) and evaluated
level by level: every row of a chunk walks every tree at once, one gather of the feature columns
per level. xgboost's rules are followed exactly, so the result equals xgboost's own
``inplace_predict`` bit for bit: go left iff ``x < threshold`` (float32 inputs and thresholds), and
the prediction is the float32 margin plus the leaves reached, added tree after tree in float32.
Only what the fitter writes is accepted (gbtree, numerical splits, one output); anything else is a
`SurrogateError`.
"""
from __future__ import annotations

import numpy as np

from .store import SurrogateError
from .ubjson import UBJSONError, loads

__all__ = ["TreeEnsemble"]

_ROWS = 8192            # rows per chunk: bounded memory (rows x trees node indices) at any batch size


class TreeEnsemble:
    """The trees of one saved booster as flat numpy arrays."""

    def __init__(self, trees: list[dict]):
        feat, thr, left, right, value, roots = [], [], [], [], [], []
        off, depth = 0, 0
        for t in trees:
            lc = np.asarray(t["left_children"], dtype=np.int64)
            rc = np.asarray(t["right_children"], dtype=np.int64)
            cond = np.asarray(t["split_conditions"], dtype=np.float32)
            if np.any(np.asarray(t.get("split_type", [])) != 0):
                raise SurrogateError("trees: categorical splits are not supported")
            leaf = lc == -1
            idx = np.arange(len(lc)) + off
            feat.append(np.where(leaf, 0, np.asarray(t["split_indices"], dtype=np.int64)))
            thr.append(np.where(leaf, np.float32(np.inf), cond))
            left.append(np.where(leaf, idx, lc + off))
            right.append(np.where(leaf, idx, rc + off))
            value.append(np.where(leaf, cond, np.float32(0)))
            roots.append(off)
            off += len(lc)
            depth = max(depth, _depth(lc, rc))
        cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
        self.feat, self.thr = cat(feat, np.intp), cat(thr, np.float32)
        self.left, self.right = cat(left, np.intp), cat(right, np.intp)
        self.value = cat(value, np.float32)
        self.roots = np.asarray(roots, dtype=np.intp)
        self.depth = depth
        self.n_features = int(self.feat.max()) + 1 if len(self.feat) else 0

    @classmethod
    def from_ubj(cls, blob: bytes, what: str = "booster") -> TreeEnsemble:
        """Read a booster saved by xgboost as UBJSON (`Booster.save_raw("ubj")`)."""
        try:
            gb = loads(blob)["learner"]["gradient_booster"]
            if gb["name"] != "gbtree":
                raise SurrogateError(f"{what}: booster {gb['name']!r}, only 'gbtree' is served")
            return cls(gb["model"]["trees"])
        except SurrogateError:
            raise
        except (UBJSONError, KeyError, TypeError, ValueError, IndexError) as e:
            raise SurrogateError(f"{what}: not an xgboost tree booster ({type(e).__name__}: {e})") from None

    def __len__(self) -> int:
        return len(self.roots)

    def predict(self, F: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """`margin` plus the leaves each row of the float32 design matrix `F` reaches, as xgboost
        computes it (float32); without trees, the margin itself (float64, not rounded)."""
        margin = np.asarray(margin, dtype=np.float64)
        if not len(self.roots):
            return margin
        out = np.empty(len(F))
        F = np.ascontiguousarray(F, dtype=np.float32)
        if F.shape[1] < self.n_features:
            raise SurrogateError(f"trees: need {self.n_features} input columns, got {F.shape[1]}")
        for a in range(0, len(F), _ROWS):
            block = F[a:a + _ROWS]
            flat = block.ravel()
            row_start = (np.arange(len(block)) * block.shape[1])[:, None]
            idx = np.repeat(self.roots[None, :], len(block), axis=0)
            for _ in range(self.depth):
                x = flat[row_start + self.feat[idx]]
                idx = np.where(x < self.thr[idx], self.left[idx], self.right[idx])
            terms = np.empty((len(block), len(self.roots) + 1), dtype=np.float32)
            terms[:, 0] = margin[a:a + _ROWS]
            terms[:, 1:] = self.value[idx]
            out[a:a + _ROWS] = np.add.accumulate(terms, axis=1, dtype=np.float32)[:, -1]
        return out


def _depth(lc, rc) -> int:
    """Edges from the root to the deepest leaf."""
    d, frontier = 0, [0]
    while True:
        frontier = [c for n in frontier for c in (lc[n], rc[n]) if c != -1]
        if not frontier:
            return d
        d += 1
