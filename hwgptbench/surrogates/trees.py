"""Gradient-boosted trees evaluated in numpy, from the booster files xgboost saved (``.ubj``).

Every tree is laid out as a complete binary tree of the ensemble's depth D (heap order: node i has
children 2i+1 and 2i+2; a leaf above depth D is copied to every leaf below it, and the splits
padded above them always go left). A chunk of rows then takes every split decision of every tree
in one column gather and one comparison, and walks the D levels by picking, per tree, the decision
of the node it is at: D small gathers instead of chasing node indices through the arrays (what the
slow s models spent their time on: benchmarks.md, "Query speed"). xgboost's rules are followed
exactly, so the result equals xgboost's own ``inplace_predict`` bit for bit: go left iff
``x < threshold`` (float32 inputs and thresholds), and the prediction is the float32 margin plus
the leaves reached, added tree after tree in float32. Only what the fitter writes is accepted
(gbtree, numerical splits, one output); anything else is a `SurrogateError`.
"""
from __future__ import annotations

import numpy as np

from .store import SurrogateError
from .ubjson import UBJSONError, loads

__all__ = ["TreeEnsemble"]

_ROWS = 2048            # rows per chunk: bounded memory (rows x trees x splits decisions) at any batch size
_MAX_DEPTH = 10         # complete trees of 2^D leaves: deeper boosters than the fitter writes are refused


class TreeEnsemble:
    """The trees of one saved booster as complete binary trees in heap order (numpy arrays)."""

    def __init__(self, trees: list[dict]):
        parsed, depth = [], 0
        for t in trees:
            lc = np.asarray(t["left_children"], dtype=np.int64)
            rc = np.asarray(t["right_children"], dtype=np.int64)
            if np.any(np.asarray(t.get("split_type", [])) != 0):
                raise SurrogateError("trees: categorical splits are not supported")
            parsed.append((lc, rc, np.asarray(t["split_indices"], dtype=np.int64),
                           np.asarray(t["split_conditions"], dtype=np.float32)))
            depth = max(depth, _depth(lc, rc))
        if depth > _MAX_DEPTH:
            raise SurrogateError(f"trees: depth {depth} is deeper than the {_MAX_DEPTH} served")
        n_split, n_leaf = 2 ** depth - 1, 2 ** depth
        self.depth = depth
        self.feat = np.zeros((len(parsed), n_split), dtype=np.intp)
        self.thr = np.full((len(parsed), n_split), np.inf, dtype=np.float32)   # padding: always left
        self.leaf = np.zeros((len(parsed), n_leaf), dtype=np.float32)
        for k, (lc, rc, feat, cond) in enumerate(parsed):
            stack = [(0, 0)]                                  # (node, heap position)
            while stack:
                node, pos = stack.pop()
                level = (pos + 1).bit_length() - 1
                if lc[node] == -1:                            # a leaf: every heap leaf below it
                    first = (pos + 1) * 2 ** (depth - level) - 1 - n_split
                    self.leaf[k, first:first + 2 ** (depth - level)] = cond[node]
                    continue
                self.feat[k, pos], self.thr[k, pos] = feat[node], cond[node]
                stack += [(lc[node], 2 * pos + 1), (rc[node], 2 * pos + 2)]
        self.n_features = int(self.feat.max()) + 1 if self.feat.size else 0
        self._leaf_base = np.arange(len(parsed), dtype=np.intp) * n_leaf - n_split
        self._by_code = self._code_base = None
        if depth <= 3:
            # the leaf every pattern of split decisions reaches (bit i of the code: split i goes right)
            codes = np.arange(2 ** n_split)
            pos = np.zeros_like(codes)
            for _ in range(depth):
                pos = 2 * pos + 1 + (codes >> pos) % 2
            self._by_code = self.leaf[:, pos - n_split].ravel()
            self._code_base = np.arange(len(parsed), dtype=np.intp) * 2 ** n_split
            self._bit = (1 << np.arange(n_split)).astype(np.uint8)

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
        return len(self.leaf)

    def predict(self, F: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """`margin` plus the leaves each row of the float32 design matrix `F` reaches, as xgboost
        computes it (float32); without trees, the margin itself (float64, not rounded)."""
        margin = np.asarray(margin, dtype=np.float64)
        if not len(self.leaf):
            return margin
        out = np.empty(len(F))
        F = np.ascontiguousarray(F, dtype=np.float32)
        if F.shape[1] < self.n_features:
            raise SurrogateError(f"trees: need {self.n_features} input columns, got {F.shape[1]}")
        n_trees, n_split = self.feat.shape
        cols, thr = self.feat.ravel(), self.thr.ravel()
        for a in range(0, len(F), _ROWS):
            block = F[a:a + _ROWS]
            n = len(block)
            terms = np.empty((n, n_trees + 1), dtype=np.float32)
            terms[:, 0] = margin[a:a + _ROWS]
            # every split of every tree at once: True where the row goes right (not x < threshold;
            # design matrices are finite, so this is xgboost's rule)
            right = (np.take(block, cols, axis=1) >= thr).reshape(n, n_trees, n_split)
            if self._by_code is not None:      # D <= 3: the 2^D - 1 decisions are one byte, its leaf a lookup
                code = (right.view(np.uint8) @ self._bit).astype(np.intp)      # < 128: fits uint8
                terms[:, 1:] = self._by_code[self._code_base + code]
            else:                              # deeper: walk the levels
                flat = right.view(np.uint8).ravel()
                base = np.arange(n * n_trees, dtype=np.intp).reshape(n, n_trees) * n_split
                pos = np.zeros((n, n_trees), dtype=np.intp)
                for _ in range(self.depth):
                    pos = 2 * pos + 1 + flat[base + pos]
                terms[:, 1:] = self.leaf.ravel()[self._leaf_base + pos]
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
