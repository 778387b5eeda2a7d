import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { generate, type GenerateOptions, type Payment } from '../../../src/generators/index.js';
import { createTimeFormatter } from '../../../src/generators/payments.js';

const FIELDS = ['createTime', 'orderId', 'payAmount', 'payPlatform', 'branchId'];

function payments(opts: GenerateOptions): Payment[] {
  return [...generate('payments', opts)].map((r) => JSON.parse(r.value.toString('utf8')) as Payment);
}

const bytes = (opts: GenerateOptions): Buffer =>
  Buffer.concat(
    [...generate('payments', opts)].flatMap((r) => [r.value, Buffer.from(`|${r.key}|${r.timestamp}\n`)]),
  );

describe('payments generator', () => {
  it('is byte-identical for the same seed and options, and differs between seeds', () => {
    const opts: GenerateOptions = {
      count: 2000,
      seed: 11,
      keyMode: 'entity',
      malformedShare: 0.1,
      timeZone: 'Europe/Belgrade',
    };
    assert.deepEqual(bytes(opts), bytes(opts));
    assert.notDeepEqual(bytes({ count: 100, seed: 1 }), bytes({ count: 100, seed: 2 }));
  });

  it('has the seed fields, in order, with the seed distributions', () => {
    const ps = payments({ count: 10_000, seed: 5 });
    let platform0 = 0;
    const branches = new Map<number, number>();
    let sum = 0;
    for (const p of ps) {
      assert.deepEqual(Object.keys(p), FIELDS);
      assert.match(p.createTime, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
      assert.ok(Number.isSafeInteger(p.orderId));
      assert.ok(typeof p.payAmount === 'number' && p.payAmount >= 0 && p.payAmount < 1000);
      sum += p.payAmount;
      assert.ok(p.payPlatform === 0 || p.payPlatform === 1);
      if (p.payPlatform === 0) platform0++;
      assert.ok(Number.isInteger(p.branchId) && p.branchId >= 0 && p.branchId <= 9);
      branches.set(p.branchId, (branches.get(p.branchId) ?? 0) + 1);
    }
    // Binomial(10000, 0.9): sd 30, so 0.015 is 5 sd.
    assert.ok(Math.abs(platform0 / 10_000 - 0.9) < 0.015, `payPlatform 0 share ${platform0 / 10_000}`);
    assert.equal(branches.size, 10);
    for (const c of branches.values()) assert.ok(Math.abs(c - 1000) < 160, `branch count ${c}`);
    assert.ok(Math.abs(sum / 10_000 - 500) < 15, 'payAmount = 1000 * random()');
    assert.ok(
      ps.some((p) => !Number.isInteger(p.payAmount)),
      'payAmount is a float',
    );
  });

  it('numbers orders from the start instant in unix seconds, or from orderIdStart', () => {
    const ps = payments({ count: 50, simStartMs: Date.UTC(2024, 0, 1) });
    ps.forEach((p, i) => assert.equal(p.orderId, 1_704_067_200 + i));
    const now = Date.UTC(2024, 5, 1, 12, 0, 0, 500);
    assert.equal(payments({ count: 1, timeMode: 'seed', now })[0]?.orderId, Math.floor(now / 1000));
    assert.equal(payments({ count: 3, orderIdStart: 7 })[2]?.orderId, 9);
  });

  it('writes createTime for the record timestamp, in whole seconds, in the chosen zone', () => {
    const utc = [...generate('payments', { count: 200, seed: 2 })];
    const belgrade = [...generate('payments', { count: 200, seed: 2, timeZone: 'Europe/Belgrade' })];
    utc.forEach((r, i) => {
      const p = JSON.parse(r.value.toString()) as Payment;
      assert.equal(r.timestamp % 1000, 0);
      assert.equal(Date.parse(`${p.createTime.replace(' ', 'T')}Z`), r.timestamp);
      const other = belgrade[i];
      assert.ok(other);
      assert.equal(other.timestamp, r.timestamp);
      // 2024-01-01 is winter time in Belgrade: UTC+1.
      const q = JSON.parse(other.value.toString()) as Payment;
      assert.equal(Date.parse(`${q.createTime.replace(' ', 'T')}+01:00`), r.timestamp);
    });
    assert.throws(() => generate('payments', { timeZone: 'Mars/Olympus' }), RangeError);
  });

  it('formats summer time and midnight in a zone correctly', () => {
    const f = createTimeFormatter('Europe/Belgrade');
    assert.equal(f(Date.UTC(2024, 6, 1, 22, 0, 0)), '2024-07-02 00:00:00');
    assert.equal(f(Date.UTC(2024, 0, 1, 23, 59, 59, 999)), '2024-01-02 00:59:59');
    assert.equal(createTimeFormatter()(Date.UTC(2024, 1, 29, 13, 4, 5, 999)), '2024-02-29 13:04:05');
  });

  it('keys by branchId in entity mode and by nothing by default', () => {
    for (const r of generate('payments', { count: 100, keyMode: 'entity' })) {
      assert.equal(r.key, String((JSON.parse(r.value.toString()) as Payment).branchId));
    }
    for (const r of generate('payments', { count: 10 })) assert.equal(r.key, null);
  });
});

describe('generate options', () => {
  it('rejects bad options at the call', () => {
    assert.throws(() => generate('payments', { count: -1 }), RangeError);
    assert.throws(() => generate('payments', { count: 1.5 }), RangeError);
    assert.throws(() => generate('payments', { malformedShare: 2 }), RangeError);
    assert.throws(() => generate('payments', { malformedShare: NaN }), RangeError);
    assert.throws(() => generate('fraud', { jitterMs: -1 }), RangeError);
    assert.throws(() => generate('fraud', { seed: Infinity }), RangeError);
    assert.throws(() => generate('walrus' as 'fraud'), RangeError);
  });

  it('is endless without a count', () => {
    let n = 0;
    for (const _ of generate('payments', { seed: 1 })) if (++n === 25_000) break;
    assert.equal(n, 25_000);
  });
});
