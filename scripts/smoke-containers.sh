#!/usr/bin/env bash
# smoke-containers.sh - run a short SPIRT training job entirely in containers.
#
# On a user-defined Docker network: one Redis per peer, the shared Redis, NATS
# with JetStream, every step function image, then the driver container running
# `spirt train --arch spirt` against them. Checks the driver's exit code and the
# test accuracy in its report, that every container stops cleanly (exit 0 on
# SIGTERM/SIGINT), and removes everything it created, also on failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REGISTRY=${SPIRT_IMAGE_REGISTRY:-dev.local}
WORKERS=${SMOKE_WORKERS:-2}
EPOCHS=${SMOKE_EPOCHS:-1}
MODEL=${SMOKE_MODEL:-mlp}
TRAIN_SAMPLES=${SMOKE_TRAIN_SAMPLES:-4096}
TEST_SAMPLES=${SMOKE_TEST_SAMPLES:-1000}
MIN_ACCURACY=${SMOKE_MIN_ACCURACY:-0.5}
TIMEOUT=${SMOKE_TIMEOUT:-900}
READY_TIMEOUT=${SMOKE_READY_TIMEOUT:-90}
NAME=spirt-smoke-$$
BUILD=1
KEEP=0

usage() {
  cat <<USAGE
Usage: scripts/smoke-containers.sh [--no-build] [--keep] [--workers N] [--epochs N]

Starts $WORKERS per-peer Redis containers, a shared Redis, NATS and every
spirt function container on a private Docker network, runs a short
\`spirt train --arch spirt\` in the driver container and checks its exit code
and test accuracy (>= $MIN_ACCURACY), then stops everything (each container must
exit 0) and removes it all. Prints "smoke: N passed, M failed"; exits non-zero
on any failure.

Options:
  --no-build     use the images as they are (default: scripts/images.sh first;
                 cached layers make that quick)
  --keep         leave containers and network running for debugging
  --workers N    peers (default $WORKERS)     --epochs N  epochs (default $EPOCHS)

Environment: SMOKE_MODEL ($MODEL), SMOKE_TRAIN_SAMPLES ($TRAIN_SAMPLES),
SMOKE_TEST_SAMPLES ($TEST_SAMPLES), SMOKE_MIN_ACCURACY ($MIN_ACCURACY),
SMOKE_REDIS_USER (Redis ACL user, default "default"),
SMOKE_TIMEOUT (driver, seconds: $TIMEOUT), SMOKE_READY_TIMEOUT ($READY_TIMEOUT),
SPIRT_IMAGE_REGISTRY ($REGISTRY).
USAGE
}

log() { printf 'smoke: %s\n' "$*" >&2; }

passed=0
failed=0
pass() { passed=$((passed + 1)); log "ok: $*"; }
fail() { failed=$((failed + 1)); log "FAIL: $*"; }
summary() { printf 'smoke: %d passed, %d failed\n' "$passed" "$failed"; }
abort() {
  fail "$*"
  summary
  exit 1
}

containers=()
network_created=0
logs_pid=
tmp=

cleanup() {
  local rc=$?
  if [ -n "$logs_pid" ]; then kill "$logs_pid" 2>/dev/null || true; fi
  if [ $KEEP = 1 ]; then
    log "--keep: leaving network $NAME and ${#containers[@]} containers"
  else
    if [ ${#containers[@]} -gt 0 ]; then
      docker rm -f -v "${containers[@]}" >/dev/null 2>&1 || true
    fi
    if [ $network_created = 1 ]; then docker network rm "$NAME" >/dev/null 2>&1 || true; fi
  fi
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

project_version() {
  sed -n 's/^project(spirt VERSION \([0-9][0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt" | head -n 1
}

steps() {
  local m s
  for m in "$ROOT"/functions/*/main.c; do
    [ -e "$m" ] || continue
    s=${m%/main.c}
    printf '%s\n' "${s##*/}"
  done
}

image() { printf '%s/spirt-%s:%s' "$REGISTRY" "${1//_/-}" "$TAG"; }

# run NAME ALIAS IMAGE [docker run args...] [-- container args...]
run() {
  local cname=$NAME-$1 alias=$2 img=$3
  shift 3
  local opts=() args=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  if [ $# -gt 0 ]; then shift; args=("$@"); fi
  containers+=("$cname")
  docker run -d --name "$cname" --network "$NAME" --network-alias "$alias" \
    --label spirt.smoke="$NAME" --cap-drop ALL --security-opt no-new-privileges \
    "${opts[@]}" "$img" "${args[@]}" >/dev/null
}

# A throwaway curl on the network (the driver image has it).
net_curl() {
  docker run --rm --network "$NAME" --entrypoint curl "$(image driver)" "$@"
}

wait_redis() { # container
  local i
  for i in $(seq 1 "$READY_TIMEOUT"); do
    if docker exec "$1" spirt-redis ping >/dev/null 2>&1; then return 0; fi
    [ "$(docker inspect -f '{{.State.Running}}' "$1")" = true ] || return 1
    sleep 1
  done
  return 1
}

# Polls every URL from one container until all answer 2xx or time runs out;
# prints the ones still failing.
wait_urls() {
  docker run --rm --network "$NAME" --entrypoint sh "$(image driver)" -c '
    deadline=$(( $(date +%s) + $1 )); shift
    pending="$*"
    while [ -n "$pending" ]; do
      left=
      for u in $pending; do
        curl -fsS --max-time 3 -o /dev/null "$u" 2>/dev/null || left="$left $u"
      done
      pending=$left
      [ -z "$pending" ] && exit 0
      [ "$(date +%s)" -ge "$deadline" ] && { echo "$pending"; exit 1; }
      sleep 1
    done' sh "$READY_TIMEOUT" "$@"
}

dump_logs() { # container
  log "--- last lines of $1 ---"
  docker logs --tail 30 "$1" 2>&1 | sed 's/^/    /' >&2 || true
}

main() {
  while [ $# -gt 0 ]; do
    case $1 in
      -h|--help) usage; exit 0 ;;
      --no-build) BUILD=0 ;;
      --keep) KEEP=1 ;;
      --workers) WORKERS=${2:?}; shift ;;
      --epochs) EPOCHS=${2:?}; shift ;;
      *) usage >&2; exit 2 ;;
    esac
    shift
  done
  TAG=$(project_version)
  local all_steps
  mapfile -t all_steps < <(steps)
  [ ${#all_steps[@]} -gt 0 ] || abort "no functions/<step>/main.c in $ROOT"

  if [ $BUILD = 1 ]; then
    "$ROOT/scripts/images.sh" >&2 || abort "image build failed"
  else
    "$ROOT/scripts/docker-base.sh" engine
  fi
  local img
  for img in driver redis nats "${all_steps[@]}"; do
    docker image inspect "$(image "$img")" >/dev/null 2>&1 || abort "image $(image "$img") missing (run scripts/images.sh)"
  done

  tmp=$(mktemp -d)
  # Fresh credentials for this run, passed to containers by variable name
  # (docker run -e NAME) so they never appear on a command line.
  SPIRT_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  SPIRT_REDIS_PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  SPIRT_NATS_PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  export SPIRT_TOKEN SPIRT_REDIS_PASSWORD SPIRT_NATS_PASSWORD
  export SPIRT_REDIS_USER=${SMOKE_REDIS_USER:-default} SPIRT_NATS_USER=spirt
  # Read-only roots as on Kubernetes; the databases write to a tmpfs /data.
  local data=(--read-only --tmpfs "/data:rw,uid=65532,gid=65532,mode=0750")
  local auth_env=(-e SPIRT_TOKEN -e SPIRT_REDIS_USER -e SPIRT_REDIS_PASSWORD -e SPIRT_NATS_USER -e SPIRT_NATS_PASSWORD)

  docker network create --label spirt.smoke="$NAME" "$NAME" >/dev/null
  network_created=1
  log "network $NAME; $WORKERS peers; functions: ${all_steps[*]}"

  local i peers=() redis=()
  for i in $(seq 0 $((WORKERS - 1))); do
    run "redis-$i" "spirt-redis-$i" "$(image redis)" "${data[@]}" -e SPIRT_REDIS_USER -e SPIRT_REDIS_PASSWORD
    peers+=("spirt-redis-$i:6379")
    redis+=("$NAME-redis-$i")
  done
  run redis-shared spirt-redis-shared "$(image redis)" "${data[@]}" -e SPIRT_REDIS_USER -e SPIRT_REDIS_PASSWORD
  redis+=("$NAME-redis-shared")
  run nats spirt-nats "$(image nats)" "${data[@]}" -e SPIRT_NATS_USER -e SPIRT_NATS_PASSWORD

  local c
  for c in "${redis[@]}"; do
    if wait_redis "$c"; then pass "$c answers PING"; else dump_logs "$c"; abort "$c not ready"; fi
  done
  if wait_urls http://spirt-nats:8222/healthz >/dev/null; then pass "nats healthz"; else dump_logs "$NAME-nats"; abort "nats not healthy"; fi

  local s urls=() fns=()
  for s in "${all_steps[@]}"; do
    # Same hardening as on Kubernetes: read-only root, no capabilities, non-root.
    run "fn-${s//_/-}" "spirt-${s//_/-}" "$(image "$s")" --read-only "${auth_env[@]}" \
      -e SPIRT_NATS_URL=nats://spirt-nats:4222 -e SPIRT_READY_REDIS=spirt-redis-shared:6379
    fns+=("$NAME-fn-${s//_/-}")
    urls+=("http://spirt-${s//_/-}:8080/readyz")
  done
  local pending
  if pending=$(wait_urls "${urls[@]}"); then
    pass "${#urls[@]} functions answer /readyz"
  else
    for c in "${fns[@]}"; do
      case $pending in *"//spirt-${c#"$NAME"-fn-}:"*) dump_logs "$c" ;; esac
    done
    abort "functions not ready:$pending"
  fi
  # Auth is on as deployed: a call without the bearer token is refused.
  local code
  code=$(net_curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{}' "http://spirt-${all_steps[0]//_/-}:8080/" || true)
  if [ "$code" = 401 ]; then pass "unauthenticated call refused (401)"; else fail "unauthenticated call got HTTP $code, want 401"; fi

  # The driver: flags it does not know (older builds) are left out. Its root
  # stays writable so the report can be copied out after it exits.
  local help args
  help=$(docker run --rm "$(image driver)" train --help 2>&1) || abort "spirt train --help failed: $help"
  # Configured through SPIRT_* variables, as the Kubernetes Job does.
  local peer_list
  peer_list=$(IFS=,; echo "${peers[*]}")
  local job_env=(-e SPIRT_ARCH=spirt -e SPIRT_WORKERS="$WORKERS" -e SPIRT_MODEL="$MODEL"
    -e SPIRT_EPOCHS="$EPOCHS" -e SPIRT_JOB=smoke -e 'SPIRT_FUNCTIONS=http://spirt-{step}:8080'
    -e SPIRT_PEERS="$peer_list" -e SPIRT_SHARED_REDIS=spirt-redis-shared:6379
    -e SPIRT_NATS=nats://spirt-nats:4222)
  # The same command as the chart's training Job: train, then print the report.
  args=(-c 'spirt train --report /var/lib/spirt/report.json "$@" && cat /var/lib/spirt/report.json' spirt-train)
  # Options this driver build does not know are left out.
  if grep -q -- '--train-samples' <<<"$help"; then args+=(--train-samples "$TRAIN_SAMPLES"); fi
  if grep -q -- '--test-samples' <<<"$help"; then args+=(--test-samples "$TEST_SAMPLES"); fi
  log "driver: $(printf '%s ' "${job_env[@]}" | sed 's/-e //g')spirt train ${args[*]:3}"
  containers+=("$NAME-driver")
  # Its root stays writable so the report can be copied out after it exits.
  docker run -d --name "$NAME-driver" --network "$NAME" --label spirt.smoke="$NAME" \
    --cap-drop ALL --security-opt no-new-privileges "${auth_env[@]}" "${job_env[@]}" \
    --entrypoint /bin/sh "$(image driver)" "${args[@]}" >/dev/null
  docker logs -f "$NAME-driver" 2>&1 | sed 's/^/  driver| /' >&2 &
  logs_pid=$!

  local rc
  if ! rc=$(timeout "$TIMEOUT" docker wait "$NAME-driver"); then
    abort "driver did not finish within ${TIMEOUT}s"
  fi
  wait "$logs_pid" 2>/dev/null || true
  logs_pid=
  if [ "$rc" = 0 ]; then
    pass "driver exited 0"
  else
    for c in "${fns[@]}"; do dump_logs "$c"; done
    abort "driver exited $rc"
  fi

  local acc
  if docker cp "$NAME-driver:/var/lib/spirt/report.json" "$tmp/report.json" 2>/dev/null; then
    acc=$(grep -o '"test_accuracy"[[:space:]]*:[[:space:]]*[0-9.eE+-]*' "$tmp/report.json" | head -n 1 | sed 's/.*:[[:space:]]*//')
    if [ -z "$acc" ]; then
      fail "report has no test_accuracy"
    elif awk -v a="$acc" -v m="$MIN_ACCURACY" 'BEGIN { exit !(a + 0 >= m + 0) }'; then
      pass "test accuracy $acc >= $MIN_ACCURACY"
    else
      fail "test accuracy $acc < $MIN_ACCURACY"
    fi
  else
    fail "driver wrote no report"
  fi

  # Clean stop: functions first (they drain), then NATS and the databases.
  for c in "${fns[@]}" "$NAME-nats" "${redis[@]}"; do
    docker stop -t 30 "$c" >/dev/null
    code=$(docker inspect -f '{{.State.ExitCode}}' "$c")
    if [ "$code" = 0 ]; then pass "$c stopped cleanly"; else dump_logs "$c"; fail "$c exited $code on stop"; fi
  done

  summary
  [ "$failed" = 0 ]
}

main "$@"
