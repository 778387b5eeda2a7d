import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
