#!/usr/bin/env bash
# steps.sh - the step functions, read from src/steps/steps.def, where the
# list is stated once (CMake builds bin/spirt-fn-<step> from the same lines).
# Images, kind-up, the container smoke test and check-manifests take their
# step list from here.
#
#   scripts/steps.sh          one step name a line (init, minibatch, ...)
#   scripts/steps.sh --json   a JSON array: ["init","minibatch",...]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEF=$ROOT/src/steps/steps.def

[ -r "$DEF" ] || { printf 'steps: %s is missing\n' "$DEF" >&2; exit 1; }
mapfile -t names < <(sed -n 's/^STEP(\([a-z0-9_]*\),.*/\1/p' "$DEF")
[ ${#names[@]} -gt 0 ] || { printf 'steps: no STEP(...) line in %s\n' "$DEF" >&2; exit 1; }

case ${1:-} in
  "") printf '%s\n' "${names[@]}" ;;
  --json)
    out=""
    for s in "${names[@]}"; do out="$out,\"$s\""; done
    printf '[%s]\n' "${out#,}"
    ;;
  *) printf 'usage: scripts/steps.sh [--json]\n' >&2; exit 2 ;;
esac
