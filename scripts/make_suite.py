"""Publish a new benchmark-suite version: the problems, budget and seeds of an existing version,
with every problem the package serves now pinned at its current bounds and reference point.

    python scripts/make_suite.py hwgptbench-suite/2 [--from hwgptbench-suite/1] [--add dev:PROBLEM ...] [--rule TEXT]

Run it after the surrogates or the problems' bounds change (`Suite.check` then refuses the old
version) or when a listed problem becomes available. Published versions are never rewritten.
"""
from __future__ import annotations

import argparse
import json
import subprocess

from hwgptbench.files import write_bytes
from hwgptbench.moo.suite import SUITES_FILE, get_suite, parse_suite, pin, suite_versions


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("version", help="the new version string, e.g. hwgptbench-suite/2")
    ap.add_argument("--from", dest="base", default=None, help="version to copy (default: newest)")
    ap.add_argument("--add", action="append", default=[], metavar="SPLIT:PROBLEM",
                    help="also list PROBLEM in SPLIT (dev or test), e.g. dev:s:-params,decode_ms@cpu_x")
    ap.add_argument("--rule", default=None, metavar="TEXT",
                    help="a sentence appended to the split rule, saying where the added problems go and why")
    args = ap.parse_args(argv)
    if args.version in suite_versions():
        raise SystemExit(f"version {args.version!r} is published already; choose a new one")
    base = get_suite(args.base)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    splits = {s: list(p) for s, p in base.splits.items()}
    for item in args.add:
        split, _, problem = item.partition(":")
        if split not in splits or not problem:
            raise SystemExit(f"--add: expected SPLIT:PROBLEM with SPLIT in {sorted(splits)}, got {item!r}")
        if any(problem in p for p in splits.values()):
            raise SystemExit(f"--add: {problem!r} is in the suite already")
        splits[split].append(problem)
    entry = {"budget": base.budget, "seeds": list(base.seeds), "splits": splits, "split_rule": base.split_rule + (f" {args.rule}" if args.rule else ""),
             "made_by": f"scripts/make_suite.py from {base.version} on the problems.json of commit {commit}",
             "pinned": pin([p for ps in splits.values() for p in ps])}
    parse_suite(args.version, entry)              # validate before writing
    data = json.loads(SUITES_FILE.read_text())
    data["suites"][args.version] = entry
    write_bytes(SUITES_FILE, (json.dumps(data, indent=1, allow_nan=False) + "\n").encode())
    print(f"{args.version}: pinned {list(entry['pinned'])}")


if __name__ == "__main__":
    main()
