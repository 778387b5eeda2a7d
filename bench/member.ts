/**
 * One benchmark member, as its own process (build/bench/member.js), so that its CPU time and
 * peak RSS are measured alone. Two modes (BENCH_MODE):
 *
 * - `pipeline` (default): the real pipelines (PIPELINES, e.g. fraud-trigger) in a StreamRuntime
 *   configured exactly as the service configures it (src/config/env.ts: PROCESSING_GUARANTEE,
 *   COMMIT_INTERVAL_MS, MAX_BATCH_RECORDS, STATIC_MEMBERSHIP, SESSION_TIMEOUT_MS, INSTANCE_ID...),
 *   without the NestJS shell and HTTP server.
 * - `passthrough`: the same client and consumer settings, consuming BENCH_INPUT and producing
 *   every record unchanged to BENCH_OUTPUT, committing offsets after a flush every
 *   COMMIT_INTERVAL_MS: no state, no transactions, no decoding. The ceiling.
 *   With BENCH_HOP and BENCH_CHANGELOG instead of BENCH_OUTPUT it does the fraud trigger's Kafka
 *   I/O and nothing else: the input records to BENCH_HOP in packs, as the runtime's repartition
 *   hop writes them (one record per partition per PACK_BYTES or commit,
 *   docs/decisions/0010-repartition-packs.md), and each record of a pack read back from
 *   BENCH_HOP to BENCH_CHANGELOG under a key of its own (its window's changelog record, one
 *   customer per record; a windowed changelog has no tombstones,
 *   docs/decisions/0009-windowed-changelog-without-tombstones.md); with
 *   PROCESSING_GUARANTEE=exactly_once in a transaction per commit interval, with the
 *   consumed offsets. The ceiling of that topology on this machine.
 *
 * It writes JSON lines to stdout: `{"ev":"first",...}` when it consumed its first input record,
 * then `{"ev":"sample",...}` every 100 ms with its CPU time (process.cpuUsage, µs) and records
 * consumed, which the harness (bench/harness.ts) reads. SIGTERM stops it gracefully.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { Registry } from 'prom-client';
import { loadConfig } from '../src/config/env.js';
import { HealthState } from '../src/health/health-state.js';
import { resolvePipelines } from '../src/pipelines/index.js';
import {
  KafkaConsumer,
  kafkaCall,
  Producer,
  type KafkaConsumerType,
  type LibrdKafkaError,
  type Message,
  type TopicPartitionOffset,
} from '../src/runtime/kafka/client.js';
import { PACK_BYTES } from '../src/runtime/engine.js';
import { librdkafkaConfig, prefetchConfig } from '../src/runtime/kafka/client-config.js';
import { RuntimeMetrics } from '../src/runtime/metrics.js';
import { RedisStateStore } from '../src/runtime/state/redis-backend.js';
import { connectRedis, createRedisClient } from '../src/runtime/state/redis-client.js';
import { StreamRuntime, type RuntimeLogger } from '../src/runtime/stream-runtime.js';

const write = (obj: object): void => {
  process.stdout.write(`${JSON.stringify({ t: Date.now(), pid: process.pid, ...obj })}\n`);
};

const NEWLINE = Buffer.from('\n');

const cpuMicros = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** The largest V8 heap and off-heap (Buffers) sizes the sampler saw, MB: what the peak RSS is made of. */
const memoryPeaks = { heapTotalMb: 0, heapUsedMb: 0, externalMb: 0 };

/** Reports the first consumed record and then a sample every 100 ms. */
function startSampler(consumed: () => number): void {
  let first = false;
  const tick = (): void => {
    const n = consumed();
    if (!first && n > 0) {
      first = true;
      write({ ev: 'first', cpu: cpuMicros(), consumed: n });
    }
    const m = process.memoryUsage();
    const mb = (b: number): number => Math.round(b / 1_048_576);
    memoryPeaks.heapTotalMb = Math.max(memoryPeaks.heapTotalMb, mb(m.heapTotal));
    memoryPeaks.heapUsedMb = Math.max(memoryPeaks.heapUsedMb, mb(m.heapUsed));
    memoryPeaks.externalMb = Math.max(memoryPeaks.externalMb, mb(m.external));
    write({ ev: 'sample', cpu: cpuMicros(), consumed: n, rss: m.rss });
  };
  const fast = setInterval(() => {
    if (consumed() > 0) {
      clearInterval(fast);
      tick();
      setInterval(tick, 100);
    }
  }, 5);
}

