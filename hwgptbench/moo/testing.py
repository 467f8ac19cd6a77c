"""The optimizer contract as a test helper you can run on your own optimizer (as optuna ships
its sampler tests): ``check_optimizer(MyOptimizer)`` inside a test.

It drives fresh instances for a few batches on a problem and raises AssertionError naming the
first rule broken:

1. ask() returns a non-empty integer feature matrix whose rows are architectures of the space, or
   a `Batch` whose fidelities the problem serves;
2. one batch in flight: ask() again before tell() raises RuntimeError, and so does tell() without
   a pending ask();
3. tell() rejects, with ValueError, objectives of the wrong shape or not finite, and rows other
   than exactly those asked (reordered, fewer, changed, other fidelities); a rejected tell changes
   nothing;
4. tell() does not modify the arrays it is given, and the optimizer never modifies a batch it
   handed out;
5. the same seed gives the same batches (no global random state); with `stochastic`, another seed
   gives other batches.
"""
from __future__ import annotations

import numpy as np

from .loop import evaluate
from .optimizers import make_optimizer
from .optimizers.base import Batch, as_batch
from .problem import get_problem
from ..validation import check_bool, check_int

__all__ = ["check_optimizer"]


def check_optimizer(optimizer, problem="s:-params,flops", *, batches: int = 3, options=None,
                    stochastic: bool = True) -> None:
    """Check the ask/tell contract (see the module docstring) for `optimizer`: a class or factory
    called as ``f(problem, seed=seed, **options)``, or a name (``"nsga2"``, ``"module:Class"``)."""
    P = get_problem(problem)
    batches = check_int(batches, "batches", min_value=1)
    stochastic = check_bool(stochastic, "stochastic")
    if not isinstance(optimizer, (str, type)) and callable(getattr(optimizer, "ask", None)):
        raise TypeError("optimizer: check_optimizer builds fresh optimizers; pass the class or a "
                        f"factory, not an instance ({optimizer!r})")
    who = optimizer if isinstance(optimizer, str) else getattr(optimizer, "__name__", repr(optimizer))

    def build(seed):
        return make_optimizer(optimizer, P, seed=seed, **dict(options or {}))

    fresh = build(0)
    _raises(RuntimeError, f"{who}: tell() before any ask() must raise RuntimeError",
            fresh.tell, P.space.sample_features(1, seed=0), np.zeros((1, P.n_obj)))
    checked = _drive(build(0), P, batches, who, strict=True)
    again = _drive(build(0), P, batches, who)
    _check(all(a.same(b) for a, b in zip(checked, again)),
           f"{who}: the same seed must give the same batches (is some random state global or "
           "unseeded, or did a rejected tell() change the optimizer?)")
    if stochastic:
        other = _drive(build(1), P, batches, who)
        _check(not all(a.same(b) for a, b in zip(checked, other)),
               f"{who}: seeds 0 and 1 gave the same batches (does it use its seed? pass "
               "stochastic=False for a deterministic optimizer)")


def _drive(opt, P, batches, who, strict=False) -> list[Batch]:
    """Ask/tell `batches` rounds with the problem's noise-free objectives; with `strict`, try every
    misuse of the protocol on the way. Returns the batches asked."""
    out, handed = [], []
    for _ in range(batches):
        try:
            asked = opt.ask()
            batch = as_batch(asked, P, f"{who}.ask()")
        except (ValueError, TypeError) as e:
            raise AssertionError(f"{who}: ask() must return valid rows of the space: {e}") from None
        F = P.normalise(evaluate(P, batch, seed=0))
        if strict:
            _raises(RuntimeError, f"{who}: ask() before tell() of the previous batch must raise "
                    "RuntimeError (one batch in flight)", opt.ask)
            for what, bad_asked, bad_F in _bad_tells(P, asked, batch, F):
                _raises(ValueError, f"{who}: tell() with {what} must raise ValueError",
                        opt.tell, bad_asked, bad_F)
            handed.append((asked, batch))
        told, F_told = _copy(asked), F.copy()
        opt.tell(told, F_told)
        if strict:
            _check(_unchanged(told, batch) and np.array_equal(F_told, F),
                   f"{who}: tell() must not modify the arrays it is given")
            _raises(RuntimeError, f"{who}: tell() without a pending ask() must raise RuntimeError",
                    opt.tell, _copy(asked), F.copy())
        out.append(batch)
    for asked, batch in handed:
        _check(_unchanged(asked, batch), f"{who}: a batch returned by ask() was modified later by "
               "the optimizer (return a copy)")
    return out


def _bad_tells(P, asked, batch, F):
    """(description, asked, F) of tells that must be rejected."""
    X, fid = batch.X, batch.fidelity

    def like(X2, fid2=fid):
        return X2.copy() if not isinstance(asked, Batch) else Batch(X2, fid2)
    yield "objectives of the wrong shape", _copy(asked), F[:, :1]
    yield "non-finite objectives", _copy(asked), np.full_like(F, np.nan)
    other = P.space.sample_features(1, seed=12345)
    changed = X.copy()
    changed[0] = other[0] if not np.array_equal(other[0], X[0]) else P.space.sample_features(2, seed=1)[1]
    yield "a row other than the one asked", like(changed), F
    if len(X) > 1:
        yield "the rows reordered", like(X[::-1], None if fid is None else fid[::-1]), F[::-1]
        yield "fewer rows than asked", like(X[:-1], None if fid is None else fid[:-1]), F[:-1]
    if fid is not None and len(P.fidelities) > 1:
        shifted = np.array([P.fidelities[(P.fidelities.index(f) + 1) % len(P.fidelities)] for f in fid])
        yield "other fidelities than asked", Batch(X, shifted), F


def _copy(asked):
    return asked if isinstance(asked, Batch) else np.array(asked)      # a Batch is immutable


def _unchanged(asked, batch) -> bool:
    X = asked.X if isinstance(asked, Batch) else np.asarray(asked)
    return X.shape == batch.X.shape and np.array_equal(X, batch.X)


def _raises(exc, rule, fn, *args) -> None:
    try:
        fn(*args)
    except exc:
        return
    except Exception as e:                                  # noqa: BLE001 - reported as the failure
        raise AssertionError(f"{rule}; got {type(e).__name__}: {e}") from None
    raise AssertionError(f"{rule}; nothing was raised")


def _check(ok, message) -> None:
    if not ok:
        raise AssertionError(message)
