"""Serving: load fitted surrogates (checksum-verified, lazily, once) and predict with numpy alone.

A surrogate predicts in log space, ``mu(x) = baseline(x) + trees(x)``, so every prediction is
positive. ``noise=True`` draws a plausible single measurement ``exp(mu + s(x) * eps)`` (``s`` from
the noise trees, ``eps`` from the stored empirical quantiles); the interval for a new measurement
is `interval` below, the one formula fitting calibrates and serving applies.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..columns import fidelity_aliases
from .design import BASELINE_INPUTS, DERIVED, baseline, baseline_matrix, feature_names
from .store import SCHEMA_VERSION, SurrogateError, read_manifest, read_verified
from .trees import Forest, TreeEnsemble

__all__ = ["Surrogate", "MeanGroup", "SurrogateStore", "StaleSurrogateWarning", "interval", "total_scale"]


def total_scale(s, tau):
    """Log-scale spread of a new measurement: its own noise `s(x)` and the model's error `tau`."""
    return np.sqrt(np.square(s) + tau ** 2)


def interval(mu, s, tau: float, q_lo: float, q_hi: float):
    """``exp(mu + q * sqrt(s^2 + tau^2))`` at the calibrated quantiles (q_lo, q_hi)."""
    sc = total_scale(s, tau)
    return np.exp(mu + q_lo * sc), np.exp(mu + q_hi * sc)


class Surrogate:
    """One fitted surrogate: mean, interval and seeded noisy draws for a design matrix."""

    def __init__(self, entry: dict, root: Path):
        self.entry = entry
        self.column = entry["column"]
        if entry["inputs"] != feature_names(entry["space"]):
            raise SurrogateError(f"{self.column}: manifest inputs {entry['inputs']} are not this version's "
                                 f"feature names of space {entry['space']!r}; refit")
        self.n_raw = len(entry["inputs"]) - len(DERIVED)
        blobs = {k: read_verified(root, f) for k, f in entry["files"].items()}
        z = _arrays(blobs["npz"], entry["files"]["npz"]["path"])
        self.coef, self.levels, self.eps_q = z["baseline_coef"], z["levels"], z["noise_quantiles"]
        self.noise_base = float(z["noise_base"])
        self.q_lo, self.q_hi, self.tau = (float(v) for v in z["interval"])
        self.stochastic = bool(z["stochastic"])
        self.trees = TreeEnsemble.from_ubj(blobs["ubj"], f"{self.column} mean model")
        self.noise_trees = None
        if self.stochastic:
            if "noise_ubj" not in blobs:
                raise SurrogateError(f"{self.column}: manifest lists no noise model file")
            self.noise_trees = TreeEnsemble.from_ubj(blobs["noise_ubj"], f"{self.column} noise model")

    def log_mean(self, D: np.ndarray) -> np.ndarray:
        return self.trees.predict(D, baseline(baseline_matrix(D, self.n_raw), self.coef))

    def log_noise_scale(self, D: np.ndarray) -> np.ndarray:
        if not self.stochastic:
            return np.full(len(D), -np.inf)
        return self.noise_trees.predict(D, np.full(len(D), self.noise_base))

    def predict(self, D, noise: bool = False, rng=None, log_mean=None) -> np.ndarray:
        """The median (or, with `noise`, a seeded draw of one measurement); `log_mean`: this
        surrogate's `log_mean(D)` when already computed (a `MeanGroup` computes many at once)."""
        mu = self.log_mean(D) if log_mean is None else log_mean
        if noise and self.stochastic:
            u = rng.random(len(D))
            mu = mu + np.exp(self.log_noise_scale(D)) * np.interp(u, self.levels, self.eps_q)
        return np.exp(mu)

    def interval(self, D) -> tuple[np.ndarray, np.ndarray]:
        return interval(self.log_mean(D), np.exp(self.log_noise_scale(D)), self.tau, self.q_lo, self.q_hi)


