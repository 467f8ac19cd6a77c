"""What every figure shares: one colour and marker per optimizer, objective axes in their units, the
same orientation everywhere, panels for pairs of objectives, and attainment staircases.

Orientation (the same in fronts, attainment and EAF-difference plots): every objective is shown as
its positive value in its units, so a maximised one (``-params``) reads as ``parameters (millions),
higher is better`` and a minimised one as ``FLOPs (GFLOP), lower is better``. Counts (parameters,
FLOPs) are scaled by a power of 1000 so no axis needs an offset.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

__all__ = ["ObjectiveAxis", "objective_axes", "optimizer_styles", "figure", "pairs", "staircase",
           "save", "palette", "wrap", "REFERENCE_COLOUR"]

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h")
PRETTY = {"params": "parameters", "flops": "FLOPs", "memory_MB_analytic": "memory (analytic)",
          "memory_MB": "peak memory", "latency_ms": "latency", "decode_ms": "decode time per token",
          "energy_J": "energy", "perplexity": "perplexity", "accuracy": "accuracy",
          "perplexity_hwgpt": "perplexity (HW-GPT-Bench predictor)",
          "memory_MB_hwgpt_float16": "fp16 memory (HW-GPT-Bench predictor)",
          "memory_MB_hwgpt_bfloat16": "bf16 memory (HW-GPT-Bench predictor)"}
_COUNT_WORDS = {3: "thousands", 6: "millions", 9: "billions", 12: "trillions"}
_PREFIXES = {3: "k", 6: "M", 9: "G", 12: "T"}


@dataclass(frozen=True)
class ObjectiveAxis:
    """How one objective is drawn: display value = signed (minimised) value * sign * scale."""
    label: str
    sign: float
    scale: float

    def __call__(self, values) -> np.ndarray:
        return np.asarray(values, dtype=float) * (self.sign * self.scale)


def objective_axes(P) -> list[ObjectiveAxis]:
    """One axis per objective of problem P, with its name, device, unit and better direction."""
    metrics = P.benchmark.metrics() if hasattr(P.benchmark, "metrics") else {}
    axes = []
    for j, col in enumerate(P.columns):
        info = metrics.get(col, {})
        metric, device, unit = info.get("metric", col), info.get("device"), info.get("unit")
        name = PRETTY.get(metric, metric) + (f" on {device}" if device else "")
        if info.get("measured_by"):                         # another profiler's data: say so
            name += " (reference data)"
        biggest = float(np.max(np.abs([P.lower[j], P.upper[j]])))
        exp = int(min(12, 3 * (np.log10(biggest) // 3))) if biggest >= 1e4 else 0
        if unit in (None, "", "1"):
            unit_text = _COUNT_WORDS.get(exp)
        else:
            unit_text = _PREFIXES.get(exp, "") + unit
        better = "higher" if P.signs[j] < 0 else "lower"
        label = name + (f" ({unit_text})" if unit_text else "") + f", {better} is better"
        axes.append(ObjectiveAxis(label, float(P.signs[j]), 10.0 ** -exp))
    return axes


REFERENCE_COLOUR = "0.6"        # the reference front's grey: no optimizer is drawn in a grey


def palette() -> list:
    """18 colours for optimizers, none of them grey: tab10 without its grey, then tab20's light
    partners of the same hues (so optimizers 10-18 read as lighter versions of 1-9, with other markers)."""
    from matplotlib import colormaps
    tab10, tab20 = colormaps["tab10"].colors, colormaps["tab20"].colors
    return [c for i, c in enumerate(tab10) if i != 7] + [tab20[2 * i + 1] for i in range(10) if i != 7]


def optimizer_styles(optimizers) -> dict[str, dict]:
    """A distinct colour, marker and line style for each optimizer, in the order given: 18 colours
    and 9 markers, so the first 18 differ in colour and every pair of the first 162 in colour or
    marker; none is the reference front's grey."""
    colours = palette()
    dashes = ("-", "--", "-.", ":")
    return {o: {"color": colours[i % len(colours)], "marker": MARKERS[(i + i // len(colours)) % len(MARKERS)],
                "ls": dashes[(i // len(colours)) % len(dashes)]}
            for i, o in enumerate(optimizers)}


def wrap(text: str, width: int) -> str:
    """Long titles and axis labels broken at word boundaries, so nothing is cut off at paper width."""
    import textwrap
    return "\n".join(textwrap.fill(line, width) for line in text.split("\n"))


def pairs(n_obj: int) -> list[tuple[int, int]]:
    """The objective pairs drawn as 2-D panels (one panel for two objectives)."""
    return list(combinations(range(n_obj), 2))


def figure(n: int = 1, width: float = 5.0, height: float = 4.0, max_cols: int = 4, ncols=None):
    """A figure with n panels on a grid (at most `max_cols` columns); no pyplot global state."""
    from matplotlib.figure import Figure
    ncols = ncols or min(n, max_cols)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    return fig, [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]


def staircase(S, ref) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the attainment surface of minimised 2-D points S bounded by ref, and the
    indices of S's own points among them (for markers)."""
    S = np.asarray(S, dtype=float).reshape(-1, 2)
    S = S[np.all(S < ref, axis=1)]
    S = S[np.lexsort((S[:, 1], S[:, 0]))]
    if not len(S):
        return np.empty((0, 2)), np.empty(0, dtype=int)
    V = np.empty((2 * len(S) + 1, 2))
    V[0] = S[0, 0], ref[1]
    V[1::2] = S
    V[2:-1:2] = np.column_stack([S[1:, 0], S[:-1, 1]])
    V[-1] = ref[0], S[-1, 1]
    return V, np.arange(1, 2 * len(S), 2)


def save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
