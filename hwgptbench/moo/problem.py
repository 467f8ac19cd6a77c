"""Multi-objective problems: a search space plus objective columns, all minimised.

An objective is a `Benchmark` column (``flops``, ``latency_ms@h100``, ``perplexity``) or a column
prefixed with ``-`` to maximise it (``-params``: a capacity proxy until perplexity exists); it is
negated so that every objective is minimised. Optimizers see objectives normalised with fixed
bounds shipped in ``problems.json`` (never taken from a run's own results); hypervolume uses the
fixed reference point 1.1 per normalised objective, and IGD+ the shipped reference front.
Regenerate both with ``scripts/make_reference_fronts.py`` after surrogates change.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from functools import cached_property
from pathlib import Path

import numpy as np

from ..benchmark import Benchmark
from ..columns import Column, fidelities, resolve
from ..space import get_space
from ..validation import check_bool, check_str_list
from .encoding import Encoding

__all__ = ["Problem", "get_problem", "shipped_problems", "problem_name", "available_problems",
           "STANDARD_PROBLEMS", "REF_POINT_MARGIN", "check_registry_entry"]

_HERE = Path(__file__).resolve().parent
REGISTRY = _HERE / "problems.json"
FRONTS_DIR = _HERE / "fronts"
REF_POINT_MARGIN = 0.1        # reference point = upper bound + 10% of the range, i.e. 1.1 normalised
_FALLBACK_SAMPLE = 20_000     # size of the fixed random sample used for bounds of unshipped problems
# Bounds of unshipped problems, computed once per process: (name, benchmark type, surrogates
# fingerprint) -> (lower, upper). A cache of a pure function of its key (tests may clear it).
_SAMPLED_BOUNDS: dict = {}
# What a column's values depend on, of what `Benchmark.metrics()` says (its labels, e.g. kind,
# source and licence, may be reworded without moving a bound or a front).
_FINGERPRINT_KEYS = ("metric", "device", "unit", "provenance", "estimator", "description", "quality", "file")

# The problem list of `hwgptbench reproduce`. Exact-objective problems use -params (capacity) as a
# stand-in for quality until perplexity exists; the others run once their columns are served.
STANDARD_PROBLEMS = (
    "s:-params,flops",
    "s:-params,memory_MB_analytic",
    "s:-params,flops,memory_MB_analytic",
    "s:-params,latency_ms@cpu_xeon_2c",
    "s:-params,latency_ms@cpu_xeon_f6m207_2c",      # CPU protocol 2: prefill ...
    "s:-params,decode_ms@cpu_xeon_f6m207_2c",       # ... and decode (ms per generated token)
    "s:perplexity,latency_ms@h100",
    "s:perplexity,energy_J@h100",
    "s:perplexity,latency_ms@h100,energy_J@h100",
) + tuple(                                           # HW-GPT-Bench's problem family, with its own
    f"{sp}:perplexity_hwgpt,{cost}"                  # perplexity predictor (a labelled third-party source)
    for sp in ("s", "m", "l")
    for cost in ("latency_ms@h100", "energy_J@h100", "memory_MB@h100", "latency_ms@cpu_xeon_f6m207_2c",
                 "decode_ms@cpu_xeon_f6m207_2c", "params")
) + tuple(                                           # xs: our own supernet's perplexity on a real
    f"xs:perplexity,{cost}"                          # fidelity axis, against costs measured on the CPU
    for cost in ("latency_ms@cpu_epyc_f25m17_2c", "decode_ms@cpu_epyc_f25m17_2c", "params"))


def parse_objectives(objectives) -> tuple[str, ...]:
    if isinstance(objectives, str):
        objectives = objectives.split(",")
    objs = tuple(o.strip() for o in check_str_list(objectives, "objectives"))
    if len(objs) < 2:
        raise ValueError(f"objectives: a multi-objective problem needs >= 2 objectives, got {list(objs)}")
    if any(not o or o == "-" for o in objs):
        raise ValueError(f"objectives: empty name in {list(objs)}")
    doubled = [o for o in objs if o.startswith("--")]
    if doubled:
        raise ValueError(f"objectives: {doubled} have more than one '-'; allowed: a column name, to "
                         "minimise it, or one '-' before it, to maximise it (e.g. '-params')")
    try:                                       # one optional '-' (maximise), then a column name
        cols = [str(Column.parse(o[1:] if o.startswith("-") else o)) for o in objs]
    except ValueError as e:
        raise ValueError(f"objectives: {e}") from None
    if len(set(cols)) != len(cols):
        raise ValueError(f"objectives: each column may appear once, got {list(objs)}")
    return objs


def problem_name(space, objectives) -> str:
    return f"{get_space(space).name}:{','.join(parse_objectives(objectives))}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _registry() -> dict:
    """problems.json, every entry checked (`check_registry_entry`); {} when there is none."""
    if not REGISTRY.exists():
        return {}
    try:
        data = json.loads(REGISTRY.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{REGISTRY}: not valid JSON ({e}); regenerate it with "
                         "scripts/make_reference_fronts.py") from None
    if not isinstance(data, dict) or data.get("schema") != 1 or not isinstance(data.get("problems"), dict):
        raise ValueError(f"{REGISTRY}: expected schema 1 with a 'problems' mapping")
    for name, e in data["problems"].items():
        check_registry_entry(name, e, REGISTRY)
    return data["problems"]


def check_registry_entry(name: str, e, path) -> None:
    """A problems.json entry: its name parses, bounds are finite with upper > lower, one per
    objective, and its front file is a plain name in fronts/ with a sha256."""
    def bad(what):
        raise ValueError(f"{path}: problem {name!r}: {what}")

    if not isinstance(e, dict):
        bad(f"expected an object, got {type(e).__name__}")
    try:
        space, objectives = name.split(":", 1)
        objs = parse_objectives(objectives)
    except (ValueError, TypeError) as err:
        bad(f"not a problem name ({err})")
    if e.get("space") != space or e.get("objectives") != list(objs):
        bad(f"space/objectives {e.get('space')!r}/{e.get('objectives')!r} do not match the name")
    try:
        lo, up = (np.asarray(e.get(k), dtype=np.float64) for k in ("lower", "upper"))
    except (TypeError, ValueError):
        bad("lower/upper must be lists of numbers")
    if lo.shape != (len(objs),) or up.shape != lo.shape or not (np.isfinite(lo).all() and np.isfinite(up).all()) \
            or not np.all(up > lo):
        bad(f"lower/upper must be {len(objs)} finite numbers each with upper > lower, got {e.get('lower')!r}, "
            f"{e.get('upper')!r}")
    f = e.get("front_file")
    if not isinstance(f, str) or Path(f).name != f or not f.endswith(".npz") or f.startswith("."):
        bad(f"front_file must be a .npz file name inside fronts/, got {f!r}")
    if not isinstance(e.get("front_sha256"), str) or len(e["front_sha256"]) != 64:
        bad("front_sha256 must be a sha256 (64 hex digits)")


def shipped_problems() -> list[str]:
    """Names of the problems whose bounds and reference front ship with the package."""
    return list(_registry())


class Problem:
    """Space + objectives (minimised), with fixed normalisation bounds and reference point.

    ``problem(X)`` returns normalised objectives of feature rows X; ``problem.raw(X)`` the signed
    column values (maximised columns negated) in their units. Constructing one only resolves its
    columns; the bounds and the reference front are read (or, for a problem without shipped
    bounds, computed once per process) when first used.
    """

    def __init__(self, space, objectives, noise: bool = False, benchmark=None):
        self.space = get_space(space)
        self.objectives = parse_objectives(objectives)
        self.signs = np.array([-1.0 if o.startswith("-") else 1.0 for o in self.objectives])
        self.noise = check_bool(noise, "noise")
        self.benchmark = benchmark if benchmark is not None else Benchmark(self.space)
        available = self.benchmark.columns()
        wanted = [o.lstrip("-") for o in self.objectives]
        resolved = [resolve(c, available) for c in wanted]
        missing = [c for c, r in zip(wanted, resolved) if r is None]
        if missing:
            hint = (" (perplexity comes from the supernet tables, which do not exist yet)"
                    if any(Column.parse(c).metric == "perplexity" for c in missing) else "")
            raise ValueError(f"objectives: column(s) {missing} not available for space "
                             f"{self.space.name!r}{hint}; available: {available}")
        self.columns = tuple(resolved)
        self.encoding = Encoding(self.space)
        self.name = f"{self.space.name}:{','.join(self.objectives)}"

    @cached_property
    def _front_entry(self) -> dict | None:
        """This problem's entry in the shipped registry (None: not shipped)."""
        return _registry().get(self.name)

    @property
    def shipped(self) -> bool:
        return self._front_entry is not None

    @property
    def lower(self) -> np.ndarray:
        return self._bounds[0]

    @property
    def upper(self) -> np.ndarray:
        return self._bounds[1]

    @cached_property
    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        entry = self._front_entry
        if entry is not None:
            lower = np.array(entry["lower"], dtype=np.float64)
            upper = np.array(entry["upper"], dtype=np.float64)
            made_with = entry.get("surrogates_fingerprint")
            if made_with is not None and made_with != self.surrogates_fingerprint():
                warnings.warn(f"problem {self.name!r}: its shipped bounds and reference front were "
                              "computed with other surrogates than the ones served now; rerun "
                              "scripts/make_reference_fronts.py", UserWarning, stacklevel=3)
        else:
            key = (self.name, type(self.benchmark).__qualname__, self.surrogates_fingerprint())
            if key not in _SAMPLED_BOUNDS:
                warnings.warn(f"problem {self.name!r} has no shipped bounds: using the range over a "
                              f"fixed seeded sample of {_FALLBACK_SAMPLE} architectures; no reference "
                              "front (IGD+) until scripts/make_reference_fronts.py is rerun",
                              UserWarning, stacklevel=3)
                _SAMPLED_BOUNDS[key] = sample_bounds(self)
            lower, upper = (b.copy() for b in _SAMPLED_BOUNDS[key])     # each problem its own
        if np.any(upper <= lower):
            raise ValueError(f"bounds of {self.name!r}: upper must exceed lower for every objective")
        return lower, upper

    def surrogates_fingerprint(self):
        """sha256 of what the benchmark says about this problem's surrogate columns (None when
        every column is exact): bounds and fronts depend on those surrogates."""
        metrics = self.benchmark.metrics() if hasattr(self.benchmark, "metrics") else {}
        info = {c: {k: v for k, v in metrics.get(c).items() if k in _FINGERPRINT_KEYS} for c in self.columns
                if metrics.get(c, {}).get("estimator", "closed-form") != "closed-form"}
        if not info:
            return None
        return hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode()).hexdigest()

    @property
    def n_obj(self) -> int:
        return len(self.objectives)

    @property
    def ref_point(self) -> np.ndarray:
        """Fixed hypervolume reference point in normalised objective space."""
        return np.full(self.n_obj, 1.0 + REF_POINT_MARGIN)

    @cached_property
    def fidelities(self) -> tuple[int, ...]:
        """Training fidelities (percent) at which the problem can be evaluated: those served for
        every objective with a fidelity axis (``perplexity`` -> ``perplexity_f{p}``); () without
        one (then only the full evaluation exists)."""
        available = self.benchmark.columns()
        axes = [set(fidelities(c, available)) for c in self.columns]
        axes = [a for a in axes if a]
        return tuple(sorted(set.intersection(*axes))) if axes else ()

    def _columns_at(self, fidelity):
        if fidelity is None:
            return list(self.columns)
        if fidelity not in self.fidelities:
            raise ValueError(f"fidelity: {fidelity!r} not available for {self.name!r}; "
                             f"allowed: {list(self.fidelities)}")
        available = self.benchmark.columns()
        return [str(Column.parse(c).at(fidelity)) if fidelities(c, available) else c for c in self.columns]

    def raw(self, X, seed=None, fidelity=None) -> np.ndarray:
        """Signed objective values (n, n_obj), minimised, in the columns' units (at a training
        fidelity in percent, for problems that have one; default: the final evaluation)."""
        cols = self._columns_at(fidelity)
        return self.benchmark.evaluate(X, cols, noise=self.noise, seed=seed) * self.signs

    def normalise(self, R) -> np.ndarray:
        return (np.asarray(R, dtype=np.float64) - self.lower) / (self.upper - self.lower)

    def denormalise(self, F) -> np.ndarray:
        return np.asarray(F, dtype=np.float64) * (self.upper - self.lower) + self.lower

    def __call__(self, X, seed=None, fidelity=None) -> np.ndarray:
        """Normalised objectives (n, n_obj) of feature rows X (0 = best bound, 1 = worst bound)."""
        return self.normalise(self.raw(X, seed=seed, fidelity=fidelity))

    evaluate = __call__

    @cached_property
    def reference_front(self) -> np.ndarray:
        """The stored reference Pareto front, normalised (for IGD+); checksum-verified."""
        e = self._front_entry
        if e is None:
            raise ValueError(f"problem {self.name!r}: no reference front shipped; shipped problems: "
                             f"{shipped_problems()} (scripts/make_reference_fronts.py makes more)")
        path = FRONTS_DIR / e["front_file"]
        if not path.is_file():
            raise ValueError(f"reference front {path}: missing; regenerate it (scripts/make_reference_fronts.py)")
        digest = _sha256(path)
        if digest != e["front_sha256"]:
            raise ValueError(f"reference front {path.name}: sha256 {digest} does not match the "
                             f"registry ({e['front_sha256']}); regenerate it")
        try:
            with np.load(path, allow_pickle=False) as z:
                F = np.asarray(z["F"], dtype=np.float64)
        except Exception as err:                 # zip/npy/key errors: one clear error
            raise ValueError(f"reference front {path.name}: not a front file ({type(err).__name__}: {err})") from None
        if F.ndim != 2 or F.shape[1] != self.n_obj or len(F) == 0 or not np.isfinite(F).all():
            raise ValueError(f"reference front {path.name}: expected a finite ({'n'}, {self.n_obj}) array F, "
                             f"got shape {F.shape}")
        return self.normalise(F)

    def __repr__(self) -> str:
        return f"Problem({self.name!r})"


