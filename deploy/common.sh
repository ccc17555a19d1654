# shellcheck shell=bash
# common.sh - sourced by deploy/*.sh and scripts/smoke-containers.sh, not run
# by itself: what they read from the source tree. Needs ROOT (the repository).

# The project VERSION in CMakeLists.txt: the default image tag.
project_version() {
  sed -n 's/^project(spirt VERSION \([0-9][0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt" | head -n 1
}

# The step functions of this tree (src/steps/steps.def), one a line.
steps() { "$ROOT/scripts/steps.sh"; }
