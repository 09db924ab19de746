#!/usr/bin/env bash
# A Docker engine and the Compose v2 plugin for docgraph's image, compose stack
# and testcontainers tests -- no container registry, only Debian's apt and the
# Go module proxy.
#
#   deploy/docker/engine.sh          install docker.io + debootstrap (apt) if missing,
#                                    start dockerd if it is not answering,
#                                    build `docker compose` into ~/.docker/cli-plugins
#
# Idempotent: a second run with everything in place takes well under a second.
# The compose binary is cached as $CACHE/bin/docker-compose-<version> (the
# version is the cache key) and linked into the CLI plugin directory.
#   DOCGRAPH_CACHE            (default ~/.cache/docgraph)
#   DOCGRAPH_COMPOSE_VERSION  (default v2.40.3)
#   DOCGRAPH_DOCKER_ROOT      dockerd --data-root (default /var/lib/docker)
set -euo pipefail

CACHE="${DOCGRAPH_CACHE:-$HOME/.cache/docgraph}"
BIN="$CACHE/bin"
COMPOSE_MODULE=github.com/docker/compose/v2
COMPOSE_VERSION="${DOCGRAPH_COMPOSE_VERSION:-v2.40.3}"
COMPOSE_BIN="$BIN/docker-compose-$COMPOSE_VERSION"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
DATA_ROOT="${DOCGRAPH_DOCKER_ROOT:-/var/lib/docker}"
LOG_DIR="$CACHE/logs"
JOBS="${DOCGRAPH_BUILD_JOBS:-2}"

say() { printf 'docgraph-engine: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    [ "${#missing[@]}" -eq 0 ] && return 0
    say "installing ${missing[*]} (apt) ..."
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

engine_up() { docker info >/dev/null 2>&1; }

start_dockerd() {
    engine_up && return 0
    mkdir -p "$LOG_DIR"
    say "starting dockerd (data root $DATA_ROOT, log $LOG_DIR/dockerd.log) ..."
    # setsid: its own session, so it outlives this script and the CI step's
    # process group. Only the unix socket: no TCP listener at all.
    as_root setsid dockerd --data-root "$DATA_ROOT" --host unix:///var/run/docker.sock \
        </dev/null >>"$LOG_DIR/dockerd.log" 2>&1 &
    for _ in $(seq 1 120); do
        engine_up && { say "dockerd is up"; return 0; }
        sleep 0.5
    done
    tail -n 30 "$LOG_DIR/dockerd.log" >&2 || true
    die "dockerd did not answer within 60 s"
}

build_compose() {
    if [ ! -x "$COMPOSE_BIN" ]; then
        command -v go >/dev/null 2>&1 || die "go is not installed (needed to build docker compose)"
        export GOPATH="${DOCGRAPH_GOPATH:-$CACHE/go}"
        export GOMODCACHE="$GOPATH/pkg/mod"
        export GOCACHE="${DOCGRAPH_GOCACHE:-$CACHE/go/build-cache}"
        export GOFLAGS="-modcacherw -buildvcs=false"
        export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
        export CGO_ENABLED=0
        mkdir -p "$BIN" "$LOG_DIR"
        local log="$LOG_DIR/build-compose.log" dir start rc=0
        start=$(date +%s)
        say "building docker compose $COMPOSE_VERSION (go, log: $log) ..."
        # Like deploy/local/services.sh: build inside the unpacked module so its
        # go.mod (replace directives included) and go.sum pin every dependency.
        {
            dir="$(cd /tmp && go mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" \
                | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" \
                && cd "$dir" \
                && go build -p "$JOBS" -trimpath \
                    -ldflags "-s -w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" \
                    -o "$COMPOSE_BIN.tmp" ./cmd
        } >"$log" 2>&1 || rc=$?
        printf '%s\t%s\t%ss\trc=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "docker compose $COMPOSE_VERSION (go)" \
            "$(( $(date +%s) - start ))" "$rc" >>"$LOG_DIR/build-times.log"
        if [ "$rc" -ne 0 ]; then tail -n 40 "$log" >&2; die "building docker compose failed"; fi
        mv -f "$COMPOSE_BIN.tmp" "$COMPOSE_BIN"
        say "built docker compose in $(( $(date +%s) - start ))s"
    fi
    mkdir -p "$PLUGIN_DIR"
    if [ "$(readlink "$PLUGIN_DIR/docker-compose" 2>/dev/null)" != "$COMPOSE_BIN" ]; then
        ln -sfn "$COMPOSE_BIN" "$PLUGIN_DIR/docker-compose"
    fi
    docker compose version >/dev/null || die "docker compose does not run"
}

install_packages
start_dockerd
build_compose
say "ready: $(docker version --format 'engine {{.Server.Version}}'), $(docker compose version --short 2>/dev/null | sed 's/^/compose /')"
