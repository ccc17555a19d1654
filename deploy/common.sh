# shellcheck shell=bash
# common.sh - sourced by deploy/*.sh and scripts/smoke-containers.sh, not run
# by itself: what they read from the source tree. Needs ROOT (the repository).

# The project VERSION in CMakeLists.txt: the default image tag.
project_version() {
  sed -n 's/^project(spirt VERSION \([0-9][0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt" | head -n 1
}

# The step functions present in this tree (functions/<step>/main.c), one a line.
steps() {
  local m s
  for m in "$ROOT"/functions/*/main.c; do
    [ -e "$m" ] || continue
    s=${m%/main.c}
    printf '%s\n' "${s##*/}"
  done
}
