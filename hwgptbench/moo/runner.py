"""Run optimizers on problems: one seeded run, or a sweep over problems x optimizers x seeds.

A run is `loop.minimize` with an evaluation budget, turned into tidy rows.

Results are tidy: one row per evaluation with problem, optimizer, seed, evaluation index, batch,
architecture id, each objective column in its units (maximised columns unsigned), the normalised
minimised objectives ``f:{objective}``, and the optimizer's own cumulative wall-clock time
(``optimizer_s``). Multi-fidelity optimizers (MO-ASHA) add ``fidelity`` (% of training); on a
problem with a fidelity axis every run has ``cost`` (simulated training time, in full trainings)
and ``cost_s`` (simulated training and scoring seconds, `sim_cost`). Indicators use only the rows
evaluated at the final fidelity.
"""
from __future__ import annotations

import numbers
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .indicators import hv_curve, hypervolume, igd_plus
from .loop import Result, at_final_fidelity, minimize
from .optimizers import make_optimizer
from .problem import Problem, get_problem
from .termination import MaxEvals
from ..files import replacing
from ..validation import check_bool, check_int, check_path

__all__ = ["run", "tidy", "sweep", "write_results", "read_results", "manifest_path", "objective_matrix", "final_indicators",
           "hv_curves", "final_rows"]


def run(problem, optimizer: str, budget: int, seed: int = 0, optimizer_options=None,
        noise: bool = False, ids: bool = True) -> pd.DataFrame:
    """One seeded optimisation run of `budget` evaluations; returns the tidy result rows.

    The last batch may be larger than the remaining budget: it is evaluated and told in full (so
    the optimizer sees a complete batch), but only the first `budget` evaluations are recorded.
    """
    budget = check_int(budget, "budget", min_value=1)
    noise, ids = check_bool(noise, "noise"), check_bool(ids, "ids")
    if isinstance(problem, str):
        P = get_problem(problem, noise=noise)
    else:
        P = get_problem(problem)
        if noise and not P.noise:
            raise ValueError("noise: a Problem object carries its own noise setting; build it with "
                             "noise=True (or pass the problem's name)")
    res = minimize(P, optimizer, MaxEvals(budget), seed=seed, options=optimizer_options)
    return tidy(res, limit=budget, ids=ids)


def tidy(result: Result, limit: int | None = None, ids: bool = True) -> pd.DataFrame:
    """The tidy rows (see the module docstring) of a `minimize` result, the first `limit` of them."""
    P, n = result.problem, len(result.X) if limit is None else min(limit, len(result.X))
    df = pd.DataFrame({"problem": P.name, "optimizer": result.optimizer, "seed": result.seed,
                       "eval": np.arange(n), "batch": result.batch[:n]})
    if ids:
        df["arch_id"] = [a.id for a in P.space.decode(result.X[:n])]
    for j, col in enumerate(P.columns):
        df[col] = result.R[:n, j] * P.signs[j]
    for j, obj in enumerate(P.objectives):
        df[f"f:{obj}"] = result.F[:n, j]
    df["optimizer_s"] = result.optimizer_s[:n]
    if result.multi_fidelity:
        fid = result.fidelity[:n]
        df["fidelity"] = fid if np.isnan(fid).any() else fid.astype(np.int64)
    if P.fidelities:                                   # one simulated clock for every optimizer
        df["cost"] = result.cost[:n]
        df["cost_s"] = result.cost_s[:n]
    return df


def _task(args):
    problem, noise, optimizer, options, budget, seed = args
    return run(problem, optimizer, budget, seed, options, noise)


def sweep(problems, optimizers, seeds, budget: int, options=None, noise: bool = False,
          workers: int | None = None, backend: str = "process", progress: bool = True,
          worker_threads: int = 1) -> pd.DataFrame:
    """All (problem, optimizer, seed) runs, in parallel processes by default.

    `seeds`: a count n (seeds 0..n-1) or a list of distinct ints >= 0. `options` maps an optimizer
    name to its constructor options. Every argument is checked, and every problem and optimizer
    built once here, before any run starts. `workers=1` runs everything in this process;
    `backend="ray"` sends the runs to a Ray cluster (``ray.init()`` must reach it). Worker
    processes are *spawned*, never forked: a forked copy of a process whose native thread pools
    (xgboost's OpenMP) have run can wait for ever on a lock held by a thread that was not copied.
    So, as with any spawned multiprocessing, a script must call `sweep` under
    ``if __name__ == "__main__":``. Each worker's native thread pools (BLAS, OpenMP) get
    `worker_threads` threads (default 1): workers are the parallelism, and a full pool in every
    worker oversubscribes the cores (one problem took 117 s instead of 34 s on 2 cores).
    """
    tasks = _tasks(problems, optimizers, seeds, budget, options, noise)
    workers = None if workers is None else check_int(workers, "workers", min_value=1)
    worker_threads = check_int(worker_threads, "worker_threads", min_value=1, max_value=os.cpu_count() or 1)
    if backend not in ("process", "ray"):
        raise ValueError(f"backend: expected 'process' or 'ray', got {backend!r}")
    bar = _progress(len(tasks), check_bool(progress, "progress"))
    if backend == "ray":
        out = _sweep_ray(tasks, bar)
    elif workers == 1 or len(tasks) == 1:
        out = []
        for t in tasks:
            out.append(_task(t))
            bar.update()
    else:
        out = _sweep_processes(tasks, min(workers or os.cpu_count() or 1, len(tasks)), bar, worker_threads)
    bar.close()
    return pd.concat(out, ignore_index=True)


