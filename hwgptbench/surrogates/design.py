"""The model input of every surrogate, shared by fitting and serving: the feature row plus the
exact derived features of the cost model, and the log-scale inputs of the linear baseline."""
from __future__ import annotations

import numpy as np

from .. import cost
from ..space import get_space

__all__ = ["DERIVED", "BASELINE_INPUTS", "feature_names", "design_matrix", "design_matrices", "baseline_matrix", "baseline"]

DERIVED = cost.EXACT_FEATURE_NAMES       # params, flops, sum_mlp_ratio, sum_heads, mlp/attn width sums
BASELINE_INPUTS = ("1", "log(params)", "log(flops)", "n_layer", "bias")


def feature_names(space) -> list[str]:
    return list(get_space(space).feature_names) + list(DERIVED)


def design_matrix(X, space, batch: int = 1, seq: int | None = None) -> np.ndarray:
    """Float32 (n, d) model input of architectures (anything `SearchSpace.features` takes, or the
    rows' `cost.Sums`): the feature row, then the exact derived features at (batch, seq)."""
    return design_matrices(X, space, [(batch, seq)])[:, 0]


def design_matrices(X, space, shapes) -> np.ndarray:
    """Float32 (n, len(shapes), d): `design_matrix` at each (batch, seq) of `shapes`, side by side
    in one array (the surrogates of one query read several, and a `MeanGroup` takes them so)."""
    S = cost.Sums.of(X, space)
    n, w = S.A.shape
    out = np.empty((n, len(shapes), w + len(DERIVED)), dtype=np.float32)
    out[:, :, :w] = S.A[:, None, :]
    for k, (batch, seq) in enumerate(shapes):
        out[:, k, w:] = cost.exact_features(S, space, batch, seq)
    return out


def baseline_matrix(D: np.ndarray, n_raw: int) -> np.ndarray:
    """Inputs of the linear log baseline (BASELINE_INPUTS) from a design matrix whose first
    `n_raw` columns are the feature row: (n, 5); of several design matrices side by side, given as
    (n, k, d), (n, k, 5)."""
    B = np.empty(D.shape[:-1] + (len(BASELINE_INPUTS),))
    B[..., 0] = 1.0
    B[..., 1:3] = np.log(D[..., n_raw:n_raw + 2].astype(np.float64))
    B[..., 3:5] = D[..., 1:3]
    return B


def baseline(B: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """The linear log baseline ``B @ coef``, summed term by term in a fixed order: a matrix product
    rounds differently for one row than for many (BLAS picks other kernels), and one architecture
    must get the same value whether it is asked alone or among others, and whether its model is
    evaluated alone or beside others. `coef`: one vector (B: (n, 5)), or one column per model, of
    one input (B: (n, 5)) or each its own (B: (n, models, 5))."""
    col = (lambda j: B[..., j]) if B.ndim > coef.ndim else (lambda j: B[:, j, None])  # noqa: E731
    out = col(0) * coef[0]
    for j in range(1, len(coef)):
        out += col(j) * coef[j]
    return out
