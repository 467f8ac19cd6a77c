"""The ask/tell protocol every optimizer follows, and the batch type that carries fidelities.

``asked = opt.ask()`` proposes a batch; the caller evaluates it and hands back
``opt.tell(asked, F)`` with exactly what `ask` returned and F the normalised objectives
(n, n_obj), all minimised, rows in the order asked. `ask` returns either

- a feature matrix X (n, n_features) of integers, the space's encoding: every row is evaluated
  in full (the problem's default columns; the final training fidelity where there are several), or
- a `Batch(X, fidelity)`: the same rows, each evaluated at the training fidelity (percent of
  supernet training, one of ``problem.fidelities``) the optimizer asks for. Only multi-fidelity
  optimizers (MO-ASHA) need it; everything else returns plain matrices and never sees a Batch.

That is the whole contract; `hwgptbench.moo.testing.check_optimizer` checks it on any optimizer.
"""
from __future__ import annotations

import numpy as np

from ..problem import Problem, get_problem
from ...validation import check_int

__all__ = ["Optimizer", "GenotypeOptimizer", "Batch", "as_batch"]


class Batch:
    """Feature rows X (n, n_features) with a training fidelity per row (percent, int).

    ``fidelity`` may be one int for the whole batch, or None for the full evaluation. Both arrays
    are private read-only copies, so neither the optimizer nor the caller can change a batch
    after it was made.
    """

    __slots__ = ("X", "fidelity")

    def __init__(self, X, fidelity=None):
        X = np.array(X)                                    # a copy
        if X.ndim != 2:
            raise ValueError(f"X: expected a 2-D feature matrix (n, n_features), got shape {X.shape}")
        if fidelity is not None:
            fidelity = np.array(np.broadcast_to(fidelity, (len(X),)) if np.ndim(fidelity) == 0 else fidelity)
            if fidelity.shape != (len(X),):
                raise ValueError(f"fidelity: expected one value per row ({len(X)}), got shape "
                                 f"{fidelity.shape}")
            if fidelity.dtype.kind not in "iu":
                raise TypeError(f"fidelity: expected integer percents of training, got dtype "
                                f"{fidelity.dtype}")
            fidelity = fidelity.astype(np.int64)
            fidelity.setflags(write=False)
        X.setflags(write=False)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "fidelity", fidelity)

    def __setattr__(self, name, value):
        raise AttributeError("Batch is immutable")

    def __len__(self) -> int:
        return len(self.X)

    def __repr__(self) -> str:
        fid = "full" if self.fidelity is None else sorted(set(self.fidelity.tolist()))
        return f"Batch({len(self)} rows, fidelity {fid})"

    def same(self, other: Batch) -> bool:
        """Same rows in the same order at the same fidelities."""
        if (self.fidelity is None) != (other.fidelity is None):
            return False
        return (self.X.shape == other.X.shape and np.array_equal(self.X, other.X)
                and (self.fidelity is None or np.array_equal(self.fidelity, other.fidelity)))


def as_batch(asked, problem, who: str = "ask()") -> Batch:
    """What an optimizer's ask() returned, checked against the problem, as a Batch.

    Errors name `who` (e.g. ``"nsga2.ask()"``) and say what is allowed: a non-empty integer
    matrix whose rows are architectures of the space, and fidelities the problem serves."""
    try:
        b = asked if isinstance(asked, Batch) else Batch(np.asarray(asked))
        if b.X.dtype.kind not in "iu":
            raise TypeError(f"expected an integer feature matrix (the space's encoding), got dtype "
                            f"{b.X.dtype}")
        if len(b) == 0:
            raise ValueError("returned no architectures")
        X = problem.space.validate_features(b.X)
    except (ValueError, TypeError) as e:
        raise type(e)(f"{who}: {e}") from None
    if b.fidelity is not None:
        allowed = tuple(problem.fidelities)
        bad = ~np.isin(b.fidelity, allowed)
        if bad.any():
            raise ValueError(f"{who}: fidelity {int(b.fidelity[bad][0])} is not served for "
                             f"{problem.name!r}; allowed: {list(allowed) or 'none (no fidelity axis)'}")
    return Batch(X, b.fidelity)


