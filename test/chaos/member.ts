/**
 * One member of the chaos tests' consumer group, as a real process (build/test/chaos/member.js)
 * that the harness starts, SIGKILLs, SIGSTOPs and restarts. It runs the chaos topology in a
 * StreamRuntime against the test broker and Redis and logs JSON lines to stdout, which the
 * harness reads to learn who owns which partition.
 *
 * Environment: KAFKA_BROKERS, REDIS_URL, CHAOS_APP, CHAOS_INPUT, CHAOS_WINDOWS, CHAOS_TOTALS,
 * INSTANCE_ID, and optionally CHAOS_PARTITIONS (internal partitions, 4), CHAOS_SESSION_TIMEOUT_MS
 * (6000), CHAOS_CACHE_ENTRIES (write-back cache entries per store, 10000).
 */
import { pathToFileURL } from 'node:url';
import { Registry } from 'prom-client';
import { HealthState } from '../../src/health/health-state.js';
import type { FatalRuntimeError } from '../../src/runtime/kafka/errors.js';
import { RuntimeMetrics } from '../../src/runtime/metrics.js';
import { InvalidRecordError } from '../../src/runtime/records.js';
import { RedisStateStore } from '../../src/runtime/state/redis-backend.js';
import { connectRedis, createRedisClient } from '../../src/runtime/state/redis-client.js';
import { StreamRuntime, type RuntimeLogger } from '../../src/runtime/stream-runtime.js';
import { TopologyBuilder, type TopologyPlan } from '../../src/runtime/topology.js';
import { tumbling } from '../../src/runtime/windows.js';

/** Names shared by the member processes, the expected (test driver) run and the assertions. */
export const CHAOS = {
  pipeline: 'chaos',
  stage: 'by-key',
  windowStore: 'window-counts',
  totalsStore: 'totals',
  outOfOrdernessMs: 5000,
  windowMs: 10_000,
  sessionTimeoutMs: 6000,
  transactionTimeoutMs: 10_000,
} as const;

export interface ChaosTopics {
  input: string;
  /** Every window's count and sum, emitted when the window closes. */
  windows: string;
  /** Running count and sum per key, upserted once per commit. */
  totals: string;
}

/** One input record. `amt` is an integer so sums are exact. */
export interface ChaosValue {
  k: string;
  ts: number;
  amt: number;
  /** Unique id of the record in the plan. */
  i: number;
}

export interface WindowOutput {
  key: string;
  window_start: number;
  count: number;
  sum: number;
}

export interface TotalsOutput {
  key: string;
  count: number;
  sum: number;
}

interface Acc {
  count: number;
  sum: number;
}

function decode(bytes: Buffer): ChaosValue {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new InvalidRecordError('value is not JSON', 'invalid-json');
  }
  const v = parsed as Partial<Record<keyof ChaosValue, unknown>> | null;
  if (v === null || typeof v !== 'object') throw new InvalidRecordError('value is not an object', 'invalid');
  if (typeof v.k !== 'string' || typeof v.amt !== 'number' || typeof v.i !== 'number')
    throw new InvalidRecordError('k, amt or i is missing', 'invalid');
  // ts is checked by the runtime: a non-finite event time is a dead letter of its own kind.
  return { k: v.k, ts: typeof v.ts === 'number' ? v.ts : Number.NaN, amt: v.amt, i: v.i };
}

/**
 * source -> validate -> groupBy key -> (tumbling window count+sum, emitted on close) and
 * (running count+sum, upserted to the totals topic): both kinds of state, windows that fire
 * and expire, and table upserts.
 */
export function chaosTopology(topics: ChaosTopics): TopologyPlan {
  const b = new TopologyBuilder(CHAOS.pipeline);
  const grouped = b
    .source<ChaosValue>(topics.input, {
      decode,
      timestamp: (v) => v.ts,
      outOfOrdernessMs: CHAOS.outOfOrdernessMs,
    })
    .validate((v) => (Number.isInteger(v.amt) && v.amt >= 0 ? undefined : `amt ${v.amt} is negative`))
    .groupBy(CHAOS.stage, (v) => v.k);
  const aggregator = {
    init: (): Acc => ({ count: 0, sum: 0 }),
    add: (a: Acc, v: ChaosValue): Acc => ({ count: a.count + 1, sum: a.sum + v.amt }),
  };
  grouped
    .windowedBy(tumbling(CHAOS.windowMs))
    .aggregate(CHAOS.windowStore, aggregator)
    .emitOnClose(topics.windows, (key, w, acc): WindowOutput => ({
      key,
      window_start: w.start,
      count: acc.count,
      sum: acc.sum,
    }));
  grouped
    .aggregate(CHAOS.totalsStore, aggregator)
    .toTopic(topics.totals, (key, acc): TotalsOutput => ({ key, count: acc.count, sum: acc.sum }));
  return b.build();
}

