#!/usr/bin/env bash
# Trains configs/shapes_loss_comparison.yaml (joint training on the built-in benchmark)
# once per loss, then prints one table: R@1/5/10, mean and median rank, both directions,
# all tasks (unknown-task search), one row per loss.
#
#   scripts/loss_comparison.sh                      # into results/loss_comparison/<loss>/
#   scripts/loss_comparison.sh --overwrite          # replace earlier runs
#   OUT=/tmp/lc LOSSES="infonce barlow_twins" scripts/loss_comparison.sh --set train.epochs=1
#
# Arguments are passed to every `ccrbench run` (--set KEY=VALUE, --overwrite, --resume, ...).
# Environment: OUT (output folder), LOSSES (which losses), PYTHON (default .venv/bin/python).
# Each run's printed output goes to $OUT/<loss>.log. About 2.5 minutes per loss on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/loss_comparison}
LOSSES=${LOSSES:-sum_hinge max_hinge infonce barlow_twins}
PYTHON=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
for loss in $LOSSES; do
    start=$SECONDS
    if ! "$PYTHON" -m ccrbench.cli run --config configs/shapes_loss_comparison.yaml --set "loss=$loss" \
        --out "$OUT/$loss" --quiet "$@" >"$OUT/$loss.log" 2>&1; then
        echo "$loss: failed, see $OUT/$loss.log" >&2
        tail -n 5 "$OUT/$loss.log" >&2
        exit 1
    fi
    echo "$loss: done in $((SECONDS - start))s"
done
"$PYTHON" - "$OUT" $LOSSES <<'PY'
import json
import sys
from pathlib import Path

from ccrbench.reporting.run_report import loss_table

out, losses = Path(sys.argv[1]), sys.argv[2:]
print(f"\nLoss comparison, joint training, after the last stage ({out})\n")
print(loss_table({loss: json.loads((out / loss / "results.json").read_text()) for loss in losses}))
PY
