"""MO-ASHA on a stand-in benchmark with a perplexity fidelity axis."""
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("moocore")

from hwgptbench.moo import get_problem, make_optimizer  # noqa: E402
from hwgptbench.moo.indicators import hypervolume  # noqa: E402
from hwgptbench.moo.runner import final_indicators, hv_curves, objective_matrix, run  # noqa: E402

from moo_fixtures import fidelity_problem  # noqa: E402


@pytest.fixture(scope="module")
def problem():
    return fidelity_problem()


def test_promotions_climb_the_rungs(problem):
    df = run(problem, "moasha", budget=120, seed=0, optimizer_options={"eta": 2})
    assert set(df["fidelity"]) == {25, 50, 75, 100}
    counts = df["fidelity"].value_counts()
    assert counts[25] > counts[50] > counts[100]                # successive halving
    # every configuration at a rung was evaluated at each lower rung first
    seen = {}
    for a, f in zip(df["arch_id"], df["fidelity"]):
        assert seen.get(a, 0) == (0 if f == 25 else {50: 25, 75: 50, 100: 75}[f])
        seen[a] = f
    assert np.all(np.diff(df["cost"]) > 0)
    # resumed training: total cost = sum over configurations of their highest fidelity
    assert df["cost"].iloc[-1] == pytest.approx(sum(seen.values()) / 100)


def test_promotion_picks_the_pareto_best(problem):
    opt = make_optimizer("moasha", problem, seed=1, batch_size=8, eta=2)
    b = opt.ask()                                                # a Batch: rows and their rungs
    X = b.X
    assert np.all(b.fidelity == 25)
    F = problem(X, fidelity=25)
    opt.tell(b, F)
    b2 = opt.ask()
    X2, promoted = b2.X, b2.fidelity == 50
    assert promoted.sum() == 4                                   # 8 // eta
    # Pareto ranks by peeling fronts (independent of moocore): promoted rows rank no worse
    rank, left, r = np.zeros(len(F), int), np.ones(len(F), bool), 0
    while left.any():
        idx = np.flatnonzero(left)
        dominated = [any(np.all(F[j] <= F[i]) and np.any(F[j] < F[i]) for j in idx) for i in idx]
        front = idx[~np.array(dominated)]
        rank[front], left[front], r = r, False, r + 1
    key = {x.tobytes(): k for x, k in zip(X, rank)}
    up = [key[x.tobytes()] for x in X2[promoted]]
    assert all(x.tobytes() in key for x in X2[promoted])       # promotions re-ask known configs
    rest = [k for x, k in key.items() if x not in {y.tobytes() for y in X2[promoted]}]
    assert max(up) <= min(rest)


def test_indicators_use_final_fidelity_only(problem):
    df = run(problem, "moasha", budget=60, seed=2)
    ind = final_indicators(df, problems=problem)
    full = df[df["fidelity"] == 100]
    assert ind["hv"].iloc[0] == pytest.approx(hypervolume(objective_matrix(full, problem), problem.ref_point))
    curve = hv_curves(df, problems=problem)
    assert curve["hv"].iloc[-1] == pytest.approx(ind["hv"].iloc[0])


def test_deterministic_and_needs_a_fidelity_axis(problem):
    a = run(problem, "moasha", budget=40, seed=3).drop(columns="optimizer_s")
    b = run(problem, "moasha", budget=40, seed=3).drop(columns="optimizer_s")
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="fidelity"):
        make_optimizer("moasha", get_problem("s:-params,flops"))
