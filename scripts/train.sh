#!/usr/bin/env bash
# The main job: sets up spirt, then trains on Fashion-MNIST locally and
# prints the test accuracy. Extra arguments go to `spirt train`.
set -euo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  echo "usage: scripts/train.sh [spirt train options]"
  echo "Sets up (scripts/setup.sh), then runs the default local training job."
  exit 0
fi
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
build="${SPIRT_BUILD_DIR:-$root/build}"
exec "$build/bin/spirt" train --arch single --model mlp --epochs 2 --batch 64 --lr 0.05 \
  --report "$build/train-report.json" "$@"
