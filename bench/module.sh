#!/usr/bin/env bash
# bench/module.sh - throughput of the spirt Redis module's SPIRT.AVG.
#
# Starts two throw-away redis-servers on free loopback ports (one with the
# module, one without, for the client-side fallback), runs bin/bench-module
# (bench/module.c, built with spirt) against them, and stops the servers.
# Prints SPIRT.AVG of K x N float32 into an existing destination and into a
# fresh key per call (as training writes them): server-side time per call
# (Redis's SLOWLOG median, warm-up calls excluded; commandstats' mean of the
# same calls), round trip, bytes moved (K sources read + 1 written) per
# second, and that bandwidth as a share of memcpy's over the same bytes in
# the same run (the goal: >= 0.5).
#
# With --baseline MODULE.so (another build of lib/spirt_redis.so, e.g. one
# copied before a change) it also runs a server with that module and times
# both builds' SPIRT.AVG with their calls interleaved: before/after in one run.
#
# Usage: bench/module.sh [--baseline MODULE.so] [N] [K] [REPS]   (defaults 1000000 4 30)
# Env:   SPIRT_BUILD_DIR  build tree (default: <repo>/build)
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
baseline=""
case "${1:-}" in
    -h|--help) bench_usage; exit 0 ;;
    --baseline)
        [ $# -ge 2 ] || { echo "$bench_name: --baseline needs a module file" >&2; exit 2; }
        baseline=$(realpath "$2")
        [ -r "$baseline" ] || { echo "$bench_name: cannot read $baseline" >&2; exit 2; }
        shift 2 ;;
    -*) bench_bad_option "$1" ;;
esac
n="${1:-1000000}"
k="${2:-4}"
reps="${3:-30}"

bench_build lib/spirt_redis.so bin/bench-module
module="$build/lib/spirt_redis.so"

mod_port="" plain_port="" base_port=0
bench_workdir
bench_redis mod mod_port "loadmodule \"$module\""
bench_redis plain plain_port
[ -z "$baseline" ] || bench_redis baseline base_port "loadmodule \"$baseline\""

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
"$build/bin/bench-module" "$mod_port" "$plain_port" "$n" "$k" "$reps" "$base_port"
