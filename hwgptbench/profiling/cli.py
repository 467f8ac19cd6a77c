"""`hwgptbench profile`: measure profiling-set architectures on this machine (resumable)."""
from __future__ import annotations

import dataclasses
import shlex

from ..space import SPACES


def register(sub) -> None:
    p = sub.add_parser("profile", help="measure latency/energy/memory of profiling-set archs (resumable)")
    p.add_argument("--space", required=True, choices=sorted(SPACES))
    p.add_argument("--device", default=None, help="device name (default: from the hardware, e.g. cpu_xeon_f6m207_2c, h100)")
    p.add_argument("--backend", choices=("cpu", "cuda"), default=None, help="default: cuda if available")
    p.add_argument("-n", type=int, default=100, help="profile the first n profiling-set archs")
    p.add_argument("--indices", default=None, help="explicit profiling-set positions, e.g. 0-99,200")
    p.add_argument("--batch", type=int)
    p.add_argument("--seq", type=int)
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--warmup", type=int)
    p.add_argument("--repeats", type=int)
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.add_argument("--energy-window-s", type=float)
    p.add_argument("--energy-windows", type=int)
    p.add_argument("--out", default=None, help="table path (default: data/{space}/{device}.h5)")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--max-seconds", type=float, default=None, help="stop cleanly after this long")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def parse_indices(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                a, b = part.split("-")
                out.extend(range(int(a), int(b) + 1))
            elif part:
                out.append(int(part))
        except ValueError:
            raise ValueError(f"indices: cannot parse {part!r}; expected e.g. '0-99,200'") from None
    return out


def run(args) -> int:
    import torch

    from .run import default_protocol, profile

    backend = args.backend or ("cuda" if torch.cuda.is_available() else "cpu")
    proto = default_protocol(backend)
    overrides = {k: getattr(args, k) for k in ("batch", "seq", "dtype", "warmup", "repeats", "threads",
                                              "energy_window_s", "energy_windows")
                 if getattr(args, k) is not None}
    proto = dataclasses.replace(proto, **overrides)
    out = profile(args.space, device=args.device, out=args.out, n=args.n,
                  indices=parse_indices(args.indices) if args.indices else None, protocol=proto,
                  command="hwgptbench " + " ".join(shlex.quote(a) for a in args.argv),
                  max_seconds=args.max_seconds, progress=not args.quiet, data_dir=args.data_dir)
    print(out if out.exists() else f"nothing measured: no architecture to profile (-n {args.n}); {out} not written")
    return 0
