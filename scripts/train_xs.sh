#!/usr/bin/env bash
# Train (or resume) an xs network on one reserved core: the runs of benchmarks.md "The xs space".
# Re-run the same command after a kill; it continues from the last checkpoint (at most 3 min lost).
#   CORE=1 SEED=0 scripts/train_xs.sh                 # the supernet, ~2.4 h on one EPYC core
#   SUPERNET=<arch id> SANDWICH=1 RUN=... scripts/train_xs.sh   # one standalone network, same
#                                                      # batches and schedule (train_standalone_xs.sh)
set -euo pipefail
CORE=${CORE:-1}
SEED=${SEED:-0}
STEPS=${STEPS:-4000}
SANDWICH=${SANDWICH:-4}
RUN=${RUN:-runs/xs_supernet_seed${SEED}}
HWGPTBENCH=${HWGPTBENCH:-hwgptbench}
[ -f corpus_cache/gpt2_8192/manifest.json ] || taskset -c "$CORE" $HWGPTBENCH corpus --ranks 8192
mkdir -p "$RUN"
export PYTHONUNBUFFERED=1
exec ${NICE:-} taskset -c "$CORE" $HWGPTBENCH train --space xs --run-dir "$RUN" --steps "$STEPS" --batch 8 \
  --lr 1e-3 --min-lr 1e-4 --warmup 200 --eval-every 250 --eval-batches 16 --seed "$SEED" \
  --sandwich "$SANDWICH" ${SUPERNET:+--supernet "$SUPERNET"} --bf16 --threads 1 >> "$RUN/train.out" 2>&1
