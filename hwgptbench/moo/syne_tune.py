"""syne-tune adapter: run any syne-tune scheduler on a hwgptbench problem in simulated time.

`HWGPTBlackbox` is a syne-tune ``Blackbox`` answering from our surrogates:

* configuration space: one categorical hyperparameter per gene of the space's feature row
  (``embed_dim``, ``n_layer``, ``bias`` as 1/0, ``mlp_ratio_{i}``, ``n_head_{i}`` for every layer
  of the deepest architecture). The per-layer genes of layers ``i >= n_layer`` are always present
  and **ignored**, as HW-GPT-Bench ignores padded lists; so uniform sampling of the configuration
  space is the space's own uniform per-gene sampling, but several configurations map to one
  architecture (``arch_id`` in the results tells them apart);
* objectives: the problem's objectives in their units, signed so that every one is minimised
  (``-params`` is minus the parameter count), plus ``elapsed_time_s``: the cumulative simulated
  cost of `hwgptbench.moo.sim_cost` (measuring, training to the fidelity, scoring);
* fidelity ``fidelity``: the problem's training percents (25/50/75/100 when served; the single
  value 100 otherwise), so ASHA/MOASHA pause and resume on them.

`tune` runs a scheduler through syne-tune's ``UserBlackboxBackend`` + ``Tuner`` +
``SimulatorCallback`` (syne-tune's own simulated-benchmark recipe) and returns hwgptbench's tidy
results, so `runner.final_indicators` and `runner.hv_curves` apply. syne-tune draws from numpy's
global generator in places (bracket choice, MOASHA's sampling); as its benchmarking loop does,
`tune` seeds it, and restores the caller's state afterwards.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import tempfile
from pathlib import Path

import numpy as np

try:
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune import config_space as cs
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.blackbox_repository import UserBlackboxBackend
    from syne_tune.blackbox_repository.blackbox import Blackbox
    from syne_tune.constants import ST_TUNER_TIME
except ImportError as e:                                              # pragma: no cover
    raise ImportError(f"hwgptbench.moo.syne_tune needs syne-tune: pip install 'hwgptbench[syne-tune]' "
                      f"({e})") from None

from ..validation import check_int, check_number
from .problem import get_problem
from .sim_cost import SimulatedCost

__all__ = ["HWGPTBlackbox", "tune", "ELAPSED", "FIDELITY"]

ELAPSED = "elapsed_time_s"
FIDELITY = "fidelity"


class HWGPTBlackbox(Blackbox):
    """A hwgptbench problem as a syne-tune blackbox (module docstring).

    `seed` is used for noisy problems when syne-tune passes none: each architecture's draws
    depend only on (seed, architecture), so a configuration evaluated twice answers the same.
    """

    def __init__(self, problem, seed: int = 0, cost: SimulatedCost | None = None):
        self.problem = P = get_problem(problem)
        if cost is not None and not isinstance(cost, SimulatedCost):
            raise TypeError(f"cost: expected a SimulatedCost of this problem or None, got {cost!r} "
                            f"({type(cost).__name__})")
        self.cost = cost if cost is not None else SimulatedCost(P)
        if self.cost.problem is not P:
            raise ValueError("cost: a SimulatedCost of another problem object was given")
        self.seed = check_int(seed, "seed", 0)
        self._fidelities = self.cost.fidelities
        sp = P.space
        choices = {"embed_dim": sp.embed_dims, "n_layer": sp.n_layers,
                   "bias": tuple(int(b) for b in sp.biases)}
        for name in sp.feature_names[3:]:
            choices[name] = sp.mlp_ratios if name.startswith("mlp_ratio") else sp.n_heads
        super().__init__(
            configuration_space={k: cs.choice([int(v) for v in c]) for k, c in choices.items()},
            fidelity_space={FIDELITY: cs.choice(list(self._fidelities))},
            objectives_names=[*P.objectives, ELAPSED],
        )

    @property
    def metrics(self) -> list[str]:
        """The objectives a scheduler minimises (all but ``elapsed_time_s``)."""
        return list(self.problem.objectives)

    @property
    def fidelity_values(self) -> np.ndarray:
        return np.array(self._fidelities)

    def features(self, configuration) -> np.ndarray:
        """The (1, n_features) feature row of a configuration; genes past n_layer are ignored."""
        sp = self.problem.space
        missing = [k for k in sp.feature_names if k not in configuration]
        if missing:
            raise ValueError(f"configuration: missing hyperparameters {missing}")
        x = np.array([[configuration[k] for k in sp.feature_names]])
        n = x[0, 1]
        if n in sp.n_layers:
            lm = sp.max_layers
            dead = np.arange(lm) >= n
            x[0, 3:3 + lm][dead] = 0
            x[0, 3 + lm:][dead] = 0
        return sp.validate_features(x)

    def configuration(self, arch) -> dict:
        """A configuration of one architecture (Arch, id, dict or feature row), padded past n_layer
        with the last layer's choices (e.g. for ``points_to_evaluate``)."""
        sp = self.problem.space
        if isinstance(arch, np.ndarray) and arch.dtype != object:
            arch = sp.decode(arch.reshape(1, -1))[0]
        x = sp.encode([arch])[0]
        lm, n = sp.max_layers, int(x[1])
        for off in (3, 3 + lm):
            x[off + n:off + lm] = x[off + n - 1]
        return {k: int(v) for k, v in zip(sp.feature_names, x)}

    def _objective_function(self, configuration, fidelity=None, seed=None):
        P = self.problem
        X = self.features(configuration)
        draw = None
        if P.noise:
            s = self.seed if seed is None else int(seed)
            key = int(hashlib.sha256(P.space.decode(X)[0].id.encode()).hexdigest()[:15], 16)
            draw = int(np.random.SeedSequence([s, key]).generate_state(1)[0])
        elapsed = self.cost.elapsed(X)[0]
        fids = self._fidelities if fidelity is None else (self._fidelity(fidelity),)
        rows = []
        for f in fids:
            R = P.raw(X, seed=draw, fidelity=f if P.fidelities else None)[0]
            rows.append([*R, elapsed[self._fidelities.index(f)]])
        if fidelity is None:
            return np.array(rows)
        return dict(zip(self.objectives_names, rows[0]))

    def _fidelity(self, fidelity) -> int:
        f = fidelity.get(FIDELITY) if isinstance(fidelity, dict) else fidelity
        if isinstance(f, bool) or f not in self._fidelities:
            raise ValueError(f"fidelity: {f!r} is not served by {self.problem.name!r}; "
                             f"allowed: {list(self._fidelities)}")
        return int(f)


