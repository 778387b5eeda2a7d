import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyedTask } from '../../../src/runtime/engine.js';
import { decodeEntry, encodeEntry } from '../../../src/runtime/state/store.js';
import type { MemoryStateStore } from '../../../src/runtime/state/memory-backend.js';
import { TopologyTestDriver } from '../../../src/runtime/testing/driver.js';
import { internalTopics, TopologyBuilder } from '../../../src/runtime/topology.js';
import { hopping } from '../../../src/runtime/windows.js';

interface Ev {
  k: string;
  t: number;
  n: number;
}

const SIZE = 4000;
const HOP = 1000;
const BOUND = 1500;
const PARTITIONS = 2;

/** One stage with both kinds of store, as branch totals has: a running table and hopping windows. */
function plan() {
  const b = new TopologyBuilder('changelog');
  const byK = b
    .source<Ev>('in', {
      decode: (bytes) => JSON.parse(bytes.toString('utf8')) as Ev,
      timestamp: (e) => e.t,
      outOfOrdernessMs: BOUND,
    })
    .groupBy('by-k', (e) => e.k);
  byK
    .aggregate<number>('totals', { init: () => 0, add: (acc, e) => acc + e.n })
    .toTopic('totals-out', (k, sum) => ({ k, sum }));
  byK
    .windowedBy(hopping(SIZE, HOP))
    .aggregate<number>('sums', { init: () => 0, add: (acc, e) => acc + e.n })
    .emitOnClose('out', (k, w, sum) => ({ k, start: w.start, sum }));
  return b.build();
}

function events(): Ev[] {
  let seed = 11;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const out: Ev[] = [];
  let t = Date.UTC(2024, 0, 1);
  for (let i = 0; i < 2000; i++) {
    t += Math.floor(rand() * 300);
    const back = rand() < 0.3 ? Math.floor(rand() * 2 * BOUND) : 0;
    // Many keys, most of them quiet for a while: their windows fire and their state ends.
    out.push({ k: `k${Math.floor(rand() * 40)}`, t: t - back, n: 1 + Math.floor(rand() * 9) });
  }
  return out;
}

/** What a restore from the compacted changelog writes: the latest value per key, through restoredEntry. */
function restore(d: TopologyTestDriver, store: string, partition: number): Record<string, string> {
  const task = d.keyedTask('by-k', partition)!;
  const topic = internalTopics.changelog(d.app, d.plan.pipeline, store);
  const latest = new Map<string, string | null>();
  for (const o of d.read(topic).filter((o) => o.partition === partition)) {
    latest.set(o.key!, o.value === null ? null : JSON.stringify(o.value));
  }
  const watermark = KeyedTask.committedWatermark(task.snapshot());
  const restored: Record<string, string> = {};
  for (const [k, v] of latest) {
    const entry = v === null ? null : task.restoredEntry(store, v, watermark);
    if (entry !== null) restored[k] = entry.text;
  }
  return restored;
}

type TaskState = NonNullable<ReturnType<MemoryStateStore['state']>>;

function copyState(s: TaskState): TaskState {
  return {
    ...s,
    changelogOffsets: { ...s.changelogOffsets },
    kv: new Map([...s.kv].map(([store, m]) => [store, new Map(m)])),
    due: new Map([...s.due].map(([store, m]) => [store, m.clone()])),
  };
}

