#!/usr/bin/env bash
# A bounded load test of one real step function: starts redis-server, loads
# a small slice of Fashion-MNIST through the real init and minibatch
# functions, then hammers spirt-fn-gradient from many concurrent keep-alive
# connections with valid gradient invocations, /readyz probes and invalid
# requests (bin/bench-load, bench/load.c), and prints requests, errors, p50/p99 latency,
# throughput and the function's RSS at start, middle and end. Loopback only.
# It prints numbers; it asserts nothing about speed. It exits non-zero if any
# request got a wrong answer or the function did not drain and exit cleanly.
#   bench/load.sh [--threads N] [--requests N] [--max-seconds S] [--build-dir DIR]
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
. "$(dirname "$0")/common.sh"

usage() {
  cat <<'USAGE'
usage: bench/load.sh [--threads N] [--requests N] [--max-seconds S]
                     [--function-threads N] [--build-dir DIR] [--mix SPEC]

  --threads N           concurrent client connections (default 64)
  --requests N          requests per connection (default 100)
  --max-seconds S       stop the load after S seconds (default 300)
  --function-threads N  the function's worker threads (SPIRT_THREADS; default: its own)
  --build-dir DIR       spirt build to test (default: build, or $SPIRT_BUILD_DIR);
                        built with scripts/setup.sh when it has no functions yet
  --mix SPEC            request mix, default
                        valid=60,readyz=20,bad-json=10,invalid=5,unauthorized=5
SPIRT_BENCH_KEEP=1 keeps the temp dir with the servers' logs.
USAGE
}

threads=64
requests=100
max_seconds=300
fn_threads=""
mix="valid=60,readyz=20,bad-json=10,invalid=5,unauthorized=5"
bench_help=usage
bench_options --threads=threads --requests=requests --max-seconds=max_seconds \
  --function-threads=fn_threads --build-dir=build --mix=mix -- "$@"

for tool in curl jq; do
  if ! command -v "$tool" >/dev/null; then
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq curl jq >/dev/null
    break
  fi
done
bench_build bin/spirt-fn-init bin/spirt-fn-minibatch bin/spirt-fn-gradient bin/bench-load

work=$(mktemp -d /tmp/spirt-bench-load-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${SPIRT_BENCH_KEEP:-}" ]; then
    echo "bench-load: logs kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

wait_http() { # wait_http PORT PATH: until it answers 200 (10 s)
  for _ in $(seq 1 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1$2" || true)" = 200 ] && return 0
    sleep 0.05
  done
  echo "bench-load: nothing answers on 127.0.0.1:$1$2" >&2
  return 1
}

password="bench-$RANDOM$RANDOM"
token="tok-$RANDOM$RANDOM"
redis_port=$(bench_free_port)
module=()
[ -f "$build/lib/spirt_redis.so" ] && module=(--loadmodule "$build/lib/spirt_redis.so")
redis-server --port "$redis_port" --bind 127.0.0.1 --requirepass "$password" --save "" \
  --appendonly no --dir "$work" "${module[@]}" >"$work/redis.log" 2>&1 &
pids+=($!)
redis_up=0
for _ in $(seq 1 100); do
  if redis-cli -p "$redis_port" -a "$password" --no-auth-warning ping 2>/dev/null | grep -q PONG; then
    redis_up=1
    break
  fi
  sleep 0.05
done
if [ "$redis_up" -ne 1 ]; then
  echo "bench-load: redis-server did not start:" >&2
  tail -5 "$work/redis.log" >&2
  exit 1
fi

# The functions' only addresses (requests name none): the one Redis is the
# peer's database and the shared one.
fn_env=(SPIRT_TOKEN="$token" SPIRT_REDIS_PASSWORD="$password" SPIRT_BIND=127.0.0.1
        SPIRT_REDIS_PEERS="127.0.0.1:$redis_port" SPIRT_REDIS_SHARED="127.0.0.1:$redis_port")
[ -n "$fn_threads" ] && fn_env+=(SPIRT_THREADS="$fn_threads")
start_fn() { # start_fn STEP PORT -> pid in $fn_pid
  env "${fn_env[@]}" "$build/bin/spirt-fn-$1" --port "$2" >"$work/fn-$1.log" 2>&1 &
  fn_pid=$!
  pids+=("$fn_pid")
  wait_http "$2" /healthz || { tail -5 "$work/fn-$1.log" >&2; return 1; }
}
invoke() { # invoke PORT BODY_FILE -> answer on stdout; fails on non-200
  local code
  code=$(curl -s -o "$work/answer.json" -w '%{http_code}' -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' --data-binary "@$2" "http://127.0.0.1:$1/")
  if [ "$code" != 200 ]; then
    echo "bench-load: setup call answered $code: $(cat "$work/answer.json")" >&2
    return 1
  fi
  cat "$work/answer.json"
}

# A small job: the gradient of one 32-sample minibatch of an MLP.
data_dir="${SPIRT_DATA_DIR:-/usr/share/datasets/fashion-mnist}"
jq -n --arg ds "$data_dir" '{
  job: {id: "bench-load", arch: "spirt", model: "mlp", hidden: [128], dataset: $ds,
        train_samples: 2048, test_samples: 256, workers: 1, minibatches: 4, batch: 32,
        epochs: 1, lr: 0.05, seed: "7"},
  iteration: 0, epoch: 1, peer: 0}' >"$work/base.json"

echo "bench-load: loading data through spirt-fn-init and spirt-fn-minibatch"
port=$(bench_free_port)
start_fn init "$port"
init_pid=$fn_pid
invoke "$port" "$work/base.json" >"$work/init.json"
kill -TERM "$init_pid"
jq -c --argjson shape "$(jq -c .shape "$work/init.json")" '. + {shape: $shape}' \
  "$work/base.json" >"$work/shaped.json"
port=$(bench_free_port)
start_fn minibatch "$port"
mb_pid=$fn_pid
for m in 0 1 2 3; do
  jq -c --argjson m "$m" '. + {m: $m}' "$work/shaped.json" >"$work/mb.json"
  invoke "$port" "$work/mb.json" >/dev/null
done
kill -TERM "$mb_pid"
jq -c '. + {m: 0}' "$work/shaped.json" >"$work/valid.json"

port=$(bench_free_port)
start_fn gradient "$port"
grad_pid=$fn_pid
wait_http "$port" /readyz
# One call first, so "start" RSS includes the model and connections a
# function has after its first request, not just after exec.
invoke "$port" "$work/valid.json" >/dev/null

echo "bench-load: spirt-fn-gradient pid $grad_pid on 127.0.0.1:$port," \
  "$threads connections x $requests requests"
status=0
"$build/bin/bench-load" --port "$port" --pid "$grad_pid" --token "$token" --valid "$work/valid.json" \
  --threads "$threads" --requests "$requests" --max-seconds "$max_seconds" --mix "$mix" || status=$?

# The function must still drain and exit 0 on SIGTERM after the load.
kill -TERM "$grad_pid"
fn_status=0
for _ in $(seq 1 300); do
  kill -0 "$grad_pid" 2>/dev/null || break
  sleep 0.05
done
wait "$grad_pid" || fn_status=$?
echo "bench-load: spirt-fn-gradient exited with status $fn_status after SIGTERM"
if [ "$fn_status" -ne 0 ] || [ "$status" -ne 0 ]; then
  echo "bench-load: FAILED; last lines of the function's log:"
  tail -30 "$work/fn-gradient.log"
  exit 1
fi
