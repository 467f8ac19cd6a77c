"""Run optimizers on problems: one seeded run, or a sweep over problems x optimizers x seeds.

Results are tidy: one row per evaluation with problem, optimizer, seed, evaluation index, batch,
architecture id, each objective column in its units (maximised columns unsigned), the normalised
minimised objectives ``f:{objective}``, and the optimizer's own cumulative wall-clock time
(``optimizer_s``). Multi-fidelity optimizers (MO-ASHA) add ``fidelity`` (% of training) and
``cost`` (simulated training time, in full trainings); their indicators use only the rows
evaluated at the final fidelity.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .indicators import hv_curve, hypervolume, igd_plus
from .optimizers import make_optimizer
from .problem import get_problem

__all__ = ["run", "sweep", "write_results", "read_results", "objective_matrix", "final_indicators",
           "hv_curves"]


def run(problem, optimizer: str, budget: int, seed: int = 0, optimizer_options=None,
        noise: bool = False, ids: bool = True) -> pd.DataFrame:
    """One seeded optimisation run of `budget` evaluations; returns the tidy result rows.

    The last batch may be larger than the remaining budget: it is evaluated and told in full (so
    the optimizer sees a complete batch), but only the first `budget` evaluations are recorded.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget: expected an int >= 1, got {budget!r}")
    P = get_problem(problem, noise=noise) if isinstance(problem, str) else problem
    opt = make_optimizer(optimizer, P, seed=seed, **dict(optimizer_options or {}))
    eval_rng = np.random.default_rng([int(seed), 7919])      # noise draws, independent of the optimizer
    multi = getattr(opt, "multi_fidelity", False)
    Xs, Rs, batches, clock, fids = [], [], [], [], []
    n, b, spent = 0, 0, 0.0
    while n < budget:
        t0 = time.perf_counter()
        X = opt.ask()
        spent += time.perf_counter() - t0
        if len(X) == 0:
            raise RuntimeError(f"{optimizer}: ask() returned no architectures")
        seed_b = int(eval_rng.integers(2 ** 63 - 1)) if P.noise else None
        if multi:                        # each row at the training fidelity the optimizer chose
            fid = np.asarray(opt.asked_fidelity)
            R = np.empty((len(X), P.n_obj))
            for f in np.unique(fid):
                R[fid == f] = P.raw(X[fid == f], seed=seed_b, fidelity=int(f))
            fids.append(fid)
        else:
            R = P.raw(X, seed=seed_b)
        t0 = time.perf_counter()
        opt.tell(X, P.normalise(R))
        spent += time.perf_counter() - t0
        Xs.append(X)
        Rs.append(R)
        batches.append(np.full(len(X), b))
        clock.append(np.full(len(X), spent))
        n += len(X)
        b += 1
    X = np.vstack(Xs)[:budget]
    R = np.vstack(Rs)[:budget]
    df = pd.DataFrame({"problem": P.name, "optimizer": optimizer, "seed": int(seed),
                       "eval": np.arange(budget), "batch": np.concatenate(batches)[:budget]})
    if ids:
        df["arch_id"] = [a.id for a in P.space.decode(X)]
    for j, (obj, col) in enumerate(zip(P.objectives, P.columns)):
        df[col] = R[:, j] * P.signs[j]
    F = P.normalise(R)
    for j, obj in enumerate(P.objectives):
        df[f"f:{obj}"] = F[:, j]
    df["optimizer_s"] = np.concatenate(clock)[:budget]
    if multi:
        # fidelity in % of training; cost: simulated training time so far, in full trainings,
        # when a promoted configuration resumes from its previous rung
        fid = np.concatenate(fids)[:budget]
        df["fidelity"] = fid
        prev, step = {}, np.empty(budget)
        for i, (a, f) in enumerate(zip(df["arch_id"] if ids else map(bytes, X), fid)):
            step[i] = (f - prev.get(a, 0)) / 100.0
            prev[a] = f
        df["cost"] = np.cumsum(step)
    return df


def _task(args):
    problem, noise, optimizer, options, budget, seed = args
    return run(problem, optimizer, budget, seed, options, noise)


def sweep(problems, optimizers, seeds, budget: int, options=None, noise: bool = False,
          workers: int | None = None, backend: str = "process", progress: bool = True) -> pd.DataFrame:
    """All (problem, optimizer, seed) runs, in parallel processes by default.

    `options` maps an optimizer name to its constructor options. `workers=1` runs everything in
    this process; `backend="ray"` sends the runs to a Ray cluster (``ray.init()`` must reach it).
    """
    problems = [problems] if isinstance(problems, str) else list(problems)
    optimizers = [optimizers] if isinstance(optimizers, str) else list(optimizers)
    seeds = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else list(seeds)
    for p in problems:                     # fail early (in this process) on a bad problem or name
        P = get_problem(p)
        for o in optimizers:
            make_optimizer(o, P, seed=0, **dict((options or {}).get(o, {})))
    tasks = [(p, noise, o, dict((options or {}).get(o, {})), budget, s)
             for p in problems for o in optimizers for s in seeds]
    if backend not in ("process", "ray"):
        raise ValueError(f"backend: expected 'process' or 'ray', got {backend!r}")
    bar = _progress(len(tasks), progress)
    out = []
    if backend == "ray":
        out = _sweep_ray(tasks, bar)
    elif workers == 1 or len(tasks) == 1:
        for t in tasks:
            out.append(_task(t))
            bar.update()
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        workers = workers or os.cpu_count() or 1
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as ex:
            futures = [ex.submit(_task, t) for t in tasks]
            for f in as_completed(futures):
                bar.update()
            out = [f.result() for f in futures]            # task order, not completion order
    bar.close()
    return pd.concat(out, ignore_index=True)


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
    """CSV or parquet by extension (parquet needs pyarrow); written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    if path.suffix == ".csv":
        df.to_csv(tmp, index=False)
    elif path.suffix == ".parquet":
        try:
            df.to_parquet(tmp, index=False)
        except ImportError as e:
            raise ImportError(f"parquet output needs pyarrow ({e}); use a .csv path") from None
    else:
        raise ValueError(f"path: expected a .csv or .parquet file, got {path.name!r}")
    os.replace(tmp, path)
    return path


def read_results(path) -> pd.DataFrame:
    path = Path(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


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
        F = objective_matrix(g, P)[_final(g, P)]
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
        F[~_final(g, P)] = P.ref_point              # lower-fidelity rows add no volume
        at, hv = hv_curve(F, P.ref_point, at)
        rows.append(pd.DataFrame({"problem": prob, "optimizer": opt, "seed": seed, "n_evals": at, "hv": hv}))
    return pd.concat(rows, ignore_index=True)


def _final(g: pd.DataFrame, P) -> np.ndarray:
    """Rows evaluated at the final fidelity (all rows of single-fidelity runs)."""
    if "fidelity" not in g or not g["fidelity"].notna().any():
        return np.ones(len(g), dtype=bool)
    top = max(P.fidelities) if P.fidelities else g["fidelity"].max()
    return (g["fidelity"].isna() | (g["fidelity"] == top)).to_numpy()


def _known(problems) -> dict:
    if problems is None:
        return {}
    if not isinstance(problems, (list, tuple, dict)):
        problems = [problems]
    return dict(problems) if isinstance(problems, dict) else {P.name: P for P in problems}
