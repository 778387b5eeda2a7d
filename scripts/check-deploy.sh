#!/usr/bin/env bash
# Checks the deployment files without a container engine or a cluster, and without Kafka or
# Redis: the Helm chart (lint, render for every values profile, validate every rendered
# object against its JSON schema), the alert rules (promtool), YAML style (yamllint), the
# Dockerfile, and the consistency of docker-compose.yml with the chart and of the Grafana
# dashboard (node tests under test/unit/deploy/).
#
# usage: scripts/check-deploy.sh
#
# helm and kubeconform are built once with `go install` into $CACHE_DIR/go (GOPATH, module
# and build caches too), so later runs build nothing. The Kubernetes schemas come from the Go
# modules helm is built from (helm/ci/k8s-schemas.mjs), the CRD schemas from helm/ci/schemas/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

# Pinned so that a warm cache is reused (the latest releases when these were chosen).
HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0

CHART=helm/stream-template
PROFILES=(helm/ci/*.yaml)
# The CRDs the chart's optional objects need; the chart renders ServiceMonitor and
# PrometheusRule only when the cluster serves them.
API_VERSIONS=(--api-versions monitoring.coreos.com/v1/ServiceMonitor --api-versions monitoring.coreos.com/v1/PrometheusRule)
# What docs/operations.md says the image runs.
IMAGE_BASE=node:24-bookworm-slim
IMAGE_CMD='["node","dist/main.js"]'

ensure_node
export PATH="$ROOT/node_modules/.bin:$PATH"
[ -d node_modules/yaml ] || die "node_modules is missing or stale: run npm run setup"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { log "FAIL: $*"; failures=$((failures + 1)); }

# ---- tools -------------------------------------------------------------------------------
apt_install yamllint prometheus

export GOPATH="$CACHE_DIR/go" GOMODCACHE="$CACHE_DIR/go/pkg/mod" GOCACHE="$CACHE_DIR/go/build-cache"
export GOBIN="$GOPATH/bin" GOFLAGS=-modcacherw
HELM=$GOBIN/helm
KUBECONFORM=$GOBIN/kubeconform

# The module version a Go binary was built from, or nothing.
built_version() { [ -x "$1" ] && go version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'; }

command -v go >/dev/null || die "Go is needed to build helm and kubeconform: install Go >= 1.24 (https://go.dev/dl/)"
# helm's default Kubernetes version is the client-go minor it is built with (as its Makefile does).
helm_gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
client_go=$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$helm_gomod")
[[ $client_go =~ ^v0\.([0-9]+)\.[0-9]+$ ]] || die "cannot tell the client-go version of helm $HELM_VERSION from $helm_gomod"
KUBE_VERSION=1.${BASH_REMATCH[1]}.0

if [ "$(built_version "$HELM")" != "$HELM_VERSION" ]; then
  log "building helm $HELM_VERSION (once, into $GOBIN)"
  pkg=helm.sh/helm/v3
  go install -ldflags "-X $pkg/internal/version.version=$HELM_VERSION \
    -X $pkg/pkg/chartutil.k8sVersionMajor=1 -X $pkg/pkg/chartutil.k8sVersionMinor=${BASH_REMATCH[1]} \
    -X $pkg/pkg/lint/rules.k8sVersionMajor=1 -X $pkg/pkg/lint/rules.k8sVersionMinor=${BASH_REMATCH[1]}" \
    "$pkg/cmd/helm@$HELM_VERSION"
fi
if [ "$(built_version "$KUBECONFORM")" != "$KUBECONFORM_VERSION" ]; then
  log "building kubeconform $KUBECONFORM_VERSION (once, into $GOBIN)"
  go install -ldflags "-X main.version=$KUBECONFORM_VERSION" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
fi

# Kubernetes schemas for the API helm targets, generated once per client-go version.
K8S_SCHEMAS=$CACHE_DIR/kube-schemas/client-go-$client_go
if [ ! -f "$K8S_SCHEMAS/.complete" ]; then
  log "writing Kubernetes $KUBE_VERSION JSON schemas into $K8S_SCHEMAS"
  dirs=$(go mod download -json "k8s.io/client-go@$client_go" "k8s.io/cli-runtime@$client_go" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  read -r -d '' client_go_dir cli_runtime_dir <<<"$dirs" || true
  rm -rf "$K8S_SCHEMAS"
  node helm/ci/k8s-schemas.mjs "$client_go_dir" "$cli_runtime_dir" "$K8S_SCHEMAS" >&2
  touch "$K8S_SCHEMAS/.complete"
fi

# ---- YAML style --------------------------------------------------------------------------
log "yamllint"
yamllint --strict -c .yamllint docker-compose.yml deploy "$CHART/Chart.yaml" "$CHART/values.yaml" "$CHART/files" helm/ci \
  || fail "yamllint"

# ---- chart: lint, render, validate -------------------------------------------------------
log "helm lint, helm template | kubeconform (Kubernetes $KUBE_VERSION)"
"$HELM" lint --strict --kube-version "$KUBE_VERSION" "$CHART" >"$tmp/lint.log" 2>&1 || { cat "$tmp/lint.log" >&2; fail "helm lint"; }

render() { "$HELM" template ci "$CHART" --namespace streaming --kube-version "$KUBE_VERSION" "${API_VERSIONS[@]}" "$@"; }
validate() {
  "$KUBECONFORM" -strict -summary \
    -schema-location "$K8S_SCHEMAS/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    -schema-location "$ROOT/helm/ci/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    -output text -
}
for profile in default "${PROFILES[@]}"; do
  args=()
  [ "$profile" = default ] || args=(-f "$profile")
  if [ "$profile" != default ]; then
    "$HELM" lint --strict --kube-version "$KUBE_VERSION" "$CHART" "${args[@]}" >"$tmp/lint.log" 2>&1 \
      || { cat "$tmp/lint.log" >&2; fail "helm lint -f $profile"; }
  fi
  if render "${args[@]}" >"$tmp/rendered.yaml" 2>"$tmp/render.log"; then
    printf '  %-26s ' "$profile" >&2
    validate <"$tmp/rendered.yaml" >&2 || fail "kubeconform: $profile"
  else
    cat "$tmp/render.log" >&2
    fail "helm template: $profile"
  fi
  if [ "$profile" = helm/ci/monitoring.yaml ]; then cp "$tmp/rendered.yaml" "$tmp/monitoring.yaml"; fi
done

# Settings that must be refused, with the message that says why.
expect_refusal() {
  local want=$1
  shift
  if render "$@" >/dev/null 2>"$tmp/refusal.log"; then
    fail "helm template $* rendered; expected it to fail with: $want"
  elif ! grep -qF "$want" "$tmp/refusal.log"; then
    cat "$tmp/refusal.log" >&2
    fail "helm template $* failed without: $want"
  fi
}
expect_refusal "enable one or the other" --set autoscaling.keda.enabled=true --set autoscaling.hpa.enabled=true
expect_refusal "maxReplicaCount (8) exceeds kafka.partitions (6)" --set autoscaling.keda.enabled=true --set autoscaling.keda.maxReplicaCount=8
expect_refusal "maxReplicas (12) exceeds kafka.partitions (6)" --set autoscaling.hpa.enabled=true --set autoscaling.hpa.maxReplicas=12
expect_refusal "replicaCount (7) exceeds kafka.partitions (6)" --set replicaCount=7
expect_refusal "must exceed shutdownGraceMs" --set terminationGracePeriodSeconds=20
expect_refusal "minimum: got 0, want 1" --set autoscaling.keda.minReplicaCount=0

# Without the Prometheus Operator's CRDs the monitoring objects are left out, not failed on.
if "$HELM" template ci "$CHART" --kube-version "$KUBE_VERSION" -f helm/ci/monitoring.yaml | grep -qE '^kind: (ServiceMonitor|PrometheusRule)$'; then
  fail "ServiceMonitor/PrometheusRule rendered although the cluster has no monitoring.coreos.com/v1"
fi

# ---- alert rules ---------------------------------------------------------------------------
log "promtool check rules"
promtool check rules "$CHART/files/alerts.yaml" >"$tmp/promtool.log" 2>&1 || { cat "$tmp/promtool.log" >&2; fail "promtool: $CHART/files/alerts.yaml"; }
# The groups as the chart ships them, taken out of the rendered PrometheusRule.
node --input-type=module -e '
  import { readFileSync, writeFileSync } from "node:fs";
  import { parseAllDocuments } from "yaml";
  const rule = parseAllDocuments(readFileSync(process.argv[1], "utf8")).map((d) => d.toJS()).find((o) => o?.kind === "PrometheusRule");
  if (!rule) { console.error("no PrometheusRule in the monitoring profile"); process.exit(1); }
  writeFileSync(process.argv[2], JSON.stringify({ groups: rule.spec.groups }));
' "$tmp/monitoring.yaml" "$tmp/rendered-rules.json" || fail "extracting the PrometheusRule"
promtool check rules "$tmp/rendered-rules.json" >"$tmp/promtool.log" 2>&1 || { cat "$tmp/promtool.log" >&2; fail "promtool: rendered PrometheusRule"; }

# ---- Dockerfile ----------------------------------------------------------------------------
log "Dockerfile"
if apt-cache policy hadolint 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  apt_install hadolint
  hadolint Dockerfile || fail "hadolint"
fi
# hadolint is not packaged for Debian: check what matters here. Instructions are joined across
# line continuations, comments dropped, keywords upper-cased.
awk '
  /^[[:space:]]*#/ { next }
  { line = line $0 }
  /\\[[:space:]]*$/ { sub(/\\[[:space:]]*$/, "", line); next }
  line ~ /[^[:space:]]/ { kw = line; sub(/^[[:space:]]*/, "", kw); split(kw, w, /[[:space:]]+/); sub(/^[^[:space:]]+/, toupper(w[1]), kw); print kw }
  { line = "" }
