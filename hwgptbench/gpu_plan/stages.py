"""The stages of a GPU lease, in priority order (see budget.py for the split and why).

Each stage is a function ``stage(ctx, stop) -> status`` that works until its target, its budget or
the wall-clock `stop` (time.time()), whichever is first, and can be called again in a later call
to continue: 'done' (target or budget reached), 'partial' (stopped by the call's deadline),
'skipped' (nothing to do here, with the reason in the state). Every figure a stage measures goes
into ``ctx.state`` (and so into $OUT's state.json).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import shutil
import time
from pathlib import Path

import numpy as np

from ..space import get_space
from .budget import subset_sizes

__all__ = ["STAGE_FUNCTIONS", "PlanError"]

SPACE_NAMES = ("s", "m", "l")


class PlanError(RuntimeError):
    """A condition the plan cannot work under (e.g. a failed preflight): stop with this message."""


# ---- preflight ----------------------------------------------------------------------------------
def preflight(ctx, stop) -> str:
    """Versions, GPU, NVML energy readable, a 3-forward smoke test of the largest l architecture
    (rehearsal: the smallest), the corpus; a PlanError names what is wrong."""
    import platform

    import torch

    from ..profiling.devices import cpu_info, gpu_info
    from ..profiling.run import library_versions, git_commit

    info = {"versions": library_versions(), "git_commit": git_commit(), "host": platform.node(),
            "cpu": {k: v for k, v in cpu_info().items() if k != "lscpu"}}
    free = shutil.disk_usage(ctx.state.work_dir).free / 2 ** 30
    info["disk_free_GiB"] = round(free, 1)
    if free < 2:
        raise PlanError(f"preflight: only {free:.1f} GiB free in {ctx.state.work_dir}; need >= 2 GiB")
    if ctx.backend == "cuda":
        if not torch.cuda.is_available():
            raise PlanError("preflight: torch sees no CUDA device (torch.cuda.is_available() is False)")
        info["gpu"] = gpu_info() or {"gpu_name": torch.cuda.get_device_name(0)}
        info["gpu"]["torch_name"] = torch.cuda.get_device_name(0)
    meter = ctx.meter()
    if ctx.cfg.energy:
        if meter is None:
            raise PlanError(f"preflight: no energy meter ({ctx.meter_error or 'NVML not readable'}); "
                            "rerun with --no-energy to measure everything else")
        e0 = meter.read()
        _busy(ctx, 0.3)
        e1 = meter.read()
        info["energy_check_J"] = meter.joules(e0, e1)
        if not info["energy_check_J"] > 0:
            raise PlanError(f"preflight: the energy counter did not advance over 0.3 s of work "
                            f"({e0} -> {e1}); rerun with --no-energy to measure everything else")
    sp = get_space("l")
    arch = sp.smallest() if ctx.cfg.rehearsal else sp.largest()
    t0 = time.perf_counter()
    model, idx = ctx.model(arch)
    with torch.inference_mode():
        for _ in range(3):
            logits = model(idx)
        ok = bool(torch.isfinite(logits.float()).all())
    ctx.sync()
    info["smoke_test"] = {"arch": arch.id, "forwards": 3, "seconds": round(time.perf_counter() - t0, 3),
                          "finite": ok, "logits_shape": list(logits.shape)}
    del model, logits
    if not ok:
        raise PlanError(f"preflight: non-finite logits from {arch.id}")
    if ctx.cfg.supernet_space:
        from ..training.corpus import manifest_hash
        try:
            info["corpus_manifest_sha256"] = manifest_hash(ctx.corpus_dir())
        except FileNotFoundError as e:
            raise PlanError(f"preflight: {e} (carry the packed corpus: corpus_cache/gpt2_packed)") from None
    ctx.state.data["preflight"] = info
    ctx.state.log(f"preflight ok: {info.get('gpu', {}).get('gpu_name', 'cpu')}, torch {info['versions']['torch']}, "
                  f"smoke test {info['smoke_test']['seconds']} s")
    return "done"


def _busy(ctx, seconds: float) -> None:
    """Keep the device busy for about `seconds` (matrix products), so an energy counter moves."""
    import torch
    a = torch.randn(2048 if ctx.backend == "cuda" else 256, 2048 if ctx.backend == "cuda" else 256,
                    device=ctx.torch_device)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a = torch.tanh(a @ a)
        ctx.sync()


# ---- calibration: per-row costs and the energy window -------------------------------------------
def calibrate(ctx, stop) -> str:
    """Time the extremes of every space, measure energy per forward over windows of several lengths,
    choose each space's energy window from that (the shortest with CV <= 5%, else the best precision
    per second), and size the energy subsets that fit the profiling budgets."""
    import torch

    from ..profiling.measure import energy_windows

    cal = ctx.state.data.setdefault("calibration", {})
    meter = ctx.meter() if ctx.cfg.energy else None
    lengths = ctx.window_lengths
    for space in SPACE_NAMES:
        if space in cal:
            continue
        if time.time() > stop:
            return "partial"
        sp = get_space(space)
        archs = ctx.calibration_archs(sp)
        rows = []
        for arch in archs:
            t0 = time.perf_counter()
            model, idx = ctx.model(arch)
            ctx.sync()
            build_s = time.perf_counter() - t0
            lat = ctx.latency_ms(model, idx)
            fwd_s = float(np.median(lat)) / 1e3
            row = {"arch": arch.id, "build_s": build_s, "latency_ms_median": fwd_s * 1e3,
                   "latency_cv": float(np.std(lat, ddof=1) / np.mean(lat)), "decode_ms": ctx.decode_ms(model),
                   "windows": {}}
            if meter is not None:
                with torch.inference_mode():
                    for w in lengths:
                        e, secs, n = energy_windows(functools.partial(model, idx), ctx.sync, meter, w,
                                                    ctx.study_windows)
                        e = np.asarray(e)
                        row["windows"][str(w)] = {"J_per_forward": e.tolist(), "seconds": secs, "forwards": n,
                                                  "cv": float(e.std(ddof=1) / e.mean()) if e.mean() > 0 else math.inf}
            rows.append(row)
            del model
        cal[space] = _choose(ctx, space, rows, lengths)
        ctx.state.save()
        c = cal[space]
        ctx.state.log(f"calibrate {space}: forward {c['forward_ms']:.2f} ms, row {c['row_s']:.3f} s, "
                      f"energy window {c['energy_window_s']} s (CV {c['energy_cv']}), energy on the first "
                      f"{c['energy_first']} rows, decode ({c['decode_ms']:.2f} ms/token) on the first "
                      f"{c['decode_first']}")
    return "done"


def _choose(ctx, space, rows, lengths) -> dict:
    proto = ctx.protocol(space)
    fwd = float(np.mean([r["latency_ms_median"] for r in rows])) / 1e3
    build = float(np.mean([r["build_s"] for r in rows]))
    row_s = build + (proto.warmup + proto.repeats + 1) * fwd + 0.01
    tok = float(np.mean([r["decode_ms"] for r in rows])) / 1e3
    # per decoded row: a warm-up and the repeats, each a prefill (~ T/seq of a forward) and G steps
    decode_s = (1 + proto.decode_repeats) * (proto.decode_prefill / proto.seq * fwd + proto.decode_tokens * tok)
    out = {"archs": rows, "forward_ms": fwd * 1e3, "row_s": row_s, "decode_ms": tok * 1e3, "decode_s": decode_s,
           "rule": "shortest window whose median CV over the calibration archs is <= 5%, else the one with "
                   "the least CV*sqrt(window) (precision per second)"}
    if not rows[0]["windows"]:
        _, n_d = subset_sizes(ctx.plan.profile_s[space], ctx.plan.rows[space], row_s, 0.0, decode_s)
        out.update(energy_window_s=None, energy_cv=None, energy_first=0, decode_first=n_d)
        return out
    cv = {w: float(np.median([r["windows"][str(w)]["cv"] for r in rows])) for w in lengths}
    ok = [w for w in lengths if cv[w] <= 0.05]
    w = min(ok) if ok else min(lengths, key=lambda x: cv[x] * math.sqrt(x))
    energy_s = proto.energy_windows * w + 0.01
    n_e, n_d = subset_sizes(ctx.plan.profile_s[space], ctx.plan.rows[space], row_s, energy_s, decode_s)
    out.update(energy_window_s=w, energy_cv=round(cv[w], 4), cv_by_window={str(k): round(v, 4) for k, v in cv.items()},
               energy_first=n_e, decode_first=n_d)
    return out


# ---- profiling --------------------------------------------------------------------------------
def profile_stage(space: str):
    def stage(ctx, stop) -> str:
        st = ctx.state.stage(f"profile_{space}")
        budget_stop = time.time() + max(0.0, ctx.plan.profile_s[space] - st["seconds"])
        start = ctx.plan_start(space)
        return _profile(ctx, space, range(start, start + ctx.plan.rows[space]), min(stop, budget_stop))
    stage.__name__ = f"profile_{space}"
    return stage


def _profile(ctx, space, positions, stop) -> str:
    p = ctx.profiler(space)
    todo = p.todo(positions)
    p.run(todo, deadline=stop, progress=False)
    left = len(p.todo(positions))
    ctx.state.log(f"profile {space}: {len(p)} rows in {p.out.name} ({left} of the target left)")
    if left and time.time() > ctx.deadline:
        return "partial"
    return "done"


def extra_profiles(ctx, stop) -> str:
    """With time left: more m and l rows, then more s rows (energy only on the calibrated prefix)."""
    for space, rows in ctx.plan.extra_rows:
        start = ctx.plan_start(space)
        if _profile(ctx, space, range(start, start + rows), stop) == "partial":
            return "partial"
    return "done"


def host_cpu(ctx, stop) -> str:
    """The host CPU (CPU protocol 2, all its cores) on space s, until its target or the lease's end."""
    p = ctx.host_profiler("s")
    p.run(range(ctx.plan.host_rows), deadline=stop, progress=False)
    ctx.state.log(f"host cpu: {len(p)} rows in {p.out.name}")
    return "partial" if p.todo(range(ctx.plan.host_rows)) and time.time() > ctx.deadline else "done"


