"""Rank optimizers across a suite's problems: mean ranks, a Friedman test, a Nemenyi critical difference.

An optimizer's score on a problem is its final hypervolume (normalised objectives, the suite's
fixed bounds and reference point) averaged over seeds. Optimizers are ranked on each problem
(1 = best, ties share the average rank) and compared by their mean rank across problems, as
Demšar (2006) recommends for comparing algorithms over several data sets: the Friedman test asks
whether any mean ranks differ; the Nemenyi critical difference
``CD = q_alpha * sqrt(k (k + 1) / (6 N))`` (``q_alpha``: the studentized range quantile for k
groups and infinite degrees of freedom, over sqrt 2) says which do: mean ranks closer than CD are
not significantly different.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .runner import final_indicators, read_results
from .suite import SPLITS, Suite, get_suite

__all__ = ["read_suite_results", "mean_ranks", "friedman", "critical_difference", "cliques",
           "ranking_table", "leaderboard"]

_KEY = ["problem", "optimizer", "seed"]


# ---- reading and checking results -------------------------------------------------------------------
def _results_file(path) -> Path:
    path = Path(path)
    if path.is_dir():
        found = [path / n for n in ("results.csv", "results.parquet") if (path / n).exists()]
        if len(found) != 1:
            raise ValueError(f"RESULTS: {path} holds {'no' if not found else 'more than one'} "
                             "results.csv / results.parquet (a folder written by `hwgptbench reproduce`)")
        return found[0]
    if not path.exists():
        raise ValueError(f"RESULTS: {path} does not exist")
    return path


def _check_rows(df: pd.DataFrame, f) -> None:
    """No evaluation twice, every normalised objective finite: the file, row and column of the first
    that is not."""
    twice = df.duplicated(_KEY + ["eval"], keep="first")
    if twice.any():
        r = int(np.flatnonzero(twice.to_numpy())[0])
        raise ValueError(f"RESULTS: {f} data row {r + 1}: evaluation {tuple(df.loc[r, _KEY + ['eval']])} appears twice")
    for problem, rows in df.groupby("problem", sort=False).groups.items():   # each row: its problem's objectives
        for c in (f"f:{o}" for o in str(problem).split(":", 1)[-1].split(",")):
            if c not in df.columns:
                raise ValueError(f"RESULTS: {f} has no column {c!r} for problem {problem!r}")
            values = pd.to_numeric(df.loc[rows, c], errors="coerce").to_numpy(dtype=float)
            if not np.isfinite(values).all():
                r = int(rows[np.flatnonzero(~np.isfinite(values))[0]])
                raise ValueError(f"RESULTS: {f} data row {r + 1}, column {c!r}: {df[c].iloc[r]!r} is not a "
                                 "finite number")


def read_suite_results(paths, split: str | None = None) -> tuple[pd.DataFrame, Suite]:
    """Results of one suite version from folders or files, checked: the same version, problems
    pinned by it under their own split, no run twice, every run of the same budget. A `hwgptbench
    run` folder (no suite columns) joins the suite of the others (or the newest) when its problems
    are pinned there and its runs have the suite's budget."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    frames, sources, plain = [], {}, []
    for path in paths:
        f = _results_file(path)
        df = read_results(f, verify=True)
        missing = sorted({"problem", "optimizer", "seed", "eval"} - set(df.columns))
        if missing:
            raise ValueError(f"RESULTS: {f} has no column(s) {missing}: not results of `hwgptbench run` "
                             "or `hwgptbench reproduce`")
        if not {"suite", "split"} <= set(df.columns):
            plain.append(len(frames))        # a `run` folder: placed in a suite below
        _check_rows(df, f)
        for key in df[_KEY].drop_duplicates().itertuples(index=False):
            if tuple(key) in sources:
                raise ValueError(f"RESULTS: run {tuple(key)} is in both {sources[tuple(key)]} and {f}")
            sources[tuple(key)] = f
        frames.append(df.assign(_file=str(f)))
    if not frames:
        raise ValueError("RESULTS: expected at least one results folder or file")
    if plain:
        _place_in_suite(frames, plain)
    df = pd.concat(frames, ignore_index=True)
    versions = df.groupby("suite")["_file"].unique()
    if len(versions) != 1:
        raise ValueError("RESULTS: results of different suite versions cannot be ranked together: "
                         + "; ".join(f"{v}: {list(fs)}" for v, fs in versions.items()))
    suite = get_suite(str(versions.index[0]))
    for (problem, label), g in df.groupby(["problem", "split"])["_file"]:
        if problem not in suite.pinned:
            raise ValueError(f"RESULTS: problem {problem!r} ({g.iloc[0]}) is not pinned by suite "
                             f"{suite.version}; its problems: {list(suite.pinned)}")
        if suite.split_of(problem) != label:
            raise ValueError(f"RESULTS: problem {problem!r} is labelled split {label!r} in "
                             f"{g.iloc[0]} but is in {suite.split_of(problem)!r} of {suite.version}")
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {list(SPLITS)} or None (all), got {split!r}")
        if not (df["split"] == split).any():
            raise ValueError(f"split: no results of split {split!r}; the results hold "
                             f"{sorted(df['split'].unique())}")
        df = df[df["split"] == split]
    budgets = df.groupby(_KEY).size().unique()
    if len(budgets) != 1:
        raise ValueError(f"RESULTS: runs of different budgets ({sorted(budgets)} evaluations) "
                         "cannot be ranked together")
    seed_sets = df.groupby(["problem", "optimizer"])["seed"].unique().map(lambda s: tuple(sorted(s)))
    if seed_sets.nunique() != 1:
        raise ValueError("RESULTS: every optimizer must have run the same seeds on every problem; "
                         "found " + "; ".join(f"{p} {o}: seeds {list(s)}" for (p, o), s in
                                              seed_sets.drop_duplicates().items()))
    return df.drop(columns="_file").reset_index(drop=True), suite