def sample_bounds(problem: Problem, n: int = _FALLBACK_SAMPLE, seed: int = 0):
    """Range of the mean objectives (never noisy draws) over a fixed seeded sample plus the
    extreme architectures."""
    sp = problem.space
    X = np.vstack([sp.sample_features(n, seed=seed), sp.encode([sp.smallest(), sp.largest()])])
    R = problem.benchmark.evaluate(X, list(problem.columns)) * problem.signs
    return R.min(axis=0), R.max(axis=0)


def available_problems(names=STANDARD_PROBLEMS) -> tuple[list[str], dict[str, str]]:
    """Split problem names into those whose columns are served now and the others (with why)."""
    ok, missing, benchmarks = [], {}, {}
    for name in names:
        space, objectives = name.split(":", 1)
        b = benchmarks[space] if space in benchmarks else benchmarks.setdefault(space, Benchmark(space))
        absent = [c for c in (o.strip().lstrip("-") for o in objectives.split(","))
                  if resolve(c, b.columns()) is None]
        if absent:
            missing[name] = f"column(s) {absent} not available yet"
        else:
            ok.append(name)
    return ok, missing


def get_problem(problem, objectives=None, **kwargs) -> Problem:
    """A Problem from a name 's:-params,flops', a (space, objectives) pair, or a Problem."""
    if isinstance(problem, Problem):
        return problem
    if objectives is None:
        if not isinstance(problem, str) or ":" not in problem:
            raise ValueError(f"problem: expected 'space:obj1,obj2[,...]', got {problem!r}")
        problem, objectives = problem.split(":", 1)
    return Problem(problem, objectives, **kwargs)