# ---- supernet ---------------------------------------------------------------------------------
def train(ctx, stop) -> str:
    """Train the supernet for the lease's time left minus the evaluation's share (fixed at the
    stage's first call; the step count follows from the measured step time)."""
    from ..training.supernet import train as train_supernet

    st = ctx.state.stage("train")
    space = ctx.cfg.supernet_space
    if not space:
        st["reason"] = "no supernet space configured"
        return "skipped"
    if (Path(ctx.cfg.data_dir) / space / "perplexity.h5").exists() and not ctx.cfg.rehearsal:
        st["reason"] = f"{ctx.cfg.data_dir}/{space}/perplexity.h5 exists: a new supernet would be another run"
        return "skipped"
    run_dir = ctx.run_dir()
    if st.get("train_s") is None:
        st["train_s"] = ctx.plan.train_budget(ctx.work_left())
        if st["train_s"] <= 0:
            st["reason"] = f"only {ctx.work_left():.0f} s of work left, not enough to train and evaluate"
            return "skipped"
    elif st.get("started") and not run_dir.exists():
        st["reason"] = "the supernet run was lost with the machine (weights never leave it)"
        return "failed"
    if stop - time.time() < ctx.min_train_call_s:     # not worth a restart and a checkpoint: next call
        return "partial"
    st["started"] = True
    ctx.state.save()
    cfg = ctx.train_config()
    state = train_supernet(ctx.corpus_dir(), run_dir, cfg, device=ctx.torch_device,
                           max_seconds=max(0.0, stop - time.time() - ctx.checkpoint_margin),
                           log=ctx.state.log, steps_auto_seconds=st["train_s"])
    st.update(step=state["step"], steps=state["config"]["steps"], tokens_seen=state["tokens_seen"],
              train_seconds=state["train_seconds"])
    return "done" if state["step"] >= state["config"]["steps"] else "partial"


