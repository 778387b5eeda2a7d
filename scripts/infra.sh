#!/usr/bin/env bash
# Everything the service needs locally: a Kafka broker and a Redis server.
#
# usage: scripts/infra.sh up | down | status
#
#   up      starts Kafka unless KAFKA_BROKERS is set, Redis unless REDIS_URL is set, and
#           writes $RUN_DIR/infra.env (KAFKA_BROKERS, REDIS_URL, INFRA_STARTED) for tests
#           and `set -a; . .run/infra.env`.
#   down    stops only what `up` started (INFRA_STARTED), so external or hand-started
#           servers are left alone.
#   status  both services, and infra.env.
#
# Ports and options: see scripts/kafka.sh and scripts/redis.sh (KAFKA_PORT, REDIS_PORT, ...).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

ENV_FILE=$RUN_DIR/infra.env
KAFKA=$ROOT/scripts/kafka.sh
REDIS=$ROOT/scripts/redis.sh

# Reads one value from infra.env without sourcing it: sourcing would set KAFKA_BROKERS and
# REDIS_URL here and make our own servers look external.
env_value() {
  [ -f "$ENV_FILE" ] || return 0
  sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1 | sed -e 's/^"\(.*\)"$/\1/'
}

local_redis_url() {
  local auth=''
  # Same form Node clients (ioredis, node-redis) expect for a password-only server.
  [ -z "${REDIS_PASSWORD:-}" ] || auth=":$REDIS_PASSWORD@"
  echo "redis://${auth}127.0.0.1:${REDIS_PORT:-6379}"
}

write_env() {
  local brokers=$1 redis_url=$2 started=$3
  mkdir -p "$RUN_DIR"
  # It may hold the Redis password.
  (
    umask 077
    {
      echo "# Written by scripts/infra.sh up; removed by scripts/infra.sh down."
      echo "KAFKA_BROKERS=$brokers"
      echo "REDIS_URL=$redis_url"
      echo "INFRA_STARTED=\"$started\""
    } >"$ENV_FILE.tmp"
  )
  mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

has() { [[ " $1 " == *" $2 "* ]]; }

up() {
  local previous prev_brokers prev_redis_url started='' brokers redis_url
  previous=$(env_value INFRA_STARTED)
  prev_brokers=$(env_value KAFKA_BROKERS)
  prev_redis_url=$(env_value REDIS_URL)

  if [ -n "${KAFKA_BROKERS:-}" ]; then
    log "KAFKA_BROKERS=$KAFKA_BROKERS is set: not starting Kafka"
    brokers=$KAFKA_BROKERS
    # Set from our own infra.env (sourced into the shell): keep owning that broker.
    if has "$previous" kafka && [ "$brokers" = "$prev_brokers" ] && "$KAFKA" status >/dev/null; then
      started=kafka
    fi
  else
    brokers=127.0.0.1:${KAFKA_PORT:-9092}
    # Running already: ours only if an earlier `up` started it.
    if "$KAFKA" status >/dev/null; then
      if has "$previous" kafka; then started=kafka; fi
      log "kafka already running$([ -n "$started" ] || echo ', not started by infra.sh: down will leave it')"
    else
      "$KAFKA" start || die "kafka did not start (see above)"
      started=kafka
    fi
  fi
  # Record Kafka before Redis runs: if Redis fails, `down` must still stop Kafka.
  write_env "$brokers" "" "$started"

  if [ -n "${REDIS_URL:-}" ]; then
    log "REDIS_URL is set: not starting Redis"
    redis_url=$REDIS_URL
    if has "$previous" redis && [ "$redis_url" = "$prev_redis_url" ] && "$REDIS" status >/dev/null; then
      started="${started:+$started }redis"
    fi
  else
    redis_url=$(local_redis_url)
    if "$REDIS" status >/dev/null; then
      if has "$previous" redis; then started="${started:+$started }redis"; fi
      log "redis already running$(has "$started" redis || echo ', not started by infra.sh: down will leave it')"
    else
      "$REDIS" start || die "redis did not start (see above); 'scripts/infra.sh down' stops what did"
      started="${started:+$started }redis"
    fi
  fi
  write_env "$brokers" "$redis_url" "$started"
  log "wrote $ENV_FILE"
  grep -v '^#' "$ENV_FILE" | sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#'
}

down() {
  local started
  if [ ! -f "$ENV_FILE" ]; then
    log "no $ENV_FILE: nothing was started by 'scripts/infra.sh up'"
    return 0
  fi
  started=$(env_value INFRA_STARTED)
  if has "$started" redis; then "$REDIS" stop; fi
  if has "$started" kafka; then "$KAFKA" stop; fi
  [ -n "$started" ] || log "infra.sh up started nothing (external or already-running servers): leaving them"
  rm -f "$ENV_FILE"
}

status() {
  local rc=0 brokers redis_url
  brokers=${KAFKA_BROKERS:-$(env_value KAFKA_BROKERS)}
  redis_url=${REDIS_URL:-$(env_value REDIS_URL)}
  if [ -n "${KAFKA_BROKERS:-}" ]; then
    echo "kafka: external KAFKA_BROKERS=$KAFKA_BROKERS"
  else
    "$KAFKA" status || rc=3
  fi
  "$REDIS" status || rc=3
  if [ -f "$ENV_FILE" ]; then
    echo "infra.env: KAFKA_BROKERS=$brokers REDIS_URL=$(printf '%s' "$redis_url" | sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#') INFRA_STARTED=\"$(env_value INFRA_STARTED)\""
  else
    echo "infra.env: none (run scripts/infra.sh up)"
  fi
  return "$rc"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up | down | status" >&2; exit 2 ;;
esac
