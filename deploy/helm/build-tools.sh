#!/usr/bin/env bash
# Build the tools the chart's tests need, once, into $DOCGRAPH_CACHE/bin:
#
#   helm-v3.22.0          helm.sh/helm/v3 from the Go module proxy
#   keda-check-<hash>     deploy/helm/keda-check: KEDA v2.18.1's own
#                         redis-streams scaler + scalingModifiers code
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

say() { echo "build-tools: $*" >&2; }
die() { say "$*"; exit 1; }

export GOPATH="${DOCGRAPH_GOPATH:-$CACHE/go}"
export GOMODCACHE="$GOPATH/pkg/mod"
export GOCACHE="${DOCGRAPH_GOCACHE:-$CACHE/go/build-cache}"
export GOFLAGS="-modcacherw -buildvcs=false -mod=mod"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
command -v go >/dev/null 2>&1 || die "go is not installed (apt-get install golang-go, or go.dev/dl)"
mkdir -p "$BIN" "$LOGS"

# build DIR PKG OUT LOG: go build inside DIR, atomically into OUT
build() {
    local dir="$1" pkg="$2" out="$3" log="$4" start rc=0
    start=$(date +%s)
    (cd "$dir" && go build -p "$JOBS" -trimpath -ldflags "-s -w" -o "$out.tmp" "$pkg") >"$log" 2>&1 || rc=$?
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
    GOFLAGS="-modcacherw -buildvcs=false -mod=readonly" build "$dir" ./cmd/helm "$HELM" "$LOGS/build-helm.log"
fi

# --- keda-check ------------------------------------------------------------------
SRC="$SCRIPT_DIR/keda-check"
stamp="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC"/*.go | sha256sum | cut -c1-12)"
KEDA_CHECK="$BIN/keda-check-$stamp"
if [ ! -x "$KEDA_CHECK" ]; then
    say "building keda-check against KEDA v2.18.1's pkg/scalers (first time only; the module graph is large)"
    build "$SRC" . "$KEDA_CHECK" "$LOGS/build-keda-check.log"
fi

echo "export DOCGRAPH_TEST_HELM_BIN=$HELM"
echo "export DOCGRAPH_TEST_KEDA_CHECK_BIN=$KEDA_CHECK"
