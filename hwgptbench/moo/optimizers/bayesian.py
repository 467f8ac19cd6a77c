"""Model-based baselines: RSBO, LSBO and EHVI over per-objective Gaussian-process surrogates.

Each batch fits one scikit-learn GP per objective on every evaluation so far, scores a candidate
pool (random architectures plus one-gene neighbours of the current Pareto set) and picks the batch
greedily. RSBO scalarises lower confidence bounds with random augmented-Chebyshev weights (Paria
et al., 2019), LSBO with random (or fixed) linear weights; EHVI maximises the Monte-Carlo
expected hypervolume improvement under the GP posteriors (computed with our own code, not botorch,
so no extra torch build is needed), with the Kriging believer for batches.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..indicators import hypervolume, nondominated
from ...validation import check_int, check_number
from .base import GenotypeOptimizer

__all__ = ["RSBO", "LSBO", "EHVI"]


class _GPBatchBO(GenotypeOptimizer):
    """Shared machinery: candidate pool, GP fits, initial random design."""

    def __init__(self, problem, seed=None, batch_size: int = 10, n_init: int = 20,
                 n_candidates: int = 1000, beta: float = 1.0):
        super().__init__(problem, seed, batch_size)
        self.n_init = check_int(n_init, "n_init", min_value=1)
        self.n_candidates = check_int(n_candidates, "n_candidates", min_value=1)
        self.beta = check_number(beta, "beta", min_value=0)
        self._kernels, self._tuned_at = None, 0
        sp = self.space
        lm = sp.max_layers
        self._scale = np.concatenate([[max(sp.embed_dims), max(sp.n_layers), 1],
                                      [max(sp.mlp_ratios)] * lm, [max(sp.n_heads)] * lm]).astype(float)

    def _inputs(self, G) -> np.ndarray:
        """GP inputs: scaled feature row plus depth-aware sums (the objectives are sum-like)."""
        X = self.encoding.to_features(G).astype(float)
        lm = self.space.max_layers
        sums = np.column_stack([X[:, 3:3 + lm].sum(1) / (lm * self._scale[3]),
                                X[:, 3 + lm:].sum(1) / (lm * self._scale[3 + lm])])
        return np.hstack([X / self._scale, 2 * sums])

    def _fit(self):
        """One GP per objective. Kernel hyperparameters are re-optimised only when the data has
        grown by half since the last time (they barely move in between, and fitting them is
        most of the cost); otherwise the last ones are reused."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
        Z = self._inputs(self.G)
        tune = self._kernels is None or len(Z) >= 1.5 * self._tuned_at
        models = []
        for j in range(self.problem.n_obj):
            if tune:
                kernel = (ConstantKernel(1.0, (1e-3, 1e3)) * Matern(1.0, (1e-2, 1e2), nu=2.5)
                          + WhiteKernel(1e-4, (1e-8, 1e-1)))
            else:
                kernel = self._kernels[j]
            gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=0,
                                          optimizer="fmin_l_bfgs_b" if tune else None,
                                          random_state=int(self.rng.integers(2 ** 31 - 1)))
            with warnings.catch_warnings():     # exact objectives drive the noise term to its bound
                warnings.simplefilter("ignore", ConvergenceWarning)
                models.append(gp.fit(Z, self.F[:, j]))
        if tune:
            self._kernels = [gp.kernel_ for gp in models]
            self._tuned_at = len(Z)
        return models

    def _candidates(self) -> np.ndarray:
        front = self.G[nondominated(self.F)]
        n_mut = self.n_candidates // 2
        parents = front[self.rng.integers(len(front), size=n_mut)]
        G = np.vstack([self.encoding.mutate_one(parents, self.rng),
                       self.encoding.sample(self.n_candidates - n_mut, self.rng)])
        return G[self._novel(G)]

    def _propose(self):
        """The next batch. GP fits and predictions run with one BLAS/OpenMP thread whatever the
        environment: a reduction split over threads sums in another order, and the kernel
        optimiser then follows another path, so the same seed would give other proposals."""
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=1):
            return self._propose_single_threaded()

    def _propose_single_threaded(self):
        if len(self.G) < self.n_init:
            return self._fill_novel(lambda m: self.encoding.sample(m, self.rng),
                                    min(self.batch_size, self.n_init - len(self.G)))
        C = self._candidates()
        if len(C) == 0:
            return self._fill_novel(lambda m: self.encoding.sample(m, self.rng), self.batch_size)
        Z = self._inputs(C)
        preds = [gp.predict(Z, return_std=True) for gp in self._fit()]
        mu = np.column_stack([p[0] for p in preds])
        sd = np.column_stack([p[1] for p in preds])
        picks = self._select(mu, sd, min(self.batch_size, len(C)))
        return C[picks]

    def _select(self, mu, sd, q) -> np.ndarray:
        raise NotImplementedError


class _ScalarisedBO(_GPBatchBO):
    def _scalarise(self, Y, w):
        raise NotImplementedError

    def _weights(self):
        return self.rng.dirichlet(np.ones(self.problem.n_obj))

    def _select(self, mu, sd, q):
        lcb = mu - self.beta * sd
        lo = self.F.min(axis=0)                   # ideal point so far (normalised space)
        chosen = []
        for _ in range(q):
            s = self._scalarise(lcb - lo, self._weights())
            s[chosen] = np.inf
            chosen.append(int(np.argmin(s)))
        return np.array(chosen)


