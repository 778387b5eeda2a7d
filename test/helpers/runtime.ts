import { Registry } from 'prom-client';
import { HealthState } from '../../src/health/health-state.js';
import { RuntimeMetrics } from '../../src/runtime/metrics.js';
import { RedisStateStore, type RedisClient } from '../../src/runtime/state/redis-backend.js';
import { connectRedis, createRedisClient } from '../../src/runtime/state/redis-client.js';
import { StreamRuntime, type StreamRuntimeOptions } from '../../src/runtime/stream-runtime.js';
import type { TopologyPlan } from '../../src/runtime/topology.js';
import { infra } from './env.js';

export interface RuntimeHandle {
  runtime: StreamRuntime;
  redis: RedisClient;
  state: RedisStateStore;
  health: HealthState;
  registry: Registry;
  fatal: Error[];
  stop(): Promise<void>;
}

/** A StreamRuntime in this process, against the test broker and Redis (single, or the cluster). */
export async function startRuntime(
  app: string,
  plans: TopologyPlan[],
  overrides: Partial<StreamRuntimeOptions> & { cluster?: boolean } = {},
): Promise<RuntimeHandle> {
  const { brokers, redisUrl, clusterNodes } = infra();
  const redis = createRedisClient({
    url: redisUrl,
    ...(overrides.cluster ? { clusterNodes: clusterNodes?.split(',') ?? [] } : {}),
  });
  redis.on('error', () => undefined);
  await connectRedis(redis);
  const registry = new Registry();
  const metrics = new RuntimeMetrics(registry);
  const state = new RedisStateStore(redis, { app });
  const health = new HealthState();
  const fatal: Error[] = [];
  const quiet = {
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
  };
  const runtime = new StreamRuntime({
    app,
    instanceId: 'it',
    connection: { brokers, clientId: app },
    guarantee: 'exactly_once',
    commitIntervalMs: 100,
    commitCaughtUpMs: 50,
    maxBatchRecords: 2000,
    maxBatchBytes: 16 << 20,
    transactionTimeoutMs: 10_000,
    sessionTimeoutMs: 10_000,
    autoOffsetReset: 'earliest',
    internalPartitions: 4,
    replicationFactor: 1,
    cacheEntriesPerStore: 10_000,
    staticMembership: false,
    plans,
    state,
    metrics,
    health,
    logger: process.env.TEST_RUNTIME_LOGS ? console_logger() : quiet,
    onFatal: (err) => fatal.push(err),
    ...overrides,
  });
  await runtime.start();
  return {
    runtime,
    redis,
    state,
    health,
    registry,
    fatal,
    async stop() {
      await runtime.stop();
      redis.disconnect();
    },
  };
}

function console_logger() {
  const log = (level: string) => (o: object, m: string) =>
    console.log(JSON.stringify({ level, msg: m, ...o }));
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

/** Waits until `check` returns true, polling. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
