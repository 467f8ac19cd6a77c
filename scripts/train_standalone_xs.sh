#!/usr/bin/env bash
# Train each of the xs validity architectures alone (hwgptbench.training.validity.standalone_archs),
# smallest first, with the supernet's batches and schedule; resumable (finished runs are skipped
# by `train` itself). About 4 h on one core in all; run at low priority beside other work:
#   CORE=0 NICE="nice -n 19" scripts/train_standalone_xs.sh
set -euo pipefail
HWGPTBENCH=${HWGPTBENCH:-hwgptbench}
PY=${PYTHON:-$(dirname "$(command -v "$HWGPTBENCH")")/python}
SEED=${SEED:-0}
for id in $($PY -c "from hwgptbench.training.validity import standalone_archs
print(' '.join(a.id for a in standalone_archs('xs')))"); do
  RUN="runs/xs_standalone_seed${SEED}/$id" SUPERNET="$id" SANDWICH=1 SEED="$SEED" \
    "$(dirname "$0")/train_xs.sh"
done
