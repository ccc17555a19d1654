#!/usr/bin/env bash
# SPIRT under injected faults: each fault and its outcome (test accuracy
# against the fault-free run, worker-iterations lost, training time), as a
# markdown table. 3 peers (2 for the runs against running services), MLP on
# the first 8000 Fashion-MNIST training samples, 1000 test samples, 2 epochs.
#   bench/faults.sh [--epochs E] [--at T] [--transport inproc|http]
# Faults: a peer's redis-server SIGKILLed at iteration T (with and without
# heartbeats; restarted after 1 s -> rejoin; after 0.3 s -> masked by
# retries), the driver SIGKILLed and resumed, nats-server killed and
# restarted, a peer's redis-server SIGKILLed and restarted from its AOF.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"
epochs=2 at=10 transport=inproc
bench_options --epochs=epochs --at=at --transport=transport -- "$@"
bench_build bin/spirt
spirt="$build/bin/spirt"
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

common=(--arch spirt --minibatches 2 --batch 32 --epochs "$epochs" --train-samples 8000
        --test-samples 1000 --lr 0.1 --quiet)
rows=()
ref=""

# row NAME REPORT [OUTCOME]: one table row from a report.
row() {
  local name="$1" report="$2" outcome="${3:-}"
  local acc lost secs failed rejoined
  acc=$(jq -r '.test_accuracy' "$report")
  lost=$(jq -r '.details.iterations_lost // 0' "$report")
  secs=$(jq -r '.train_seconds' "$report")
  if [ -z "$outcome" ]; then
    failed=$(jq -r '[.details.failed_peers[] | "peer \(.peer) failed at \(.iteration)"] | join(", ")' "$report")
    rejoined=$(jq -r '[.details.rejoins[] | "rejoined at \(.iteration) (AOF kept \(.restored_applied))"] | join(", ")' "$report")
    outcome="${failed:-no peer failed}${rejoined:+; $rejoined}; models agree: $(jq -r '.details.models_agree' "$report")"
  fi
  local diff
  diff=$(awk -v a="$acc" -v r="${ref:-$acc}" 'BEGIN { printf "%+.4f", a - r }')
  rows+=("| $name | $outcome | $(printf %.4f "$acc") ($diff) | $lost | $(printf %.1f "$secs") |")
}

local_run() {
  local name="$1"; shift
  "$spirt" train "${common[@]}" --workers 3 --transport "$transport" \
    --heartbeat-timeout 1000 --report "$dir/$name.json" "$@" > "$dir/$name.log" 2>&1 ||
    { echo "$bench_name: run '$name' failed:" >&2; cat "$dir/$name.log" >&2; exit 1; }
}

local_run ref
ref=$(jq -r '.test_accuracy' "$dir/ref.json")
row "none (3 peers)" "$dir/ref.json" "fault-free reference"
local_run kill --kill-peer 1 --at-iteration "$at"
row "peer 1's Redis SIGKILLed at $at" "$dir/kill.json"
local_run killnohb --kill-peer 1 --at-iteration "$at" --heartbeat-timeout 0 --sync-timeout 10000
row "... without heartbeats (10 s sync timeout)" "$dir/killnohb.json"
local_run rejoin --kill-peer 1 --at-iteration "$at" --restart-after 1
row "... restarted after 1 s (AOF)" "$dir/rejoin.json"
local_run masked --kill-peer 1 --at-iteration "$at" --restart-after 0.3
row "... restarted after 0.3 s (AOF)" "$dir/masked.json"