def _tasks(problems, optimizers, seeds, budget, options, noise) -> list[tuple]:
    """The runs of a sweep, after checking every argument and building every problem and optimizer
    once (so mistakes surface here, not in a worker)."""
    problems = _distinct(problems, "problems", (str, Problem))
    optimizers = _distinct(optimizers, "optimizers", (str, type))      # a name, 'module:Class' or a class
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = list(range(check_int(seeds, "seeds", min_value=1)))
    else:
        seeds = [check_int(s, "seeds", min_value=0) for s in _distinct(seeds, "seeds", (numbers.Integral,))]
    budget, noise = check_int(budget, "budget", min_value=1), check_bool(noise, "noise")
    options = {} if options is None else options
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise TypeError(f"options: expected {{optimizer name: {{option: value}}}}, got {options!r}")
    unknown = sorted(set(options) - set(optimizers))
    if unknown:
        raise ValueError(f"options: {unknown} name no optimizer of this sweep; optimizers: {optimizers}")
    for p in problems:
        P = get_problem(p, noise=noise) if isinstance(p, str) else get_problem(p)
        for o in optimizers:
            make_optimizer(o, P, seed=0, **options.get(o, {}))
    return [(p, noise, o, dict(options.get(o, {})), budget, s)
            for p in problems for o in optimizers for s in seeds]


def _distinct(values, field, types) -> list:
    """A non-empty list of distinct values of the given types (one str stands for a list of one)."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        values = [values]
    values = list(values)
    allowed = " or ".join({numbers.Integral: "int", type: "class (or 'module:Class')"}.get(t, t.__name__)
                          for t in types)
    if not values:
        raise ValueError(f"{field}: expected at least one {allowed}, got none")
    for v in values:
        if not isinstance(v, types) or isinstance(v, bool):
            raise TypeError(f"{field}: expected {allowed} values, got {v!r} ({type(v).__name__})")
    keys = [getattr(v, "name", v) for v in values]
    twice = sorted({str(k) for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"{field}: each may appear once; repeated: {twice}")
    return values


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def _sweep_processes(tasks, workers, bar, threads: int = 1) -> list:
    """Runs in spawned worker processes, results in task order; the first failure cancels the rest.
    The workers inherit `threads` in the native libraries' thread variables (read when a worker
    imports numpy); this process's own environment is restored afterwards."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: str(threads) for k in _THREAD_VARS})
    try:
        return _run_pool(tasks, workers, bar)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_pool(tasks, workers, bar) -> list:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as ex:
        futures = [ex.submit(_task, t) for t in tasks]
        try:
            for f in as_completed(futures):
                f.result()
                bar.update()
        except BrokenProcessPool:
            raise RuntimeError("sweep: a worker process died before finishing its run. In a script, "
                               "call sweep under `if __name__ == \"__main__\":` (workers are spawned "
                               "and import the script); or use workers=1") from None
        finally:
            for f in futures:
                f.cancel()
    return [f.result() for f in futures]


def _sweep_ray(tasks, bar):
    try:
        import ray
    except ImportError:
        raise ImportError("backend 'ray' needs ray: pip install 'hwgptbench[ray]'") from None
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(_task)
    refs = [remote.remote(t) for t in tasks]
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        bar.update(len(done))
    return ray.get(refs)


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def _progress(total, enabled):
    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc="runs", unit="run")


