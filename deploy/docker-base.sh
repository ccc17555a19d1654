#!/usr/bin/env bash
# docker-base.sh - make sure a Docker engine runs and the Debian base image exists.
#
# The same Dockerfile must build on a normal workstation (engine running,
# Docker Hub reachable) and on an offline machine that only reaches Debian's
# package archive. So, in order:
#   1. engine: use the running one; else start dockerd (installing Debian's
#      docker.io first when it is missing and we are root);
#   2. base image: use a local debian:bookworm-slim; else try to pull it; else
#      build an equivalent one with `debootstrap --variant=minbase` and import it.
set -euo pipefail

BASE_IMAGE=${SPIRT_BASE_IMAGE:-debian:bookworm-slim}
SUITE=${SPIRT_BASE_SUITE:-bookworm}
# Archives: as given, else the ones this host's apt uses, else debootstrap's default.
MIRROR=${SPIRT_DEBIAN_MIRROR:-}
SECURITY_MIRROR=${SPIRT_DEBIAN_SECURITY_MIRROR:-}
DOCKERD_LOG=${SPIRT_DOCKERD_LOG:-/var/log/spirt-dockerd.log}

usage() {
  cat <<USAGE
Usage: deploy/docker-base.sh [engine|image|all]

  engine  make sure a Docker engine answers (start dockerd, installing
          Debian's docker.io when missing; needs root for that)
  image   make sure $BASE_IMAGE exists locally (pull it, or build it with
          debootstrap --variant=minbase $SUITE when no registry answers)
  all     both (default)

Environment:
  SPIRT_BASE_IMAGE              image name to provide (default debian:bookworm-slim)
  SPIRT_DEBIAN_MIRROR           archive for debootstrap (default: the one this
                                host's apt uses, else debootstrap's default)
  SPIRT_DEBIAN_SECURITY_MIRROR  security archive written into the image's sources
                                (default: this host's, else derived from the mirror)
  SPIRT_DOCKERD_LOG             where a dockerd started here logs (default $DOCKERD_LOG)
USAGE
}

log() { printf 'docker-base: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root_apt_install() {
  [ "$(id -u)" = 0 ] || die "$* missing and not root: install it (apt-get install $*)"
  command -v apt-get >/dev/null || die "$* missing and no apt-get: install it by hand"
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } ||
    die "could not install $*"
}

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

ensure_engine() {
  if command -v docker >/dev/null && engine_up; then
    return 0
  fi
  if ! command -v dockerd >/dev/null; then
    as_root_apt_install docker.io
  fi
  command -v docker >/dev/null || die "docker client missing after installing docker.io"
  [ "$(id -u)" = 0 ] || die "no Docker engine answers and starting dockerd needs root"
  log "starting dockerd (log: $DOCKERD_LOG)"
  # setsid: the engine must outlive this script (later builds and the smoke
  # test use it); its output goes to a log, never to our stdout.
  setsid dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
  local i
  for i in $(seq 1 60); do
    if engine_up; then
      log "dockerd is up after ${i}s"
      return 0
    fi
    sleep 1
  done
  tail -n 20 "$DOCKERD_LOG" >&2 || true
  die "dockerd did not answer within 60s"
}

# The archive URI this host's apt uses for suites matching $1 (a regex).
host_archive() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    # deb822: remember URIs, print them when a Suites line matches.
    awk -v re="$1" '
      /^[[:space:]]*$/ { uri = "" }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i ~ re && uri != "") { print uri; exit } }
    ' "$f"
  done
  if [ -e /etc/apt/sources.list ]; then
    awk -v re="$1" '$1 == "deb" && $3 ~ re { print $2; exit }' /etc/apt/sources.list
  fi
}

# Writes the same apt sources and size-saving dpkg excludes that the official
# slim image carries, so images built on either base behave alike.
configure_rootfs() {
  local root=$1
  mkdir -p "$root/etc/apt/sources.list.d" "$root/etc/dpkg/dpkg.cfg.d" "$root/etc/apt/apt.conf.d"
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
DPKG
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
  echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/docker-no-recommends"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*.log
}

ensure_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "$BASE_IMAGE present"
    return 0
  fi
  if timeout 60 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
    log "pulled $BASE_IMAGE"
    return 0
  fi
  log "$BASE_IMAGE not pullable: building it with debootstrap --variant=minbase $SUITE"
  command -v debootstrap >/dev/null || as_root_apt_install debootstrap
  [ "$(id -u)" = 0 ] || die "debootstrap needs root"
  local root
  root=$(mktemp -d /var/tmp/spirt-rootfs.XXXXXX)
  # shellcheck disable=SC2064  # expand now: $root is local
  trap "rm -rf '$root'" EXIT
  [ -n "$MIRROR" ] || MIRROR=$(host_archive "^$SUITE\$" | head -n 1)
  [ -n "$SECURITY_MIRROR" ] || SECURITY_MIRROR=$(host_archive "^$SUITE-security\$" | head -n 1)
  # No mirror argument: debootstrap picks its default archive.
  local mirror_arg=()
  if [ -n "$MIRROR" ]; then mirror_arg=("$MIRROR"); fi
  debootstrap --variant=minbase "$SUITE" "$root" "${mirror_arg[@]}" >"$root.log" 2>&1 ||
    { tail -n 20 "$root.log" >&2; die "debootstrap failed (log: $root.log)"; }
  rm -f "$root.log"
  if [ -z "$MIRROR" ]; then
    MIRROR=$(awk '$1 == "deb" { print $2; exit }' "$root/etc/apt/sources.list")
  fi
  [ -n "$SECURITY_MIRROR" ] || SECURITY_MIRROR=${MIRROR%/debian}/debian-security
  configure_rootfs "$root"
  tar -C "$root" -c . | docker import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
  trap - EXIT
  log "imported $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE") bytes)"
}

main() {
  local what=${1:-all}
  case $what in
    -h|--help) usage ;;
    engine) ensure_engine ;;
    image) ensure_image ;;
    all) ensure_engine; ensure_image ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
