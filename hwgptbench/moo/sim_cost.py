"""Simulated cost of one evaluation: the seconds it would take in real life, so optimizers can be
compared on simulated wall-clock time and with asynchronous workers (as syne-tune's simulator does).

An evaluation of a problem's objectives at training fidelity p (percent) is charged

* **measure**: profiling the architecture on every device one of its objectives is measured on
  (``latency_ms@d``, ``energy_J@d``, ...; all metrics of a device come from one profiling pass).
  The seconds a row of that device's table really took are known: consecutive rows' ``measured_at``
  stamps (``data/{space}/{device}.h5``) give the wall time of each row (building the model, warm-up,
  the timed forwards, energy windows, writing the table). A non-negative least-squares line
  ``seconds = a + b * latency_s`` is fitted to them and applied to the surrogate's latency of the
  queried architecture: **measured**. (On ``cpu_xeon_2c`` this is ~6.2 forward latencies per
  architecture, 1% median error.) A table of CPU protocol 2 visits each architecture `rounds`
  times, in rounds over a block: ``measured_at`` is the end of its first visit, so the intervals
  are those of one visit (the first round of a block runs its visits back to back), and the line is
  multiplied by `rounds`. A device without a table falls back to ``warmup + repeats`` forwards of
  its protocol (times `rounds` in protocol 2): **estimate**.
* **train**: objectives served by the supernet (``perplexity``, ``accuracy``: device-less
  surrogates) need the network trained to p% of the supernet's planned run. Charged as training
  this architecture alone on that share of the tokens: ``p/100 * train_tokens * (intercept_s +
  s_per_flop * 3 * forward FLOPs per token)`` seconds (closed-form FLOPs of `hwgptbench.cost.flops`).
  Where the space's own perplexity table records networks trained alone on its recipe (the xs
  pipeline's ``standalone_training``), ``train_tokens`` is that recipe's planned run and the line is
  a non-negative least-squares fit of their measured seconds per token to their FLOPs per token:
  **measured** (on xs's CPU the fit is nearly flat: the eight networks took 2287-2940 s although
  their FLOPs differ 5x, so charging by FLOPs alone was off by -46% to +146%). Elsewhere the line is
  the GPU assumption below, FLOPs at a fixed rate (``intercept_s = 0``, ``s_per_flop =
  1 / train_flop_per_s``): **estimate**.
* **evaluate**: scoring perplexity on the fixed test budget (``eval_tokens`` forward tokens: the
  table's own budget where it has one) at each reported fidelity: a forward pass is charged a third
  of a training token on the same line: **estimate**.

Exact objectives (``params``, ``flops``, ``memory_MB_analytic``) cost nothing. `SimulatedCost.sources`
says per component whether it is measured or an estimate and from what.
"""
from __future__ import annotations

import hashlib

import numpy as np

from .. import cost
from ..benchmark import EXACT_COLUMNS
from ..validation import check_number
from .problem import get_problem

__all__ = ["SimulatedCost", "simulated_cost", "TRAIN_TOKENS", "TRAIN_FLOP_PER_S", "EVAL_TOKENS"]

# Assumptions (estimates), from benchmarks.md "Supernet training and evaluation on a GPU": the s
# supernet's planned run is ~4,200 steps of 16 x 1024 tokens; the feasibility run trained at ~15%
# MFU of an H100's dense bf16 peak (989 TFLOP/s); perplexity is scored on 65,536 test tokens.
TRAIN_TOKENS = 4200 * 16 * 1024
TRAIN_FLOP_PER_S = 0.15 * 989e12
EVAL_TOKENS = 65536
_BREAK = 10.0        # a gap of more than 10x the median row time is a pause between runs, not a row


