#!/usr/bin/env bash
# `npm run test:chaos`: the full chaos test (test/chaos/chaos.full.test.ts): 200,000 records,
# member processes killed with SIGKILL, stalled with SIGSTOP, joining and leaving, then the
# outputs and Redis state compared with a failure-free run; and the outage test
# (test/chaos/outages.full.test.ts): Redis down 30 s, Redis restarted empty, broker down 30 s. Like scripts/test.sh: installs
# what is missing, builds, starts Kafka and Redis unless KAFKA_BROKERS / REDIS_URL are given,
# and stops what it started. CHAOS_RUNS=3 runs it three times in a row; CHAOS_SEED replays one.
set -euo pipefail
# shellcheck source=scripts/lib.sh disable=SC1091
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

bash scripts/setup.sh
ensure_node
export PATH="$ROOT/node_modules/.bin:$PATH"

log "build"
tsc -p tsconfig.json

# Ports and a run dir of its own: it stops and starts its broker and Redis, which must not be
# the ones a running `npm test` or demo uses.
export KAFKA_PORT=${KAFKA_PORT:-39092} KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-39093}
export REDIS_PORT=${REDIS_PORT:-36379}
export STREAM_RUN_DIR=${STREAM_RUN_DIR:-$ROOT/.run/chaos}

start_missing_infra

# The outage test stops and starts Kafka and Redis, so it runs only on the ones started here.
if [ "${#INFRA_STARTED_HERE[@]}" -eq 2 ]; then export CHAOS_INFRA=1; else log "KAFKA_BROKERS/REDIS_URL given: the outage test is skipped"; fi
export CHAOS_FULL=1
runs=${CHAOS_RUNS:-1}
for ((run = 1; run <= runs; run++)); do
  log "full chaos test, run $run of $runs (kafka $KAFKA_BROKERS, redis $REDIS_URL)"
  node --enable-source-maps --test --test-concurrency=1 --test-timeout=1800000 build/test/chaos/*.full.test.js
done
