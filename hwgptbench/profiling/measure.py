"""Timing, energy and memory of one model's forward pass (PROTOCOLS.md section 4).

Every repeat is returned raw; the caller stores them. Imports torch (and pynvml on GPUs).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

__all__ = ["measure_cpu", "measure_cuda", "energy_windows", "RaplMeter", "NvmlMeter"]


class RaplMeter:
    """Sum of RAPL package counters in joules, handling counter wrap-around."""

    def __init__(self, paths):
        self.paths = list(paths)
        self.ranges = []
        for p in self.paths:
            try:
                with open(p.replace("energy_uj", "max_energy_range_uj")) as f:
                    self.ranges.append(int(f.read()))
            except OSError:
                self.ranges.append(2 ** 32)

    def read(self) -> list[int]:
        out = []
        for p in self.paths:
            with open(p) as f:
                out.append(int(f.read()))
        return out

    def joules(self, start, end) -> float:
        return sum(((e - s) % r) for s, e, r in zip(start, end, self.ranges)) / 1e6


class NvmlMeter:
    """The GPU's total-energy counter (millijoules since driver load), via nvidia-ml-py."""

    def __init__(self, index: int = 0):
        import pynvml
        pynvml.nvmlInit()
        self._nvml = pynvml
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)

    def read(self) -> int:
        return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)

    @staticmethod
    def joules(start, end) -> float:
        return (end - start) / 1e3


def measure_cpu(model, idx, warmup: int, repeats: int, rapl: RaplMeter | None = None) -> dict:
    """perf_counter latency of each forward; RAPL energy per forward over the timed loop if readable."""
    with torch.inference_mode():
        for _ in range(warmup):
            model(idx)
        lat = np.empty(repeats)
        e0 = rapl.read() if rapl else None
        for i in range(repeats):
            t = time.perf_counter()
            model(idx)
            lat[i] = (time.perf_counter() - t) * 1e3
        energy = [rapl.joules(e0, rapl.read()) / repeats] if rapl else [math.nan]
    return {"latency_ms": lat, "energy_J": np.asarray(energy)}


def energy_windows(forward, sync, meter, window_s: float, windows: int):
    """Energy per forward over `windows` windows of back-to-back forwards lasting >= `window_s`
    each: forwards are issued until `window_s` has passed, then `sync` waits for the queued ones
    (CUDA), so the meter's readings enclose exactly the window's forwards. Returns (J per forward
    of each window, each window's seconds, each window's forwards)."""
    energy, seconds, counts = [], [], []
    for _ in range(windows):
        sync()
        t0, e0 = time.perf_counter(), meter.read()
        n = 0
        while n == 0 or time.perf_counter() - t0 < window_s:
            forward()
            n += 1
        sync()
        e1, t1 = meter.read(), time.perf_counter()
        energy.append(meter.joules(e0, e1) / n)
        seconds.append(t1 - t0)
        counts.append(n)
    return energy, seconds, counts


def measure_cuda(model, idx, warmup: int, repeats: int, meter: NvmlMeter | None,
                 window_s: float, windows: int) -> dict:
    """CUDA-event latency per forward, NVML energy per forward over `windows` windows of
    back-to-back forwards lasting >= window_s each, peak allocated memory over one forward."""
    dev = idx.device
    with torch.inference_mode():
        for _ in range(warmup):
            model(idx)
        torch.cuda.synchronize(dev)
        ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(repeats)]
        for s, e in ev:
            s.record()
            model(idx)
            e.record()
        torch.cuda.synchronize(dev)
        lat = np.array([s.elapsed_time(e) for s, e in ev])

        energy, seconds, counts = energy_windows(lambda: model(idx), lambda: torch.cuda.synchronize(dev), meter,
                                                 window_s, windows if meter else 0)

        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        model(idx)
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) / 2 ** 20
    return {"latency_ms": lat, "energy_J": np.asarray(energy if energy else [math.nan]),
            "memory_MB": np.array([peak]), "_energy_window_s": np.asarray(seconds or [math.nan]),
            "_energy_forwards": np.asarray(counts or [0])}
