#!/usr/bin/env bash
# images.sh - the image build, under scripts/ with the project's other entry
# points: everything is done by deploy/images.sh (see its --help).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case ${1:-} in
  -h|--help)
    printf 'scripts/images.sh: same options as deploy/images.sh, which it runs:\n\n'
    exec "$ROOT/deploy/images.sh" --help
    ;;
esac
exec "$ROOT/deploy/images.sh" "$@"
