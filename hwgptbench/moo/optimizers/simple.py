"""Model-free baselines: random search, Pareto local search, MOREA."""
from __future__ import annotations

import numpy as np

from ..indicators import nondominated
from ...validation import check_int
from .base import GenotypeOptimizer

__all__ = ["RandomSearch", "ParetoLocalSearch", "MOREA"]


class RandomSearch(GenotypeOptimizer):
    """Uniform random architectures (each gene uniform, as HW-GPT-Bench samples)."""

    name = "rs"

    def _propose(self):
        return self.encoding.sample(self.batch_size, self.rng)


class ParetoLocalSearch(GenotypeOptimizer):
    """Stochastic Pareto local search: one-gene moves from random members of the Pareto archive.

    Starts from `n_init` random architectures; every proposal is a not-yet-evaluated neighbour
    (one live gene changed) of a non-dominated point drawn with probability proportional to its
    hypervolume contribution (so the ends of the front, which uniform choice neglects, get pushed).
    """

    name = "pls"

    def __init__(self, problem, seed=None, batch_size: int = 10, n_init: int = 10):
        super().__init__(problem, seed, batch_size)
        self.n_init = check_int(n_init, "n_init", min_value=1)

    def _propose(self):
        if len(self.G) < self.n_init:
            return self._fill_novel(lambda m: self.encoding.sample(m, self.rng), self.batch_size)
        nd = nondominated(self.F)
        front = self.G[nd]
        p = _hv_weights(self.F[nd], self.problem.ref_point)

        def make(m):
            parents = front[self.rng.choice(len(front), size=m, p=p)]
            return self.encoding.mutate_one(parents, self.rng)
        return self._fill_novel(make, self.batch_size)


class MOREA(GenotypeOptimizer):
    """Multi-objective regularised evolution (aging evolution with Pareto tournaments).

    A FIFO population of `population_size`; each child mutates one gene of the winner of a
    tournament of `sample_size` random members, won by the member with the largest hypervolume
    contribution within the tournament; the oldest member dies when a child joins.
    """

    name = "morea"

    def __init__(self, problem, seed=None, batch_size: int = 10, population_size: int = 50,
                 sample_size: int = 25):
        super().__init__(problem, seed, batch_size)
        self.population_size = check_int(population_size, "population_size", min_value=2)
        self.sample_size = check_int(sample_size, "sample_size", min_value=1)
        if self.sample_size > self.population_size:
            raise ValueError(f"sample_size: expected at most population_size ({self.population_size}), "
                             f"got {sample_size}")
        self._pop = np.empty(0, dtype=np.int64)     # indices into the history, oldest first

    def _propose(self):
        if len(self._pop) < self.population_size:
            return self._fill_novel(lambda m: self.encoding.sample(m, self.rng), self.batch_size)

        def make(m):
            parents = np.empty((m, self.encoding.n_genes), dtype=np.int64)
            for i in range(m):
                cand = self.rng.choice(self._pop, size=self.sample_size, replace=False)
                w = _hv_weights(self.F[cand], self.problem.ref_point)
                parents[i] = self.G[cand[int(np.argmax(w))]]
            return self.encoding.mutate_one(parents, self.rng)
        return self._fill_novel(make, self.batch_size)

    def _observe(self, G, F):
        new = np.arange(len(self.G) - len(G), len(self.G))
        self._pop = np.concatenate([self._pop, new])[-self.population_size:]


def _hv_weights(F, ref) -> np.ndarray:
    """Selection probabilities proportional to each point's exclusive hypervolume contribution
    (dominated points and duplicates get 0; uniform over the front if every contribution is 0)."""
    import moocore
    inside = np.all(F < ref, axis=1)
    c = np.zeros(len(F))
    if inside.any():
        c[inside] = moocore.hv_contributions(F[inside], ref=ref)
    c = np.clip(c, 0, None)
    if c.sum() <= 0:
        c = nondominated(F).astype(float)
    return c / c.sum()
