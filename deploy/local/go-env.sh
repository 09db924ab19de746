# shellcheck shell=bash
# The Go build environment every docgraph build script uses (source it with CACHE
# set): module and build caches under $CACHE, only the module proxy (no toolchain
# download: GOTOOLCHAIN=local), static binaries.  GO_EXTRA_FLAGS adds to GOFLAGS.
export GOPATH="${DOCGRAPH_GOPATH:-$CACHE/go}"
export GOMODCACHE="$GOPATH/pkg/mod"
export GOCACHE="${DOCGRAPH_GOCACHE:-$CACHE/go/build-cache}"
export GOFLAGS="-modcacherw -buildvcs=false${GO_EXTRA_FLAGS:+ $GO_EXTRA_FLAGS}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
