#!/usr/bin/env bash
# Profile this machine's CPU for s, m and l with CPU protocol 2 (one thread; rounds over blocks, a
# sentinel, decode; resumable: rerun to continue). Measure on a reserved core with everything else
# on the other one:
#   taskset -c 1 scripts/profile_cpu.sh 1000 300 200          # how the shipped tables were measured
#   taskset -c 1 scripts/profile_cpu.sh 1000 300 200 spread   # each visit in another process
# With `spread`, each space is one block and every call makes one round of it (--one-round), going
# round the spaces (s, m, l, s, m, l, s, m, l): an architecture's 3 visits are made by 3 processes
# about a third of the whole run apart, so the median of its visits rejects a process that ran in
# a speed mode of its own (benchmarks.md, "Drift over hours"). The device name comes from the
# hardware (e.g. cpu_xeon_f6m207_2c); affinity, load and processes per row are recorded. Tables go
# to $DATA_DIR/{space}/ (default: data).
set -euo pipefail
cd "$(dirname "$0")/.."
N_S=${1:-1000}; N_M=${2:-300}; N_L=${3:-200}; MODE=${4:-blocks}; DATA_DIR=${DATA_DIR:-data}
case "$MODE" in
  blocks)
    for spec in "s $N_S" "m $N_M" "l $N_L"; do
      set -- $spec
      python -m hwgptbench.cli profile --space "$1" -n "$2" --backend cpu --protocol 2 --data-dir "$DATA_DIR"
    done ;;
  spread)
    for round in 1 2 3; do
      for spec in "s $N_S" "m $N_M" "l $N_L"; do
        set -- $spec
        python -m hwgptbench.cli profile --space "$1" -n "$2" --backend cpu --protocol 2 --data-dir "$DATA_DIR" --block "$2" --one-round
      done
    done ;;
  *) echo "mode: expected 'blocks' or 'spread', got '$MODE'" >&2; exit 2 ;;
esac
