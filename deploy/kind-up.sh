#!/usr/bin/env bash
# kind-up.sh - spirt on a local kind cluster with Knative Serving + Kourier.
#
# Creates the cluster (k8s/kind-config.yaml, a pinned node image that Knative
# accepts), installs pinned Knative Serving and Kourier releases (retrying
# downloads, patching config-network once Knative's webhook answers), builds
# the images (deploy/images.sh) and loads them into the nodes, installs the
# Helm chart pinned to those images, checks it with `helm test`, then starts
# a short training Job, follows its pods' logs until the Job completes or
# fails, shows the last pod's log and fetches the report.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/common.sh
. "$ROOT/deploy/common.sh"
CLUSTER=${KIND_CLUSTER_NAME:-spirt}
NAMESPACE=${SPIRT_NAMESPACE:-spirt}
RELEASE=${SPIRT_RELEASE:-spirt}
KNATIVE_VERSION=${KNATIVE_VERSION:-knative-v1.17.0}
KOURIER_VERSION=${KOURIER_VERSION:-$KNATIVE_VERSION}
# Knative Serving 1.17 refuses Kubernetes older than 1.30; its quickstart
# (kn quickstart kind, release-1.17) pins this node image and kind >= 0.23.
NODE_IMAGE=${KIND_NODE_IMAGE:-kindest/node:v1.30.0}
MIN_K8S_MINOR=30
JOB_TIMEOUT=${SPIRT_JOB_TIMEOUT:-3600}
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
  1. kind cluster "$CLUSTER" from k8s/kind-config.yaml with node image
     $NODE_IMAGE (kept if it exists; Kubernetes >= 1.$MIN_K8S_MINOR required)
  2. Knative Serving + Kourier $KNATIVE_VERSION (release manifests, retried)
  3. deploy/images.sh, then \`kind load docker-image\` of every image
  4. helm upgrade --install $RELEASE helm/spirt -n $NAMESPACE (pinned to the
     image IDs, so a rebuild rolls new revisions), helm test
  5. kubectl create -f <the chart's Job manifest>, follows the pods' logs
     until the Job completes or fails, shows the last pod's log, fetches the
     report (build/kind-report.json)

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

Needs docker, kind (>= 0.23), kubectl and internet access (Knative
manifests); helm is used from PATH, else fetched like scripts/check-manifests.sh.
Environment: KNATIVE_VERSION, KOURIER_VERSION (default $KNATIVE_VERSION),
KIND_NODE_IMAGE (default $NODE_IMAGE), SPIRT_NAMESPACE, SPIRT_RELEASE,
SPIRT_JOB_TIMEOUT (seconds to wait for the Job, default $JOB_TIMEOUT),
SPIRT_POLL_SECONDS (how often the Job's state is read, default 5).
Remove everything with deploy/kind-down.sh.
USAGE
}

log() { printf '\nkind-up: %s\n' "$*" >&2; }
die() { printf 'kind-up: error: %s\n' "$*" >&2; exit 1; }

need() { command -v "$1" >/dev/null || die "$1 not found: $2"; }
bad_usage() { printf 'kind-up: %s\nRun deploy/kind-up.sh --help for the options.\n' "$*" >&2; exit 2; }

# retry N CMD...: CMD until it succeeds, at most N times, 5 s, 10 s, ... apart
# (remote manifests, an API server or webhook still starting).
retry() {
  local n=$1 i=1
  shift
  until "$@"; do
    [ "$i" -lt "$n" ] || { printf 'kind-up: failed %d times: %s\n' "$n" "$*" >&2; return 1; }
    printf 'kind-up: retrying in %ds: %s\n' $((5 * i)) "$*" >&2
    sleep $((5 * i))
    i=$((i + 1))
  done
}

parse_args() {
  local v
  while [ $# -gt 0 ]; do
    case $1 in
      -h|--help) usage; exit 0 ;;
      --name|--peers|--arch|--epochs|--train-samples)
        if [ $# -lt 2 ] || [ -z "$2" ]; then bad_usage "$1 needs a value"; fi
        v=$2
        case $1 in
          --name) [[ $v =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || bad_usage "--name $v: a lowercase DNS label"; CLUSTER=$v ;;
          --peers) [[ $v =~ ^[1-9][0-9]*$ ]] || bad_usage "--peers $v: a positive integer"; PEERS=$v ;;
          --arch)
            case $v in spirt|mlless|scatter-reduce|all-reduce) ARCH=$v ;;
              *) bad_usage "--arch $v: one of spirt, mlless, scatter-reduce, all-reduce" ;; esac ;;
          --epochs) [[ $v =~ ^[1-9][0-9]*$ ]] || bad_usage "--epochs $v: a positive integer"; EPOCHS=$v ;;
          --train-samples) [[ $v =~ ^[0-9]+$ ]] || bad_usage "--train-samples $v: an integer (0 = all)"; TRAIN_SAMPLES=$v ;;
        esac
        shift ;;
      --no-build) BUILD=0 ;;
      --no-train) TRAIN=0 ;;
      --render) RENDER=1 ;;
      *) bad_usage "unknown option $1" ;;
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
  else
    local kv
    kv=$(kind version 2>/dev/null | sed -n 's/^kind v0\.\([0-9]*\)\..*/\1/p')
    if [ -n "$kv" ] && [ "$kv" -lt 23 ]; then
      log "warning: kind v0.$kv is older than 0.23, which $NODE_IMAGE is made for"
    fi
    log "creating kind cluster $CLUSTER ($NODE_IMAGE)"
    kind create cluster --name "$CLUSTER" --config "$ROOT/k8s/kind-config.yaml" --image "$NODE_IMAGE" --wait 120s
  fi
  # Knative 1.17's webhook refuses to start on Kubernetes < 1.30.
  local minor
  minor=$("${KUBECTL[@]}" version -o json 2>/dev/null | sed -n '/"serverVersion"/,/}/s/.*"minor": *"\([0-9]*\).*/\1/p' | head -n 1)
  if [ -n "$minor" ] && [ "$minor" -lt "$MIN_K8S_MINOR" ]; then
    die "cluster $CLUSTER runs Kubernetes 1.$minor; Knative $KNATIVE_VERSION needs 1.$MIN_K8S_MINOR or newer (deploy/kind-down.sh, then run this again)"
  fi
}

install_knative() {
  local serving=https://github.com/knative/serving/releases/download/$KNATIVE_VERSION
  local kourier=https://github.com/knative/net-kourier/releases/download/$KOURIER_VERSION
  log "installing Knative Serving $KNATIVE_VERSION and Kourier $KOURIER_VERSION"
  retry 5 "${KUBECTL[@]}" apply -f "$serving/serving-crds.yaml"
  "${KUBECTL[@]}" wait --for=condition=Established --timeout=120s crd/services.serving.knative.dev
  retry 5 "${KUBECTL[@]}" apply -f "$serving/serving-core.yaml"
  # config-network is validated by Knative's webhook: patching it before the
  # webhook answers fails (or races its defaulting).
  log "waiting for Knative's webhook"
  retry 3 "${KUBECTL[@]}" -n knative-serving wait deployment/webhook --for=condition=Available --timeout=300s
  retry 5 "${KUBECTL[@]}" apply -f "$kourier/kourier.yaml"
  retry 5 "${KUBECTL[@]}" patch configmap/config-network -n knative-serving --type merge \
    -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
  "${KUBECTL[@]}" -n knative-serving wait deployment --all --for=condition=Available --timeout=600s
  "${KUBECTL[@]}" -n kourier-system wait deployment --all --for=condition=Available --timeout=600s
}

# The chart values pinning the images: their local IDs (a rebuild loaded
# under the same tag then rolls new revisions).
IMAGE_VALUES=$ROOT/build/kind-images.yaml

load_images() {
  mkdir -p "$ROOT/build"
  if [ $BUILD = 1 ]; then
    log "building images"
    "$ROOT/deploy/images.sh" --values-out "$IMAGE_VALUES"
  else
    "$ROOT/deploy/images.sh" --no-build --values-out "$IMAGE_VALUES"
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
  if [ -s "$IMAGE_VALUES" ]; then VALUES+=(-f "$IMAGE_VALUES"); fi
}

install_chart() {
  chart_values
  log "helm upgrade --install $RELEASE (peers=$PEERS, arch=$ARCH: $("$ROOT/scripts/steps.sh" --arch "$ARCH" | paste -sd' '))"
  retry 3 "$HELM" --kube-context "kind-$CLUSTER" upgrade --install "$RELEASE" "$ROOT/helm/spirt" \
    --create-namespace "${VALUES[@]}" --wait --timeout 10m
  "${KUBECTL[@]}" -n "$NAMESPACE" wait ksvc -l "app.kubernetes.io/instance=$RELEASE" \
    --for=condition=Ready --timeout=600s
  log "helm test $RELEASE"
  "$HELM" --kube-context "kind-$CLUSTER" test "$RELEASE" -n "$NAMESPACE" --logs
}

# The newest pod of job $1 that has started (past Pending), if any.
newest_pod() {
  "${KUBECTL[@]}" -n "$NAMESPACE" get pods -l "job-name=$1" --sort-by=.metadata.creationTimestamp \
    -o jsonpath='{range .items[*]}{.metadata.name} {.status.phase}{"\n"}{end}' 2>/dev/null |
    awk '$2 != "Pending" { p = $1 } END { if (p) print p }'
}

FOLLOWER=""
stop_follower() {
  if [ -n "$FOLLOWER" ]; then kill "$FOLLOWER" 2>/dev/null || true; wait "$FOLLOWER" 2>/dev/null || true; fi
  FOLLOWER=""
}

train() {
  local job conditions pod followed="" result="" start=$SECONDS
  log "starting a training job ($RELEASE-train-job)"
  job=$(retry 3 "${KUBECTL[@]}" -n "$NAMESPACE" get configmap "$RELEASE-train-job" -o jsonpath='{.data.job\.yaml}' |
    "${KUBECTL[@]}" create -f - -o name) || die "could not create the training Job"
  job=${job#job.batch/}
  log "job $job: following its pods' logs (a driver pod started again resumes)"
  trap stop_follower EXIT
  # Follow each new pod of the Job (backoffLimit: a failed driver pod is
  # replaced); done when the Job reports Complete or Failed.
  while :; do
    conditions=$("${KUBECTL[@]}" -n "$NAMESPACE" get "job/$job" \
      -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}' 2>/dev/null || true)
    case " $conditions " in
      *" Complete "*) result=complete; break ;;
      *" Failed "*) result=failed; break ;;
    esac
    pod=$(newest_pod "$job")
    if [ -n "$pod" ] && [ "$pod" != "$followed" ]; then
      stop_follower
      [ -z "$followed" ] || log "job $job: pod $followed ended; following $pod"
      "${KUBECTL[@]}" -n "$NAMESPACE" logs -f "$pod" &
      FOLLOWER=$!
      followed=$pod
    fi
    if [ $((SECONDS - start)) -ge "$JOB_TIMEOUT" ]; then result=timeout; break; fi
    sleep "${SPIRT_POLL_SECONDS:-5}"
  done
  sleep 2
  stop_follower
  trap - EXIT
  pod=$(newest_pod "$job")
  if [ -n "$pod" ]; then
    log "job $job $result; the end of its last pod's log ($pod):"
    "${KUBECTL[@]}" -n "$NAMESPACE" logs "$pod" --tail=25 >&2 || true
  fi
  if [ "$result" != complete ]; then
    "${KUBECTL[@]}" -n "$NAMESPACE" describe "job/$job" | tail -n 20 >&2
    die "job $job did not complete ($result)"
  fi
  if retry 3 "$ROOT/scripts/fetch-report.sh" --context "kind-$CLUSTER" -n "$NAMESPACE" \
      -o "$ROOT/build/kind-report.json" "$job"; then
    log "report of $job in build/kind-report.json (it stays in ConfigMap $job-report)"
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
  log "done. Another run: kubectl --context kind-$CLUSTER -n $NAMESPACE get configmap $RELEASE-train-job -o jsonpath='{.data.job\\.yaml}' | kubectl --context kind-$CLUSTER create -f -"
}

main "$@"
