#!/bin/sh
# spirt-job: what a training Job's driver container runs (driver image,
# /usr/local/bin/spirt-job). Kubernetes shows its output with `kubectl logs -f`.
#
#   spirt-job [spirt train options...]
#
#   1. credentials: SPIRT_TOKEN, SPIRT_REDIS_PASSWORD, SPIRT_NATS_PASSWORD
#      and SPIRT_AUTH_KEY come as SPIRT_<NAME>_FILE (a mounted Secret);
#      `spirt train` reads those files itself, so the values never enter an
#      environment;
#   2. runs `spirt train --report $SPIRT_REPORT_DIR/report.json "$@"` (the
#      job's settings come as SPIRT_* variables);
#   3. SPIRT_PRINT_REPORT=1: prints the JSON report after the summary;
#   4. SPIRT_REPORT_CONFIGMAP=NAME: stores the report in ConfigMap NAME of the
#      pod's namespace through the Kubernetes API (needs only `create` on
#      configmaps), so it outlives the pod and the Job: binaryData
#      report.json (report.json.gz when large), labels
#      app.kubernetes.io/component=report, spirt.dev/job=$SPIRT_JOB and
#      app.kubernetes.io/instance=$SPIRT_INSTANCE. If NAME exists already
#      (a Job run twice under one name) NAME-<pod> is used. Fetch it with
#      scripts/fetch-report.sh.
# Exits with spirt's status; a report that could not be stored is a warning
# (the training succeeded and the report is in the log).
#
# Environment for step 4: SPIRT_KUBE_DIR (default
# /var/run/secrets/kubernetes.io/serviceaccount: token, ca.crt, namespace),
# SPIRT_KUBE_API (default https://kubernetes.default.svc), POD_NAME.
set -eu

REPORT_DIR=${SPIRT_REPORT_DIR:-/var/lib/spirt}
REPORT=$REPORT_DIR/report.json

case ${1:-} in
  -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac

log() { printf 'spirt-job: %s\n' "$*" >&2; }

# 2. Train.
status=0
spirt train --report "$REPORT" "$@" || status=$?
if [ "$status" -ne 0 ]; then
  log "spirt train exited with status $status"
  exit "$status"
fi

# 3. The report in the log.
if [ "${SPIRT_PRINT_REPORT:-0}" = 1 ] && [ -r "$REPORT" ]; then
  cat "$REPORT"
  printf '\n'
fi

# 4. The report in a ConfigMap.
store_report() {
  name=$1
  kube=${SPIRT_KUBE_DIR:-/var/run/secrets/kubernetes.io/serviceaccount}
  api=${SPIRT_KUBE_API:-https://kubernetes.default.svc}
  ns=$(cat "$kube/namespace")
  key=report.json
  data=$REPORT
  # A ConfigMap holds at most 1 MiB; base64 adds a third.
  if [ "$(wc -c <"$REPORT")" -gt 700000 ]; then
    gzip -9 -c "$REPORT" >"$REPORT_DIR/report.json.gz"
    key=report.json.gz
    data=$REPORT_DIR/report.json.gz
  fi
  body=$REPORT_DIR/configmap.json
  for attempt in 1 2; do
    {
      printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s","labels":{' "$name"
      printf '"app.kubernetes.io/name":"spirt","app.kubernetes.io/component":"report"'
      printf ',"app.kubernetes.io/instance":"%s","spirt.dev/job":"%s"}},' "${SPIRT_INSTANCE:-spirt}" "${SPIRT_JOB:-}"
      printf '"data":{"job":"%s","pod":"%s"},' "${SPIRT_JOB:-}" "${POD_NAME:-}"
      printf '"binaryData":{"%s":"%s"}}' "$key" "$(base64 -w 0 <"$data")"
    } >"$body"
    rm -f "$REPORT_DIR/api-reply.json"
    code=$(curl -sS -o "$REPORT_DIR/api-reply.json" -w '%{http_code}' --max-time 30 \
      --retry 3 --retry-connrefused --cacert "$kube/ca.crt" \
      -H "Authorization: Bearer $(cat "$kube/token")" -H 'Content-Type: application/json' \
      -X POST --data-binary "@$body" "$api/api/v1/namespaces/$ns/configmaps") || code=000
    case $code in
      201) log "report stored in ConfigMap $ns/$name (scripts/fetch-report.sh ${SPIRT_JOB:-JOB})"; return 0 ;;
      409) if [ "$attempt" = 1 ] && [ -n "${POD_NAME:-}" ]; then name=$1-${POD_NAME##*-}; continue; fi ;;
    esac
    log "WARNING: the report could not be stored in ConfigMap $ns/$name (HTTP $code): $(head -c 300 "$REPORT_DIR/api-reply.json" 2>/dev/null || true)"
    return 1
  done
  return 1
}

if [ -n "${SPIRT_REPORT_CONFIGMAP:-}" ]; then
  if [ -r "$REPORT" ]; then
    store_report "$SPIRT_REPORT_CONFIGMAP" || true
  else
    log "WARNING: no report at $REPORT to store"
  fi
fi
exit 0
