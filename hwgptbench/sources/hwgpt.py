"""HW-GPT-Bench's published predictors as a labelled source: its perplexity MLP and its float16 /
bfloat16 memory MLPs, served with numpy from the converted weights in assets/hwgpt (Apache-2.0,
scripts/convert_hwgpt_predictors.py; NOTICE.md there says what was changed: the file format only).

Columns say where they come from: ``perplexity_hwgpt`` (not our own supernet's ``perplexity``),
``memory_MB_hwgpt_float16`` and ``memory_MB_hwgpt_bfloat16``. The input encodings are HW-GPT-Bench's
(lib/utils.py at 1f43ee8): perplexity takes the one-hot ``[embed (3), layers (3), mlp ratio per layer
slot (Lmax x 3), heads per slot (Lmax x 3), bias (2; index 0 is "True")]`` with slots past the depth
all zero (`convert_config_to_one_hot`); memory takes ``[norm(E), norm(L), norm(r_i) or -1 past the
depth (Lmax), norm(h_i) or -1 (Lmax), bias 1/0]`` with norm(x) = (x - min choice) / (max - min)
(`get_arch_feature_map`, `normalize_arch_feature_map`). The networks run in float32, as there.
"""
from __future__ import annotations

import hashlib
import json
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from ..space import get_space
from ..validation import finite_nonnegative
from . import IntervalUnavailable

__all__ = ["HWGPTPredictors", "ASSETS", "COLUMNS"]

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "hwgpt"
SPACES = ("s", "m", "l")
# column -> (weights file stem, unit, what it is)
COLUMNS = {
    "perplexity_hwgpt": ("perplexity", "1", "HW-GPT-Bench's perplexity predictor (an MLP fitted to its GPT-2 "
                                            "supernet's sub-network perplexities on OpenWebText)"),
    "memory_MB_hwgpt_float16": ("float16_memory", "MB", "HW-GPT-Bench's float16 memory predictor (an MLP)"),
    "memory_MB_hwgpt_bfloat16": ("bfloat16_memory", "MB", "HW-GPT-Bench's bfloat16 memory predictor (an MLP)"),
}
SOURCE = "HW-GPT-Bench release (automl/HW-GPT-Bench @ 1f43ee8), predictors served unchanged"
LICENCE = "Apache-2.0 (hwgptbench/assets/hwgpt/LICENSE; changes: hwgptbench/assets/hwgpt/NOTICE.md)"
_LAYERS = ("fc1", "fc2", "fc3", "fc4", "fc5")
_ROWS = 4096            # rows evaluated at a time (l's three nets: ~10 MB of activations, not ~100)


