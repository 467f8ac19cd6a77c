"""Compute and store normalisation bounds and reference Pareto fronts of the standard problems
(`hwgptbench.moo.reference_fronts`): hwgptbench/moo/problems.json and hwgptbench/moo/fronts/.

    python scripts/make_reference_fronts.py [--problems s:-params,flops ...]

Rerun after the surrogates change (their predictions, hence fronts and bounds, move).
"""
import argparse
import sys

from hwgptbench.moo.reference_fronts import make_reference_fronts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="*", default=None, help="default: the available standard problems")
    ap.add_argument("--random", type=int, default=100_000, help="size of the random sample")
    ap.add_argument("--budget", type=int, default=10_000, help="evaluations per optimizer run")
    ap.add_argument("--seeds", type=int, default=3, help="runs per optimizer")
    args = ap.parse_args(argv)
    make_reference_fronts(args.problems, args.random, args.budget, args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
