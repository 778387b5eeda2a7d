import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TopologyTestDriver } from '../../../src/runtime/testing/driver.js';
import { TopologyBuilder } from '../../../src/runtime/topology.js';
import { hopping } from '../../../src/runtime/windows.js';

interface Ev {
  k: string;
  t: number;
  n: number;
}

const SIZE = 4000;
const HOP = 1000;
const BOUND = 1500;

function plan() {
  const b = new TopologyBuilder('firing');
  b.source<Ev>('in', {
    decode: (bytes) => JSON.parse(bytes.toString('utf8')) as Ev,
    timestamp: (e) => e.t,
    outOfOrdernessMs: BOUND,
  })
    .groupBy('by-k', (e) => e.k)
    .windowedBy(hopping(SIZE, HOP))
    .aggregate<number>('sums', { init: () => 0, add: (acc, e) => acc + e.n })
    .emitOnClose('out', (k, w, sum) => ({ k, start: w.start, sum }));
  return b.build();
}

/** Flink's rule, written out: before each record, fire every window the watermark has reached. */
function oracle(events: Ev[]): Array<{ k: string; start: number; sum: number }> {
  const open = new Map<string, Map<number, number>>();
  const fired: Array<{ k: string; start: number; sum: number }> = [];
  const fire = (wm: number) => {
    for (const [k, windows] of open)
      for (const [start, sum] of windows)
        if (start + SIZE - 1 <= wm) {
          fired.push({ k, start, sum });
          windows.delete(start);
        }
  };
  let max = Number.NEGATIVE_INFINITY;
  for (const e of events) {
    const wm = max - BOUND;
    fire(wm);
    const last = Math.floor(e.t / HOP) * HOP;
    for (let start = last - SIZE + HOP; start <= last; start += HOP) {
      if (start + SIZE - 1 <= wm) continue;
      const windows = open.get(e.k) ?? new Map<number, number>();
      windows.set(start, (windows.get(start) ?? 0) + e.n);
      open.set(e.k, windows);
    }
    max = Math.max(max, e.t);
  }
  fire(max - BOUND);
  return fired;
}

describe('window firing', () => {
  it('fires each window once, oldest first per key, while keys keep many windows open, are evicted and reloaded', async () => {
    // Disorder up to twice the bound opens windows below ones already open (the ordered index
    // takes inserts in the middle) and closes some of a record's windows; a few records come
    // later than a whole window.
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const events: Ev[] = [];
    // Real epoch times: keys above 2^32 are not array indices, so objects keep insertion order.
    let t = Date.UTC(2024, 0, 1);
    for (let i = 0; i < 1500; i++) {
      t += Math.floor(rand() * 400);
      const r = rand();
      const back = r < 0.3 ? Math.floor(rand() * 2 * BOUND) : r < 0.35 ? SIZE + Math.floor(rand() * SIZE) : 0;
      events.push({ k: `k${Math.floor(rand() * 5)}`, t: t - back, n: 1 + Math.floor(rand() * 9) });
    }
    // A cache of one entry per store: keys keep leaving and coming back from the backend.
    const d = await new TopologyTestDriver(plan(), {
      commitEvery: 7,
      repartitionPartitions: 1,
      cacheEntries: 1,
    }).start();
    await d.pipe(
      'in',
      events.map((e) => ({ value: e })),
    );
    await d.commit();
    const got = d.read('out').map((o) => o.value as { k: string; start: number; sum: number });
    const want = oracle(events);
    const order = (a: { k: string; start: number }, b: { k: string; start: number }) =>
      a.k.localeCompare(b.k) || a.start - b.start;
    assert.ok(want.length > 1000, `only ${want.length} windows`);
    assert.deepEqual([...got].sort(order), [...want].sort(order));
    for (const k of new Set(got.map((o) => o.k))) {
      const starts = got.filter((o) => o.k === k).map((o) => o.start);
      assert.deepEqual(
        starts,
        [...starts].sort((a, b) => a - b),
        `windows of ${k} out of order`,
      );
    }
    assert.ok(d.counters.late > 0, 'no late record: the disorder did not reach a closed window');
  });
});
