import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  KafkaConsumer,
  kafkaCall,
  type KafkaConsumerType,
  type LibrdKafkaError,
  type Message,
  type TopicPartition,
} from '../../src/runtime/kafka/client.js';
import { librdkafkaConfig } from '../../src/runtime/kafka/client-config.js';
import { connectRedis, createRedisClient } from '../../src/runtime/state/redis-client.js';
import { infra, uniqueName } from '../helpers/env.js';
import { createTopics, produce, readTopics } from '../helpers/kafka.js';

describe('real broker and Redis', () => {
  it('produces and consumes through the broker', async () => {
    const topic = uniqueName('it-roundtrip');
    await createTopics([{ name: topic, partitions: 3 }]);
    await produce(
      topic,
      Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: { i } })),
    );
    const read = await readTopics([topic], { count: 30 });
    assert.equal(read.length, 30);
    assert.deepEqual(
      read.map((r) => (JSON.parse(r.value!.toString()) as { i: number }).i).sort((a, b) => a - b),
      Array.from({ length: 30 }, (_, i) => i),
    );
  });

  it('a consumer that subscribes as soon as ensureTopics returns is assigned every new partition', async () => {
    // Without waiting for leaders, a subscription in the gap between CreateTopics and the broker's
    // metadata found no topic, and librdkafka looked again only after 5 minutes.
    const topics = [1, 2, 3, 4].map((i) => uniqueName(`it-fresh-${i}`));
    await createTopics(topics.map((name) => ({ name, partitions: 2 })));
    const assigned = new Set<string>();
    const c = new KafkaConsumer({
      ...librdkafkaConfig({ brokers: infra().brokers, clientId: 'test-fresh' }),
      'group.id': uniqueName('it-fresh-group'),
      'enable.auto.commit': false,
      rebalance_cb: (err: LibrdKafkaError, tps: TopicPartition[]) => {
        if (err.code === -175) {
          for (const tp of tps) assigned.add(`${tp.topic}/${tp.partition}`);
          c.assign(tps);
        } else c.unassign();
      },
    }) as KafkaConsumerType;
    await kafkaCall((cb) => c.connect({ timeout: 10_000 }, (err) => cb(err)));
    try {
      c.subscribe(topics);
      const deadline = Date.now() + 30_000;
      while (assigned.size < topics.length * 2 && Date.now() < deadline) {
        await kafkaCall<Message[]>((cb) => c.consume(1, cb)).catch(() => undefined);
      }
      assert.equal(assigned.size, topics.length * 2, `assigned: ${[...assigned].join(', ')}`);
    } finally {
      await new Promise<void>((resolve) => c.disconnect(() => resolve()));
    }
  });

  it('writes and reads Redis, single node and cluster', async () => {
    const { redisUrl, clusterNodes } = infra();
    const setups: Array<string[] | undefined> = [undefined];
    if (clusterNodes) setups.push(clusterNodes.split(','));
    for (const nodes of setups) {
      const client = createRedisClient({ url: redisUrl, ...(nodes ? { clusterNodes: nodes } : {}) });
      await connectRedis(client);
      const key = uniqueName('it-key');
      await client.set(key, 'v', 'EX', 60);
      assert.equal(await client.get(key), 'v');
      assert.equal(await client.del(key), 1);
      client.disconnect();
    }
  });
});
