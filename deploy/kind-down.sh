#!/usr/bin/env bash
# kind-down.sh - delete the kind cluster made by deploy/kind-up.sh.
set -euo pipefail

CLUSTER=${KIND_CLUSTER_NAME:-spirt}

usage() {
  cat <<USAGE
Usage: deploy/kind-down.sh [--name NAME]

Deletes the kind cluster (default "$CLUSTER"; env KIND_CLUSTER_NAME) with
everything in it: Knative, the spirt release, its volumes. Local Docker
images (dev.local/spirt-*) are kept.
USAGE
}

while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --name) CLUSTER=${2:?}; shift ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

command -v kind >/dev/null || { echo "kind-down: kind not found" >&2; exit 1; }
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  kind delete cluster --name "$CLUSTER"
else
  echo "kind-down: no kind cluster named $CLUSTER" >&2
fi
