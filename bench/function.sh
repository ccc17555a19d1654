#!/usr/bin/env bash
# A function process's start and footprint (bin/bench-fnstart, bench/fnstart.c):
# for a few step binaries, the time from exec to the first 200 from /healthz
# (median over --starts starts) and the CPU time such a start and stop takes
# (user + system, less disturbed by other load than the wall time), the idle RSS and thread count (VmRSS and
# Threads of /proc/PID/status after healthy and --idle-ms idle), and what a
# trivial request costs: GET /healthz on a new connection each and POST /
# with {} (answered 400: the runtime's whole request path, no step work) over
# one keep-alive connection, as requests/s and the server's CPU per request,
# then RSS again. Functions run as the local runner starts them (loopback,
# OPENBLAS_NUM_THREADS=1 unless set), with auth off and no Redis or NATS.
# With --against DIR the same binaries of another build (DIR/bin) are started
# alternately with these, and new/old ratios follow. Prints numbers only.
#   bench/function.sh [--steps LIST] [--starts N] [--rss-starts N] [--idle-ms MS]
#                     [--requests N] [--against DIR] [--build-dir DIR]
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"

usage() {
  cat <<'USAGE'
usage: bench/function.sh [--steps LIST] [--starts N] [--rss-starts N] [--idle-ms MS]
                         [--requests N] [--against DIR] [--build-dir DIR]

  --steps LIST       comma-separated steps (default notify,barrier,aggregate,gradient)
  --starts N         timed starts per binary for start-to-healthy (default 30)
  --rss-starts N     starts that stay up for memory and request cost (default 3)
  --idle-ms MS       idle time before reading RSS (default 1000)
  --requests N       requests of each kind per such start (default 20000)
  --against DIR      another build tree (e.g. of the previous commit): its
                     DIR/bin/spirt-fn-<step> run alternately with these, then
                     the ratios new/old of start time, RSS and requests/s
  --build-dir DIR    spirt build to measure (default: build, or $SPIRT_BUILD_DIR)
USAGE
}

steps=notify,barrier,aggregate,gradient
starts=30
rss_starts=3
idle_ms=1000
requests=20000
against=""
bench_help=usage
bench_options --steps=steps --starts=starts --rss-starts=rss_starts --idle-ms=idle_ms \
  --requests=requests --against=against --build-dir=build -- "$@"

IFS=, read -r -a step_list <<<"$steps"
need=(bin/bench-fnstart)
for s in "${step_list[@]}"; do need+=("bin/spirt-fn-$s"); done
bench_build "${need[@]}"
if [ -n "$against" ]; then
  against=$(cd "$against" && pwd)
  for s in "${step_list[@]}"; do
    [ -x "$against/bin/spirt-fn-$s" ] ||
      { echo "$bench_name: $against/bin/spirt-fn-$s missing" >&2; exit 2; }
  done
fi

# As the local runner starts them; nothing of the caller's configuration.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
unset SPIRT_NATS_URL SPIRT_REDIS_PEERS SPIRT_REDIS_SHARED SPIRT_READY_REDIS SPIRT_TOKEN SPIRT_TOKEN_FILE SPIRT_THREADS

args=()
for s in "${step_list[@]}"; do
  [ -n "$against" ] && args+=(--bin "$against/bin/spirt-fn-$s" --label "old/$s")
  args+=(--bin "$build/bin/spirt-fn-$s" --label "${against:+new/}$s")
done
echo "bench-function: ${step_list[*]}; $starts starts each${against:+, alternating with $against}"
out=$("$build/bin/bench-fnstart" "${args[@]}" --starts "$starts" --rss-starts "$rss_starts" \
  --idle-ms "$idle_ms" --requests "$requests") || { echo "$out"; exit 1; }
echo "$out"
[ -n "$against" ] || exit 0

# new/old of the medians: start time, idle RSS, threads, both request rates.
echo "bench-function: new/old"
echo "$out" | awk '
  function num(re,   s) { if (!match($0, re)) return ""; s = substr($0, RSTART, RLENGTH);
                          gsub(/[^0-9.]/, "", s); return s }
  {
    split($1, lv, "/"); side = lv[1]; step = lv[2]
    v[side, step, "start"] = num("healthy +[0-9.]+")
    v[side, step, "cpu"] = num("CPU +[0-9.]+ ms")
    v[side, step, "rss"] = num("idle RSS +[0-9.]+")
    v[side, step, "threads"] = num("threads +[0-9]+")
    v[side, step, "get"] = num("each\\) +[0-9]+")
    v[side, step, "post"] = num("alive\\) +[0-9]+")
    if (side == "new") order[++n] = step
  }
  function ratio(step, k) {
    if (v["old", step, k] > 0 && v["new", step, k] != "")
      return sprintf("%.2f", v["new", step, k] / v["old", step, k])
    return "-"
  }
  END {
    for (i = 1; i <= n; i++) {
      s = order[i]
      printf "%-14s start %s ms -> %s ms (x%s), its CPU %s -> %s ms (x%s)  idle RSS %s -> %s MB" \
             " (x%s)  threads %s -> %s  GET /healthz x%s  POST / x%s\n", s, v["old", s, "start"],
             v["new", s, "start"], ratio(s, "start"), v["old", s, "cpu"], v["new", s, "cpu"],
             ratio(s, "cpu"), v["old", s, "rss"], v["new", s, "rss"], ratio(s, "rss"),
             v["old", s, "threads"], v["new", s, "threads"], ratio(s, "get"), ratio(s, "post")
    }
  }'
