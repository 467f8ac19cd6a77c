"""The optimisation loop: ``minimize(problem, optimizer, termination)``, as in pymoo.

Each round asks the optimizer for a batch, evaluates every row (at the training fidelity the
batch asks for, if any: see `Batch`), and tells it the normalised objectives, until the
termination says stop. The loop owns the run's seeded evaluation noise, the timing, and the
simulated training cost: a row at fidelity f% costs (f - g)/100 full trainings, g being the
highest fidelity that architecture was trained to before in this run (a promoted configuration
resumes training, as MO-ASHA assumes); a full evaluation counts as f = 100. On a problem with a
fidelity axis every run, multi-fidelity or not, also gets that cost in simulated seconds (``cost_s``,
`sim_cost.SimulatedCost`): each row's share of training that architecture, plus scoring it, at the
space's training rates, so optimizers compare on one simulated clock.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .optimizers import Optimizer, make_optimizer
from .optimizers.base import Batch, as_batch
from .problem import Problem, get_problem
from .termination import Progress, as_termination
from ..validation import check_int

__all__ = ["minimize", "Result", "evaluate", "at_final_fidelity"]


@dataclass(frozen=True)
class Result:
    """Every evaluation of one run, in order (a run may pass its evaluation limit by a batch)."""

    problem: Problem
    optimizer: str            # the name it was given by, or its class name
    seed: int
    X: np.ndarray             # (n, n_features) feature rows
    R: np.ndarray             # (n, n_obj) signed objectives in the columns' units (maximised negated)
    F: np.ndarray             # (n, n_obj) normalised objectives, as told to the optimizer
    fidelity: np.ndarray      # (n,) training percent asked for; NaN = full evaluation
    batch: np.ndarray         # (n,) batch index
    optimizer_s: np.ndarray   # (n,) cumulative seconds in ask() and tell() when the row was told
    cost: np.ndarray          # (n,) cumulative simulated training cost, in full trainings
    cost_s: np.ndarray        # (n,) cumulative simulated training + scoring seconds (NaN: no fidelity axis)
    progress: Progress        # where the run stopped
    multi_fidelity: bool      # whether the optimizer asked for fidelities

    @property
    def final(self) -> np.ndarray:
        """Rows evaluated at the final fidelity (the only ones indicators use)."""
        return at_final_fidelity(self.fidelity, self.problem)


def at_final_fidelity(fidelity, problem) -> np.ndarray:
    """Mask of rows at the final training fidelity (NaN, a full evaluation, counts as final)."""
    fid = np.asarray(fidelity, dtype=np.float64)
    if np.all(np.isnan(fid)):
        return np.ones(len(fid), dtype=bool)
    top = max(problem.fidelities) if problem.fidelities else np.nanmax(fid)
    return np.isnan(fid) | (fid == top)


def minimize(problem, optimizer, termination, *, seed: int = 0, options=None) -> Result:
    """Run `optimizer` on `problem` until `termination` says stop; return every evaluation.

    problem: a Problem or its name (``"s:-params,flops"``). optimizer: a name or ``"module:Class"``
    (see `optimizer_names`), a class or factory called as ``f(problem, seed=seed, **options)``, or
    a ready ask/tell object (then `seed` only seeds the evaluation noise). termination: e.g.
    ``MaxEvals(200)``, ``MaxTime(60)``, ``MaxCost(20)``, ``MaxEvals(500) | MaxTime(60)``, or an int
    (evaluations). The same seed gives the same run (except for what MaxTime cuts off).
    """
    P = get_problem(problem)
    termination = as_termination(termination)
    seed = check_int(seed, "seed", min_value=0)
    opt, label = _optimizer(optimizer, P, seed, options)
    noise_rng = np.random.default_rng([seed, 7919])          # independent of the optimizer's stream
    rows = {k: [] for k in ("X", "R", "F", "fidelity", "batch", "optimizer_s", "cost", "cost_s")}
    trained: dict[bytes, float] = {}
    progress, multi, start = Progress(), False, time.perf_counter()
    seconds, total_s = None, 0.0
    while not termination.done(progress):
        t0 = time.perf_counter()
        asked = opt.ask()
        t_ask = time.perf_counter() - t0
        batch = as_batch(asked, P, f"{label}.ask()")
        multi = multi or batch.fidelity is not None
        R = evaluate(P, batch, int(noise_rng.integers(2 ** 63 - 1)) if P.noise else None)
        F = P.normalise(R)
        t0 = time.perf_counter()
        opt.tell(asked, F)
        spent = progress.optimizer_s + t_ask + time.perf_counter() - t0
        fid = (np.full(len(batch), np.nan) if batch.fidelity is None
               else batch.fidelity.astype(np.float64))
        share = _training(batch.X, fid, trained)
        cost = progress.cost + np.cumsum(share)
        if not P.fidelities:
            cost_s = np.full(len(batch), np.nan)
        else:
            if seconds is None:
                from .sim_cost import SimulatedCost
                seconds = SimulatedCost(P)
            c = seconds.training(batch.X)
            cost_s = total_s + np.cumsum(share * c["train"] + c["evaluate"])
            total_s = float(cost_s[-1])
        for k, v in (("X", batch.X), ("R", R), ("F", F), ("fidelity", fid),
                     ("batch", np.full(len(batch), progress.n_batches)),
                     ("optimizer_s", np.full(len(batch), spent)), ("cost", cost), ("cost_s", cost_s)):
            rows[k].append(v)
        progress = Progress(progress.n_evals + len(batch), progress.n_batches + 1,
                            time.perf_counter() - start, spent, float(cost[-1]))
    if not progress.n_batches:
        raise ValueError(f"termination: {termination!r} stopped the run before the first batch")
    return Result(P, label, seed, **{k: np.concatenate(v) for k, v in rows.items()},
                  progress=progress, multi_fidelity=multi)


def _optimizer(optimizer, problem, seed, options):
    """(ask/tell object, label) from a name, a class or factory, or a ready instance."""
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options: expected a dict of constructor options, got {options!r}")
    options = dict(options or {})
    if isinstance(optimizer, type) or not callable(getattr(optimizer, "ask", None)):
        opt = make_optimizer(optimizer, problem, seed=seed, **options)
        label = optimizer if isinstance(optimizer, str) else getattr(optimizer, "__name__", type(opt).__name__)
        return opt, label
    if options:
        raise ValueError(f"options: {sorted(options)} cannot apply to an optimizer already built")
    if not callable(getattr(optimizer, "tell", None)):
        raise TypeError(f"optimizer: {optimizer!r} has ask() but no tell()")
    if isinstance(optimizer, Optimizer) and optimizer.problem.name != problem.name:
        raise ValueError(f"optimizer: built for problem {optimizer.problem.name!r}, not {problem.name!r}")
    return optimizer, type(optimizer).__name__


def evaluate(problem, batch: Batch, seed=None) -> np.ndarray:
    """Signed raw objectives (n, n_obj) of a batch, each row at its fidelity."""
    if batch.fidelity is None:
        return problem.raw(batch.X, seed=seed)
    R = np.empty((len(batch), problem.n_obj))
    for f in np.unique(batch.fidelity):
        rows = batch.fidelity == f
        R[rows] = problem.raw(batch.X[rows], seed=seed, fidelity=int(f))
    return R


def _training(X, fidelity, trained: dict) -> np.ndarray:
    """Training cost of each row (full trainings), updating `trained` (row -> highest fidelity)."""
    out = np.empty(len(X))
    for i, (x, f) in enumerate(zip(X, fidelity)):
        key, f = x.tobytes(), 100.0 if np.isnan(f) else float(f)
        before = trained.get(key, 0.0)
        out[i] = max(f - before, 0.0) / 100.0
        trained[key] = max(f, before)
    return out
