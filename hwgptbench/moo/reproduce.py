"""The baseline study: every available HW-GPT-Bench baseline on the problems of a benchmark suite.

Runs the suite's budget and seeds (or others, recorded as unofficial) on the problems of a split,
and writes the tidy results (with the suite version and each problem's split), per-problem figures
(median fronts, HV curves on a log evaluation axis, attainment surfaces, EAF difference of the best
optimizer against random search), and a leaderboard per split (mean ranks, Friedman test,
critical-difference diagram) as markdown.
"""
from __future__ import annotations

import platform
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .leaderboard import leaderboard, ranking_table
from .optimizers import BASELINES
from .problem import get_problem
from .suite import SPLITS, get_suite

__all__ = ["reproduce", "ranking_table"]

START, END = "<!-- moo-reproduce:start -->", "<!-- moo-reproduce:end -->"


def reproduce(out="runs/reproduce", budget=None, seeds=None, workers=None, benchmarks_md=None,
              problems=None, optimizers=BASELINES, progress=True, split="all", suite=None) -> str:
    """Run the baselines on a split ('dev', 'test' or 'all') of a suite version (default: the
    newest); `budget` and `seeds` (a count or a list) default to the suite's; `problems` picks some
    of the split's."""
    from . import plots, runner
    S = get_suite(suite)
    listed = S.problems(split)
    if problems is not None:
        unknown = [p for p in problems if p not in listed]
        if unknown:
            raise ValueError(f"problems: {unknown} not in split {split!r} of {S.version}; its "
                             f"problems: {listed} (`hwgptbench run` takes any problem)")
        listed = [p for p in listed if p in problems]
    names, missing = S.available(listed)
    if not names:
        raise ValueError(f"problems: none available in {S.version} now ({missing})")
    for name in names:
        S.check(name)
    budget = S.budget if budget is None else budget
    seeds = list(S.seeds) if seeds is None else (list(range(seeds)) if isinstance(seeds, (int, np.integer))
                                                 else list(seeds))
    out = Path(out)
    t0 = time.perf_counter()
    # MO-ASHA joins on problems with a training-fidelity axis (perplexity at several fidelities)
    multi = [n for n in names if get_problem(n).fidelities]
    df = runner.sweep([n for n in names if n not in multi], list(optimizers), seeds, budget,
                      workers=workers, progress=progress) if len(multi) < len(names) else None
    if multi:
        extra = runner.sweep(multi, list(optimizers) + ["moasha"], seeds, budget, workers=workers,
                             progress=progress)
        df = extra if df is None else pd.concat([df, extra], ignore_index=True)
    wall = time.perf_counter() - t0
    df.insert(0, "suite", S.version)
    df.insert(1, "split", df["problem"].map(S.split_of))
    results = runner.write_results(df, out / "results.csv")
    ind = runner.final_indicators(df)
    ind.to_csv(out / "final_indicators.csv", index=False)
    curves = runner.hv_curves(df)
    curves.to_csv(out / "hv_curves.csv", index=False)
    figures = []
    for name in names:
        d = df[df["problem"] == name]
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        figures.append(plots.save(plots.plot_fronts(d, name), out / f"{stem}_fronts.png"))
        figures.append(plots.save(plots.plot_hv_curves(d, name, curves, log_x=True), out / f"{stem}_hv.png"))
        if len(seeds) > 1:
            figures.append(plots.save(plots.plot_attainment(d, name), out / f"{stem}_attainment.png"))
        best = ind[ind["problem"] == name].groupby("optimizer")["hv"].mean().idxmax()
        if best != "rs" and "rs" in optimizers:
            figures.append(plots.save(plots.plot_eafdiff(d, best, "rs", name), out / f"{stem}_eafdiff.png"))
    boards = [leaderboard(results, out, split=s) for s in SPLITS if (df["split"] == s).any()]
    igd = ind.dropna(subset=["igd_plus"])
    official = S.is_official(budget, seeds)
    text = "\n".join([
        START,
        "## Multi-objective baselines (`hwgptbench reproduce`)",
        "",
        "Command: `hwgptbench reproduce"
        + ("" if split == "all" else f" --split {split}")
        + ("" if official else f" --budget {budget} --seeds {len(seeds)}")
        + (f" --workers {workers}" if workers else "") + "` "
        f"(suite `{S.version}`, {len(names)} problems x {len(optimizers)} optimizers x {len(seeds)} "
        f"seeds, {budget} evaluations each{'' if official else ': not the suite setting'}; "
        f"{wall:.0f} s wall-clock for the runs on {platform.machine()} with "
        f"{workers or 'all'} worker processes).",
        "",
        *[b + "\n" for b in boards],
        "IGD+ against the shipped reference fronts (mean over seeds, lower is better):",
        "",
        _igd_table(igd) if len(igd) else "(no reference fronts shipped for these problems)",
        "",
        "Not run: " + ("; ".join(f"`{k}` ({v})" for k, v in missing.items()) or "nothing") + ". "
        + ("MO-ASHA ran on the problems with a training-fidelity axis." if multi else
           "MO-ASHA runs only on problems with a training-fidelity axis (perplexity at several "
           "fidelities), and none is served yet."),
        "",
        f"Figures: `{out}/` (" + ", ".join(p.name for p in figures[:4]) + ", ..., cd_diagram_*.png).",
        END,
    ])
    (out / "ranking.md").write_text(text + "\n")
    if benchmarks_md:
        _replace_section(Path(benchmarks_md), text)
    print(text)
    return text


def _igd_table(igd) -> str:
    t = igd.groupby(["optimizer", "problem"], sort=False)["igd_plus"].mean().unstack("problem")
    lines = ["| optimizer | " + " | ".join(f"`{p}`" for p in t.columns) + " |",
             "|---|" + "---|" * len(t.columns)]
    for o, row in t.iterrows():
        lines.append(f"| {o} | " + " | ".join(f"{v:.4f}" for v in row) + " |")
    return "\n".join(lines)


def _replace_section(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else ""
    if START in old and END in old:
        new = old[:old.index(START)] + text + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + text + "\n"
    path.write_text(new)
