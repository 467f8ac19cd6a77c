"""Versioned benchmark suites: fixed problem sets for tuning (``dev``) and for reporting (``test``).

A suite version pins everything a result depends on besides the optimizer: the problems of each
split, the evaluation budget, the seeds, and for each problem its normalisation bounds and
hypervolume reference point in objective units. A published version never changes: when a problem
changes (its surrogates are refit and its bounds move) or a listed problem becomes available, that
makes a new version (``scripts/make_suite.py``), so results of one version stay comparable.
A problem listed in a split but not pinned had no served columns when its version was made: it is
reported "not available in this version", never silently dropped. Definitions live in
``suites.json`` next to this file (the split rule is written there and in docs/).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .problem import REF_POINT_MARGIN, available_problems, get_problem

__all__ = ["Suite", "get_suite", "suite_versions", "pin", "parse_suite", "SUITES_FILE", "SPLITS"]

SUITES_FILE = Path(__file__).resolve().parent / "suites.json"
SPLITS = ("dev", "test")
_RTOL = 1e-6          # bounds equal to this relative tolerance are the same problem


@dataclass(frozen=True)
class Suite:
    version: str
    budget: int
    seeds: tuple[int, ...]
    splits: dict            # split -> tuple of problem names
    pinned: dict            # problem name -> {"lower", "upper", "ref_point"} in signed objective units
    split_rule: str = ""

    def problems(self, split: str = "all") -> list[str]:
        """The problem names of a split ('dev', 'test', or 'all' = dev then test)."""
        if split == "all":
            return [p for s in SPLITS for p in self.splits[s]]
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {[*SPLITS, 'all']}, got {split!r}")
        return list(self.splits[split])

    def split_of(self, problem: str) -> str:
        for s in SPLITS:
            if problem in self.splits[s]:
                return s
        raise ValueError(f"problem: {problem!r} is not in suite {self.version}; its problems: "
                         f"{self.problems()}")

    def available(self, names=None) -> tuple[list[str], dict[str, str]]:
        """Split problem names (default: all) into those this version pins and the others, with why."""
        names = self.problems() if names is None else list(names)
        for n in names:
            self.split_of(n)
        ok = [n for n in names if n in self.pinned]
        _, missing = available_problems([n for n in names if n not in self.pinned])
        why = {n: missing.get(n, f"served now, but {self.version} was made before it was; a later "
                                 "suite version pins it") for n in names if n not in self.pinned}
        return ok, why

    def check(self, problem) -> None:
        """Refuse a problem whose bounds moved since this version pinned them (a changed problem)."""
        name = problem if isinstance(problem, str) else problem.name
        if name not in self.pinned:
            raise ValueError(f"problem: {name!r} is not available in suite {self.version} "
                             f"({self.available([name])[1][name]})")
        P = get_problem(problem)
        pinned = self.pinned[name]
        now_l, now_u = np.asarray(P.lower, float), np.asarray(P.upper, float)
        if not (np.allclose(now_l, pinned["lower"], rtol=_RTOL, atol=0)
                and np.allclose(now_u, pinned["upper"], rtol=_RTOL, atol=0)):
            raise ValueError(
                f"problem {P.name!r}: suite {self.version} pins bounds lower={pinned['lower']} "
                f"upper={pinned['upper']}, the package now serves lower={now_l.tolist()} "
                f"upper={now_u.tolist()}: the problem changed (surrogates refit?), so its results "
                "would not compare with this version's; make a new suite version with "
                "scripts/make_suite.py")

    def is_official(self, budget: int, seeds) -> bool:
        """Whether runs of this budget and seed set are the suite's own setting."""
        return int(budget) == self.budget and sorted(int(s) for s in seeds) == list(self.seeds)


def _load() -> dict:
    try:
        data = json.loads(SUITES_FILE.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{SUITES_FILE}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("schema") != 1 or not isinstance(data.get("suites"), dict) or not data["suites"]:
        raise ValueError(f"{SUITES_FILE.name}: expected schema 1 with a non-empty 'suites' mapping")
    return data["suites"]


def suite_versions() -> list[str]:
    """Published suite versions, oldest first."""
    return list(_load())


def get_suite(version: str | None = None) -> Suite:
    """A published suite version (default: the newest), validated on load."""
    suites = _load()
    version = list(suites)[-1] if version is None else version
    if version not in suites:
        raise ValueError(f"suite: unknown version {version!r}; published: {list(suites)}")
    return parse_suite(version, suites[version])


def parse_suite(version: str, e: dict) -> Suite:
    """A Suite from its suites.json entry, or a ValueError naming what is wrong."""
    def bad(what):
        return ValueError(f"{SUITES_FILE.name}: suite {version}: {what}")
    budget, seeds = e.get("budget"), e.get("seeds")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise bad(f"budget must be an int >= 1, got {budget!r}")
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise bad(f"seeds must be distinct ints >= 0, got {seeds!r}")
    splits = e.get("splits", {})
    if set(splits) != set(SPLITS):
        raise bad(f"splits must be exactly {list(SPLITS)}, got {list(splits)}")
    names = [p for s in SPLITS for p in splits[s]]
    if len(set(names)) != len(names):
        raise bad("a problem may be in one split only")
    pinned = e.get("pinned", {})
    for name, p in pinned.items():
        if name not in names:
            raise bad(f"pinned problem {name!r} is in no split")
        n_obj = len(name.split(":", 1)[1].split(","))
        lo, up, ref = (np.asarray(p.get(k, []), dtype=float) for k in ("lower", "upper", "ref_point"))
        if not (lo.shape == up.shape == ref.shape == (n_obj,)) or not np.all(up > lo):
            raise bad(f"{name!r}: lower, upper, ref_point must have {n_obj} values with upper > lower")
        if not np.allclose(ref, up + REF_POINT_MARGIN * (up - lo), rtol=1e-12):
            raise bad(f"{name!r}: ref_point must be upper + {REF_POINT_MARGIN} x (upper - lower)")
    return Suite(version, budget, tuple(seeds), {s: tuple(splits[s]) for s in SPLITS},
                 dict(pinned), e.get("split_rule", ""))


def pin(names) -> dict:
    """Bounds and reference point in objective units of each problem, as the package serves them
    now (for a new suite version; problems whose columns are not served are left out)."""
    ok, _ = available_problems(list(names))
    out = {}
    for name in ok:
        P = get_problem(name)
        lo, up = np.asarray(P.lower, float), np.asarray(P.upper, float)
        out[name] = {"lower": lo.tolist(), "upper": up.tolist(),
                     "ref_point": (up + REF_POINT_MARGIN * (up - lo)).tolist()}
    return out
