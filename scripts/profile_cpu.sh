#!/usr/bin/env bash
# Profile this machine's CPU for s, m and l with CPU protocol 2 (one thread; rounds over blocks, a
# sentinel, decode; resumable: rerun to continue). Measure on a reserved core with everything else
# on the other one:
#   taskset -c 1 scripts/profile_cpu.sh 1000 300 200
# The device name comes from the hardware (e.g. cpu_xeon_f6m207_2c); affinity and load per row are
# recorded in each table.
set -euo pipefail
cd "$(dirname "$0")/.."
N_S=${1:-1000}; N_M=${2:-300}; N_L=${3:-200}
for spec in "s $N_S" "m $N_M" "l $N_L"; do
  set -- $spec
  python -m hwgptbench.cli profile --space "$1" -n "$2" --backend cpu --protocol 2
done