class HWGPTPredictors:
    """The `Source` of HW-GPT-Bench's predictors (see the module docstring). Weights are read
    lazily, each file once, after its sha256 is checked against assets/hwgpt/manifest.json."""

    name = "hwgpt"

    def __init__(self, assets=None):
        self.assets = Path(assets) if assets is not None else ASSETS
        self._nets: dict = {}               # stem -> its layers; a tuple of stems -> them stacked
        self._plans: dict = {}              # (space, columns) -> `_plan`

    def columns(self, space: str) -> list[str]:
        return list(COLUMNS) if space in SPACES else []

    def describe(self, space: str, column: str) -> dict:
        self._check(space, [column])
        stem, unit, what = COLUMNS[column]
        return {"column": column, "unit": unit, "kind": "third-party predictor", "source": SOURCE,
                "licence": LICENCE, "description": what, "file": f"assets/hwgpt/{stem}_{space}.npz",
                "interval": "none (the predictor gives a point value only)", "noise": "none (deterministic)"}

    def evaluate(self, F, columns) -> np.ndarray:
        space = F.space.name if getattr(F, "space", None) is not None else None
        layers, ppl, mem = self._plan(space, tuple(columns))
        out = np.empty((len(F), len(columns)))
        for a in range(0, len(F), _ROWS):             # bounded memory: the layers of 4,096 rows at a time
            block = F[a:a + _ROWS] if len(F) > _ROWS else F
            h = np.zeros((len(columns), len(block), layers[0].shape[1]), dtype=np.float32)
            h[:, :, -1] = 1.0                         # the constant input that carries the bias
            for g in ppl:
                one_hot(block, h[g])
            if mem:
                x = normalised(block)
                h[mem, :, :x.shape[1]] = x
            out[a:a + len(block)] = mlp(layers, h)
        if not finite_nonnegative(out):
            i, j = np.argwhere(~(np.isfinite(out) & (out >= 0)))[0]     # never clipped: an error
            raise RuntimeError(f"{columns[j]}: HW-GPT-Bench's predictor returned {out[i, j]!r} for "
                               f"{F.space.decode(F[i:i + 1])[0].id}; not served")
        return out

    def interval(self, F, columns, level: float = 0.9):
        raise IntervalUnavailable(f"{list(columns)}: HW-GPT-Bench's predictors give a point value only; "
                                  "no interval is invented (ask without interval=True)")

    # ---- internals --------------------------------------------------------------------------------
    def _check(self, space, columns) -> None:
        if space not in SPACES:
            raise ValueError(f"space: HW-GPT-Bench's predictors exist for {list(SPACES)}, not {space!r}")
        unknown = [c for c in columns if c not in COLUMNS]
        if unknown:
            raise ValueError(f"columns: {unknown} are not served by source 'hwgpt'; it serves {list(COLUMNS)}")

    @cached_property
    def _manifest(self) -> dict:
        path = self.assets / "manifest.json"
        try:
            return json.loads(path.read_text())["files"]
        except (OSError, ValueError, KeyError) as e:
            raise FileNotFoundError(f"{path}: HW-GPT-Bench predictor manifest missing or unreadable ({e})") from None

    def _net(self, stem: str) -> list:
        if stem not in self._nets:
            name = f"{stem}.npz"
            path = self.assets / name
            entry = self._manifest.get(name)
            if entry is None:
                raise FileNotFoundError(f"{path}: not listed in {self.assets / 'manifest.json'}")
            try:
                data = path.read_bytes()
            except OSError as e:
                raise FileNotFoundError(f"{path}: HW-GPT-Bench predictor weights unreadable ({e.strerror or e})") from None
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise ValueError(f"{path}: sha256 differs from assets/hwgpt/manifest.json (damaged or "
                                 "substituted weights); reinstall, or rerun scripts/convert_hwgpt_predictors.py")
            import io
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                layers = [(z[f"{n}.weight"], z[f"{n}.bias"]) for n in _LAYERS]
            if layers[0][0].shape[1] != entry["inputs"] or any(w.dtype != np.float32 for w, _ in layers):
                raise ValueError(f"{path}: not the float32 MLP with {entry['inputs']} inputs that the manifest lists")
            self._nets[stem] = layers
        return self._nets[stem]

    def _plan(self, space, columns: tuple):
        """(the nets of `columns` side by side, which read the one-hot input, which the normalised
        one), worked out once per list of columns (after checking it)."""
        key = (space, columns)
        if key not in self._plans:
            self._check(space, columns)
            stems = tuple(f"{COLUMNS[c][0]}_{space}" for c in columns)
            ppl = [g for g, st in enumerate(stems) if st.startswith("perplexity")]
            self._plans[key] = (self._stacked(stems), ppl, [g for g in range(len(stems)) if g not in ppl])
        return self._plans[key]

    def _stacked(self, stems: tuple) -> list[np.ndarray]:
        """The nets `stems` (of one shape but perhaps their input width) as `mlp` takes them: per
        layer one array (nets, in + 1, out + 1) holding each net's weights as (in, out), its bias
        as the last input row, and a pass-through of the constant last input (ReLU keeps it 1).
        A narrower input is padded with rows of zeros (its extra inputs are 0 too)."""
        if stems not in self._nets:
            nets = [self._net(s) for s in stems]
            if len({tuple(w.shape for w, _ in net[1:]) for net in nets}) != 1:
                raise ValueError(f"stems: {stems} are nets of different shapes; they cannot run side by side")
            layers = []
            for k in range(len(nets[0])):
                out = nets[0][k][0].shape[0]
                inp = max(net[k][0].shape[1] for net in nets)
                last = k == len(nets[0]) - 1
                A = np.zeros((len(nets), inp + 1, out + (0 if last else 1)), dtype=np.float32)
                for g, net in enumerate(nets):
                    w, b = net[k]
                    A[g, :w.shape[1], :out], A[g, inp, :out] = w.T, b
                    if not last:
                        A[g, inp, out] = 1.0
                layers.append(A)
            self._nets[stems] = layers
        return self._nets[stems]


