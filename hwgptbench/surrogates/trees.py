"""Gradient-boosted trees evaluated in numpy, from the booster files xgboost saved (``.ubj``).

Every tree is laid out as a complete binary tree of the ensemble's depth D (heap order: node i has
children 2i+1 and 2i+2; a leaf above depth D is copied to every leaf below it, and the splits
padded above them always go left). Trees of depth <= 3 (all the fitter writes) are evaluated by
`Forest`: a tree's split decisions are one byte, and its leaf a lookup by that byte. Deeper trees
take every split decision of every tree in one column gather and one comparison, and walk the D
levels by picking, per tree, the decision of the node it is at. xgboost's rules are followed
exactly, so the result equals xgboost's own ``inplace_predict`` bit for bit: go left iff
``x < threshold`` (float32 inputs and thresholds), and the prediction is the float32 margin plus
the leaves reached, added tree after tree in float32. Only what the fitter writes is accepted
(gbtree, numerical splits, one output); anything else is a `SurrogateError`.
"""
from __future__ import annotations

import numpy as np

from .store import SurrogateError
from .ubjson import UBJSONError, loads

__all__ = ["TreeEnsemble", "Forest"]

_ROWS = 2048            # rows per chunk: bounded memory (rows x trees x splits decisions) at any batch size
_MAX_DEPTH = 10         # complete trees of 2^D leaves: deeper boosters than the fitter writes are refused
_CODED = 3              # up to this depth a tree's 2^D - 1 split decisions are one byte, its leaf a lookup
_FEW = 64               # a Forest evaluates fewer rows than this row by row, more column-major ...
_CELLS = 1 << 18        # ... in chunks of about this many (tree, row) cells


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
        self._forest = None                  # depth <= 3: evaluated as a Forest of these trees alone

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

    def at_depth(self, depth: int):
        """(feat, thr, leaf) of these trees laid out at a greater depth: the padded splits always go
        left (threshold inf), so each old leaf is reached at the first of the 2^(extra) new leaves
        below it (all are set to it). The heap positions of the real splits do not change."""
        extra = depth - self.depth
        if extra < 0:
            raise ValueError(f"depth: {depth} is shallower than these trees ({self.depth})")
        n_split = 2 ** depth - 1
        feat = np.zeros((len(self), n_split), dtype=np.intp)
        thr = np.full((len(self), n_split), np.inf, dtype=np.float32)
        feat[:, :self.feat.shape[1]], thr[:, :self.thr.shape[1]] = self.feat, self.thr
        return feat, thr, np.repeat(self.leaf, 2 ** extra, axis=1)

    def predict(self, F: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """`margin` plus the leaves each row of the float32 design matrix `F` reaches, as xgboost
        computes it (float32); without trees, the margin itself (float64, not rounded)."""
        margin = np.asarray(margin, dtype=np.float64)
        if not len(self.leaf):
            return margin
        if self.depth <= _CODED:             # one code per tree and a lookup: the Forest's own path
            if self._forest is None:
                self._forest = Forest([self])
            return self._forest.predict(F, margin[:, None])[:, 0]
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
            flat = right.view(np.uint8).ravel()          # deeper than 3: walk the levels
            base = np.arange(n * n_trees, dtype=np.intp).reshape(n, n_trees) * n_split
            pos = np.zeros((n, n_trees), dtype=np.intp)
            for _ in range(self.depth):
                pos = 2 * pos + 1 + flat[base + pos]
            terms[:, 1:] = self.leaf.ravel()[self._leaf_base + pos]
            out[a:a + _ROWS] = np.add.accumulate(terms, axis=1, dtype=np.float32)[:, -1]
        return out


class Forest:
    """Several ensembles of depth <= 3 that read one input matrix, evaluated together, each
    result equal to that ensemble's `predict` bit for bit (its float32 margin, then its leaves added
    in order). Shared work: the split decisions are taken once per distinct (feature, threshold)
    (s's 250 trees have 363 distinct splits, not 1,750; xs's 1,330 have 436), and a single query
    of every column pays numpy's per-call cost once, not once per model. Few rows are evaluated row
    by row; many rows column-major, so every step (the decisions, each tree's code, its leaf, the
    sums) is a contiguous row of numbers per split or tree. `offsets`: where each ensemble's
    columns start in the input (ensembles of several design matrices side by side)."""

    def __init__(self, ensembles, offsets=None):
        ensembles = list(ensembles)
        offsets = [0] * len(ensembles) if offsets is None else [int(o) for o in offsets]
        if any(e.depth > _CODED for e in ensembles):
            raise ValueError(f"ensembles: a Forest holds trees of depth <= {_CODED} only")
        if len(offsets) != len(ensembles) or min(offsets, default=0) < 0:
            raise ValueError(f"offsets: {offsets} for {len(ensembles)} ensembles; one column offset >= 0 each")
        self.ensembles = ensembles
        self.depth = max([e.depth for e in ensembles if len(e)], default=0)
        n_split = 2 ** self.depth - 1
        grown = [(f + o, t, lv) for e, o in zip(ensembles, offsets) if len(e) for f, t, lv in [e.at_depth(self.depth)]]
        feat = np.concatenate([g[0] for g in grown]) if grown else np.zeros((0, n_split), np.intp)
        thr = np.concatenate([g[1] for g in grown]) if grown else np.zeros((0, n_split), np.float32)
        leaf = np.concatenate([g[2] for g in grown]) if grown else np.zeros((0, n_split + 1), np.float32)
        self.n_trees, self.n_features = len(feat), int(feat.max()) + 1 if feat.size else 0
        # the distinct splits, and which one each split of each tree is
        pairs, which = np.unique(np.stack([feat.ravel().astype(np.float64), thr.ravel().astype(np.float64)]),
                                 axis=1, return_inverse=True)
        self._feat, self._thr = pairs[0].astype(np.intp), pairs[1].astype(np.float32)
        self._which = which.reshape(feat.shape)
        self._which_by_split = [np.ascontiguousarray(self._which[:, i]) for i in range(n_split)]
        self._by_code = _leaf_by_code(leaf, self.depth)
        self._code_base = np.arange(len(leaf), dtype=np.intp) * 2 ** n_split
        self._bit = (1 << np.arange(n_split)).astype(np.uint8)
        self._trees = []                       # each ensemble's slice of the trees
        at = 0
        for e in ensembles:
            self._trees.append(slice(at, at + len(e)))
            at += len(e)
        self._boosted = np.flatnonzero([len(e) > 0 for e in ensembles])    # the ensembles with trees
        # row by row, each boosted ensemble's terms are a row of (longest + 1) cells: its margin,
        # its leaves, then zeros (x + 0 is x): one float32 accumulate sums every ensemble in order
        boosted = [e for e in ensembles if len(e)]
        self._width = 1 + max((len(e) for e in boosted), default=0)
        self._cell = np.concatenate([j * self._width + 1 + np.arange(len(e)) for j, e in enumerate(boosted)]
                                    ).astype(np.intp) if boosted else np.zeros(0, np.intp)

    def predict(self, F: np.ndarray, margins: np.ndarray) -> np.ndarray:
        """(rows, ensembles) float64: column j is `TreeEnsemble.predict(F, margins[:, j])` of
        ensemble j (the margin itself, not rounded, for an ensemble without trees)."""
        margins = np.asarray(margins, dtype=np.float64)
        if margins.shape != (len(F), len(self.ensembles)):
            raise ValueError(f"margins: shape {margins.shape}, expected {(len(F), len(self.ensembles))}")
        F = np.ascontiguousarray(F, dtype=np.float32)
        if F.shape[1] < self.n_features:
            raise SurrogateError(f"trees: need {self.n_features} input columns, got {F.shape[1]}")
        out = margins.copy()
        if self.n_trees and len(F) < _FEW:
            out[:, self._boosted] = self._row_by_row(F, margins[:, self._boosted])
        elif self.n_trees:
            self._column_major(F, margins, out)
        return out

    def _row_by_row(self, F, margins) -> np.ndarray:
        """(rows, boosted ensembles); `margins`: theirs."""
        right = (F[:, self._feat] >= self._thr)[:, self._which]            # (rows, trees, splits)
        code = (right.view(np.uint8) @ self._bit).astype(np.intp)
        n, m = margins.shape
        terms = np.zeros((n, m * self._width), dtype=np.float32)
        terms[:, ::self._width] = margins
        terms[:, self._cell] = self._by_code[self._code_base + code]
        return np.add.accumulate(terms.reshape(n, m, self._width), axis=2, dtype=np.float32)[:, :, -1]

    def _column_major(self, F, margins, out) -> None:
        FT = np.ascontiguousarray(F.T)
        rows = max(_FEW, _CELLS // self.n_trees)
        base = self._code_base[:, None]
        for a in range(0, len(F), rows):
            block = FT[:, a:a + rows]
            decided = (block[self._feat] >= self._thr[:, None]).view(np.uint8)    # (distinct splits, rows)
            code = np.zeros((self.n_trees, block.shape[1]), dtype=np.uint8)      # (trees, rows), < 128
            for i, which in enumerate(self._which_by_split):
                code |= decided[which] << i
            leaves = self._by_code[base + code]                                   # (trees, rows)
            for j, (e, trees) in enumerate(zip(self.ensembles, self._trees)):
                if len(e):         # tree after tree, in float32 (30x faster than add.accumulate here)
                    total = margins[a:a + rows, j].astype(np.float32)
                    for row in leaves[trees]:
                        total += row
                    out[a:a + rows, j] = total


def _leaf_by_code(leaf: np.ndarray, depth: int) -> np.ndarray:
    """The leaf every pattern of split decisions reaches, per tree (bit i of the code: split i goes
    right), flattened: tree k's leaf for code c is at k * 2^(2^D - 1) + c."""
    n_split = 2 ** depth - 1
    codes = np.arange(2 ** n_split)
    pos = np.zeros_like(codes)
    for _ in range(depth):
        pos = 2 * pos + 1 + (codes >> pos) % 2
    return leaf[:, pos - n_split].ravel()


def _depth(lc, rc) -> int:
    """Edges from the root to the deepest leaf."""
    d, frontier = 0, [0]
    while True:
        frontier = [c for n in frontier for c in (lc[n], rc[n]) if c != -1]
        if not frontier:
            return d
        d += 1
