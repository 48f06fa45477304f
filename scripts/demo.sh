#!/usr/bin/env bash
# One command from a fresh clone to capsule backing up and restoring real databases into a local bucket.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >/dev/null
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
exec node --import tsx scripts/demo.ts
