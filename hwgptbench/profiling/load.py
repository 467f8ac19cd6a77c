"""How busy the machine is around a measurement: the 1-minute load average and the share of time
the other CPUs (those this process is not pinned to) were busy, from /proc/stat. Stored with every
CPU row, so a table says how quiet the machine was when each number was taken."""
from __future__ import annotations

import os

__all__ = ["cpu_times", "others_busy", "LoadProbe"]


def cpu_times() -> dict[int, tuple[int, int]]:
    """{cpu: (busy, total) jiffies} from /proc/stat ({} where it is not readable)."""
    out = {}
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("cpu") and line[3].isdigit():
                    name, *v = line.split()
                    v = list(map(int, v))
                    idle = v[3] + (v[4] if len(v) > 4 else 0)
                    out[int(name[3:])] = (sum(v) - idle, sum(v))
    except OSError:
        pass
    return out


def others_busy(before, after, mine) -> float:
    """Busy share of the CPUs outside `mine` between two `cpu_times()` readings (NaN if none)."""
    busy = total = 0
    for c in after:
        if c in mine or c not in before:
            continue
        busy += after[c][0] - before[c][0]
        total += after[c][1] - before[c][1]
    return busy / total if total else float("nan")


class LoadProbe:
    """`start()` before a measurement, `stop()` after: {'load1': ..., 'others_busy': ...}."""

    def __init__(self):
        self.mine = os.sched_getaffinity(0)
        self._before = None

    def start(self) -> None:
        self._before = cpu_times()

    def stop(self) -> dict:
        return {"load1": os.getloadavg()[0], "others_busy": others_busy(self._before, cpu_times(), self.mine)}