describe('changelog', () => {
  it('a windowed store writes no tombstones, and a restore from its changelog gives back exactly the stored state', async () => {
    const d = await new TopologyTestDriver(plan(), {
      commitEvery: 13,
      repartitionPartitions: PARTITIONS,
    }).start();
    await d.pipe(
      'in',
      events().map((e) => ({ value: e })),
    );
    await d.commit();
    assert.ok(d.read('out').length > 500, `only ${d.read('out').length} windows fired`);
    const changelog = d.read(internalTopics.changelog(d.app, d.plan.pipeline, 'sums'));
    assert.ok(changelog.length > 0);
    assert.equal(
      changelog.filter((o) => o.value === null).length,
      0,
      'a windowed changelog record is a tombstone',
    );
    let leftovers = 0;
    for (let p = 0; p < PARTITIONS; p++) {
      const task = d.keyedTask('by-k', p)!;
      const stored = d.state.dump(task.topic + '/' + p);
      for (const store of ['sums', 'totals']) {
        const restored = restore(d, store, p);
        assert.deepEqual(restored, stored[store] ?? {}, `${store} on partition ${p}`);
      }
      const keys = new Set(changelog.filter((o) => o.partition === p).map((o) => o.key));
      leftovers += keys.size - Object.keys(stored.sums ?? {}).length;
    }
    // Otherwise the filter had nothing to drop and the equality above proves nothing about it.
    assert.ok(leftovers > 0, 'no key ended its windowed state');
  });

  it('restoredEntry keeps the open windows of a value, drops the closed ones, and leaves tables alone', async () => {
    const d = await new TopologyTestDriver(plan(), { repartitionPartitions: 1 }).start();
    const task = d.keyedTask('by-k', 0)!;
    const w = (starts: number[]) =>
      encodeEntry({
        value: Object.fromEntries(starts.map((s) => [String(s), s / 1000])),
        due: starts[0] + SIZE - 1,
      });

    // Every window ends at or before the watermark: the key's state ended.
    assert.equal(task.restoredEntry('sums', w([0, 1000]), 1000 + SIZE - 1), null);
    // Nothing closed: the value as it was.
    const open = w([5000, 6000]);
    assert.deepEqual(task.restoredEntry('sums', open, 5000 + SIZE - 2), { text: open, due: 5000 + SIZE - 1 });
    // Some closed: only the open ones, due at the first of them.
    const mixed = task.restoredEntry('sums', w([0, 1000, 2000]), 1000 + SIZE - 1);
    assert.ok(mixed);
    assert.deepEqual(decodeEntry(mixed.text), { value: { '2000': 2 }, due: 2000 + SIZE - 1 });
    assert.equal(mixed.due, 2000 + SIZE - 1);
    // A fresh task (no commit yet) has no watermark: nothing is closed.
    assert.deepEqual(task.restoredEntry('sums', open, Number.NEGATIVE_INFINITY), {
      text: open,
      due: 5000 + SIZE - 1,
    });
    // A table value never closes, whatever the watermark.
    const total = encodeEntry({ value: 42 });
    assert.deepEqual(task.restoredEntry('totals', total, Number.POSITIVE_INFINITY), {
      text: total,
      due: undefined,
    });
  });

  it('a replay of a changelog gap into older state, with closedLeftovers, gives back exactly the committed state', async () => {
    // Redis behind Kafka: the APPLYs of the last transactions never ran (a crash between commit
    // and apply). Keys whose windows all fired in those transactions have nothing in the gap.
    const d = await new TopologyTestDriver(plan(), { commitEvery: 1e9, repartitionPartitions: 1 }).start();
    const task = d.keyedTask('by-k', 0)!;
    const id = `${task.topic}/0`;
    const topic = internalTopics.changelog(d.app, d.plan.pipeline, 'sums');
    const commits: Array<{ state: TaskState; outputs: number }> = [];
    const all = events();
    for (let i = 0; i < all.length; i += 13) {
      await d.pipe(
        'in',
        all.slice(i, i + 13).map((e) => ({ value: e })),
      );
      await d.commit();
      commits.push({ state: copyState(d.state.state(id, false)!), outputs: d.outputs.length });
    }
    const final = copyState(d.state.state(id, false)!);
    const want = d.state.dump(id);
    const watermark = KeyedTask.committedWatermark(task.snapshot());
    let swept = 0;
    let differedWithout = 0;
    for (let gap = 1; gap <= 12; gap++) {
      const behind = commits[commits.length - 1 - gap];
      Object.assign(d.state.state(id, false)!, copyState(behind.state));
      const latest = new Map<string, string>();
      for (const o of d.outputs.slice(behind.outputs).filter((o) => o.topic === topic)) {
        latest.delete(o.key!);
        latest.set(o.key!, JSON.stringify(o.value));
      }
      const puts: Array<[string, string, number | undefined]> = [];
      const deletes: string[] = [];
      for (const [k, v] of latest) {
        const entry = task.restoredEntry('sums', v, watermark);
        if (entry === null) deletes.push(k);
        else puts.push([k, entry.text, entry.due]);
      }
      const offsets = final.changelogOffsets;
      const replay = {
        inputOffset: 0,
        stores: [{ store: 'sums', changelogOffset: offsets.sums ?? 0, puts, deletes }],
      };
      assert.equal(await task.backend.apply(replay, 'apply'), 'ok');
      if (JSON.stringify(d.state.dump(id).sums ?? {}) !== JSON.stringify(want.sums ?? {})) differedWithout++;
      const leftovers = await task.closedLeftovers(watermark);
      const sums = leftovers.get('sums');
      swept += (sums?.deletes.length ?? 0) + (sums?.puts.length ?? 0);
      const sweep = {
        inputOffset: 0,
        stores: [
          {
            store: 'sums',
            changelogOffset: offsets.sums ?? 0,
            puts: sums?.puts ?? [],
            deletes: sums?.deletes ?? [],
          },
        ],
      };
      assert.equal(await task.backend.apply(sweep, 'apply'), 'ok');
      assert.deepEqual(d.state.dump(id).sums ?? {}, want.sums ?? {}, `${gap} transaction(s) behind`);
      assert.equal(
        (await task.closedLeftovers(watermark)).size,
        0,
        'leftovers found in a state already consistent',
      );
    }
    Object.assign(d.state.state(id, false)!, final);
    assert.ok(differedWithout > 0 && swept > 0, 'no gap had a key whose windows all fired in it');
  });
});
