"""`hwgptbench gpu-plan report DIR`: the figures of a lease for benchmarks.md, in markdown.

Per stage: seconds and throughput; per profile table: rows, latency CV of the repeats, energy CV
over windows and the window chosen (with the calibration that chose it), the analytic memory
estimate's error against the measured peaks; the supernet: training curve, tokens/s, MFU, and the
evaluation noise against the spread between architectures of one embedding size.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

__all__ = ["report"]


def _cv(raw: np.ndarray) -> np.ndarray:
    ok = np.isfinite(raw).sum(axis=1) >= 2
    with np.errstate(invalid="ignore"):
        return np.nanstd(raw[ok], axis=1, ddof=1) / np.nanmean(raw[ok], axis=1)


def _pct(v) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{100 * v:.1f}%"


def report(results_dir) -> str:
    from .. import cost
    from ..space import get_space
    from .merge import read_results_dir

    with tempfile.TemporaryDirectory() as scratch:
        res = read_results_dir(results_dir, scratch)
        state = res["state"]
        out = [f"### GPU lease {Path(results_dir).name}", ""]
        pre = state.get("preflight", {})
        gpu = pre.get("gpu", {})
        out += [f"Device: {gpu.get('gpu_name', 'cpu (rehearsal)')}, driver {gpu.get('driver', 'n/a')}, "
                f"torch {pre.get('versions', {}).get('torch')}, CUDA {pre.get('versions', {}).get('cuda')}; "
                f"git {pre.get('git_commit')}; {len(state.get('calls', []))} call(s).", ""]
        out += ["| stage | status | seconds | calls |", "|---|---|---:|---:|"]
        from .budget import STAGES
        for name in STAGES:
            st = state.get("stages", {}).get(name)
            if st is None:
                continue
            out.append(f"| {name} | {st['status']} | {st['seconds']:.1f} | {st['calls']} |")
        out += ["", "| table | rows | rows/min | latency CV median / p90 | energy rows | energy CV median | "
                "window s | memory estimate error median / max |", "|---|---:|---:|---|---:|---:|---:|---|"]
        for name, t in res["tables"].items():
            space = get_space(t.space)
            st = state.get("stages", {}).get(f"profile_{t.space}", {})
            rate = len(t) / st["seconds"] * 60 if st.get("seconds") else float("nan")
            lat = _cv(t.raw["latency_ms"])
            e = t.raw.get("energy_J", np.full((len(t), 1), np.nan))
            e_rows = int(np.isfinite(e).any(axis=1).sum())
            ecv = _cv(e)
            window = t.extra.get("energy_window_s")
            win = float(np.nanmedian(window)) if window is not None and np.isfinite(window).any() else float("nan")
            mem = "n/a"
            if t.sources.get("memory_MB") == "measured":
                proto = t.provenance["protocol"]
                est = cost.memory_mb(space.encode(t.arch_ids), space, proto["batch"], proto["seq"], proto["dtype"])
                rel = (est - t.raw["memory_MB"][:, 0]) / t.raw["memory_MB"][:, 0]
                mem = f"{_pct(float(np.median(rel)))} / {_pct(float(rel[np.argmax(np.abs(rel))]))}"
            out.append(f"| {name} | {len(t)} | {rate:.0f} | {_pct(np.median(lat) if lat.size else None)} / "
                       f"{_pct(np.percentile(lat, 90) if lat.size else None)} | {e_rows} | "
                       f"{_pct(np.median(ecv) if ecv.size else None)} | {win:.2f} | {mem} |")
        cal = state.get("calibration", {})
        profiled = sorted({t.space for t in res["tables"].values()} - set(cal))
        if profiled and state.get("stages", {}).get("calibrate", {}).get("status") == "done":
            raise ValueError(f"results: state.json's calibration lacks space(s) {profiled} that the lease "
                             "calibrated and profiled; the state was edited or damaged")
        if cal:
            out += ["", "Energy window (chosen per space from this lease's calibration; CV of J/forward "
                        "over windows, median of the space's extreme architectures):", "",
                    "| space | forward ms | CV by window (s) | chosen | energy subset |", "|---|---:|---|---:|---:|"]
            for space, c in cal.items():
                cvs = ", ".join(f"{w}: {_pct(v)}" for w, v in (c.get("cv_by_window") or {}).items())
                out.append(f"| {space} | {c['forward_ms']:.2f} | {cvs or 'n/a'} | {c.get('energy_window_s')} | "
                           f"first {c.get('energy_first')} |")
        for space, run in res["runs"].items():
            out += _supernet(space, run)
    return "\n".join(out) + "\n"


def _supernet(space: str, run: Path) -> list[str]:
    import json

    from ..training.evaluate import noise_report, read_results, results_path

    out = ["", f"Supernet {space}:"]
    log = read_results(run / "train_log.jsonl")
    steps = [r for r in log if "tokens_per_s" in r]
    if steps:
        tps = np.median([r["tokens_per_s"] for r in steps])
        mfu = np.median([r["mfu"] for r in steps if r.get("mfu") is not None] or [np.nan])
        out.append(f"median {tps:,.0f} tokens/s ({tps * 4:,.0f} sub-network tokens/s at sandwich 4), MFU {_pct(mfu)}.")
    vals = sorted({r["step"]: r for r in log if "val_loss_max" in r}.values(), key=lambda r: r["step"])
    if vals:
        out += ["", "| step | tokens | val loss largest | val loss smallest |", "|---:|---:|---:|---:|"]
        for k in sorted(set(np.linspace(0, len(vals) - 1, min(len(vals), 11)).round().astype(int))):
            r = vals[k]
            out.append(f"| {r['step']} | {r['tokens']:,} | {r['val_loss_max']:.3f} | {r['val_loss_min']:.3f} |")
    if (run / "state.json").exists():
        st = json.loads((run / "state.json").read_text())
        out.append(f"\n{st['step']} steps, {st['tokens_seen']:,} tokens, {st['train_seconds']:.0f} s of training.")
    out += ["", "| fidelity | archs | embed | spread of NLL (std) | median SE of one arch | median SE of a paired difference |",
            "|---:|---:|---:|---:|---:|---:|"]
    for p in (25, 50, 75, 100):
        rows = read_results(results_path(run, space, p))
        for e, r in noise_report(rows, space).items() if rows else ():
            out.append(f"| {p}% | {r['n_archs']} | {e} | {r['spread_std_nll']:.4f} | {r['median_se_nll']:.4f} | "
                       f"{r['median_se_paired_diff']:.4f} |")
    return out
