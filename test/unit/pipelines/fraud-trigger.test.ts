import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fraudTriggerConfig } from '../../../src/pipelines/fraud-trigger/fraud-trigger.config.js';
import { fraudTriggerTopology } from '../../../src/pipelines/fraud-trigger/fraud-trigger.topology.js';
import { H } from '../../../src/runtime/records.js';
import { TopologyTestDriver } from '../../../src/runtime/testing/driver.js';

// A 10-hour window boundary (windows are aligned to the epoch).
const T0 = Date.parse('2024-01-01T08:00:00Z');
const tx = (customer: string, minute: number, online: number, inStore: number, lat = 44.7, lon = 20.4) => ({
  customer,
  transaction_type: 'shopping',
  online_payment_amount: online,
  in_store_payment_amount: inStore,
  lat,
  lon,
  transaction_datetime: new Date(T0 + minute * 60_000).toISOString(),
});

async function driver(env: NodeJS.ProcessEnv = {}, partitions = 1) {
  const plan = fraudTriggerTopology(fraudTriggerConfig(env));
  return new TopologyTestDriver(plan, {
    sourcePartitions: { 'transactions-data': partitions },
    commitEvery: 1,
  }).start();
}

describe('fraud trigger topology', () => {
  it('alerts when a window closes with 3+ transactions, online < in-store, inside the box', async () => {
    const d = await driver();
    await d.pipe('transactions-data', [
      { value: tx('ann', 1, 0, 10) },
      { value: tx('ann', 2, 5, 0) },
      { value: tx('ann', 3, 0, 20.5, 44.8, 20.5) },
      { value: tx('bob', 4, 100, 0) },
      // Pushes the watermark past the window's end (18:00, with the 60 s bound).
      { value: tx('zed', 601, 0, 1) },
    ]);
    await d.commit();
    const alerts = d.read('fraud-alerts');
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0].key, 'ann');
    assert.deepEqual(alerts[0].value, {
      customer: 'ann',
      count_transactions: 3,
      total_online_payment_amount: 5,
      total_in_store_payment_amount: 30.5,
      lat: 44.8,
      lon: 20.5,
      last_transaction_time: '2024-01-01T18:00:00.000Z',
    });
  });

  it('does not fire before the watermark reaches the window end', async () => {
    const d = await driver();
    await d.pipe(
      'transactions-data',
      [tx('ann', 1, 0, 10), tx('ann', 2, 0, 10), tx('ann', 3, 0, 10), tx('zed', 600, 0, 1)].map((value) => ({
        value,
      })),
    );
    await d.commit();
    assert.equal(d.read('fraud-alerts').length, 0, 'watermark is the window end - 60 s: not there yet');
  });

  it('fires exactly when the watermark reaches end - 1, and not a millisecond before', async () => {
    const end = T0 + 10 * 3_600_000;
    const at = (ms: number) => ({ ...tx('ann', 0, 0, 1), transaction_datetime: new Date(ms).toISOString() });
    const d = await driver();
    await d.pipe(
      'transactions-data',
      [at(T0), at(T0 + 1), at(T0 + 2), at(end - 2 + 60_000)].map((value) => ({ value })),
    );
    await d.commit();
    assert.equal(d.read('fraud-alerts').length, 0, 'watermark = end - 2');
    await d.pipe('transactions-data', [{ value: at(end - 1 + 60_000) }]);
    await d.commit();
    assert.equal(d.read('fraud-alerts').length, 1, 'watermark = end - 1');
    // The record that moved the watermark belongs to the next window; one at end - 1 is now late.
    await d.pipe('transactions-data', [{ value: at(end - 1) }]);
    assert.equal(d.read('transactions-data.late').length, 1);
  });

  it('sends records whose window already fired to the late topic with the reason', async () => {
    const d = await driver();
    await d.pipe('transactions-data', [{ value: tx('ann', 700, 0, 1) }, { value: tx('ann', 5, 0, 1) }]);
    await d.commit();
    const late = d.read('transactions-data.late');
    assert.equal(late.length, 1);
    assert.equal(late[0].headers[H.reason], 'window-closed');
    assert.equal(late[0].headers[H.sourceOffset], '1');
    assert.equal(d.counters.late, 1);
  });

  it('sends invalid records to the DLQ with their origin and keeps going', async () => {
    const d = await driver();
    await d.pipe('transactions-data', [
      { value: Buffer.from('{not json') },
      { value: { ...tx('ann', 1, 0, 1), lat: 'north' } },
      { value: { ...tx('ann', 1, 0, 1), transaction_datetime: '2024-13-45' } },
      { value: Buffer.from([0xff, 0xfe, 0x00]) },
      { value: tx('ann', 2, 0, 1) },
    ]);
    const dlq = d.read('transactions-data.dlq');
    assert.deepEqual(
      dlq.map((r) => r.headers[H.reason]),
      ['not-json', 'schema', 'invalid-event-time', 'not-utf8'],
    );
    assert.deepEqual(
      dlq.map((r) => r.headers[H.sourceOffset]),
      ['0', '1', '2', '3'],
    );
    assert.equal(dlq[0].headers[H.sourceTopic], 'transactions-data');
    assert.match(dlq[1].headers[H.errorMessage], /lat/);
  });

  it('follows the configured comparison, minimum count and box', async () => {
    const d = await driver({ FRAUD_COMPARISON: 'online_gt_in_store', FRAUD_MIN_COUNT: '2' });
    await d.pipe(
      'transactions-data',
      [
        tx('ann', 1, 10, 0),
        tx('ann', 2, 10, 0),
        tx('bob', 1, 10, 0),
        tx('bob', 2, 10, 0, 50, 20.4),
        tx('zed', 700, 0, 0),
      ].map((value) => ({ value })),
    );
    await d.commit();
    assert.deepEqual(
      d.read('fraud-alerts').map((a) => a.key),
      ['ann'],
    );
  });

  it('waits for the slowest upstream partition, and an idle timeout releases it', async () => {
    const d = await driver({ FRAUD_IDLE_TIMEOUT_MS: '5000' }, 2);
    await d.pipe(
      'transactions-data',
      [tx('ann', 1, 0, 1), tx('ann', 2, 0, 1), tx('ann', 3, 0, 1), tx('zed', 700, 0, 1)].map((value) => ({
        value,
        partition: 0,
      })),
    );
    await d.commit();
    assert.equal(
      d.read('fraud-alerts').length,
      0,
      'partition 1 has said nothing: it holds the watermark back',
    );
    d.advanceTime(6000);
    await d.commit();
    assert.equal(d.read('fraud-alerts').length, 1, 'idle partition 1 no longer holds it back');
  });

  it('keeps window state only until the window fires', async () => {
    const d = await driver();
    await d.pipe(
      'transactions-data',
      [tx('ann', 1, 0, 1), tx('zed', 700, 0, 1)].map((value) => ({ value })),
    );
    await d.commit();
    const stored = d.state.taskIds().flatMap((id) => Object.keys(d.state.dump(id)['customer-windows'] ?? {}));
    assert.deepEqual(stored, ['zed']);
  });
});
