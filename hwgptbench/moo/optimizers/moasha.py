"""MO-ASHA: asynchronous successive halving with multi-objective promotions (Schmucker et al., 2021).

Rungs are the problem's training fidelities (e.g. perplexity after 25/50/75/100% of supernet
training). Each asked slot either promotes a configuration to the next rung, if one of the top
1/eta of some rung (best rung first) has not been promoted yet, or starts a new random one at the
lowest rung. Ranking within a rung: non-dominated sorting, ties broken by hypervolume
contribution within the front. `ask()` returns a `Batch`: the rows with the rung (training
fidelity) each is to be evaluated at.
"""
from __future__ import annotations

import numpy as np

from ...validation import check_int
from .base import Batch, GenotypeOptimizer

__all__ = ["MOASHA"]


class MOASHA(GenotypeOptimizer):
    name = "moasha"

    def __init__(self, problem, seed=None, batch_size: int = 10, eta: int = 2):
        super().__init__(problem, seed, batch_size)
        self.rungs = tuple(self.problem.fidelities)
        if len(self.rungs) < 2:
            raise ValueError(f"moasha needs a problem with a fidelity axis (>= 2 training fidelities, "
                             f"from {{metric}}_f{{p}} columns); {self.problem.name!r} has "
                             f"{list(self.rungs) or 'none'} (perplexity is not served yet)")
        self.eta = check_int(eta, "eta", min_value=2)
        # per rung: config ids evaluated there, their objectives, and the ids promoted from it
        self._configs: list[np.ndarray] = []            # genotype of each config id
        self._known: set[bytes] = set()                  # their feature rows
        self._at = [dict() for _ in self.rungs]          # rung -> {config id: F row}
        self._promoted = [set() for _ in self.rungs]
        self._asked_ids: list[int] = []
        self._asked_rungs: list[int] = []

    def _propose(self):
        ids, rungs = [], []
        for _ in range(self.batch_size):
            job = self._promotion()
            if job is None:
                G = self._fill_novel(lambda m: self.encoding.sample(m, self.rng), 1)
                self._configs.append(G[0])
                self._known.add(self.encoding.to_features(G)[0].tobytes())
                job = (len(self._configs) - 1, 0)
            cid, r = job
            if r > 0:
                self._promoted[r - 1].add(cid)
            ids.append(cid)
            rungs.append(r)
        self._asked_ids, self._asked_rungs = ids, rungs
        return np.array([self._configs[c] for c in ids])

    def _ask(self):
        return Batch(super()._ask(), [self.rungs[r] for r in self._asked_rungs])

    def _promotion(self):
        for r in range(len(self.rungs) - 2, -1, -1):
            done = self._at[r]
            k = len(done) // self.eta
            if k == 0:
                continue
            cids = np.array(list(done))
            order = _mo_order(np.array([done[c] for c in cids]), self.problem.ref_point)
            for c in cids[order[:k]]:
                if int(c) not in self._promoted[r]:
                    return int(c), r + 1
        return None

    def _observe(self, G, F):
        for cid, r, f in zip(self._asked_ids, self._asked_rungs, F):
            self._at[r][cid] = f

    def _novel(self, G):
        # a configuration may be re-asked at a higher fidelity; novelty only for new ones
        X = self.encoding.to_features(G)
        out, local = np.zeros(len(X), dtype=bool), set()
        for i, r in enumerate(X):
            b = r.tobytes()
            out[i] = b not in self._known and b not in local
            local.add(b)
        return out


def _mo_order(F, ref) -> np.ndarray:
    """Indices of F best first: by Pareto rank, then by hypervolume contribution in the rank."""
    import moocore
    rank = moocore.pareto_rank(F)
    contrib = np.zeros(len(F))
    for r in np.unique(rank):
        idx = np.flatnonzero(rank == r)
        inside = idx[np.all(F[idx] < ref, axis=1)]
        if len(inside):
            contrib[inside] = moocore.hv_contributions(F[inside], ref=ref)
    return np.lexsort((-contrib, rank))
