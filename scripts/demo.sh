#!/usr/bin/env bash
# `npm run demo`: install what is missing, build, then start Redis, Orthanc (DICOMweb) with
# synthetic studies and tokengate in front of it, create tokens and print curl lines to try.
# `npm run demo -- stop` stops the demo's processes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != stop ]; then
  TOKENGATE_SKIP_PROMTOOL=1 TOKENGATE_SKIP_BROWSER=1 bash scripts/install-deps.sh
  npx tsc -p tsconfig.build.json
fi
exec node scripts/demo.js "$@"
