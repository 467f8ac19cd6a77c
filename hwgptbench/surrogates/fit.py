"""Fitting (extra ``fit``: xgboost, scipy): one surrogate per target `discover` finds, written with
the on-disk format of `store`.

* **Mean** — the median of an architecture's raw repeats, in log space: a Huber-weighted least
  squares line on `BASELINE_INPUTS` plus xgboost trees (pseudo-Huber) on its residual; the number
  of boosting rounds (0 = the line alone) is chosen by cross-validation.
* **Noise** — trees predict each architecture's robust log scale (1.4826 * MAD of its log
  repeats); the pooled standardised residuals give the distribution noisy queries draw from.
* **Interval** — `serve.interval`, with tau the cross-validated model error and its quantiles
  calibrated on out-of-fold predictions of architectures the fold's model never saw.
* **Quality** — on a held-out 20% of architectures (a seeded hash of the id: the same ones on
  every device, stable as tables grow); the shipped model is the scored one.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import platform
from pathlib import Path

import numpy as np
import scipy
import xgboost as xgb

from .. import __version__
from ..space import SPACES, get_space
from ..paths import is_shipped_surrogates
from ..tables import is_rehearsal
from ..validation import check_str_list
from .design import BASELINE_INPUTS, baseline, baseline_matrix, design_matrix, feature_names
from .discover import Target, discover, median_of_repeats
from .quality import held_out_quality
from .serve import interval, total_scale
from .store import (SCHEMA_VERSION, SurrogateError, read_manifest, remove_stale, sha256, write_manifest,
                    write_model_files)

__all__ = ["FitSettings", "fit_all", "fit_target", "holdout_mask", "LEVELS"]

LEVELS = np.linspace(0.0, 1.0, 101)          # quantile levels of the stored empirical distributions
_S_FLOOR = 1e-6                              # log-scale floor for architectures with identical repeats


class _TooFewRows(SurrogateError):
    """Not enough measured architectures to fit and score a surrogate (reported, not raised)."""


@dataclasses.dataclass(frozen=True)
class FitSettings:
    holdout: float = 0.2
    seed: int = 20261122
    folds: int = 5
    rounds_grid: tuple = (0, 10, 20, 40, 80, 160)   # boosting rounds, chosen by cross-validation
    rounds_tolerance: float = 0.01      # ... as the fewest rounds within 1% of the best CV loss
    max_depth: int = 3
    eta: float = 0.1
    huber: float = 0.1                  # log-space Huber width of baseline and trees (robust to bursts)
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 2.0
    coverage: float = 0.9
    nthread: int = 1
    min_rows: int = 20

    def xgb_params(self, seed_offset: int = 0, robust: bool = True) -> dict:
        p = {"objective": "reg:squarederror", "max_depth": self.max_depth, "eta": self.eta,
             "subsample": self.subsample, "colsample_bytree": self.colsample_bytree,
             "min_child_weight": self.min_child_weight, "nthread": self.nthread,
             "seed": self.seed + seed_offset, "tree_method": "hist", "base_score": 0.0}
        if robust:
            p.update(objective="reg:pseudohubererror", huber_slope=self.huber)
        return p


# ---- splits -------------------------------------------------------------------------------------
def _unit_hash(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:13], 16) / 16 ** 13


def holdout_mask(arch_ids, fraction: float, seed: int) -> np.ndarray:
    """True for held-out architectures: a seeded hash of the id, stable as tables grow."""
    return np.array([_unit_hash(f"{seed}:holdout:{a}") < fraction for a in arch_ids], dtype=bool)


def _folds(arch_ids, k: int, seed: int) -> np.ndarray:
    return np.array([int(_unit_hash(f"{seed}:fold:{a}") * k) for a in arch_ids], dtype=np.int64)


# ---- models -------------------------------------------------------------------------------------
def _huber_lstsq(B, y, delta: float, iters: int = 50) -> np.ndarray:
    """Least squares with Huber weights (IRLS): a few burst-contaminated medians do not tilt it."""
    w = np.ones(len(y))
    coef = np.zeros(B.shape[1])
    for _ in range(iters):
        sw = np.sqrt(w)
        new, *_ = np.linalg.lstsq(B * sw[:, None], y * sw, rcond=None)
        r = np.abs(y - B @ new)
        w = np.where(r <= delta, 1.0, delta / np.maximum(r, 1e-12))
        if np.allclose(new, coef, rtol=0, atol=1e-10):
            break
        coef = new
    return new


def _base(D, coef, n_raw, kind) -> np.ndarray:
    return baseline(baseline_matrix(D, n_raw), coef) if kind == "mean" else np.full(len(D), coef[0])


def _fit_model(D, y, n_raw, settings, rounds, seed_offset, kind):
    """kind 'mean': robust log baseline + pseudo-Huber trees on its residual; kind 'noise':
    constant (median) base + squared-error trees. Returns (base coefficients, booster)."""
    coef = (_huber_lstsq(baseline_matrix(D, n_raw), y, settings.huber) if kind == "mean"
            else np.array([np.median(y)]))
    margin = _base(D, coef, n_raw, kind).astype(np.float32)
    booster = xgb.train(settings.xgb_params(seed_offset, robust=kind == "mean"),
                        xgb.DMatrix(D, label=y, base_margin=margin), num_boost_round=rounds)
    return coef, booster


def _predict_booster(booster, D, margin, rounds=None) -> np.ndarray:
    """margin + the first `rounds` trees (all trees when None), by xgboost itself."""
    if rounds == 0:
        return np.asarray(margin, dtype=np.float64)
    kw = {"iteration_range": (0, rounds)} if rounds else {}
    return booster.inplace_predict(D, base_margin=np.asarray(margin, np.float32), **kw).astype(np.float64)


def _cv_fit(D, y, n_raw, folds, settings, kind, seed_offset=0):
    """Choose the number of boosting rounds by cross-validation (0 = the base alone), then fit on
    all rows. Returns (coef, booster, rounds, out-of-fold predictions at those rounds, cv loss)."""
    grid = sorted(settings.rounds_grid)
    oof = np.zeros((len(grid), len(y)))
    for k in range(settings.folds):
        m = folds == k
        if not m.any() or m.all():
            oof[:, m] = np.median(y)
            continue
        coef_k, b_k = _fit_model(D[~m], y[~m], n_raw, settings, grid[-1], seed_offset + k + 1, kind)
        base_k = _base(D[m], coef_k, n_raw, kind)
        for g, r in enumerate(grid):
            oof[g, m] = _predict_booster(b_k, D[m], base_k, r)
    loss = np.mean(np.abs(oof - y[None, :]), axis=1)            # mean absolute (log) error
    # the fewest rounds within 1% of the best loss: smaller, faster models at no real cost
    best = int(np.flatnonzero(loss <= loss.min() * (1 + settings.rounds_tolerance))[0])
    coef, booster = _fit_model(D, y, n_raw, settings, grid[best], seed_offset, kind)
    return coef, booster, grid[best], oof[best], {str(r): round(float(v), 5) for r, v in zip(grid, loss)}


def _robust_scale(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(1.4826 * np.median(np.abs(v - np.median(v)))) if v.size else 0.0


# ---- one target ---------------------------------------------------------------------------------
def fit_target(target: Target, table, settings: FitSettings, table_sha: str):
    """Fit one surrogate; returns (manifest entry without files, {suffix: bytes})."""
    sp = get_space(target.space)
    proto = (table.provenance or {}).get("protocol", {}) if target.kind == "profile" else {}
    batch, seq = int(proto.get("batch", 1)), int(proto.get("seq", sp.block_size))
    raw = np.asarray(table.raw[target.metric], dtype=np.float64)
    med = median_of_repeats(raw)
    keep = np.isfinite(med) & (med > 0)
    ids = [a for a, k in zip(table.arch_ids, keep) if k]
    raw, med = raw[keep], med[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(np.isfinite(raw) & (raw > 0), np.log(raw), np.nan)
    D = design_matrix(ids, sp, batch, seq)
    n_raw = sp.n_features
    y = np.log(med)
    test = holdout_mask(ids, settings.holdout, settings.seed)
    train = ~test
    if train.sum() < settings.min_rows:
        raise _TooFewRows(f"only {int(train.sum())} training architectures (< {settings.min_rows})")

    # Out-of-fold predictions on the training split: calibration data the fold model never saw.
    ids_tr = [a for a, t in zip(ids, train) if t]
    D_tr, y_tr, logs_tr = D[train], y[train], logs[train]
    folds = _folds(ids_tr, settings.folds, settings.seed)
    coef, booster, rounds, oof, cv_loss = _cv_fit(D_tr, y_tr, n_raw, folds, settings, "mean")

    # Noise: robust per-architecture log scale of the repeats, and their standardised residuals.
    n_rep = np.isfinite(logs_tr).sum(axis=1)
    s = np.array([_robust_scale(r) if c >= 2 else np.nan for r, c in zip(logs_tr, n_rep)])
    has_s = np.isfinite(s)
    stochastic = bool(has_s.sum() >= settings.min_rows and np.median(s[has_s]) > 0)
    noise_booster, noise_base, eps_q = None, 0.0, np.zeros(len(LEVELS))
    noise_rounds, noise_cv = 0, {}
    s_hat_tr = np.zeros(len(y_tr))
    if stochastic:
        ls = np.log(np.maximum(s[has_s], _S_FLOOR))
        nc, noise_booster, noise_rounds, _, noise_cv = _cv_fit(D_tr[has_s], ls, n_raw, folds[has_s],
                                                               settings, "noise", seed_offset=100)
        noise_base = float(nc[0])
        s_hat_tr = np.exp(_predict_booster(noise_booster, D_tr, np.full(len(D_tr), noise_base)))
        # standardise by the smooth predicted scale, not the noisy per-arch MAD (whose small
        # values would blow up the tails)
        eps = ((logs_tr - np.log(med[train])[:, None]) / s_hat_tr[:, None]).ravel()
        eps = eps[np.isfinite(eps) & (eps != 0)]     # drop each odd-sized row's median itself
        eps_q = np.quantile(eps, LEVELS)

    # Interval: out-of-fold residuals of single measurements, standardised by the total scale.
    tau = _robust_scale(y_tr - oof)
    z = ((logs_tr - oof[:, None]) / np.maximum(total_scale(s_hat_tr, tau), _S_FLOOR)[:, None]).ravel()
    a = (1 - settings.coverage) / 2
    q_lo, q_hi = np.quantile(z[np.isfinite(z)], [a, 1 - a])

    quality = {"n_test": int(test.sum())}
    if test.sum() >= 3:
        mu_t = _predict_booster(booster, D[test], baseline(baseline_matrix(D[test], n_raw), coef))
        s_t = (np.exp(_predict_booster(noise_booster, D[test], np.full(test.sum(), noise_base)))
               if stochastic else np.zeros(test.sum()))
        lo, hi = interval(mu_t, s_t, tau, q_lo, q_hi)
        quality.update({k: v if np.isfinite(v) else None       # JSON has no NaN: null, said as n/a
                        for k, v in held_out_quality(mu_t, med[test], raw[test], lo, hi).items()})

    entry = {
        "space": target.space, "table": target.table, "table_sha256": table_sha,
        "kind": target.kind, "source": target.source, "device": target.device,
        "metric": target.metric, "column": target.column, "unit": target.unit,
        "data_source": target.data_source,
        "protocol": proto, "derived_features_at": {"batch": batch, "seq": seq},
        "hardware": _hardware_summary(table.provenance.get("hardware", {}) if target.kind == "profile" else {}),
        "coverage": settings.coverage,
        "inputs": feature_names(sp), "baseline_inputs": list(BASELINE_INPUTS),
        "model": "Huber least-squares log baseline + xgboost pseudo-Huber trees on its residual",
        "target": f"log of the median of the raw repeats of {target.metric} ({target.unit})",
        "noise_model": ("booster on the log of 1.4826*MAD of log repeats; pooled standardised residuals"
                        if stochastic else "none: repeats identical or too few (deterministic metric)"),
        "boosting_rounds": int(rounds),
        "cv_mean_abs_log_error": cv_loss,
        "noise_boosting_rounds": int(noise_rounds), "noise_cv_mean_abs_error": noise_cv,
        "n_train": int(train.sum()), "n_test": int(test.sum()), "n_rows": int(len(ids)),
        "n_repeats_median": float(np.median(np.isfinite(raw).sum(axis=1))),
        "n_nonpositive_repeats_ignored": int(np.sum(np.isfinite(raw) & (raw <= 0))),
        "train_arch_ids_sha256": sha256("\n".join(ids_tr).encode()),
        "quality": quality,
        **({"measured_by": table.provenance["measured_by"]} if table.provenance.get("third_party") else {}),
    }
    arrays = {"baseline_coef": coef.astype(np.float64), "levels": LEVELS, "noise_quantiles": eps_q,
              "noise_base": np.float64(noise_base), "interval": np.array([q_lo, q_hi, tau], dtype=np.float64),
              "coverage": np.float64(settings.coverage), "stochastic": np.bool_(stochastic)}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    files = {".ubj": bytes(booster.save_raw("ubj")), ".npz": buf.getvalue()}
    if stochastic:
        files[".noise.ubj"] = bytes(noise_booster.save_raw("ubj"))
    return entry, files


def _hardware_summary(hw: dict) -> dict:
    """The table's hardware strings without the long raw `lscpu` dump."""
    return {k: ({kk: vv for kk, vv in v.items() if kk != "lscpu"} if isinstance(v, dict) else v)
            for k, v in hw.items()}


