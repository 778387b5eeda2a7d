#!/usr/bin/env bash
# Runs a command with Node >= 22 first on PATH and node_modules/.bin reachable.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
ensure_node
export PATH="$ROOT/node_modules/.bin:$PATH"
exec "$@"
