#!/usr/bin/env bash
# A real single-node Kafka broker (KRaft, broker+controller in one JVM) built from Maven
# Central jars: no tarball, no Docker. For tests, demos and benchmarks on this machine.
#
# usage: scripts/kafka.sh fetch | start [--clean] | stop | status | logs [tail options]
#
#   KAFKA_VERSION          4.1.1   (jars cached in $CACHE_DIR/kafka-$KAFKA_VERSION/lib)
#   KAFKA_PORT             9092    PLAINTEXT listener on 127.0.0.1
#   KAFKA_CONTROLLER_PORT  9093    KRaft controller listener
#   KAFKA_DATA_DIR         $RUN_DIR/kafka/data   (start --clean wipes it)
#   KAFKA_CLUSTER_ID, KAFKA_HEAP_OPTS (-Xms256m -Xmx768m)
#   KAFKA_SASL_PORT        unset; when set, also a SASL_SSL + SCRAM-SHA-512 listener there.
#                          Clients verify against $RUN_DIR/kafka/tls/ca.pem.
#   KAFKA_SASL_USER/KAFKA_SASL_PASSWORD (stream/stream-secret), KAFKA_SASL_ADMIN_PASSWORD
#                          (admin-secret, user "admin"): SCRAM users, created at format time.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
PORT=${KAFKA_PORT:-9092}
CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
SASL_PORT=${KAFKA_SASL_PORT:-}
SASL_USER=${KAFKA_SASL_USER:-stream}
SASL_PASSWORD=${KAFKA_SASL_PASSWORD:-stream-secret}
ADMIN_PASSWORD=${KAFKA_SASL_ADMIN_PASSWORD:-admin-secret}
# Fixed so that formatting is reproducible and re-running it on a formatted dir is a no-op
# (this is the official Docker image's default id).
CLUSTER_ID=${KAFKA_CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}
HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}
START_TIMEOUT=90

CONF_DIR=$ROOT/infra/kafka
LIB_DIR=$CACHE_DIR/kafka-$KAFKA_VERSION/lib
KRUN=$RUN_DIR/kafka
DATA_DIR=${KAFKA_DATA_DIR:-$KRUN/data}
TLS_DIR=$KRUN/tls
PIDFILE=$KRUN/kafka.pid
LOGFILE=$KRUN/kafka.log
PROPS=$KRUN/server.properties
# Records, inside the data dir, which SCRAM users it was formatted with: StorageTool
# --add-scram only acts when formatting, so a later SASL start must know.
SCRAM_MARK=$DATA_DIR/.stream-template-scram
# Matched against /proc/<pid>/cmdline so a reused pid is not taken for the broker.
MAIN_CLASS=kafka.Kafka

JAVA=java
[ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && JAVA=$JAVA_HOME/bin/java
LOG_OPTS=("-Dkafka.logs.dir=$KRUN" "-Dlog4j2.configurationFile=$CONF_DIR/log4j2.properties")

usage() { echo "usage: $0 fetch | start [--clean] | stop | status | logs [tail options]" >&2; exit 2; }

is_port() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }

missing_jars() {
  local pat missing=()
  for pat in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-server-$KAFKA_VERSION.jar" 'log4j-core-*.jar' 'log4j-slf4j-impl-*.jar'; do
    compgen -G "$LIB_DIR/$pat" >/dev/null || missing+=("$pat")
  done
  echo "${missing[*]}"
}

ensure_java() {
  local major
  if [ "$JAVA" = java ] && ! command -v java >/dev/null; then apt_install openjdk-17-jre-headless; fi
  major=$("$JAVA" -version 2>&1 | sed -n '1s/.*version "\([0-9]*\).*/\1/p')
  [ "${major:-0}" -ge 17 ] || die "Kafka $KAFKA_VERSION needs Java 17+, but $JAVA is version ${major:-unknown} (set JAVA_HOME)"
}

