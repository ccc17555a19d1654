#!/usr/bin/env bash
# The main job: sets up spirt (packages + build), then trains an MLP on
# Fashion-MNIST with SPIRT and 4 peers on this machine - real redis-servers,
# nats-server and every step as its own HTTP function - and prints the test
# accuracy. Extra arguments go to `spirt train` and override the defaults.
set -euo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  echo "usage: scripts/train.sh [spirt train options]"
  echo "Sets up (scripts/setup.sh), then runs: spirt train --arch spirt --workers 4 ..."
  echo "Options given here override the defaults; see build/bin/spirt train --help."
  exit 0
fi
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
build="${SPIRT_BUILD_DIR:-$root/build}"
# The defaults that only distributed architectures take go through the
# environment, which is never refused: `scripts/train.sh --arch single` works.
SPIRT_WORKERS="${SPIRT_WORKERS:-4}" SPIRT_MINIBATCHES="${SPIRT_MINIBATCHES:-2}" \
  exec "$build/bin/spirt" train --arch spirt --batch 32 \
  --model mlp --hidden 128 --epochs 2 --lr 0.1 --report "$build/train-report.json" "$@"
