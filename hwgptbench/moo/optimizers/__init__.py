"""Optimizers with one ask/tell protocol, and a registry of them by name.

The eight HW-GPT-Bench baselines are rs, pls, nsga2, morea, rsbo, lsbo, ehvi and moasha; moasha
needs a problem with a fidelity axis (perplexity at several training fidelities), which no served
column has yet, so `BASELINES` (what `reproduce` runs) leaves it out until then.
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


def make_optimizer(name: str, problem, seed=None, **kwargs) -> Optimizer:
    """An optimizer by name (see `optimizer_names()`) or by import path ``"module:Class"`` (a
    user's own ask/tell class, constructed as ``Class(problem, seed=seed, **kwargs)``)."""
    if not isinstance(name, str):
        raise TypeError(f"optimizer: expected a name from {optimizer_names()}, got {type(name).__name__}")
    if ":" in name:
        return _import(name)(problem, seed=seed, **kwargs)
    key = name.lower()
    if key in _NATIVE:
        return _NATIVE[key](problem, seed=seed, **kwargs)
    if key in PYMOO_ALGORITHMS:
        return PymooOptimizer(problem, seed=seed, algorithm=key, **kwargs)
    if key.startswith("optuna-") and key[7:] in OPTUNA_SAMPLERS:
        return OptunaOptimizer(problem, seed=seed, sampler=key[7:], **kwargs)
    raise ValueError(f"optimizer: unknown {name!r}; allowed: {optimizer_names()}")


def _import(path: str):
    import importlib
    module, _, attr = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"optimizer: cannot import {path!r} ({e}); expected 'module:Class'") from None
    if not (callable(getattr(cls, "ask", None)) and callable(getattr(cls, "tell", None))):
        raise TypeError(f"optimizer: {path!r} has no ask() and tell() methods")
    return cls
