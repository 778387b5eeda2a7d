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
  // At each watermark, keys in order and each key's windows oldest first, as the engine fires them.
  const fire = (wm: number) => {
    for (const k of [...open.keys()].sort()) {
      const windows = open.get(k)!;
      for (const start of [...windows.keys()].sort((a, b) => a - b))
        if (start + SIZE - 1 <= wm) {
          fired.push({ k, start, sum: windows.get(start)! });
          windows.delete(start);
        }
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
  // Cache sizes: 1 and 3 keep evicting the 5 keys, so keys leave and come back from the backend and
  // firing asks the backend which keys are due; 1000 holds them all, so the cache alone knows.
  for (const cacheEntries of [1, 3, 1000]) {
    it(`fires each window once, at the first watermark that reaches it, while keys keep many windows open (cache of ${cacheEntries})`, async () => {
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
        const back =
          r < 0.3 ? Math.floor(rand() * 2 * BOUND) : r < 0.35 ? SIZE + Math.floor(rand() * SIZE) : 0;
        events.push({ k: `k${Math.floor(rand() * 5)}`, t: t - back, n: 1 + Math.floor(rand() * 9) });
      }
      const d = await new TopologyTestDriver(plan(), {
        commitEvery: 7,
        repartitionPartitions: 1,
        cacheEntries,
      }).start();
      const backend = d.keyedTask('by-k', 0)!.backend;
      const dueKeys = backend.dueKeys.bind(backend);
      let asked = 0;
      backend.dueKeys = (store, wm) => {
        asked++;
        return dueKeys(store, wm);
      };
      await d.pipe(
        'in',
        events.map((e) => ({ value: e })),
      );
      await d.commit();
      const got = d.read('out').map((o) => o.value as { k: string; start: number; sum: number });
      const want = oracle(events);
      assert.ok(want.length > 1000, `only ${want.length} windows`);
      // The same windows with the same sums, and in the same order: a window that fires at a later
      // watermark than it should (a due time missed) shows up here even when its sum is right.
      assert.deepEqual(got, want);
      assert.ok(d.counters.late > 0, 'no late record: the disorder did not reach a closed window');
      if (cacheEntries >= 5) assert.equal(asked, 0, 'the backend was asked for due keys');
      else assert.ok(asked > 0, 'the backend was never asked for due keys');
    });
  }
});
