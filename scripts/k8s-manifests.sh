#!/usr/bin/env bash
# k8s-manifests.sh - write the plain manifests under k8s/ from the Helm chart,
# so the two never drift: `helm template spirt helm/spirt -n spirt` with the
# Secret spirt-auth created by hand (k8s/secret.yaml holds placeholders), one
# file per template, Helm's own labels left out. k8s/namespace.yaml,
# k8s/secret.yaml, k8s/kustomization.yaml and k8s/kind-config.yaml are
# written by hand. scripts/check-manifests.sh runs this with --check.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
K8S=$ROOT/k8s
# template (under helm/spirt/templates/) -> file under k8s/
FILES=(
  "serviceaccount.yaml:serviceaccount.yaml"
  "redis-peers.yaml:redis-peers.yaml"
  "redis-shared.yaml:redis-shared.yaml"
  "nats.yaml:nats.yaml"
  "functions.yaml:functions.yaml"
  "networkpolicy.yaml:network-policies.yaml"
  "pdb.yaml:pod-disruption-budgets.yaml"
  "report-rbac.yaml:report-rbac.yaml"
  "train-job.yaml:train-job.yaml"
)

usage() {
  cat <<USAGE
Usage: scripts/k8s-manifests.sh [--check] [--helm PATH]

Renders helm/spirt (release spirt, namespace spirt, the default values, the
Secret spirt-auth made outside the chart) and writes one file per template
under k8s/: $(printf '%s ' "${FILES[@]#*:}")
  --check      write nothing; exit 1 and show the difference when k8s/ is stale
  --helm PATH  the helm binary (default: helm on PATH, else the one
               scripts/check-manifests.sh fetches)
USAGE
}

die() { printf 'k8s-manifests: %s\n' "$*" >&2; exit 1; }

CHECK=0
HELM=
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --check) CHECK=1 ;;
    --helm) [ $# -ge 2 ] || die "--helm needs a path"; HELM=$2; shift ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$HELM" ]; then
  HELM=$(command -v helm || "$ROOT/scripts/check-manifests.sh" --helm-path) || die "no helm"
fi

# One rendering of every template listed, split by helm's "# Source:" lines.
RENDER_DIR=$(mktemp -d)
trap 'rm -rf "$RENDER_DIR"' EXIT
render_all() {
  local args=() entry
  for entry in "${FILES[@]}"; do args+=(--show-only "templates/${entry%%:*}"); done
  "$HELM" template spirt "$ROOT/helm/spirt" --namespace spirt \
    --api-versions serving.knative.dev/v1/Service \
    --set auth.existingSecret=spirt-auth "${args[@]}" >"$RENDER_DIR/all.yaml" ||
    die "helm template of the chart failed"
  awk -v dir="$RENDER_DIR" '
    /^# Source: spirt\/templates\// { f = dir "/" substr($0, 26); next }
    f { print >> f }' "$RENDER_DIR/all.yaml"
}

render() { # template
  local t=$1
  [ -s "$RENDER_DIR/$t" ] || die "templates/$t rendered nothing"
  printf '# Generated from helm/spirt/templates/%s by scripts/k8s-manifests.sh:\n' "$t"
  printf '# edit the chart and run it again (check-manifests.sh fails when this is stale).\n'
  sed -e '/^    helm.sh\/chart: /d' -e '/^ *helm.sh\/chart: /d' \
      -e '/^ *app.kubernetes.io\/managed-by: Helm$/d' "$RENDER_DIR/$t" |
    awk 'NR == 1 && /^---$/ { next } { lines[++n] = $0 } END { while (n > 0 && lines[n] == "---") n--; for (i = 1; i <= n; i++) print lines[i] }' |
    if [ "$t" = train-job.yaml ]; then job_manifest; else cat; fi
}

# The chart keeps the training Job in a ConfigMap (key job.yaml, a literal
# block indented by 4); k8s/train-job.yaml is that manifest itself.
job_manifest() {
  awk '/^  job.yaml: \|$/ { on = 1; next } on && /^    / { print substr($0, 5); next } on && /^$/ { print; next } on { exit }'
}

status=0
render_all
tmp=$RENDER_DIR/out.yaml
for entry in "${FILES[@]}"; do
  t=${entry%%:*} f=$K8S/${entry#*:}
  render "$t" >"$tmp" || die "helm template --show-only templates/$t failed"
  if [ $CHECK = 1 ]; then
    if ! diff -u "$f" "$tmp" >&2; then
      printf 'k8s-manifests: k8s/%s is stale: run scripts/k8s-manifests.sh\n' "${entry#*:}" >&2
      status=1
    fi
  else
    cp "$tmp" "$f"
  fi
done
exit $status