def _place_in_suite(frames: list[pd.DataFrame], plain: list[int]) -> None:
    """Label the results of `hwgptbench run` folders with the suite version of the other results
    (or the newest), and each problem with its split there; a problem the suite does not pin, or a
    budget other than the suite's, is an error that says what would make the folder rankable."""
    versions = {str(v) for i, d in enumerate(frames) if i not in plain for v in d["suite"].unique()}
    suite = get_suite(versions.pop() if len(versions) == 1 else None)
    for i in plain:
        df, f = frames[i], frames[i]["_file"].iloc[0]
        for problem in df["problem"].unique():
            if problem not in suite.pinned:
                raise ValueError(f"RESULTS: {f} ran problem {problem!r}, which suite {suite.version} does not "
                                 f"pin; a leaderboard ranks a suite's problems: run one of {list(suite.pinned)} "
                                 f"(or `hwgptbench reproduce --optimizer module:Class`)")
        budgets = sorted(int(b) for b in df.groupby(["problem", "optimizer", "seed"]).size().unique())
        if budgets != [suite.budget]:
            raise ValueError(f"RESULTS: {f} holds runs of {budgets} evaluations; suite {suite.version} ranks runs "
                             f"of {suite.budget}: rerun with --budget {suite.budget} --seeds {len(suite.seeds)}")
        frames[i] = df.assign(suite=suite.version, split=df["problem"].map(suite.split_of))


# ---- statistics -----------------------------------------------------------------------------------------
def mean_ranks(scores) -> np.ndarray:
    """Mean rank of each column of `scores` (N problems x k optimizers, higher is better) across
    rows; rank 1 = best, ties share the average rank."""
    from scipy.stats import rankdata
    return rankdata(-np.asarray(scores, dtype=float), axis=1).mean(axis=0)