async function runPipeline(): Promise<() => Promise<void>> {
  const config = loadConfig(process.env);
  const registry = new Registry();
  const pipelines = resolvePipelines(config, process.env, registry);
  const metrics = new RuntimeMetrics(registry);
  const inputs = new Set(pipelines.flatMap((p) => p.plan.sources.map((s) => s.topic)));
  let consumed = 0;
  // Counts source records only: repartition records are the same events a second time.
  const inc = metrics.recordsConsumed.inc.bind(metrics.recordsConsumed);
  metrics.recordsConsumed.inc = ((labels: { topic: string }, value?: number) => {
    if (inputs.has(labels.topic)) consumed += value ?? 1;
    inc(labels, value);
  }) as typeof metrics.recordsConsumed.inc;
  const redis = createRedisClient(config.redis);
  redis.on('error', () => undefined);
  await connectRedis(redis);
  const logger: RuntimeLogger = {
    debug: () => undefined,
    info: (o, m) => write({ ev: 'log', level: 'info', msg: m, ...o }),
    warn: (o, m) => write({ ev: 'log', level: 'warn', msg: m, ...o }),
    error: (o, m) => write({ ev: 'log', level: 'error', msg: m, ...o }),
  };
  const c = config;
  const runtime = new StreamRuntime({
    app: c.service.name,
    instanceId: c.service.instanceId,
    connection: { brokers: c.kafka.brokers, clientId: c.service.name, security: c.kafka.security },
    guarantee: c.kafka.processingGuarantee,
    commitIntervalMs: c.kafka.commitIntervalMs,
    commitCaughtUpMs: c.kafka.commitCaughtUpMs,
    maxBatchRecords: c.kafka.maxBatchRecords,
    maxBatchBytes: c.kafka.maxBatchBytes,
    transactionTimeoutMs: c.kafka.transactionTimeoutMs,
    sessionTimeoutMs: c.kafka.sessionTimeoutMs,
    autoOffsetReset: c.kafka.autoOffsetReset,
    internalPartitions: c.kafka.topicPartitions,
    replicationFactor: c.kafka.replicationFactor,
    cacheEntriesPerStore: c.state.cacheEntries,
    staticMembership: c.kafka.staticMembership,
    consumerOverrides: clientOverrides('BENCH_CONSUMER_CONFIG'),
    producerOverrides: clientOverrides('BENCH_PRODUCER_CONFIG'),
    plans: pipelines.map((p) => p.plan),
    state: new RedisStateStore(redis, {
      app: c.service.name,
      onRoundTrip: (op, s) => metrics.redisRoundTrip.observe({ op }, s),
    }),
    metrics,
    health: new HealthState(),
    logger,
    onFatal: (err) => {
      write({ ev: 'fatal', err: err.message, code: err.code });
      process.exit(70);
    },
  });
  await runtime.start();
  startSampler(() => consumed);
  return async () => {
    write({ ev: 'breakdown', memory: memoryPeaks, ...(await timeBreakdown(registry)) });
    await runtime.stop();
    redis.disconnect();
  };
}

/** Seconds spent in each timed part of the loop, and how often: where the wall time went. */
async function timeBreakdown(registry: Registry): Promise<Record<string, { s: number; n: number }>> {
  const out: Record<string, { s: number; n: number }> = {};
  for (const m of await registry.getMetricsAsJSON()) {
    for (const v of m.values) {
      const name = String((v as { metricName?: string }).metricName ?? '');
      if (!name.endsWith('_sum') && !name.endsWith('_count')) continue;
      const op = typeof v.labels.op === 'string' ? `:${v.labels.op}` : '';
      const id = `${m.name.replace(/^stream_|_seconds$/g, '')}${op}`;
      const slot = (out[id] ??= { s: 0, n: 0 });
      if (name.endsWith('_sum')) slot.s += v.value;
      else slot.n += v.value;
    }
  }
  return out;
}

/**
 * BENCH_CONSUMER_CONFIG and BENCH_PRODUCER_CONFIG: extra librdkafka settings as JSON, for trials
 * of the client's knobs.
 */
function clientOverrides(variable: string): Record<string, string | number | boolean> {
  const raw = process.env[variable];
  return raw ? (JSON.parse(raw) as Record<string, string | number | boolean>) : {};
}

