#!/usr/bin/env bash
# Set everything up and run the main job on the embedded default:
# documents in, graph and summary out.  Usage: deploy/run.sh [PATH...]
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
if [ "$#" -eq 0 ]; then set -- examples/docs; fi
exec docgraph run "$@"
