#!/usr/bin/env bash
# Builds docgraph-otelcol (this folder) and prints the binary's path on stdout.
#
#   BIN="$(deploy/local/otelcol/build.sh)"
#   "$BIN" validate --config otel-collector.yaml
#
# Idempotent: the binary is $CACHE/bin/docgraph-otelcol-<hash>, where <hash> is
# the first 16 hex digits of sha256(go.mod go.sum *.go); if it exists, nothing
# is built. Same cache layout as deploy/local/services.sh (go_env), so the
# collector packages Jaeger v1.76.0 compiled come from the build cache:
#   CACHE      ${DOCGRAPH_CACHE:-$HOME/.cache/docgraph}
#   GOPATH     ${DOCGRAPH_GOPATH:-$CACHE/go}   (GOMODCACHE=$GOPATH/pkg/mod)
#   GOCACHE    ${DOCGRAPH_GOCACHE:-$CACHE/go/build-cache}
#   -p         ${DOCGRAPH_BUILD_JOBS:-2}
# Progress and the build time go to stderr (and $CACHE/logs/build-otelcol.log).
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${DOCGRAPH_CACHE:-$HOME/.cache/docgraph}"
BIN="$CACHE/bin"
JOBS="${DOCGRAPH_BUILD_JOBS:-2}"

say() { echo "[docgraph-otelcol] $*" >&2; }

# The cache key: what the binary is built from (deploy/local/services.sh calls this script).
hash="$(cd "$SRC" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)"
out="$BIN/docgraph-otelcol-$hash"
if [ -x "$out" ]; then
    echo "$out"
    exit 0
fi

command -v go >/dev/null 2>&1 || { say "go is not installed (go.mod needs Go >= 1.24.6)"; exit 1; }
# the local Go must be >= the go line of go.mod (1.24.6): no toolchain download here
# shellcheck source=../go-env.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../go-env.sh"

mkdir -p "$BIN" "$CACHE/logs"
log="$CACHE/logs/build-otelcol.log"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
say "building $out ($(go version | cut -d' ' -f3), -p $JOBS; log: $log) ..."
start=$(date +%s)
rc=0
# -mod=readonly (go build's default): go.mod/go.sum are the pins, never rewritten.
(cd "$SRC" && go build -p "$JOBS" -mod=readonly -trimpath -ldflags "-s -w" -o "$tmp" .) >"$log" 2>&1 || rc=$?
secs=$(( $(date +%s) - start ))
if [ "$rc" -ne 0 ]; then
    say "build failed (rc=$rc) after ${secs}s; last 40 lines of $log:"
    tail -n 40 "$log" >&2
    exit "$rc"
fi
mv -f "$tmp" "$out"   # atomic: a half-written binary is never taken for a built one
say "built in ${secs}s"
echo "$out"
