#!/usr/bin/env bash
# How this CPU's speed for the same architectures changes over hours: every INTERVAL minutes, a
# fresh profiler process measures s positions 32-61 (CPU protocol 2, 30 archs x 3 visits, ~90 s)
# into its own table under OUT; compare them with data/'s table and with each other with
#   python scripts/analyse_tables.py --drift OUT
# Run on the reserved core with nothing else measuring:
#   taskset -c 1 scripts/cpu_drift_study.sh 12 10 runs/cpu_v2/drift
# While the file $OUT/.pause exists the next probe waits (touch it around anything heavy you must
# run on the other core, so no probe overlaps it).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-12}; INTERVAL_MIN=${2:-10}; OUT=${3:-runs/cpu_v2/drift}
mkdir -p "$OUT"
for k in $(seq 1 "$N"); do
  start=$(date +%s)
  while [ -e "$OUT/.pause" ]; do sleep 5; done
  stamp=$(date -u +%H%M)
  python -m hwgptbench.cli profile --space s --indices 32-61 --backend cpu --protocol 2 \
    --table "$OUT/probe_${k}_${stamp}.h5" > "$OUT/probe_${k}_${stamp}.log" 2>&1
  echo "probe $k at $stamp done"
  [ "$k" -lt "$N" ] && sleep $(( INTERVAL_MIN * 60 - ($(date +%s) - start) > 0 ? INTERVAL_MIN * 60 - ($(date +%s) - start) : 0 ))
done
