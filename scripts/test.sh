#!/usr/bin/env bash
# `npm test`: installs what is missing, checks lint and formatting, builds, starts Kafka and
# Redis unless KAFKA_BROKERS / REDIS_URL are given, runs every test, and stops what it started.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

bash scripts/setup.sh
ensure_node
export PATH="$ROOT/node_modules/.bin:$PATH"

log "lint and format"
eslint . --max-warnings 0
prettier --check . >/dev/null || { prettier --check . || true; die "files are not formatted: run npm run format"; }
shellcheck scripts/*.sh .ci/run

log "build"
rm -rf build dist
tsc -p tsconfig.json
tsc -p tsconfig.build.json

log "deployment artifacts (Dockerfile, compose, Helm chart, dashboard, alert rules)"
bash scripts/check-deploy.sh

# Own ports, so the tests neither meet a developer's demo nor a distribution's Redis on 6379.
export KAFKA_PORT=${KAFKA_PORT:-19092} KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
export KAFKA_SASL_PORT=${KAFKA_SASL_PORT:-19094} REDIS_PORT=${REDIS_PORT:-16379}
export REDIS_CLUSTER_PORTS=${REDIS_CLUSTER_PORTS:-17001 17002 17003}
export STREAM_RUN_DIR=${STREAM_RUN_DIR:-$ROOT/.run/test}
RUN_DIR=$STREAM_RUN_DIR

trap stop_started_infra EXIT
# With a container engine, STREAM_TESTCONTAINERS=1 runs Kafka and Redis as containers
# (testcontainers) instead of from Maven jars and apt.
if [ "${STREAM_TESTCONTAINERS:-0}" = 1 ] && [ -z "${KAFKA_BROKERS:-}" ] && [ -z "${REDIS_URL:-}" ]; then
  docker info >/dev/null 2>&1 || die "STREAM_TESTCONTAINERS=1 needs a running container engine (docker info failed)"
  mkdir -p "$RUN_DIR"
  rm -f "$RUN_DIR/containers.env"
  node build/test/helpers/containers.js "$RUN_DIR/containers.env" &
  INFRA_CONTAINERS_PID=$!
  INFRA_STARTED_HERE+=(containers)
  for _ in $(seq 1 240); do [ -s "$RUN_DIR/containers.env" ] && break; kill -0 "$INFRA_CONTAINERS_PID" 2>/dev/null || die "testcontainers failed"; sleep 0.5; done
  [ -s "$RUN_DIR/containers.env" ] || die "testcontainers: Kafka and Redis not ready after 120 s"
  set -a
  # shellcheck disable=SC1091
  . "$RUN_DIR/containers.env"
  set +a
fi
start_missing_infra
if [ -z "${REDIS_CLUSTER_NODES:-}" ]; then
  INFRA_STARTED_HERE+=(cluster)
  bash scripts/redis.sh start --cluster --clean
  # shellcheck disable=SC2086
  REDIS_CLUSTER_NODES=$(printf '127.0.0.1:%s,' $REDIS_CLUSTER_PORTS | sed 's/,$//')
  export REDIS_CLUSTER_NODES
fi

log "tests (kafka $KAFKA_BROKERS, redis $REDIS_URL)"
# One file at a time: the integration tests share one broker and two cores.
node --enable-source-maps --test --test-concurrency=1 --test-timeout=600000 \
  'build/test/unit/**/*.test.js' 'build/test/integration/**/*.test.js' 'build/test/e2e/**/*.test.js' \
  'build/test/chaos/*.test.js'
