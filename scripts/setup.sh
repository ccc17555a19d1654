#!/usr/bin/env bash
# Installs what spirt needs on Debian 12 (only the missing packages) and
# builds it into build/ (or $SPIRT_BUILD_DIR). Safe to run again.
#   scripts/setup.sh [--sanitize] [--help]
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/setup.sh [--sanitize] [--build-dir DIR]

Installs missing Debian packages (compilers, libraries, redis-server,
nats-server, the Fashion-MNIST dataset) and builds spirt.
  --sanitize        build with AddressSanitizer + UndefinedBehaviorSanitizer
  --build-dir DIR   build directory (default: build, or $SPIRT_BUILD_DIR)
USAGE
}

root=$(cd "$(dirname "$0")/.." && pwd)
build="${SPIRT_BUILD_DIR:-$root/build}"
sanitize=OFF
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize=ON ;;
    --build-dir) build="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

packages=(build-essential cmake pkg-config lld
  libmicrohttpd-dev libhiredis-dev libcjson-dev libopenblas-dev libnats-dev zlib1g-dev
  libcurl4-openssl-dev libssl-dev libcmocka-dev redis-server nats-server dataset-fashion-mnist)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
# The packaged servers start themselves on install; spirt starts its own on
# free ports, so the system ones are left alone.

echo "setup: building in $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSPIRT_SANITIZE="$sanitize" >/dev/null
cmake --build "$build" -j"$(nproc)" -- --no-print-directory >/dev/null
echo "setup: built $build/bin/spirt"
