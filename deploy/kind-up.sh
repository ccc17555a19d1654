#!/usr/bin/env bash
# kind-up.sh - spirt on a local kind cluster with Knative Serving + Kourier.
#
# Creates the cluster (k8s/kind-config.yaml), installs pinned Knative Serving
# and Kourier releases, builds the images (deploy/images.sh) and loads them
# into the nodes, installs the Helm chart, checks it with `helm test`, then
# starts a short training Job and streams its logs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/common.sh
. "$ROOT/deploy/common.sh"
CLUSTER=${KIND_CLUSTER_NAME:-spirt}
NAMESPACE=${SPIRT_NAMESPACE:-spirt}
RELEASE=${SPIRT_RELEASE:-spirt}
KNATIVE_VERSION=${KNATIVE_VERSION:-knative-v1.17.0}
KOURIER_VERSION=${KOURIER_VERSION:-$KNATIVE_VERSION}
NODE_IMAGE=${KIND_NODE_IMAGE:-}
PEERS=2
ARCH=spirt
EPOCHS=1
TRAIN_SAMPLES=4096
TEST_SAMPLES=1000
BUILD=1
TRAIN=1
RENDER=0

usage() {
  cat <<USAGE
Usage: deploy/kind-up.sh [options]

Brings up spirt on a local kind cluster and runs a short training job:
  1. kind cluster "$CLUSTER" from k8s/kind-config.yaml (kept if it exists)
  2. Knative Serving + Kourier $KNATIVE_VERSION (release manifests)
  3. deploy/images.sh, then \`kind load docker-image\` of every image
  4. helm upgrade --install $RELEASE helm/spirt -n $NAMESPACE, helm test
  5. kubectl create job --from=cronjob/$RELEASE-train, logs -f until it ends

Options:
  --name NAME          cluster name (default $CLUSTER; env KIND_CLUSTER_NAME)
  --peers N            peers / workers (default $PEERS)
  --arch A             spirt | mlless | scatter-reduce | all-reduce (default $ARCH)
  --epochs N           (default $EPOCHS)
  --train-samples N    training samples of the short job (default $TRAIN_SAMPLES; 0 = all)
  --no-build           load the images as they are (default: build them first)
  --no-train           stop after helm test
  --render             only print what step 4 would install (helm template with
                       the same values; needs no cluster, docker or kind)
  -h, --help           this text

Needs docker, kind, kubectl and internet access (Knative manifests); helm is
used from PATH, else fetched like scripts/check-manifests.sh does.
Environment: KNATIVE_VERSION, KOURIER_VERSION (default $KNATIVE_VERSION),
KIND_NODE_IMAGE (node image for kind create), SPIRT_NAMESPACE, SPIRT_RELEASE.
Remove everything with deploy/kind-down.sh.
USAGE
}

log() { printf '\nkind-up: %s\n' "$*" >&2; }
die() { printf 'kind-up: error: %s\n' "$*" >&2; exit 1; }

need() { command -v "$1" >/dev/null || die "$1 not found: $2"; }

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      -h|--help) usage; exit 0 ;;
      --name) CLUSTER=${2:?}; shift ;;
      --peers) PEERS=${2:?}; shift ;;
      --arch) ARCH=${2:?}; shift ;;
      --epochs) EPOCHS=${2:?}; shift ;;
      --train-samples) TRAIN_SAMPLES=${2:?}; shift ;;
      --no-build) BUILD=0 ;;
      --no-train) TRAIN=0 ;;
      --render) RENDER=1 ;;
      *) usage >&2; exit 2 ;;
    esac
    shift
  done
}

find_helm() {
  if command -v helm >/dev/null; then
    HELM=$(command -v helm)
  else
    HELM=$("$ROOT/scripts/check-manifests.sh" --helm-path) || die "no helm"
  fi
}

tools() {
  need docker "install Docker"
  need kind "see https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
  need kubectl "see https://kubernetes.io/docs/tasks/tools/"
  find_helm
  KUBECTL=(kubectl --context "kind-$CLUSTER")
}

create_cluster() {
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    log "cluster $CLUSTER exists; reusing it"
    return
  fi
  log "creating kind cluster $CLUSTER"
  local args=(create cluster --name "$CLUSTER" --config "$ROOT/k8s/kind-config.yaml" --wait 120s)
  if [ -n "$NODE_IMAGE" ]; then args+=(--image "$NODE_IMAGE"); fi
  kind "${args[@]}"
}

install_knative() {
  local serving=https://github.com/knative/serving/releases/download/$KNATIVE_VERSION
  local kourier=https://github.com/knative/net-kourier/releases/download/$KOURIER_VERSION
  log "installing Knative Serving $KNATIVE_VERSION and Kourier $KOURIER_VERSION"
  "${KUBECTL[@]}" apply -f "$serving/serving-crds.yaml"
  "${KUBECTL[@]}" wait --for=condition=Established --timeout=120s crd/services.serving.knative.dev
  "${KUBECTL[@]}" apply -f "$serving/serving-core.yaml"
  "${KUBECTL[@]}" apply -f "$kourier/kourier.yaml"
  "${KUBECTL[@]}" patch configmap/config-network -n knative-serving --type merge \
    -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
  "${KUBECTL[@]}" -n knative-serving wait deployment --all --for=condition=Available --timeout=600s
  "${KUBECTL[@]}" -n kourier-system wait deployment --all --for=condition=Available --timeout=600s
}

load_images() {
  if [ $BUILD = 1 ]; then
    log "building images"
    "$ROOT/deploy/images.sh"
  fi
  local images
  mapfile -t images < <("$ROOT/deploy/images.sh" --list)
  log "loading ${#images[@]} images into $CLUSTER"
  kind load docker-image --name "$CLUSTER" "${images[@]}"
}

# The chart values of this run; train.arch decides which functions exist.
chart_values() {
  local extra
  extra="[]"
  if [ "$TRAIN_SAMPLES" != 0 ]; then
    extra="[\"--train-samples\",\"$TRAIN_SAMPLES\",\"--test-samples\",\"$TEST_SAMPLES\"]"
  fi
  VALUES=(--namespace "$NAMESPACE"
    --set peers="$PEERS" --set train.arch="$ARCH" --set train.epochs="$EPOCHS"
    --set-json train.extraArgs="$extra")
}

install_chart() {
  chart_values
  log "helm upgrade --install $RELEASE (peers=$PEERS, arch=$ARCH: $("$ROOT/scripts/steps.sh" --arch "$ARCH" | paste -sd' '))"
  "$HELM" --kube-context "kind-$CLUSTER" upgrade --install "$RELEASE" "$ROOT/helm/spirt" \
    --create-namespace "${VALUES[@]}" --wait --timeout 10m
  "${KUBECTL[@]}" -n "$NAMESPACE" wait ksvc -l "app.kubernetes.io/instance=$RELEASE" \
    --for=condition=Ready --timeout=600s
  log "helm test $RELEASE"
  "$HELM" --kube-context "kind-$CLUSTER" test "$RELEASE" -n "$NAMESPACE" --logs
}

train() {
  local job phase i
  job=$RELEASE-train-$(date +%s)
  log "starting training job $job"
  "${KUBECTL[@]}" -n "$NAMESPACE" create job "$job" --from="cronjob/$RELEASE-train"
  for i in $(seq 1 300); do
    phase=$("${KUBECTL[@]}" -n "$NAMESPACE" get pods -l "job-name=$job" -o jsonpath='{.items[0].status.phase}' 2>/dev/null || true)
    case $phase in Running|Succeeded|Failed) break ;; esac
    [ "$i" -lt 300 ] || die "the job's pod did not start within 300s"
    sleep 1
  done
  "${KUBECTL[@]}" -n "$NAMESPACE" logs -f "job/$job" || true
  if "${KUBECTL[@]}" -n "$NAMESPACE" wait "job/$job" --for=condition=complete --timeout=60s >/dev/null 2>&1; then
    log "job $job completed"
  else
    "${KUBECTL[@]}" -n "$NAMESPACE" describe "job/$job" | tail -n 20 >&2
    die "job $job did not complete"
  fi
}

main() {
  parse_args "$@"
  if [ $RENDER = 1 ]; then
    find_helm
    chart_values
    exec "$HELM" template "$RELEASE" "$ROOT/helm/spirt" "${VALUES[@]}" \
      --api-versions serving.knative.dev/v1/Service
  fi
  tools
  "$ROOT/deploy/docker-base.sh" engine
  create_cluster
  install_knative
  load_images
  install_chart
  if [ $TRAIN = 1 ]; then train; fi
  log "done. Another run: kubectl --context kind-$CLUSTER -n $NAMESPACE create job NAME --from=cronjob/$RELEASE-train"
}

main "$@"
