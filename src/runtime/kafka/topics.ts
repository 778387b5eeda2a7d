import { setTimeout as sleep } from 'node:timers/promises';
import { KafkaJS, type KafkaJSLogger } from './client.js';
import { librdkafkaConfig, type KafkaConnection } from './client-config.js';

/** One declared topic. The registry of these is the single source of topic names, partitions and policies. */
export interface TopicSpec {
  name: string;
  partitions: number;
  /** Upsert outputs and changelogs are compacted so the latest value per key survives retention. */
  cleanupPolicy: 'delete' | 'compact';
  /** Extra topic configs (retention.ms, segment.ms, ...). */
  config?: Record<string, string>;
  /** Who uses it, for the topics CLI listing. */
  description: string;
  /**
   * Internal topics (repartition, changelog) must have exactly the declared partition count:
   * tasks are per partition, and a different count would change which keys meet in one task.
   * Input topics may have any count.
   */
  internal?: boolean;
}

export interface EnsureTopicsResult {
  created: string[];
  existing: string[];
}

export class TopicMismatchError extends Error {}

/** Creates the declared topics that are missing; idempotent. */
export async function ensureTopics(
  conn: KafkaConnection,
  specs: readonly TopicSpec[],
  replicationFactor = 1,
): Promise<EnsureTopicsResult> {
  // librdkafka reports why a connection fails (SASL, TLS, DNS) only in its log; keep the last
  // problem so the error a caller sees names the cause, not just "transport failure".
  let lastProblem: string | undefined;
  const note = (message: string) => {
    lastProblem = message.replace(/^\[thrd:[^\]]*\]: /, '');
  };
  const logger: KafkaJSLogger = {
    info: () => undefined,
    debug: () => undefined,
    warn: note,
    error: note,
    namespace: () => logger,
    setLogLevel: () => undefined,
  };
  const admin = new KafkaJS.Kafka(
    librdkafkaConfig({ ...conn, clientId: `${conn.clientId ?? 'stream'}-admin` }),
  ).admin({
    kafkaJS: { logger },
  });
  try {
    await admin.connect();
  } catch (err) {
    const base = err instanceof Error ? err.message : String(err);
    throw new Error(lastProblem ? `${base}: ${lastProblem}` : base, { cause: err });
  }
  try {
    const existing = new Set(await admin.listTopics({ timeout: 10_000 }));
    const missing = specs.filter((s) => !existing.has(s.name));
    if (missing.length > 0) {
      await admin.createTopics({
        timeout: 30_000,
        topics: missing.map((s) => ({
          topic: s.name,
          numPartitions: s.partitions,
          replicationFactor,
          configEntries: Object.entries({ 'cleanup.policy': s.cleanupPolicy, ...s.config }).map(
            ([name, value]) => ({
              name,
              value,
            }),
          ),
        })),
      });
      await waitForLeaders(
        admin,
        missing.map((s) => s.name),
        30_000,
      );
    }
    const present = specs.filter((s) => s.internal && existing.has(s.name));
    if (present.length > 0) {
      const meta = await admin.fetchTopicMetadata({ topics: present.map((s) => s.name), timeout: 10_000 });
      for (const spec of present) {
        const found = meta.find((m) => m.name === spec.name);
        const count = found?.partitions.length ?? 0;
        if (count !== spec.partitions) {
          throw new TopicMismatchError(
            `topic ${spec.name} has ${count} partitions but ${spec.partitions} are declared; ` +
              `add partitions with kafka-topics --alter or recreate it`,
          );
        }
      }
    }
    return {
      created: missing.map((s) => s.name),
      existing: specs.filter((s) => existing.has(s.name)).map((s) => s.name),
    };
  } finally {
    await admin.disconnect();
  }
}

/**
 * CreateTopics answers once the controller has the topics, before every broker's metadata does.
 * A consumer that subscribes in that gap is told the topic does not exist, and librdkafka only
 * looks again at the next metadata refresh (topic.metadata.refresh.interval.ms, 5 minutes): a
 * bench run caught a new member whose repartition topic stayed unassigned that way. So wait
 * until the metadata names a leader for every partition.
 */
export async function waitForLeaders(
  admin: Pick<ReturnType<InstanceType<typeof KafkaJS.Kafka>['admin']>, 'fetchTopicMetadata'>,
  topics: string[],
  timeoutMs: number,
  pauseMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let waiting = topics;
  for (;;) {
    try {
      const meta = await admin.fetchTopicMetadata({ topics: waiting, timeout: 5_000 });
      waiting = waiting.filter((t) => {
        const m = meta.find((x) => x.name === t);
        return !m || m.partitions.length === 0 || m.partitions.some((p) => p.leader < 0);
      });
    } catch {
      // Unknown topic or partition: the metadata does not have them yet.
    }
    if (waiting.length === 0) return;
    if (Date.now() >= deadline)
      throw new Error(`created topics have no leader after ${timeoutMs} ms: ${waiting.join(', ')}`);
    await sleep(pauseMs);
  }
}
