#!/usr/bin/env bash
# Installs what the project needs and is missing, idempotently: Node 24 (when the machine's
# Node is older than 22), Debian packages, npm dependencies with the native Kafka client,
# and the Kafka broker jars. A second run on the same machine downloads nothing.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_node

# Redis for state; promtool (prometheus) checks /metrics and alert rules; yamllint and shellcheck
# are part of the lint step; jemalloc is the image's allocator, which bench members run with too.
# The -dev packages let the Kafka client compile librdkafka when its prebuilt binary cannot be downloaded.
# shellcheck disable=SC2086
apt_install redis-server redis-tools prometheus yamllint shellcheck openssl libjemalloc2 $NATIVE_DEB_PKGS

stamp_file=node_modules/.install-stamp
stamp="$(sha256sum package-lock.json | cut -c1-16)-node$(node -p process.versions.modules)"
if [ ! -f "$stamp_file" ] || [ "$(cat "$stamp_file")" != "$stamp" ]; then
  log "installing npm dependencies (the native Kafka client builds from source when no prebuilt binary can be fetched: ~2 min)"
  # Dynamic linking against Debian's libraries: the default static build downloads
  # zlib/OpenSSL/zstd/curl sources, which fails without internet. Plain env vars only:
  # the addon's build reads no .npmrc for these.
  CKJS_LINKING=dynamic npm ci --no-audit --no-fund --loglevel=error >&2 || die "npm ci failed"
  echo "$stamp" >"$stamp_file"
fi

# A prebuilt binary for another Node ABI, or a half-finished build, shows up here, not at install.
if ! node -e "require('@confluentinc/kafka-javascript')" 2>/dev/null; then
  log "the native Kafka client does not load under Node $(node -v): rebuilding it from source"
  CKJS_LINKING=dynamic npm_config_build_from_source=true npm rebuild @confluentinc/kafka-javascript >&2 \
    || die "building @confluentinc/kafka-javascript failed (needs: $NATIVE_DEB_PKGS)"
  node -e "require('@confluentinc/kafka-javascript')" || die "@confluentinc/kafka-javascript still does not load"
fi

if [ -z "${KAFKA_BROKERS:-}" ]; then bash "$ROOT/scripts/kafka.sh" fetch; fi
log "setup complete (node $(node -v))"
