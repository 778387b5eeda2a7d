import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { fraudTriggerConfig } from '../../src/pipelines/fraud-trigger/fraud-trigger.config.js';
import { fraudTriggerTopology } from '../../src/pipelines/fraud-trigger/fraud-trigger.topology.js';
import { branchTotalsConfig } from '../../src/pipelines/branch-totals/branch-totals.config.js';
import { branchTotalsTopology } from '../../src/pipelines/branch-totals/branch-totals.topology.js';
import { generate } from '../../src/generators/index.js';
import { TopologyTestDriver } from '../../src/runtime/testing/driver.js';
import { uniqueName } from '../helpers/env.js';
import { createTopics, multiset, produce, readTopics } from '../helpers/kafka.js';
import { eventually, startRuntime, type RuntimeHandle } from '../helpers/runtime.js';

const handles: RuntimeHandle[] = [];
after(async () => {
  for (const h of handles) await h.stop().catch(() => undefined);
});

async function runFraud(cluster: boolean) {
  const app = uniqueName('it-fraud');
  const input = `${app}-tx`;
  const output = `${app}-alerts`;
  const config = fraudTriggerConfig({ FRAUD_INPUT_TOPIC: input, FRAUD_OUTPUT_TOPIC: output });
  const plan = fraudTriggerTopology(config);
  await createTopics([
    { name: input, partitions: 1 },
    { name: output, partitions: 2 },
  ]);
  const records = [
    ...generate('fraud', {
      count: 3000,
      seed: 11,
      timeMode: 'sim',
      simStepMs: 60_000,
      jitterMs: 30_000,
      customers: 40,
    }),
  ];
  await produce(
    input,
    records.map((r) => ({ value: r.value })),
  );

  // The expected answer: the same engine, without Kafka or Redis.
  const driver = await new TopologyTestDriver(plan, {
    app,
    repartitionPartitions: 4,
    commitEvery: 250,
  }).start();
  await driver.pipe(
    input,
    records.map((r) => ({ value: r.value })),
  );
  await driver.commit();
  const expected = driver.read(output);
  assert.ok(expected.length > 20, `the input should raise alerts (got ${expected.length})`);

  const h = await startRuntime(app, [plan], { cluster });
  handles.push(h);
  const got = await readTopics([output], { count: expected.length, timeoutMs: 60_000 });
  assert.deepEqual(h.fatal, []);
  assert.equal(got.length, expected.length);
  assert.deepEqual(
    multiset(got),
    multiset(expected.map((e) => ({ key: e.key, value: Buffer.from(JSON.stringify(e.value)) }))),
  );
  await eventually(() => h.health.readinessProblems().length === 0, 10_000, 'readiness');
  // Each event's latency is observed once, when the keyed stage's commit makes its result
  // visible; the repartition hop's commit before it is not a second sample.
  const observed = async (): Promise<number> => {
    const metric = await h.registry.getSingleMetric('stream_end_to_end_latency_seconds')!.get();
    const count = metric.values.find(
      (v) => (v as { metricName?: string }).metricName === 'stream_end_to_end_latency_seconds_count',
    );
    return count?.value ?? 0;
  };
  let seen = 0;
  await eventually(async () => (seen = await observed()) >= records.length, 30_000, 'latency samples');
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(await observed(), records.length, `latency samples (first seen ${seen})`);
  return { h, app };
}

describe('stream runtime on a real broker and Redis', () => {
  it('computes exactly what the test driver computes (fraud trigger, single Redis)', async () => {
    const { h } = await runFraud(false);
    await h.stop();
    handles.splice(handles.indexOf(h), 1);
  });

  it('works the same on a 3-master Redis Cluster', async () => {
    assert.ok(
      process.env.REDIS_CLUSTER_NODES,
      'REDIS_CLUSTER_NODES must name the test cluster (npm test starts one)',
    );
    const { h, app } = await runFraud(true);
    const meta = await h.state.meta(`${app}-fraud-trigger-by-customer-repartition`, 0);
    assert.ok(meta.owner && meta.in, 'task meta lives in the cluster');
    await h.stop();
    handles.splice(handles.indexOf(h), 1);
  });

  it('keeps exact branch totals in Redis and the compacted topic', async () => {
    const app = uniqueName('it-branch');
    const input = `${app}-payments`;
    const config = branchTotalsConfig({
      BRANCH_INPUT_TOPIC: input,
      BRANCH_TOTALS_TOPIC: `${app}-totals`,
      BRANCH_WINDOWED_TOPIC: `${app}-windowed`,
    });
    await createTopics([
      { name: input, partitions: 2 },
      { name: `${app}-totals`, partitions: 2, cleanupPolicy: 'compact' },
      { name: `${app}-windowed`, partitions: 2 },
    ]);
    const records = [...generate('payments', { count: 2000, seed: 5, timeMode: 'sim', jitterMs: 1000 })];
    await produce(
      input,
      records.map((r, i) => ({ value: r.value, partition: i % 2 })),
    );
    const h = await startRuntime(app, [branchTotalsTopology(config)]);
    handles.push(h);
    const exact = new Map<string, bigint>();
    for (const r of records) {
      const p = JSON.parse(r.value.toString()) as { branchId: number; payAmount: number };
      const [int, frac = ''] = String(p.payAmount).split('.');
      const units = BigInt(int) * 10n ** 18n + BigInt(frac.padEnd(18, '0'));
      exact.set(`Branch_${p.branchId}`, (exact.get(`Branch_${p.branchId}`) ?? 0n) + units);
    }
    await eventually(
      async () => {
        const rows = await readTopics([`${app}-totals`], { quietMs: 500 });
        const latest = new Map(
          rows.map((r) => [
            r.key!,
            JSON.parse(r.value!.toString()) as { count: number; pay_amount_exact: string },
          ]),
        );
        const total = [...latest.values()].reduce((n, v) => n + v.count, 0);
        if (total !== records.length) return false;
        for (const [branch, units] of exact) {
          const s = latest.get(branch)!.pay_amount_exact;
          const [i, f = ''] = s.split('.');
          assert.equal(BigInt(i) * 10n ** 18n + BigInt(f.padEnd(18, '0')), units, branch);
        }
        return true;
      },
      60_000,
      'totals for every record',
    );
    await h.stop();
    handles.splice(handles.indexOf(h), 1);
  });
});
