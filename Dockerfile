# syntax=docker/dockerfile:1
#
# The service image: the compiled service (dist/), production dependencies only, the native
# Kafka client built on the same Debian base as the runtime stage, a non-root user and tini
# as PID 1 so SIGTERM reaches Node and the shutdown hooks run.
#
#   docker build -t stream-template .
#   docker build --build-arg KAFKA_NATIVE=source -t stream-template .
#
# KAFKA_NATIVE=prebuilt (default) downloads the prebuilt @confluentinc/kafka-javascript addon
# (librdkafka linked statically) from GitHub. KAFKA_NATIVE=source is for builders that cannot
# reach GitHub: it compiles the bundled librdkafka against Debian's libraries
# (CKJS_LINKING=dynamic; about 80 s on 2 cores), and the runtime stage then installs those
# libraries' runtime packages.

# ---- build: dependencies, native addon, TypeScript -----------------------------------------
FROM node:24-bookworm-slim AS build
ARG KAFKA_NATIVE=prebuilt
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /app

RUN if [ "$KAFKA_NATIVE" = source ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends \
        build-essential python3 zlib1g-dev libssl-dev libzstd-dev libsasl2-dev libcurl4-openssl-dev liblz4-dev \
      && rm -rf /var/lib/apt/lists/*; \
    elif [ "$KAFKA_NATIVE" != prebuilt ]; then \
      echo "KAFKA_NATIVE must be prebuilt or source, not '$KAFKA_NATIVE'" >&2; exit 1; \
    fi

# Dependencies first: this layer is rebuilt only when the lockfile changes. A source build
# compiles against the image's own Node headers (/usr/local/include/node), downloading none.
COPY package.json package-lock.json ./
RUN if [ "$KAFKA_NATIVE" = source ]; then \
      export CKJS_LINKING=dynamic npm_config_build_from_source=true npm_config_nodedir=/usr/local; \
    fi \
    && npm ci --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json \
    && npm prune --omit=dev --no-audit --no-fund

# ---- runtime --------------------------------------------------------------------------------
FROM node:24-bookworm-slim AS runtime
ARG KAFKA_NATIVE=prebuilt
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# tini: PID 1 that forwards signals and reaps children (Kubernetes has no --init).
# With KAFKA_NATIVE=source the addon links Debian's libraries at run time.
# jemalloc: see the memory settings below. The link gives LD_PRELOAD one path on every architecture.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini libjemalloc2 \
    && if [ "$KAFKA_NATIVE" = source ]; then \
      apt-get install -y --no-install-recommends libssl3 zlib1g libzstd1 libsasl2-2 liblz4-1 libcurl4; \
    fi \
    && ln -s "$(dpkg -L libjemalloc2 | grep '/libjemalloc.so.2$')" /usr/local/lib/libjemalloc.so.2 \
    && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production
# Memory, measured by npm run bench (docs/benchmarks.md, docs/decisions/0008): V8 reserved 134 MB
# for its young generation under this allocation rate (--max-semi-space-size); with no old-space
# limit it let garbage grow the heap to 4 times what is live (--max-old-space-size, which also
# lowers that factor); and jemalloc serves librdkafka's many small allocations faster and with
# less fragmentation than glibc, which pays back the extra collections. The fraud trigger over
# 1M customers peaked at 507-557 MB with the first setting and glibc, 262-273 MB with all three
# and the consumer's prefetch of prefetchConfig. Raise --max-old-space-size with
# STATE_CACHE_ENTRIES. bench/harness.ts runs its members with the same settings.
ENV LD_PRELOAD=/usr/local/lib/libjemalloc.so.2
ENV NODE_OPTIONS="--max-semi-space-size=4 --max-old-space-size=384"
WORKDIR /app
# Owned by root and read-only to the service user: the process cannot modify its own code.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist

# The base image's "node" user, by id so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--"]
# Node directly, never npm: npm does not forward SIGTERM.
CMD ["node", "dist/main.js"]
