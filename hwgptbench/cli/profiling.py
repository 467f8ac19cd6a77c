"""`hwgptbench profile`: measure profiling-set architectures on this machine (resumable)."""
from __future__ import annotations

import dataclasses
import os

from ..space import SPACES
from ..paths import is_shipped_data
from .options import (DATA_DIR_HELP, command_line, count, device_name, existing_file, named_destination,
                      parse_with, positive, renamed, require, table_path)

_OVERRIDES = ("batch", "seq", "dtype", "warmup", "repeats", "threads", "energy_window_s", "energy_windows",
              "decode_batch", "decode_prefill", "decode_tokens", "decode_repeats", "rounds", "block",
              "sentinel_every", "decode_warmup")


def add_profile(p) -> None:
    p.description = ("Measure the profiling set's architectures on this machine into "
                     "DATA_DIR/{space}/{device}.h5 (resumable: rerun the same command to continue). "
                     "Protocol defaults: docs/PROTOCOLS.md; any field can be overridden.")
    p.add_argument("--space", required=True, choices=sorted(SPACES), help="search space")
    p.add_argument("--device", type=device_name, default=None,
                   help="device name of the table (default: from the hardware, e.g. cpu_xeon_f6m207_2c, h100)")
    p.add_argument("--backend", choices=("cpu", "cuda"), default=None,
                   help="torch backend that runs the models (default: cuda if available, else cpu)")
    p.add_argument("--protocol", type=int, choices=(1, 2), default=1,
                   help="CPU protocol: 1 = repeats back to back on all cores; 2 = one thread, rounds over "
                        "blocks, a sentinel, decode (default: %(default)s)")
    p.add_argument("-n", type=count(0), default=100,
                   help="profile the first n profiling-set archs (default: %(default)s)")
    p.add_argument("--indices", type=parse_with(parse_indices), default=None,
                   help="explicit profiling-set positions instead of -n, e.g. 0-99,200 (default: none)")
    g = p.add_argument_group("protocol overrides (default: the protocol's own value, recorded in the table)")
    for name, typ, text in (("batch", int, "batch size B"), ("seq", int, "sequence length T"),
                            ("warmup", int, "warm-up forwards per visit"), ("repeats", int, "timed forwards per visit"),
                            ("threads", int, "CPU threads"), ("energy-window-s", float, "seconds per energy window"),
                            ("energy-windows", int, "energy windows per architecture"),
                            ("decode-batch", int, "decode batch"), ("decode-prefill", int, "decode prefill tokens T"),
                            ("decode-tokens", int, "timed decode steps G"), ("decode-repeats", int, "decode repeats"),
                            ("decode-warmup", int, "untimed prefill + decode passes before them"),
                            ("rounds", int, "protocol 2: visits per architecture"),
                            ("block", int, "protocol 2: architectures per block"),
                            ("sentinel-every", int, "protocol 2: visits between sentinel visits")):
        if name == "threads":                  # more threads than cores cannot be measured (and crashed torch)
            typ = count(1, os.cpu_count() or 1, " (this machine's cores)")
        g.add_argument(f"--{name}", type=typ, default=None, help=f"{text} (default: the protocol's)")
    g.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                   help="weights' dtype (default: the protocol's)")
    p.add_argument("--table", type=table_path, default=None,
                   help="the table's path (default: DATA_DIR/{space}/{device}.h5)")
    renamed(p, "--out", "--table", "profile writes one table, named by --table (--out names folders)")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--max-seconds", type=positive, default=None, help="stop cleanly after this long (default: no limit)")
    p.add_argument("--one-round", action="store_true",
                   help="protocol 2: stop once this process has completed a round; rerun for the next, so "
                        "each visit of an architecture is made by another process (default: all rounds)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def add_import_reference(p) -> None:
    p.add_argument("file", type=existing_file, help="the reference JSON, e.g. ../shared/reference_data/h100_2026-11-22.json")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.set_defaults(func=cmd_import_reference)


def cmd_import_reference(args) -> int:
    import json

    from ..profiling.reference import import_reference
    command = command_line(args)
    data = named_destination(args.data_dir, "data", "--data-dir", is_shipped_data)
    print(json.dumps(import_reference(args.file, data, command=command, log=lambda m: None), indent=1))
    return 0


PARSERS = {"profile": add_profile, "import-reference": add_import_reference}


def parse_indices(text: str) -> list[int]:
    """'0-99,200' -> [0, ..., 99, 200]: profiling-set positions, ranges inclusive and ascending."""
    out = []
    for part in text.split(","):
        try:
            a, _, b = part.strip().partition("-")
            lo, hi = int(a), int(b or a)
        except ValueError:
            raise ValueError(f"cannot parse {part!r}; expected positions >= 0 like '0-99,200'") from None
        if not 0 <= lo <= hi:
            raise ValueError(f"{part!r} is not an ascending range of positions >= 0")
        out.extend(range(lo, hi + 1))
    return out


def run(args) -> int:
    require("torch")
    import torch

    from ..profiling.protocol import default_protocol
    from ..profiling.rounds import RoundsProfiler
    from ..profiling.run import Profiler

    backend = args.backend or ("cuda" if torch.cuda.is_available() else "cpu")
    proto = default_protocol(backend, args.protocol if backend == "cpu" else 1)
    if backend == "cuda" and args.protocol != 1:
        raise ValueError("protocol: 2 is the CPU protocol; on CUDA use --protocol 1 (the GPU protocol)")
    overrides = {k: getattr(args, k) for k in _OVERRIDES if getattr(args, k) is not None}
    only_v2 = sorted(k for k in ("rounds", "block", "sentinel_every") if k in overrides)
    if only_v2 and proto.version != 2:          # an option that would be ignored is an error
        raise ValueError(f"--{only_v2[0].replace('_', '-')}: applies to CPU protocol 2 only (rounds of visits); "
                         "add --protocol 2, or drop it")
    if backend == "cuda" and "threads" in overrides:
        raise ValueError("--threads: CPU threads; the CUDA protocol has none")
    proto = dataclasses.replace(proto, **overrides)
    indices = args.indices if args.indices is not None else range(args.n)
    cls = RoundsProfiler if proto.version == 2 else Profiler
    if args.one_round and proto.version != 2:
        raise ValueError("one-round: rounds are protocol 2's; add --protocol 2 (CPU)")
    kw = {"one_round": True} if args.one_round else {}
    command = command_line(args)
    data = args.data_dir or "data"
    if args.table is None:                   # the table goes into the data folder
        data = named_destination(args.data_dir, "data", "--data-dir", is_shipped_data)
    with cls(args.space, device=args.device, out=args.table, protocol=proto, command=command,
             data_dir=data) as p:
        added = p.run(indices, max_seconds=args.max_seconds, progress=not args.quiet, **kw)
        left = len(p.todo(indices))
    out = p.out
    if args.one_round and left:
        print(f"{out}: one round done ({added} rows completed); {left} architectures still need visits: "
              "run the same command again")
        return 0
    print(out if out.exists() else f"nothing measured: no architecture to profile (-n {args.n}); {out} not written")
    return 0
