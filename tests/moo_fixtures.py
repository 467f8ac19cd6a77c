"""A stand-in Benchmark with a perplexity fidelity axis, for testing how the harness handles one.

Its perplexities are made up from the parameter count (never used as data): final perplexity
1e9/params, and lower fidelities worse by a factor that also depends on the total head count, so
that rankings at low fidelity differ from the final one.
"""
import warnings

import numpy as np

from hwgptbench import cost

FIDELITIES = (25, 50, 75, 100)


class FidelityBench:
    def columns(self):
        return ["params", "flops"] + [f"perplexity_f{p}" for p in FIDELITIES]

    def evaluate(self, X, columns, noise=False, seed=None):
        X = np.asarray(X)
        params = cost.params(X, "s").astype(float)
        heads = X[:, 3 + 12:].sum(1)
        out = {"params": params, "flops": cost.flops(X, "s").astype(float)}
        for p in FIDELITIES:
            out[f"perplexity_f{p}"] = 1e9 / params * (1 + (100 - p) / 100 * (1 + heads / 144))
        return np.column_stack([out[c] for c in columns])


def fidelity_problem():
    """The problem 's:perplexity,flops' on the stand-in (its bounds are sampled: no warning)."""
    from hwgptbench.moo import Problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Problem("s", "perplexity,flops", benchmark=FidelityBench())
