#!/usr/bin/env bash
# Refresh the dashboard's vendored htmx from the npm registry: deploy/ui/vendor-htmx.sh 2.0.11
set -euo pipefail
version="${1:?usage: $0 <htmx version>}"
dest="$(cd "$(dirname "$0")/../.." && pwd)/core/api/ui/static"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "htmx.org@$version" --silent >/dev/null && tar xzf htmx.org-*.tgz)
cp "$tmp/package/dist/htmx.min.js" "$dest/htmx.min.js"
cp "$tmp/package/LICENSE" "$dest/htmx.LICENSE"
sed -i "s/htmx [0-9][0-9.]*/htmx $version/" "$dest/README.md"
echo "htmx $version -> $dest"
