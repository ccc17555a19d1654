#!/usr/bin/env bash
# images.sh - build every spirt container image from the Dockerfile.
#
# Images (registry dev.local by default, tag = project VERSION in CMakeLists.txt):
#   spirt-<step>   one per step of src/steps/steps.def (underscores -> dashes)
#   spirt-driver, spirt-redis, spirt-nats
# Starts a Docker engine and creates the Debian base image when needed
# (deploy/docker-base.sh), builds with --network host, and prints the sizes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/common.sh
. "$ROOT/deploy/common.sh"
REGISTRY=${SPIRT_IMAGE_REGISTRY:-dev.local}
BASE_IMAGE=${SPIRT_BASE_IMAGE:-debian:bookworm-slim}
JOBS=${SPIRT_BUILD_JOBS:-2}
# Steps whose function reads the dataset from disk get the Fashion-MNIST files.
DATA_STEPS=${SPIRT_DATA_STEPS:-init}

usage() {
  cat <<USAGE
Usage: deploy/images.sh [--list] [--tag TAG] [--no-cache] [STEP|driver|redis|nats ...]

Builds the spirt images (all of them when no name is given):
  $REGISTRY/spirt-<step>:<tag>  for each step of src/steps/steps.def (step
                                names with '_' become '-')
  $REGISTRY/spirt-driver:<tag>, $REGISTRY/spirt-redis:<tag>, $REGISTRY/spirt-nats:<tag>
<tag> defaults to the project VERSION in CMakeLists.txt ($(project_version)).

Options:
  --list       print the image names that would be built, one a line, and exit
  --tag TAG    image tag (default: project version)
  --no-cache   pass --no-cache to docker build
  -h, --help   this text

Environment: SPIRT_IMAGE_REGISTRY (default dev.local), SPIRT_BASE_IMAGE
(default debian:bookworm-slim), SPIRT_BUILD_JOBS (make -j inside the build,
default 2), SPIRT_DATA_STEPS (steps whose image carries the dataset, default init).
USAGE
}

log() { printf 'images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

image_name() { # kind-or-step tag
  local n=${1//_/-}
  printf '%s/spirt-%s:%s\n' "$REGISTRY" "$n" "$2"
}

human() { numfmt --to=iec --suffix=B "$1" 2>/dev/null || printf '%sB' "$1"; }

build() { # target image [extra args...]
  local target=$1 image=$2
  shift 2
  log "building $image (target $target)"
  docker build --network host "${cache_args[@]}" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg VERSION="$TAG" --build-arg JOBS="$JOBS" \
    --target "$target" -t "$image" "$@" -f "$ROOT/Dockerfile" "$ROOT" >>"$BUILD_LOG" 2>&1 ||
    { tail -n 40 "$BUILD_LOG" >&2; die "build of $image failed (full log: $BUILD_LOG)"; }
}

main() {
  local list=0 names=()
  TAG=$(project_version)
  cache_args=()
  while [ $# -gt 0 ]; do
    case $1 in
      -h|--help) usage; exit 0 ;;
      --list) list=1 ;;
      --tag) TAG=${2:?--tag needs a value}; shift ;;
      --no-cache) cache_args=(--no-cache) ;;
      -*) usage >&2; exit 2 ;;
      *) names+=("$1") ;;
    esac
    shift
  done
  [ -n "$TAG" ] || die "no project VERSION found in $ROOT/CMakeLists.txt"

  local all_steps
  mapfile -t all_steps < <(steps)
  if [ ${#names[@]} -eq 0 ]; then
    names=(driver redis nats "${all_steps[@]}")
  fi
  local n
  for n in "${names[@]}"; do
    case " driver redis nats ${all_steps[*]} " in
      *" $n "*) ;;
      *) die "unknown image '$n' (known: driver redis nats ${all_steps[*]})" ;;
    esac
  done

  if [ $list = 1 ]; then
    for n in "${names[@]}"; do image_name "$n" "$TAG"; done
    return 0
  fi

  "$ROOT/deploy/docker-base.sh" all
  mkdir -p "$ROOT/build"
  BUILD_LOG=$ROOT/build/images-build.log
  : >"$BUILD_LOG"
  local start=$SECONDS target
  for n in "${names[@]}"; do
    case $n in
      driver|redis|nats) build "$n" "$(image_name "$n" "$TAG")" ;;
      *)
        target=function
        case " $DATA_STEPS " in *" $n "*) target=function-data ;; esac
        build "$target" "$(image_name "$n" "$TAG")" --build-arg FUNCTION="$n"
        ;;
    esac
  done
  log "built ${#names[@]} images in $((SECONDS - start))s"

  printf '%-44s %10s\n' IMAGE SIZE
  local img size
  for n in "${names[@]}"; do
    img=$(image_name "$n" "$TAG")
    size=$(docker image inspect -f '{{.Size}}' "$img")
    printf '%-44s %10s\n' "$img" "$(human "$size")"
  done
  # How the function images split (printed by the builder when it ran now;
  # nothing when the builder came from the cache).
  grep '^collect-runtime:' "$BUILD_LOG" | sort -u || true
}

main "$@"
