#!/usr/bin/env bash
# Create (or update) the project's virtualenv in .venv with everything docgraph
# and its tests need.  Idempotent; downloads are cached in ~/.cache (uv, pip).
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$HOME/.local/bin:$PATH"

# OCR (docs/extract.md): Debian's Tesseract with English data, and a TrueType font
# for the tests' generated scans. Skipped when present; without root (or sudo) or
# apt, a warning: docgraph then refuses scans with "needs OCR", and the OCR tests fail.
ocr_packages=()
command -v tesseract >/dev/null 2>&1 || ocr_packages+=(tesseract-ocr)
[ -e /usr/share/tesseract-ocr/5/tessdata/eng.traineddata ] || [ -e /usr/share/tesseract-ocr/4.00/tessdata/eng.traineddata ] \
  || ocr_packages+=(tesseract-ocr-eng)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || ocr_packages+=(fonts-dejavu-core)
if [ "${#ocr_packages[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$sudo" ] || sudo -n true 2>/dev/null; }; then
    $sudo apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${ocr_packages[@]}" >/dev/null \
      || echo "setup.sh: warning: could not install ${ocr_packages[*]} (OCR unavailable)" >&2
  else
    echo "setup.sh: warning: install ${ocr_packages[*]} for OCR (apt-get needs root or sudo)" >&2
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
