"""Figures: drawn content checked against hand-computed attainment surfaces, units and orientation,
legibility (one colour and marker per optimizer, no axis offsets), colour bar, 3-objective panels."""
import io

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("moocore")
pytest.importorskip("matplotlib")

from hwgptbench.moo import get_problem  # noqa: E402
from hwgptbench.moo import plots  # noqa: E402
from hwgptbench.moo.indicators import hypervolume  # noqa: E402
from hwgptbench.moo.plot_style import objective_axes, staircase  # noqa: E402
from hwgptbench.moo.runner import sweep  # noqa: E402

PROBLEM = "s:-params,flops"


def _results(runs: dict) -> pd.DataFrame:
    """Tidy result rows of PROBLEM from {optimizer: [run points in a 1..4 grid]}: grid u means
    params = (120 - 20 u) millions, grid v means flops = (50 + 50 v) GFLOP (both monotone, so the
    attainment structure of the grid carries over to the units)."""
    P = get_problem(PROBLEM)
    rows = []
    for opt, seeds in runs.items():
        for seed, pts in enumerate(seeds):
            for i, (u, v) in enumerate(pts):
                params, flops = (120 - 20 * u) * 1e6, (50 + 50 * v) * 1e9
                f = P.normalise([[-params, flops]])[0]
                rows.append({"problem": P.name, "optimizer": opt, "seed": seed, "eval": i,
                             "params": params, "flops": flops, "f:-params": f[0], "f:flops": f[1]})
    return pd.DataFrame(rows)


# four runs of one point each: attained by >= 2 of 4 runs (50%) are exactly (2, 3) and (3, 2)
HAND = {"a": [[(1, 3)], [(3, 1)], [(2, 2)], [(4, 4)]], "b": [[(4, 4)], [(4, 3)], [(3, 4)], [(4, 4)]]}


def _drawn(fig):
    fig.savefig(io.BytesIO(), format="png")             # lay out and draw the tick labels
    return fig


def _line(ax, label):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return line


def test_staircase_by_hand():
    V, at = staircase([[3, 1], [1, 3], [2, 2], [5, 0.5]], ref=np.array([4.0, 4.0]))
    assert V.tolist() == [[1, 4], [1, 3], [2, 3], [2, 2], [3, 2], [3, 1], [4, 1]]
    assert at.tolist() == [1, 3, 5]                     # (5, 0.5) lies beyond the reference point


def test_objective_axes_name_units_and_direction():
    params, flops = objective_axes(get_problem(PROBLEM))
    assert params.label == "parameters (millions), higher is better" and params.scale == 1e-6
    assert flops.label == "FLOPs (GFLOP), lower is better" and flops.scale == 1e-9
    assert params([-5e7]) == pytest.approx([50.0])       # maximised: shown as its positive value
    _, latency = objective_axes(get_problem("s:-params,latency_ms@cpu_xeon_2c"))
    assert latency.label == "latency on cpu_xeon_2c (ms), lower is better" and latency.scale == 1.0


def test_fronts_draw_the_median_attainment_front_in_units():
    P = get_problem(PROBLEM)
    fig = _drawn(plots.plot_fronts(_results(HAND), PROBLEM))
    (ax,) = fig.axes
    ref = P.denormalise(P.ref_point)
    # hand: 50% set {(80 M, 200 G), (60 M, 150 G)}, staircase closed at the reference point
    line = _line(ax, "a")
    assert line.get_xdata() == pytest.approx([80, 80, 60, 60, -ref[0] / 1e6])
    assert line.get_ydata() == pytest.approx([ref[1] / 1e9, 200, 200, 150, 150])
    assert "parameters (millions)" in ax.get_xlabel() and "FLOPs (GFLOP)" in ax.get_ylabel()
    assert ax.xaxis.get_offset_text().get_text() == "" and ax.yaxis.get_offset_text().get_text() == ""
    styles = {(str(_line(ax, o).get_color()), _line(ax, o).get_marker()) for o in HAND}
    assert len(styles) == 2 and all(m not in ("", "None") for _, m in styles)
    labels = fig.legends[0].get_texts()
    assert [t.get_text() for t in labels] == ["reference front (best known)", "a", "b"]


def test_attainment_shares_orientation_and_axes_with_fronts():
    df = _results(HAND)
    front = _drawn(plots.plot_fronts(df, PROBLEM)).axes[0]
    att = _drawn(plots.plot_attainment(df, PROBLEM)).axes
    assert len(att) == 2
    for ax in att:
        flat = lambda t: " ".join(t.split())           # noqa: E731  (labels wrap at other widths)
        assert flat(ax.get_xlabel()) == flat(front.get_xlabel()) and flat(ax.get_ylabel()) == flat(front.get_ylabel())
        assert ax.get_xlim() == pytest.approx(front.get_xlim())
        assert ax.get_ylim() == pytest.approx(front.get_ylim())
    median = _line(att[0], ">= 50% of runs")
    assert median.get_xdata()[1:4] == pytest.approx([80, 60, 60])
    assert median.get_ydata()[1:4] == pytest.approx([200, 200, 150])


