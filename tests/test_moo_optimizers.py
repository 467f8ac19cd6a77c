"""The ask/tell contract of every optimizer, determinism under a seed, and custom optimizers."""
import numpy as np
import pytest

pytest.importorskip("moocore")
pytest.importorskip("pymoo")

from hwgptbench.moo import get_problem, make_optimizer, optimizer_names  # noqa: E402
from hwgptbench.moo.runner import run  # noqa: E402
from hwgptbench.moo.testing import check_optimizer  # noqa: E402

PROBLEM = "s:-params,flops"
# small settings so that the model-based ones reach their model within three batches
FAST = {"rsbo": {"n_init": 5, "batch_size": 5, "n_candidates": 100},
        "lsbo": {"n_init": 5, "batch_size": 5, "n_candidates": 100},
        "ehvi": {"n_init": 5, "batch_size": 5, "n_candidates": 100, "n_top": 20},
        "optuna-tpe": {"batch_size": 5}, "optuna-nsga2": {"batch_size": 5}, "optuna-nsga3": {"batch_size": 5},
        "optuna-random": {"batch_size": 5}}
NAMES = [n for n in optimizer_names() if not n.startswith("optuna-") and n != "moasha"]  # moasha: own test
try:
    import optuna  # noqa: F401
    NAMES += [n for n in optimizer_names() if n.startswith("optuna-")]
except ImportError:
    pass


@pytest.fixture(scope="module")
def problem():
    return get_problem(PROBLEM)


def _trajectory(name, problem, seed, batches=2):
    opt = make_optimizer(name, problem, seed=seed, **FAST.get(name, {}))
    out = []
    for _ in range(batches):
        X = opt.ask()
        opt.tell(X, problem(X))
        out.append(X)
    return np.vstack(out)


@pytest.mark.parametrize("name", NAMES)
def test_every_shipped_optimizer_keeps_the_contract(name, problem):
    # ask/tell rules, no mutation, one batch in flight, same seed same run, seeds matter;
    # the model-based ones reach their model in the second batch
    check_optimizer(name, problem, batches=2 if name in FAST else 3, options=FAST.get(name))


def test_moasha_keeps_the_contract():
    from moo_fixtures import fidelity_problem
    check_optimizer("moasha", fidelity_problem(), batches=3, options={"batch_size": 8})   # rungs 25, 50


def test_unknown_and_missing_optimizers(problem):
    with pytest.raises(ValueError, match="allowed"):
        make_optimizer("simplex", problem)
    with pytest.raises(ValueError, match="fidelity"):
        make_optimizer("moasha", problem)
    with pytest.raises(ValueError, match="batch_size"):
        make_optimizer("rs", problem, batch_size=0)


def test_pymoo_algorithm_instance(problem):
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from hwgptbench.moo.optimizers import PymooOptimizer
    opt = PymooOptimizer(problem, seed=0, algorithm=NSGA2(pop_size=8, sampling=IntegerRandomSampling()))
    for _ in range(3):
        X = opt.ask()
        opt.tell(X, problem(X))


def _readme_example():
    """README's example of a user's optimizer, examples/greedy.py (one copy, loaded from the file)."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "examples" / "greedy.py"
    spec = importlib.util.spec_from_file_location("readme_greedy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


Greedy = _readme_example().Greedy         # importable as f"{__name__}:Greedy", as with --optimizer


def test_user_optimizer_plugs_into_the_runner(problem):
    name = f"{__name__}:Greedy"                         # by import path, as with --optimizer
    df = run(problem, name, budget=20, seed=0)
    assert len(df) == 20 and df["optimizer"].eq(name).all()
    check_optimizer(Greedy, problem)
    with pytest.raises(ValueError, match="module:Class"):
        make_optimizer("no_such_module:Opt", problem)
    with pytest.raises(TypeError, match="ask"):
        make_optimizer("numpy:ndarray", problem)


@pytest.mark.parametrize("name", ["nsga3", "moead", "smsemoa", "ehvi", "rsbo", "moasha"])
def test_three_objectives(name):
    P = get_problem("s:-params,flops,memory_MB_analytic")
    if name == "moasha":
        with pytest.raises(ValueError, match="fidelity"):
            make_optimizer(name, P)
        return
    X = _trajectory(name, P, seed=0)
    P.space.validate_features(X)


def test_monte_carlo_improvement_matches_exact():
    from hwgptbench.moo.indicators import hypervolume
    from hwgptbench.moo.optimizers.bayesian import _dominated_by
    rng = np.random.default_rng(0)
    ref = np.full(3, 1.1)
    front = rng.random((6, 3))
    P = rng.random((5, 3))
    U = rng.random((200_000, 3)) * 1.1                     # the box [0, 1.1]^3
    cell = 1.1 ** 3 / len(U)
    U = U[~_dominated_by(U, front)]
    est = cell * _dominated_by(U, P, count=True)
    exact = [hypervolume(np.vstack([front, p]), ref) - hypervolume(front, ref) for p in P]
    assert est == pytest.approx(exact, abs=0.01)
    brute = np.array([np.any(np.all(front <= u, axis=1)) for u in U[:500]])
    assert not brute.any()                                 # U keeps only non-dominated points


@pytest.mark.parametrize("name, kwargs, match", [
    ("rs", {"batch_size": 2.5}, "batch_size"), ("rs", {"seed": -1}, "seed"), ("rs", {"seed": 1.5}, "seed"),
    ("pls", {"n_init": "5"}, "n_init"), ("morea", {"population_size": 1}, "population_size"),
    ("morea", {"population_size": 10, "sample_size": 11}, "sample_size"), ("rsbo", {"beta": -1.0}, "beta"),
    ("lsbo", {"weights": ["1", "1"]}, "weights"), ("lsbo", {"weights": [np.nan, 1.0]}, "weights"),
    ("ehvi", {"n_mc": 0}, "n_mc"), ("nsga2", {"pop_size": 1}, "pop_size"),
    ("optuna-tpe", {"batch_size": True}, "batch_size"),
])
def test_bad_constructor_options_are_named(name, kwargs, match, problem):
    if name.startswith("optuna-"):
        pytest.importorskip("optuna")
    with pytest.raises((ValueError, TypeError), match=match):
        make_optimizer(name, problem, **kwargs)


def test_every_optimizer_gives_the_same_results_whatever_the_thread_settings(tmp_path):
    """Each optimizer, the same seed, in fresh processes with 1 and with 2 BLAS/OpenMP threads: the
    evaluated objectives are identical (reproduce's results must not depend on worker_threads)."""
    import os
    import subprocess
    import sys

    from hwgptbench.moo.optimizers import optimizer_names
    code = ("import hashlib, sys, warnings\nwarnings.simplefilter('ignore')\n"
            "from hwgptbench.moo.runner import run\n"
            "for name in sys.argv[1:]:\n"
            "    df = run('s:perplexity_hwgpt,latency_ms@h100', name, budget=60, seed=3)\n"
            "    f = df[[c for c in df.columns if c.startswith('f:')]].to_numpy()\n"
            "    print(name, hashlib.sha256(f.tobytes()).hexdigest())\n")
    names = [n for n in optimizer_names() if n != "moasha"]            # moasha needs fidelities
    out = {}
    for t in ("1", "2"):
        env = {**os.environ, **{k: t for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
        r = subprocess.run([sys.executable, "-c", code, *names], env=env, capture_output=True, text=True,
                           check=True, timeout=600)
        out[t] = r.stdout.splitlines()
    assert len(out["1"]) == len(names) and out["1"] == out["2"]