async function runPassthrough(): Promise<() => Promise<void>> {
  const config = loadConfig(process.env);
  const input = process.env.BENCH_INPUT ?? '';
  const output = process.env.BENCH_OUTPUT ?? '';
  const hop = process.env.BENCH_HOP ?? '';
  const changelog = process.env.BENCH_CHANGELOG ?? '';
  if (!input || !output === !(hop && changelog))
    throw new Error('BENCH_INPUT must be set, and either BENCH_OUTPUT or both BENCH_HOP and BENCH_CHANGELOG');
  const conn = {
    brokers: config.kafka.brokers,
    clientId: `${config.service.name}-${config.service.instanceId}`,
  };
  // The topology's I/O under exactly once commits as the runtime does: a transaction per commit
  // interval, with the consumed offsets in it, so the hop is read only once it has committed.
  const transactional = hop !== '' && config.kafka.processingGuarantee === 'exactly_once';
  // The runtime's producer and consumer settings, minus transactions unless those are measured.
  const producer = new Producer({
    ...librdkafkaConfig(conn),
    ...(transactional
      ? {
          'transactional.id': `${config.service.name}-${config.service.instanceId}`,
          'transaction.timeout.ms': config.kafka.transactionTimeoutMs,
        }
      : {}),
    'enable.idempotence': true,
    'linger.ms': 1,
    'compression.codec': 'lz4',
    dr_cb: true,
  });
  let undelivered = 0;
  producer.on('delivery-report', () => undelivered--);
  await kafkaCall((cb) => producer.connect({ timeout: 30_000 }, (err) => cb(err)));
  producer.setPollInterval(50);
  if (transactional) await kafkaCall((cb) => producer.initTransactions(30_000, cb));
  let inTransaction = false;
  const consumer = new KafkaConsumer({
    ...librdkafkaConfig(conn),
    'group.id': config.service.name,
    'partition.assignment.strategy': 'cooperative-sticky',
    'session.timeout.ms': config.kafka.sessionTimeoutMs,
    'enable.auto.commit': false,
    'enable.auto.offset.store': false,
    'isolation.level': 'read_committed',
    'auto.offset.reset': 'earliest',
    'fetch.wait.max.ms': 50,
    ...prefetchConfig(config.kafka.maxBatchBytes),
    rebalance_cb: true,
    ...clientOverrides('BENCH_CONSUMER_CONFIG'),
  }) as KafkaConsumerType;
  await kafkaCall((cb) => consumer.connect({ timeout: 30_000 }, (err) => cb(err)));
  consumer.setDefaultConsumeTimeout(Math.min(100, config.kafka.commitIntervalMs));
  consumer.setDefaultIsTimeoutOnlyForFirstMessage(true);
  consumer.subscribe(hop ? [input, hop] : [input]);
  let consumed = 0;
  let stopping = false;
  // Next offset per partition, of the input and of the hop.
  const pending = new Map<number, number>();
  const pendingHop = new Map<number, number>();
  // The open pack of each (input partition, hop partition): every source task of the runtime
  // writes to every repartition partition. Records spread over the hop by offset, as one
  // customer per record spreads them by key.
  const hopPartitions = config.kafka.topicPartitions;
  const packs = new Map<number, { parts: Buffer[]; bytes: number; ts: number | null }>();
  const writePack = async (id: number): Promise<void> => {
    const pack = packs.get(id);
    if (!pack) return;
    packs.delete(id);
    const value = Buffer.concat(pack.parts);
    while (!tryProduce(hop, value, 'pack', pack.ts, id % hopPartitions)) await drain();
  };
  const commit = async (): Promise<void> => {
    for (const id of [...packs.keys()]) await writePack(id);
    if (pending.size === 0 && pendingHop.size === 0) return;
    if (!transactional) await kafkaCall((cb) => producer.flush(30_000, cb));
    const offsets: TopicPartitionOffset[] = [];
    for (const [topic, map] of [
      [input, pending],
      [hop, pendingHop],
    ] as const) {
      for (const [partition, offset] of map) offsets.push({ topic, partition, offset });
      map.clear();
    }
    if (!transactional) {
      consumer.commitSync(offsets);
      return;
    }
    await kafkaCall((cb) => producer.sendOffsetsToTransaction(offsets, consumer, 30_000, cb));
    await kafkaCall((cb) => producer.commitTransaction(30_000, cb));
    inTransaction = false;
  };
  /** False when the producer's queue is full. */
  const tryProduce = (
    topic: string,
    value: Buffer | null,
    key: Buffer | string | null | undefined,
    timestamp: number | null,
    partition: number | null = null,
  ): boolean => {
    try {
      producer.produce(topic, partition, value, key, timestamp);
    } catch {
      return false;
    }
    undelivered++;
    return true;
  };
  const drain = async (): Promise<void> => {
    producer.poll();
    await new Promise((r) => setTimeout(r, 1));
  };
  const loop = async (): Promise<void> => {
    let last = Date.now();
    while (!stopping) {
      const msgs = await new Promise<Message[]>((resolve) =>
        consumer.consume(config.kafka.maxBatchRecords, (err: LibrdKafkaError | null, m: Message[]) =>
          resolve(err ? [] : m),
        ),
      );
      if (transactional && !inTransaction && msgs.length > 0) {
        await kafkaCall((cb) => producer.beginTransaction(cb));
        inTransaction = true;
      }
      for (const m of msgs) {
        const ts = m.timestamp ?? null;
        if (!hop) {
          while (!tryProduce(output, m.value, m.key, ts)) await drain();
          pending.set(m.partition, m.offset + 1);
        } else if (m.topic === input) {
          const value = m.value ?? Buffer.alloc(0);
          const id = m.partition * hopPartitions + (m.offset % hopPartitions);
          let pack = packs.get(id);
          if (pack && pack.bytes + value.length + 1 > PACK_BYTES) {
            await writePack(id);
            pack = undefined;
          }
          if (!pack) packs.set(id, (pack = { parts: [], bytes: 0, ts }));
          pack.parts.push(value, NEWLINE);
          pack.bytes += value.length + 1;
          pack.ts = ts;
          pending.set(m.partition, m.offset + 1);
          consumed++;
        } else {
          const value = m.value ?? Buffer.alloc(0);
          for (let start = 0, i = 0; start < value.length; i++) {
            const end = value.indexOf(0x0a, start);
            const item = value.subarray(start, end);
            while (!tryProduce(changelog, item, `${m.partition}.${m.offset}.${i}`, ts)) await drain();
            start = end + 1;
          }
          pendingHop.set(m.partition, m.offset + 1);
        }
      }
      if (!hop) consumed += msgs.length;
      if (Date.now() - last >= config.kafka.commitIntervalMs) {
        await commit();
        last = Date.now();
      }
    }
    await commit();
  };
  const done = loop();
  startSampler(() => consumed);
  return async () => {
    stopping = true;
    await done;
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
    await new Promise<void>((resolve) => producer.disconnect(10_000, () => resolve()));
    void undelivered;
  };
}

