#!/usr/bin/env bash
# bench/run.sh - every benchmark of spirt, listed and run from one place.
#   bench/run.sh [--list]        the benchmarks, one a line, with what each measures
#   bench/run.sh NAME [ARGS...]  runs bench/NAME.sh ARGS (NAME --help: its options)
#   bench/run.sh --check         every benchmark answers --help and is listed here
#   bench/run.sh --help          this text
# Each benchmark builds spirt (scripts/setup.sh) when the build tree
# ($SPIRT_BUILD_DIR, default build/) lacks what it runs; the C ones run
# bin/bench-* (CMake option SPIRT_BENCH, on by default).
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
here=$root/bench

# NAME|what it measures: bench/NAME.sh, its C or Python sources beside it.
benchmarks=(
  "train|single-process training samples/s of the MLP and CNN against PyTorch (train_torch.py) on the same data"
  "spirt|SPIRT time per iteration split into its steps (HTTP functions, real Redis and NATS)"
  "vs-torch|epoch time, accuracy, time to 0.80 and CPU of every architecture against PyTorch and DDP (train_torch.py, vs_torch.py)"
  "exchange|averaging 1M / 10M float32 across 4 peers through the store (SPIRT's way, AllReduce's) against a gloo allreduce (bin/bench-exchange, exchange.c, allreduce_torch.py)"
  "module|in-database SPIRT.AVG / SPIRT.UPDATE throughput (GB/s) next to memcpy (bin/bench-module, module.c)"
  "load|many concurrent requests against one function: errors, latency, memory (bin/bench-load, load.c)"
  "function|a function process: exec to first 200 from /healthz, idle RSS and threads, cost of a trivial request (bin/bench-fnstart, fnstart.c)"
  "byzantine|test accuracy under each attack for each aggregation rule"
  "faults|injected faults (a peer's Redis, the driver, NATS killed) and what each costs"
  "sparse|logreg and svm on a hashed 2^20-feature LibSVM file (spirt datagen sparse), single against spirt, all-reduce and scatter-reduce: accuracy against single-process training and the Bayes accuracy, bytes per worker per iteration, time per epoch"
)

# The bench/*.sh that are benchmarks (not this script or the shared helpers).
scripts() {
  local f n
  for f in "$here"/*.sh; do
    n=$(basename "$f" .sh)
    case $n in run|common) ;; *) echo "$n" ;; esac
  done
}

listed() { local e; for e in "${benchmarks[@]}"; do [ "${e%%|*}" = "$1" ] && return 0; done; return 1; }

list() {
  local e n
  for e in "${benchmarks[@]}"; do
    printf '  %-10s %s\n' "${e%%|*}" "${e#*|}"
  done
  for n in $(scripts); do
    listed "$n" || printf '  %-10s %s\n' "$n" "(not described in bench/run.sh)"
  done
}

check() {
  local n e bad=0
  for n in $(scripts); do
    listed "$n" || { echo "bench/run.sh: bench/$n.sh is not listed" >&2; bad=1; }
    "$here/$n.sh" --help >/dev/null || { echo "bench/run.sh: bench/$n.sh --help failed" >&2; bad=1; }
  done
  for e in "${benchmarks[@]}"; do
    [ -x "$here/${e%%|*}.sh" ] || { echo "bench/run.sh: bench/${e%%|*}.sh missing" >&2; bad=1; }
  done
  [ "$bad" = 0 ] && echo "bench/run.sh: $(scripts | wc -l) benchmarks, all listed, all answer --help"
  return "$bad"
}

case "${1:---list}" in
  --list|-l) list ;;
  --check) check ;;
  -h|--help) bench_usage; echo; list ;;
  -*) bench_bad_option "$1" ;;
  *)
    name=$1
    shift
    if [ ! -x "$here/$name.sh" ] || [ "$name" = run ] || [ "$name" = common ]; then
      echo "bench/run.sh: no benchmark '$name'; these are:" >&2
      list >&2
      exit 2
    fi
    exec "$here/$name.sh" "$@"
    ;;
esac
