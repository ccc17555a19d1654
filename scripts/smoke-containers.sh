#!/usr/bin/env bash
# smoke-containers.sh - run a short SPIRT training job entirely in containers.
#
# On a user-defined Docker network: one Redis per peer, the shared Redis, NATS
# with JetStream, every step function image, then the driver container running
# `spirt train --arch spirt` against them (through spirt-job, as the chart's
# Job). Redis runs as on Kubernetes: an ACL user (default user off), peers
# with appendfsync always; credentials are read-only files, as the chart
# mounts them (SPIRT_<NAME>_FILE). The driver is
# SIGKILLed part-way, peer 1 loses its model, and a second driver container
# resumes the job (SPIRT_RESUME=1, as the chart's Job): peer 1 re-authenticates
# through the join function and is brought level by rejoin. Checks the driver's
# exit code and the test accuracy in its report, that every container stops
# cleanly (exit 0 on SIGTERM/SIGINT), and removes everything it created, also
# on failure or Ctrl-C.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/../deploy/common.sh
. "$ROOT/deploy/common.sh"
REGISTRY=${SPIRT_IMAGE_REGISTRY:-dev.local}
WORKERS=${SMOKE_WORKERS:-2}
EPOCHS=${SMOKE_EPOCHS:-1}
MODEL=${SMOKE_MODEL:-mlp}
TRAIN_SAMPLES=${SMOKE_TRAIN_SAMPLES:-4096}
# Small batches: enough iterations (128) for the resume test to stop the
# first driver part-way.
BATCH=${SMOKE_BATCH:-16}
TEST_SAMPLES=${SMOKE_TEST_SAMPLES:-1000}
MIN_ACCURACY=${SMOKE_MIN_ACCURACY:-0.5}
TIMEOUT=${SMOKE_TIMEOUT:-900}
READY_TIMEOUT=${SMOKE_READY_TIMEOUT:-90}
# Kill the first driver once peer 0 applied this iteration (0 = no resume test).
KILL_AT=${SMOKE_KILL_AT:-3}
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
  --no-build     use the images as they are (default: deploy/images.sh first;
                 cached layers make that quick)
  --keep         leave containers and network running for debugging
  --workers N    peers (default $WORKERS)     --epochs N  epochs (default $EPOCHS)

Environment: SMOKE_MODEL ($MODEL), SMOKE_TRAIN_SAMPLES ($TRAIN_SAMPLES), SMOKE_BATCH ($BATCH),
SMOKE_TEST_SAMPLES ($TEST_SAMPLES), SMOKE_MIN_ACCURACY ($MIN_ACCURACY),
SMOKE_REDIS_USER (Redis ACL user, default "spirt"; "default" = requirepass),
SMOKE_KILL_AT (kill the driver once peer 0 applied this iteration, then
resume with a second one; 0 = one uninterrupted run; default $KILL_AT),
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

# redis-cli inside a Redis container, logged in as its ACL user.
rcli() { # container args...
  local c=$1
  shift
  docker exec "$c" sh -c 'REDISCLI_AUTH=$(cat "$SPIRT_REDIS_PASSWORD_FILE") exec redis-cli --no-auth-warning --user "$SPIRT_REDIS_USER" "$@"' rcli "$@"
}