/**
 * BENCH_ALLOC_PROFILE=<file>: samples every allocation, collected or not, until the member stops
 * (a .heapprofile for Chrome DevTools). `--heap-prof` keeps only what is still alive at the end,
 * which says nothing about the garbage the collector spends its time on.
 */
async function startAllocationProfile(file: string): Promise<() => Promise<void>> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 32_768,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return async () => {
    const { profile } = await session.post('HeapProfiler.stopSampling');
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

async function main(): Promise<void> {
  // A harness that dies without stopping its members (a segmentation fault once, 2026-12-07) left
  // one consuming CPU beside every later run: a member whose parent is gone exits.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(70);
  }, 1000).unref();
  const allocFile = process.env.BENCH_ALLOC_PROFILE;
  const stopProfile = allocFile
    ? await startAllocationProfile(`${allocFile}.${process.pid}.heapprofile`)
    : undefined;
  process.on('unhandledRejection', (err) => {
    write({ ev: 'fatal', err: String(err) });
    process.exit(71);
  });
  const stopMember = process.env.BENCH_MODE === 'passthrough' ? await runPassthrough() : await runPipeline();
  const stop = async (): Promise<void> => {
    await stopMember();
    await stopProfile?.();
  };
  // The process start, so that the harness can split a recovery into boot, join and catch-up.
  write({ ev: 'started', processStart: Math.round(performance.timeOrigin) });
  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => {
        write({ ev: 'stopped' });
        process.exit(0);
      },
      (err: unknown) => {
        write({ ev: 'fatal', err: String(err) });
        process.exit(1);
      },
    );
  });
}

main().catch((err: unknown) => {
  write({ ev: 'fatal', err: err instanceof Error ? err.message : String(err) });
  process.exit(72);
});
