"""`hwgptbench sample | info`: architectures of a space and their exact costs (core only)."""
from __future__ import annotations

import json

from .. import cost
from ..space import SPACES, as_arch, get_space
from .options import count


def parse_arch(text: str, space: str | None = None):
    """An architecture from a string id, a JSON dict (HW-GPT-Bench keys) or '@file.json'."""
    text = text.strip()
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as f:
                text = f.read().strip()
        except OSError as e:
            raise ValueError(f"arch: cannot read {text[1:]!r} ({e.strerror or e})") from None
        except UnicodeDecodeError:
            raise ValueError(f"arch: {text[1:]!r} is not UTF-8 text; expected a JSON architecture dict "
                             "or a string id") from None
    if text.startswith("{"):
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"arch: not valid JSON ({e})") from None
        if space is None and isinstance(d, dict) and "space" not in d:
            raise ValueError(f"--space: a dict architecture needs its space: pass --space {'|'.join(SPACES)} "
                             "(or a 'space' key in the dict)")
        return as_arch(d, space)
    return as_arch(text, space)


def add_sample(p) -> None:
    p.add_argument("--space", default="s", choices=sorted(SPACES), help="search space")
    p.add_argument("-n", type=count(1, 10 ** 7, " (printed one per line; use SearchSpace.sample_features "
                                                "for more)"), default=1, help="how many architectures")
    p.add_argument("--seed", type=count(0), default=0, help="random seed")
    p.add_argument("--format", choices=("id", "json"), default="id",
                   help="string ids, or JSON dicts with HW-GPT-Bench keys")
    p.set_defaults(func=cmd_sample)


def add_info(p) -> None:
    p.add_argument("arch", help="string id, JSON dict (HW-GPT-Bench keys) or @file.json")
    p.add_argument("--space", default=None, choices=sorted(SPACES),
                   help="space of a dict architecture (default: ids carry their own)")
    p.add_argument("--batch", type=count(1), default=1, help="batch size B")
    p.add_argument("--seq", type=count(1), default=None, help="sequence length T (default: the space's context)")
    p.add_argument("--dtype", default="bfloat16", choices=sorted(cost.DTYPE_BYTES), help="weights' dtype")
    p.add_argument("--json", action="store_true", help="print JSON instead of aligned lines")
    p.set_defaults(func=cmd_info)


PARSERS = {"sample": add_sample, "info": add_info}


def cmd_sample(args) -> int:
    archs = get_space(args.space).sample(args.n, seed=args.seed)
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