def test_eafdiff_has_a_colour_bar_and_the_right_sign():
    from matplotlib.collections import PatchCollection
    better = {"a": [[(1, 1)], [(1, 2)]], "b": [[(3, 3)], [(4, 3)]]}     # a dominates every b point
    fig = _drawn(plots.plot_eafdiff(_results(better), "a", "b", PROBLEM))
    assert len(fig.axes) == 2 and "EAF(a) - EAF(b)" in fig.axes[1].get_ylabel()
    (coll,) = [c for c in fig.axes[0].collections if isinstance(c, PatchCollection)]
    values = coll.get_array()
    assert len(values) and np.all(values > 0) and np.all(values <= 1)
    assert values.max() == pytest.approx(1.0)          # both runs of a, none of b, attain (1, 2)
    with pytest.raises(ValueError, match="as many runs"):
        plots.plot_eafdiff(_results({"a": better["a"], "b": better["b"][:1]}), "a", "b", PROBLEM)
    with pytest.raises(ValueError, match="two different optimizers"):
        plots.plot_eafdiff(_results(better), "a", "a", PROBLEM)
    same = _drawn(plots.plot_eafdiff(_results({"a": HAND["a"], "b": HAND["a"]}), "a", "b", PROBLEM))
    (coll,) = [c for c in same.axes[0].collections if isinstance(c, PatchCollection)]
    assert len(coll.get_array()) == 0                   # equal EAFs: nothing to colour


def test_three_objectives_are_drawn_as_pairwise_panels():
    name = "s:-params,flops,memory_MB_analytic"
    df = sweep(name, ["rs", "pls"], 2, 15, workers=1, progress=False)
    fronts = _drawn(plots.plot_fronts(df, name))
    pairs = {(ax.get_xlabel().split(" (")[0], ax.get_ylabel().split(" (")[0]) for ax in fronts.axes}
    assert pairs == {("parameters", "FLOPs"), ("parameters", "memory"), ("FLOPs", "memory")}
    assert "pair" in fronts._suptitle.get_text()
    assert len(_drawn(plots.plot_attainment(df, name)).axes) == 3 * 2
    assert len(_drawn(plots.plot_eafdiff(df, "pls", "rs", name)).axes) == 3 + 1      # + colour bar


def test_hv_curves_log_axis_and_styles():
    df = sweep(PROBLEM, ["rs", "pls"], 2, 15, workers=1, progress=False)
    ax = _drawn(plots.plot_hv_curves(df, PROBLEM, log_x=True)).axes[0]
    assert ax.get_xscale() == "log"
    assert _drawn(plots.plot_hv_curves(df, PROBLEM)).axes[0].get_xscale() == "linear"
    rs, pls = _line(ax, "rs"), _line(ax, "pls")
    assert rs.get_color() != pls.get_color() and rs.get_marker() != pls.get_marker()
    assert len(ax.collections) == 2                     # one +- s.e. band each


def test_hv_curves_of_a_single_block_frame():
    """A frame whose objective columns are one float block (as a CSV read back may be): pandas 3
    hands out read-only views of it, which the hypervolume curves must not write into."""
    F = np.random.default_rng(0).random((12, 2))
    df = pd.DataFrame(F, columns=["f:-params", "f:flops"])
    df.insert(0, "problem", PROBLEM)
    df.insert(1, "optimizer", "x")
    df.insert(2, "seed", 0)
    df.insert(3, "eval", range(12))
    curve = plots.plot_hv_curves(df, PROBLEM).axes[0].get_lines()[0].get_ydata()
    assert curve[-1] == pytest.approx(hypervolume(F, get_problem(PROBLEM).ref_point))


def test_up_to_18_optimizers_differ_in_colour_and_none_is_the_reference_grey():
    from matplotlib.colors import to_rgb

    from hwgptbench.moo.plot_style import REFERENCE_COLOUR, optimizer_styles
    st = optimizer_styles([f"o{i}" for i in range(20)])
    colours = [to_rgb(v["color"]) for v in st.values()]
    assert len(set(colours[:18])) == 18
    assert len({(c, v["marker"]) for c, v in zip(colours, st.values())}) == 20
    for r, g, b in colours:                              # no grey: the hues differ
        assert max(r, g, b) - min(r, g, b) > 0.1, (r, g, b)
    assert to_rgb(REFERENCE_COLOUR) not in colours
