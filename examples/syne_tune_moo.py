"""Two syne-tune schedulers on a hwgptbench problem, compared on simulated wall-clock time.

    pip install ".[moo,syne-tune]"
    python examples/syne_tune_moo.py [--out runs/syne_tune_moo] [--minutes 10] [--workers 4] [--seeds 2]

Multi-objective random search and MOREA (multi-objective regularized evolution) run on
``s:-params,latency_ms@cpu_xeon_2c`` with 4 asynchronous simulated workers for the same simulated
time. Each evaluation costs what profiling that architecture on the 2-core Xeon really took
(`hwgptbench.moo.sim_cost`, fitted to the table's timestamps), so the slow, large architectures
cost more. Printed and written: the hypervolume (hwgptbench's indicators, the problem's fixed
reference point) after 1/4, 1/2 and all of the time, IGD+ against the shipped reference front,
and each run's Pareto front in objective units. Any other syne-tune scheduler goes the same way;
on a problem with a training-fidelity axis, MOASHA/ASHA take ``time_attr="fidelity", max_t=100``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from syne_tune.optimizer.schedulers.single_fidelity_scheduler import SingleFidelityScheduler

from hwgptbench.moo.indicators import hv_curve, nondominated
from hwgptbench.moo.runner import final_indicators, objective_matrix, write_results
from hwgptbench.moo.syne_tune import HWGPTBlackbox, tune

PROBLEM = "s:-params,latency_ms@cpu_xeon_2c"


def schedulers(bb: HWGPTBlackbox, seed: int) -> dict:
    """Name -> a fresh syne-tune scheduler on the blackbox's configuration space."""
    kw = dict(config_space=bb.configuration_space, metrics=bb.metrics, random_seed=seed)
    return {
        "st-random": SingleFidelityScheduler(searcher="random_search", searcher_kwargs={"random_seed": seed}, **kw),
        "st-morea": SingleFidelityScheduler(searcher="regularized_evolution", **kw,
                                            searcher_kwargs={"random_seed": seed, "population_size": 50,
                                                             "sample_size": 10}),
    }


def hv_at(df: pd.DataFrame, problem, seconds) -> list[float]:
    """Hypervolume of what one run had reported by each simulated time."""
    F = objective_matrix(df, problem)
    n = np.searchsorted(df["sim_time_s"].to_numpy(), seconds, side="right")
    out = dict(zip(*hv_curve(F, problem.ref_point, np.unique(n[n > 0])))) if n.max() > 0 else {}
    return [out.get(k, 0.0) for k in n]


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/syne_tune_moo")
    ap.add_argument("--minutes", type=float, default=10.0, help="simulated wall-clock per run")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args(argv)
    out = Path(args.out)
    bb = HWGPTBlackbox(PROBLEM)
    P = bb.problem
    budget = 60.0 * args.minutes
    t0 = time.perf_counter()
    runs = []
    for seed in range(args.seeds):
        for name, scheduler in schedulers(bb, seed).items():
            runs.append(tune(bb, scheduler, n_workers=args.workers, max_wallclock_time=budget,
                             seed=seed, optimizer=name))
    df = pd.concat(runs, ignore_index=True)
    wall = time.perf_counter() - t0
    write_results(df, out / "results.csv")
    (out / "sim_cost.json").write_text(json.dumps(bb.cost.sources, indent=1))

    checkpoints = budget * np.array([0.25, 0.5, 1.0])
    rows = []
    for (name, seed), g in df.groupby(["optimizer", "seed"], sort=False):
        rows.append([name, seed, len(g), *hv_at(g, P, checkpoints)])
    hv = pd.DataFrame(rows, columns=["optimizer", "seed", "evaluations",
                                     *(f"hv@{t / 60:.1f}min" for t in checkpoints)])
    ind = final_indicators(df, problems=[P])
    hv["igd_plus"] = ind["igd_plus"].to_numpy()
    write_results(hv, out / "indicators.csv")
    fronts = pd.concat([g[nondominated(objective_matrix(g, P))] for _, g in df.groupby(["optimizer", "seed"])])
    write_results(fronts[["optimizer", "seed", "arch_id", *P.columns, "sim_time_s"]], out / "fronts.csv")

    print(f"{P.name}: {args.seeds} seeds x 2 schedulers, {args.workers} simulated workers, "
          f"{budget / 60:.0f} simulated minutes each; measurement cost: {bb.cost.sources['measure']['source']} "
          f"({bb.cost.sources['measure']['devices']['cpu_xeon_2c']['slope']:.2f} forward latencies per "
          f"architecture); hypervolume reference point {P.ref_point.tolist()} (normalised)")
    summary = hv.drop(columns="seed").groupby("optimizer", sort=False).agg(["mean", "std"])
    print(summary.round(4).to_string())
    for name, g in fronts[fronts["seed"] == 0].groupby("optimizer", sort=False):
        pts = g.drop_duplicates(list(P.columns)).sort_values("params")
        shown = pts.iloc[np.unique(np.linspace(0, len(pts) - 1, min(10, len(pts))).round().astype(int))]
        print(f"\n{name}, seed 0: Pareto front of {len(g)} architectures, {len(pts)} distinct points "
              f"({len(shown)} shown)")
        print(shown[[*P.columns, "arch_id"]].to_string(index=False))
    print(f"\nwrote {out}/results.csv, indicators.csv, fronts.csv, sim_cost.json in {wall:.1f} s")
    return df


if __name__ == "__main__":
    main()
