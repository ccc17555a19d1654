#!/usr/bin/env bash
# images.sh - build (and push) every spirt container image from the Dockerfile.
#
# Images (registry dev.local by default, tag = project VERSION in CMakeLists.txt):
#   spirt-<step>   one per step of src/steps/steps.def (underscores -> dashes)
#   spirt-driver, spirt-redis, spirt-nats
# Starts a Docker engine and creates the Debian base image when needed
# (deploy/docker-base.sh), prints the sizes, and can write the chart values
# that pin what was built (--values-out), so a rebuild rolls new revisions.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/common.sh
. "$ROOT/deploy/common.sh"
REGISTRY=${SPIRT_IMAGE_REGISTRY:-dev.local}
BASE_IMAGE=${SPIRT_BASE_IMAGE:-debian:bookworm-slim}
JOBS=${SPIRT_BUILD_JOBS:-2}
NETWORK=${SPIRT_BUILD_NETWORK:-host}
# Steps whose function reads the dataset from disk get the Fashion-MNIST files.
DATA_STEPS=${SPIRT_DATA_STEPS:-init}

usage() {
  cat <<USAGE
Usage: deploy/images.sh [options] [STEP|driver|redis|nats ...]

Builds the spirt images (all of them when no name is given):
  <registry>/spirt-<step>:<tag>  for each step of src/steps/steps.def (step
                                 names with '_' become '-')
  <registry>/spirt-driver:<tag>, <registry>/spirt-redis:<tag>, <registry>/spirt-nats:<tag>
<registry> defaults to dev.local (local images: kind load, no pull), <tag> to
the project VERSION in CMakeLists.txt ($(project_version)).

Options:
  --registry REG     image registry/prefix, e.g. ghcr.io/me or registry.example.com/ml
                     (default $REGISTRY; env SPIRT_IMAGE_REGISTRY)
  --tag TAG          image tag (default: project version)
  --push             push every image after building it (REG must be a real
                     registry, not dev.local or kind.local)
  --platform LIST    target platforms, e.g. linux/amd64,linux/arm64; needs
                     docker buildx, and --push for more than one platform
  --values-out FILE  write Helm values pinning these images (image.registry,
                     image.tag, image.digests): pushed images by their
                     registry digest, local ones by image ID. Install with
                     -f FILE and every rebuilt image rolls a new revision.
  --no-build         build nothing: with --values-out, pin the local images as
                     they are (deploy/kind-up.sh --no-build)
  --list             print the image names that would be built, one a line, and exit
  --no-cache         build without the layer cache
  -h, --help         this text

With buildx (docker buildx version answers) images are built with
\`docker buildx build\`, --provenance=false when the builder knows the flag
(kind load refuses images carrying attestations), --load unless pushing.
Without it the classic \`docker build\` + \`docker push\` are used.

Environment: SPIRT_IMAGE_REGISTRY, SPIRT_BASE_IMAGE (default
debian:bookworm-slim), SPIRT_BUILD_JOBS (make -j inside the build, default 2),
SPIRT_BUILD_NETWORK (docker build --network, default host: apt inside the
build reaches what the host reaches; "default" for builders that refuse host),
SPIRT_DATA_STEPS (steps whose image carries the dataset, default init).
Registry credentials: \`docker login REG\` beforehand (never on this command line).
USAGE
}

log() { printf 'images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
bad_usage() { log "$*"; printf 'Run deploy/images.sh --help for the options.\n' >&2; exit 2; }

need_value() { # option value...
  if [ $# -lt 2 ] || [ -z "$2" ] || [[ $2 == -* ]]; then bad_usage "$1 needs a value"; fi
}

is_local_registry() { case $REGISTRY in dev.local|kind.local|dev.local/*|kind.local/*) return 0 ;; esac; return 1; }

# Image name as the chart names it: spirt-<name>, '_' -> '-'.
short_name() { printf 'spirt-%s\n' "${1//_/-}"; }
image_name() { # name tag
  printf '%s/%s:%s\n' "$REGISTRY" "$(short_name "$1")" "$2"
}

human() { numfmt --to=iec --suffix=B "$1" 2>/dev/null || printf '%sB' "$1"; }

# What the builder can do: sets BUILDX (0/1) and PROVENANCE (array).
detect_builder() {
  BUILDX=0
  PROVENANCE=()
  if docker buildx version >/dev/null 2>&1; then
    BUILDX=1
    if docker buildx build --help 2>/dev/null | grep -q -- '--provenance'; then PROVENANCE=(--provenance=false); fi
  fi
}

build() { # name target image [extra args...]
  local name=$1 target=$2 image=$3
  shift 3
  local args=(--network "$NETWORK" "${cache_args[@]}"
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg VERSION="$TAG" --build-arg JOBS="$JOBS"
    --target "$target" -t "$image" "$@" -f "$ROOT/Dockerfile")
  local how=""
  if [ "$PUSH" = 1 ]; then how=", push"; fi
  log "building $image (target $target${PLATFORM:+, $PLATFORM}$how)"
  if [ "$BUILDX" = 1 ]; then
    local meta=$BUILD_DIR/meta-$name.json
    rm -f "$meta"
    args+=("${PROVENANCE[@]}" --metadata-file "$meta")
    if [ -n "$PLATFORM" ]; then args+=(--platform "$PLATFORM"); fi
    if [ "$PUSH" = 1 ]; then args+=(--push); else args+=(--load); fi
    docker buildx build "${args[@]}" "$ROOT" >>"$BUILD_LOG" 2>&1 ||
      { tail -n 40 "$BUILD_LOG" >&2; die "build of $image failed (full log: $BUILD_LOG)"; }
  else
    docker build "${args[@]}" "$ROOT" >>"$BUILD_LOG" 2>&1 ||
      { tail -n 40 "$BUILD_LOG" >&2; die "build of $image failed (full log: $BUILD_LOG)"; }
    if [ "$PUSH" = 1 ]; then
      log "pushing $image"
      docker push "$image" >>"$BUILD_LOG" 2>&1 ||
        { tail -n 20 "$BUILD_LOG" >&2; die "push of $image failed (docker login $REGISTRY first?)"; }
    fi
  fi
}

# The identity of a built image: the registry digest when pushed (what the
# chart pulls by), else the local image ID (what changes on every rebuild).
image_digest() { # name image
  local name=$1 image=$2 d=""
  if [ "$PUSH" = 1 ]; then
    if [ "$BUILDX" = 1 ] && [ -s "$BUILD_DIR/meta-$name.json" ]; then
      d=$(grep -o '"containerimage.digest": *"sha256:[0-9a-f]\{64\}"' "$BUILD_DIR/meta-$name.json" | grep -o 'sha256:[0-9a-f]\{64\}' | head -n 1)
    fi
    if [ -z "$d" ]; then
      d=$(docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$image" 2>/dev/null |
        sed -n "s|^${image%:*}@\(sha256:[0-9a-f]\{64\}\)$|\1|p" | head -n 1)
    fi
  else
    d=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  fi
  case $d in sha256:*) printf '%s\n' "$d" ;; *) die "no digest found for $image" ;; esac
}

write_values() { # file names...
  local file=$1 n
  shift
  {
    printf '# Written by deploy/images.sh: the images of one build. Install with\n'
    printf '#   helm upgrade --install spirt helm/spirt -f %s\n' "$(basename "$file")"
    if [ "$PUSH" = 1 ]; then
      printf '# Images are pulled by digest, so a rebuild rolls new revisions.\n'
    else
      printf '# Local images (IDs, not registry digests): the chart puts them in a\n'
      printf '# pod annotation, so a rebuild loaded under the same tag rolls new revisions.\n'
    fi
    printf 'image:\n  registry: %s\n  tag: "%s"\n  digests:\n' "$REGISTRY" "$TAG"
    for n in "$@"; do
      printf '    %s: %s\n' "${n//_/-}" "$(image_digest "$n" "$(image_name "$n" "$TAG")")"
    done
  } >"$file.tmp"
  mv "$file.tmp" "$file"
  log "wrote $file"
}

main() {
  local list=0 names=() values_out="" build=1
  TAG=$(project_version)
  PUSH=0
  PLATFORM=""
  cache_args=()
  while [ $# -gt 0 ]; do
    case $1 in
      -h|--help) usage; exit 0 ;;
      --list) list=1 ;;
      --registry) need_value "$@"; REGISTRY=${2%/}; shift ;;
      --tag) need_value "$@"; TAG=$2; shift ;;
      --push) PUSH=1 ;;
      --platform) need_value "$@"; PLATFORM=$2; shift ;;
      --values-out) need_value "$@"; values_out=$2; shift ;;
      --no-cache) cache_args=(--no-cache) ;;
      --no-build) build=0 ;;
      -*) bad_usage "unknown option $1" ;;
      *) names+=("$1") ;;
    esac
    shift
  done
  [ -n "$TAG" ] || die "no project VERSION found in $ROOT/CMakeLists.txt"
  [[ $TAG =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || bad_usage "--tag $TAG is not a valid image tag"
  [[ $REGISTRY =~ ^[a-z0-9]([a-z0-9.:-]*[a-z0-9])?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$ ]] ||
    bad_usage "--registry $REGISTRY is not a registry/prefix (e.g. registry.example.com/ml)"
  if [ "$PUSH" = 1 ] && is_local_registry; then
    bad_usage "--push needs a real registry: $REGISTRY is a local name (use --registry REG)"
  fi
  if [ -n "$PLATFORM" ]; then
    [[ $PLATFORM =~ ^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?(,[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?)*$ ]] ||
      bad_usage "--platform $PLATFORM is not a list like linux/amd64,linux/arm64"
    if [[ $PLATFORM == *,* ]] && [ "$PUSH" = 0 ] && [ $list = 0 ]; then
      bad_usage "--platform with several platforms needs --push (a local image store holds one platform)"
    fi
  fi

  local all_steps
  mapfile -t all_steps < <(steps)
  if [ ${#names[@]} -eq 0 ]; then
    names=(driver redis nats "${all_steps[@]}")
  fi
  local n
  for n in "${names[@]}"; do
    case " driver redis nats ${all_steps[*]} " in
      *" $n "*) ;;
      *) bad_usage "unknown image '$n' (known: driver redis nats ${all_steps[*]})" ;;
    esac
  done

  if [ $list = 1 ]; then
    for n in "${names[@]}"; do image_name "$n" "$TAG"; done
    return 0
  fi

  if [ $build = 0 ]; then
    [ -n "$values_out" ] || bad_usage "--no-build only makes sense with --values-out"
    [ "$PUSH" = 0 ] || bad_usage "--no-build and --push exclude each other"
    for n in "${names[@]}"; do
      docker image inspect "$(image_name "$n" "$TAG")" >/dev/null 2>&1 ||
        die "$(image_name "$n" "$TAG") is not built (run deploy/images.sh)"
    done
    write_values "$values_out" "${names[@]}"
    return 0
  fi
  "$ROOT/deploy/docker-base.sh" all
  detect_builder
  if [ -n "$PLATFORM" ] && [ "$BUILDX" = 0 ]; then
    die "--platform needs docker buildx (Debian: apt-get install docker-buildx; or Docker's buildx plugin)"
  fi
  log "builder: $([ "$BUILDX" = 1 ] && printf 'buildx' || printf 'docker build (classic)')${PROVENANCE[*]:+, ${PROVENANCE[*]}}"
  BUILD_DIR=$ROOT/build/images
  mkdir -p "$BUILD_DIR"
  BUILD_LOG=$ROOT/build/images-build.log
  : >"$BUILD_LOG"
  local start=$SECONDS target
  for n in "${names[@]}"; do
    case $n in
      driver|redis|nats) build "$n" "$n" "$(image_name "$n" "$TAG")" ;;
      *)
        target=function
        case " $DATA_STEPS " in *" $n "*) target=function-data ;; esac
        build "$n" "$target" "$(image_name "$n" "$TAG")" --build-arg FUNCTION="$n"
        ;;
    esac
  done
  log "built ${#names[@]} images in $((SECONDS - start))s"

  if [ -z "$PLATFORM" ] || [ "$PUSH" = 0 ]; then
    printf '%-52s %10s\n' IMAGE SIZE
    local img size
    for n in "${names[@]}"; do
      img=$(image_name "$n" "$TAG")
      size=$(docker image inspect -f '{{.Size}}' "$img" 2>/dev/null || echo 0)
      printf '%-52s %10s\n' "$img" "$(human "$size")"
    done
  fi
  if [ -n "$values_out" ]; then write_values "$values_out" "${names[@]}"; fi
  # How the function images split (printed by the builder when it ran now;
  # nothing when the builder came from the cache).
  grep '^collect-runtime:' "$BUILD_LOG" | sort -u || true
}

main "$@"