# Starts a driver container (NAME-SUFFIX) with the job's environment.
driver_run() { # suffix
  containers+=("$NAME-$1")
  # Its root stays writable so the report can be copied out after it exits.
  docker run -d --name "$NAME-$1" --network "$NAME" --label spirt.smoke="$NAME" \
    --cap-drop ALL --security-opt no-new-privileges "${key_auth_env[@]}" "${job_env[@]}" \
    --entrypoint /usr/local/bin/spirt-job "$(image driver)" "${args[@]}" >/dev/null
  docker logs -f "$NAME-$1" 2>&1 | sed "s/^/  $1| /" >&2 &
  logs_pid=$!
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
  [ ${#all_steps[@]} -gt 0 ] || abort "no steps in $ROOT/src/steps/steps.def"

  if [ $BUILD = 1 ]; then
    "$ROOT/deploy/images.sh" >&2 || abort "image build failed"
  else
    "$ROOT/deploy/docker-base.sh" engine
  fi
  local img
  for img in driver redis nats "${all_steps[@]}"; do
    docker image inspect "$(image "$img")" >/dev/null 2>&1 || abort "image $(image "$img") missing (run deploy/images.sh)"
  done

  tmp=$(mktemp -d)
  # Fresh credentials for this run: written to files below, never on a
  # command line or in a container's environment.
  local SPIRT_TOKEN SPIRT_REDIS_PASSWORD SPIRT_NATS_PASSWORD SPIRT_AUTH_KEY
  SPIRT_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  SPIRT_REDIS_PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  SPIRT_NATS_PASSWORD=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  # The peer authentication master key: only the join function and the driver get it.
  SPIRT_AUTH_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  # User names are no secrets: passed by variable name (docker run -e NAME).
  export SPIRT_REDIS_USER=${SMOKE_REDIS_USER:-spirt} SPIRT_NATS_USER=spirt
  # Read-only roots as on Kubernetes; the databases write to a tmpfs /data.
  local data=(--read-only --tmpfs "/data:rw,uid=65532,gid=65532,mode=0750")
  # As the chart does: credentials are files (a mounted Secret, read-only,
  # only the keys a container reads), named by SPIRT_<NAME>_FILE; only the
  # user names are environment values. $tmp itself is 0700.
  local creds=$tmp/creds keyed=$tmp/creds-key d=/var/run/secrets/spirt
  mkdir -m 0755 "$creds" "$keyed"
  printf '%s\n' "$SPIRT_TOKEN" | tee "$creds/token" >"$keyed/token"
  printf '%s\n' "$SPIRT_REDIS_PASSWORD" | tee "$creds/redis-password" >"$keyed/redis-password"
  printf '%s\n' "$SPIRT_NATS_PASSWORD" | tee "$creds/nats-password" >"$keyed/nats-password"
  printf '%s\n' "$SPIRT_AUTH_KEY" >"$keyed/auth-key"
  chmod 0444 "$creds"/* "$keyed"/*
  local file_env=(-e SPIRT_TOKEN_FILE="$d/token" -e SPIRT_REDIS_USER -e SPIRT_REDIS_PASSWORD_FILE="$d/redis-password"
    -e SPIRT_NATS_USER -e SPIRT_NATS_PASSWORD_FILE="$d/nats-password")
  auth_env=(-v "$creds:$d:ro" "${file_env[@]}")
  # The join function and the driver also get the peer authentication key.
  key_auth_env=(-v "$keyed:$d:ro" "${file_env[@]}" -e SPIRT_AUTH_KEY_FILE="$d/auth-key")
  local redis_auth=(-v "$creds:$d:ro" -e SPIRT_REDIS_USER -e SPIRT_REDIS_PASSWORD_FILE="$d/redis-password")

  docker network create --label spirt.smoke="$NAME" "$NAME" >/dev/null
  network_created=1
  log "network $NAME; $WORKERS peers; functions: ${all_steps[*]}"

  local i peers=() redis=()
  for i in $(seq 0 $((WORKERS - 1))); do
    # As in the chart: every acknowledged write of a peer is on disk.
    run "redis-$i" "spirt-redis-$i" "$(image redis)" "${data[@]}" "${redis_auth[@]}" \
      -e SPIRT_REDIS_APPENDFSYNC=always
    peers+=("spirt-redis-$i:6379")
    redis+=("$NAME-redis-$i")
  done
  run redis-shared spirt-redis-shared "$(image redis)" "${data[@]}" "${redis_auth[@]}"
  redis+=("$NAME-redis-shared")
  run nats spirt-nats "$(image nats)" "${data[@]}" -v "$creds:$d:ro" -e SPIRT_NATS_USER \
    -e SPIRT_NATS_PASSWORD_FILE="$d/nats-password"

  local c
  for c in "${redis[@]}"; do
    if wait_redis "$c"; then pass "$c answers PING"; else dump_logs "$c"; abort "$c not ready"; fi
  done
  if wait_urls http://spirt-nats:8222/healthz >/dev/null; then pass "nats healthz"; else dump_logs "$NAME-nats"; abort "nats not healthy"; fi
  # The default user is off (ACL user) or needs the password (requirepass).
  local out
  out=$(docker exec "$NAME-redis-0" redis-cli ping 2>&1 || true)
  case $out in
    *NOAUTH*) pass "redis refuses unauthenticated clients" ;;
    *) fail "unauthenticated redis-cli ping got: $out" ;;
  esac
  out=$(rcli "$NAME-redis-0" config get appendfsync 2>&1 | tail -n 1)
  if [ "$out" = always ]; then pass "peer redis appendfsync always"; else fail "peer redis appendfsync is '$out', want always"; fi

  # The functions' only addresses (requests name a peer by its index); the
  # driver gets the same below.
  local peer_list
  peer_list=$(IFS=,; echo "${peers[*]}")
  local s urls=() fns=()
  for s in "${all_steps[@]}"; do
    # Same hardening as on Kubernetes: read-only root, no capabilities, non-root.
    local fn_auth=("${auth_env[@]}")
    # Only the join step verifies peers: only it holds the master key.
    if [ "$s" = join ]; then fn_auth=("${key_auth_env[@]}"); fi
    run "fn-${s//_/-}" "spirt-${s//_/-}" "$(image "$s")" --read-only "${fn_auth[@]}" \
      -e SPIRT_NATS_URL=nats://spirt-nats:4222 -e SPIRT_REDIS_SHARED=spirt-redis-shared:6379 \
      -e SPIRT_REDIS_PEERS="$peer_list"
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
  local help
  help=$(docker run --rm "$(image driver)" train --help 2>&1) || abort "spirt train --help failed: $help"
  # Configured through SPIRT_* variables, as the Kubernetes Job does.
  job_env=(-e SPIRT_ARCH=spirt -e SPIRT_WORKERS="$WORKERS" -e SPIRT_MODEL="$MODEL"
    -e SPIRT_EPOCHS="$EPOCHS" -e SPIRT_JOB=smoke -e 'SPIRT_FUNCTIONS=http://spirt-{step}:8080'
    -e SPIRT_PEERS="$peer_list" -e SPIRT_SHARED_REDIS=spirt-redis-shared:6379
    -e SPIRT_NATS=nats://spirt-nats:4222)
  # The same command as the chart's training Job: spirt-job (credentials
  # from the files, spirt train, the report printed; no ConfigMap here).
  job_env+=(-e SPIRT_PRINT_REPORT=1)
  args=()
  # Options this driver build does not know are left out.
  if grep -q -- '--train-samples' <<<"$help"; then args+=(--train-samples "$TRAIN_SAMPLES"); fi
  if grep -q -- '--test-samples' <<<"$help"; then args+=(--test-samples "$TEST_SAMPLES"); fi
  if grep -q -- '--batch' <<<"$help"; then args+=(--batch "$BATCH"); fi
  # As the chart's Job: a driver started again continues the job.
  local resume=0
  if grep -q -- '--resume' <<<"$help"; then resume=1; job_env+=(-e SPIRT_RESUME=1); fi
  log "driver: $(printf '%s ' "${job_env[@]}" | sed 's/-e //g')spirt-job ${args[*]}"
  local driver=driver
  driver_run "$driver"

  # A driver pod lost part-way: SIGKILL it once peer 0 applied KILL_AT,
  # wipe peer 1's model, and resume with a new driver container.
  if [ "$KILL_AT" -gt 0 ] && [ $resume = 1 ] && [ "$WORKERS" -ge 2 ]; then
    # Polled inside the Redis container: a docker exec per poll would be
    # too slow for iterations of a few milliseconds.
    local applied poll_pid
    docker exec "$NAME-redis-0" sh -c '
      deadline=$(( $(date +%s) + $2 ))
      while [ "$(date +%s)" -lt "$deadline" ]; do
        a=$(REDISCLI_AUTH=$(cat "$SPIRT_REDIS_PASSWORD_FILE") redis-cli --no-auth-warning --user "$SPIRT_REDIS_USER" get "{smoke}:applied:0")
        case $a in ""|*[!0-9]*) ;; *) [ "$a" -ge "$1" ] && { echo "$a"; exit 0; } ;; esac
        sleep 0.02
      done
      exit 1' poll "$KILL_AT" "$TIMEOUT" >"$tmp/applied" 2>/dev/null &
    poll_pid=$!
    # Stop polling if the driver ends on its own (e.g. fails early).
    while kill -0 "$poll_pid" 2>/dev/null; do
      if [ "$(docker inspect -f '{{.State.Running}}' "$NAME-driver")" != true ]; then
        kill "$poll_pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
    wait "$poll_pid" 2>/dev/null || true
    applied=$(cat "$tmp/applied")
    if [ "$(docker inspect -f '{{.State.Running}}' "$NAME-driver")" != true ]; then
      fail "driver finished before it could be stopped at iteration $KILL_AT (lower SMOKE_BATCH)"
    elif [ -z "$applied" ]; then
      fail "peer 0 did not apply iteration $KILL_AT within ${TIMEOUT}s"
    else
      docker kill "$NAME-driver" >/dev/null
      wait "$logs_pid" 2>/dev/null || true
      logs_pid=
      pass "first driver SIGKILLed after peer 0 applied iteration $applied"
      if [ "$(rcli "$NAME-redis-1" del '{smoke}:params:1')" = 1 ]; then pass "peer 1's model deleted"; else fail "peer 1 had no model to delete"; fi
      driver="driver-resumed"
      driver_run "$driver"
    fi
  fi

  local rc
  if ! rc=$(timeout "$TIMEOUT" docker wait "$NAME-$driver"); then
    abort "$driver did not finish within ${TIMEOUT}s"
  fi
  wait "$logs_pid" 2>/dev/null || true
  logs_pid=
  if [ "$rc" = 0 ]; then
    pass "$driver exited 0"
  else
    for c in "${fns[@]}"; do dump_logs "$c"; done
    abort "$driver exited $rc"
  fi

  local acc
  if docker cp "$NAME-$driver:/var/lib/spirt/report.json" "$tmp/report.json" 2>/dev/null; then
    acc=$(grep -o '"test_accuracy"[[:space:]]*:[[:space:]]*[0-9.eE+-]*' "$tmp/report.json" | head -n 1 | sed 's/.*:[[:space:]]*//')
    if [ -z "$acc" ]; then
      fail "report has no test_accuracy"
    elif awk -v a="$acc" -v m="$MIN_ACCURACY" 'BEGIN { exit !(a + 0 >= m + 0) }'; then
      pass "test accuracy $acc >= $MIN_ACCURACY"
    else
      fail "test accuracy $acc < $MIN_ACCURACY"
    fi
    if [ "$driver" = driver-resumed ]; then
      # The resumed run went on from where the peers were and brought
      # peer 1 level (join + rejoin) instead of starting over.
      local flat from caught
      flat=$(tr -d ' \t\n' <"$tmp/report.json")
      from=$(grep -o '"resumed_from":[0-9]*' <<<"$flat" | head -n 1 | cut -d: -f2)
      caught=$(grep -o '"caught_up":\[[0-9,]*\]' <<<"$flat" | head -n 1)
      if [ -n "$from" ] && [ "$from" -gt 0 ]; then pass "resumed from iteration $from"; else fail "report has no resumed_from > 0"; fi
      if [[ $caught =~ [^0-9]1[],] ]]; then pass "peer 1 re-authenticated and brought level ($caught)"; else fail "peer 1 not caught up: ${caught:-no caught_up}"; fi
    fi
  else
    fail "$driver wrote no report"
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
