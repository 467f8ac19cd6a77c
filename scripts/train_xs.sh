#!/usr/bin/env bash
# Train (or resume) the xs supernet on one reserved core: the run of benchmarks.md "The xs space".
# Re-run the same command after a kill; it continues from the last checkpoint (at most 3 min lost).
#   CORE=1 SEED=0 scripts/train_xs.sh            # ~2 h on one core of a 2-core EPYC/Xeon
set -euo pipefail
CORE=${CORE:-1}
SEED=${SEED:-0}
STEPS=${STEPS:-4000}
RUN=${RUN:-runs/xs_supernet_seed${SEED}}
HWGPTBENCH=${HWGPTBENCH:-hwgptbench}
[ -f corpus_cache/gpt2_8192/manifest.json ] || taskset -c "$CORE" $HWGPTBENCH corpus --ranks 8192
mkdir -p "$RUN"
export PYTHONUNBUFFERED=1
exec taskset -c "$CORE" $HWGPTBENCH train --space xs --run-dir "$RUN" --steps "$STEPS" --batch 8 \
  --lr 1e-3 --min-lr 1e-4 --warmup 200 --eval-every 250 --eval-batches 16 --seed "$SEED" \
  --bf16 --threads 1 >> "$RUN/train.out" 2>&1