class MeanGroup:
    """The mean predictions of several surrogates, computed together: their baselines side by
    side and one `Forest` for all their trees. `reads[i]`: which of the design matrices given to
    `predict` surrogate i reads (they differ in the (batch, seq) of their derived features; default:
    all read the first). Each result equals that surrogate's own `predict(D)` bit for bit (a test
    checks it); only numpy's per-call cost is shared."""

    def __init__(self, surrogates, reads=None):
        self.surrogates = list(surrogates)
        self.reads = [0] * len(self.surrogates) if reads is None else [int(k) for k in reads]
        if len(self.reads) != len(self.surrogates):
            raise ValueError(f"reads: {len(self.reads)} entries for {len(self.surrogates)} surrogates")
        if len({s.n_raw for s in self.surrogates}) > 1:
            raise ValueError("surrogates: a MeanGroup needs surrogates of one space (one design layout)")
        self._fused = [i for i, s in enumerate(self.surrogates) if s.trees.depth <= 3]
        width = self.surrogates[0].n_raw + len(DERIVED) if self.surrogates else 0
        self._forest = Forest([self.surrogates[i].trees for i in self._fused],
                              [self.reads[i] * width for i in self._fused])
        self._reads_fused = np.array([self.reads[i] for i in self._fused], dtype=np.intp)
        self._coef = np.array([self.surrogates[i].coef for i in self._fused], dtype=np.float64
                              ).reshape(len(self._fused), len(BASELINE_INPUTS)).T

    def predict(self, designs, log: bool = False) -> list[np.ndarray]:
        """One array per surrogate, its `predict(D)` (with `log`, its `log_mean(D)`); `designs`: the
        design matrices `reads` refers to, side by side as (n, k, d) (`design_matrices`), or one
        (n, d)."""
        D3 = designs[:, None, :] if designs.ndim == 2 else designs
        out = [None] * len(self.surrogates)
        if self._fused:
            n = len(D3)
            # every model's baseline at once, each from the design matrix it reads
            B = baseline_matrix(D3, self.surrogates[0].n_raw)
            mu = self._forest.predict(D3.reshape(n, -1), baseline(B[:, self._reads_fused], self._coef))
            if not log:
                mu = np.exp(mu)
            if len(self._fused) == len(out):
                return list(mu.T)
            for j, i in enumerate(self._fused):
                out[i] = mu[:, j]
        for i, s in enumerate(self.surrogates):
            if out[i] is None:                       # deeper trees: each on its own
                D = D3[:, self.reads[i]]
                out[i] = s.log_mean(D) if log else s.predict(D)
        return out


def _arrays(blob: bytes, path: str) -> dict:
    """The .npz arrays of one surrogate, each of the expected shape and finite (a NaN quantile
    would silently give NaN intervals or draws)."""
    n_base = len(BASELINE_INPUTS)
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            a = {k: np.asarray(z[k]) for k in ("baseline_coef", "levels", "noise_quantiles", "noise_base",
                                                 "interval", "stochastic")}
    except Exception as e:                     # zip/npy/key errors of a damaged file: one clear error
        raise SurrogateError(f"surrogate file {path!r}: not a surrogate's .npz ({type(e).__name__}: {e})") from None
    def need(ok, why):
        if not ok:
            raise SurrogateError(f"surrogate file {path!r}: {why}; refusing to serve it")

    lv, q, iv = a["levels"], a["noise_quantiles"], a["interval"]
    need(a["baseline_coef"].shape == (n_base,), f"baseline_coef: expected {n_base} values")
    need(lv.ndim == 1 and len(lv) >= 2 and q.shape == lv.shape,
         "levels/noise_quantiles: expected two 1-D arrays of the same length >= 2")
    need(iv.shape == (3,), "interval: expected (q_lo, q_hi, tau)")
    need(a["noise_base"].shape == () and a["stochastic"].shape == () and a["stochastic"].dtype == bool,
         "noise_base/stochastic: expected scalars (a number, a bool)")
    need(all(np.isfinite(a[k]).all() for k in ("baseline_coef", "levels", "noise_quantiles", "noise_base",
                                               "interval")), "NaN or inf in its arrays")
    need(lv[0] == 0 and lv[-1] == 1 and np.all(np.diff(lv) > 0) and np.all(np.diff(q) >= 0),
         "levels must rise from 0 to 1 and noise_quantiles must not fall")
    need(iv[0] < iv[1] and iv[2] >= 0, "interval: expected q_lo < q_hi and tau >= 0")
    return a


