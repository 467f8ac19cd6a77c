"""Command-line interface: `hwgptbench {sample,info,profile,...}`.

Each subcommand lives in the module that does its work; this file only wires arguments.
"""
from __future__ import annotations

import argparse
import json
import sys

from . import cost
from .files import LockedError
from .query_cli import parse_arch
from .space import SPACES, get_space


def cmd_sample(args) -> int:
    sp = get_space(args.space)
    archs = sp.sample(args.n, seed=args.seed)
    if args.format == "id":
        print("\n".join(a.id for a in archs))
    else:
        print(json.dumps([a.to_hwg_dict() for a in archs], indent=None if args.n > 1 else 2))
    return 0


def cmd_info(args) -> int:
    a = parse_arch(args.arch, args.space)
    X = get_space(a.space).encode([a])
    info = {
        "id": a.id,
        "space": a.space,
        "params": int(cost.params(X, a.space)[0]),
        "flops": int(cost.flops(X, a.space, args.batch, args.seq)[0]),
        "batch": args.batch, "seq": args.seq, "dtype": args.dtype,
        "memory_MB_analytic": round(float(cost.memory_mb(X, a.space, args.batch, args.seq, args.dtype)[0]), 3),
        "weights_MB": round(float(cost.weights_mb(X, a.space, args.dtype)[0]), 3),
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:>20}: {v}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hwgptbench", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sample", help="sample architectures of a space (seeded)")
    s.add_argument("--space", default="s", choices=sorted(SPACES))
    s.add_argument("-n", type=int, default=1)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--format", choices=("id", "json"), default="id")
    s.set_defaults(func=cmd_sample)

    i = sub.add_parser("info", help="exact params, FLOPs and analytic memory of an architecture")
    i.add_argument("arch", help="string id, JSON dict (HW-GPT-Bench keys) or @file.json")
    i.add_argument("--space", default=None, choices=sorted(SPACES),
                   help="space of a dict architecture (ids carry their own)")
    i.add_argument("--batch", type=int, default=1)
    i.add_argument("--seq", type=int, default=cost.BLOCK_SIZE)
    i.add_argument("--dtype", default="bfloat16", choices=sorted(cost.DTYPE_BYTES))
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)

    for register in _extensions():
        register(sub)
    return p


def _extensions():
    """Subcommands defined next to their code (imported lazily when the CLI runs)."""
    from . import query_cli, train_cli
    from .gpu_plan import cli as gpu_plan_cli
    from .moo import cli as moo_cli
    from .profiling import cli as profiling_cli
    return [profiling_cli.register, query_cli.register, train_cli.register, moo_cli.register,
            gpu_plan_cli.register]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv            # recorded in provenance as the command that produced a table
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError, ImportError, LockedError) as e:
        print(f"hwgptbench {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
