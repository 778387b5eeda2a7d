import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { generate, type GenerateOptions } from '../../src/generators/index.js';
import { branchTotalsConfig } from '../../src/pipelines/branch-totals/branch-totals.config.js';
import { branchTotalsTopology } from '../../src/pipelines/branch-totals/branch-totals.topology.js';
import { fraudTriggerConfig } from '../../src/pipelines/fraud-trigger/fraud-trigger.config.js';
import { fraudTriggerTopology } from '../../src/pipelines/fraud-trigger/fraud-trigger.topology.js';
import { uniqueName } from '../helpers/env.js';
import { createTopics, produce, readTopics, type ReadRecord } from '../helpers/kafka.js';
import { eventually, startRuntime, type RuntimeHandle } from '../helpers/runtime.js';
import { branchOracle, decimalEquals, formatDecimal, parseDecimal } from '../oracle/branch-oracle.js';
import { fraudOracle } from '../oracle/fraud-oracle.js';

/**
 * Correctness against an oracle: the service, on a real broker and Redis, must produce exactly
 * what a plain batch computation of semantics.md (test/oracle/, sharing no code with the runtime)
 * computes from the same generated input.
 */

const handles: RuntimeHandle[] = [];
after(async () => {
  for (const h of handles) await h.stop().catch(() => undefined);
});

async function stop(h: RuntimeHandle): Promise<void> {
  await h.stop();
  handles.splice(handles.indexOf(h), 1);
}

/** Waits up to this long for the outputs to be complete. */
const OUTPUT_TIMEOUT_MS = 180_000;

interface KV {
  key: string | null;
  value: string;
}

const text = (r: ReadRecord): KV => ({ key: r.key, value: r.value?.toString('utf8') ?? '<null>' });

/** Equal multisets of (key, value); on a difference, shows a few of each side's surplus. */
function assertSameMultiset(what: string, got: KV[], expected: KV[]): void {
  const counts = new Map<string, number>();
  const id = (r: KV) => `${r.key ?? ''}\u0000${r.value}`;
  for (const r of expected) counts.set(id(r), (counts.get(id(r)) ?? 0) + 1);
  for (const r of got) counts.set(id(r), (counts.get(id(r)) ?? 0) - 1);
  const missing: string[] = [];
  const extra: string[] = [];
  for (const [k, n] of counts) {
    for (let i = 0; i < Math.abs(n); i++) (n > 0 ? missing : extra).push(k.replace('\u0000', ' => '));
  }
  assert.ok(
    missing.length === 0 && extra.length === 0,
    `${what}: got ${got.length}, expected ${expected.length}; ` +
      `${missing.length} missing, e.g. ${JSON.stringify(missing.slice(0, 3))}; ` +
      `${extra.length} unexpected, e.g. ${JSON.stringify(extra.slice(0, 3))}`,
  );
}

/** Values per partition, in log order, and the records to produce. */
function split(
  values: Buffer[],
  partitionOf: (value: Buffer, i: number) => number,
  partitions: number,
): { byPartition: Buffer[][]; records: Array<{ value: Buffer; partition: number }> } {
  const byPartition = Array.from({ length: partitions }, (): Buffer[] => []);
  const records = values.map((value, i) => {
    const partition = partitionOf(value, i);
    byPartition[partition].push(value);
    return { value, partition };
  });
  return { byPartition, records };
}

/**
 * Produces `records`, runs the fraud topology on them, waits for the oracle's number of
 * alerts and late records, then reads everything again (to see any surplus) and compares.
 */
