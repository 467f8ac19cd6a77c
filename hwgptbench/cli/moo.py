"""`hwgptbench run` (an optimisation sweep), `hwgptbench reproduce` (the baseline study on a
benchmark suite) and `hwgptbench leaderboard` (ranking suite results)."""
from __future__ import annotations

import json
from pathlib import Path

from ..space import SPACES
from .options import count, positive, require


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
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise ValueError(f"--out: {str(out)!r} is a file; expected an output folder")
    require("moocore", *(("pyarrow",) if args.format == "parquet" else ()),
            *(("ray",) if args.backend == "ray" else ()), *(() if args.no_plots else ("matplotlib",)))
    from ..moo import runner
    from ..moo.problem import get_problem

    P = get_problem(args.space, args.objectives, noise=args.noise)
    optimizers = [o.strip() for o in args.optimizer.split(",") if o.strip()]
    out = out or Path("runs") / P.name.replace(":", "_").replace(",", "_")
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
        from ..moo import plots
        curves = runner.hv_curves(df)
        curves.to_csv(out / "hv_curves.csv", index=False)
        written = [plots.save(plots.plot_fronts(df, P), out / "pareto_front.png"),
                   plots.save(plots.plot_hv_curves(df, P, curves), out / "hv_curve.png")]
        if args.seeds > 1:
            written.append(plots.save(plots.plot_attainment(df, P), out / "attainment.png"))
        print("figures: " + ", ".join(map(str, written)))
    return 0


def cmd_reproduce(args) -> int:
    require("moocore", "matplotlib", "scipy")
    from ..moo.reproduce import BASELINES, reproduce
    for o in args.optimizer:
        if ":" not in o:
            raise ValueError(f"--optimizer: {o!r}: expected your optimizer as 'module:Class' (the baselines "
                             f"{list(BASELINES)} always run)")
    reproduce(out=args.out, budget=args.budget, seeds=args.seeds, workers=args.workers,
              benchmarks_md=args.benchmarks_md, problems=args.problems, progress=not args.quiet,
              split=args.split, suite=args.suite, optimizers=tuple(BASELINES) + tuple(args.optimizer))
    return 0


def cmd_leaderboard(args) -> int:
    require("scipy", *(("matplotlib",) if args.out else ()))
    from ..moo.leaderboard import leaderboard
    print(leaderboard(args.results, out=args.out, split=args.split, alpha=args.alpha))
    return 0


def add_run(r) -> None:
    from ..moo.optimizers import optimizer_names

    r.description = ("Objectives are benchmark columns, all minimised; prefix one with '-' to maximise it "
                     "(write --objectives=-params,flops).")
    r.add_argument("--space", default="s", choices=sorted(SPACES), help="search space")
    r.add_argument("--objectives", required=True, help="comma-separated columns, e.g. -params,flops")
    r.add_argument("--optimizer", default="nsga2",
                   help=f"one or more (comma-separated) of {', '.join(optimizer_names())}, or your "
                        "own as module:Class (the module on the Python path or in the current directory)")
    r.add_argument("--budget", type=count(1), default=1000, help="evaluations per run")
    r.add_argument("--seeds", type=count(1), default=1, help="number of seeds (runs per optimizer)")
    r.add_argument("--seed", type=count(0), default=0, help="first seed")
    r.add_argument("--option", action="append", metavar="OPT.NAME=VALUE",
                   help="optimizer constructor option, e.g. nsga2.pop_size=100 (repeatable; default: none)")
    r.add_argument("--noise", action="store_true", help="noisy surrogate draws (seeded by the run seed)")
    r.add_argument("--workers", type=count(1), default=None,
                   help="parallel (spawned) worker processes; 1 runs in this process (default: all cores)")
    r.add_argument("--backend", choices=("process", "ray"), default="process",
                   help="where the workers run (ray: extra ray)")
    r.add_argument("--out", default=None, help="output folder (default: runs/<problem>)")
    r.add_argument("--format", choices=("csv", "parquet"), default="csv",
                   help="format of the results file (parquet needs pyarrow)")
    r.add_argument("--no-plots", action="store_true", help="write no figures")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_run)


def add_reproduce(p) -> None:
    p.add_argument("--out", default="runs/reproduce", help="output folder")
    p.add_argument("--split", choices=("dev", "test", "all"), default="all",
                   help="the suite's problems for tuning (dev), for reporting (test), or both")
    p.add_argument("--suite", default=None, help="suite version (default: the newest)")
    p.add_argument("--budget", type=count(1), default=None, help="evaluations per run (default: the suite's)")
    p.add_argument("--seeds", type=count(1), default=None, help="number of seeds (default: the suite's)")
    p.add_argument("--workers", type=count(1), default=None,
                   help="parallel (spawned) worker processes (default: all cores)")
    p.add_argument("--problems", nargs="*", default=None, help="problem names (default: all of the split's)")
    p.add_argument("--optimizer", action="append", default=[], metavar="MODULE:CLASS",
                   help="also run your own optimizer beside the baselines, e.g. mymodule:Greedy (a module in "
                        "the current directory is found); repeatable (default: the baselines only)")
    p.add_argument("--benchmarks-md", default=None,
                   help="also replace the reproduce section of this markdown file, e.g. benchmarks.md "
                        "(default: none)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_reproduce)


def add_leaderboard(b) -> None:
    b.description = ("RESULTS: folders (or their results.csv) written by `hwgptbench reproduce`, all of "
                     "one suite version, and `hwgptbench run` folders of that suite's problems and budget "
                     "(your own optimizer beside the baselines).")
    b.add_argument("results", nargs="+", metavar="RESULTS", help="result folders or results.csv files")
    b.add_argument("--split", choices=("dev", "test"), default=None, help="(default: all in RESULTS)")
    b.add_argument("--out", default=None, help="folder to also write leaderboard_<split>.md and "
                                               "cd_diagram_<split>.png into (default: none)")
    b.add_argument("--alpha", type=positive, default=0.05, help="level of the Nemenyi test")
    b.set_defaults(func=cmd_leaderboard)


PARSERS = {"run": add_run, "reproduce": add_reproduce, "leaderboard": add_leaderboard}
