"""Sweeps: no deadlock after native thread pools ran in the caller (issue 11), and bad arguments
caught before any run starts."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("moocore")

import hwgptbench  # noqa: E402
from hwgptbench.moo import runner  # noqa: E402
from hwgptbench.moo.runner import sweep  # noqa: E402

ROOT = Path(hwgptbench.__file__).resolve().parents[1]
PROBLEM = "s:-params,flops"

# An optimizer that runs xgboost's OpenMP thread pool, built (so the pool runs) in the parent when
# sweep checks its arguments, and again in every worker: a forked worker waits for ever on the
# pool's lock, copied locked from the parent (the hang issue 11 reports).
OMP_OPTIMIZER = textwrap.dedent("""
    import numpy as np
    import xgboost as xgb
    from hwgptbench.moo import Optimizer

    class XgbRandom(Optimizer):
        def __init__(self, problem, seed=None):
            super().__init__(problem, seed)
            Z = np.random.default_rng(0).random((256, 4))
            self.model = xgb.train({"nthread": 2}, xgb.DMatrix(Z, label=Z.sum(1)), 4)

        def _ask(self):
            self.model.predict(xgb.DMatrix(self.rng.random((256, 4)), nthread=2))
            return self.space.sample_features(5, seed=self.rng)

        def _tell(self, X, F):
            pass
""")

SCRIPT = textwrap.dedent("""
    from hwgptbench.moo import get_problem
    from hwgptbench.moo.runner import sweep

    if __name__ == "__main__":
        P = get_problem("s:-params,latency_ms@cpu_xeon_2c")
        P(P.space.sample_features(100, seed=0))        # the caller uses a surrogate first
        df = sweep(P.name, ["rs", "omp_optimizer:XgbRandom"], 2, 10, workers=2, progress=False)
        print("rows", len(df))
""")


def _run_with_deadline(cmd, cwd, seconds):
    """Run in its own process group; on timeout kill the group (workers included) and fail."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"hung: no answer within {seconds} s")
    return proc.returncode, out, err


def test_parallel_sweep_after_native_threads_does_not_hang(tmp_path):
    pytest.importorskip("xgboost")
    (tmp_path / "omp_optimizer.py").write_text(OMP_OPTIMIZER)
    (tmp_path / "script.py").write_text(SCRIPT)
    rc, out, err = _run_with_deadline([sys.executable, "script.py"], tmp_path, 120)
    assert rc == 0, err
    assert "rows 40" in out


def test_an_unguarded_script_gets_an_error_not_a_hang(tmp_path):
    (tmp_path / "script.py").write_text(f"from hwgptbench.moo.runner import sweep\n"
                                        f"sweep({PROBLEM!r}, ['rs'], 2, 5, workers=2, progress=False)\n")
    rc, out, err = _run_with_deadline([sys.executable, "script.py"], tmp_path, 120)
    assert rc != 0 and "__main__" in err


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(problems=[]), ValueError, "problems: expected at least one"),
    (dict(problems=[PROBLEM, PROBLEM]), ValueError, "problems: each may appear once"),
    (dict(problems=[3]), TypeError, "problems: expected str or Problem"),
    (dict(optimizers=[]), ValueError, "optimizers: expected at least one"),
    (dict(optimizers=["rs", "nope"]), ValueError, "optimizer: unknown 'nope'"),
    (dict(optimizers=["rs", "rs"]), ValueError, "optimizers: each may appear once"),
    (dict(seeds=0), ValueError, "seeds: expected an int >= 1"),
    (dict(seeds=[]), ValueError, "seeds: expected at least one"),
    (dict(seeds=1.5), TypeError, "seeds: expected int"),
    (dict(seeds="3"), TypeError, "seeds: expected int"),
    (dict(seeds=[0, "1"]), TypeError, "seeds: expected int"),
    (dict(seeds=[True]), TypeError, "seeds: expected int"),
    (dict(seeds=[0, -1]), ValueError, "seeds: expected an int >= 0"),
    (dict(seeds=[1, 1]), ValueError, "seeds: each may appear once"),
    (dict(budget=0), ValueError, "budget"),
    (dict(budget=2.0), TypeError, "budget"),
    (dict(options={"nsga": {"pop_size": 4}}), ValueError, r"options: \['nsga'\] name no optimizer"),
    (dict(options={"rs": 3}), TypeError, "options"),
    (dict(options={"rs": {"batch_size": 0}}), ValueError, "batch_size"),
    (dict(noise="False"), TypeError, "noise"),
    (dict(workers=0), ValueError, "workers"),
    (dict(backend="threads"), ValueError, "backend"),
    (dict(progress="no"), TypeError, "progress"),
])
def test_bad_arguments_fail_before_any_run(kwargs, error, match, monkeypatch):
    def no_work(task):
        raise AssertionError("a run started")
    monkeypatch.setattr(runner, "_task", no_work)
    args = dict(problems=PROBLEM, optimizers=["rs"], seeds=2, budget=5, workers=1, progress=False)
    with pytest.raises(error, match=match):
        sweep(**{**args, **kwargs})


@pytest.mark.slow
def test_cli_run_on_a_problem_without_shipped_bounds_does_not_hang(tmp_path):
    # the caller computes the bounds with a surrogate before the workers start (issue 11)
    rc, out, err = _run_with_deadline(
        [sys.executable, "-m", "hwgptbench.cli", "run", "--objectives", "flops,latency_ms@cpu_xeon_2c",
         "--budget", "10", "--seeds", "2", "--workers", "2", "--no-plots", "--quiet", "--out", "out"],
        tmp_path, 120)
    assert rc == 0, err
    assert (tmp_path / "out" / "results.csv").stat().st_size > 0
