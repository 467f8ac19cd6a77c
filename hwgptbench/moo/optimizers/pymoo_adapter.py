"""Run any pymoo algorithm against a hwgptbench problem through ask/tell.

The algorithm searches choice-index genotypes (integers in [0, n_choices-1] per gene, hidden
layer genes kept); offspring are converted to the space's feature rows on the way out. Algorithms
given by name get integer-safe operators (uniform crossover, random-reset mutation) and, where
they need them, reference directions sized to the population.
"""
from __future__ import annotations

import math

import numpy as np

from ...validation import check_int
from .base import Optimizer

__all__ = ["PymooOptimizer", "PYMOO_ALGORITHMS"]

PYMOO_ALGORITHMS = ("nsga2", "nsga3", "smsemoa", "moead")


def _ref_dirs(n_obj: int, n_points: int):
    from pymoo.util.ref_dirs import get_reference_directions
    p = 1
    while math.comb(p + 1 + n_obj - 1, n_obj - 1) <= n_points:
        p += 1
    return get_reference_directions("das-dennis", n_obj, n_partitions=p)


def _operators():
    from pymoo.core.mutation import Mutation
    from pymoo.operators.crossover.ux import UniformCrossover
    from pymoo.operators.sampling.rnd import IntegerRandomSampling

    class ResetMutation(Mutation):
        """Each gene redrawn (to a different choice) with probability 1/n_var."""

        def _do(self, problem, X, *args, random_state=None, **kwargs):
            X = np.asarray(X).astype(np.int64)
            k = (problem.xu - problem.xl + 1).astype(np.int64)
            hit = random_state.random(X.shape) < self.get_prob_var(problem, size=X.shape)
            shift = 1 + (random_state.random(X.shape) * (k - 1)).astype(np.int64)
            return np.where(hit, (X + shift) % k, X)

    return dict(sampling=IntegerRandomSampling(), crossover=UniformCrossover(), mutation=ResetMutation())


def make_algorithm(name: str, n_obj: int, pop_size: int, **kwargs):
    """A pymoo algorithm by name with integer operators (kwargs go to its constructor)."""
    ops = _operators()
    name = name.lower()
    if name == "nsga2":
        from pymoo.algorithms.moo.nsga2 import NSGA2
        return NSGA2(pop_size=pop_size, **ops, **kwargs)
    if name == "nsga3":
        from pymoo.algorithms.moo.nsga3 import NSGA3
        return NSGA3(ref_dirs=_ref_dirs(n_obj, pop_size), pop_size=pop_size, **ops, **kwargs)
    if name == "smsemoa":
        from pymoo.algorithms.moo.sms import SMSEMOA
        return SMSEMOA(pop_size=pop_size, **ops, **kwargs)
    if name == "moead":
        from pymoo.algorithms.moo.moead import ParallelMOEAD   # batch ask/tell (MOEAD asks one at a time)
        dirs = _ref_dirs(n_obj, pop_size)
        return ParallelMOEAD(ref_dirs=dirs, n_neighbors=min(15, len(dirs)), n_offsprings=len(dirs),
                             **ops, **kwargs)
    raise ValueError(f"algorithm: unknown pymoo algorithm {name!r}; by name: {list(PYMOO_ALGORITHMS)} "
                     "(or pass a pymoo Algorithm instance)")


class PymooOptimizer(Optimizer):
    """Ask/tell wrapper of a pymoo algorithm (a name from PYMOO_ALGORITHMS or an instance)."""

    name = "pymoo"

    def __init__(self, problem, seed=None, algorithm="nsga2", pop_size: int = 20, **kwargs):
        super().__init__(problem, seed)
        from pymoo.core.problem import Problem as PymooProblem
        from pymoo.core.termination import NoTermination
        enc = self.encoding
        if isinstance(algorithm, str):
            self.name = algorithm.lower()
            pop_size = check_int(pop_size, "pop_size", min_value=2)
            algorithm = make_algorithm(algorithm, self.problem.n_obj, pop_size, **kwargs)
        elif kwargs:
            raise ValueError(f"{sorted(kwargs)}: constructor options only apply to algorithms given by name")
        self.algorithm = algorithm
        self._shell = PymooProblem(n_var=enc.n_genes, n_obj=self.problem.n_obj, xl=np.zeros(enc.n_genes),
                                   xu=enc.upper.astype(float), vtype=int)
        pymoo_seed = int(self.rng.integers(2 ** 31 - 1))
        self.algorithm.setup(self._shell, termination=NoTermination(), seed=pymoo_seed, verbose=False)

    def _ask_genes(self):
        from pymoo.core.individual import Individual
        pop = self.algorithm.ask()
        if isinstance(pop, Individual):           # steady-state algorithms may ask for one
            pop = _Single(pop)
        return pop, self.encoding.check(np.round(np.atleast_2d(pop.get("X"))).astype(np.int64))

    def _tell_genes(self, pop, X, F) -> None:
        from pymoo.core.evaluator import Evaluator
        from pymoo.problems.static import StaticProblem
        if isinstance(pop, _Single):
            pop.ind.set("F", F[0])
            pop.ind.evaluated = {"F"}
            self.algorithm.tell(infills=pop.ind)
        else:
            Evaluator().eval(StaticProblem(self._shell, F=F), pop)
            self.algorithm.tell(infills=pop)


class _Single:
    """A lone pymoo Individual asked for by a steady-state algorithm."""

    def __init__(self, ind):
        self.ind = ind

    def get(self, key):
        return self.ind.get(key)