async function fraudCase(
  label: string,
  options: GenerateOptions & { count: number },
  partitions: number,
  partitionOf: (value: Buffer, i: number) => number,
): Promise<{ alerts: number; late: number }> {
  const t0 = Date.now();
  const app = uniqueName(`oracle-${label}`);
  const input = `${app}-tx`;
  const output = `${app}-alerts`;
  const lateTopic = `${input}.late`;
  const dlqTopic = `${input}.dlq`;
  const values = [...generate('fraud', options)].map((r) => r.value);
  const { byPartition, records } = split(values, partitionOf, partitions);
  const oracle = fraudOracle(byPartition);
  const tOracle = Date.now();

  await createTopics([
    { name: input, partitions },
    { name: output, partitions: 2 },
  ]);
  await produce(input, records);
  const tProduced = Date.now();

  const config = fraudTriggerConfig({ FRAUD_INPUT_TOPIC: input, FRAUD_OUTPUT_TOPIC: output });
  const h = await startRuntime(app, [fraudTriggerTopology(config)]);
  handles.push(h);
  const expectedCount = oracle.alerts.length + oracle.late;
  const first = await readTopics([output, lateTopic], { count: expectedCount, timeoutMs: OUTPUT_TIMEOUT_MS });
  const tDone = Date.now();
  assert.equal(
    first.length,
    expectedCount,
    `${label}: outputs incomplete after ${OUTPUT_TIMEOUT_MS} ms (alerts + late)`,
  );
  // Everything again, to catch what arrived beyond the expected count.
  const all = await readTopics([output, lateTopic, dlqTopic], { quietMs: 2000 });
  assert.deepEqual(h.fatal, []);
  await stop(h);

  const got = (topic: string) => all.filter((r) => r.topic === topic).map(text);
  assert.deepEqual(got(dlqTopic), [], `${label}: dead letters`);
  assertSameMultiset(`${label}: alerts`, got(output), oracle.alerts);
  assertSameMultiset(`${label}: late records`, got(lateTopic), oracle.lateRecords);
  console.log(
    `oracle ${label}: records ${oracle.total}, partitions ${partitions}, alerts ${oracle.alerts.length}, ` +
      `late ${oracle.late}, windows fired ${oracle.windowsFired}, open ${oracle.windowsOpen}; ` +
      `oracle ${tOracle - t0} ms, produce ${tProduced - tOracle} ms, run until complete ${tDone - tProduced} ms, ` +
      `total ${Date.now() - t0} ms`,
  );
  return { alerts: oracle.alerts.length, late: oracle.late };
}

