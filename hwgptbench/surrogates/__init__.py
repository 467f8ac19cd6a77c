"""Surrogates of measured metrics, one per (space, table, metric) found in ``data/``.

Serving needs only numpy (and the shipped files): `SurrogateStore` reads the manifest and model
files (sha256-verified), `Surrogate` predicts the median, noisy single measurements and a
calibrated interval, evaluating the saved trees in numpy. Fitting needs the ``fit`` extra
(xgboost, scipy) and lives in `fit` (imported only when `fit_all`, `FitSettings` or
`quality_table` is first used).

    discover.py   which tables and metrics can get a surrogate, and why the others cannot
    design.py     the model input: feature row + exact derived features; baseline inputs
    fit.py        fitting: `fit_all(data_dir, out_dir, settings, spaces=None)`     (extra `fit`)
    quality.py    held-out quality and its markdown table                          (extra `fit`)
    store.py      the on-disk format: manifest + files, sha256-checked, atomic writes
    serve.py      `SurrogateStore`, `Surrogate`, `MeanGroup`, the interval formula (numpy only)
    trees.py      xgboost trees as flat numpy arrays; `Forest`: several ensembles at once
    ubjson.py     a reader of the UBJSON xgboost saves trees in
"""
from .design import design_matrix, feature_names
from .serve import MeanGroup, Surrogate, SurrogateStore
from .store import MANIFEST, SCHEMA_VERSION, SurrogateError

__all__ = ["SurrogateError", "Surrogate", "MeanGroup", "SurrogateStore", "design_matrix", "feature_names", "Target",
           "discover", "MANIFEST", "SCHEMA_VERSION", "fit_all", "FitSettings", "quality_table"]

_FIT = {"fit_all": "fit", "FitSettings": "fit", "fit_target": "fit", "holdout_mask": "fit",
        "quality_table": "quality", "discover": "discover", "Target": "discover"}


def __getattr__(name):
    # fitting needs xgboost and scipy (extra `fit`): imported on first use, never by serving
    # (discovery needs only the core, but no query needs it either)
    if name in _FIT:
        import importlib
        try:
            module = importlib.import_module(f".{_FIT[name]}", __name__)
        except ImportError as e:
            raise ImportError(f"{name}: fitting surrogates needs the 'fit' extra (xgboost, scipy): "
                              f"pip install 'hwgptbench[fit]' ({e})") from e
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
