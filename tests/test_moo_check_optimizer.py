"""check_optimizer fails on optimizers that break the contract, one fault each, and passes a
hand-written duck-typed optimizer that keeps it."""
import numpy as np
import pytest

pytest.importorskip("moocore")

from hwgptbench.moo import Batch, Optimizer, get_problem  # noqa: E402
from hwgptbench.moo.testing import check_optimizer  # noqa: E402


@pytest.fixture(scope="module")
def problem():
    return get_problem("s:-params,flops")


class Duck:
    """Keeps the contract by hand, without the Optimizer base class."""

    def __init__(self, problem, seed=None):
        self.P, self.rng, self.pending = problem, np.random.default_rng(seed), None

    def propose(self):
        return self.P.space.sample_features(3, seed=self.rng)

    def ask(self):
        if self.pending is not None:
            raise RuntimeError("tell first")
        X = self.propose()
        self.pending = X.copy()
        return X

    def tell(self, X, F):
        if self.pending is None:
            raise RuntimeError("ask first")
        self.validate(np.asarray(X), np.asarray(F, dtype=float))
        self.pending = None

    def validate(self, X, F):
        if F.shape != (len(self.pending), self.P.n_obj) or not np.isfinite(F).all():
            raise ValueError("F")
        if not np.array_equal(X, self.pending):
            raise ValueError("X")


class Unseeded(Duck):
    def propose(self):
        return self.P.space.sample_features(3, seed=int(np.random.randint(2 ** 31)))


class IgnoresSeed(Duck):
    def propose(self):
        return self.P.space.sample_features(3, seed=0)


class MutatesF(Duck):
    def tell(self, X, F):
        super().tell(X, F)
        F -= 1.0


class ReusesItsBuffer(Duck):
    buf = None

    def propose(self):
        if self.buf is None:
            self.buf = super().propose()
        else:
            self.buf[:] = super().propose()            # overwrites the batch handed out before
        return self.buf


class AcceptsAnyRows(Duck):
    def validate(self, X, F):
        if F.shape != (len(self.pending), self.P.n_obj) or not np.isfinite(F).all():
            raise ValueError("F")


class NoBookkeeping(Duck):
    def ask(self):
        self.pending = self.propose()
        return self.pending.copy()

    def tell(self, X, F):
        pass


class RejectedTellLeavesATrace(Duck):
    def tell(self, X, F):
        self.rng.random()                              # state changes before the check
        super().tell(X, F)


class BadRows(Optimizer):
    def _ask(self):
        X = self.space.sample_features(2, seed=self.rng)
        X[:, 0] = 100                                  # no such embedding width
        return X

    def _tell(self, X, F):
        pass


class FloatRows(Duck):
    def propose(self):
        return super().propose().astype(float)


class UnservedFidelity(Optimizer):
    def _ask(self):
        return Batch(self.space.sample_features(2, seed=self.rng), fidelity=50)

    def _tell(self, X, F):
        pass


def test_a_correct_duck_typed_optimizer_passes(problem):
    check_optimizer(Duck, problem)
    check_optimizer(IgnoresSeed, problem, stochastic=False)


@pytest.mark.parametrize("cls, rule", [
    (Unseeded, "same seed"),
    (IgnoresSeed, "seeds 0 and 1"),
    (MutatesF, "must not modify"),
    (ReusesItsBuffer, "modified later"),
    (AcceptsAnyRows, "row other than"),
    (NoBookkeeping, "before any ask"),
    (RejectedTellLeavesATrace, "rejected tell"),
    (BadRows, "embed_dim"),
    (FloatRows, "integer"),
    (UnservedFidelity, "fidelity 50"),
])
def test_each_broken_rule_is_caught(cls, rule, problem):
    with pytest.raises(AssertionError, match=rule):
        check_optimizer(cls, problem)


def test_bad_arguments(problem):
    with pytest.raises(TypeError, match="instance"):
        check_optimizer(Duck(problem, seed=0), problem)
    with pytest.raises(ValueError, match="batches"):
        check_optimizer(Duck, problem, batches=0)
