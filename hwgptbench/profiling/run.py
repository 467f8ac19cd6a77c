"""Profiling runs (protocol 1 and the GPU protocol): measure profiling-set architectures one at a time.

After each architecture the whole table is rewritten atomically (see tables.py), so an
interrupted run loses at most the architecture in flight and a rerun of the same command
continues where it stopped.
"""
from __future__ import annotations

import dataclasses
import os
import datetime as _dt
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .. import cost
from ..space import get_space
from ..files import WriterLock, check_writable, remove_partials
from ..tables import Table, TableError, read_table, write_table
from .devices import (cpu_info, describe_identity, device_name, fingerprint, gpu_info, identity_differences,
                      identity_of, rapl_paths, table_identity)
from .profiling_set import PROFILING_SEED, profiling_set
from .protocol import Protocol, default_protocol

__all__ = ["Protocol", "Profiler", "default_protocol", "git_commit", "build_model", "weight_pool", "library_versions"]


def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (rev + ("+dirty" if dirty else "")) if rev else "unknown"


def library_versions() -> dict:
    import torch
    v = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
         "platform": platform.platform()}
    if torch.cuda.is_available():
        v["cuda"] = torch.version.cuda
        v["cudnn"] = torch.backends.cudnn.version()
    return v


class _Progress:
    def __init__(self, total, stream=sys.stderr, enabled=True):
        self.total, self.done, self.t0, self.stream, self.enabled = total, 0, time.time(), stream, enabled

    def step(self, label: str):
        self.done += 1
        if not self.enabled:
            return
        el = time.time() - self.t0
        eta = el / self.done * (self.total - self.done)
        fmt = lambda s: time.strftime("%H:%M:%S", time.gmtime(s))  # noqa: E731
        self.stream.write(f"[{self.done}/{self.total}] {100 * self.done / max(self.total, 1):5.1f}%  "
                          f"elapsed {fmt(el)}  ETA {fmt(eta)}  {label}\n")
        self.stream.flush()


def _open_table(out: Path, space: str, device: str, proto: Protocol, hardware: dict,
                energy_source: str = "measured") -> Table:
    if out.exists():
        t = read_table(out)
        if t.kind != "profile" or t.space != space or t.source != device:
            raise TableError(f"output: {str(out)!r} holds a {t.kind} table of space {t.space!r} for "
                             f"{t.source!r}, not a profile of space {space!r} for {device!r}; "
                             "nothing was overwritten")
        recorded = table_identity(t.provenance)
        diff = identity_differences(recorded, hardware["identity"])
        if diff:
            raise TableError(f"output: {str(out)!r} was measured on {describe_identity(recorded)}, but this "
                             f"host is {describe_identity(hardware['identity'])} (they differ in "
                             f"{', '.join(diff)}); rows of different hardware are never mixed: measure "
                             f"into a new table (this host's device name: "
                             f"{device_name(hardware['identity'])!r}); nothing was overwritten")
        if t.sources.get("energy_J", energy_source) != energy_source:
            raise TableError(f"output: {str(out)!r} holds {t.sources['energy_J']} energy, not {energy_source}; "
                             "use another output path; nothing was overwritten")
        if t.provenance.get("protocol_key") != proto.key():
            raise TableError(f"output: {str(out)!r} was measured with {t.provenance.get('protocol_key')}, "
                             f"not {proto.key()}; use another output path; nothing was overwritten")
        return t
    units = {"latency_ms": "ms", "energy_J": "J", "memory_MB": "MB"}
    sources = {"latency_ms": "measured", "energy_J": energy_source,
               "memory_MB": "measured" if proto.backend == "cuda" else "analytic"}
    if proto.decodes:
        units["decode_ms"], sources["decode_ms"] = "ms", "measured"
        if proto.backend == "cuda":
            units["decode_memory_MB"], sources["decode_memory_MB"] = "MB", "measured"
    prov = {"device": device, "hardware": hardware, "protocol": dataclasses.asdict(proto),
            "protocol_key": proto.key(), "profiling_set_seed": PROFILING_SEED, "runs": [],
            "notes": {"energy_J": "J per forward; NaN where no meter is readable or past energy_first",
                      "decode_ms": "ms per generated token: G greedy steps with the KV cache after an untimed "
                                   "prefill of T tokens at batch B (protocol decode_*); NaN past decode_first",
                      "decode_memory_MB": "peak torch.cuda.max_memory_allocated over one prefill + decode pass",
                      "memory_MB": ("peak torch.cuda.max_memory_allocated over one forward (MB=2^20 B)"
                                    if proto.backend == "cuda" else
                                    "analytic estimate from hwgptbench.cost.memory_mb, not measured")}}
    return Table("profile", space, device, [], np.zeros(0, np.int64), {}, units, sources, prov)


