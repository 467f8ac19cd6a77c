"""Your own optimizer, from README to the leaderboard (README, "Your optimizer on the leaderboard").

    python examples/greedy.py                          # the contract check
    cd examples && hwgptbench reproduce --split test --optimizer greedy:Greedy --out ../runs/mine
    hwgptbench leaderboard runs/mine                   # ranked beside the baselines
"""
import numpy as np

from hwgptbench.moo import Optimizer
from hwgptbench.moo.testing import check_optimizer


class Greedy(Optimizer):
    """Mutate the architecture with the best sum of objectives so far."""

    def __init__(self, problem, seed=None):
        super().__init__(problem, seed)
        self.best, self.best_f = None, np.inf

    def _ask(self):
        if self.best is None:
            return self.space.sample_features(4, seed=self.rng)
        G = self.encoding.from_features(np.repeat(self.best[None], 4, axis=0))
        return self.encoding.to_features(self.encoding.mutate_one(G, self.rng))

    def _tell(self, X, F):      # F: (len(X), self.problem.n_obj) normalised objectives, all minimised
        i = int(np.argmin(F.sum(1)))
        if F[i].sum() < self.best_f:
            self.best, self.best_f = X[i], F[i].sum()


if __name__ == "__main__":
    check_optimizer(Greedy)     # valid rows, one batch in flight, exact tells, no mutation, seeding
    print("Greedy passes check_optimizer")
