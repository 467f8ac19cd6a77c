"""Figures of optimisation results (matplotlib, imported lazily; no pyplot global state).

Each function returns a matplotlib Figure; `save(fig, path)` writes it. Fronts, attainment
surfaces and EAF differences share one orientation and one set of axes per problem (each objective
as its positive value in its units; see `plot_style`) and one colour and marker per optimizer. A
problem with three objectives is drawn as one panel per pair of objectives, as each title says:
fronts show the points of the 3-objective median attainment surface projected onto the pair;
attainment surfaces and EAF differences are each pair's bi-objective view, computed from the
runs' points projected onto the pair.
"""
from __future__ import annotations

import numpy as np

from .indicators import eaf, eafdiff, nondominated
from .plot_style import REFERENCE_COLOUR, figure, objective_axes, optimizer_styles, pairs, save, staircase, wrap
from .problem import get_problem
from .runner import final_rows, hv_curves

__all__ = ["plot_fronts", "plot_hv_curves", "plot_attainment", "plot_eafdiff", "plot_cd_diagram",
           "save"]


def _seeds(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


class _View:
    """One problem's results as the figures see them: each run's signed objective values (final
    fidelity rows), the reference point and front in objective units, shared axis limits."""

    def __init__(self, df, problem, optimizers=None):
        self.P = P = get_problem(problem if problem is not None else df["problem"].iloc[0])
        df = df[df["problem"] == P.name]
        if df.empty:
            raise ValueError(f"problem: no results for {P.name!r}")
        everyone = list(dict.fromkeys(df["optimizer"]))
        self.styles = optimizer_styles(everyone)       # the same style in every figure of a run
        self.optimizers = list(optimizers or everyone)
        self.axes = objective_axes(P)
        self.ref = P.denormalise(P.ref_point)
        self.runs = {}
        for name in self.optimizers:
            g = df[df["optimizer"] == name]
            if g.empty:
                raise ValueError(f"optimizer: no results for {name!r} on {P.name!r}")
            self.runs[name] = [r[list(P.columns)].to_numpy(dtype=float)[final_rows(r, P)] * P.signs
                               for _, r in g.groupby("seed")]
        try:
            self.front = P.denormalise(P.reference_front)
        except ValueError:              # no reference front shipped for this problem
            self.front = None
        R = np.vstack([np.vstack(v) for v in self.runs.values()])
        self.lo = np.minimum(P.lower, R.min(axis=0)) if len(R) else np.asarray(P.lower, float)
        self.pairs = pairs(P.n_obj)

    def title(self, what: str, projected_runs: bool = True) -> str:
        how = ("" if self.P.n_obj == 2 else
               "\none panel per pair of objectives: the runs' points projected onto the pair"
               if projected_runs else "\none panel per pair of objectives: the points of the "
               f"{self.P.n_obj}-objective set projected onto the pair")
        return wrap(f"{self.P.name}\n{what}{how}", 95)

    def sets(self, name, pair):
        return [R[:, list(pair)] for R in self.runs[name] if len(R)]

    def draw(self, ax, V, pair, **kw):
        a, b = pair
        return ax.plot(self.axes[a](V[:, 0]), self.axes[b](V[:, 1]), **kw)

    def setup(self, ax, pair, labels=True):
        for j, set_lim, fmt in ((pair[0], ax.set_xlim, ax.xaxis), (pair[1], ax.set_ylim, ax.yaxis)):
            ends = np.sort(self.axes[j](np.array([self.lo[j], self.ref[j]])))
            pad = 0.02 * (ends[1] - ends[0])
            set_lim(ends[0] - pad, ends[1] + pad)
            fmt.get_major_formatter().set_useOffset(False)
        if labels:
            ax.set_xlabel(wrap(self.axes[pair[0]].label, 48), fontsize=8)
            ax.set_ylabel(wrap(self.axes[pair[1]].label, 40), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.25, lw=0.5)

    def reference(self, ax, pair, label=True, projected_runs=True):
        """The reference front in grey: the pair's own front (of the projected runs' problem),
        or all points of the front projected onto the pair."""
        if self.front is not None:
            F = self.front[:, list(pair)]
            F = F[nondominated(F)] if projected_runs else F
            self.draw(ax, F, pair, ls="none", marker=".", ms=2.5, color=REFERENCE_COLOUR, zorder=1,
                      label="reference front (best known)" if label else None)

    def unreached(self, ax, name, **style):
        """A legend entry only: a multi-fidelity run whose budget ended before any evaluation at the
        final fidelity has no front to draw, and says so."""
        return ax.plot([], [], label=f"{name} (no evaluation at the final fidelity)",
                       **{"mfc": "none", **self.styles[name], **style})

    def median_front(self, ax, name, pair, lw=1.4, **style):
        sets = self.sets(name, pair)
        if not sets:
            return self.unreached(ax, name, **style)
        (S,) = eaf(sets, (50,))
        V, at = staircase(S, self.ref[list(pair)])
        every = at[:: max(1, len(at) // 25)]           # <= ~25 markers, so fronts stay legible
        # open markers: where fronts overlap, the ones drawn first still show through
        style = {"mfc": "none", "mew": 1.0, "alpha": 0.9, **self.styles[name], **style}
        return self.draw(ax, V, pair, markevery=list(every), ms=4.5, lw=lw, label=name, zorder=3,
                         **style)

    def median_points(self, ax, name, pair):
        """Points of the median attainment surface of all objectives, projected onto the pair."""
        if not self.sets(name, pair):
            return self.unreached(ax, name, ls="none")
        (S,) = eaf([R for R in self.runs[name] if len(R)], (50,))
        S = S[np.all(S < self.ref, axis=1)][:, list(pair)]
        return self.draw(ax, S, pair, ms=4, alpha=0.8, mew=0.9, mfc="none", label=name, zorder=3,
                         **{**self.styles[name], "ls": "none"})


def plot_fronts(df, problem=None, optimizers=None):
    """Each optimizer's median attainment front (50% EAF over seeds), in the objectives' units,
    over the stored reference front in grey where one ships. With three objectives: the points of
    the 3-objective median attainment surface, projected onto each pair of objectives."""
    v = _View(df, problem, optimizers)
    two = v.P.n_obj != 3             # moocore's EAF is for 2 or 3 objectives: project runs beyond
    fig, axes = figure(len(v.pairs), width=5.2, height=4.4, max_cols=3)
    for i, (ax, pair) in enumerate(zip(axes, v.pairs)):
        v.reference(ax, pair, label=i == 0, projected_runs=two)
        for name in v.optimizers:
            (v.median_front if two else v.median_points)(ax, name, pair)
        v.setup(ax, pair)
    n = len(next(iter(v.runs.values())))
    fig.suptitle(v.title(f"median attainment front of each optimizer (50% EAF over {_seeds(n)})",
                         projected_runs=two), fontsize=9)
    # as many legend columns as the figure's width holds (about 1.7 in each), so none is cut off
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", fontsize=7.5,
               ncol=max(1, min(len(v.optimizers) + 1, int(fig.get_figwidth() / 1.7))), frameon=False)
    return fig


def plot_attainment(df, problem=None, optimizers=None, percentiles=(25, 50, 75)):
    """Attainment surfaces of each optimizer (one panel each, one row per pair of objectives):
    the regions attained by at least 25/50/75% of the runs, darker where more runs attain."""
    v = _View(df, problem, optimizers)
    k, m = len(v.optimizers), len(v.pairs)
    # one row per optimizer and one column per pair of objectives (3 columns at most: a page's
    # width); two objectives: one panel per optimizer, 4 to a row
    fig, axes = figure(k * m, width=2.6 if m > 1 else 3.0, height=2.4 if m > 1 else 2.7,
                       ncols=m if m > 1 else min(k, 4))
    at = (lambda i, o: axes[o * m + i]) if m > 1 else (lambda i, o: axes[o])
    percentiles = sorted(percentiles)
    dashes = {p: ":" if p < 50 else "-" if p == 50 else "--" for p in percentiles}
    for i, pair in enumerate(v.pairs):
        ref = v.ref[list(pair)]
        for o, name in enumerate(v.optimizers):
            ax, colour = at(i, o), v.styles[name]["color"]
            v.reference(ax, pair, label=False)
            sets = v.sets(name, pair)
            if not sets:
                ax.text(0.5, 0.5, "no evaluation at\nthe final fidelity", transform=ax.transAxes, ha="center",
                        va="center", fontsize=7, color=colour)
            for p, S in zip(percentiles, eaf(sets, percentiles) if sets else ()):
                V, _ = staircase(S, ref)
                if len(V):
                    a, b = pair
                    ax.fill(v.axes[a](np.r_[V[:, 0], ref[0]]), v.axes[b](np.r_[V[:, 1], ref[1]]),
                            color=colour, alpha=0.12, lw=0)
                    v.draw(ax, V, pair, color=colour, lw=1.4 if p == 50 else 0.8, ls=dashes[p],
                           label=f">= {p}% of runs")
            v.setup(ax, pair, labels=False)
            ax.set_title(name, fontsize=8.5, color=colour, fontweight="bold")
            ax.set_xlabel(wrap(v.axes[pair[0]].label, 34), fontsize=6.5)
            ax.set_ylabel(wrap(v.axes[pair[1]].label, 30), fontsize=6.5)
    n = len(next(iter(v.runs.values())))
    fig.suptitle(v.title(f"attainment surfaces over {_seeds(n)}: the region attained by at least "
                         + "/".join(map(str, percentiles)) + "% of the runs, darker where more "
                         "runs attain it"), fontsize=8.5)
    axes[0].legend(fontsize=6, loc="upper right", framealpha=0.8)
    return fig


def plot_eafdiff(df, a: str, b: str, problem=None):
    """EAF difference of optimizers a and b: the fraction of a's runs minus the fraction of b's
    runs attaining each region (red: a attains it more often, blue: b does), with both median
    fronts for orientation."""
    from matplotlib.collections import PatchCollection
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle
    if a == b:
        raise ValueError(f"optimizers: an EAF difference needs two different optimizers, got {a!r} twice")
    v = _View(df, problem, [a, b])
    n_a, n_b = len(v.runs[a]), len(v.runs[b])
    empty = [o for o in (a, b) if not any(len(R) for R in v.runs[o])]
    if empty:
        raise ValueError(f"optimizers: {empty} evaluated nothing at the final fidelity of {v.P.name!r}; an EAF "
                         "difference needs final-fidelity points of both (a larger budget gives MO-ASHA some)")
    if n_a != n_b:
        raise ValueError(f"optimizers: an EAF difference needs as many runs of each; {a} has "
                         f"{n_a}, {b} has {n_b}")
    fig, axes = figure(len(v.pairs), width=5.8 if len(v.pairs) == 1 else 5.2, height=4.6, max_cols=3)
    norm, coll = Normalize(-1, 1), None
    for ax, pair in zip(axes, v.pairs):
        ref = v.ref[list(pair)]
        D = eafdiff(v.sets(a, pair), v.sets(b, pair))
        rects, values = [], []
        for x1, y1, x2, y2, d in D:
            x2, y2 = min(x2, ref[0]), min(y2, ref[1])
            if d == 0 or x2 <= x1 or y2 <= y1:
                continue
            (X1, X2), (Y1, Y2) = v.axes[pair[0]]([x1, x2]), v.axes[pair[1]]([y1, y2])
            rects.append(Rectangle((min(X1, X2), min(Y1, Y2)), abs(X2 - X1), abs(Y2 - Y1)))
            values.append(d / n_a)
        coll = PatchCollection(rects, cmap="RdBu_r", norm=norm, lw=0)
        coll.set_array(np.asarray(values))
        ax.add_collection(coll)
        for name, colour, ls in ((a, "k", "-"), (b, "0.45", "--")):
            v.median_front(ax, name, pair, lw=0.9, color=colour, ls=ls)
        v.setup(ax, pair)
    cbar = fig.colorbar(coll, ax=axes, shrink=0.9)
    cbar.set_label(f"EAF({a}) - EAF({b})\n(difference in the fraction of runs attaining a point)",
                   fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    fig.suptitle(v.title(f"EAF difference over {_seeds(n_a)} (lines: median fronts)\nred: {a} "
                         f"attains a region more often, blue: {b} does"), fontsize=9)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", fontsize=8, ncol=2,
               frameon=False)
    return fig


def plot_hv_curves(df, problem=None, curves=None, log_x: bool = False):
    """Hypervolume vs evaluations: mean over seeds with a band of +- one standard error;
    `log_x` puts the evaluations on a log scale (early progress visible)."""
    P = get_problem(problem if problem is not None else df["problem"].iloc[0])
    curves = hv_curves(df[df["problem"] == P.name]) if curves is None else curves
    curves = curves[curves["problem"] == P.name]
    styles = optimizer_styles(list(dict.fromkeys(curves["optimizer"])))
    fig, (ax,) = figure(width=5.6, height=4.2)
    for name, g in curves.groupby("optimizer", sort=False):
        stats = g.groupby("n_evals")["hv"].agg(["mean", "std", "count"])
        se = (stats["std"].fillna(0) / np.sqrt(stats["count"])).to_numpy()
        x, m = stats.index.to_numpy(), stats["mean"].to_numpy()
        st = styles[name]
        ax.plot(x, m, label=name, lw=1.3, color=st["color"], marker=st["marker"], ms=4, ls=st["ls"],
                mfc="none", markevery=0.1)        # evenly spaced on screen, also on a log axis
        # light bands with edges: runs that share an initial design overlap there, and a filled
        # band per optimizer would blend into one colour
        ax.fill_between(x, m - se, m + se, alpha=0.08, color=st["color"], lw=0.6)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("evaluations" + (" (log scale)" if log_x else ""), fontsize=8)
    ax.set_ylabel("hypervolume, higher is better", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.25, lw=0.5)
    n = curves.groupby("optimizer")["seed"].nunique().min()
    ax.set_title(wrap(f"{P.name}\nhypervolume of normalised objectives (reference point "
                      f"{P.ref_point[0]:.1f})\nmean +- s.e. over {_seeds(n)}", 70), fontsize=9)
    k = curves["optimizer"].nunique()
    if k > 8:                                          # many optimizers: the legend beside the axes
        ax.legend(fontsize=6.5, ncol=1, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    else:
        ax.legend(fontsize=7, ncol=2)
    return fig


def plot_cd_diagram(ranks, cd: float, title: str = ""):
    """Critical-difference diagram (Demšar 2006): mean ranks on an axis (1 = best, left), the CD
    as a bar, and thick lines joining optimizers whose mean ranks differ by less than CD.

    `ranks`: a pandas Series optimizer -> mean rank."""
    from .leaderboard import cliques
    ranks = ranks.sort_values(kind="stable")
    names, r = list(ranks.index), ranks.to_numpy(dtype=float)
    k = len(r)
    lo, hi = 1, max(k, 2)
    half = (k + 1) // 2
    groups = cliques(r, cd)
    row = 0.42
    depth = 0.35 + 0.14 * len(groups)
    fig, (ax,) = figure(width=7.0, height=1.5 + 0.32 * half + 0.16 * len(groups))
    ax.set_axis_off()
    ax.plot([lo, hi], [0, 0], color="k", lw=1)
    for t in range(lo, hi + 1):
        ax.plot([t, t], [0, 0.08], color="k", lw=1)
        ax.text(t, 0.14, str(t), ha="center", va="bottom", fontsize=9)
    ax.text((lo + hi) / 2, 0.62, "mean rank (1 = best)", ha="center", fontsize=8)
    ax.plot([lo, lo + cd], [0.95, 0.95], color="k", lw=1.5)
    for x in (lo, lo + cd):
        ax.plot([x, x], [0.9, 1.0], color="k", lw=1.5)
    ax.text(lo + cd / 2, 1.05, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)
    left_x, right_x = lo - 0.15 * (hi - lo) - 0.3, hi + 0.15 * (hi - lo) + 0.3
    for i, (name, x) in enumerate(zip(names, r)):
        left = i < half
        y = -depth - row * (i if left else k - 1 - i)
        end = left_x if left else right_x
        ax.plot([x, x, end], [0, y, y], color="k", lw=0.8)
        ax.text(end + (-0.05 if left else 0.05), y, f"{name} ({x:.2f})", ha="right" if left else "left",
                va="center", fontsize=9)
    for c, (i, j) in enumerate(groups):
        y = -0.2 - 0.14 * c
        ax.plot([r[i] - 0.04, r[j] + 0.04], [y, y], color="k", lw=3.5, solid_capstyle="round")
    ax.set_xlim(left_x - 0.3 * (hi - lo) - 1.2, right_x + 0.3 * (hi - lo) + 1.2)
    ax.set_ylim(-depth - row * (half - 0.5), 1.35)
    if title:
        ax.set_title(title, fontsize=9)
    return fig
