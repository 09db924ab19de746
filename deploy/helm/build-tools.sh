#!/usr/bin/env bash
# Build the tools the chart's tests need, once, into $DOCGRAPH_CACHE/bin:
#
#   helm-v3.22.0          helm.sh/helm/v3 from the Go module proxy
#   keda-check-<hash>     deploy/helm/keda-check: KEDA v2.18.1's own
#                         redis-streams scaler + scalingModifiers code
#
# and finds KEDA's CRDs in the module cache (DOCGRAPH_TEST_KEDA_CRDS).
#
# Idempotent: a binary that exists is not rebuilt (keda-check's name carries a
# hash of its sources, go.mod and go.sum, so an edit rebuilds it). Prints
# `export DOCGRAPH_TEST_HELM_BIN=...` and `export DOCGRAPH_TEST_KEDA_CHECK_BIN=...`
# on stdout (everything else goes to stderr), so
#
#   eval "$(deploy/helm/build-tools.sh)"
#
# sets up the environment for tests/deploy. Go caches are those of
# deploy/local/services.sh ($DOCGRAPH_CACHE/go): GOPATH, module cache, build cache.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${DOCGRAPH_CACHE:-$HOME/.cache/docgraph}"
BIN="$CACHE/bin"
LOGS="$CACHE/logs"
JOBS="${DOCGRAPH_BUILD_JOBS:-2}"   # the CI machine has 2 cores
HELM_MODULE=helm.sh/helm/v3
HELM_VERSION="${DOCGRAPH_HELM_VERSION:-v3.22.0}"
KEDA_VERSION=v2.18.1   # must match deploy/helm/keda-check/go.mod

say() { echo "build-tools: $*" >&2; }
die() { say "$*"; exit 1; }

GO_EXTRA_FLAGS="-mod=mod"
# shellcheck source=../local/go-env.sh
. "$SCRIPT_DIR/../local/go-env.sh"
command -v go >/dev/null 2>&1 || die "go is not installed (apt-get install golang-go, or go.dev/dl)"
mkdir -p "$BIN" "$LOGS"

# build DIR PKG OUT LOG [LDFLAGS]: go build inside DIR, atomically into OUT
build() {
    local dir="$1" pkg="$2" out="$3" log="$4" ldflags="${5:-}" start rc=0
    start=$(date +%s)
    (cd "$dir" && go build -p "$JOBS" -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg") >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        tail -n 40 "$log" >&2
        rm -f "$out.tmp"
        die "building $out failed (log: $log)"
    fi
    mv -f "$out.tmp" "$out"
    say "built $out in $(( $(date +%s) - start )) s"
}

# --- helm ----------------------------------------------------------------------
HELM="$BIN/helm-$HELM_VERSION"
if [ ! -x "$HELM" ]; then
    say "building helm $HELM_VERSION (first time only)"
    # Built inside the unpacked module (not `go install`), as services.sh does:
    # the module's own go.mod/go.sum pin exactly the upstream dependency set.
    dir="$(cd /tmp && go mod download -json "$HELM_MODULE@$HELM_VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [ -n "$dir" ] && [ -d "$dir" ] || die "go mod download $HELM_MODULE@$HELM_VERSION gave no directory"
    # the -X flags of helm's Makefile: its version, and the Kubernetes version
    # `helm template` assumes (that of its client-go, instead of v1.20)
    k8s_minor="$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$dir/go.mod" | head -1)"
    [ -n "$k8s_minor" ] || die "no k8s.io/client-go version in $dir/go.mod"
    v=helm.sh/helm/v3
    GOFLAGS="-modcacherw -buildvcs=false -mod=readonly" build "$dir" ./cmd/helm "$HELM" "$LOGS/build-helm.log" \
        "-X $v/internal/version.version=$HELM_VERSION -X $v/internal/version.gitTreeState=clean \
         -X $v/pkg/lint/rules.k8sVersionMajor=1 -X $v/pkg/lint/rules.k8sVersionMinor=$k8s_minor \
         -X $v/pkg/chartutil.k8sVersionMajor=1 -X $v/pkg/chartutil.k8sVersionMinor=$k8s_minor"
fi

# --- keda-check ------------------------------------------------------------------
SRC="$SCRIPT_DIR/keda-check"
stamp="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC"/*.go | sha256sum | cut -c1-12)"
KEDA_CHECK="$BIN/keda-check-$stamp"
if [ ! -x "$KEDA_CHECK" ]; then
    say "building keda-check against KEDA v2.18.1's pkg/scalers (first time only; the module graph is large)"
    build "$SRC" . "$KEDA_CHECK" "$LOGS/build-keda-check.log"
fi

# KEDA's CRDs (the ScaledObject / TriggerAuthentication schemas) from the same module
keda_dir="$(cd /tmp && go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -f "$keda_dir/config/crd/bases/keda.sh_scaledobjects.yaml" ] || die "no KEDA CRDs under '$keda_dir'"

echo "export DOCGRAPH_TEST_HELM_BIN=$HELM"
echo "export DOCGRAPH_TEST_KEDA_CHECK_BIN=$KEDA_CHECK"
echo "export DOCGRAPH_TEST_KEDA_CRDS=$keda_dir/config/crd/bases"