' Dockerfile >"$tmp/instructions"
grep '^FROM ' "$tmp/instructions" >"$tmp/from" || true
[ -s "$tmp/from" ] || fail "Dockerfile: no FROM"
# Every stage on the runtime's base, so the native addon is compiled against the same libc.
while read -r _ image _; do
  [ "$image" = "$IMAGE_BASE" ] || fail "Dockerfile: stage FROM $image, expected $IMAGE_BASE (build and runtime on one base)"
done <"$tmp/from"
[ "$(wc -l <"$tmp/from")" -ge 2 ] || fail "Dockerfile: not multi-stage"
# The runtime stage: from the last FROM on.
awk '/^FROM /{ buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' "$tmp/instructions" >"$tmp/runtime"
user=$(sed -n 's/^USER[[:space:]]*//p' "$tmp/runtime" | tail -n 1)
case "${user%%:*}" in
  "") fail "Dockerfile: the runtime stage has no USER (it would run as root)" ;;
  root | 0) fail "Dockerfile: the runtime stage runs as $user" ;;
esac
entrypoint=$(sed -n 's/^ENTRYPOINT[[:space:]]*//p' "$tmp/runtime" | tail -n 1 | tr -d '[:space:]')
[[ $entrypoint =~ ^\[\"[^\"]*/(tini|dumb-init)\" ]] || fail "Dockerfile: ENTRYPOINT $entrypoint is not tini or dumb-init in exec form"
cmd=$(sed -n 's/^CMD[[:space:]]*//p' "$tmp/runtime" | tail -n 1 | tr -d '[:space:]')
[ "$cmd" = "$IMAGE_CMD" ] || fail "Dockerfile: CMD $cmd, expected $IMAGE_CMD"
if grep -qiE '^ADD[[:space:]].*(https?|ftp)://' "$tmp/instructions"; then fail "Dockerfile: ADD of a URL (use RUN with a checksum)"; fi
grep -q 'npm prune --omit=dev' "$tmp/instructions" || fail "Dockerfile: no 'npm prune --omit=dev': dev dependencies would ship"
for entry in node_modules .git .run build dist; do
  grep -qxE "/?${entry//./\\.}/?" .dockerignore || fail ".dockerignore does not exclude $entry"
done

# ---- compose consistency and dashboard -----------------------------------------------------
log "docker-compose.yml against the chart; the dashboard"
node --experimental-strip-types --disable-warning=ExperimentalWarning --test test/unit/deploy/*.test.ts >"$tmp/node-test.log" 2>&1 \
  || { cat "$tmp/node-test.log" >&2; fail "test/unit/deploy"; }

[ "$failures" -eq 0 ] || die "$failures deployment check(s) failed"
log "deployment checks passed"
