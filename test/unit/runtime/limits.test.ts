import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { branchTotalsConfig } from '../../../src/pipelines/branch-totals/branch-totals.config.js';
import { branchTotalsTopology } from '../../../src/pipelines/branch-totals/branch-totals.topology.js';
import { DEFAULT_LIMITS, KeyedTask } from '../../../src/runtime/engine.js';
import { H } from '../../../src/runtime/records.js';
import { TopologyTestDriver } from '../../../src/runtime/testing/driver.js';
import { fraudDriver, HOUR, T0, tx } from '../../helpers/fraud.js';

const dlq = (d: TopologyTestDriver) => d.read('transactions-data.dlq');

describe('limits', () => {
  it('sends a record over MAX_RECORD_BYTES to the DLQ unparsed, without key or value', async () => {
    const d = await fraudDriver({ maxRecordBytes: 400 });
    const small = Buffer.from(JSON.stringify(tx('ann', 0)));
    // Not even JSON: had it been parsed, the reason would be not-json.
    const big = Buffer.alloc(401, 'x');
    const keyed = Buffer.alloc(300, 'y');
    await d.pipe('transactions-data', [
      { value: small },
      { value: big },
      { value: keyed, key: 'k'.repeat(101) },
      { value: small, key: 'k'.repeat(400 - small.length) },
    ]);
    const dead = dlq(d);
    assert.deepEqual(
      dead.map((r) => [r.headers[H.reason], r.headers[H.sourceOffset], r.headers[H.recordBytes]]),
      [
        ['record-too-large', '1', '401'],
        ['record-too-large', '2', '401'],
      ],
    );
    for (const r of dead) {
      assert.equal(r.key, null);
      assert.equal(r.value, null);
      assert.equal(r.headers[H.errorClass], 'InvalidRecordError');
      assert.match(r.headers[H.errorMessage], /401 bytes .* over MAX_RECORD_BYTES=400; not parsed/);
      assert.equal(r.headers[H.sourceTopic], 'transactions-data');
      assert.equal(r.headers[H.sourcePartition], '0');
    }
    assert.equal(d.counters.limitExceeded, 2);
    assert.equal(d.counters.deadLetters, 2);
    assert.equal(d.keyedTask('by-customer', 0)!.openWindows, 1);
  });

  it('also bounds what the source stage writes: re-encoded numbers can grow', async () => {
    const d = await fraudDriver({ maxRecordBytes: 600 });
    // 1e20 re-encodes as 100000000000000000000: 4 bytes in, 21 out, for every element. The
    // newline keeps the hop from carrying the bytes as they came: a pack's lines end in one.
    const text = JSON.stringify(tx('ann', 0)).replace(
      '{',
      `{\n"extra":[${new Array(60).fill('1e20').join(',')}],`,
    );
    assert.ok(Buffer.byteLength(text) <= 600);
    await d.pipe('transactions-data', [{ value: Buffer.from(text) }]);
    const [dead] = dlq(d);
    assert.equal(dead.headers[H.reason], 'record-too-large');
    assert.match(dead.headers[H.errorMessage], /repartition .* over MAX_RECORD_BYTES=600/);
    // The input was within the limit, so its DLQ copy keeps the value.
    assert.ok(dead.value !== null);
    assert.equal(d.counters.limitExceeded, 1);
  });

  it('refuses a record that would open more windows than MAX_OPEN_WINDOWS_PER_TASK, and counts fired ones out', async () => {
    const d = await fraudDriver({ maxOpenWindowsPerTask: 3 });
    await d.pipe(
      'transactions-data',
      ['a', 'b', 'c', 'd', 'a', 'e'].map((c, i) => ({ value: tx(c, i * 1000) })),
    );
    const dead = dlq(d);
    assert.deepEqual(
      dead.map((r) => [r.headers[H.reason], r.headers[H.sourceOffset], r.key]),
      [
        ['too-many-open-windows', '3', 'd'],
        ['too-many-open-windows', '5', 'e'],
      ],
    );
    assert.match(dead[0].headers[H.errorMessage], /has 3 open windows; key "d" would open 1 more/);
    const task = d.keyedTask('by-customer', 0)!;
    assert.equal(task.openWindows, 3);
    // A record 11 h on is judged by the watermark before it (Flink's order), so it is refused
    // too; the watermark it carries then fires all three windows, which frees room.
    await d.pipe('transactions-data', [{ value: tx('f', 11 * HOUR) }]);
    assert.equal(dlq(d).length, 3);
    assert.equal(task.openWindows, 0);
    await d.pipe('transactions-data', [{ value: tx('g', 11 * HOUR) }]);
    assert.equal(dlq(d).length, 3);
    assert.equal(task.openWindows, 1);
    assert.equal(d.counters.limitExceeded, 3);
  });

  it('restores the open-window count from the committed state, so a new owner decides the same', async () => {
    const d = await fraudDriver({ maxOpenWindowsPerTask: 1000 }, 2);
    await d.pipe(
      'transactions-data',
      Array.from({ length: 40 }, (_, i) => ({ value: tx(`c${i % 25}`, (i % 3) * 11 * HOUR) })),
    );
    await d.commit();
    for (const p of [0, 1]) {
      const task = d.keyedTask('by-customer', p)!;
      const stored = d.state.dump(`${task.topic}/${p}`)['customer-windows'] ?? {};
      const expected = Object.values(stored).reduce(
        (n, text) => n + Object.keys((JSON.parse(text) as { v: object }).v).length,
        0,
      );
      assert.ok(expected > 0);
      assert.equal(task.openWindows, expected);
      const hooks = { deadLetter: () => undefined, late: () => undefined };
      const next = new KeyedTask(
        d.app,
        task.pipeline,
        task.stage,
        p,
        1,
        d.state.task(`${task.topic}/${p}`),
        10,
        hooks,
      );
      await next.backend.claim();
      await next.refreshDue();
      assert.equal(next.openWindows, expected);
    }
  });

  it('refuses the record for every aggregate of the stage, not only the windowed one', async () => {
    const plan = branchTotalsTopology(branchTotalsConfig({}));
    const d = await new TopologyTestDriver(plan, {
      commitEvery: 1,
      repartitionPartitions: 1,
      limits: { maxOpenWindowsPerTask: 1 },
    }).start();
    const pay = (branchId: number, second: number) => ({
      createTime: new Date(T0 + second * 1000).toISOString().slice(0, 19).replace('T', ' '),
      orderId: second,
      payAmount: 1.5,
      payPlatform: 0,
      branchId,
    });
    await d.pipe('payment_msg', [{ value: pay(1, 0) }, { value: pay(2, 1) }, { value: pay(1, 2) }]);
    await d.commit();
    assert.deepEqual(
      d.read('payment_msg.dlq').map((r) => [r.headers[H.reason], r.headers[H.sourceOffset]]),
      [['too-many-open-windows', '1']],
    );
    const totals = new Map(d.read('branch-totals').map((r) => [r.key, r.value as { count: number }]));
    assert.deepEqual([...totals.keys()], ['Branch_1']);
    assert.equal(totals.get('Branch_1')!.count, 2);
  });

  it('has defaults generous enough for normal traffic', () => {
    assert.equal(DEFAULT_LIMITS.maxRecordBytes, 262_144);
    assert.equal(DEFAULT_LIMITS.maxOpenWindowsPerTask, 1_000_000);
  });
});