class SimulatedCost:
    """Seconds one evaluation of `problem` would take in real life (module docstring).

    ``cost(X, fidelity)`` is the cost of evaluating feature rows X from scratch at `fidelity`;
    ``cost.elapsed(X)`` the cumulative time at which a run that reports at every fidelity in turn
    (resuming training, not restarting it) reaches each of them.
    """

    def __init__(self, problem, train_tokens: float | None = None,
                 train_flop_per_s: float | None = None, eval_tokens: float | None = None):
        """Throughputs left None come from the space's own training measurement where its
        perplexity table has one, else from the GPU assumptions (module docstring)."""
        given = {"train_tokens": train_tokens, "train_flop_per_s": train_flop_per_s, "eval_tokens": eval_tokens}
        for name, v in given.items():
            if v is not None:
                check_number(v, name, 0, exclusive=True)
        self.problem = P = get_problem(problem)
        # a column names its device after '@'; a device-less column that is not exact comes from
        # the supernet's perplexity tables
        self.devices = tuple(sorted({c.split("@", 1)[1] for c in P.columns if "@" in c}))
        self.trains = any("@" not in c and c not in EXACT_COLUMNS for c in P.columns)
        self._training = _own_training(P) if self.trains else None
        base = self._training or {"train_tokens": TRAIN_TOKENS, "eval_tokens": EVAL_TOKENS,
                                  "intercept_s": 0.0, "s_per_flop": 1.0 / TRAIN_FLOP_PER_S}
        self.train_tokens = float(base["train_tokens"] if train_tokens is None else train_tokens)
        self.eval_tokens = float(base["eval_tokens"] if eval_tokens is None else eval_tokens)
        # seconds per training token = intercept_s + s_per_flop * training FLOPs per token
        self.intercept_s, self.s_per_flop = float(base["intercept_s"]), float(base["s_per_flop"])
        if train_flop_per_s is not None:                   # a caller's rate: FLOPs alone, at that rate
            self.intercept_s, self.s_per_flop = 0.0, 1.0 / float(train_flop_per_s)
        self.train_flop_per_s = float(train_flop_per_s) if train_flop_per_s is not None else (
            None if self._training else TRAIN_FLOP_PER_S)
        self._overridden = sorted(k for k, v in given.items() if v is not None)
        self._lines = {d: _measurement_line(P, d) for d in self.devices}
        self.sources = self._sources()

    @property
    def fidelities(self) -> tuple[int, ...]:
        """Training percents at which the problem is evaluated ((100,) without a fidelity axis)."""
        return self.problem.fidelities or (100,)

    def components(self, X, fidelity=None) -> dict[str, np.ndarray]:
        """Seconds per component (``measure``, ``train``, ``evaluate``) for feature rows X."""
        P = self.problem
        X = P.space.validate_features(X)
        measure = np.zeros(len(X))
        for d, line in self._lines.items():
            latency_s = P.benchmark.evaluate(X, [f"latency_ms@{d}"])[:, 0] / 1000.0
            measure += line["intercept_s"] + line["slope"] * latency_s
        return {"measure": measure, **self.training(X, fidelity)}

    def training(self, X, fidelity=None) -> dict[str, np.ndarray]:
        """Seconds to train feature rows X to `fidelity` (``train``) and to score them once
        (``evaluate``): the components that need no device surrogate (the optimisation loop's)."""
        P = self.problem
        X = P.space.validate_features(X)
        p = self._percent(fidelity)
        if not self.trains:
            return {"train": np.zeros(len(X)), "evaluate": np.zeros(len(X))}
        seq = int((self._training or {}).get("seq") or P.space.block_size)    # the context trained at
        per_token = self.intercept_s + self.s_per_flop * 3.0 * cost.flops(X, P.space, batch=1, seq=seq) / seq
        return {"train": p / 100.0 * self.train_tokens * per_token,
                "evaluate": self.eval_tokens * per_token / 3.0}

    def __call__(self, X, fidelity=None) -> np.ndarray:
        """Seconds (n,) to evaluate feature rows X from scratch at `fidelity` (default: final)."""
        return sum(self.components(X, fidelity).values())

    def elapsed(self, X) -> np.ndarray:
        """Cumulative seconds (n, len(fidelities)): measure once, train on to each fidelity,
        score perplexity at every fidelity reported so far."""
        out = []
        for k, p in enumerate(self.fidelities, start=1):
            c = self.components(X, p)
            out.append(c["measure"] + c["train"] + k * c["evaluate"])
        return np.column_stack(out)

    def _percent(self, fidelity) -> float:
        if fidelity is None:
            return float(max(self.fidelities))
        if isinstance(fidelity, bool) or fidelity not in self.fidelities:
            raise ValueError(f"fidelity: {fidelity!r} is not served by {self.problem.name!r}; "
                             f"allowed: {list(self.fidelities)} (percent of training) or None")
        return float(fidelity)

    def _sources(self) -> dict:
        lines = {d: dict(line) for d, line in self._lines.items()}
        if not lines:
            measure = {"source": "none", "from": "no objective is measured on a device"}
        else:
            kind = "measured" if all(v["source"] == "measured" for v in lines.values()) else "estimate"
            measure = {"source": kind, "from": "seconds per profiled architecture = intercept_s + "
                       "slope * latency_s (surrogate latency of the architecture)", "devices": lines}
        if not self.trains:
            none = {"source": "none", "from": "no objective needs a trained supernet"}
            return {"measure": measure, "train": none, "evaluate": dict(none)}
        own = self._training is not None and "train_flop_per_s" not in self._overridden
        rate = (self._training or {}).get("from") if own else (
            "GPU assumptions: the s supernet's planned run and 15% of an H100's dense bf16 peak"
            if self.train_flop_per_s == TRAIN_FLOP_PER_S else "FLOPs at the caller's train_flop_per_s")
        if self._overridden:
            rate += f"; {', '.join(self._overridden)} given by the caller"
        line = {"intercept_s": self.intercept_s, "s_per_flop": self.s_per_flop}
        if own:
            line.update({k: self._training[k] for k in ("networks", "median_rel_error", "max_rel_error")})
        return {
            "measure": measure,
            "train": {"source": "measured" if own else "estimate",
                      "from": "p/100 * train_tokens * (intercept_s + s_per_flop * 3 * forward FLOPs per token "
                      f"(hwgptbench.cost.flops at the context trained at)); {rate}",
                      "train_tokens": self.train_tokens, **line},
            "evaluate": {"source": "estimate", "from": "eval_tokens forward tokens, each a third of a training "
                         "token on the same line, once per reported fidelity", "eval_tokens": self.eval_tokens},
        }


