"""Multi-objective NAS harness: problems, ask/tell optimizers, indicators, runner, plots.

Needs the ``moo`` extra (moocore, pymoo; matplotlib for plots, optuna for its samplers), all
imported lazily where used.
"""
from .loop import Result, minimize
from .optimizers import BASELINES, Batch, Optimizer, make_optimizer, optimizer_names
from .problem import Problem, get_problem, shipped_problems
from .termination import AnyOf, MaxCost, MaxEvals, MaxTime, Progress, Termination

__all__ = ["Problem", "get_problem", "shipped_problems", "Optimizer", "Batch", "make_optimizer",
           "optimizer_names", "BASELINES", "minimize", "Result", "Termination", "MaxEvals", "MaxTime",
           "MaxCost", "AnyOf", "Progress"]
