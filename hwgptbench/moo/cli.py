"""`hwgptbench run` (an optimisation sweep), `hwgptbench reproduce` (the baseline study on a
benchmark suite) and `hwgptbench leaderboard` (ranking suite results)."""
from __future__ import annotations

import json
from pathlib import Path

from ..space import SPACES


def _options(pairs):
    """'nsga2.pop_size=50' -> {'nsga2': {'pop_size': 50}} (values parsed as JSON where they can be)."""
    out: dict = {}
    for p in pairs or []:
        if "=" not in p or "." not in p.split("=", 1)[0]:
            raise ValueError(f"--option: expected OPTIMIZER.NAME=VALUE, got {p!r}")
        key, value = p.split("=", 1)
        opt, name = key.split(".", 1)
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
        out.setdefault(opt, {})[name] = value
    return out


def cmd_run(args) -> int:
    import importlib.util

    from . import runner
    from .problem import get_problem
    if args.format == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ValueError("--format parquet needs pyarrow (pip install pyarrow); or use --format csv")
    P = get_problem(args.space, args.objectives, noise=args.noise)
    optimizers = [o.strip() for o in args.optimizer.split(",") if o.strip()]
    out = Path(args.out) if args.out else Path("runs") / P.name.replace(":", "_").replace(",", "_")
    df = runner.sweep(P.name, optimizers, range(args.seed, args.seed + args.seeds), args.budget,
                      options=_options(args.option), noise=args.noise, workers=args.workers,
                      backend=args.backend, progress=not args.quiet)
    results = runner.write_results(df, out / f"results.{args.format}")
    ind = runner.final_indicators(df)
    ind.to_csv(out / "final_indicators.csv", index=False)
    summary = ind.groupby("optimizer", sort=False)[["hv", "igd_plus"]].agg(["mean", "sem"])
    print(f"{P.name}: {args.budget} evaluations x {args.seeds} seeds -> {results}")
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    if not args.no_plots:
        from . import plots
        curves = runner.hv_curves(df)
        curves.to_csv(out / "hv_curves.csv", index=False)
        written = [plots.save(plots.plot_fronts(df, P), out / "pareto_front.png"),
                   plots.save(plots.plot_hv_curves(df, P, curves), out / "hv_curve.png")]
        if args.seeds > 1:
            written.append(plots.save(plots.plot_attainment(df, P), out / "attainment.png"))
        print("figures: " + ", ".join(map(str, written)))
    return 0


def cmd_reproduce(args) -> int:
    from .reproduce import reproduce
    reproduce(out=args.out, budget=args.budget, seeds=args.seeds, workers=args.workers,
              benchmarks_md=args.benchmarks_md, problems=args.problems, progress=not args.quiet,
              split=args.split, suite=args.suite)
    return 0


def cmd_leaderboard(args) -> int:
    from .leaderboard import leaderboard
    print(leaderboard(args.results, out=args.out, split=args.split, alpha=args.alpha))
    return 0


def register(sub) -> None:
    from .optimizers import optimizer_names
    r = sub.add_parser("run", help="run multi-objective optimizers on a problem (seeds in parallel)",
                       description="Objectives are benchmark columns, all minimised; prefix one with "
                                   "'-' to maximise it (write --objectives=-params,flops).")
    r.add_argument("--space", default="s", choices=sorted(SPACES))
    r.add_argument("--objectives", required=True, help="comma-separated columns, e.g. -params,flops")
    r.add_argument("--optimizer", default="nsga2",
                   help=f"one or more (comma-separated) of {', '.join(optimizer_names())}, or your "
                        "own as module:Class (the module on the Python path or in the current "
                        "directory) (default: nsga2)")
    r.add_argument("--budget", type=int, default=1000, help="evaluations per run")
    r.add_argument("--seeds", type=int, default=1, help="number of seeds (runs per optimizer)")
    r.add_argument("--seed", type=int, default=0, help="first seed")
    r.add_argument("--option", action="append", metavar="OPT.NAME=VALUE",
                   help="optimizer constructor option, e.g. nsga2.pop_size=100 (repeatable)")
    r.add_argument("--noise", action="store_true", help="noisy surrogate draws (seeded by the run seed)")
    r.add_argument("--workers", type=int, default=None,
                   help="parallel (spawned) worker processes; 1 runs in this process (default: all cores)")
    r.add_argument("--backend", choices=("process", "ray"), default="process")
    r.add_argument("--out", default=None, help="output folder (default: runs/<problem>)")
    r.add_argument("--format", choices=("csv", "parquet"), default="csv")
    r.add_argument("--no-plots", action="store_true")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_run)

    p = sub.add_parser("reproduce", help="run the baselines on a benchmark suite's problems; figures "
                                         "and leaderboards")
    p.add_argument("--out", default="runs/reproduce")
    p.add_argument("--split", choices=("dev", "test", "all"), default="all",
                   help="the suite's problems for tuning (dev), for reporting (test), or both")
    p.add_argument("--suite", default=None, help="suite version (default: the newest)")
    p.add_argument("--budget", type=int, default=None, help="default: the suite's (200)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the suite's, 10)")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--problems", nargs="*", default=None, help="default: all of the split's")
    p.add_argument("--benchmarks-md", default=None,
                   help="also replace the reproduce section of this markdown file (e.g. benchmarks.md)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_reproduce)

    b = sub.add_parser("leaderboard", help="rank optimizers across a suite: mean ranks, Friedman "
                                           "test, critical-difference diagram",
                       description="RESULTS: folders (or their results.csv) written by "
                                   "`hwgptbench reproduce`, all of one suite version.")
    b.add_argument("results", nargs="+", metavar="RESULTS")
    b.add_argument("--split", choices=("dev", "test"), default=None, help="default: all in RESULTS")
    b.add_argument("--out", default=None, help="also write leaderboard_<split>.md and "
                                               "cd_diagram_<split>.png here")
    b.add_argument("--alpha", type=float, default=0.05, help="level of the Nemenyi test")
    b.set_defaults(func=cmd_leaderboard)
