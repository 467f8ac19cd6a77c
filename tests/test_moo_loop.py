"""minimize: terminations, the forms an optimizer may take, fidelities asked with the batch,
the simulated training cost, and checks of what ask() returns."""
import functools
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("moocore")
pytest.importorskip("pymoo")

from hwgptbench.moo import (AnyOf, Batch, MaxCost, MaxEvals, MaxTime, Optimizer, get_problem,  # noqa: E402
                            make_optimizer, minimize)
from hwgptbench.moo.optimizers import PymooOptimizer  # noqa: E402
from hwgptbench.moo.runner import run, tidy  # noqa: E402

import moo_fixtures  # noqa: E402
from moo_fixtures import FIDELITIES, FidelityBench  # noqa: E402


@pytest.fixture(scope="module")
def problem():
    return get_problem("s:-params,flops")


@pytest.fixture(scope="module")
def fidelity_problem():
    return moo_fixtures.fidelity_problem()


def test_max_evals_and_the_runner_agree(problem):
    res = minimize(problem, "nsga2", MaxEvals(45), seed=1, options={"pop_size": 20})
    assert len(res.X) == 60 and res.progress.n_evals == 60 and res.progress.n_batches == 3  # 3 x 20
    assert np.array_equal(res.batch, np.repeat([0, 1, 2], 20))
    df = run(problem, "nsga2", budget=45, seed=1, optimizer_options={"pop_size": 20})
    pd.testing.assert_frame_equal(tidy(res, limit=45).drop(columns="optimizer_s"),
                                  df.drop(columns="optimizer_s"))
    # the objectives are the problem's, row by row
    assert np.array_equal(res.F, problem(res.X))
    assert minimize(problem, "nsga2", 45, seed=1, options={"pop_size": 20}).X.tolist() == res.X.tolist()


def test_optimizer_forms(problem):
    by_name = minimize(problem, "nsga2", MaxEvals(30), seed=2, options={"pop_size": 10})
    by_factory = minimize(problem, functools.partial(PymooOptimizer, algorithm="nsga2", pop_size=10),
                          MaxEvals(30), seed=2)
    built = make_optimizer("nsga2", problem, seed=2, pop_size=10)
    ready = minimize(problem, built, MaxEvals(30), seed=5)            # seed: the noise only
    assert by_name.optimizer == "nsga2" and ready.optimizer == "PymooOptimizer"
    for other in (by_factory, ready):
        assert np.array_equal(by_name.X, other.X)
    with pytest.raises(ValueError, match="options"):
        minimize(problem, built, 10, options={"pop_size": 4})
    with pytest.raises(ValueError, match="built for problem"):
        minimize(get_problem("s:-params,memory_MB_analytic"), make_optimizer("rs", problem), 10)
    with pytest.raises(TypeError, match="optimizer"):
        minimize(problem, 42, 10)


class SlowRandom(Optimizer):
    """Random batches of 2 that take at least 50 ms to ask for."""

    def _ask(self):
        time.sleep(0.05)
        return self.space.sample_features(2, seed=self.rng)

    def _tell(self, X, F):
        pass


def test_wall_clock_and_any_of(problem):
    res = minimize(problem, SlowRandom, MaxTime(0.3))
    # each batch takes >= 50 ms, so elapsed >= 0.3 s after at most 6 batches
    assert res.progress.elapsed_s >= 0.3 and 1 <= res.progress.n_batches <= 6
    both = minimize(problem, SlowRandom, MaxEvals(4) | MaxTime(60))
    assert both.progress.n_evals == 4
    assert repr(AnyOf(MaxEvals(4) | MaxTime(60), MaxCost(2))) == "MaxEvals(4) | MaxTime(60) | MaxCost(2)"


class Stop:
    """A termination of one's own: any object with done(progress)."""

    def done(self, progress):
        return progress.n_batches == 2


def test_custom_termination(problem):
    assert minimize(problem, "rs", Stop(), options={"batch_size": 3}).progress.n_evals == 6


class Ladder(Optimizer):
    """Asks new random architectures at 25%, then re-asks the previous batch one rung higher."""

    def __init__(self, problem, seed=None):
        super().__init__(problem, seed)
        self.prev = None

    def _ask(self):
        if self.prev is None or self.prev.fidelity[0] == 100:
            self.prev = Batch(self.space.sample_features(3, seed=self.rng), 25)
        else:
            self.prev = Batch(self.prev.X, self.prev.fidelity + 25)
        return self.prev

    def _tell(self, X, F):
        pass


