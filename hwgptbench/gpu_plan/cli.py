"""`hwgptbench gpu-plan`: spend a GPU lease (or rehearse it on this CPU), then merge what came back.

    python -m hwgptbench.gpu_plan --out "$OUT" --lease-left 1700 --call-seconds 560   # on the device
    hwgptbench gpu-plan --rehearsal --out runs/rehearsal                           # here, < 90 s
    hwgptbench gpu-plan merge <files_at>                                           # here, afterwards
    hwgptbench gpu-plan report <files_at>                                          # benchmarks.md figures
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

__all__ = ["register", "main"]


def register(sub) -> None:
    p = sub.add_parser("gpu-plan", help="spend a GPU lease in resumable stages (or --rehearsal on this CPU); "
                                        "'merge DIR' brings the results into data/",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(p)
    p.set_defaults(func=run)


def _arguments(p) -> None:
    p.add_argument("action", nargs="?", default="run", choices=("run", "merge", "report"),
                   help="run a call of the plan (default), merge a returned folder, or report its figures")
    p.add_argument("results", nargs="?", default=None, help="merge/report: the folder a call returned ($OUT)")
    g = p.add_argument_group("run")
    g.add_argument("--out", default=None, help="where results are handed back (on the device: $OUT)")
    g.add_argument("--work-dir", default="runs/gpu_plan",
                   help="the plan's memory between calls (default: %(default)s; kept on the machine)")
    g.add_argument("--call-seconds", type=float, default=560.0,
                   help="this call's limit in seconds (the tool's timeout minus transfers; default: %(default)s)")
    g.add_argument("--lease-left", type=float, default=1800.0,
                   help="device seconds the lease has left as this call starts (status' budget_left_s; "
                        "default: %(default)s)")
    g.add_argument("--warm", action="store_true", help="the machine is already started (first call only)")
    g.add_argument("--device", default=None, help="device name of the tables (default: from the GPU, e.g. h100)")
    g.add_argument("--supernet-space", default="s", help="space of the supernet, or 'none' (default: %(default)s)")
    g.add_argument("--corpus", default="corpus_cache/gpt2_packed",
                   help="packed corpus carried to the device (default: %(default)s)")
    g.add_argument("--no-energy", action="store_true", help="measure everything but energy (no NVML)")
    g.add_argument("--rehearsal", action="store_true",
                   help="the whole plan on this CPU at a tiny scale (fake energy meter, tiny supernet)")
    g.add_argument("--data-dir", default="data", help="the tables' folder (default: %(default)s)")
    m = p.add_argument_group("merge")
    m.add_argument("--surrogates-dir", default=None, help="where surrogates are refitted (default: the shipped ones)")
    m.add_argument("--no-refit", action="store_true", help="merge tables only")
    m.add_argument("--no-fronts", action="store_true", help="do not regenerate problems' bounds and fronts")
    m.add_argument("--allow-rehearsal", action="store_true",
                   help="merge a rehearsal's results (only ever into a scratch data folder)")


def run(args) -> int:
    if args.action in ("merge", "report"):
        if not args.results:
            raise ValueError(f"results: '{args.action}' needs the folder a call returned, e.g. "
                             f"hwgptbench gpu-plan {args.action} runs/lease1")
        if args.action == "report":
            from .report import report
            print(report(args.results))
            return 0
        from .merge import merge_results
        summary = merge_results(args.results, data_dir=args.data_dir, surrogates_dir=args.surrogates_dir,
                                refit=not args.no_refit, fronts=not args.no_fronts,
                                allow_rehearsal=args.allow_rehearsal)
        print(json.dumps(summary, indent=1))
        return 0
    if args.results:
        raise ValueError(f"results: only merge/report take a folder, got {args.results!r}")
    if not args.out:
        raise ValueError("out: --out is required (on the device: --out \"$OUT\")")
    from .plan import PlanConfig, run_call
    space = None if args.supernet_space == "none" else args.supernet_space
    cfg = PlanConfig(rehearsal=args.rehearsal, device=args.device, supernet_space=space, corpus=args.corpus,
                     energy=not args.no_energy, data_dir=args.data_dir)
    command = "hwgptbench gpu-plan " + " ".join(shlex.quote(a) for a in getattr(args, "argv", sys.argv[1:]))
    if args.rehearsal and args.action == "run" and not getattr(args, "one_call", False):
        return _rehearse(cfg, args, command)
    state = run_call(cfg, args.out, args.work_dir, args.call_seconds, args.lease_left, args.warm, command=command)
    _print_summary(state)
    return 0


def _rehearse(cfg, args, command) -> int:
    """Simulated calls, as on the device: $OUT emptied before each, the lease's time counted down."""
    from .plan import run_call
    lease = min(args.lease_left, 75.0)
    call_s = min(args.call_seconds, 25.0)
    out = Path(args.out)
    state = None
    while lease > 3:
        if out.exists():
            shutil.rmtree(out)
        t0 = time.time()
        state = run_call(cfg, out, args.work_dir, min(call_s, lease), lease, command=command)
        lease -= time.time() - t0
        if state.get("done"):
            break
    _print_summary(state)
    return 0


def _print_summary(state) -> None:
    for name, st in state["stages"].items():
        extra = f" ({st['reason']})" if st.get("reason") else (f" ({st['error']})" if st.get("error") else "")
        print(f"{name:>15}: {st['status']:<8} {st['seconds']:7.1f} s{extra}")
    print("done" if state.get("done") else "not done: call again to continue")


def main(argv=None) -> int:
    """`python -m hwgptbench.gpu_plan` on the device: the same options, no install needed."""
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(prog="python -m hwgptbench.gpu_plan", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _arguments(p)
    p.add_argument("--one-call", action="store_true", help="rehearsal: run one call only (tests use it)")
    args = p.parse_args(argv)
    args.argv = argv
    try:
        return run(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"gpu-plan: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:      # PlanError: the device cannot run the plan (failed preflight)
        print(f"gpu-plan: stopped: {e}", file=sys.stderr)
        return 3