class _ReproducibleBackend(UserBlackboxBackend):
    """syne-tune's blackbox simulator, except that the real time the tuner and scheduler spend
    between backend calls is not added to the simulated clock (syne-tune adds it): it varies from
    run to run, reorders near-simultaneous events and so changes what a seeded run does."""

    def _advance_by_outside_time(self):
        pass


def tune(problem, scheduler, *, n_workers: int = 1, max_num_evaluations: int | None = None,
         max_wallclock_time: float | None = None, stop_criterion=None, seed: int = 0,
         optimizer: str | None = None, out=None, poll_s: float | None = None,
         count_scheduler_time: bool = False, verbose: bool = False):
    """Run syne-tune `scheduler` on `problem` (a problem, its name or an `HWGPTBlackbox`) in
    simulated time with `n_workers` asynchronous workers; return tidy results.

    The scheduler must be built on ``HWGPTBlackbox(problem).configuration_space`` (and its
    ``metrics``, all minimised; multi-fidelity ones with ``time_attr="fidelity"``, ``max_t=100``).
    Stop after `max_num_evaluations` results (syne-tune may report the few in flight too),
    `max_wallclock_time` simulated seconds, or a syne-tune `stop_criterion`. `out`: folder for
    syne-tune's own files (``results.csv.zip``, ``metadata.json``); default a temporary folder
    removed afterwards. The tuner is never pickled. `verbose` shows syne-tune's printed log.

    The simulated clock moves by the evaluations' costs, syne-tune's event delays (0.05 s) and
    the tuner's polls, so the same seed gives the same run. `count_scheduler_time=True` also
    adds the real seconds the scheduler spends deciding, as syne-tune does by default (then runs
    with several workers are no longer exactly reproducible).

    `poll_s`: simulated seconds between the tuner's looks at its workers (syne-tune's
    ``tuner_sleep_time``, 5 s by default there, which would idle a worker for seconds after each of
    our second-long evaluations). Default: 2% of the median cost of a fixed sample of
    architectures at the lowest fidelity (at least 0.01 s).

    Rows (one per reported result, in simulated-time order): problem, optimizer, seed, eval,
    trial_id, arch_id, the objective columns in their units, ``f:{objective}`` normalised,
    ``fidelity`` (problems with a fidelity axis), ``elapsed_time_s`` (the trial's own simulated
    seconds since it last started or resumed), ``sim_time_s`` (simulated wall-clock of the
    experiment when the result arrived).
    """
    n_workers, seed = check_int(n_workers, "n_workers", 1), check_int(seed, "seed", 0)
    if isinstance(scheduler, str) or not hasattr(scheduler, "metadata"):
        raise TypeError(f"scheduler: expected a syne-tune scheduler object built on "
                        f"HWGPTBlackbox(problem).configuration_space (e.g. syne_tune.optimizer.baselines."
                        f"RandomSearch(bb.configuration_space, metrics=bb.metrics, ...)), got {scheduler!r}; "
                        "for hwgptbench's own optimizers by name use hwgptbench.moo.minimize or sweep")
    bb = problem if isinstance(problem, HWGPTBlackbox) else HWGPTBlackbox(problem, seed=seed)
    if stop_criterion is None:
        if max_num_evaluations is None and max_wallclock_time is None:
            raise ValueError("stop: give max_num_evaluations, max_wallclock_time or stop_criterion")
        stop_criterion = StoppingCriterion(max_num_evaluations=max_num_evaluations,
                                           max_wallclock_time=max_wallclock_time)
    if poll_s is None:
        sample = bb.problem.space.sample_features(100, seed=0)
        poll_s = max(0.01, 0.02 * float(np.median(bb.cost(sample, min(bb.cost.fidelities)))))
    else:
        poll_s = check_number(poll_s, "poll_s", 0, exclusive=True)
    backend_cls = UserBlackboxBackend if count_scheduler_time else _ReproducibleBackend
    backend = backend_cls(blackbox=bb, elapsed_time_attr=ELAPSED, seed=seed, tuner_sleep_time=float(poll_s))
    callback = SimulatorCallback()
    name = optimizer or type(scheduler).__name__
    saved = np.random.get_state()
    np.random.seed(int(seed))
    try:
        with tempfile.TemporaryDirectory(prefix="hwgptbench-syne-") as tmp:
            folder = Path(out) if out is not None else Path(tmp)
            tuner = Tuner(trial_backend=backend, scheduler=scheduler, stop_criterion=stop_criterion,
                          n_workers=int(n_workers), sleep_time=0, callbacks=[callback],
                          tuner_name="hwgptbench", save_tuner=False,
                          results_update_interval=1e9, print_update_interval=1e9)
            tuner.tuner_path = folder                # syne-tune's files go here, not ~/syne-tune
            backend.set_path(results_root=str(folder), tuner_name=tuner.name)
            with contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO()):
                tuner.run()
            df = callback.dataframe()
    finally:
        np.random.set_state(saved)
    return _tidy(df, bb, name, int(seed))


