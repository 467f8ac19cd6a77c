#!/usr/bin/env python
"""Refit every surrogate from data/ into surrogates/ and print the quality table (markdown).

Same as `hwgptbench fit-surrogates --markdown --out surrogates` (this script names the package's
folder, which the command writes only when named); one command, minutes on a 2-core machine:

    OMP_NUM_THREADS=1 python scripts/fit_surrogates.py [--spaces s,m] [--nthread 1]
"""
import sys

from hwgptbench.cli import main
from hwgptbench.paths import surrogates_dir

if __name__ == "__main__":
    out = [] if "--out" in sys.argv else ["--out", str(surrogates_dir())]
    sys.exit(main(["fit-surrogates", "--markdown", *out, *sys.argv[1:]]))
