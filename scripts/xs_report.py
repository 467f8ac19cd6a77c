#!/usr/bin/env python
"""Summarise the xs runs for benchmarks.md ("The xs space"): per training run (supernet or
standalone), the steps done, the median training throughput over the logged windows (tokens per
second, and sub-network tokens per second for the supernet), the device and threads of its calls,
and the validation loss at every evaluation; then the validity report if `xs-pipeline validity` ran.

    python scripts/xs_report.py RUN_DIR [RUN_DIR ...]      # e.g. runs/xs/supernet_seed0 runs/xs/standalone/*
"""
import json
import sys
from pathlib import Path

import numpy as np


def summary(run: Path) -> str:
    state = json.loads((run / "state.json").read_text())
    rows = [json.loads(ln) for ln in (run / "train_log.jsonl").read_text().splitlines() if ln.strip()]
    tps = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r]
    sub = [r["subnet_tokens_per_s"] for r in rows if "subnet_tokens_per_s" in r]
    val = {r["step"]: r["val_loss_max"] for r in rows if "val_loss_max" in r}
    cfg = state["config"]
    kind = "standalone" if cfg["sandwich"] == 1 else f"supernet (sandwich {cfg['sandwich']})"
    calls = sorted({(c.get("device"), c.get("threads")) for c in state["calls"]}, key=str)
    last = max(val) if val else None
    return (f"{run.name}: {kind}, step {state['step']}/{cfg['steps']}, {state['tokens_seen'] / 1e6:.2f}M tokens; "
            f"median {np.median(tps):.0f} tokens/s" + (f" ({np.median(sub):.0f} sub-network tokens/s)" if cfg["sandwich"] > 1 else "")
            + f" over {len(tps)} windows; calls on {calls}; val loss of the "
            + ("network" if cfg["sandwich"] == 1 else "largest") + f" {val.get(0, float('nan')):.3f} at step 0, "
            + (f"{val[last]:.3f} at step {last}" if last else "none"))


if __name__ == "__main__":
    for d in sys.argv[1:]:
        d = Path(d)
        if (d / "state.json").exists():
            print(summary(d))
        if (d / "validity.json").exists():
            print(json.dumps(json.loads((d / "validity.json").read_text()), indent=1))
