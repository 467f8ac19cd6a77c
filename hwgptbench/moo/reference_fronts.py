"""Normalisation bounds and reference Pareto fronts of the standard problems (the package's
`moo/problems.json` and `moo/fronts/`); `scripts/make_reference_fronts.py` and `gpu-plan merge` run it.

    python scripts/make_reference_fronts.py [--problems s:-params,flops ...]

For each problem (whose columns the Benchmark serves now), evaluates a large budget: a fixed
random sample, the smallest and largest architectures, and long NSGA-II and Pareto-local-search
runs (a space with no more architectures than the sample, xs, is evaluated whole: its exact front); bounds are the objective ranges over everything evaluated, the reference front is the
non-dominated set of it. Writes hwgptbench/moo/fronts/<problem>.<sha12>.npz (F: signed objectives, X:
feature rows; no pickle), then (atomically, checked) hwgptbench/moo/problems.json with each file's
sha256, then removes the fronts it no longer lists: an interrupted run leaves a registry whose
fronts all exist and match.
Rerun after the surrogates change (their predictions, hence fronts and bounds, move).
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import time
import warnings

import numpy as np

from ..files import write_bytes
from . import problem as pm
from .indicators import nondominated

__all__ = ["make_reference_fronts", "file_name", "MADE_BY"]

MADE_BY = "scripts/make_reference_fronts.py"


def file_name(name: str, digest: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace("-", "neg").replace(",", "__"))
    return f"{stem}.{digest[:12]}.npz"


def make_reference_fronts(problems=None, random: int = 100_000, budget: int = 10_000, seeds: int = 3,
                          log=print) -> list[str]:
    """Compute bounds and fronts of `problems` (default: every standard problem served now) and
    write them into the package's registry; returns the problem names written."""
    names = problems
    if names is None:
        names, missing = pm.available_problems()
        for n, why in missing.items():
            log(f"skip {n}: {why}")
    pm.FRONTS_DIR.mkdir(exist_ok=True)
    registry = json.loads(pm.REGISTRY.read_text())["problems"] if pm.REGISTRY.exists() else {}
    for name in names:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            P = pm.get_problem(name)
        sp = P.space
        exhaustive = sp.size <= random            # a space smaller than the sample: its exact front
        if exhaustive:
            Xs = [sp.all_features()]
        else:
            Xs = [sp.sample_features(random, seed=12345), sp.encode([sp.smallest(), sp.largest()])]
            for opt, options in (("nsga2", {"pop_size": 200}), ("pls", {}), ("morea", {})):
                for seed in range(seeds):
                    Xs.append(_features_of_run(P, opt, options, budget, 1000 + seed))
        X = np.unique(np.vstack(Xs), axis=0)
        R = P.raw(X)
        nd = nondominated(R)
        # one architecture per distinct objective vector (layer permutations tie exactly)
        F, first = np.unique(R[nd], axis=0, return_index=True)
        Xf = X[nd][first]
        order = np.lexsort(F.T[::-1])
        buf = io.BytesIO()
        np.savez_compressed(buf, F=F[order], X=Xf[order])
        # named by its sha256: the old front stays beside it until the new registry is written
        path = pm.FRONTS_DIR / file_name(P.name, hashlib.sha256(buf.getvalue()).hexdigest())
        write_bytes(path, buf.getvalue())
        registry[P.name] = {
            "space": sp.name, "objectives": list(P.objectives),
            "lower": R.min(axis=0).tolist(), "upper": R.max(axis=0).tolist(),
            "ref_point_normalised": [1.0 + pm.REF_POINT_MARGIN] * P.n_obj,
            "front_file": path.name, "front_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "n_front": int(len(F)), "n_evaluated": int(len(X)),
            "surrogates_fingerprint": P.surrogates_fingerprint(),
            "made_by": f"{MADE_BY} --random {random} --budget {budget} --seeds {seeds}"
                       + (f" (exhaustive: all {sp.size} architectures)" if exhaustive else ""),
        }
        log(f"{P.name}: {len(F)} front points from {len(X)} architectures "
              f"({time.perf_counter() - t0:.1f} s)")
    out = {"schema": 1, "problems": registry}
    for name in registry:                             # the registry is checked as it is loaded
        pm.check_registry_entry(name, registry[name], pm.REGISTRY)
    write_bytes(pm.REGISTRY, (json.dumps(out, indent=1, allow_nan=False) + "\n").encode())   # after its fronts
    listed = {e["front_file"] for e in registry.values()}
    for old in pm.FRONTS_DIR.glob("*.npz"):           # fronts no registry entry lists any more
        if old.name not in listed:
            old.unlink()
    return list(names)


def _features_of_run(P, opt, options, budget, seed):
    """Feature rows a run evaluated (re-run through ask/tell; deterministic under the seed)."""
    from .optimizers import make_optimizer
    o = make_optimizer(opt, P, seed=seed, **options)
    Xs, n = [], 0
    while n < budget:
        X = o.ask()
        o.tell(X, P(X))
        Xs.append(X)
        n += len(X)
    return np.vstack(Xs)