def test_fidelity_travels_with_the_batch_and_costs_training(fidelity_problem):
    P = fidelity_problem
    res = minimize(P, Ladder, MaxCost(4.0), seed=0)        # 3 archs x 4 rungs, then 3 more x 2
    # the benchmark itself, column by column: every row at the fidelity it was asked at
    bench = FidelityBench()
    for f in FIDELITIES:
        rows = res.fidelity == f
        assert rows.any()
        assert np.array_equal(res.R[rows, 0], bench.evaluate(res.X[rows], [f"perplexity_f{f}"])[:, 0])
    # by hand: training resumes, so each architecture costs its highest fidelity / 100 in total
    top = {}
    for x, f in zip(res.X, res.fidelity):
        top[x.tobytes()] = max(top.get(x.tobytes(), 0), f)
    assert res.cost[-1] == pytest.approx(sum(top.values()) / 100) == res.progress.cost
    assert res.progress.n_batches == 6 and res.cost[-1] == 4.5        # stopped at the first batch past 4
    assert res.multi_fidelity and res.final.sum() == (res.fidelity == 100).sum()
    df = tidy(res)
    assert df["fidelity"].dtype == np.int64 and np.array_equal(df["cost"], res.cost)


class Plain(Optimizer):
    def _ask(self):
        return self.space.sample_features(2, seed=self.rng)

    def _tell(self, X, F):
        pass


def test_plain_batches_are_full_evaluations(fidelity_problem, problem):
    res = minimize(fidelity_problem, Plain, MaxCost(3))
    assert np.isnan(res.fidelity).all() and res.final.all() and not res.multi_fidelity
    assert np.array_equal(res.cost, np.arange(1, len(res.X) + 1))         # one full training each
    assert np.array_equal(res.R[:, 0], FidelityBench().evaluate(res.X, ["perplexity_f100"])[:, 0])
    df = tidy(res)                                                         # one clock for every optimizer
    assert "fidelity" not in df and np.array_equal(df["cost"], res.cost) and np.all(np.diff(df["cost_s"]) > 0)


class Shaped(Optimizer):
    """Returns whatever it is told to: a fault injected into ask()."""

    out = None

    def _ask(self):
        return self.out

    def _tell(self, X, F):
        pass


class DuckShaped:
    def __init__(self, out):
        self.out = out

    def ask(self):
        return self.out

    def tell(self, X, F):
        raise AssertionError("never told: the loop stops at ask()")


@pytest.mark.parametrize("out, match", [
    (np.zeros((2, 5), dtype=np.int64), r"shape \(n, 27\)"),
    (np.zeros((0, 27), dtype=np.int64), "no architectures"),
    (np.zeros(27, dtype=np.int64), "2-D"),
    (np.ones((2, 27)), "integer"),
])
def test_a_wrong_ask_is_caught_at_once(problem, out, match):
    with pytest.raises((ValueError, TypeError), match=f"DuckShaped.ask\\(\\): .*{match}"):
        minimize(problem, DuckShaped(out), 10)


def test_fidelities_the_problem_does_not_serve(problem, fidelity_problem):
    X = problem.space.sample_features(2, seed=0)
    with pytest.raises(ValueError, match=r"fidelity 30 .* allowed: \[25, 50, 75, 100\]"):
        minimize(fidelity_problem, DuckShaped(Batch(X, [25, 30])), 10)
    with pytest.raises(ValueError, match="no fidelity axis"):
        minimize(problem, DuckShaped(Batch(X, 100)), 10)


@pytest.mark.parametrize("make, match", [
    (lambda: MaxEvals(0), "n_evals"), (lambda: MaxEvals(2.5), "n_evals"), (lambda: MaxEvals(True), "n_evals"),
    (lambda: MaxTime(-1), "seconds"), (lambda: MaxTime(float("nan")), "seconds"), (lambda: MaxTime("3"), "seconds"),
    (lambda: MaxCost(0), "trainings"), (lambda: AnyOf(), "AnyOf"), (lambda: MaxEvals(3) | "x", "termination"),
])
def test_bad_terminations(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_bad_loop_arguments(problem):
    with pytest.raises(TypeError, match="termination"):
        minimize(problem, "rs", "100")
    for seed in (-1, 1.5, "0", None):
        with pytest.raises((ValueError, TypeError), match="seed"):
            minimize(problem, "rs", 10, seed=seed)
    with pytest.raises(TypeError, match="noise"):
        run(problem, "rs", 10, noise="False")


def test_batch_is_an_immutable_copy():
    X = np.zeros((2, 27), dtype=np.int64)
    b = Batch(X, 50)
    X[0, 0] = 7
    assert b.X[0, 0] == 0 and b.fidelity.tolist() == [50, 50]
    with pytest.raises(ValueError):
        b.X[0, 0] = 1
    with pytest.raises(AttributeError):
        b.X = X
    with pytest.raises(TypeError, match="fidelity"):
        Batch(X, [25.0, 50.0])
    with pytest.raises(ValueError, match="fidelity"):
        Batch(X, [25, 50, 75])
