#!/usr/bin/env bash
# `npm run bench -- <scenario...|all> [options]`: installs what is missing, builds, starts its own
# Kafka and Redis (ports apart from the tests': Kafka 29092/29093, Redis 26379, run dir .run/bench)
# unless KAFKA_BROKERS / REDIS_URL are given, runs the harness (bench/harness.ts), and stops what
# it started. Options: --records N (1000000), --runs N (3), --seed N, --partitions N (6),
# --latency-seconds N (20), --out FILE, --env K=V. See docs/benchmarks.md.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

[ $# -gt 0 ] || set -- all

bash scripts/setup.sh
ensure_node
export PATH="$ROOT/node_modules/.bin:$PATH"

log "build"
tsc -p tsconfig.json
tsc -p tsconfig.build.json

bench_env

# The broker's version goes into the results only when it is the one started here.
[ -n "${KAFKA_BROKERS:-}" ] || export BENCH_KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
start_missing_infra

log "bench (kafka $KAFKA_BROKERS, redis $REDIS_URL): $*"
node --enable-source-maps build/bench/harness.js "$@"
