import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitForLeaders } from '../../../src/runtime/kafka/topics.js';

type Admin = Parameters<typeof waitForLeaders>[0];
type Meta = Awaited<ReturnType<Admin['fetchTopicMetadata']>>;

const partition = (partitionId: number, leader: number) => ({
  partitionId,
  leader,
  replicas: [leader],
  isr: [leader],
});

/** A metadata source that answers with each step in turn, then keeps answering with the last. */
function scripted(steps: Array<Meta | Error>): { admin: Admin; asked: string[][] } {
  const asked: string[][] = [];
  let i = 0;
  const admin = {
    fetchTopicMetadata: (opts?: { topics?: string[] }) => {
      asked.push(opts?.topics ?? []);
      const step = steps[Math.min(i++, steps.length - 1)];
      return step instanceof Error ? Promise.reject(step) : Promise.resolve(step);
    },
  } as Admin;
  return { admin, asked };
}

describe('waitForLeaders', () => {
  it('waits through unknown topics and missing leaders, asking only for the topics still waiting', async () => {
    const { admin, asked } = scripted([
      new Error('Broker: Unknown topic or partition'),
      [
        { name: 'a', partitions: [partition(0, 1), partition(1, -1)] },
        { name: 'b', partitions: [partition(0, 1)] },
      ],
      [{ name: 'a', partitions: [partition(0, 1), partition(1, 1)] }],
    ] as Array<Meta | Error>);
    await waitForLeaders(admin, ['a', 'b'], 5_000, 1);
    assert.deepEqual(asked, [['a', 'b'], ['a', 'b'], ['a']]);
  });

  it('gives up after the timeout, naming the topics without a leader', async () => {
    const { admin } = scripted([[{ name: 'a', partitions: [] }]] as Array<Meta | Error>);
    await assert.rejects(waitForLeaders(admin, ['a'], 30, 1), /no leader after 30 ms: a$/);
  });
});
