# shellcheck shell=bash
# common.sh - sourced by every bench/*.sh, not run by itself: where the
# repository and the build tree are, and what the benchmarks share.
#
#   root   the repository
#   build  the build tree: $SPIRT_BUILD_DIR, default <repo>/build

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${SPIRT_BUILD_DIR:-$root/build}"
bench_name="bench/$(basename "$0")"

# bench_usage: prints the script's header comment (the lines after #! up to
# the first that is not a comment).
bench_usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }

# bench_bad_option OPTION: the error for an unknown option; exits 2.
bench_bad_option() {
  echo "$bench_name: unknown option '$1' (--help lists them)" >&2
  exit 2
}

# bench_options --NAME=VAR... -- "$@": the option loop of a benchmark. Each
# --NAME VALUE sets the variable VAR; -h/--help runs $bench_help (default
# bench_usage) and exits 0; anything else is an unknown option (exit 2).
bench_options() {
  local -A var=()
  while [ "$1" != -- ]; do var[${1%%=*}]=${1#*=}; shift; done
  shift
  while [ $# -gt 0 ]; do
    case "$1" in -h|--help) "${bench_help:-bench_usage}"; exit 0 ;; esac
    [ -n "${var[$1]:-}" ] || bench_bad_option "$1"
    [ $# -ge 2 ] || { echo "$bench_name: $1 needs a value" >&2; exit 2; }
    printf -v "${var[$1]}" '%s' "$2"
    shift 2
  done
}

# bench_build FILE...: makes sure these files of the build tree exist (e.g.
# bin/spirt), building spirt with scripts/setup.sh (packages + build) when
# one is missing; then makes $build absolute.
bench_build() {
  local f
  for f; do
    [ -e "$build/$f" ] && continue
    "$root/scripts/setup.sh" --build-dir "$build" >&2
    break
  done
  for f; do
    [ -e "$build/$f" ] ||
      { echo "$bench_name: $build/$f missing after the build" >&2; exit 1; }
  done
  build=$(cd "$build" && pwd)
}

# bench_free_port: a TCP port nothing listens on at 127.0.0.1 (for a server
# started right after), from 20000 up to the kernel's ephemeral range: the
# ports there are taken by outgoing connections and by the port-0 binds of
# spirt's runner and tests, so a port that looks free now may not be later.
bench_free_port() {
  local p lo=32768 span
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  span=$((lo - 20000))
  [ "$span" -ge 1000 ] || span=40000
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % span))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "$bench_name: no free port" >&2
  return 1
}

# Servers a benchmark starts: bench_redis NAME VAR [LINE...] writes
# $bench_work/NAME.conf (mode 0600: it may hold a password, which then never
# is on a command line) with a throw-away redis-server's settings - a free
# loopback port, no persistence, dir $bench_work/NAME - plus the given lines
# (e.g. "loadmodule ..."), starts the server (log NAME.log), waits until it
# accepts connections (modules loaded) and sets VAR to its port. Call
# bench_workdir first; its EXIT trap stops every server and removes the dir.
bench_pids=()
bench_work=""

bench_workdir() {
  bench_work=$(mktemp -d "/tmp/spirt-bench-XXXXXX")
  trap bench_stop_all EXIT INT TERM
}

bench_stop_all() {
  local pid
  for pid in "${bench_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [ -z "$bench_work" ] || rm -rf "$bench_work"
}

bench_redis() {
  local name=$1 var=$2 p dir=$bench_work/$1 line
  shift 2
  p=$(bench_free_port)
  mkdir -p "$dir"
  (
    umask 077 # the file is created 0600, before anything is written to it
    {
      printf 'port %s\nbind 127.0.0.1\nsave ""\nappendonly no\ndir "%s"\n' "$p" "$dir"
      for line; do printf '%s\n' "$line"; done
    } >"$dir.conf"
  )
  redis-server "$dir.conf" >"$dir.log" 2>&1 &
  bench_pids+=("$!")
  for _ in $(seq 150); do
    if grep -q "Ready to accept connections" "$dir.log"; then
      printf -v "$var" '%s' "$p"
      return 0
    fi
    kill -0 "${bench_pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "$bench_name: redis-server $name did not start:" >&2
  cat "$dir.log" >&2
  exit 1
}
