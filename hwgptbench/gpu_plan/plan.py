"""One call of the GPU lease plan: resume the work folder, run stages in order until the call's
deadline, hand every finished result back through $OUT.

Runs from the source tree on the lent machine (no install: torch, numpy, h5py are there; xgboost
is not and is never imported here). Call it again and again while the machine is held; a call
killed at its limit still returns what was finished (see state.py).
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import traceback
from pathlib import Path

from ..profiling.protocol import Protocol, default_protocol
from ..space import get_space
from ..validation import check_number
from .budget import CALL_OVERHEAD_S, STAGES, LeasePlan, call_deadline, plan_lease
from .stages import STAGE_FUNCTIONS, PlanError
from .state import PlanState, copy_if_missing, publish

__all__ = ["PlanConfig", "run_call", "Context"]

# The small supernet of a rehearsal: embedding 192 (the space's smallest), 12 layers, largest
# ratios and heads, so every s architecture with E = 192 is one of its sub-networks.
REHEARSAL_SUPERNET = "gpt-s-12-192-" + "-".join(["4"] * 12 + ["12"] * 12) + "-True"


@dataclasses.dataclass(frozen=True)
class PlanConfig:
    """What a plan is (fixed for a work folder; a resumed call must give the same)."""

    rehearsal: bool = False
    device: str | None = None              # table name of the GPU; default from the hardware (h100, h200)
    supernet_space: str | None = "s"       # None: no supernet
    corpus: str = "corpus_cache/gpt2_packed"
    energy: bool = True
    data_dir: str = "data"

    def check(self) -> None:
        if self.supernet_space is not None:
            get_space(self.supernet_space)
        if self.device is not None and (not isinstance(self.device, str) or
                                        not self.device.replace("_", "").isalnum()):
            raise ValueError(f"device: {self.device!r} must be a name of letters, digits and '_'")


class Context:
    """What the stages share during one call: config, state, lease plan, clock and the device."""

    def __init__(self, cfg: PlanConfig, state: PlanState, out_dir: Path, call_start: float, call_s: float,
                 lease_left_s: float, margin_s: float):
        import torch

        self.cfg, self.state, self.out_dir = cfg, state, Path(out_dir)
        self.call_start, self.call_s, self.lease_left_s, self.margin_s = call_start, call_s, lease_left_s, margin_s
        self.deadline = call_deadline(call_start, call_s, lease_left_s, margin_s)
        self.plan = LeasePlan.from_json(state.data["lease_plan"])
        self.backend = "cpu" if cfg.rehearsal else "cuda"
        self.torch_device = torch.device("cuda", 0) if self.backend == "cuda" else torch.device("cpu")
        self.dtype = torch.float32 if cfg.rehearsal else torch.bfloat16
        if cfg.rehearsal:
            self.device = "rehearsal"
        else:
            from ..profiling.devices import default_device_name
            self.device = cfg.device or default_device_name("cuda")
        self.window_lengths = (0.005, 0.01, 0.02) if cfg.rehearsal else (0.1, 0.2, 0.4)
        self.study_windows = 3 if cfg.rehearsal else 4
        self.checkpoint_margin = 5.0 if cfg.rehearsal else 20.0
        self.eval_budget_tokens = 128 if cfg.rehearsal else 65536
        self.eval_batch = 8 if cfg.rehearsal else 16
        self.min_block_s = 0.5 if cfg.rehearsal else 5.0     # no new block of work closer to the deadline
        self.min_train_call_s = 3.0 if cfg.rehearsal else 30.0   # nor a training call shorter than this
        self._meter, self.meter_error, self._pools, self._profilers = None, None, {}, {}

    # ---- time -------------------------------------------------------------------------------
    def work_left(self) -> float:
        """Seconds of work the lease has left after this moment (the rest of this call and the
        calls still to come, each paying its transfers)."""
        left = self.lease_left_s - (time.time() - self.call_start)
        return left - math.ceil(max(left, 0) / max(self.call_s, 1.0)) * (0 if self.cfg.rehearsal else CALL_OVERHEAD_S) \
            - self.margin_s

    # ---- the device -------------------------------------------------------------------------
    def sync(self) -> None:
        if self.backend == "cuda":
            import torch
            torch.cuda.synchronize(self.torch_device)

    def meter(self):
        """The energy meter (NVML on GPUs; a labelled fake one in a rehearsal), None if unreadable."""
        if self._meter is None and self.meter_error is None and self.cfg.energy:
            try:
                if self.cfg.rehearsal:
                    from .rehearsal import FakeMeter
                    self._meter = FakeMeter()
                else:
                    from ..profiling.measure import NvmlMeter
                    self._meter = NvmlMeter(self.torch_device.index or 0)
            except Exception as e:     # reported by the preflight
                self.meter_error = repr(e)
        return self._meter

    def model(self, arch):
        """(model, input ids) of `arch` at the GPU protocol's batch and sequence, built on the device."""
        import torch

        from ..profiling.run import build_model, weight_pool
        if arch.space not in self._pools:
            gen = torch.Generator(device=self.torch_device).manual_seed(0)
            self._pools[arch.space] = (weight_pool(arch.space, self.torch_device, self.dtype, gen), gen)
        pool, gen = self._pools[arch.space]
        proto = self.protocol(arch.space)
        idx = torch.randint(0, get_space(arch.space).vocab_size, (proto.batch, proto.seq), device=self.torch_device, generator=gen)
        return build_model(arch, pool), idx

    def decode_ms(self, model) -> float:
        """Median ms per generated token of `model` under the protocol's decode settings."""
        from ..profiling.measure import measure_decode_cpu, measure_decode_cuda
        proto = self.protocol(model.arch.space)
        fn = measure_decode_cuda if self.backend == "cuda" else measure_decode_cpu
        d = fn(model, proto.decode_batch, proto.decode_prefill, proto.decode_tokens, warmup=1, repeats=2)
        return float(np.median(d["decode_ms"]))

    def latency_ms(self, model, idx):
        from ..profiling.measure import measure_cpu, measure_cuda
        proto = self.protocol(model.arch.space)
        if self.backend == "cuda":
            return measure_cuda(model, idx, proto.warmup, proto.repeats, None, 0.0, 0)["latency_ms"]
        return measure_cpu(model, idx, proto.warmup, proto.repeats)["latency_ms"]

    def calibration_archs(self, sp):
        if self.cfg.rehearsal and sp.name != "s":
            return [sp.smallest()]            # a CPU rehearsal keeps clear of the multi-GB models
        return [sp.smallest(), sp.largest()]

    # ---- protocols and tables ---------------------------------------------------------------
    def protocol(self, space: str) -> Protocol:
        """The lease's protocol for `space`: the GPU protocol of docs/PROTOCOLS.md section 4 (a tiny CPU
        one in a rehearsal), with the energy window and the energy and decode subsets that the
        calibration chose (before it: defaults, and no subsets)."""
        cal = self.state.data.get("calibration", {}).get(space, {})
        window = cal.get("energy_window_s") or (0.01 if self.cfg.rehearsal else 0.2)
        subsets = {"energy_first": cal.get("energy_first", 0) if self.cfg.energy else 0,
                   "decode_first": cal.get("decode_first", 0)}
        if self.cfg.rehearsal:
            return Protocol("cpu", batch=1, seq=16, dtype="float32", warmup=1, repeats=3, threads=1,
                            energy_window_s=window, energy_windows=3, decode_batch=1, decode_prefill=8,
                            decode_tokens=4, decode_repeats=2, **subsets)
        # the GPU protocol of docs/PROTOCOLS.md section 4 (one definition), with this lease's window and subsets
        return dataclasses.replace(default_protocol("cuda"), energy_window_s=window, **subsets)

    def plan_start(self, space: str) -> int:
        """First profiling-set position of the fast pass (a rehearsal skips m's and l's largest)."""
        return 1 if self.cfg.rehearsal and space != "s" else 0

    def table_path(self, space: str, device: str | None = None) -> Path:
        return self.state.work_dir / "tables" / f"{space}_{device or self.device}.h5"

    def profiler(self, space: str):
        from ..profiling.run import Profiler
        if space not in self._profilers:
            path = self.table_path(space)
            if not self.cfg.rehearsal:      # continue a table committed by an earlier lease
                copy_if_missing(Path(self.cfg.data_dir) / space / f"{self.device}.h5", path)
            self._profilers[space] = Profiler(
                space, device=self.device, out=path, protocol=self.protocol(space),
                command=self.state.data.get("command"), meter=self.meter() if self.cfg.rehearsal else None,
                meter_name="fake (rehearsal: 50 W times elapsed time)" if self.cfg.rehearsal else None,
                meter_source="modelled" if self.cfg.rehearsal else "measured")
        return self._profilers[space]

    def host_profiler(self, space: str):
        """The host CPU under CPU protocol 2 with all its cores (a lent machine runs nothing else
        once the GPU stages are done), in blocks of 20 so the lease's end loses little."""
        import os

        from ..profiling.devices import default_device_name
        from ..profiling.protocol import default_protocol
        from ..profiling.rounds import RoundsProfiler
        key = ("host", space)
        if key not in self._profilers:
            name = "rehearsal_host" if self.cfg.rehearsal else default_device_name("cpu")
            proto = dataclasses.replace(default_protocol("cpu", version=2), threads=os.cpu_count(), block=20)
            if self.cfg.rehearsal:
                proto = dataclasses.replace(proto, seq=16, decode_prefill=8, decode_tokens=2, rounds=2, block=3,
                                            threads=1)
            self._profilers[key] = RoundsProfiler(space, device=name, out=self.table_path(space, name),
                                                  protocol=proto, command=self.state.data.get("command"))
        return self._profilers[key]

    # ---- supernet -----------------------------------------------------------------------------
    def corpus_dir(self) -> Path:
        if self.cfg.rehearsal:
            from .rehearsal import tiny_corpus
            return tiny_corpus(self.state.work_dir / "corpus")
        return Path(self.cfg.corpus)

    def run_dir(self) -> Path:
        return self.state.work_dir / f"supernet_{self.cfg.supernet_space}"

    def train_config(self):
        from ..training.supernet import TrainConfig
        if self.cfg.rehearsal:
            return TrainConfig(space=self.cfg.supernet_space, steps=1_000_000, batch=2, seq=16, sandwich=4,
                               warmup=2, eval_every=10, eval_batches=1, supernet=REHEARSAL_SUPERNET)
        return TrainConfig(space=self.cfg.supernet_space, steps=1_000_000, batch=16, seq=1024, sandwich=4,
                           lr=6e-4, min_lr=6e-5, warmup=100)

    # ---- results ------------------------------------------------------------------------------
    def publish(self) -> list[str]:
        self.state.save()
        tables = {p.name: p for p in sorted((self.state.work_dir / "tables").glob("*.h5"))}
        runs = {self.cfg.supernet_space: self.run_dir()} if self.cfg.supernet_space else {}
        return publish(self.state.work_dir, self.out_dir, tables, runs)