def evaluate(ctx, stop) -> str:
    """Perplexity and accuracy on the test split, in the plan's order of (fidelity, count)."""
    from ..training.evaluate import evaluate_profiling_set, read_results, results_path

    if ctx.state.stage("train")["status"] != "done":
        ctx.state.stage("evaluate")["reason"] = "no trained supernet"
        return "skipped"
    run_dir = ctx.run_dir()
    if not (run_dir / "state.json").exists():
        ctx.state.stage("evaluate")["reason"] = "the supernet run was lost with the machine"
        return "failed"
    space = ctx.cfg.supernet_space
    for pct, n in ctx.plan.eval_plan:
        if time.time() > stop - ctx.min_block_s:
            return "partial"
        evaluate_profiling_set(ctx.corpus_dir(), run_dir, pct, n=n, budget_tokens=ctx.eval_budget_tokens,
                               batch=ctx.eval_batch, device=ctx.torch_device,
                               max_seconds=max(0.0, stop - time.time() - ctx.min_block_s), log=ctx.state.log)
        ctx.publish()
    done = {p: len(read_results(results_path(run_dir, space, p))) for p in sorted({p for p, _ in ctx.plan.eval_plan})}
    ctx.state.stage("evaluate")["evaluated"] = {str(k): v for k, v in done.items()}
    return "partial" if time.time() > stop - ctx.min_block_s else "done"


STAGE_FUNCTIONS = {"preflight": preflight, "calibrate": calibrate, "profile_s": profile_stage("s"),
                   "profile_m": profile_stage("m"), "profile_l": profile_stage("l"), "train": train,
                   "evaluate": evaluate, "extra_profiles": extra_profiles, "host_cpu": host_cpu}


def replace_protocol(proto, **kw):
    return dataclasses.replace(proto, **kw)