def simulated_cost(problem, X, fidelity=None) -> np.ndarray:
    """Seconds (n,) that evaluating feature rows X at `fidelity` would take (see SimulatedCost)."""
    return SimulatedCost(problem)(X, fidelity)


def _measurement_line(P, device: str) -> dict:
    """Seconds per profiled architecture on `device` as a line in its latency (module docstring)."""
    from ..paths import data_dir
    from ..tables import read_table

    path = data_dir() / P.space.name / f"{device}.h5"
    if f"latency_ms@{device}" not in P.benchmark.columns():
        raise ValueError(f"objectives: simulated cost of measuring on {device!r} needs the column "
                         f"latency_ms@{device}, which is not served for space {P.space.name!r}")
    if not path.exists():
        proto = P.benchmark.devices().get(device, {}).get("protocol", {})
        forwards = _visits(proto) * (int(proto.get("warmup", 1)) + int(proto.get("repeats", 5)))
        return {"source": "estimate", "intercept_s": 0.0, "slope": float(forwards),
                "from": f"no table {path.name} here: warm-up + timed forwards of the protocol, times "
                        f"its visits per architecture ({forwards})"}
    t = read_table(path)
    visits = _visits(t.provenance.get("protocol", {}))
    at = t.extra.get("measured_at")
    if at is None or "latency_ms" not in t.raw or len(t) < 3:
        raise ValueError(f"{path}: needs extra/measured_at and raw/latency_ms on >= 3 rows to time a "
                         "measurement")
    order = np.argsort(at)
    seconds = np.diff(at[order])
    with np.errstate(invalid="ignore"):
        latency_s = np.nanmean(t.raw["latency_ms"], axis=1)[order][1:] / 1000.0
    ok = np.isfinite(seconds) & np.isfinite(latency_s) & (seconds > 0)
    ok &= seconds < _BREAK * np.median(seconds[ok])
    if ok.sum() < 3:
        raise ValueError(f"{path}: fewer than 3 consecutive rows to time a measurement")
    from scipy.optimize import nnls

    (a, b), _ = nnls(np.column_stack([np.ones(ok.sum()), latency_s[ok]]), seconds[ok])
    fit = a + b * latency_s[ok]
    return {"source": "measured", "intercept_s": float(visits * a), "slope": float(visits * b),
            "rows": int(ok.sum()), "visits_per_row": visits,
            "median_rel_error": float(np.median(np.abs(fit - seconds[ok]) / seconds[ok])),
            "from": f"measured_at intervals of {P.space.name}/{path.name} (sha256 "
                    f"{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}) against their mean latency"
                    + (f", times {visits} visits per architecture (protocol 2)" if visits > 1 else "")}


def _own_training(P) -> dict | None:
    """The space's measured training rates (module docstring), or None where its perplexity table
    records no network trained alone."""
    from ..paths import data_dir
    from ..space import Arch
    from ..tables import read_table

    path = data_dir() / P.space.name / "perplexity.h5"
    if not path.exists():
        return None
    prov = read_table(path).provenance
    cfg = (prov.get("training") or {}).get("config") or {}
    runs = prov.get("standalone_training") or []
    if not runs or not all(k in cfg for k in ("steps", "batch", "seq")):
        return None
    from scipy.optimize import nnls

    X = P.space.encode([Arch.from_id(r["arch_id"]) for r in runs])
    flops = 3.0 * cost.flops(X, P.space, batch=1, seq=int(cfg["seq"])) / int(cfg["seq"])  # per training token
    seconds = np.array([r["train_seconds"] / r["tokens_seen"] for r in runs])           # per training token
    (a, b), _ = nnls(np.column_stack([np.ones(len(runs)), flops]), seconds)
    err = np.abs(a + b * flops - seconds) / seconds
    return {"train_tokens": float(cfg["steps"]) * cfg["batch"] * cfg["seq"], "seq": int(cfg["seq"]),
            "intercept_s": float(a), "s_per_flop": float(b), "networks": len(runs),
            "median_rel_error": float(np.median(err)), "max_rel_error": float(err.max()),
            "eval_tokens": float(prov.get("eval_budget_tokens") or EVAL_TOKENS),
            "from": f"measured on {P.space.name}/perplexity.h5's recipe: its planned run "
                    f"({cfg['steps']} x {cfg['batch']} x {cfg['seq']} tokens) and a line fitted to the seconds per "
                    f"token of its {len(runs)} networks trained alone ({', '.join(r['arch_id'] for r in runs)})"}


def _visits(protocol: dict) -> int:
    """Visits per architecture: `rounds` in CPU protocol 2, else one."""
    return int(protocol.get("rounds") or 1) if int(protocol.get("version", 1)) == 2 else 1
