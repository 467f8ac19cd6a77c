"""Convert HW-GPT-Bench's published predictors (../shared/hwg_release) into the .npz files we ship.

    python scripts/convert_hwgpt_predictors.py [--release ../shared/hwg_release]

Reads each torch state_dict once, with `torch.load(weights_only=True)` after checking its sha256
against the release's SHA256SUMS, and writes its tensors unchanged in value (float32) to
hwgptbench/assets/hwgpt/{name}.npz, with the release's LICENSE, a NOTICE of what was changed and
manifest.json (each npz's sha256 and its origin's sha256), which `hwgptbench.sources.hwgpt`
verifies on every load. Serving is numpy only; torch is needed here alone.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "hwgptbench" / "assets" / "hwgpt"
FILES = {f"perplexity_{s}": f"predictor_ckpts/metric/perplexity_{s}.pt" for s in "sml"}
FILES.update({f"{d}_memory_{s}": f"predictor_ckpts/hwmetric/mlp/{d}_memory_{s}.pth"
              for d in ("float16", "bfloat16") for s in "sml"})
LAYERS = ("fc1", "fc2", "fc3", "fc4", "fc5")
NOTICE = """HW-GPT-Bench predictors, converted
===================================

The files `perplexity_{s,m,l}.npz` and `{float16,bfloat16}_memory_{s,m,l}.npz` here are HW-GPT-Bench's
published predictors (https://github.com/automl/HW-GPT-Bench at commit 1f43ee8, files
`data_collection/gpt_datasets/predictor_ckpts/metric/perplexity_*.pt` and
`data_collection/gpt_datasets/predictor_ckpts/hwmetric/mlp/*_memory_*.pth`), licensed under the
Apache License 2.0 (LICENSE here, the repository's own).

What was changed: each torch state_dict was converted to a numpy .npz file with the same tensor
names (`fc1.weight` ... `fc5.bias`) and the same float32 values (nothing retrained, rounded or
rescaled), by `scripts/convert_hwgpt_predictors.py`. `manifest.json` lists each converted file's
sha256 and the sha256 of the file it came from (as listed in the release's SHA256SUMS).
hwgptbench evaluates these networks with numpy (`hwgptbench/sources/hwgpt.py`), with the input
encodings of HW-GPT-Bench's `lib/utils.py` (`convert_config_to_one_hot` for perplexity,
`get_arch_feature_map` + `normalize_arch_feature_map` for memory).
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--release", type=Path, default=REPO.parent / "shared" / "hwg_release")
    args = ap.parse_args(argv)
    rel = args.release
    sums = {}
    for line in (rel / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.removeprefix("./")] = digest
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {"source": "HW-GPT-Bench (automl/HW-GPT-Bench) at commit 1f43ee8", "licence": "Apache-2.0",
                "converted_by": "scripts/convert_hwgpt_predictors.py", "files": {}}
    for name, origin in FILES.items():
        src = rel / origin
        got = sha256(src)
        if sums.get(origin) != got:
            raise SystemExit(f"{origin}: sha256 {got} differs from SHA256SUMS ({sums.get(origin)}); not converting")
        state = torch.load(src, map_location="cpu", weights_only=True)
        want = {f"{layer}.{p}" for layer in LAYERS for p in ("weight", "bias")}
        if set(state) != want:
            raise SystemExit(f"{origin}: tensors {sorted(state)} are not the 5-layer MLP's {sorted(want)}")
        arrays = {k: state[k].detach().cpu().numpy() for k in sorted(state)}
        if any(a.dtype != np.float32 for a in arrays.values()):
            raise SystemExit(f"{origin}: expected float32 tensors")
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        (OUT / f"{name}.npz").write_bytes(buf.getvalue())
        manifest["files"][f"{name}.npz"] = {"sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
                                            "origin": origin, "origin_sha256": got,
                                            "inputs": int(arrays["fc1.weight"].shape[1])}
        print(f"{name}: {arrays['fc1.weight'].shape[1]} inputs -> {name}.npz")
    shutil.copyfile(rel / "LICENSE", OUT / "LICENSE")
    (OUT / "NOTICE.md").write_text(NOTICE)
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
