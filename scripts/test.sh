#!/usr/bin/env bash
# Sets up spirt and runs its test suite against real redis-server and
# nats-server processes (the tests start their own on free ports).
#   scripts/test.sh [--sanitize] [ctest arguments...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
setup_args=()
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  echo "usage: scripts/test.sh [--sanitize] [ctest args, e.g. -L store or -LE slow]"
  exit 0
fi
build="${SPIRT_BUILD_DIR:-$root/build}"
if [ "${1:-}" = "--sanitize" ]; then
  setup_args+=(--sanitize)
  build="${SPIRT_BUILD_DIR:-$root/build-sanitize}"
  shift
fi
"$root/scripts/setup.sh" --build-dir "$build" "${setup_args[@]}"
cd "$build"
# Light tests run beside the heavy ones; tests that train hold one lock
# (tests/CMakeLists.txt), so two of those never share the machine.
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -ge 2 ] || jobs=2
ctest --output-on-failure --timeout 1500 -j "$jobs" "$@"
