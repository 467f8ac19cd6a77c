"""The model input of every surrogate, shared by fitting and serving: the feature row plus the
exact derived features of the cost model, and the log-scale inputs of the linear baseline."""
from __future__ import annotations

import numpy as np

from .. import cost
from ..space import get_space

__all__ = ["DERIVED", "BASELINE_INPUTS", "feature_names", "design_matrix", "baseline_matrix", "baseline"]

DERIVED = cost.EXACT_FEATURE_NAMES       # params, flops, sum_mlp_ratio, sum_heads, mlp/attn width sums
BASELINE_INPUTS = ("1", "log(params)", "log(flops)", "n_layer", "bias")


def feature_names(space) -> list[str]:
    return list(get_space(space).feature_names) + list(DERIVED)


def design_matrix(X, space, batch: int = 1, seq: int | None = None) -> np.ndarray:
    """Float32 (n, d) model input of architectures (anything `SearchSpace.features` takes, or the
    rows' `cost.Sums`): the feature row, then the exact derived features at (batch, seq)."""
    S = cost.Sums.of(X, space)
    out = np.empty((S.A.shape[0], S.A.shape[1] + len(DERIVED)), dtype=np.float32)
    out[:, :S.A.shape[1]] = S.A
    out[:, S.A.shape[1]:] = cost.exact_features(S, space, batch, seq)
    return out


def baseline_matrix(D: np.ndarray, n_raw: int) -> np.ndarray:
    """Inputs of the linear log baseline (BASELINE_INPUTS) from a design matrix whose first
    `n_raw` columns are the feature row."""
    B = np.empty((len(D), len(BASELINE_INPUTS)))
    B[:, 0] = 1.0
    B[:, 1:3] = np.log(D[:, n_raw:n_raw + 2].astype(np.float64))
    B[:, 3:5] = D[:, 1:3]
    return B


def baseline(B: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """The linear log baseline ``B @ coef`` (coef: one vector, or one column per model), summed term
    by term in a fixed order: a matrix product rounds differently for one row than for many (BLAS
    picks other kernels), and one architecture must get the same value whether it is asked alone or
    among others, and whether its model is evaluated alone or beside others."""
    col = (lambda j: B[:, j]) if coef.ndim == 1 else (lambda j: B[:, j, None])  # noqa: E731
    out = col(0) * coef[0]
    for j in range(1, len(coef)):
        out += col(j) * coef[j]
    return out
