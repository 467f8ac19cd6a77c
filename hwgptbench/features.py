"""`FeatureMatrix`: architectures as checked integer rows, the one input of the cost model, the
benchmark and the surrogates, and the functions that check and build it.

A feature row is E, L, bias, r_0..r_{Lmax-1}, h_0..h_{Lmax-1} with zeros past depth L
(`SearchSpace.feature_names`). `SearchSpace.features` is the one entry that makes a FeatureMatrix;
the functions here take the space as their first argument (no import of `space`, so no cycle).
"""
from __future__ import annotations

import re
from itertools import chain

import numpy as np

__all__ = ["FeatureMatrix", "is_checked", "check_matrix", "check_dtype", "encode_archs", "encode_ids"]


class FeatureMatrix(np.ndarray):
    """Feature rows of one space (`.space`), checked once by `SearchSpace.features`.

    Read-only, so the rows stay what was checked; the cost model, `Benchmark` and the surrogates
    take it without checking again and check any other array on entry. Selecting rows (``X[a:b]``,
    ``X[mask]``, ``X[idx]``) keeps the type; anything else (columns, arithmetic, copies, which are
    writable) is a plain ndarray, or an unchecked one that is checked again when used. The dtype
    is whatever integer dtype was given (np.int16 holds every value); the formulas widen it.
    """

    space = None
    _checked = False

    @classmethod
    def of_checked(cls, X: np.ndarray, space) -> FeatureMatrix:
        """Wrap a private array whose rows are known to be valid (never a caller's array)."""
        out = X.view(cls)
        out.space, out._checked = space, True
        out.flags.writeable = False
        return out

    def __array_finalize__(self, obj):
        self.space = getattr(obj, "space", None)
        self._checked = getattr(obj, "_checked", False)

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        # results of arithmetic are new numbers, not checked rows
        arr = np.asarray(arr)
        return arr[()] if return_scalar else arr

    def __getitem__(self, key):
        out = super().__getitem__(key)
        if not isinstance(out, FeatureMatrix):
            return out
        if _whole_rows(out, self.space):
            out.flags.writeable = False            # a row selection: checked rows, kept read-only
            return out
        return out.view(np.ndarray)


def _whole_rows(X, space) -> bool:
    # every column of the space, in order (column slices, reversals and transposes are not)
    return (X._checked and X.ndim == 2 and X.shape[1] == space.n_features and X.dtype.kind in "iu"
            and X.strides[1] == X.itemsize)


def is_checked(X, space) -> bool:
    return (type(X) is FeatureMatrix and not X.flags.writeable and (X.space is space or X.space == space)
            and _whole_rows(X, space))


def check_matrix(space, X: np.ndarray) -> np.ndarray:
    """A private copy of a checked matrix (integer dtypes kept, integral floats as int64)."""
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != space.n_features:
        raise ValueError(f"features: expected shape (n, {space.n_features}) for space "
                         f"{space.name!r}, got {X.shape}")
    if X.dtype.kind not in "iu":
        if X.dtype.kind not in "bf" or not np.all(np.isfinite(X)) or np.any(X != np.round(X)):
            raise ValueError(f"features: entries must be integers, got dtype {X.dtype}")
    # a private copy: the caller's array may change later, ours may not
    X = X.astype(np.int64) if X.dtype.kind not in "iu" else X.copy()
    lm = space.max_layers
    _check_in(X[:, 0], space.embed_dims, "embed_dim")
    _check_in(X[:, 1], space.n_layers, "n_layer")
    _check_in(X[:, 2], (0, 1), "bias")
    live = np.arange(lm)[None, :] < X[:, 1:2]
    for off, choices, name in ((3, space.mlp_ratios, "mlp_ratio"), (3 + lm, space.n_heads, "n_head")):
        block = X[:, off:off + lm]
        if _layers_ok(block, live, choices):
            continue
        _check_in(block[live], choices, name)               # the slow path, for the message
        raise ValueError(f"{name}: entries past n_layer must be 0 in a feature row")
    return X


