"""Run optuna's (multi-objective) samplers against a hwgptbench problem through ask/tell.

Every gene of the choice-index genotype becomes an integer parameter ``g{j}`` of a fixed
(define-and-run) search space, so population-based samplers see a constant dimension.
"""
from __future__ import annotations

import contextlib

import numpy as np

from ...validation import check_int
from .base import Optimizer

__all__ = ["OptunaOptimizer", "OPTUNA_SAMPLERS"]

OPTUNA_SAMPLERS = ("nsga2", "nsga3", "tpe", "random")


@contextlib.contextmanager
def _quiet(optuna):
    """Silence optuna's per-trial log lines without changing its verbosity for good."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def make_sampler(name: str, seed: int, population_size: int = 20, **kwargs):
    import optuna
    name = name.lower()
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population_size, seed=seed, **kwargs)
    if name == "nsga3":
        import warnings
        with warnings.catch_warnings():       # "experimental" since optuna 3.2; we pin >= 3.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.NSGAIIISampler(population_size=population_size, seed=seed, **kwargs)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, **kwargs)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed, **kwargs)
    raise ValueError(f"sampler: unknown optuna sampler {name!r}; by name: {list(OPTUNA_SAMPLERS)} "
                     "(or pass an optuna sampler instance)")


class OptunaOptimizer(Optimizer):
    """Ask/tell wrapper of an optuna sampler (a name from OPTUNA_SAMPLERS or an instance)."""

    name = "optuna"

    def __init__(self, problem, seed=None, sampler="nsga2", batch_size: int = 10, **kwargs):
        super().__init__(problem, seed)
        try:
            import optuna
        except ImportError:
            raise ImportError("optuna is needed for optuna samplers: pip install 'hwgptbench[moo]'") from None
        self._optuna = optuna
        if isinstance(sampler, str):
            self.name = f"optuna-{sampler.lower()}"
            sampler = make_sampler(sampler, int(self.rng.integers(2 ** 31 - 1)), **kwargs)
        elif kwargs:
            raise ValueError(f"{sorted(kwargs)}: sampler options only apply to samplers given by name")
        self.batch_size = check_int(batch_size, "batch_size", min_value=1)
        dist = optuna.distributions.IntDistribution
        self._dists = {f"g{j}": dist(0, int(u)) for j, u in enumerate(self.encoding.upper)}
        with _quiet(optuna):
            self.study = optuna.create_study(directions=["minimize"] * self.problem.n_obj, sampler=sampler)

    def _ask_genes(self):
        with _quiet(self._optuna):
            trials = [self.study.ask(self._dists) for _ in range(self.batch_size)]
        return trials, np.array([[t.params[k] for k in self._dists] for t in trials], dtype=np.int64)

    def _tell_genes(self, trials, X, F) -> None:
        with _quiet(self._optuna):
            for t, f in zip(trials, F):
                self.study.tell(t, f.tolist())
