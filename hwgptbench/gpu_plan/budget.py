"""How one GPU lease's seconds are split between the plan's stages.

A lease is the session's device time (15 minutes on the lent machines since December 2026, 30
before; the machine's start included), spent in calls of at most 10 minutes; the machine and its
files stay between calls while they follow each other closely. The split below was chosen from figures measured on an H100
of the lent kind (issue 13): forward latency at B8 x T1024 bf16 of 4.5-10.4 ms (s), 8.5-17.8 ms
(m), 13.6-31.7 ms (l); NVML energy CV 14% for s with 0.3 s windows, ~2% for m and l; eager
supernet training at 267k tokens/s; a 7.5-minute s supernet already ranks architectures by size.

For a 30-minute lease (about 1450 s of work once the start, transfers and margins are paid):

| stage | share | seconds | why |
|---|---:|---:|---|
| preflight | fixed | <= 20 | fail fast: versions, NVML energy, the largest l model runs |
| calibration | 3% | ~45 | time s/m/l extremes, choose the energy window from this lease's data |
| profile s / m / l | 19 / 13 / 12% | ~275 / 190 / 175 | 1000 / 500 / 300 rows of latency + peak memory (~0.15 / 0.3 / 0.45 s each), energy and decode on a prefix of each (the rest of the stage) |
| train (s supernet) | the rest | ~470 | what is left after the other stages, the evaluation's share kept back |
| evaluate | 17% | ~245 | 300 archs at 100%, then 300 at 25/50/75%, then up to 1500 at 100% (~0.1 s each) |
| extras | leftover | | more m and l rows, then s rows, then the host CPU (a rehearsal keeps 12% back for them) |

Profiling comes first because it is cheap per row and resumable to the row; the supernet needs a
contiguous block and is trained with whatever profiling leaves, minus the evaluation's share, so
seconds saved earlier flow into training. Training needs at least 7 minutes (`MIN_TRAIN_S`, the
run in issue 13 that first ranked architectures by size): a supernet's run becomes the space's
perplexity table, which a later run cannot extend, so a shorter one would take the place of a
better one. A 15-minute lease (about 690 s of work) therefore profiles only: on 2026-12-04 it gave
534 s, 797 m and 460 l rows on an H200 (benchmarks.md). Everything is time-boxed: a stage stops at its target
or its budget, whichever is first, and the next call resumes it.
"""
from __future__ import annotations

import dataclasses
import math

__all__ = ["LeasePlan", "plan_lease", "call_deadline", "subset_sizes", "STAGES", "CALL_OVERHEAD_S", "MIN_TRAIN_S"]

STAGES = ("preflight", "calibrate", "profile_s", "profile_m", "profile_l", "train", "evaluate",
          "extra_profiles", "host_cpu")
MIN_TRAIN_S = 420.0         # a shorter supernet would occupy the perplexity table (docstring)
CALL_OVERHEAD_S = 45.0       # per call: upload of the tree, fetch of $OUT, the gap between calls
START_S = 120.0              # a cold machine's start, counted against the lease


@dataclasses.dataclass(frozen=True)
class LeasePlan:
    """Seconds per stage for a lease of `work_s` seconds of work, and the targets."""

    work_s: float
    preflight_s: float
    calibrate_s: float
    profile_s: dict            # space -> seconds
    rows: dict                 # space -> target rows of the fast pass
    evaluate_s: float
    min_train_s: float
    eval_plan: tuple           # ((percent, n), ...) in priority order
    extra_rows: tuple          # ((space, rows to reach), ...) in the extra stage's order
    host_rows: int             # rows of s on the host CPU, the last stage
    reserve_s: float = 0.0     # kept back from training for the stages after the evaluation

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "LeasePlan":
        d = dict(d)
        d["eval_plan"] = tuple(tuple(x) for x in d["eval_plan"])
        # ordered pairs: a dict's order would not survive state.json's sorted keys
        d["extra_rows"] = tuple(tuple(x) for x in d["extra_rows"])
        return cls(**d)

    def train_budget(self, work_left_s: float) -> float:
        """Seconds to train for, decided when training starts: the work left minus the evaluation's
        share; 0 when that is under `min_train_s` (a supernet trained that briefly ranks nothing)."""
        t = work_left_s - self.evaluate_s - self.reserve_s
        return t if t >= self.min_train_s else 0.0