def _layers_ok(block, live, choices) -> bool:
    """Live layers hold allowed choices (never 0) and the others 0: one table lookup."""
    top = max(choices)
    if block.size and (block.min() < 0 or block.max() > top):
        return False
    allowed = np.zeros(top + 1, dtype=bool)
    allowed[[0, *choices]] = True
    return bool(allowed[block].all() and np.array_equal(block != 0, live))


_FEW_ARCHS = 16


def encode_archs(space, archs) -> np.ndarray:
    """Feature matrix of validated Arch objects, built column-wise (a per-row loop would
    dominate a 10,000-architecture query)."""
    wrong = next((a for a in archs if a.space != space.name), None)
    if wrong is not None:
        raise ValueError(f"space: architecture {wrong.id!r} is of space {wrong.space!r}, "
                         f"expected {space.name!r}")
    n = len(archs)
    if n < _FEW_ARCHS:                  # a few: one Python row each (numpy's per-call cost dominates)
        pad = (0,) * space.max_layers
        rows = [(a.embed_dim, a.n_layer, a.bias, *(a.mlp_ratio + pad)[:space.max_layers],
                 *(a.n_head + pad)[:space.max_layers]) for a in archs]
        return np.array(rows, dtype=np.int64)
    X = np.zeros((n, space.n_features), dtype=np.int64)
    X[:, 0] = np.fromiter((a.embed_dim for a in archs), dtype=np.int64, count=n)
    X[:, 1] = L = np.fromiter((a.n_layer for a in archs), dtype=np.int64, count=n)
    X[:, 2] = np.fromiter((a.bias for a in archs), dtype=np.int64, count=n)
    total = int(L.sum())
    ratios = np.fromiter(chain.from_iterable(a.mlp_ratio for a in archs), dtype=np.int64, count=total)
    heads = np.fromiter(chain.from_iterable(a.n_head for a in archs), dtype=np.int64, count=total)
    _fill_layers(space, X, L, ratios, heads)
    return X

def encode_ids(space, ids) -> np.ndarray | None:
    """Checked feature matrix of string ids parsed in bulk (several times faster than building
    Arch objects), or None when any id is unusual: `Arch.from_id` then gives the exact error."""
    shape = re.compile(rf"gpt-{space.name}(?:-[0-9]+)+-(?:True|False)").fullmatch
    values, depth, bias = [], [], []
    for text in ids:
        if not shape(text):
            return None
        p = text.split("-")
        L = int(p[2])
        if len(p) != 5 + 2 * L:
            return None
        values.extend(map(int, p[3:-1]))            # E, r_0..r_{L-1}, h_0..h_{L-1}
        depth.append(L)
        bias.append(p[-1] == "True")
    L = np.array(depth, dtype=np.int64)
    flat = np.array(values, dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(1 + 2 * L)[:-1]])
    pos = start[:, None] + 1 + np.arange(space.max_layers)[None, :]
    live = np.arange(space.max_layers)[None, :] < L[:, None]
    X = np.zeros((len(L), space.n_features), dtype=np.int64)
    X[:, 0], X[:, 1], X[:, 2] = flat[start], L, bias
    _fill_layers(space, X, L, flat[pos[live]], flat[(pos + L[:, None])[live]])
    try:
        return check_matrix(space, X)
    except ValueError:
        return None


def _fill_layers(space, X, L, ratios, heads) -> None:
    """Scatter per-layer values (concatenated row after row) into the zero-padded blocks."""
    lm = space.max_layers
    live = np.arange(lm)[None, :] < L[:, None]       # row-major order = concatenation order
    X[:, 3:3 + lm][live] = ratios
    X[:, 3 + lm:][live] = heads


def check_dtype(dtype, space) -> np.dtype:
    """An integer dtype that holds every choice of the space (np.int16 holds all of s, m, l)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected a numpy integer dtype, got {dtype!r}") from None
    top = max(space.embed_dims)
    if dt.kind not in "iu" or np.iinfo(dt).max < top:
        raise ValueError(f"dtype: expected an integer dtype holding {top} (np.int16 or wider), got {dt}")
    return dt


def _check_in(values: np.ndarray, choices, field) -> None:
    bad = ~np.isin(values, np.asarray(choices))
    if np.any(bad):
        raise ValueError(f"{field}: {values[bad][0]} is not allowed; allowed: {list(choices)}")