fetch() {
  local missing
  missing=$(missing_jars)
  if [ -z "$missing" ]; then
    log "kafka $KAFKA_VERSION jars already in $LIB_DIR"
    return 0
  fi
  command -v mvn >/dev/null || apt_install maven
  ensure_java
  log "fetching kafka_2.13 $KAFKA_VERSION and its runtime dependencies from Maven Central into $LIB_DIR"
  mkdir -p "$LIB_DIR"
  # The pom is never built: copy-dependencies only resolves and copies (~/.m2 caches it).
  # sed: Debian's Maven 3.8.7 prints bare colour resets even with -B -q.
  mvn -q -B -f "$CONF_DIR/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -Dkafka.version="$KAFKA_VERSION" -DoutputDirectory="$LIB_DIR" 2>&1 \
    | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d' >&2 \
    || die "mvn dependency:copy-dependencies failed (is Maven Central reachable? does kafka_2.13 $KAFKA_VERSION exist?)"
  missing=$(missing_jars)
  [ -z "$missing" ] || die "after fetching, $LIB_DIR still lacks: $missing"
  log "fetched $(find "$LIB_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$LIB_DIR" | cut -f1))"
}

check_ports() {
  local name port owner seen=" "
  for name in KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_SASL_PORT; do
    case $name in
      KAFKA_PORT) port=$PORT ;;
      KAFKA_CONTROLLER_PORT) port=$CONTROLLER_PORT ;;
      KAFKA_SASL_PORT) port=$SASL_PORT; [ -n "$port" ] || continue ;;
    esac
    is_port "$port" || die "$name='$port' is not a TCP port number"
    [[ $seen != *" $port "* ]] || die "$name=$port is also used by another KAFKA_*PORT: each listener needs its own port"
    seen+="$port "
    if port_in_use 127.0.0.1 "$port"; then
      owner=$(port_owner "$port")
      die "port $port ($name) is already taken${owner:+ by $owner}: stop that process or set $name to a free port"
    fi
  done
}

wipe_data() {
  case $DATA_DIR in '' | /) die "refusing to wipe KAFKA_DATA_DIR='$DATA_DIR'" ;; esac
  [ -e "$DATA_DIR" ] || return 0
  # Only ever delete something that is visibly a Kafka log dir (or empty).
  if [ -n "$(ls -A "$DATA_DIR")" ] && [ ! -f "$DATA_DIR/meta.properties" ]; then
    die "$DATA_DIR has no meta.properties and is not empty: not a Kafka data dir, not wiping it"
  fi
  log "wiping $DATA_DIR"
  rm -rf "$DATA_DIR"
}

# Self-signed CA + broker certificate for the SASL_SSL listener, generated once.
ensure_tls() {
  if [ -s "$TLS_DIR/ca.pem" ] && [ -s "$TLS_DIR/broker.p12" ] && [ -s "$TLS_DIR/keystore.pass" ]; then return 0; fi
  command -v openssl >/dev/null || apt_install openssl
  log "generating a local CA and a broker certificate (SAN IP:127.0.0.1, DNS:localhost) in $TLS_DIR"
  rm -rf "$TLS_DIR"
  mkdir -p "$TLS_DIR"
  (
    cd "$TLS_DIR"
    umask 077
    openssl rand -hex 16 >keystore.pass
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=stream-template local CA' \
      -keyout ca.key -out ca.pem
    openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout broker.key -out broker.csr
    printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' \
      'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -sha256 \
      -extfile broker.ext -out broker.pem
    openssl pkcs12 -export -name broker -inkey broker.key -in broker.pem -certfile ca.pem \
      -passout file:keystore.pass -out broker.p12
    chmod 644 ca.pem
  ) >"$KRUN/tls.log" 2>&1 || { cat "$KRUN/tls.log" >&2; rm -rf "$TLS_DIR"; die "could not generate the TLS files"; }
}

scram_fingerprint() {
  printf 'SCRAM-SHA-512 %s:%s admin:%s' "$SASL_USER" "$SASL_PASSWORD" "$ADMIN_PASSWORD" | sha256sum | cut -d ' ' -f 1
}

sed_escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }

render_properties() {
  local sasl_listener='' keystore='' keystore_pass=''
  if [ -n "$SASL_PORT" ]; then
    sasl_listener=",SASL_SSL://127.0.0.1:$SASL_PORT"
    keystore=$TLS_DIR/broker.p12
    keystore_pass=$(cat "$TLS_DIR/keystore.pass")
  fi
  sed -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
    -e "s|@SASL_LISTENER@|$sasl_listener|g" -e "s|@DATA_DIR@|$(sed_escape "$DATA_DIR")|g" \
    -e "s|@KEYSTORE@|$(sed_escape "$keystore")|g" -e "s|@KEYSTORE_PASSWORD@|$keystore_pass|g" \
    "$CONF_DIR/server.properties.in" >"$PROPS.tmp"
  [ -n "$SASL_PORT" ] || sed -i '/^# --- begin sasl_ssl/,/^# --- end sasl_ssl/d' "$PROPS.tmp"
  if grep -n '^[^#]*@[A-Z_]*@' "$PROPS.tmp" >&2; then die "unfilled placeholders in $PROPS.tmp (see above)"; fi
  mv -f "$PROPS.tmp" "$PROPS"
}

# StorageTool --add-scram only acts when formatting: an existing data dir cannot gain users.
check_scram_users() {
  [ -n "$SASL_PORT" ] || return 0
  # StorageTool splits its [name=...,password=...] argument on commas.
  [[ "$SASL_USER$SASL_PASSWORD$ADMIN_PASSWORD" != *,* ]] \
    || die "KAFKA_SASL_USER, KAFKA_SASL_PASSWORD and KAFKA_SASL_ADMIN_PASSWORD must not contain commas"
  if [ -f "$DATA_DIR/meta.properties" ] && [ "$(cat "$SCRAM_MARK" 2>/dev/null)" != "$(scram_fingerprint)" ]; then
    die "the SASL_SSL listener needs SCRAM users, which are created only when the data dir is formatted, and $DATA_DIR was formatted without them (or with other credentials): run 'KAFKA_SASL_PORT=$SASL_PORT $0 start --clean' (wipes the Kafka data)"
  fi
}

