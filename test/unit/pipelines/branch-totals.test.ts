import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { branchTotalsConfig } from '../../../src/pipelines/branch-totals/branch-totals.config.js';
import { branchTotalsTopology } from '../../../src/pipelines/branch-totals/branch-totals.topology.js';
import { addAmount, toUnits, unitsToString } from '../../../src/pipelines/branch-totals/decimal.js';
import { localTimeToEpoch } from '../../../src/pipelines/branch-totals/local-time.js';
import { TopologyTestDriver } from '../../../src/runtime/testing/driver.js';

const pay = (branchId: number, payAmount: number, createTime = '2024-01-01 00:00:10') => ({
  createTime,
  orderId: 1,
  payAmount,
  payPlatform: 0,
  branchId,
});

describe('exact decimal sums', () => {
  it('adds the decimals the JSON shows, without float drift', () => {
    let s = '0';
    for (let i = 0; i < 10; i++) s = addAmount(s, 0.1);
    assert.equal(s, '1');
    assert.notEqual(
      Array.from({ length: 10 }, () => 0.1).reduce((a, b) => a + b),
      1,
    );
    assert.equal(unitsToString(toUnits(1e-7)), '0.0000001');
    assert.equal(unitsToString(toUnits(123.456789012345)), '123.456789012345');
    // 20 fractional digits: more than a fixed 18-digit scale could hold.
    assert.equal(addAmount('0', 0.0012345678901234567), '0.0012345678901234567');
    assert.equal(addAmount(addAmount('0', 1.5e-20), 2.5e-20), '0.00000000000000000004');
  });
});

describe('local time', () => {
  it('reads the seed createTime as UTC by default, or in a given zone', () => {
    assert.equal(localTimeToEpoch('2024-01-01 00:00:00', 'UTC'), Date.parse('2024-01-01T00:00:00Z'));
    assert.equal(
      localTimeToEpoch('2024-07-01 12:00:00', 'Europe/Berlin'),
      Date.parse('2024-07-01T10:00:00Z'),
    );
    assert.ok(Number.isNaN(localTimeToEpoch('2024-02-30 00:00:00', 'UTC')));
    assert.ok(Number.isNaN(localTimeToEpoch('2024-01-01T00:00:00', 'UTC')));
  });
});

describe('branch totals topology', () => {
  it('upserts the exact running total per branch once per commit', async () => {
    const d = await new TopologyTestDriver(branchTotalsTopology(branchTotalsConfig({})), {
      commitEvery: 1000,
    }).start();
    await d.pipe(
      'payment_msg',
      [pay(1, 0.1), pay(1, 0.2), pay(2, 5), pay(1, 0.3)].map((value) => ({ value })),
    );
    await d.commit();
    const totals = d.read('branch-totals');
    assert.deepEqual(
      totals.map((t) => [t.key, t.value]),
      [
        ['Branch_1', { branch: 'Branch_1', pay_amount: 0.6, pay_amount_exact: '0.6', count: 3 }],
        ['Branch_2', { branch: 'Branch_2', pay_amount: 5, pay_amount_exact: '5', count: 1 }],
      ],
    );
  });

  it('sends unknown branch ids to the DLQ instead of crashing like the seed', async () => {
    const d = await new TopologyTestDriver(branchTotalsTopology(branchTotalsConfig({}))).start();
    await d.pipe('payment_msg', [{ value: pay(42, 1) }]);
    assert.equal(d.read('payment_msg.dlq')[0].headers['x-error-message'], 'unknown branchId 42');
  });

  it('totals each minute of event time per branch', async () => {
    const d = await new TopologyTestDriver(branchTotalsTopology(branchTotalsConfig({})), {
      commitEvery: 1,
    }).start();
    await d.pipe(
      'payment_msg',
      [
        pay(0, 1, '2024-01-01 00:00:01'),
        pay(0, 2, '2024-01-01 00:00:59'),
        pay(0, 4, '2024-01-01 00:01:30'),
        pay(3, 1, '2024-01-01 00:02:10'),
      ].map((value) => ({ value })),
    );
    await d.commit();
    assert.deepEqual(
      d.read('branch-totals-windowed').map((w) => w.value),
      [
        {
          branch: 'Branch_0',
          window_start: '2024-01-01T00:00:00.000Z',
          window_end: '2024-01-01T00:01:00.000Z',
          pay_amount: 3,
          pay_amount_exact: '3',
          count: 2,
        },
        // The 00:02:10 record moves the watermark (5 s bound) to 00:02:05, past this window's end too.
        {
          branch: 'Branch_0',
          window_start: '2024-01-01T00:01:00.000Z',
          window_end: '2024-01-01T00:02:00.000Z',
          pay_amount: 4,
          pay_amount_exact: '4',
          count: 1,
        },
      ],
    );
  });
});

describe('branch totals business metrics', () => {
  it('are updated for committed output only', async () => {
    const { Registry } = await import('prom-client');
    const { branchTotalsMetrics } =
      await import('../../../src/pipelines/branch-totals/branch-totals.metrics.js');
    const registry = new Registry();
    const metrics = branchTotalsMetrics(registry);
    const d = await new TopologyTestDriver(branchTotalsTopology(branchTotalsConfig({}), metrics), {
      commitEvery: 1000,
    }).start();
    await d.pipe('payment_msg', [{ value: pay(4, 2.5) }, { value: pay(4, 2.5) }]);
    assert.doesNotMatch(
      await registry.metrics(),
      /stream_branch_total_amount\{branch="Branch_4"\}/,
      'nothing before the commit',
    );
    await d.commit();
    assert.match(await registry.metrics(), /stream_branch_total_amount\{branch="Branch_4"\} 5/);
    assert.match(await registry.metrics(), /stream_branch_payments\{branch="Branch_4"\} 2/);
  });
});
