"""Timing, energy and memory of one model's forward pass and of decoding (docs/PROTOCOLS.md section 4).

Every repeat is returned raw; the caller stores them. Imports torch (and pynvml on GPUs).

Decode (`measure_decode_cpu`, `measure_decode_cuda`): each repeat prefills T random prompt tokens
into a preallocated KV cache (untimed), then times G greedy decode steps (``GPT.next_token`` on
the last token: one token per sequence through the model, the LM head and an argmax, all on the
device). ``decode_ms`` = that time / G, the mean milliseconds per generated token at batch B.
Greedy tokens keep the loop a real generation without a host round trip; the work does not depend
on the token values.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..validation import check_int

__all__ = ["measure_cpu", "measure_cuda", "energy_windows", "measure_decode_cpu", "measure_decode_cuda",
           "RaplMeter", "NvmlMeter"]


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
    back-to-back forwards lasting >= window_s each, peak allocated memory over one forward: the
    model's own peak (its weights, the input and the forward's activations), not counting other
    tensors the process holds (see `_others_bytes`)."""
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
        others = _others_bytes(model, dev, idx)
        torch.cuda.reset_peak_memory_stats(dev)
        model(idx)
        torch.cuda.synchronize(dev)
        peak = (torch.cuda.max_memory_allocated(dev) - others) / 2 ** 20
    return {"latency_ms": lat, "energy_J": np.asarray(energy if energy else [math.nan]),
            "memory_MB": np.array([peak]), "_energy_window_s": np.asarray(seconds or [math.nan]),
            "_energy_forwards": np.asarray(counts or [0])}


def measure_decode_cpu(model, batch: int, prefill_len: int, gen_tokens: int, warmup: int, repeats: int,
                       seed: int = 0) -> dict:
    """perf_counter time of G decode steps after an untimed prefill, per repeat (module docstring).

    Returns {"decode_ms": (repeats,) ms per generated token, "batch", "prefill_len", "gen_tokens"}.
    """
    cache, prompt = _decode_setup(model, batch, prefill_len, gen_tokens, warmup, repeats, seed)
    ms = np.empty(repeats)
    with torch.inference_mode():
        for r in range(warmup + repeats):
            tok = _prefill(model, cache, prompt)
            t = time.perf_counter()
            _decode(model, cache, tok, gen_tokens)
            if r >= warmup:
                ms[r - warmup] = (time.perf_counter() - t) * 1e3 / gen_tokens
    return {"decode_ms": ms, "batch": batch, "prefill_len": prefill_len, "gen_tokens": gen_tokens}


def measure_decode_cuda(model, batch: int, prefill_len: int, gen_tokens: int, warmup: int, repeats: int,
                        seed: int = 0) -> dict:
    """CUDA-event time of G decode steps after an untimed prefill, per repeat (module docstring).

    The GPU is synchronised after the prefill, so the events span exactly the decode steps as the
    host launches them (decode at small batch is launch-bound: that cost is part of serving).
    Also the peak allocated memory over one decode pass (weights + cache + the steps' activations).
    Returns {"decode_ms": (repeats,), "decode_memory_MB": (1,), "batch", "prefill_len", "gen_tokens"}.
    """
    dev = model.wte.device
    torch.cuda.synchronize(dev)
    others = _others_bytes(model, dev)             # before the cache and prompt: theirs count
    cache, prompt = _decode_setup(model, batch, prefill_len, gen_tokens, warmup, repeats, seed)
    ms = np.empty(repeats)
    with torch.inference_mode():
        for r in range(warmup + repeats):
            tok = _prefill(model, cache, prompt)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(dev)
            start.record()
            _decode(model, cache, tok, gen_tokens)
            end.record()
            torch.cuda.synchronize(dev)
            if r >= warmup:
                ms[r - warmup] = start.elapsed_time(end) / gen_tokens

        tok = _prefill(model, cache, prompt)
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        _decode(model, cache, tok, gen_tokens)
        torch.cuda.synchronize(dev)
        peak = (torch.cuda.max_memory_allocated(dev) - others) / 2 ** 20
    return {"decode_ms": ms, "decode_memory_MB": np.array([peak]), "batch": batch,
            "prefill_len": prefill_len, "gen_tokens": gen_tokens}


def _others_bytes(model, dev, *inputs) -> int:
    """Bytes allocated on `dev` now that are neither `model`'s parameters and buffers nor `inputs`:
    what else the process holds (a weight pool, other spaces' pools, a previous model not yet
    freed). A peak minus these is the model's own, whatever ran before it in the process (the
    2026-12-04 h200 rows counted them: 77-490 MB more than the model's own peak)."""
    own = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers(), *inputs))
    return torch.cuda.memory_allocated(dev) - own


def _decode_setup(model, batch, prefill_len, gen_tokens, warmup, repeats, seed):
    """Check the arguments; a KV cache for T + G positions and a seeded random prompt (B, T)."""
    from ..model import KVCache
    from ..space import get_space

    for name, v, lo in (("batch", batch, 1), ("prefill_len", prefill_len, 1), ("gen_tokens", gen_tokens, 1),
                        ("warmup", warmup, 0), ("repeats", repeats, 1), ("seed", seed, 0)):
        check_int(v, name, lo)
    sp = get_space(model.active.space)
    if prefill_len + gen_tokens > sp.block_size:
        raise ValueError(f"prefill_len + gen_tokens: at most the context length {sp.block_size}, "
                         f"got {prefill_len} + {gen_tokens}")
    dev = model.wte.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    prompt = torch.randint(0, sp.vocab_size, (batch, prefill_len), device=dev, generator=gen)
    return KVCache(model, batch, prefill_len + gen_tokens), prompt


def _prefill(model, cache, prompt):
    cache.reset()
    return model.next_token(prompt, cache)


def _decode(model, cache, tok, steps: int):
    for _ in range(steps):
        tok = model.next_token(tok, cache)
    return tok
