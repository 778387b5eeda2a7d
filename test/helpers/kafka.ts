import {
  KafkaConsumer,
  KafkaJS,
  kafkaCall,
  type KafkaConsumerType,
  type Message,
  type Metadata,
} from '../../src/runtime/kafka/client.js';
import { librdkafkaConfig } from '../../src/runtime/kafka/client-config.js';
import { ensureTopics, type TopicSpec } from '../../src/runtime/kafka/topics.js';
import { infra } from './env.js';

export async function createTopics(
  topics: Array<Pick<TopicSpec, 'name' | 'partitions'> & Partial<TopicSpec>>,
): Promise<void> {
  await ensureTopics(
    { brokers: infra().brokers, clientId: 'test' },
    topics.map((t) => ({ cleanupPolicy: 'delete', description: 'test', ...t })),
  );
}

export interface TestRecord {
  key?: string | null;
  value: Buffer | string | object | null;
  partition?: number;
  headers?: Record<string, string>;
}

export async function produce(topic: string, records: TestRecord[]): Promise<void> {
  const producer = new KafkaJS.Kafka(
    librdkafkaConfig({ brokers: infra().brokers, clientId: 'test-producer' }),
  ).producer({
    'linger.ms': 5,
    'enable.idempotence': true,
  });
  await producer.connect();
  try {
    for (let i = 0; i < records.length; i += 1000) {
      await producer.send({
        topic,
        messages: records.slice(i, i + 1000).map((r) => ({
          key: r.key ?? null,
          value:
            r.value === null
              ? null
              : Buffer.isBuffer(r.value)
                ? r.value
                : typeof r.value === 'string'
                  ? r.value
                  : JSON.stringify(r.value),
          ...(r.partition !== undefined ? { partition: r.partition } : {}),
          ...(r.headers ? { headers: r.headers } : {}),
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

export interface ReadRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/**
 * Reads whole topics from the beginning with read_committed, as a downstream consumer of the
 * service sees them; stops when every partition is at its end (LSO) and nothing new arrived
 * for `quietMs`, or when `count` records were read.
 */
export async function readTopics(
  topics: string[],
  opts: { count?: number; quietMs?: number; timeoutMs?: number } = {},
): Promise<ReadRecord[]> {
  const quietMs = opts.quietMs ?? 2000;
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const c = new KafkaConsumer({
    ...librdkafkaConfig({ brokers: infra().brokers, clientId: 'test-reader' }),
    'group.id': `reader-${Math.random()}`,
    'enable.auto.commit': false,
    'isolation.level': 'read_committed',
    'auto.offset.reset': 'earliest',
  }) as KafkaConsumerType;
  await kafkaCall((cb) => c.connect({ timeout: 10_000 }, (err) => cb(err)));
  c.setDefaultConsumeTimeout(200);
  const out: ReadRecord[] = [];
  try {
    const meta = await kafkaCall<Metadata>((cb) => {
      c.getMetadata({ timeout: 10_000 }, cb);
    });
    const assignment = meta.topics
      .filter((t) => topics.includes(t.name))
      .flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.id, offset: -2 })));
    c.assign(assignment);
    let lastNew = Date.now();
    for (;;) {
      const batch = await kafkaCall<Message[]>((cb) => c.consume(1000, cb));
      for (const m of batch) {
        const headers: Record<string, string> = {};
        for (const h of m.headers ?? []) for (const [k, v] of Object.entries(h)) headers[k] = v.toString();
        out.push({
          topic: m.topic,
          partition: m.partition,
          offset: m.offset,
          key: m.key == null ? null : m.key.toString(),
          value: m.value ?? null,
          headers,
        });
      }
      if (batch.length > 0) lastNew = Date.now();
      if (opts.count !== undefined && out.length >= opts.count) break;
      if (Date.now() - lastNew >= quietMs && (opts.count === undefined || Date.now() > deadline)) break;
      if (Date.now() > deadline) break;
    }
  } finally {
    await new Promise<void>((resolve) => c.disconnect(() => resolve()));
  }
  return out;
}

/** Multiset of key + value, the form in which outputs of two runs are compared. */
export function multiset(records: Array<Pick<ReadRecord, 'key' | 'value'>>): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of records) {
    const k = `${r.key ?? ''}\u0000${r.value?.toString('utf8') ?? '<null>'}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}