def friedman(scores) -> tuple[float, float]:
    """Friedman chi-square statistic and p-value over the rows (problems) of `scores`."""
    from scipy.stats import friedmanchisquare
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[1] < 3 or scores.shape[0] < 2:
        raise ValueError(f"scores: the Friedman test needs >= 2 problems and >= 3 optimizers, got "
                         f"shape {scores.shape}")
    res = friedmanchisquare(*scores.T)
    return float(res.statistic), float(res.pvalue)


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of mean ranks for k optimizers over n problems."""
    from scipy.stats import studentized_range
    if k < 2 or n < 1:
        raise ValueError(f"k, n: need k >= 2 optimizers and n >= 1 problems, got k={k}, n={n}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: expected a level in (0, 1), got {alpha!r}")
    q = studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    return float(q * np.sqrt(k * (k + 1) / (6 * n)))


def cliques(ranks, cd: float) -> list[tuple[int, int]]:
    """Maximal runs [i, j] (indices into sorted `ranks`, j > i) whose ranks differ by less than cd."""
    r = np.sort(np.asarray(ranks, dtype=float))
    out, last = [], -1
    for i in range(len(r)):
        j = int(np.searchsorted(r, r[i] + cd, side="left")) - 1     # last rank < r[i] + cd
        if j > i and j > last:
            out.append((i, j))
            last = j
    return out


# ---- tables -------------------------------------------------------------------------------------------------
def ranking_table(ind: pd.DataFrame) -> str:
    """Markdown: one row per optimizer (best mean rank first), one column per problem,
    'HV mean +- s.e. (rank)'; 'not run' where an optimizer has no runs on a problem, whose mean
    rank is then over the problems it ran."""
    stats = ind.groupby(["problem", "optimizer"], sort=False)["hv"].agg(["mean", "sem"])
    problems = list(dict.fromkeys(ind["problem"]))
    ranks = stats["mean"].groupby(level="problem").rank(ascending=False)
    mean_rank = ranks.groupby(level="optimizer", sort=False).mean().sort_values(kind="stable")
    lines = ["| optimizer | " + " | ".join(f"`{p}`" for p in problems) + " | mean rank |",
             "|---|" + "---|" * (len(problems) + 1)]
    for o, mr in mean_rank.items():
        cells = [f"{stats.loc[(p, o), 'mean']:.4f} +- {stats.loc[(p, o), 'sem']:.4f} "
                 f"({ranks[(p, o)]:g})" if (p, o) in stats.index else "not run" for p in problems]
        lines.append(f"| {o} | " + " | ".join(cells) + f" | {mr:.2f} |")
    return "\n".join(lines)


def _complete(ind: pd.DataFrame):
    """Scores (problems x optimizers) of the optimizers that ran on every problem; the others."""
    M = ind.groupby(["problem", "optimizer"], sort=False)["hv"].mean().unstack("optimizer")
    full = [o for o in M.columns if M[o].notna().all()]
    return M[full], {o: int(M[o].notna().sum()) for o in M.columns if o not in full}


def leaderboard(paths, out=None, split: str | None = None, alpha: float = 0.05) -> str:
    """Markdown leaderboard of suite results (of one split, or of all in them); with `out`, also
    written there as ``leaderboard_{split}.md`` with ``cd_diagram_{split}.png``."""
    df, suite = read_suite_results(paths, split)
    ind = final_indicators(df)
    seeds = sorted(df["seed"].unique())
    budget = int(df.groupby(_KEY).size().iloc[0])
    splits = [s for s in SPLITS if (df["split"] == s).any()]
    wanted = [p for s in splits for p in suite.problems(s)]
    _, unavailable = suite.available(wanted)
    not_run = [p for p in wanted if p in suite.pinned and p not in set(df["problem"])]
    official = suite.is_official(budget, seeds)
    M, partial = _complete(ind)
    if M.empty:
        raise ValueError(f"RESULTS: no optimizer ran on every problem in them ({partial})")
    ind = ind[ind["optimizer"].isin(M.columns)]        # ranks in the table = ranks in the test
    k, n = M.shape[1], M.shape[0]
    lines = [f"### Leaderboard: `{suite.version}`, split {' + '.join(splits)}",
             "",
             f"{n} problems x {k} optimizers x {len(seeds)} seeds (seeds {_span(seeds)}), {budget} "
             "evaluations a run: " + ("the suite's setting." if official else
                                     f"NOT the suite's setting ({suite.budget} evaluations, seeds "
                                     f"{_span(suite.seeds)}): an unofficial result."),
             "Final hypervolume (normalised objectives, the suite's fixed bounds, reference point 1.1), "
             "mean +- s.e. over seeds, rank on the problem in brackets (1 = best):",
             "", ranking_table(ind), ""]
    ranks = None
    if k >= 3 and n >= 2:
        chi2, p = friedman(M.to_numpy())
        cd = critical_difference(k, n, alpha)
        ranks = pd.Series(mean_ranks(M.to_numpy()), index=M.columns).sort_values(kind="stable")
        groups = [", ".join(ranks.index[i:j + 1]) for i, j in cliques(ranks.to_numpy(), cd)]
        lines += [f"Friedman test over N = {n} problems, k = {k} optimizers: chi^2 = {chi2:.2f}, "
                  f"p = {p:.3g}. Nemenyi critical difference (alpha = {alpha:g}): CD = {cd:.2f} mean "
                  "ranks; not significantly different: "
                  + ("; ".join(f"{{{g}}}" for g in groups) or "none (every pair differs)") + "."]
        if n < 10 or k < 5:
            lines.append(f"With N = {n} problems and k = {k} optimizers the tests have little power and "
                         "the Friedman chi-square approximation is rough (Demšar 2006 wants N > 10, "
                         "k > 5): read the ranks as descriptive.")
    else:
        lines.append(f"No Friedman test or critical difference: they need >= 3 optimizers that ran on "
                     f">= 2 problems (here {k} on {n}).")
    if partial:
        lines.append("Left out of the test (not run on every problem): "
                     + ", ".join(f"{o} ({c} of {n} problems)" for o, c in partial.items()) + ".")
    if not_run:
        lines.append("No results for: " + ", ".join(f"`{p}`" for p in not_run) + ".")
    if unavailable:
        lines.append(f"Not available in {suite.version}: "
                     + "; ".join(f"`{p}` ({why})" for p, why in unavailable.items()) + ".")
    text = "\n".join(lines)
    if out is not None:
        from . import plots
        out, tag = Path(out), "+".join(splits)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"leaderboard_{tag}.md").write_text(text + "\n")
        if ranks is not None:
            plots.save(plots.plot_cd_diagram(ranks, cd, f"{suite.version}, split {' + '.join(splits)}: "
                                             f"N = {n} problems, alpha = {alpha:g}"),
                       out / f"cd_diagram_{tag}.png")
    return text


def _span(seeds) -> str:
    seeds = [int(s) for s in seeds]
    return f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else str(seeds)