# ---- files ---------------------------------------------------------------------------------------
def write_results(df: pd.DataFrame, path) -> Path:
    """CSV or parquet by extension (parquet needs pyarrow); written atomically, with its manifest
    (`manifest_path`: the file's sha256, its rows and the versions that made it), which
    `read_results(verify=True)` and the leaderboard check: results are evidence."""
    import hashlib
    import json
    import platform

    from .. import __version__
    path = check_path(path, "path")
    if path.suffix not in (".csv", ".parquet"):
        raise ValueError(f"path: expected a .csv or .parquet file, got {path.name!r}")
    with replacing(path) as tmp:
        if path.suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            try:
                df.to_parquet(tmp, index=False)
            except ImportError as e:
                raise ImportError(f"parquet output needs pyarrow ({e}); use a .csv path") from None
    manifest = {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "rows": len(df),
                "versions": {"hwgptbench": __version__, "python": platform.python_version(),
                             "numpy": np.__version__, "pandas": pd.__version__}}
    with replacing(manifest_path(path)) as tmp:
        Path(tmp).write_text(json.dumps(manifest, indent=1) + "\n")
    return path


def manifest_path(path) -> Path:
    """The manifest beside a results file: ``results.csv`` -> ``results.csv.manifest.json``."""
    path = Path(path)
    return path.with_name(path.name + ".manifest.json")


def read_results(path, verify: bool = False) -> pd.DataFrame:
    """A results file; with `verify`, checked against its manifest first (an edited, truncated or
    replaced file, or one without a manifest, is a ValueError naming the file)."""
    import hashlib
    import json

    path = Path(path)
    if verify:
        mp = manifest_path(path)
        try:
            manifest = json.loads(mp.read_text())
            want = manifest["sha256"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"RESULTS: {path} has no readable manifest {mp.name} ({type(e).__name__}); "
                             "results written by `hwgptbench run`/`reproduce` carry one, so it cannot be "
                             "verified") from None
        if hashlib.sha256(path.read_bytes()).hexdigest() != want:
            raise ValueError(f"RESULTS: {path} does not match its manifest {mp.name} (edited, truncated or "
                             "replaced since it was written); refusing to rank it")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise ValueError(f"RESULTS: {path} is not a readable results table ({type(e).__name__}: {e})") from None


# ---- indicators over result tables -------------------------------------------------------------------
def objective_matrix(df: pd.DataFrame, problem) -> np.ndarray:
    """Normalised objectives (n, n_obj) of result rows, in the problem's objective order."""
    P = get_problem(problem)
    return df[[f"f:{o}" for o in P.objectives]].to_numpy(dtype=np.float64, copy=True)   # writable


def final_indicators(df: pd.DataFrame, problems=None) -> pd.DataFrame:
    """Final hypervolume (and IGD+ where a reference front ships) per problem, optimizer, seed.

    `problems`: Problem objects to use instead of rebuilding them from their names."""
    rows, problems = [], _known(problems)
    for (prob, opt, seed), g in df.groupby(["problem", "optimizer", "seed"], sort=False):
        P = problems[prob] if prob in problems else problems.setdefault(prob, get_problem(prob))
        F = objective_matrix(g, P)[final_rows(g, P)]
        row = {"problem": prob, "optimizer": opt, "seed": seed, "n_evals": len(g),
               "hv": hypervolume(F, P.ref_point) if len(F) else 0.0}
        row["igd_plus"] = igd_plus(F, P.reference_front) if P.shipped and len(F) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def hv_curves(df: pd.DataFrame, n_points: int = 50, problems=None) -> pd.DataFrame:
    """Hypervolume after n evaluations at up to `n_points` checkpoints, per run (tidy)."""
    rows, problems = [], _known(problems)
    for (prob, opt, seed), g in df.groupby(["problem", "optimizer", "seed"], sort=False):
        P = problems[prob] if prob in problems else problems.setdefault(prob, get_problem(prob))
        g = g.sort_values("eval")
        n = len(g)
        at = np.unique(np.linspace(1, n, min(n_points, n)).round().astype(np.int64))
        F = objective_matrix(g, P)
        F[~final_rows(g, P)] = P.ref_point              # lower-fidelity rows add no volume
        at, hv = hv_curve(F, P.ref_point, at)
        rows.append(pd.DataFrame({"problem": prob, "optimizer": opt, "seed": seed, "n_evals": at, "hv": hv}))
    return pd.concat(rows, ignore_index=True)


def final_rows(g: pd.DataFrame, P) -> np.ndarray:
    """Rows evaluated at the final fidelity (all rows of single-fidelity runs)."""
    return at_final_fidelity(g["fidelity"] if "fidelity" in g else np.full(len(g), np.nan), P)


def _known(problems) -> dict:
    if problems is None:
        return {}
    if not isinstance(problems, (list, tuple, dict)):
        problems = [problems]
    return dict(problems) if isinstance(problems, dict) else {P.name: P for P in problems}
