import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kafkaCall, Producer } from '../../src/runtime/kafka/client.js';
import { librdkafkaConfig } from '../../src/runtime/kafka/client-config.js';
import { infra, uniqueName } from '../helpers/env.js';
import { createTopics } from '../helpers/kafka.js';

/**
 * The client behaviour StreamRuntime.abort relies on. A transaction aborted right after its
 * first records, just after the previous one committed, can have its EndTxn reach the
 * coordinator before the partitions are registered: INVALID_TXN_STATE, fatal in librdkafka
 * (librdkafka #4849), and a member that exits for a restart. That is the abort of a state read
 * failing after the source stage produced its repartition records (test/chaos/g4.test.ts saw it).
 * Without the flush this loop failed in 4 of 11 runs on the test broker (at cycles 12 to 346),
 * so this test catches a regression often, not always; with it, every run passed.
 */
describe('abort after a flush (librdkafka #4849)', () => {
  it('never fails with INVALID_TXN_STATE, over 1,000 commit-then-abort cycles', async () => {
    const topic = uniqueName('it-abort-race');
    // One partition: here the race then hits within the first few dozen cycles, where four
    // partitions took hundreds.
    await createTopics([{ name: topic, partitions: 1 }]);
    const producer = new Producer({
      ...librdkafkaConfig({ brokers: infra().brokers, clientId: topic }),
      'transactional.id': topic,
      'enable.idempotence': true,
      'linger.ms': 1,
      dr_cb: true,
    });
    producer.on('delivery-report', () => undefined);
    await kafkaCall((cb) => producer.connect({ timeout: 30_000 }, (err) => cb(err)));
    producer.setPollInterval(50);
    try {
      await kafkaCall((cb) => producer.initTransactions(30_000, cb));
      const batch = (tag: string) => {
        for (let i = 0; i < 20; i++) producer.produce(topic, 0, Buffer.from(`${tag}${i}`));
      };
      for (let cycle = 0; cycle < 1000; cycle++) {
        await kafkaCall((cb) => producer.beginTransaction(cb));
        batch('c');
        await kafkaCall((cb) => producer.commitTransaction(30_000, cb));
        await kafkaCall((cb) => producer.beginTransaction(cb));
        batch('a');
        await kafkaCall((cb) => producer.flush(10_000, cb));
        await kafkaCall((cb) => producer.abortTransaction(30_000, cb)).catch((err: unknown) =>
          assert.fail(`cycle ${cycle}: abort failed: ${err instanceof Error ? err.message : String(err)}`),
        );
      }
    } finally {
      await new Promise<void>((resolve) => producer.disconnect(10_000, () => resolve()));
    }
  });
});