format_storage() {
  local args=()
  if [ -n "$SASL_PORT" ]; then
    args+=(--add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]"
      --add-scram "SCRAM-SHA-512=[name=admin,password=$ADMIN_PASSWORD]")
  fi
  "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 "${LOG_OPTS[@]}" -cp "$LIB_DIR/*" kafka.tools.StorageTool \
    format --ignore-formatted --cluster-id "$CLUSTER_ID" --config "$PROPS" "${args[@]}" >"$KRUN/format.log" 2>&1 \
    || {
      cat "$KRUN/format.log" >&2
      die "StorageTool format failed: $(grep -m 1 -E 'Exception|Error' "$KRUN/format.log" | cut -c 1-400)"
    }
  if [ -n "$SASL_PORT" ] && [ ! -f "$SCRAM_MARK" ]; then scram_fingerprint >"$SCRAM_MARK"; fi
}

# First ERROR/FATAL line of the log, without its timestamp, plus the exception logged right
# under it: the usual reason a start failed.
startup_cause() {
  local line
  line=$(awk '/^\[[^]]*\] (ERROR|FATAL) / {
      sub(/^\[[^]]*\] /, ""); line = $0
      if ((getline next_line) > 0 && next_line ~ /^[A-Za-z_$][A-Za-z0-9_.$]*(Exception|Error)/) line = line " -- " next_line
      print line; exit
    }' "$LOGFILE" 2>/dev/null || true)
  [ -n "$line" ] || line=$(grep -m 1 -E 'Exception|Error:' "$LOGFILE" 2>/dev/null || true)
  [ -n "$line" ] || line="no error logged; see $LOGFILE"
  printf '%s' "${line#\[*\] }" | cut -c 1-400
}

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

start() {
  local clean=$1 t0=$EPOCHREALTIME t1 pid i heap
  if pid_running "$PIDFILE" "$MAIN_CLASS"; then
    if [ -z "$clean" ]; then
      if [ -n "$SASL_PORT" ] && ! grep -q "SASL_SSL://127.0.0.1:$SASL_PORT" "$PROPS" 2>/dev/null; then
        log "warning: the running broker has no SASL_SSL listener on $SASL_PORT: run '$0 stop' then start again"
      fi
      echo "kafka: already running pid $(cat "$PIDFILE")"
      return 0
    fi
    log "start --clean: stopping the running broker first"
    stop >/dev/null
  fi
  rm -f "$PIDFILE"
  check_ports
  fetch
  ensure_java
  [ -z "$clean" ] || wipe_data
  check_scram_users
  mkdir -p "$KRUN" "$DATA_DIR"
  [ -z "$SASL_PORT" ] || ensure_tls
  render_properties
  format_storage

  # Keep the previous run's log for post-mortems; readiness is grepped in a fresh one.
  [ ! -f "$LOGFILE" ] || mv -f "$LOGFILE" "$LOGFILE.1"
  read -r -a heap <<<"$HEAP_OPTS"
  t1=$EPOCHREALTIME
  # JVM flags as in upstream's kafka-run-class.sh.
  nohup "$JAVA" "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true "${LOG_OPTS[@]}" -cp "$LIB_DIR/*" \
    "$MAIN_CLASS" "$PROPS" >"$LOGFILE" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PIDFILE"

  # "Kafka Server started" is logged only once the broker is unfenced and serving.
  for ((i = 0; i < START_TIMEOUT * 5; i++)); do
    if grep -q 'Kafka Server started' "$LOGFILE"; then
      log "broker up in $(elapsed "$t1") s ($(elapsed "$t0") s including fetch check and format)"
      echo "kafka: running pid $pid on 127.0.0.1:$PORT${SASL_PORT:+ (SASL_SSL on 127.0.0.1:$SASL_PORT)}"
      return 0
    fi
    if ! proc_alive "$pid"; then
      tail -n 40 "$LOGFILE" >&2
      rm -f "$PIDFILE"
      die "kafka exited during startup: $(startup_cause)"
    fi
    sleep 0.2
  done
  tail -n 40 "$LOGFILE" >&2
  stop_pidfile "$PIDFILE" 30 "$MAIN_CLASS"
  die "kafka did not log 'Kafka Server started' within ${START_TIMEOUT} s, so it was stopped; log: $LOGFILE"
}

stop() {
  if ! pid_running "$PIDFILE" "$MAIN_CLASS"; then
    rm -f "$PIDFILE"
    echo "kafka: stopped (was not running)"
    return 0
  fi
  log "stopping kafka pid $(cat "$PIDFILE")"
  stop_pidfile "$PIDFILE" 30 "$MAIN_CLASS"
  echo "kafka: stopped"
}

status() {
  local addr sasl
  if pid_running "$PIDFILE" "$MAIN_CLASS"; then
    # Report what the running broker was started with, not the current environment.
    addr=$(sed -n 's|^advertised.listeners=PLAINTEXT://\([^,]*\).*|\1|p' "$PROPS" 2>/dev/null)
    sasl=$(sed -n 's|^advertised.listeners=.*SASL_SSL://\([^,]*\).*|\1|p' "$PROPS" 2>/dev/null)
    echo "kafka: running pid $(cat "$PIDFILE") on ${addr:-127.0.0.1:$PORT}${sasl:+ (SASL_SSL on $sasl)}"
    return 0
  fi
  echo "kafka: stopped"
  return 3
}

cmd=${1:-}
[ $# -eq 0 ] || shift
case $cmd in
  fetch) [ $# -eq 0 ] || usage; fetch ;;
  start)
    clean=''
    case ${1:-} in --clean) clean=1 ;; '') ;; *) usage ;; esac
    start "$clean"
    ;;
  stop) [ $# -eq 0 ] || usage; stop ;;
  status) [ $# -eq 0 ] || usage; status ;;
  logs)
    [ -f "$LOGFILE" ] || die "no log yet ($LOGFILE)"
    if [ $# -eq 0 ]; then set -- -n 100; fi
    exec tail "$@" "$LOGFILE"
    ;;
  *) usage ;;
esac
