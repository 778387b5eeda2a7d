import { KafkaConsumer, kafkaCall, type KafkaConsumerType, type Message } from './client.js';
import { librdkafkaConfig, type KafkaConnection } from './client-config.js';

/**
 * Reads a range of one changelog partition with read_committed, outside any consumer group:
 * the restore path uses it to bring Redis up to the committed transaction (G2) or to rebuild
 * a task's state after Redis lost it (G4).
 */
export class ChangelogReader {
  private consumer: KafkaConsumerType | undefined;

  constructor(
    private readonly conn: KafkaConnection,
    private readonly groupId: string,
  ) {}

  private async client(): Promise<KafkaConsumerType> {
    if (this.consumer) return this.consumer;
    const c = new KafkaConsumer({
      ...librdkafkaConfig({ ...this.conn, clientId: `${this.conn.clientId ?? 'stream'}-restore` }),
      // Never joins or commits for this id: assign() only, offsets are ours.
      'group.id': this.groupId,
      'enable.auto.commit': false,
      'enable.auto.offset.store': false,
      'isolation.level': 'read_committed',
      'enable.partition.eof': true,
      'fetch.wait.max.ms': 50,
    }) as KafkaConsumerType;
    await kafkaCall((cb) => c.connect({ timeout: 15_000 }, (err) => cb(err)));
    c.setDefaultConsumeTimeout(200);
    this.consumer = c;
    return c;
  }

  /** Calls `onBatch` with every record of [from, to) in order; returns how many it read. */
  async read(
    topic: string,
    partition: number,
    from: number,
    to: number,
    onBatch: (records: Message[]) => Promise<void>,
    timeoutMs = 120_000,
  ): Promise<number> {
    if (from >= to) return 0;
    const c = await this.client();
    c.assign([{ topic, partition, offset: from }]);
    const deadline = Date.now() + timeoutMs;
    let count = 0;
    try {
      for (;;) {
        const batch = await kafkaCall<Message[]>((cb) => c.consume(1000, cb));
        const inRange = batch.filter(
          (m) =>
            m.topic === topic &&
            m.partition === partition &&
            m.offset >= from &&
            m.offset < to &&
            m.value !== undefined,
        );
        const records = inRange.filter(
          (m) => typeof (m as { offset?: unknown }).offset === 'number' && !('eof' in m),
        );
        if (records.length > 0) {
          count += records.length;
          await onBatch(records);
        }
        // Transaction markers occupy offsets but are never delivered, so "done" is the position, not the last record.
        const [pos] = c.position([{ topic, partition }]);
        if (
          (pos && pos.offset >= to) ||
          batch.some((m) => m.topic === topic && m.partition === partition && m.offset >= to - 1)
        )
          return count;
        if (Date.now() > deadline) {
          throw new Error(
            `restoring ${topic}/${partition} [${from}, ${to}) timed out after ${timeoutMs} ms at position ${pos?.offset}`,
          );
        }
      }
    } finally {
      c.unassign();
    }
  }

  async close(): Promise<void> {
    const c = this.consumer;
    this.consumer = undefined;
    if (c) await new Promise<void>((resolve) => c.disconnect(() => resolve()));
  }
}
