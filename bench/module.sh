#!/usr/bin/env bash
# bench/module.sh - throughput of the spirt Redis module's SPIRT.AVG.
#
# Starts two throw-away redis-servers on free loopback ports (one with the
# module, one without, for the client-side fallback), runs bin/bench-module
# (bench/module.c, built with spirt) against them,
# and stops the servers. Prints SPIRT.AVG of K x N float32 in GB/s of source
# bytes read, server-side and round-trip, next to memcpy.
#
# Usage: bench/module.sh [N] [K] [REPS]   (defaults 1000000 4 30)
# Env:   SPIRT_BUILD_DIR  build tree (default: <repo>/build)
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
case "${1:-}" in
    -h|--help) bench_usage; exit 0 ;;
    -*) bench_bad_option "$1" ;;
esac
n="${1:-1000000}"
k="${2:-4}"
reps="${3:-30}"

bench_build lib/spirt_redis.so bin/bench-module
module="$build/lib/spirt_redis.so"

work="$(mktemp -d /tmp/spirt-bench-XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# start_redis PORT DIR [--loadmodule PATH]
start_redis() {
    local port="$1" dir="$2"
    shift 2
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
        "$@" >"$dir/redis.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 100); do
        if redis-cli -p "$port" PING 2>/dev/null | grep -q PONG; then
            return 0
        fi
        sleep 0.1
    done
    echo "bench-module: redis-server on port $port did not start:" >&2
    cat "$dir/redis.log" >&2
    exit 1
}

mod_port="$(bench_free_port)"
start_redis "$mod_port" "$work/mod" --loadmodule "$module"
plain_port="$(bench_free_port)"
start_redis "$plain_port" "$work/plain"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
"$build/bin/bench-module" "$mod_port" "$plain_port" "$n" "$k" "$reps"