# ---- everything -----------------------------------------------------------------------------------
def fit_all(data_dir, out_dir, settings: FitSettings = FitSettings(), spaces=None, log=print) -> dict:
    """Fit every surrogate that the tables in `data_dir` allow and (re)write `out_dir`; returns the
    manifest. The public fitting entry point (CLI `hwgptbench fit-surrogates`).

    With `spaces`, only those spaces are refitted and the others' surrogates are kept. A missing or
    empty `data_dir` (no table of the spaces asked) is refused before anything is written. New
    model files are written beside the old ones (their names carry their sha256), then the
    manifest atomically, then files no manifest lists are removed: a run that fails at any point
    leaves a folder that loads (the old surrogates, or the new ones).
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if spaces is not None:
        spaces = check_str_list(spaces, "spaces")
        unknown = sorted(set(spaces) - set(SPACES))
        if unknown:
            raise ValueError(f"spaces: unknown {unknown}; allowed: {sorted(SPACES)}")
    if not data_dir.is_dir():
        what = "is a file" if data_dir.exists() else "does not exist"
        raise FileNotFoundError(f"data: {str(data_dir)!r} {what}; expected the folder of measured tables "
                                "({space}/{device}.h5, e.g. data/)")
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"out: {str(out_dir)!r} is a file; expected the surrogates folder")
    found = sorted(p.relative_to(data_dir).as_posix() for sp in (spaces or SPACES)
                   for p in (data_dir / sp).glob("*.h5"))
    if not found:
        raise FileNotFoundError(f"data: {str(data_dir)!r} holds no table of spaces {sorted(spaces or SPACES)} "
                                "({space}/*.h5); refusing to replace the surrogates in "
                                f"{str(out_dir)!r} with none")
    old = read_manifest(out_dir) if spaces else None     # checked before any work
    targets, unavailable, snaps = discover(data_dir, settings.min_rows)
    if spaces:
        targets = [t for t in targets if t.space in spaces]
        unavailable = [u for u in unavailable if u["space"] in spaces]
    rehearsals = sorted({t.table for t in targets if is_rehearsal(snaps[t.table][0])})
    if rehearsals and is_shipped_surrogates(out_dir):
        raise ValueError(f"data: {rehearsals} come from a rehearsal; their surrogates never go into the "
                         f"package's surrogates folder {str(out_dir)!r}: fit them into a scratch folder (--out)")
    entries, written = {}, set()
    for t in targets:
        table, sha = snaps[t.table]
        start = datetime.datetime.now(datetime.timezone.utc)
        try:
            entry, files = fit_target(t, table, settings, sha)
        except _TooFewRows as e:
            unavailable.append({"key": t.key, "column": t.column, "table": t.table, "space": t.space,
                                "reason": str(e)})
            continue
        if t.table in rehearsals:
            entry["rehearsal"] = True
        entry["files"] = write_model_files(out_dir, f"{t.space}/{t.source}/{t.metric}", files)
        written.update(f["path"] for f in entry["files"].values())
        entry["fit_seconds"] = round((datetime.datetime.now(datetime.timezone.utc) - start).total_seconds(), 2)
        entries[t.key] = entry
        q = {k: float("nan") if v is None else v for k, v in entry["quality"].items()}
        log(f"{t.key}: n_train={entry['n_train']} n_test={entry['n_test']} "
            f"tau={q.get('kendall_tau', float('nan')):.3f} R2={q.get('r2', float('nan')):.3f} "
            f"MAPE={q.get('mape', float('nan')):.3f} cov90={q.get('coverage90', float('nan')):.3f} "
            f"({entry['fit_seconds']} s)")
    for u in unavailable:
        log(f"{u['key']}: no surrogate ({u['reason']})")
    if old:                 # keep other spaces' surrogates when refitting only some spaces
        for k, e in old.get("surrogates", {}).items():
            if e["space"] not in spaces:
                entries.setdefault(k, e)
                written.update(f["path"] for f in e["files"].values())
        unavailable += [u for u in old.get("unavailable", []) if u["space"] not in spaces]
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "library_versions": {"python": platform.python_version(), "numpy": np.__version__,
                             "xgboost": xgb.__version__, "scipy": scipy.__version__,
                             "hwgptbench": __version__},
        "settings": dataclasses.asdict(settings),
        "surrogates": dict(sorted(entries.items())),
        "unavailable": sorted(unavailable, key=lambda u: u["key"]),
    }
    manifest = write_manifest(out_dir, manifest)     # the switch: old files stay until it is done
    remove_stale(out_dir, SPACES, written)
    return manifest
