"""What a rehearsal of the plan uses instead of a GPU: a labelled fake energy meter and a tiny
corpus made from this package's own source files. Everything else (stages, budget logic, state,
file layout, merge) is the real code, run on this CPU at a tiny scale."""
from __future__ import annotations

import time
from pathlib import Path

__all__ = ["FakeMeter", "tiny_corpus", "FAKE_WATTS"]

FAKE_WATTS = 50.0


class FakeMeter:
    """An energy 'meter' that reads FAKE_WATTS times the elapsed time, in microjoules. Its numbers
    are not measurements: tables that use it say so (energy source 'modelled')."""

    def read(self) -> int:
        return int(FAKE_WATTS * time.perf_counter() * 1e6)

    @staticmethod
    def joules(start, end) -> float:
        return (end - start) / 1e6


def tiny_corpus(out_dir) -> Path:
    """A small train/val/test corpus built from the package's own .py and .md files (built once)."""
    out_dir = Path(out_dir)
    if (out_dir / "manifest.json").exists():
        return out_dir
    from ..training.corpus import Source, build_corpus

    pkg = Path(__file__).resolve().parent.parent
    build_corpus(out_dir, [Source.local(pkg, include=("*.py", "*.md"))], seed=0, val_frac=0.2,
                 test_frac=0.2, log=lambda *a: None)
    return out_dir
