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

from ..paths import is_shipped_data
from .options import DATA_DIR_HELP, RawHelpFormatter, device_name, folder, named_destination, positive

__all__ = ["add_gpu_plan", "main"]


def add_gpu_plan(p) -> None:
    """The options of `hwgptbench gpu-plan` and of `python -m hwgptbench.gpu_plan` (the same)."""
    p.description, p.formatter_class = __doc__, RawHelpFormatter
    p.add_argument("action", nargs="?", default="run", choices=("run", "merge", "report"),
                   help="run a call of the plan, merge a returned folder, or report its figures")
    p.add_argument("results", nargs="?", type=folder, default=None,
                   help="merge/report: the folder a call returned, $OUT (default: none)")
    g = p.add_argument_group("run")
    g.add_argument("--out", default=None, help="output folder where results are handed back "
                                               "(on the device: $OUT; default: none, required)")
    g.add_argument("--work-dir", default="runs/gpu_plan",
                   help="the plan's memory between calls (default: %(default)s; kept on the machine)")
    g.add_argument("--call-seconds", type=positive, default=560.0,
                   help="this call's limit in seconds (the tool's timeout minus transfers; default: %(default)s)")
    g.add_argument("--lease-left", type=positive, default=1800.0,
                   help="device seconds the lease has left as this call starts (status' budget_left_s; "
                        "default: %(default)s)")
    g.add_argument("--warm", action="store_true", help="the machine is already started (first call only)")
    g.add_argument("--device", type=device_name, default=None,
                   help="device name of the tables (default: from the GPU, e.g. h100)")
    g.add_argument("--supernet-space", default="s", help="space of the supernet, or 'none' (default: %(default)s)")
    g.add_argument("--corpus", default="corpus_cache/gpt2_packed",
                   help="packed corpus carried to the device (default: %(default)s)")
    g.add_argument("--no-energy", action="store_true", help="measure everything but energy (no NVML)")
    g.add_argument("--rehearsal", action="store_true",
                   help="the whole plan on this CPU at a tiny scale (fake energy meter, tiny supernet)")
    g.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    m = p.add_argument_group("merge")
    m.add_argument("--surrogates-dir", default=None, help="where surrogates are refitted (default: the shipped ones)")
    m.add_argument("--no-refit", action="store_true", help="merge tables only")
    m.add_argument("--no-fronts", action="store_true", help="do not regenerate problems' bounds and fronts")
    m.add_argument("--allow-rehearsal", action="store_true",
                   help="merge a rehearsal's results (only ever into a scratch data folder)")
    p.set_defaults(func=run)


PARSERS = {"gpu-plan": add_gpu_plan}


def run(args) -> int:
    from ..gpu_plan.stages import PlanError

    try:
        return _run(args)
    except PlanError as e:          # the device cannot run the plan (failed preflight): not a user error
        print(f"gpu-plan: stopped: {e}", file=sys.stderr)
        return 3


def _run(args) -> int:
    if args.action in ("merge", "report"):
        if not args.results:
            raise ValueError(f"results: '{args.action}' needs the folder a call returned, e.g. "
                             f"hwgptbench gpu-plan {args.action} runs/lease1")
        if args.action == "report":
            from ..gpu_plan.report import report
            print(report(args.results))
            return 0
        from ..gpu_plan.merge import merge_results
        data = named_destination(args.data_dir, "data", "--data-dir", is_shipped_data)
        summary = merge_results(args.results, data_dir=data, surrogates_dir=args.surrogates_dir,
                                refit=not args.no_refit, fronts=not args.no_fronts,
                                allow_rehearsal=args.allow_rehearsal)
        print(json.dumps(summary, indent=1))
        return 0
    if args.results:
        raise ValueError(f"results: only merge/report take a folder, got {args.results!r}")
    if not args.out:
        raise ValueError("out: --out is required (on the device: --out \"$OUT\")")
    from ..gpu_plan.plan import PlanConfig, run_call
    space = None if args.supernet_space == "none" else args.supernet_space
    cfg = PlanConfig(rehearsal=args.rehearsal, device=args.device, supernet_space=space, corpus=args.corpus,
                     energy=not args.no_energy, data_dir=args.data_dir or "data")
    command = "hwgptbench gpu-plan " + " ".join(shlex.quote(a) for a in getattr(args, "argv", sys.argv[1:]))
    if args.rehearsal and args.action == "run" and not getattr(args, "one_call", False):
        return _rehearse(cfg, args, command)
    state = run_call(cfg, args.out, args.work_dir, args.call_seconds, args.lease_left, args.warm, command=command)
    _print_summary(state)
    return 0


def _rehearse(cfg, args, command) -> int:
    """Simulated calls, as on the device: $OUT emptied before each, the lease's time counted down."""
    from ..gpu_plan.plan import run_call
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
    from . import run as run_command

    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(prog="python -m hwgptbench.gpu_plan", allow_abbrev=False)
    add_gpu_plan(p)
    p.add_argument("--one-call", action="store_true", help="rehearsal: run one call only (tests use it)")
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return e.code
    args.argv, args.command = argv, "gpu-plan"
    return run_command(args, "gpu-plan")