def _tidy(df, bb: HWGPTBlackbox, optimizer: str, seed: int):
    import pandas as pd

    P = bb.problem
    if df.empty:
        raise RuntimeError(f"{optimizer}: syne-tune reported no result before the stop criterion held")
    df = df.sort_values([ST_TUNER_TIME, "trial_id"], kind="stable").reset_index(drop=True)
    sp = P.space
    configs = df[[f"config_{k}" for k in sp.feature_names]].to_numpy()
    X = np.vstack([bb.features(dict(zip(sp.feature_names, c))) for c in configs])
    out = pd.DataFrame({"problem": P.name, "optimizer": optimizer, "seed": seed,
                        "eval": np.arange(len(df)), "trial_id": df["trial_id"].to_numpy(),
                        "arch_id": [a.id for a in sp.decode(X)]})
    R = df[list(P.objectives)].to_numpy(dtype=np.float64)
    for j, col in enumerate(P.columns):
        out[col] = R[:, j] * P.signs[j]
    F = P.normalise(R)
    for j, obj in enumerate(P.objectives):
        out[f"f:{obj}"] = F[:, j]
    if P.fidelities:
        out[FIDELITY] = df[FIDELITY].to_numpy(dtype=np.int64)
    out[ELAPSED] = df[ELAPSED].to_numpy(dtype=np.float64)
    out["sim_time_s"] = df[ST_TUNER_TIME].to_numpy(dtype=np.float64)
    return out
