#!/usr/bin/env bash
# Builds all of spirt with AddressSanitizer + UndefinedBehaviorSanitizer and
# runs the whole ctest suite with leak detection on. The function processes
# and tools the tests spawn are sanitized too and inherit the options below;
# every report (from a test or a child) is kept in <build>/sanitizer-logs/,
# printed at the end, and fails the run.
#   scripts/test-sanitize.sh [--gcc|--clang] [--build-dir DIR] [--fast] [ctest args...]
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/test-sanitize.sh [--gcc|--clang] [--build-dir DIR] [--fast] [ctest args...]

Builds spirt with -DSPIRT_SANITIZE=ON (ASan + UBSan) into build-sanitize/
(or $SPIRT_SANITIZE_BUILD_DIR) and runs ctest with
ASAN_OPTIONS=detect_leaks=1 and UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1.
  --clang        compile with clang (default when installed: more UBSan checks,
                 e.g. float-to-int overflow)
  --gcc          compile with gcc
  --build-dir D  build directory
  --fast         skip the tests labelled slow (same as passing -LE slow)
Remaining arguments go to ctest, e.g. -L store or -R test_wire.
USAGE
}

root=$(cd "$(dirname "$0")/.." && pwd)
build="${SPIRT_SANITIZE_BUILD_DIR:-$root/build-sanitize}"
cc=""
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --clang) cc=clang ;;
    --gcc) cc=gcc ;;
    --build-dir) build="${2:?--build-dir needs a value}"; shift ;;
    --fast) ctest_args+=(-LE slow) ;;
    -h|--help) usage; exit 0 ;;
    *) ctest_args+=("$1") ;;
  esac
  shift
done
if [ -z "$cc" ]; then
  if command -v clang >/dev/null; then cc=clang; else cc=gcc; fi
fi

packages=(build-essential cmake pkg-config lld
  libmicrohttpd-dev libhiredis-dev libcjson-dev libopenblas-dev libnats-dev zlib1g-dev
  libcurl4-openssl-dev libssl-dev libcmocka-dev redis-server nats-server dataset-fashion-mnist)
[ "$cc" = clang ] && packages+=(clang libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-sanitize: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# A build dir configured with another compiler cannot be switched in place.
if [ -f "$build/CMakeCache.txt" ] &&
   ! grep -q "^CMAKE_C_COMPILER:[A-Z]*=.*$cc" "$build/CMakeCache.txt"; then
  echo "test-sanitize: $build was configured with another compiler; reconfiguring from scratch"
  rm -rf "$build"
fi
echo "test-sanitize: building with $cc + ASan + UBSan in $build"
# RelWithDebInfo: optimised like the real thing, with line numbers in reports.
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSPIRT_SANITIZE=ON >/dev/null
cmake --build "$build" -j"$(nproc)" -- --no-print-directory >/dev/null

# redis-server is not sanitized, so it cannot load a module that was: the
# module's own CMakeLists must build it with -fno-sanitize=all. Say so
# plainly instead of letting every module test fail with a startup error.
if [ -f "$build/lib/spirt_redis.so" ] && nm -u "$build/lib/spirt_redis.so" | grep -q '__asan_'; then
  echo "test-sanitize: WARNING: $build/lib/spirt_redis.so is built with ASan; redis-server" \
    "cannot load it, so tests that start Redis with the module will fail." >&2
  echo "test-sanitize: fix: -fno-sanitize=all on the spirt_redis target (compile and link)" >&2
fi

# Every sanitized process (test programs, and the function processes and
# tools they spawn) writes its report to <build>/sanitizer-logs/<tool>.<pid>:
# children's own logs live in test temp dirs that are removed on exit, so
# this is the one place a child's report survives. Leaks are reported too.
logs="$build/sanitizer-logs"
rm -rf "$logs"
mkdir -p "$logs"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:print_summary=1:log_path=$logs/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan"

cd "$build"
status=0
ctest --output-on-failure --timeout 3000 "${ctest_args[@]}" || status=$?

shopt -s nullglob
reports=("$logs"/*)
if [ ${#reports[@]} -gt 0 ]; then
  echo
  echo "test-sanitize: ${#reports[@]} sanitizer report(s):"
  for r in "${reports[@]}"; do
    echo "---- $r"
    head -60 "$r"
  done
  status=1
else
  echo "test-sanitize: no sanitizer reports"
fi
exit "$status"
