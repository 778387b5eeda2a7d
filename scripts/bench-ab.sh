#!/usr/bin/env bash
# `npm run bench:ab -- <rev> [pairs] [scenario...] [harness options]`: a change measured the way
# docs/benchmarks.md adopts one. Alternating single runs (`--runs 1`) of the harness, first from a
# checkout of <rev> (A, the baseline, built in .run/ab/<rev>), then from this working tree (B),
# `pairs` times (default 3), on one Kafka and Redis started once, as scripts/bench.sh starts them.
# Default scenario fraud-eos; `engine` needs no broker time and has a spread of a few percent.
# Results: bench/results/ab-<date>/{a,b}-<i>.json, and a line of medians per scenario and side.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

[ $# -ge 1 ] || die "usage: npm run bench:ab -- <git rev> [pairs] [scenario...] [harness options]"
rev=$1
shift
pairs=3
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
  pairs=$1
  shift
fi
if [ $# -eq 0 ] || [[ $1 == --* ]]; then set -- fraud-eos "$@"; fi
commit=$(git rev-parse --verify --short "$rev^{commit}") || die "not a commit: $rev"

bash scripts/setup.sh
ensure_node
export PATH="$ROOT/node_modules/.bin:$PATH"

log "build B (this working tree)"
tsc -p tsconfig.json
base="$RUN_DIR/ab/$commit"
if [ ! -d "$base" ]; then
  log "checkout A ($commit) in $base"
  git worktree add --detach "$base" "$commit" >/dev/null
fi
ln -sfn "$ROOT/node_modules" "$base/node_modules"
log "build A ($commit)"
(cd "$base" && tsc -p tsconfig.json)

bench_env
# The broker's version goes into the results only when it is the one started here.
[ -n "${KAFKA_BROKERS:-}" ] || export BENCH_KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
start_missing_infra

out=${BENCH_AB_OUT:-$ROOT/bench/results/ab-$(date -u +%Y-%m-%dT%H-%M-%S)}
mkdir -p "$out"
for i in $(seq 1 "$pairs"); do
  for side in a b; do
    dir=$ROOT
    [ "$side" = a ] && dir=$base
    log "pair $i/$pairs, $side: $*"
    (cd "$dir" && node --enable-source-maps build/bench/harness.js "$@" --runs 1 --out "$out/$side-$i.json") \
      >"$out/$side-$i.log" 2>&1 || die "run $side-$i failed: see $out/$side-$i.log"
  done
done
node build/bench/ab.js "$out" "$commit"
