#!/usr/bin/env bash
# kind-down.sh - remove what deploy/kind-up.sh made: the kind cluster (with
# Knative, the spirt release, its volumes and stored reports), the images it
# built and loaded, and its files under build/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER=${KIND_CLUSTER_NAME:-spirt}
KEEP_IMAGES=0

usage() {
  cat <<USAGE
Usage: deploy/kind-down.sh [--name NAME] [--keep-images]

Deletes the kind cluster (default "$CLUSTER"; env KIND_CLUSTER_NAME) with
everything in it: Knative, Kourier, the spirt release, its volumes and the
report ConfigMaps. Then removes the local images deploy/kind-up.sh built
(deploy/images.sh --list: dev.local/spirt-*:<version>) and
build/kind-images.yaml, build/kind-report.json.

  --name NAME     the cluster (default $CLUSTER)
  --keep-images   keep the local images (a later kind-up.sh --no-build uses them)
  -h, --help      this text
USAGE
}

die() { printf 'kind-down: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --name)
      if [ $# -lt 2 ] || [ -z "$2" ]; then printf 'kind-down: --name needs a value\n' >&2; usage >&2; exit 2; fi
      CLUSTER=$2; shift ;;
    --keep-images) KEEP_IMAGES=1 ;;
    *) printf 'kind-down: unknown option %s\n' "$1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

command -v kind >/dev/null || die "kind not found"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  kind delete cluster --name "$CLUSTER"
else
  printf 'kind-down: no kind cluster named %s\n' "$CLUSTER" >&2
fi

if [ $KEEP_IMAGES = 0 ] && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  mapfile -t images < <("$ROOT/deploy/images.sh" --list)
  present=()
  for img in "${images[@]}"; do
    if docker image inspect "$img" >/dev/null 2>&1; then present+=("$img"); fi
  done
  if [ ${#present[@]} -gt 0 ]; then
    printf 'kind-down: removing %d local images\n' "${#present[@]}" >&2
    docker image rm "${present[@]}" >/dev/null
  fi
fi
rm -f "$ROOT/build/kind-images.yaml" "$ROOT/build/kind-report.json"
