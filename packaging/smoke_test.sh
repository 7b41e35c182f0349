#!/usr/bin/env bash
# Build (or reuse) the .deb, unpack it into a temporary root and run the bundled app there:
# --version, the desktop offscreen to its first painted tick, headless /healthz. Prints the
# bundle size and cold start beside their targets. Pass --rebuild to build afresh first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ "${1:-}" == "--rebuild" ]]; then
    export DALAL_PACKAGING_REBUILD=1
fi
DALAL_PACKAGING_SMOKE=1 exec "$ROOT/.venv/bin/pytest" -q tests/packaging
