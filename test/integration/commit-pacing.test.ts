import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fraudTriggerConfig } from '../../src/pipelines/fraud-trigger/fraud-trigger.config.js';
import { fraudTriggerTopology } from '../../src/pipelines/fraud-trigger/fraud-trigger.topology.js';
import { generate } from '../../src/generators/index.js';
import { KafkaJS } from '../../src/runtime/kafka/client.js';
import { librdkafkaConfig } from '../../src/runtime/kafka/client-config.js';
import { infra, uniqueName } from '../helpers/env.js';
import { createTopics } from '../helpers/kafka.js';
import { eventually, startRuntime, type RuntimeHandle } from '../helpers/runtime.js';

const handles: RuntimeHandle[] = [];
after(async () => {
  for (const h of handles) await h.stop().catch(() => undefined);
});

async function committed(h: RuntimeHandle): Promise<number> {
  const m = await h.registry.getSingleMetric('stream_transactions_committed_total')!.get();
  return m.values.reduce((n, v) => n + v.value, 0);
}

/**
 * Transactions committed while records trickle in, one every 40 ms for 2 s, with a 2 s
 * COMMIT_INTERVAL_MS: a member that has caught up commits after commitCaughtUpMs instead.
 */
async function commitsUnderLightLoad(commitCaughtUpMs: number): Promise<number> {
  const app = uniqueName('it-pacing');
  const input = `${app}-tx`;
  const config = fraudTriggerConfig({ FRAUD_INPUT_TOPIC: input, FRAUD_OUTPUT_TOPIC: `${app}-alerts` });
  await createTopics([
    { name: input, partitions: 1 },
    { name: `${app}-alerts`, partitions: 1 },
  ]);
  const h = await startRuntime(app, [fraudTriggerTopology(config)], {
    commitIntervalMs: 2000,
    commitCaughtUpMs,
  });
  handles.push(h);
  await eventually(() => h.health.readinessProblems().length === 0, 30_000, 'readiness');
  const producer = new KafkaJS.Kafka(
    librdkafkaConfig({ brokers: infra().brokers, clientId: 'test-producer' }),
  ).producer({ 'linger.ms': 0 });
  await producer.connect();
  const before = await committed(h);
  try {
    for (const r of generate('fraud', { count: 50, seed: 3, timeMode: 'sim', customers: 5 })) {
      await producer.send({ topic: input, messages: [{ value: r.value }] });
      await sleep(40);
    }
  } finally {
    await producer.disconnect();
  }
  const n = (await committed(h)) - before;
  await h.stop();
  handles.splice(handles.indexOf(h), 1);
  return n;
}

describe('commit pacing on a real broker', () => {
  it('commits after commitCaughtUpMs once caught up, not after the whole commitIntervalMs', async () => {
    const paced = await commitsUnderLightLoad(50);
    const plain = await commitsUnderLightLoad(2000);
    // About 2 s of input: one commit per 2 s interval without the rule, one per ~50 ms plus
    // a commit's own time with it.
    assert.ok(plain <= 3, `with commitCaughtUpMs = commitIntervalMs: ${plain} commits in about 2 s`);
    assert.ok(paced >= 8, `with commitCaughtUpMs 50: ${paced} commits in about 2 s`);
  });
});