class RSBO(_ScalarisedBO):
    """Random-scalarisation BO: a fresh random weight vector per pick, augmented Chebyshev."""

    name = "rsbo"

    def _scalarise(self, Y, w):
        return np.max(w * Y, axis=1) + 0.05 * (Y @ w)


class LSBO(_ScalarisedBO):
    """Linear-scalarisation BO: weighted sum of objectives; random weights per pick unless fixed."""

    name = "lsbo"

    def __init__(self, problem, seed=None, weights=None, **kwargs):
        super().__init__(problem, seed, **kwargs)
        if weights is not None:
            w = np.asarray(weights)
            if (w.dtype.kind not in "iuf" or w.shape != (self.problem.n_obj,) or not np.all(np.isfinite(w))
                    or np.any(w < 0) or w.sum() <= 0):
                raise ValueError(f"weights: expected {self.problem.n_obj} non-negative numbers, not all 0")
            weights = w / w.sum()
        self.weights = weights

    def _weights(self):
        return self.weights if self.weights is not None else super()._weights()

    def _scalarise(self, Y, w):
        return Y @ w


class EHVI(_GPBatchBO):
    """Monte-Carlo expected hypervolume improvement (independent GP posteriors per objective)."""

    name = "ehvi"

    def __init__(self, problem, seed=None, n_samples: int = 32, n_top: int = 100, n_mc: int = 2000,
                 **kwargs):
        super().__init__(problem, seed, **kwargs)
        self.n_mc = check_int(n_mc, "n_mc", min_value=1)
        self.n_samples = check_int(n_samples, "n_samples", min_value=1)
        self.n_top = check_int(n_top, "n_top", min_value=1)

    def _select(self, mu, sd, q):
        ref = self.problem.ref_point
        front = self.F[nondominated(self.F)]
        k = mu.shape[1]
        eps = self.rng.standard_normal((self.n_samples, 1, k))
        if k > 2:
            # Beyond two objectives, improvements are Monte-Carlo volumes: uniform points of the
            # box below the reference point that the front does not dominate, shared by all
            # candidates (common random numbers keep their ranking consistent).
            lo = np.minimum(np.min(mu - 3 * sd, axis=0), front.min(axis=0))
            U = lo + (ref - lo) * self.rng.random((self.n_mc, k))
            cell = float(np.prod(ref - lo)) / self.n_mc
            U = U[~_dominated_by(U, front)]
        chosen = []
        for _ in range(q):
            # screen by the improvement of the posterior mean, then rank the short list by EHVI
            score = _hvi(mu, front, ref) if k == 2 else cell * _dominated_by(U, mu, count=True)
            score = score + 1e-9 * (-(mu - self.beta * sd)).sum(1)   # ties (often 0) -> optimistic
            score[chosen] = -np.inf
            top = np.argsort(-score, kind="stable")[:self.n_top if k == 2 else min(self.n_top, 25)]
            top = top[np.isfinite(score[top])]
            Y = (mu[top][None] + sd[top][None] * eps).reshape(-1, k)      # (S * n_top, k)
            hvi = _hvi(Y, front, ref) if k == 2 else cell * _dominated_by(U, Y, count=True)
            best = int(top[np.argmax(hvi.reshape(len(eps), len(top)).mean(0))])
            chosen.append(best)
            front = np.vstack([front, mu[best]])                 # Kriging believer
            front = front[nondominated(front)]
            if k > 2:
                U = U[~np.all(mu[best] <= U, axis=1)]
        return np.array(chosen)


def _dominated_by(U, P, count=False):
    """Per row of U: is it weakly dominated by some row of P; or, with count, per row of P: how
    many rows of U it weakly dominates (chunked to bound memory; one AND per objective, which is
    much faster than reducing over a short last axis)."""
    out = np.zeros(len(P)) if count else np.zeros(len(U), dtype=bool)
    for i in range(0, len(P), 256):
        Pc = P[i:i + 256]
        dom = Pc[:, None, 0] <= U[None, :, 0]
        for j in range(1, U.shape[1]):
            dom &= Pc[:, None, j] <= U[None, :, j]
        if count:
            out[i:i + 256] = dom.sum(1)
        else:
            out |= dom.any(0)
    return out


def _hvi(P, front, ref) -> np.ndarray:
    """Hypervolume improvement of each row of P over `front` (exact; vectorised for 2 objectives)."""
    P = np.asarray(P, dtype=float)
    front = front[np.all(front < ref, axis=1)]
    if P.shape[1] == 2:
        return _hvi_2d(P, front, ref)
    base = hypervolume(front, ref) if len(front) else 0.0
    return np.array([hypervolume(np.vstack([front, p]), ref) - base if np.all(p < ref) else 0.0
                     for p in P])


def _hvi_2d(P, front, ref) -> np.ndarray:
    # The dominated region's lower edge is a staircase: y-ceiling c(x) = ref_y before the first
    # front point, then the f2 of the last front point with f1 <= x.
    if len(front):
        front = front[nondominated(front)]
        front = front[np.argsort(front[:, 0])]
    lo = np.concatenate([[-np.inf], front[:, 0]])
    hi = np.concatenate([front[:, 0], [np.inf]])
    ceil = np.concatenate([[ref[1]], front[:, 1]])
    a, b = P[:, :1], P[:, 1:2]
    width = np.clip(np.minimum(hi, ref[0])[None] - np.maximum(lo[None], a), 0, None)
    height = np.clip(np.minimum(ceil, ref[1])[None] - b, 0, None)
    return np.sum(width * height, axis=1)