def plan_lease(lease_s: float, warm: bool = False, rehearsal: bool = False) -> LeasePlan:
    """The stage budgets for a lease with `lease_s` device seconds left (see the module docstring).

    `warm`: the machine is already started (its start is not paid again). A rehearsal keeps the
    same shares on a tiny scale with tiny targets.
    """
    if not isinstance(lease_s, (int, float)) or isinstance(lease_s, bool) or not math.isfinite(lease_s):
        raise ValueError(f"lease_s: expected a number of seconds, got {lease_s!r}")
    if lease_s <= 0:
        raise ValueError(f"lease_s: expected > 0 seconds of device time, got {lease_s}")
    if rehearsal:
        work = float(lease_s)
        return LeasePlan(work_s=work, preflight_s=5.0, calibrate_s=0.06 * work,
                         profile_s={"s": 0.16 * work, "m": 0.03 * work, "l": 0.03 * work},
                         rows={"s": 30, "m": 2, "l": 2}, evaluate_s=0.3 * work, min_train_s=3.0,
                         eval_plan=((100, 120), (25, 120), (50, 120), (75, 120)),
                         extra_rows=(("m", 3), ("l", 3), ("s", 34)), host_rows=3, reserve_s=0.12 * work)
    calls = math.ceil(lease_s / 600.0)
    work = lease_s - (0.0 if warm else START_S) - calls * CALL_OVERHEAD_S
    if work < 60:
        raise ValueError(f"lease_s: {lease_s:.0f} s of device time leave {work:.0f} s of work after the "
                         "machine's start and transfers; at least 60 s are needed")
    return LeasePlan(work_s=work, preflight_s=20.0, calibrate_s=min(45.0, 0.03 * work),
                     profile_s={"s": 0.19 * work, "m": 0.13 * work, "l": 0.12 * work},
                     rows={"s": 1000, "m": 500, "l": 300}, evaluate_s=0.17 * work, min_train_s=MIN_TRAIN_S,
                     eval_plan=((100, 300), (25, 300), (50, 300), (75, 300), (100, 1500)),
                     extra_rows=(("m", 1000), ("l", 1000), ("s", 2000)), host_rows=1000)


def call_deadline(start: float, call_s: float, lease_left_s: float, margin_s: float) -> float:
    """Wall-clock time (time.time()) by which this call's work must stop: within the call's limit
    and the lease's device time, leaving `margin_s` to copy results into $OUT."""
    return start + max(0.0, min(call_s, lease_left_s) - margin_s)


def subset_sizes(budget_s: float, rows: int, row_s: float, energy_s: float, decode_s: float,
                 minimum: int = 20) -> tuple[int, int]:
    """(energy, decode) subset sizes, as prefixes of the profiling set, for a profiling stage of
    `budget_s` seconds that must first give `rows` rows at `row_s` seconds each. `energy_s` and
    `decode_s` are the seconds each adds to a row (0: not measured); the time left goes 2:1 to
    energy and decode when both are measured, else all to the one that is. Each measured subset
    is at least `minimum` rows (capped at `rows`) so that a surrogate can be fitted."""
    left = max(0.0, budget_s - rows * row_s)
    both = energy_s > 0 and decode_s > 0
    floor = min(minimum, rows)

    def size(per_row, share):
        return min(rows, max(floor, int(left * share / per_row))) if per_row > 0 else 0
    return size(energy_s, 2 / 3 if both else 1.0), size(decode_s, 1 / 3 if both else 1.0)