class Profiler:
    """Measures profiling-set architectures of one space into one table, one at a time.

    Opening resumes the table at `out` (refusing one of another space, device or protocol key);
    `measure(i)` profiles position i of the profiling set, appends the row and rewrites the table
    atomically, so an interrupted run loses at most the architecture in flight. `meter` overrides
    the energy meter (NVML on CUDA, RAPL on CPUs where readable): any object with ``read()`` and
    ``joules(start, end)``; `meter_name` says what it is in the table and `meter_source` whether
    its numbers are 'measured' or 'modelled' (a rehearsal's fake meter). With ``protocol.energy_first`` only positions below it get energy (a stated
    subset); the others store NaN.
    """

    def __init__(self, space: str, device: str | None = None, out=None, protocol: Protocol | None = None,
                 backend: str | None = None, command: str | None = None, data_dir="data",
                 meter=None, meter_name: str | None = None, meter_source: str = "measured"):
        import torch

        self.space = get_space(space)
        if backend is None:
            backend = protocol.backend if protocol else ("cuda" if torch.cuda.is_available() else "cpu")
        if backend == "cuda" and not torch.cuda.is_available():
            raise ValueError("backend: 'cuda' asked for but torch sees no CUDA device")
        self.protocol = proto = protocol or default_protocol(backend)
        proto.check()
        hardware = {"cpu": cpu_info(), "cpu_affinity": sorted(os.sched_getaffinity(0))}
        if proto.backend == "cuda":
            hardware["gpu"] = gpu_info() or {"gpu_name": torch.cuda.get_device_name(0)}
        hardware["identity"] = identity_of(hardware, proto.backend)   # what a table of it must match
        hardware["fingerprint"] = fingerprint(hardware["identity"])
        device = device or device_name(hardware["identity"])
        if not isinstance(device, str) or not device.replace("_", "").isalnum():
            raise ValueError(f"device: {device!r} must be a name of letters, digits and '_'")
        self.device = device
        self.out = Path(out) if out else Path(data_dir) / self.space.name / f"{device}.h5"
        check_writable(self.out)                 # before anything is measured
        self._lock = WriterLock(self.out).acquire()    # one writer per table, until close()
        remove_partials(self.out)                # what a killed writer left behind
        self.table = _open_table(self.out, self.space.name, device, proto, hardware, meter_source)
        self.table.provenance["runs"].append({
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": git_commit(), "command": command or " ".join(sys.argv),
            "versions": library_versions(), "host": platform.node(), "rows_before": len(self.table),
            "hardware": hardware, "protocol": dataclasses.asdict(proto)})
        self._torch = torch
        self._dev = torch.device("cuda", 0) if proto.backend == "cuda" else torch.device("cpu")
        self._dtype = getattr(torch, proto.dtype)
        self._meter, self._pool, self._gen = meter, None, None
        run = self.table.provenance["runs"][-1]
        if meter is None:
            if proto.backend == "cpu":
                self._meter = _rapl_meter()
                meter_name = "rapl" if self._meter else None
            else:
                try:
                    from .measure import NvmlMeter
                    self._meter, meter_name = NvmlMeter(self._dev.index or 0), "nvml"
                except Exception as e:  # no NVML: energy stays missing, and the table says why
                    run["energy_meter_error"] = repr(e)
        run["energy_meter"] = meter_name if self._meter is not None else None

    def __len__(self) -> int:
        return len(self.table)

    def close(self) -> None:
        """Release the table to other writers."""
        self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def todo(self, indices) -> list[int]:
        """The positions of `indices` (in order, without repeats) not yet in the table."""
        indices = [int(i) for i in indices]
        if any(i < 0 for i in indices):
            raise ValueError("indices: profiling-set positions must be >= 0")
        done = set(self.table.index.tolist())
        return [i for i in dict.fromkeys(indices) if i not in done]

    def _setup(self):
        if self.protocol.backend == "cpu" and self.protocol.threads:
            self._torch.set_num_threads(self.protocol.threads)
        self._gen = self._torch.Generator(device=self._dev).manual_seed(0)
        self._pool = weight_pool(self.space, self._dev, self._dtype, self._gen)

    def measure(self, i: int) -> dict:
        """Profile position i of the profiling set, append its row and rewrite the table."""
        arch, r, extra = self.visit(i)
        self.table.append(arch.id, i, r, extra)
        write_table(self.table, self.out)
        return {"arch_id": arch.id, "index": i, "latency_ms": float(np.median(r["latency_ms"]))}

    def visit(self, i: int):
        """Build position i's model on the device and measure it once under the protocol:
        (arch, {metric: repeats}, {extra column: value})."""
        from .measure import measure_cpu, measure_cuda

        torch, proto = self._torch, self.protocol
        if self._pool is None:
            self._setup()
        arch = profiling_set(self.space.name, i + 1)[i]
        model = build_model(arch, self._pool)
        idx = torch.randint(0, self.space.vocab_size, (proto.batch, proto.seq), device=self._dev, generator=self._gen)
        meter = self._meter if proto.energy_first is None or i < proto.energy_first else None
        if proto.backend == "cuda":
            r = measure_cuda(model, idx, proto.warmup, proto.repeats, meter,
                             proto.energy_window_s, proto.energy_windows)
            windows = r.pop("_energy_window_s")
            extra = {"energy_window_s": float(np.mean(windows)) if np.isfinite(windows).all() else np.nan,
                     "energy_forwards": int(np.sum(r.pop("_energy_forwards")))}
        else:
            r = measure_cpu(model, idx, proto.warmup, proto.repeats, meter)
            r["memory_MB"] = cost.memory_mb(self.space.encode([arch]), self.space.name, proto.batch,
                                            proto.seq, proto.dtype)
            extra = {}
        if proto.decodes:
            r.update(self._decode(model, i))
        extra["measured_at"] = time.time()
        del model
        if proto.backend == "cuda":
            torch.cuda.empty_cache()
        return arch, r, extra

    def _decode(self, model, i: int) -> dict:
        """decode_ms (and on CUDA decode_memory_MB) of position i, NaN past `decode_first`."""
        from .measure import measure_decode_cpu, measure_decode_cuda

        proto = self.protocol
        if proto.decode_first is not None and i >= proto.decode_first:
            return {"decode_ms": [np.nan], **({"decode_memory_MB": [np.nan]} if proto.backend == "cuda" else {})}
        fn = measure_decode_cuda if proto.backend == "cuda" else measure_decode_cpu
        d = fn(model, proto.decode_batch, proto.decode_prefill, proto.decode_tokens, warmup=proto.decode_warmup,
               repeats=proto.decode_repeats, seed=i)
        return {k: d[k] for k in ("decode_ms", "decode_memory_MB") if k in d}

    def run(self, indices, max_seconds: float | None = None, deadline: float | None = None,
            progress: bool = True) -> int:
        """Measure the `indices` not yet in the table until done, `max_seconds` after starting or the
        wall-clock `deadline` (time.time()); returns how many rows were added."""
        todo = self.todo(indices)
        stop = min(deadline if deadline is not None else np.inf,
                   time.time() + max_seconds if max_seconds is not None else np.inf)
        bar = _Progress(len(todo), enabled=progress)
        added = 0
        for i in todo:
            if time.time() > stop:
                break
            row = self.measure(i)
            added += 1
            bar.step(f"{row['arch_id'][:48]}  {row['latency_ms']:.1f} ms")
        return added


def weight_pool(space, device, dtype, generator):
    """Random N(0, 0.02) values, enough for the largest tensor of the space, on the measuring
    device: every profiled model copies its weights from here (values do not change the work)."""
    import torch
    pool = torch.empty(get_space(space).vocab_padded * max(get_space(space).embed_dims), device=device, dtype=dtype)
    return pool.normal_(0.0, 0.02, generator=generator)


def build_model(arch, pool):
    """GPT(arch) built directly on the pool's device and dtype (no CPU initialisation), weights
    copied from `pool`, in eval mode."""
    import torch

    from ..model import GPT
    model = GPT(arch, device=pool.device, dtype=pool.dtype, init=False)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(pool[:p.numel()].view_as(p))
    return model.eval()


def _rapl_meter():
    """The RAPL package meter where readable (bare-metal Linux), else None (most VMs)."""
    from .measure import RaplMeter
    paths = rapl_paths()
    return RaplMeter(paths) if paths else None
