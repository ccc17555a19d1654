#!/usr/bin/env bash
# fetch-report.sh - the JSON report of a training Job run on Kubernetes.
#
# Every run stores its report in a ConfigMap <job>-report (labels
# app.kubernetes.io/component=report, spirt.dev/job=<job>; written by
# spirt-job in the driver image), which outlives the pod, the Job and the
# Helm release. This prints it, or lists the stored reports.
set -euo pipefail

usage() {
  cat <<USAGE
Usage: scripts/fetch-report.sh [options] JOB
       scripts/fetch-report.sh [options] --list

Prints the JSON report of training Job JOB (the newest one stored for that
Job name), or with --list the stored reports: ConfigMap, job, creation time.

Options:
  -n, --namespace NS   namespace (default: kubectl's current one)
  --context CTX        kubectl context
  -o, --output FILE    write the report to FILE instead of stdout
  --list               list the stored reports
  -h, --help           this text

Needs kubectl with get/list on configmaps in NS. Remove reports with
  kubectl -n NS delete configmap -l app.kubernetes.io/component=report,spirt.dev/job=JOB
USAGE
}

die() { printf 'fetch-report: %s\n' "$*" >&2; exit 1; }
bad_usage() { printf 'fetch-report: %s\n' "$*" >&2; usage >&2; exit 2; }

KUBECTL=(kubectl)
OUTPUT=""
LIST=0
JOB=""
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    -n|--namespace) [ $# -ge 2 ] || bad_usage "$1 needs a value"; KUBECTL+=(--namespace "$2"); shift ;;
    --context) [ $# -ge 2 ] || bad_usage "$1 needs a value"; KUBECTL+=(--context "$2"); shift ;;
    -o|--output) [ $# -ge 2 ] || bad_usage "$1 needs a value"; OUTPUT=$2; shift ;;
    --list) LIST=1 ;;
    -*) bad_usage "unknown option $1" ;;
    *) [ -z "$JOB" ] || bad_usage "one JOB only"; JOB=$1 ;;
  esac
  shift
done
command -v kubectl >/dev/null || die "kubectl not found (https://kubernetes.io/docs/tasks/tools/)"

SELECTOR=app.kubernetes.io/component=report
if [ $LIST = 1 ]; then
  [ -z "$JOB" ] || bad_usage "--list takes no JOB"
  exec "${KUBECTL[@]}" get configmap -l "$SELECTOR" --sort-by=.metadata.creationTimestamp \
    -o custom-columns='CONFIGMAP:.metadata.name,JOB:.metadata.labels.spirt\.dev/job,CREATED:.metadata.creationTimestamp'
fi
[ -n "$JOB" ] || bad_usage "name the training Job (kubectl get jobs), or use --list"
[[ $JOB =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || bad_usage "$JOB is not a Job name"

name=$("${KUBECTL[@]}" get configmap -l "$SELECTOR,spirt.dev/job=$JOB" \
  --sort-by=.metadata.creationTimestamp -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | tail -n 1)
[ -n "$name" ] || die "no report stored for job $JOB (scripts/fetch-report.sh --list shows the stored ones; a run stores it when it succeeds)"

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
data=$("${KUBECTL[@]}" get configmap "$name" -o jsonpath='{.binaryData.report\.json}')
if [ -n "$data" ]; then
  base64 -d <<<"$data" >"$tmp"
else
  data=$("${KUBECTL[@]}" get configmap "$name" -o jsonpath='{.binaryData.report\.json\.gz}')
  [ -n "$data" ] || die "ConfigMap $name holds no report.json"
  base64 -d <<<"$data" | gzip -dc >"$tmp"
fi
if [ -n "$OUTPUT" ]; then
  cp "$tmp" "$OUTPUT"
  printf 'fetch-report: job %s: ConfigMap %s -> %s\n' "$JOB" "$name" "$OUTPUT" >&2
else
  cat "$tmp"
fi