def run_call(cfg: PlanConfig, out_dir, work_dir="runs/gpu_plan", call_s: float = 560.0,
             lease_left_s: float = 1800.0, warm: bool = False, margin_s: float | None = None,
             command: str | None = None) -> dict:
    """One call of the plan; returns the state. `lease_left_s` is the device time the lease has
    left as this call starts (the tool's status); `call_s` this call's limit."""
    cfg.check()
    call_s = check_number(call_s, "call_s", 0, exclusive=True)
    lease_left_s = check_number(lease_left_s, "lease_left_s", 0, exclusive=True)
    t0 = time.time()
    state = PlanState.load(work_dir, dataclasses.asdict(cfg))
    if state.data["lease_plan"] is None:
        state.data["lease_plan"] = plan_lease(lease_left_s, warm=warm, rehearsal=cfg.rehearsal).to_json()
        state.data["command"] = command
    margin = margin_s if margin_s is not None else (2.0 if cfg.rehearsal else 25.0)
    ctx = Context(cfg, state, out_dir, t0, call_s, lease_left_s, margin)
    call = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)), "call_s": call_s,
            "lease_left_s": lease_left_s, "stages": []}
    state.data["calls"].append(call)
    state.log(f"call {len(state.data['calls'])}: {call_s:.0f} s, lease {lease_left_s:.0f} s left, "
              f"deadline in {ctx.deadline - t0:.0f} s")
    ctx.publish()
    for name in STAGES:
        st = state.stage(name)
        if state.finished(name):
            continue
        if time.time() >= ctx.deadline - ctx.min_block_s:
            break
        t = time.time()
        st["calls"] += 1
        st["status"] = "running"
        state.save()
        try:
            status = STAGE_FUNCTIONS[name](ctx, ctx.deadline)
        except PlanError as e:
            st.update(status="failed", error=str(e))
            state.log(str(e))
            ctx.publish()
            raise
        except Exception as e:         # one stage's failure must not waste the rest of the lease
            st.update(status="failed", error=repr(e), traceback=traceback.format_exc(limit=8))
            state.log(f"{name} failed: {e!r}")
            status = "failed"
        st["seconds"] += time.time() - t
        st["status"] = status
        call["stages"].append({"stage": name, "status": status, "seconds": round(time.time() - t, 2)})
        state.log(f"{name}: {status} ({time.time() - t:.1f} s this call, {st['seconds']:.1f} s in all)")
        ctx.publish()
        if status == "partial":
            break
    call["seconds"] = round(time.time() - t0, 2)
    state.data["done"] = all(state.finished(n) for n in STAGES)
    ctx.publish()
    return state.data