# Running services for the driver and NATS faults: 2 peers (peer 0 with AOF,
# fsync always), a shared Redis, NATS with JetStream, all on free ports.
module="$build/lib/spirt_redis.so"
pw=bench-faults-pw
declare -A srv_pid
start_redis() { # NAME PORT AOF
  mkdir -p "$dir/$1"
  redis-server --port "$2" --bind 127.0.0.1 --dir "$dir/$1" --save "" --appendonly "$3" \
    --appendfsync always --requirepass "$pw" --loadmodule "$module" > "$dir/$1.log" 2>&1 &
  pids+=($!)
  srv_pid[$1]=$!
}
start_nats() {
  nats-server -a 127.0.0.1 -p "$nport" -js -sd "$dir/js" --user spirt --pass "$pw" \
    >> "$dir/nats.log" 2>&1 &
  pids+=($!)
  nats_pid=$!
}
wait_port() { for _ in $(seq 1 500); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.02; done; return 1; }
p0=$(bench_free_port) p1=$(bench_free_port) sp=$(bench_free_port) nport=$(bench_free_port)
start_redis peer0 "$p0" yes; start_redis peer1 "$p1" no; start_redis shared "$sp" no; start_nats
for p in "$p0" "$p1" "$sp" "$nport"; do wait_port "$p"; done
export SPIRT_REDIS_PASSWORD="$pw" SPIRT_NATS_USER=spirt SPIRT_NATS_PASSWORD="$pw"
SPIRT_AUTH_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export SPIRT_AUTH_KEY
cluster=("${common[@]}" --workers 2 --transport inproc --heartbeat-timeout 1000
         --peers "127.0.0.1:$p0,127.0.0.1:$p1" --shared-redis "127.0.0.1:$sp"
         --nats "nats://127.0.0.1:$nport")
rcli() { redis-cli -p "$1" -a "$pw" --no-auth-warning "${@:2}"; }
applied() { rcli "$p0" get "{$1}:applied:0" 2>/dev/null || true; }
wait_applied() { # JOB N PID
  for _ in $(seq 1 6000); do
    local a; a=$(applied "$1")
    [ -n "$a" ] && [ "$a" -ge "$2" ] && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.01
  done
  return 1
}

"$spirt" train "${cluster[@]}" --job cref --report "$dir/cref.json" > "$dir/cref.log" 2>&1
ref=$(jq -r '.test_accuracy' "$dir/cref.json")
row "none (2 peers, running services)" "$dir/cref.json" "fault-free reference"

# The driver SIGKILLed once peer 0 applied iteration 30, then resumed; peer
# 0's redis-server is SIGKILLed and restarted from its AOF in between.
"$spirt" train "${cluster[@]}" --job rs --report "$dir/rs0.json" > "$dir/rs0.log" 2>&1 &
drv=$!
wait_applied rs 30 "$drv"
kill -9 "$drv"; wait "$drv" 2>/dev/null || true
before=$(rcli "$p0" --raw get "{rs}:params:0" | sha256sum | cut -c1-16)
kept=$(applied rs)
kill -9 "${srv_pid[peer0]}"; wait "${srv_pid[peer0]}" 2>/dev/null || true
start_redis peer0 "$p0" yes; wait_port "$p0"
for _ in $(seq 1 500); do rcli "$p0" ping 2>/dev/null | grep -q PONG && break; sleep 0.02; done
after=$(rcli "$p0" --raw get "{rs}:params:0" | sha256sum | cut -c1-16)
same=$([ "$before" = "$after" ] && [ "$(applied rs)" = "$kept" ] && echo "identical" || echo "DIFFERENT")
rows+=("| peer 0's Redis SIGKILLed, restarted from AOF (fsync always) | params:0 and applied:0 (= $kept) $same after restart | - | 0 | - |")
"$spirt" train "${cluster[@]}" --job rs --resume --report "$dir/rs.json" > "$dir/rs.log" 2>&1
row "driver SIGKILLed at iteration 30, --resume" "$dir/rs.json" \
  "resumed at $(jq -r '.details.resumed_from' "$dir/rs.json"), $(jq -r '.iterations' "$dir/rs.json") iterations in all; models agree: $(jq -r '.details.models_agree' "$dir/rs.json")"

# nats-server SIGKILLed at iteration 20 and restarted 1 s later, same port
# and JetStream store.
"$spirt" train "${cluster[@]}" --job nr --report "$dir/nr.json" > "$dir/nr.log" 2>&1 &
drv=$!
wait_applied nr 20 "$drv"
kill -9 "$nats_pid"; wait "$nats_pid" 2>/dev/null || true
sleep 1; start_nats; wait_port "$nport"
wait "$drv"
row "nats-server SIGKILLed at 20, restarted after 1 s" "$dir/nr.json"

echo "| fault | outcome | test accuracy (vs fault-free) | worker-iterations lost | train s |"
echo "| --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
