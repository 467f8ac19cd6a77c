"""Runner (tidy results, parallel = serial), files, the CLI and reproduce."""
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("moocore")
pytest.importorskip("pymoo")

from hwgptbench import cost  # noqa: E402
from hwgptbench.cli import main  # noqa: E402
from hwgptbench.moo import get_problem  # noqa: E402
from hwgptbench.moo.indicators import hypervolume  # noqa: E402
from hwgptbench.moo.reproduce import END, START, _replace_section, ranking_table  # noqa: E402
from hwgptbench.moo.runner import (final_indicators, hv_curves, objective_matrix, read_results,  # noqa: E402
                                   run, sweep, write_results)
from hwgptbench.space import Arch, get_space  # noqa: E402

PROBLEM = "s:-params,flops"


def test_run_is_tidy_and_true_to_the_cost_model():
    df = run(PROBLEM, "nsga2", budget=45, seed=1, optimizer_options={"pop_size": 20})
    assert len(df) == 45 and df["eval"].tolist() == list(range(45))
    assert {"problem", "optimizer", "seed", "batch", "arch_id", "params", "flops", "f:-params", "f:flops",
            "optimizer_s"} <= set(df.columns)
    X = get_space("s").encode([Arch.from_id(a) for a in df["arch_id"]])
    assert np.array_equal(df["params"].to_numpy(), cost.params(X, "s").astype(float))
    assert np.all(np.diff(df["optimizer_s"]) >= 0)
    with pytest.raises(ValueError, match="budget"):
        run(PROBLEM, "rs", budget=0)


def test_parallel_sweep_equals_serial():
    a = sweep(PROBLEM, ["rs", "pls"], 2, 30, workers=1, progress=False)
    b = sweep(PROBLEM, ["rs", "pls"], 2, 30, workers=2, progress=False)
    pd.testing.assert_frame_equal(a.drop(columns="optimizer_s"), b.drop(columns="optimizer_s"))
    with pytest.raises(ValueError, match="optimizer"):
        sweep(PROBLEM, ["nope"], 1, 10, workers=1, progress=False)


def test_files_and_indicators(tmp_path):
    df = sweep(PROBLEM, ["rs"], 2, 25, workers=1, progress=False)
    path = write_results(df, tmp_path / "r.csv")
    back = read_results(path)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    with pytest.raises(ValueError, match="csv"):
        write_results(df, tmp_path / "r.txt")
    P = get_problem(PROBLEM)
    ind = final_indicators(df)
    for _, row in ind.iterrows():
        F = objective_matrix(df[df["seed"] == row["seed"]], P)
        assert row["hv"] == pytest.approx(hypervolume(F, P.ref_point))
        assert row["igd_plus"] > 0
    curves = hv_curves(df)
    last = curves.groupby("seed").tail(1).set_index("seed")["hv"]
    assert last.to_numpy() == pytest.approx(ind.set_index("seed")["hv"].to_numpy())


def test_cli_run_writes_results_and_figures(tmp_path, capsys):
    rc = main(["run", "--space", "s", "--objectives=-params,flops", "--optimizer", "nsga2,rs",
               "--budget", "40", "--seeds", "2", "--workers", "1", "--quiet", "--out", str(tmp_path),
               "--option", "nsga2.pop_size=10"])
    assert rc == 0
    for name in ("results.csv", "final_indicators.csv", "pareto_front.png", "hv_curve.png", "attainment.png"):
        assert (tmp_path / name).stat().st_size > 0
    df = pd.read_csv(tmp_path / "results.csv")
    assert len(df) == 2 * 2 * 40
    assert main(["run", "--objectives", "perplexity,flops", "--quiet", "--workers", "1"]) == 2
    assert "perplexity" in capsys.readouterr().err


def test_ranking_table_and_section_replacement(tmp_path):
    ind = pd.DataFrame({"problem": ["p"] * 4, "optimizer": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1],
                        "hv": [0.5, 0.7, 0.2, 0.4]})
    table = ranking_table(ind)
    assert "| a | 0.6000 +- 0.1000 (1) |" in table and "| b | 0.3000 +- 0.1000 (2) |" in table
    md = tmp_path / "benchmarks.md"
    md.write_text("# Benchmarks\n\nother section\n")
    _replace_section(md, f"{START}\nfirst\n{END}")
    _replace_section(md, f"{START}\nsecond\n{END}")
    text = md.read_text()
    assert "other section" in text and "second" in text and "first" not in text
    assert text.count(START) == 1


def test_reproduce_small(tmp_path):
    from hwgptbench.moo.reproduce import reproduce
    text = reproduce(out=tmp_path, budget=30, seeds=2, workers=1, problems=["s:-params,flops"],
                     optimizers=("rs", "pls", "nsga2"), progress=False)
    assert "| nsga2 |" in text and "s:-params,flops" in text
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert any("fronts" in p for p in pngs) and any("_hv" in p for p in pngs)
    assert (tmp_path / "ranking.md").exists()


def test_ranking_table_marks_runs_missing_on_a_problem():
    ind = pd.DataFrame({"problem": ["p", "p", "q"], "optimizer": ["a", "b", "a"], "seed": [0, 0, 0],
                        "hv": [0.5, 0.4, 0.3]})
    assert "| b | 0.4000 +- nan (2) | not run | 2.00 |" in ranking_table(ind)


def test_worker_processes_get_one_native_thread_each(monkeypatch):
    # a full BLAS/OpenMP pool in every worker oversubscribes the cores (issue 22: 117 s vs 34 s)
    import os

    from hwgptbench.moo import runner
    seen = {}
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)

    def fake_pool(tasks, workers, bar):
        seen.update({k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
        return []
    monkeypatch.setattr(runner, "_run_pool", fake_pool)
    assert runner._sweep_processes([], 2, None, threads=1) == []
    assert seen == {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}       # what spawned workers inherit
    assert os.environ["OMP_NUM_THREADS"] == "7" and "OPENBLAS_NUM_THREADS" not in os.environ   # restored
    with pytest.raises(ValueError, match="worker_threads"):
        runner.sweep("s:-params,flops", "rs", 1, 10, worker_threads=0)
