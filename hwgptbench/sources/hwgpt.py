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
from functools import cached_property
from pathlib import Path

import numpy as np

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


class HWGPTPredictors:
    """The `Source` of HW-GPT-Bench's predictors (see the module docstring). Weights are read
    lazily, each file once, after its sha256 is checked against assets/hwgpt/manifest.json."""

    name = "hwgpt"

    def __init__(self, assets=None):
        self.assets = Path(assets) if assets is not None else ASSETS
        self._nets: dict[str, list] = {}

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
        self._check(space, columns)
        out = np.empty((len(F), len(columns)))
        inputs = {}
        for j, c in enumerate(columns):
            stem = COLUMNS[c][0]
            kind = "one_hot" if stem == "perplexity" else "normalised"
            if kind not in inputs:
                inputs[kind] = one_hot(F) if kind == "one_hot" else normalised(F)
            out[:, j] = mlp(self._net(f"{stem}_{space}"), inputs[kind])
        bad = ~(np.isfinite(out) & (out >= 0))
        if bad.any():            # never clipped: a value the predictor should not give is an error
            i, j = np.argwhere(bad)[0]
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


def mlp(layers, x: np.ndarray) -> np.ndarray:
    """HW-GPT-Bench's 5-layer ReLU MLP (fc1..fc4 + ReLU, fc5 linear), in float32 as there."""
    h = x.astype(np.float32, copy=False)
    for k, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if k < len(layers) - 1:
            np.maximum(h, 0, out=h)
    return h[:, 0].astype(np.float64)


def one_hot(F) -> np.ndarray:
    """`convert_config_to_one_hot` for every row of F (float32)."""
    sp = F.space
    X = np.asarray(F, dtype=np.int64)
    lm = sp.max_layers
    E, L, bias = X[:, 0], X[:, 1], X[:, 2]
    live = np.arange(lm)[None, :] < L[:, None]                       # layer slot within the depth
    r, h = X[:, 3:3 + lm], X[:, 3 + lm:3 + 2 * lm]
    parts = [E[:, None] == np.array(sp.embed_dims), L[:, None] == np.array(sp.n_layers),
             ((r[:, :, None] == np.array(sp.mlp_ratios)) & live[:, :, None]).reshape(len(X), -1),
             ((h[:, :, None] == np.array(sp.n_heads)) & live[:, :, None]).reshape(len(X), -1),
             np.stack([bias == 1, bias == 0], axis=1)]                 # bias choices ("True", "False")
    return np.concatenate(parts, axis=1).astype(np.float32)


def normalised(F) -> np.ndarray:
    """`get_arch_feature_map` + `normalize_arch_feature_map` for every row of F (float32)."""
    sp = F.space
    X = np.asarray(F, dtype=np.int64)
    lm = sp.max_layers
    live = np.arange(lm)[None, :] < X[:, 1:2]

    def norm(v, choices):
        return (v - min(choices)) / (max(choices) - min(choices))
    r = np.where(live, norm(X[:, 3:3 + lm], sp.mlp_ratios), -1.0)
    h = np.where(live, norm(X[:, 3 + lm:3 + 2 * lm], sp.n_heads), -1.0)
    return np.concatenate([norm(X[:, :1], sp.embed_dims), norm(X[:, 1:2], sp.n_layers), r, h,
                           (X[:, 2:3] == 1).astype(np.float64)], axis=1).astype(np.float32)