def _table_sha256(path: Path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


class StaleSurrogateWarning(UserWarning):
    """The table a surrogate was fitted on has changed since (refit to serve the new rows)."""


class SurrogateStore:
    """The surrogates of one folder: the manifest is read on first use, each model file is read,
    checksum-verified and parsed once, when first needed. No state is shared between stores."""

    def __init__(self, root=None, data=None):
        self._root = Path(root) if root is not None else None
        # the tables surrogates were fitted on, checked against each entry's table_sha256: the
        # shipped data for the shipped surrogates, else only the folder given
        self._data = Path(data) if data is not None else None if root is not None else ...
        self._checked_tables: set[str] = set()
        self._manifest = None
        self._entries: dict[str, dict] = {}
        self._models: dict[str, Surrogate] = {}

    @property
    def root(self) -> Path:
        if self._root is None:
            from ..paths import surrogates_dir
            self._root = surrogates_dir()
        return self._root

    @property
    def manifest(self) -> dict:
        if self._manifest is None:
            m = read_manifest(self.root)
            if m is None:
                m = {"schema_version": SCHEMA_VERSION, "surrogates": {}, "unavailable": [], "missing": True}
            self._manifest = m
        return self._manifest

    def entries(self, space: str) -> dict[str, dict]:
        """column -> manifest entry for one space, with the alias rule of `hwgptbench.columns`:
        a metric served at several training fidelities also answers to its bare name."""
        if space not in self._entries:
            out = {e["column"]: e for e in self.manifest["surrogates"].values() if e["space"] == space}
            for bare, last in fidelity_aliases(out).items():
                out[bare] = {**out[last], "column": bare, "metric": bare, "alias_of": last}
            self._entries[space] = out
        return self._entries[space]

    def unavailable(self, space: str) -> list[dict]:
        return [u for u in self.manifest.get("unavailable", []) if u["space"] == space]

    def get(self, space: str, column: str) -> Surrogate:
        key = f"{space}:{column}"
        if key not in self._models:
            entries = self.entries(space)
            if column not in entries:
                raise ValueError(f"columns: no surrogate for {column!r} in space {space!r}; "
                                 f"available: {sorted(entries)}")
            alias = entries[column].get("alias_of")
            if not alias:
                self._check_table(entries[column])
            self._models[key] = (self.get(space, alias) if alias
                                 else Surrogate(entries[column], self.root))
        return self._models[key]

    def _check_table(self, entry: dict) -> None:
        """Warn (once per table) when the table a surrogate was fitted on is present and differs:
        the surrogate still serves what it was fitted on, but not the rows measured since."""
        if self._data is ...:
            from ..paths import data_dir
            try:
                self._data = data_dir()
            except FileNotFoundError:          # an install without data: nothing to compare
                self._data = None
        table = entry["table"]
        if self._data is None or table in self._checked_tables:
            return
        self._checked_tables.add(table)
        path = self._data / table
        if path.is_file() and entry.get("table_sha256") != _table_sha256(path):
            import warnings
            warnings.warn(f"surrogate {entry['column']} ({self.root / 'manifest.json'}) was fitted on another "
                          f"version of {path} (table_sha256 differs): it does not reflect the table's "
                          "current rows; refit with `hwgptbench fit-surrogates`", StaleSurrogateWarning,
                          stacklevel=4)
