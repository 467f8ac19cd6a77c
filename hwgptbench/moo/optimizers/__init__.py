"""Optimizers with one ask/tell protocol, and a registry of them by name.

The eight HW-GPT-Bench baselines are rs, pls, nsga2, morea, rsbo, lsbo, ehvi and moasha; moasha
needs a problem with a fidelity axis (perplexity at several training fidelities: the xs problems),
so `BASELINES` leaves it out and `reproduce` adds it on the problems that have one.
"""
from __future__ import annotations

from .base import Batch, GenotypeOptimizer, Optimizer
from .bayesian import EHVI, LSBO, RSBO
from .moasha import MOASHA
from .optuna_adapter import OPTUNA_SAMPLERS, OptunaOptimizer
from .pymoo_adapter import PYMOO_ALGORITHMS, PymooOptimizer
from .simple import MOREA, ParetoLocalSearch, RandomSearch

__all__ = ["Optimizer", "GenotypeOptimizer", "Batch", "RandomSearch", "ParetoLocalSearch", "MOREA", "RSBO",
           "LSBO", "EHVI", "MOASHA", "PymooOptimizer", "OptunaOptimizer", "BASELINES", "optimizer_names",
           "make_optimizer"]

# The HW-GPT-Bench baselines that run on every problem (moasha needs a fidelity axis).
BASELINES = ("rs", "pls", "nsga2", "morea", "rsbo", "lsbo", "ehvi")

_NATIVE = {"rs": RandomSearch, "pls": ParetoLocalSearch, "morea": MOREA, "rsbo": RSBO, "lsbo": LSBO,
           "ehvi": EHVI, "moasha": MOASHA}


def optimizer_names() -> list[str]:
    return (list(_NATIVE) + list(PYMOO_ALGORITHMS)
            + [f"optuna-{s}" for s in OPTUNA_SAMPLERS])


def make_optimizer(optimizer, problem, seed=None, **kwargs) -> Optimizer:
    """An optimizer by name (see `optimizer_names()`), by import path ``"module:Class"`` (a user's
    own ask/tell class; the module may live in the current directory), or from a class or factory;
    the last two are called as ``Class(problem, seed=seed, **kwargs)``."""
    if not isinstance(optimizer, str):
        if not callable(optimizer) or (not isinstance(optimizer, type)
                                       and callable(getattr(optimizer, "ask", None))):
            raise TypeError(f"optimizer: expected a name from {optimizer_names()}, 'module:Class', "
                            f"or a class or factory; got {optimizer!r}")
        return _checked(optimizer(problem, seed=seed, **kwargs), repr(optimizer))
    if ":" in optimizer:
        return _checked(_import(optimizer)(problem, seed=seed, **kwargs), repr(optimizer))
    key = optimizer.lower()
    if key in _NATIVE:
        return _NATIVE[key](problem, seed=seed, **kwargs)
    if key in PYMOO_ALGORITHMS:
        return PymooOptimizer(problem, seed=seed, algorithm=key, **kwargs)
    if key.startswith("optuna-") and key[7:] in OPTUNA_SAMPLERS:
        return OptunaOptimizer(problem, seed=seed, sampler=key[7:], **kwargs)
    raise ValueError(f"optimizer: unknown {optimizer!r}; allowed: {optimizer_names()} or 'module:Class'")


def _checked(opt, what):
    if not (callable(getattr(opt, "ask", None)) and callable(getattr(opt, "tell", None))):
        raise TypeError(f"optimizer: {what} has no ask() and tell() methods")
    return opt


def _import(path: str):
    """The class named by 'module:Class'; a module not found on sys.path is looked for in the
    current directory too, as `python -m` would (the console script does not put it on the path)."""
    import importlib
    import os
    import sys
    module, _, attr = path.partition(":")
    if not module or not attr:
        raise ValueError(f"optimizer: expected 'module:Class', got {path!r}")
    try:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module.split(".")[0] or os.getcwd() in sys.path:
                raise
            sys.path.insert(0, os.getcwd())
            try:
                mod = importlib.import_module(module)
            finally:
                sys.path.remove(os.getcwd())
        cls = getattr(mod, attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"optimizer: cannot import {path!r} ({e}); expected 'module:Class' with the "
                         f"module on the Python path or in the current directory") from None
    if not (callable(getattr(cls, "ask", None)) and callable(getattr(cls, "tell", None))):
        raise TypeError(f"optimizer: {path!r} has no ask() and tell() methods")
    return cls
