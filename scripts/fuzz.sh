#!/usr/bin/env bash
# Builds spirt's libFuzzer harnesses (fuzz/) with clang + ASan + UBSan and
# runs each for a bounded time, printing how many inputs each executed.
# Fails if any harness finds a crash, leak, hang or broken property.
#   scripts/fuzz.sh [--seconds N] [--only NAME[,NAME...]] [--build-dir DIR]
#   scripts/fuzz.sh --keep-going go on after a finding (fork mode), count them
#   scripts/fuzz.sh --replay     re-run the saved findings in fuzz/crashes/
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/fuzz.sh [--seconds N] [--only NAME[,NAME...]] [--build-dir DIR]
                       [--keep-going] [--replay]

Builds the harnesses in fuzz/ (clang, libFuzzer, ASan, UBSan) into
build-fuzz/ and runs each one for N seconds (default 60) from its seed
corpus fuzz/corpus/<harness>/. New corpus units go to <build>/fuzz-corpus/,
findings to <build>/fuzz-artifacts/<harness>/.
  --seconds N    time budget per harness (libFuzzer -max_total_time)
  --only LIST    comma-separated harness names (fuzz_wire or just wire)
  --build-dir D  build directory (default: build-fuzz, or $SPIRT_FUZZ_BUILD_DIR)
  --keep-going   do not stop at the first finding: libFuzzer's fork mode
                 restarts after each crash/OOM/timeout and counts them (all
                 are saved); still exits 1 if there was any
  --replay       run every saved input under fuzz/crashes/<harness>/ once and
                 report which still fail (exit 1 if any does)
USAGE
}

root=$(cd "$(dirname "$0")/.." && pwd)
build="${SPIRT_FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds=60
only=""
replay=0
keep_going=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a value}"; shift ;;
    --only) only="${2:?--only needs a value}"; shift ;;
    --build-dir) build="${2:?--build-dir needs a value}"; shift ;;
    --replay) replay=1 ;;
    --keep-going) keep_going=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fuzz.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
case "$seconds" in
  ''|*[!0-9]*) echo "fuzz.sh: --seconds wants a whole number, got '$seconds'" >&2; exit 2 ;;
esac

# clang and the compiler-rt runtimes (libFuzzer, ASan) come from Debian.
packages=(clang libclang-rt-14-dev cmake pkg-config libmicrohttpd-dev libhiredis-dev
  libcjson-dev libopenblas-dev libnats-dev zlib1g-dev libcurl4-openssl-dev libssl-dev
  libcmocka-dev gzip)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

echo "fuzz: building harnesses in $build"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release \
  -DSPIRT_FUZZ=ON -DSPIRT_SANITIZE=ON >/dev/null
if ! cmake --build "$build" --target fuzzers -j"$(nproc)" -- --no-print-directory \
     >"$build/fuzz-build.log" 2>&1; then
  tail -40 "$build/fuzz-build.log" >&2
  echo "fuzz: build failed (full log: $build/fuzz-build.log)" >&2
  exit 1
fi

harnesses=()
for src in "$root"/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  if [ -n "$only" ]; then
    case ",$only," in
      *",$name,"*|*",${name#fuzz_},"*) ;;
      *) continue ;;
    esac
  fi
  harnesses+=("$name")
done
if [ ${#harnesses[@]} -eq 0 ]; then
  echo "fuzz.sh: no harness matches '$only'" >&2
  exit 2
fi

# Leaks count as findings; allocations nothing could satisfy return NULL
# like glibc's malloc does (the code under test must handle that), while
# libFuzzer's -malloc_limit_mb still reports any single request over the
# RSS limit, i.e. an input that makes the parser ask for gigabytes.
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

if [ "$replay" -eq 1 ]; then
  status=0
  for h in "${harnesses[@]}"; do
    dir="$root/fuzz/crashes/$h"
    [ -d "$dir" ] || continue
    for f in "$dir"/*; do
      [ -f "$f" ] || continue
      case "$f" in *.md|*.txt) continue ;; esac
      if "$build/bin/fuzz/$h" -rss_limit_mb=2048 -timeout=30 "$f" >"$build/replay.log" 2>&1; then
        printf '%-20s %-50s fixed\n' "$h" "$(basename "$f")"
      else
        printf '%-20s %-50s STILL FAILS: %s\n' "$h" "$(basename "$f")" \
          "$(grep -m1 -E 'ERROR|property failed|SUMMARY' "$build/replay.log" || echo '?')"
        status=1
      fi
    done
  done
  exit "$status"
fi

seeds_missing=0
for h in "${harnesses[@]}"; do
  [ -d "$root/fuzz/corpus/$h" ] || seeds_missing=1
done
[ "$seeds_missing" -eq 0 ] || "$root/fuzz/make-seeds.sh" >/dev/null

printf '\n%-20s %12s %10s %8s  %s\n' harness executions "exec/s" corpus result
failed=()
for h in "${harnesses[@]}"; do
  work="$build/fuzz-corpus/$h"
  artifacts="$build/fuzz-artifacts/$h"
  log="$build/fuzz-logs/$h.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=20 -rss_limit_mb=2048
        -artifact_prefix="$artifacts/")
  [ -f "$root/fuzz/dict/$h.dict" ] && args+=(-dict="$root/fuzz/dict/$h.dict")
  [ "$keep_going" -eq 1 ] && args+=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  # New units go to the first directory; the seeds in the tree stay as they are.
  rc=0
  "$build/bin/fuzz/$h" "${args[@]}" "$work" "$root/fuzz/corpus/$h" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  findings=""
  if [ "$keep_going" -eq 1 ]; then
    # Fork mode prints "#<runs>: cov: ... oom/timeout/crash: a/b/c time: ..."
    # instead of final stats.
    last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1 || true)
    execs=$(printf '%s' "$last" | sed -n 's/^#\([0-9]*\):.*/\1/p')
    [ -n "$execs" ] && rate=$((execs / (seconds > 0 ? seconds : 1)))
    findings=$(printf '%s' "$last" | sed -n 's/.*oom\/timeout\/crash: \([0-9/]*\).*/\1/p')
  fi
  units=$(find "$work" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    failed+=("$h")
    result="FAILED (rc $rc): $(grep -m1 -E 'runtime error|ERROR: |property failed|SUMMARY: ' "$log" || echo 'see log')"
    [ -n "$findings" ] && result="$result [oom/timeout/crash $findings]"
  fi
  printf '%-20s %12s %10s %8s  %s\n' "$h" "${execs:-?}" "${rate:-?}" "$units" "$result"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo
  for h in "${failed[@]}"; do
    echo "fuzz: $h failed; log: $build/fuzz-logs/$h.log; input saved in $build/fuzz-artifacts/$h/"
    echo "      reproduce: $build/bin/fuzz/$h <that file>"
  done
  exit 1
fi
echo "fuzz: all ${#harnesses[@]} harnesses ran ${seconds}s each without findings"
