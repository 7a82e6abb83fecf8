#!/usr/bin/env bash
# The whole test suite (`npm test`): install what is missing, build, lint, type-check, then the tap
# tests against real redis-server and Orthanc processes the tests spawn on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "== build" >&2
npx tsc -p tsconfig.build.json
echo "== lint (biome)" >&2
npx biome check .
echo "== type-check (src, tests, scripts, bench)" >&2
npx tsc -p tsconfig.json --noEmit
echo "== tap" >&2
# Type-checking is done once above; tap then runs the TypeScript through ts-node without it.
exec npx tap "$@"
