#!/usr/bin/env bash
# `npm run demo`: installs what is missing, starts Kafka and Redis (or uses KAFKA_BROKERS /
# REDIS_URL), creates the topics, starts two service members and both generators, and shows
# live results until Ctrl-C, which stops everything the demo started.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

bash scripts/setup.sh
ensure_node
export PATH="$ROOT/node_modules/.bin:$PATH"
tsc -p tsconfig.build.json

DEMO_DIR=$RUN_DIR/demo
mkdir -p "$DEMO_DIR"
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  log "stopping the demo"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  bash scripts/infra.sh down >/dev/null 2>&1 || true
  log "stopped; logs are in $DEMO_DIR"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

bash scripts/infra.sh up
set -a
# shellcheck disable=SC1091
. "$RUN_DIR/infra.env"
set +a
export SERVICE_NAME=${SERVICE_NAME:-stream-demo}
node dist/tools/topics-cli.js

for member in 0 1; do
  port=$((8080 + member))
  INSTANCE_ID=demo-$member HTTP_PORT=$port node dist/main.js >"$DEMO_DIR/member-$member.log" 2>&1 &
  pids+=($!)
done
# Simulated event time runs fast (one minute of event time per fraud record, one second per
# payment), so 10-hour fraud windows and 1-minute branch windows close within seconds.
sim_start=$(date -u -d '-3 days' +%Y-%m-%dT00:00:00Z)
node dist/generators/cli.js fraud --rate 200 --time sim --sim-start "$sim_start" --sim-step-ms 20000 \
  --jitter-ms 30000 --malformed 0.01 >"$DEMO_DIR/generator-fraud.log" 2>&1 &
pids+=($!)
node dist/generators/cli.js payments --rate 50 --time sim --sim-start "$sim_start" --sim-step-ms 1000 \
  --jitter-ms 2000 --malformed 0.01 >"$DEMO_DIR/generator-payments.log" 2>&1 &
pids+=($!)

DEMO_PORTS=8080,8081 node dist/demo/viewer.js
