#!/usr/bin/env bash
# A Docker engine and the Compose v2 plugin for docgraph's image, compose stack
# and testcontainers tests -- no container registry, only Debian's apt and the
# Go module proxy.
#
#   deploy/docker/engine.sh          install docker.io + debootstrap (apt) if missing,
#                                    start dockerd if it is not answering,
#                                    build `docker buildx` and `docker compose` into ~/.docker/cli-plugins
#
# Idempotent: a second run with everything in place takes well under a second.
# The plugins are cached as $CACHE/bin/docker-{buildx,compose}-<version> (the
# version is the cache key) and linked into the CLI plugin directory.
#   DOCGRAPH_CACHE            (default ~/.cache/docgraph)
#   DOCGRAPH_COMPOSE_VERSION  (default v2.40.3), DOCGRAPH_BUILDX_VERSION (default v0.29.1)
#   DOCGRAPH_DOCKER_ROOT      dockerd --data-root (default /var/lib/docker)
set -euo pipefail

CACHE="${DOCGRAPH_CACHE:-$HOME/.cache/docgraph}"
BIN="$CACHE/bin"
COMPOSE_MODULE=github.com/docker/compose/v2
COMPOSE_VERSION="${DOCGRAPH_COMPOSE_VERSION:-v2.40.3}"
BUILDX_MODULE=github.com/docker/buildx
BUILDX_VERSION="${DOCGRAPH_BUILDX_VERSION:-v0.29.1}"   # the version compose v2.40.3 itself is built with
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

# go_plugin NAME MODULE VERSION PKG LDFLAGS: builds a Docker CLI plugin from the
# Go module proxy into $BIN/docker-NAME-VERSION (cached) and links it into the
# CLI plugin directory. Like deploy/local/services.sh: built inside the
# unpacked module, so its go.mod (replace directives included) and go.sum pin
# every dependency.
go_plugin() {
    local name="$1" module="$2" version="$3" pkg="$4" ldflags="$5"
    local out="$BIN/docker-$name-$version"
    if [ ! -x "$out" ]; then
        command -v go >/dev/null 2>&1 || die "go is not installed (needed to build docker $name)"
        # shellcheck source=../local/go-env.sh
        . "$(dirname "${BASH_SOURCE[0]}")/../local/go-env.sh"
        mkdir -p "$BIN" "$LOG_DIR"
        local log="$LOG_DIR/build-$name.log" dir start rc=0
        start=$(date +%s)
        say "building docker $name $version (go, log: $log) ..."
        {
            dir="$(cd /tmp && go mod download -json "$module@$version" \
                | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" \
                && cd "$dir" \
                && go build -p "$JOBS" -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg"
        } >"$log" 2>&1 || rc=$?
        printf '%s\t%s\t%ss\trc=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "docker $name $version (go)" \
            "$(( $(date +%s) - start ))" "$rc" >>"$LOG_DIR/build-times.log"
        if [ "$rc" -ne 0 ]; then tail -n 40 "$log" >&2; die "building docker $name failed"; fi
        mv -f "$out.tmp" "$out"   # atomic: a half-written binary is never taken for a built one
        say "built docker $name in $(( $(date +%s) - start ))s"
    fi
    mkdir -p "$PLUGIN_DIR"
    if [ "$(readlink "$PLUGIN_DIR/docker-$name" 2>/dev/null)" != "$out" ]; then
        ln -sfn "$out" "$PLUGIN_DIR/docker-$name"
    fi
    docker "$name" version >/dev/null || die "docker $name does not run"
}

install_packages
start_dockerd
# buildx: the docker CLI builds with BuildKit only through it (build secrets, RUN --mount).
go_plugin buildx "$BUILDX_MODULE" "$BUILDX_VERSION" ./cmd/buildx \
    "-X $BUILDX_MODULE/version.Version=$BUILDX_VERSION -X $BUILDX_MODULE/version.Package=$BUILDX_MODULE"
go_plugin compose "$COMPOSE_MODULE" "$COMPOSE_VERSION" ./cmd "-X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION"
say "ready: $(docker version --format 'engine {{.Server.Version}}'), buildx $(docker buildx version | cut -d' ' -f2), compose $(docker compose version --short)"