function env(name: string, fallback?: string): string {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') throw new Error(`${name} must be set`);
  return v;
}

async function main(): Promise<void> {
  const instance = env('INSTANCE_ID');
  const write = (level: string, obj: object, msg: string): void => {
    process.stdout.write(
      `${JSON.stringify({ t: Date.now(), level, instance, pid: process.pid, msg, ...obj })}\n`,
    );
  };
  const logger: RuntimeLogger = {
    debug: () => undefined,
    info: (o, m) => write('info', o, m),
    warn: (o, m) => write('warn', o, m),
    error: (o, m) => write('error', o, m),
  };
  process.on('unhandledRejection', (err) => {
    write('error', { err: String(err) }, 'unhandled rejection');
    process.exit(71);
  });

  const app = env('CHAOS_APP');
  const topics: ChaosTopics = {
    input: env('CHAOS_INPUT'),
    windows: env('CHAOS_WINDOWS'),
    totals: env('CHAOS_TOTALS'),
  };
  const redis = createRedisClient({ url: env('REDIS_URL') });
  redis.on('error', () => undefined);
  await connectRedis(redis);
  const pingStart = Date.now();
  await redis.ping();
  const redisPingMs = Date.now() - pingStart;
  const health = new HealthState();
  const runtime = new StreamRuntime({
    app,
    instanceId: instance,
    connection: { brokers: env('KAFKA_BROKERS'), clientId: app },
    guarantee: 'exactly_once',
    commitIntervalMs: 100,
    commitCaughtUpMs: 50,
    maxBatchRecords: 2000,
    maxBatchBytes: 16 << 20,
    transactionTimeoutMs: CHAOS.transactionTimeoutMs,
    sessionTimeoutMs: Number(env('CHAOS_SESSION_TIMEOUT_MS', String(CHAOS.sessionTimeoutMs))),
    autoOffsetReset: 'earliest',
    internalPartitions: Number(env('CHAOS_PARTITIONS', '4')),
    replicationFactor: 1,
    cacheEntriesPerStore: Number(env('CHAOS_CACHE_ENTRIES', '10000')),
    staticMembership: false,
    plans: [chaosTopology(topics)],
    state: new RedisStateStore(redis, { app }),
    metrics: new RuntimeMetrics(new Registry()),
    health,
    logger,
    onFatal: (err: FatalRuntimeError) => {
      write('error', { err: err.message, code: err.code }, 'member exiting after a fatal error');
      process.exit(70);
    },
  });

  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    write('info', {}, 'SIGTERM: stopping');
    runtime.stop().then(
      () => {
        redis.disconnect();
        write('info', {}, 'member stopped');
        process.exit(0);
      },
      (err: unknown) => {
        write('error', { err: String(err) }, 'stop failed');
        process.exit(1);
      },
    );
  });
  await runtime.start();
  write('info', { topics, redisPingMs }, 'member started');

  // Readiness as /health/ready computes it (the runtime's view plus a Redis ping), logged on
  // every change: the outage tests check it goes false during an outage and true after.
  let wasReady: boolean | undefined;
  const probe = setInterval(() => {
    const problems = health.readinessProblems();
    const ping = Promise.race([
      redis.ping().then(() => undefined),
      new Promise<string>((resolve) => setTimeout(() => resolve('redis: no answer in 1 s'), 1000)),
    ]).catch((err: unknown) => `redis: ${String(err)}`);
    void ping.then((redisProblem) => {
      const all = redisProblem ? [...problems, redisProblem] : problems;
      const ready = all.length === 0;
      if (ready !== wasReady) write('info', { ready, problems: all }, 'readiness');
      wasReady = ready;
    });
  }, 250);
  probe.unref();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stdout.write(
      `${JSON.stringify({ t: Date.now(), level: 'error', pid: process.pid, msg: 'member failed to start', err: String(err) })}\n`,
    );
    process.exit(72);
  });
}
