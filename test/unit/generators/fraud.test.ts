import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CustomerNames, PLAIN_NAME_LIMIT, round2 } from '../../../src/generators/fraud.js';
import {
  type FraudTransaction,
  generate,
  type GenerateOptions,
  LAT_RANGE,
  LON_RANGE,
  TRANSACTION_TYPES,
} from '../../../src/generators/index.js';

const FIELDS = [
  'customer',
  'transaction_type',
  'online_payment_amount',
  'in_store_payment_amount',
  'lat',
  'lon',
  'transaction_datetime',
];

function fraud(opts: GenerateOptions): FraudTransaction[] {
  return [...generate('fraud', opts)].map((r) => JSON.parse(r.value.toString('utf8')) as FraudTransaction);
}

const bytes = (opts: GenerateOptions): Buffer =>
  Buffer.concat(
    [...generate('fraud', opts)].flatMap((r) => [r.value, Buffer.from(`|${r.key}|${r.timestamp}\n`)]),
  );

describe('fraud generator', () => {
  it('is byte-identical for the same seed and options', () => {
    const opts: GenerateOptions = { count: 2000, seed: 7, keyMode: 'entity', malformedShare: 0.1 };
    assert.deepEqual(bytes(opts), bytes(opts));
    assert.deepEqual(
      bytes({ count: 500, timeMode: 'seed', now: Date.UTC(2024, 5, 1) }),
      bytes({ count: 500, timeMode: 'seed', now: Date.UTC(2024, 5, 1) }),
    );
  });

  it('differs between seeds', () => {
    assert.notDeepEqual(bytes({ count: 100, seed: 1 }), bytes({ count: 100, seed: 2 }));
    assert.notDeepEqual(fraud({ count: 5, seed: 1 })[0]?.customer, fraud({ count: 5, seed: 2 })[0]?.customer);
  });

  it('has the seed fields, in order, with the seed ranges', () => {
    const txs = fraud({ count: 10_000, seed: 3 });
    assert.equal(txs.length, 10_000);
    const types = new Set<string>();
    let bothZero = 0;
    let online = 0;
    for (const tx of txs) {
      assert.deepEqual(Object.keys(tx), FIELDS);
      assert.equal(typeof tx.customer, 'string');
      assert.ok(tx.customer.length > 0);
      assert.ok((TRANSACTION_TYPES as readonly string[]).includes(tx.transaction_type));
      types.add(tx.transaction_type);
      const a = tx.online_payment_amount;
      const b = tx.in_store_payment_amount;
      for (const x of [a, b]) {
        assert.ok(Number.isFinite(x) && x >= 0 && x <= 100, `amount ${x}`);
        assert.equal(round2(x), x, 'two decimals at most');
      }
      // The seed puts the amount in one slot and 0 in the other; round() can make the amount 0.0 too.
      assert.ok(a === 0 || b === 0, 'at most one amount is non-zero');
      if (a === 0 && b === 0) bothZero++;
      if (a !== 0) online++;
      assert.ok(tx.lat >= LAT_RANGE[0] && tx.lat < LAT_RANGE[1]);
      assert.ok(tx.lon >= LON_RANGE[0] && tx.lon < LON_RANGE[1]);
      assert.match(tx.transaction_datetime, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    }
    assert.equal(types.size, 8, 'all 8 transaction types appear');
    // P(both zero) = P(randint(1,100) * random() < 0.005) ~ 0.00026: rare but possible, as in the seed.
    assert.ok(bothZero < 30, `both zero ${bothZero}`);
    // The shuffle puts the amount online about half the time.
    assert.ok(Math.abs(online / 10_000 - 0.5) < 0.03, `online share ${online / 10_000}`);
  });

  it('sets timestamp to the event time in transaction_datetime, and the key per key mode', () => {
    const none = [...generate('fraud', { count: 100 })];
    for (const r of none) {
      assert.equal(r.key, null);
      const tx = JSON.parse(r.value.toString()) as FraudTransaction;
      assert.equal(Date.parse(tx.transaction_datetime), r.timestamp);
      assert.equal(r.malformed, undefined);
    }
    for (const r of generate('fraud', { count: 100, keyMode: 'entity' })) {
      assert.equal(r.key, (JSON.parse(r.value.toString()) as FraudTransaction).customer);
    }
  });

  it('draws customers from a population of distinct names, 100 by default', () => {
    const names = new Set(fraud({ count: 5000 }).map((t) => t.customer));
    assert.ok(names.size > 90 && names.size <= 100, `${names.size} customers`);
    const pop = new CustomerNames(100, 1);
    assert.equal(new Set(Array.from({ length: 100 }, (_, i) => pop.get(i))).size, 100);
    assert.equal(new Set(fraud({ count: 1000, customers: 3 }).map((t) => t.customer)).size, 3);
    assert.throws(() => generate('fraud', { customers: 0 }), RangeError);
  });

  it('makes a million distinct customer names cheaply', () => {
    const t0 = performance.now();
    const pop = new CustomerNames(1_000_000, 1);
    const built = performance.now() - t0;
    assert.ok(built < 3000, `built in ${built} ms`);
    const names = new Set<string>();
    for (let i = 0; i < pop.count; i++) names.add(pop.get(i));
    assert.equal(names.size, 1_000_000);
    assert.equal(pop.get(0), pop.get(0));
    assert.match(pop.get(PLAIN_NAME_LIMIT), / 2$/);
    // And the records use them: with a million customers few repeat.
    const used = new Set(fraud({ count: 10_000, customers: 1_000_000 }).map((t) => t.customer));
    assert.ok(used.size > 9_900, `${used.size} distinct of 10000`);
  });
});

describe('round2 (Python round(x, 2))', () => {
  it('rounds the exact binary value, ties to even', () => {
    assert.equal(round2(0.125), 0.12); // exact tie, even
    assert.equal(round2(0.375), 0.38); // exact tie, even
    assert.equal(round2(2.675), 2.67); // 2.675 is 2.67499999... in binary
    assert.equal(round2(1.005), 1); // 1.00499999...
    assert.equal(round2(0.004), 0);
    assert.equal(round2(12.3456), 12.35);
    assert.equal(round2(99.999), 100);
  });
});
