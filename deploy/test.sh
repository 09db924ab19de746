#!/usr/bin/env bash
# Set everything up and run the whole test suite against real servers.
# In CI (DOCGRAPH_CI=1) any skipped test counts as a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
if [ -x deploy/local/services.sh ]; then
  ./deploy/local/services.sh up all
  eval "$(./deploy/local/services.sh env)"
fi
eval "$(./deploy/helm/build-tools.sh)"   # helm + keda-check (KEDA's scaler) for tests/deploy, cached
./deploy/docker/build.sh services >/dev/null  # dockerd + compose (engine.sh), base, docgraph and service images: tests/deploy
ruff check .
ruff format --check .
mypy core plugins
python -m pytest -q --durations=25 "$@"   # the slowest tests are listed: a slow one is a defect to find