class Optimizer:
    """Base class: the problem, a seeded generator, and the contract enforced for you.

    Implement ``_ask() -> X or Batch`` and ``_tell(X, F)``; `ask` and `tell` then check what
    goes in and out, keep one batch in flight, and hand out copies. ``_tell`` gets private
    copies (int64 rows, float64 objectives), so it may keep them. Optimizers that search
    choice-index genotypes implement ``_ask_genes() -> (token, G)`` and
    ``_tell_genes(token, X, F)`` instead. (Duck-typed optimizers with their own ask/tell work
    too; `check_optimizer` tells you what they must guarantee.)
    """

    name = ""                  # shown in messages; the class name unless a subclass sets one

    def __init__(self, problem, seed=None):
        self.name = self.name or type(self).__name__
        self.problem: Problem = get_problem(problem)
        self.space = self.problem.space
        self.encoding = self.problem.encoding
        self.seed = None if seed is None else check_int(seed, "seed", min_value=0)
        self.rng = np.random.default_rng(self.seed)
        self._pending: Batch | None = None
        self._token = None

    def ask(self):
        if self._pending is not None:
            raise RuntimeError(f"{self.name}: tell() the previous batch before asking again")
        batch = as_batch(self._ask(), self.problem, f"{self.name}._ask()")
        self._pending = batch
        return batch.X.copy() if batch.fidelity is None else batch

    def tell(self, asked, F) -> None:
        if self._pending is None:
            raise RuntimeError(f"{self.name}: tell() without a pending ask()")
        X, F = self._check_told(asked, F, expected=self._pending)
        self._pending = None
        self._tell(X, F)

    def _ask(self):
        token, G = self._ask_genes()
        self._token = token
        return self.encoding.to_features(G)

    def _tell(self, X, F) -> None:
        token, self._token = self._token, None
        self._tell_genes(token, X, F)

    def _ask_genes(self):
        raise NotImplementedError(f"{type(self).__name__}: implement _ask/_tell (or _ask_genes/_tell_genes)")

    def _tell_genes(self, token, X, F) -> None:
        raise NotImplementedError(f"{type(self).__name__}: implement _ask/_tell (or _ask_genes/_tell_genes)")

    def _check_told(self, asked, F, expected: Batch | None = None):
        """(X, F) as private int64 / float64 copies, after checking F's shape and values and, given
        the pending batch, that `asked` is exactly it."""
        told = asked if isinstance(asked, Batch) else Batch(np.asarray(asked))
        X = self.space.validate_features(told.X)
        F = np.asarray(F)
        if F.dtype.kind not in "iuf":
            raise TypeError(f"F: expected real numbers, got dtype {F.dtype}")
        F = np.array(F, dtype=np.float64)                  # a copy
        if F.ndim != 2 or F.shape != (len(X), self.problem.n_obj):
            raise ValueError(f"F: expected shape ({len(X)}, {self.problem.n_obj}), got {F.shape}")
        if not np.all(np.isfinite(F)):
            raise ValueError("F: objectives must be finite")
        if expected is not None and not expected.same(Batch(X, told.fidelity)):
            raise ValueError("X: tell() must receive exactly what the last ask() returned (the same "
                             "rows in the same order, and for a Batch the same fidelities)")
        return np.array(X), F


class GenotypeOptimizer(Optimizer):
    """Helper for optimizers that search choice-index genotypes (hidden genes kept).

    Subclasses implement `_propose() -> G` and `_observe(G, F)`; this class converts genotypes to
    feature rows, remembers what was asked, and keeps the full history.
    """

    def __init__(self, problem, seed=None, batch_size: int = 10):
        super().__init__(problem, seed)
        self.batch_size = check_int(batch_size, "batch_size", min_value=1)
        self.G = np.empty((0, self.encoding.n_genes), dtype=np.int64)
        self.F = np.empty((0, self.problem.n_obj))
        self._seen: set[bytes] = set()

    def _ask_genes(self):
        G = self._propose()
        return G, G

    def _tell_genes(self, G, X, F) -> None:
        self.G = np.vstack([self.G, G])
        self.F = np.vstack([self.F, F])
        self._seen.update(r.tobytes() for r in X)
        self._observe(G, F)

    def _propose(self) -> np.ndarray:
        raise NotImplementedError

    def _observe(self, G, F) -> None:
        pass

    def _novel(self, G) -> np.ndarray:
        """Mask of genotypes whose architecture was neither evaluated nor repeated within G."""
        X = self.encoding.to_features(G)
        keep = np.zeros(len(G), dtype=bool)
        local = set()
        for i, r in enumerate(X):
            b = r.tobytes()
            if b not in self._seen and b not in local:
                keep[i] = True
                local.add(b)
        return keep

    def _fill_novel(self, make, n: int, tries: int = 20) -> np.ndarray:
        """Up to n novel genotypes from a proposal function `make(m) -> G`; random ones as fallback."""
        out = np.empty((0, self.encoding.n_genes), dtype=np.int64)
        for _ in range(tries):
            G = make(max(2 * (n - len(out)), 1))
            G = G[self._novel(np.vstack([out, G]))[len(out):]] if len(out) else G[self._novel(G)]
            out = np.vstack([out, G])[:n]
            if len(out) == n:
                return out
        G = self.encoding.sample(n - len(out), self.rng)
        return np.vstack([out, G])
