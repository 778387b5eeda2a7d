import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { deriveSeed, Rng, seededFaker } from '../../../src/generators/random.js';

const draws = (rng: Rng, n: number): number[] => Array.from({ length: n }, () => rng.uint32());

describe('Rng', () => {
  it('repeats its sequence for the same seed and label', () => {
    assert.deepEqual(draws(new Rng(42), 100), draws(new Rng(42), 100));
    assert.deepEqual(draws(new Rng(42, 'x'), 100), draws(new Rng(42, 'x'), 100));
  });

  it('differs between seeds, labels, and seeds 2^32 apart', () => {
    assert.notDeepEqual(draws(new Rng(1), 10), draws(new Rng(2), 10));
    assert.notDeepEqual(draws(new Rng(1, 'a'), 10), draws(new Rng(1, 'b'), 10));
    assert.notEqual(deriveSeed(1), deriveSeed(1 + 2 ** 32));
  });

  it('random() and float() stay in their half-open ranges', () => {
    const rng = new Rng(3);
    let sum = 0;
    for (let i = 0; i < 100_000; i++) {
      const x = rng.random();
      assert.ok(x >= 0 && x < 1);
      sum += x;
      const f = rng.float(44.57, 44.91);
      assert.ok(f >= 44.57 && f < 44.91);
    }
    assert.ok(Math.abs(sum / 100_000 - 0.5) < 0.01);
  });

  it('int(a, b) includes both ends and is roughly uniform', () => {
    const rng = new Rng(4);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const k = rng.int(0, 9);
      assert.ok(Number.isInteger(k) && k >= 0 && k <= 9);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    for (const c of counts) assert.ok(Math.abs(c - 10_000) < 500, `count ${c}`);
    assert.equal(rng.int(5, 5), 5);
    const big = rng.int(0, 2 ** 40);
    assert.ok(Number.isSafeInteger(big) && big >= 0 && big <= 2 ** 40);
    assert.throws(() => rng.int(2, 1), RangeError);
    assert.throws(() => rng.int(0.5, 1), RangeError);
  });

  it('choice, shuffle and bernoulli behave', () => {
    const rng = new Rng(5);
    assert.throws(() => rng.choice([]), RangeError);
    const items = ['a', 'b', 'c'];
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) seen.add(rng.choice(items));
    assert.equal(seen.size, 3);

    const list = Array.from({ length: 50 }, (_, i) => i);
    const shuffled = rng.shuffle([...list]);
    assert.notDeepEqual(shuffled, list);
    assert.deepEqual(
      [...shuffled].sort((x, y) => x - y),
      list,
    );

    let hits = 0;
    for (let i = 0; i < 100_000; i++) if (rng.bernoulli(0.3)) hits++;
    assert.ok(Math.abs(hits / 100_000 - 0.3) < 0.01);
    assert.equal(rng.bernoulli(0), false);
    assert.equal(rng.bernoulli(1), true);
  });

  it('bytes(n) returns n bytes, deterministically', () => {
    assert.equal(new Rng(6).bytes(7).length, 7);
    assert.deepEqual(new Rng(6).bytes(33), new Rng(6).bytes(33));
  });
});

describe('seededFaker', () => {
  it('gives the same names for the same seed and different ones otherwise', () => {
    const names = (seed: number): string[] => {
      const f = seededFaker(seed);
      return Array.from({ length: 20 }, () => f.person.fullName());
    };
    assert.deepEqual(names(9), names(9));
    assert.notDeepEqual(names(9), names(10));
  });
});