def mlp(layers, h: np.ndarray) -> np.ndarray:
    """HW-GPT-Bench's 5-layer ReLU MLP (fc1..fc4 + ReLU, fc5 linear), in float32 as there, for one
    or several nets side by side (`HWGPTPredictors._stacked`); `h`: (nets, rows, in + 1), each net's
    input then a constant 1; returns (rows, nets). The bias is a weight of that constant input,
    so a layer is one matrix product (and its ReLU)."""
    for k, A in enumerate(layers):
        h = h @ A
        if k < len(layers) - 1:
            np.maximum(h, 0, out=h)
    return h[:, :, 0].T.astype(np.float64)


def one_hot(F, out=None) -> np.ndarray:
    """`convert_config_to_one_hot` for every row of F (float32), written into `out` (zeros, one
    column wider than the encoding: its last column takes the writes of empty slots, as the
    constant input of `mlp` does) when given."""
    pos, _, _, offsets, width = _encoding(F.space.name)
    if out is None:
        return one_hot(F, np.zeros((len(F), width + 1), dtype=np.float32))[:, :width]
    P = pos.ravel()[np.asarray(F, dtype=np.intp) + offsets]         # one-hot position, -1 for none
    out[np.arange(len(P))[:, None], P] = 1.0
    return out


def normalised(F) -> np.ndarray:
    """`get_arch_feature_map` + `normalize_arch_feature_map` for every row of F (float32)."""
    _, value, order, offsets, _ = _encoding(F.space.name)
    return value.ravel()[(np.asarray(F, dtype=np.intp) + offsets)[:, order]]


@lru_cache(maxsize=None)
def _encoding(space: str):
    """Both encodings as lookup tables, (feature, value) -> entry: a checked row holds 0 in the
    layer slots past its depth, so each encoding is one gather. `pos`: the one-hot position of a
    value (-1: none, as for empty slots); `value`: its normalised entry (float32); `order`: the
    feature columns in the normalised input's order; `offsets`: where each feature's row starts
    in the flattened tables; and the width of the one-hot input."""
    sp = get_space(space)
    lm, nE, nL, nR, nH = sp.max_layers, len(sp.embed_dims), len(sp.n_layers), len(sp.mlp_ratios), len(sp.n_heads)
    width = max(max(sp.embed_dims), max(sp.n_layers), max(sp.mlp_ratios), max(sp.n_heads), 1) + 1
    pos = np.full((sp.n_features, width), -1, dtype=np.intp)
    value = np.full((sp.n_features, width), -1.0)                 # -1: an empty slot

    def norm(v, choices):
        return (v - min(choices)) / (max(choices) - min(choices))
    for k, e in enumerate(sp.embed_dims):
        pos[0, e], value[0, e] = k, norm(e, sp.embed_dims)
    for k, n in enumerate(sp.n_layers):
        pos[1, n], value[1, n] = nE + k, norm(n, sp.n_layers)
    off_b = nE + nL + lm * (nR + nH)
    pos[2, 1], pos[2, 0] = off_b, off_b + 1                          # index 0 is bias "True"
    value[2, 1], value[2, 0] = 1.0, 0.0
    for i in range(lm):
        for k, r in enumerate(sp.mlp_ratios):
            pos[3 + i, r], value[3 + i, r] = nE + nL + i * nR + k, norm(r, sp.mlp_ratios)
        for k, h in enumerate(sp.n_heads):
            pos[3 + lm + i, h], value[3 + lm + i, h] = nE + nL + lm * nR + i * nH + k, norm(h, sp.n_heads)
    order = np.r_[0, 1, 3:3 + 2 * lm, 2]                            # normalised: bias last, as there
    return pos, value.astype(np.float32), order, np.arange(sp.n_features, dtype=np.intp) * width, int(pos.max()) + 1