describe('correctness against a batch oracle (semantics.md)', () => {
  it('fraud alerts, sim mode, 100,000 records, 1 partition, some late records near window ends', async () => {
    // Jitter above the 60 s bound: a few records behind a window end arrive after it fired.
    const r = await fraudCase(
      'sim-1p',
      {
        count: 100_000,
        seed: 42,
        timeMode: 'sim',
        simStepMs: 60_000,
        jitterMs: 90_000,
        customers: 100,
      },
      1,
      () => 0,
    );
    assert.ok(r.alerts > 1000, `many windows should close with alerts (${r.alerts})`);
    assert.ok(r.late > 0, 'the jitter should make some records late');
  });

  it('fraud alerts, seed mode (most records late), 100,000 records, 1 partition', async () => {
    // Two minutes after a window boundary: the window before it fires late in the stream,
    // once a record in the last minute raises the watermark past the boundary.
    const r = await fraudCase(
      'seed-1p',
      { count: 100_000, seed: 43, timeMode: 'seed', now: Date.UTC(2024, 5, 1, 0, 2, 0), customers: 100 },
      1,
      () => 0,
    );
    assert.ok(r.late > 90_000, `most records should be late (${r.late})`);
    assert.ok(r.alerts > 10, `some windows should still alert (${r.alerts})`);
  });

  it('fraud alerts, sim mode, 100,000 records, 4 partitions, each customer in one partition', async () => {
    // One time base for all partitions and jitter below the bound: no record is late even against
    // its own partition's watermark, so none is under the minimum either, whatever the interleaving.
    const customerPartition = new Map<string, number>();
    const r = await fraudCase(
      'sim-4p',
      {
        count: 100_000,
        seed: 44,
        timeMode: 'sim',
        simStepMs: 60_000,
        jitterMs: 30_000,
        customers: 100,
      },
      4,
      (value) => {
        const { customer } = JSON.parse(value.toString('utf8')) as { customer: string };
        let p = customerPartition.get(customer);
        if (p === undefined) customerPartition.set(customer, (p = customerPartition.size % 4));
        return p;
      },
    );
    assert.equal(r.late, 0);
    assert.ok(r.alerts > 1000, `many windows should close with alerts (${r.alerts})`);
  });

  it('branch totals equal the exact sums (50,000 payments, 4 partitions), windowed totals too', async () => {
    const t0 = Date.now();
    const app = uniqueName('oracle-branch');
    const input = `${app}-payments`;
    const totalsTopic = `${app}-totals`;
    const windowedTopic = `${app}-windowed`;
    const config = branchTotalsConfig({
      BRANCH_INPUT_TOPIC: input,
      BRANCH_TOTALS_TOPIC: totalsTopic,
      BRANCH_WINDOWED_TOPIC: windowedTopic,
    });
    // Jitter (1 s) below the windowed totals' bound (5 s), round-robin over partitions: no
    // payment can be late under any interleaving, so the windowed totals are exact too.
    const values = [
      ...generate('payments', { count: 50_000, seed: 45, timeMode: 'sim', jitterMs: 1000 }),
    ].map((r) => r.value);
    const { byPartition, records } = split(values, (_, i) => i % 4, 4);
    const oracle = branchOracle(byPartition, {
      windowMs: config.windowMs,
      outOfOrdernessMs: config.outOfOrdernessMs,
    });
    assert.equal(oracle.late, 0);

    await createTopics([
      { name: input, partitions: 4 },
      { name: totalsTopic, partitions: 2, cleanupPolicy: 'compact' },
      { name: windowedTopic, partitions: 2 },
    ]);
    await produce(input, records);
    const tProduced = Date.now();
    const h = await startRuntime(app, [branchTotalsTopology(config)]);
    handles.push(h);

    interface Row {
      branch: string;
      pay_amount: number;
      pay_amount_exact: string;
      count: number;
      window_start?: string;
      window_end?: string;
    }
    const parse = (r: ReadRecord) => JSON.parse(r.value!.toString('utf8')) as Row;
    let latest = new Map<string, Row>();
    await eventually(
      async () => {
        // The last record per key is the upsert's current value (one key, one partition).
        const rows = await readTopics([totalsTopic], { quietMs: 500 });
        latest = new Map(rows.map((r) => [r.key!, parse(r)]));
        return [...latest.values()].reduce((n, v) => n + v.count, 0) >= oracle.total;
      },
      OUTPUT_TIMEOUT_MS,
      'totals counting every payment',
    );
    const tTotals = Date.now();
    const windowed = await readTopics([windowedTopic], {
      count: oracle.windows.size,
      timeoutMs: OUTPUT_TIMEOUT_MS,
    });
    const tDone = Date.now();
    const windowedAll = await readTopics([windowedTopic], { quietMs: 2000 });
    assert.deepEqual(h.fatal, []);
    await stop(h);

    assert.deepEqual([...latest.keys()].sort(), [...oracle.totals.keys()].sort());
    for (const [branch, want] of oracle.totals) {
      const row = latest.get(branch)!;
      assert.equal(row.branch, branch);
      assert.equal(row.count, want.count, `${branch}: count`);
      assert.ok(
        decimalEquals(parseDecimal(row.pay_amount_exact), want.sum),
        `${branch}: pay_amount_exact ${row.pay_amount_exact}, exact sum ${formatDecimal(want.sum)}`,
      );
      assert.equal(row.pay_amount, Number(formatDecimal(want.sum)), `${branch}: pay_amount`);
    }

    assert.equal(windowed.length, oracle.windows.size, 'windowed totals incomplete');
    assert.equal(windowedAll.length, oracle.windows.size, 'windowed totals: more than one row per window');
    const seen = new Set<string>();
    for (const r of windowedAll) {
      const row = parse(r);
      const start = Date.parse(row.window_start!);
      const k = `${row.branch}@${start}`;
      const want = oracle.windows.get(k);
      assert.ok(want, `unexpected window ${k}`);
      assert.ok(!seen.has(k), `window ${k} twice`);
      seen.add(k);
      assert.equal(r.key, row.branch);
      assert.equal(row.window_end, new Date(want.end).toISOString());
      assert.equal(row.count, want.count, `${k}: count`);
      assert.ok(
        decimalEquals(parseDecimal(row.pay_amount_exact), want.sum),
        `${k}: pay_amount_exact ${row.pay_amount_exact}, exact sum ${formatDecimal(want.sum)}`,
      );
      assert.equal(row.pay_amount, Number(formatDecimal(want.sum)), `${k}: pay_amount`);
    }
    console.log(
      `oracle branch-4p: payments ${oracle.total}, branches ${oracle.totals.size}, ` +
        `windows fired ${oracle.windows.size}, open ${oracle.windowsOpen}, late ${oracle.late}, ` +
        `amounts with > 18 fractional digits ${oracle.longAmounts}; ` +
        `produce ${tProduced - t0} ms, totals complete after ${tTotals - tProduced} ms, ` +
        `windowed after ${tDone - tProduced} ms, total ${Date.now() - t0} ms`,
    );
  });
});
