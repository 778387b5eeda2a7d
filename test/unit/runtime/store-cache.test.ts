import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStateStore } from '../../../src/runtime/state/memory-backend.js';
import { encodeEntry, StoreCache, type StoredEntry } from '../../../src/runtime/state/store.js';

/** A backend holding `keys` with due = index * 10, behind a cache of `max` entries. */
async function setup(keys: string[], max: number) {
  const state = new MemoryStateStore();
  const backend = state.task('t/0');
  await backend.claim();
  const puts = keys.map((k, i): [string, string, number] => {
    const entry: StoredEntry = { value: { [String(i)]: i }, due: i * 10 };
    return [k, encodeEntry(entry), i * 10];
  });
  await backend.apply(
    { inputOffset: 1, stores: [{ store: 'w', changelogOffset: 1, puts, deletes: [] }] },
    'init',
  );
  const cache = new StoreCache('w', backend, max);
  const all: Array<[string, StoredEntry]> = keys.map((k, i) => [
    k,
    { value: { [String(i)]: i }, due: i * 10 },
  ]);
  return { backend, cache, all };
}

describe('state cache: due windows without a round trip', () => {
  it('answers due keys and the next due from every entry while it holds them all', async () => {
    const { cache, all } = await setup(['a', 'b', 'c'], 10);
    cache.adopt(all);
    assert.equal(cache.complete, true);
    assert.deepEqual(cache.dueKeys(10).sort(), ['a', 'b']);
    assert.equal(cache.minDueAbove(10), 20);
    // A dirty entry counts as well, and wins over the stored one.
    cache.put('c', { value: {}, due: 5 });
    assert.deepEqual(cache.dueKeys(10).sort(), ['a', 'b', 'c']);
    assert.equal(cache.minDueAbove(10), Number.POSITIVE_INFINITY);
  });

  it('knows only its dirty entries once a stored entry is evicted, after an abort, or when it does not fit', async () => {
    const { cache, all } = await setup(['a', 'b', 'c'], 3);
    cache.adopt(all);
    assert.equal(cache.complete, true);
    cache.put('d', { value: {}, due: 35 });
    cache.markApplied(); // four entries in a cache of three: a stored one goes
    assert.equal(cache.complete, false);
    assert.deepEqual(cache.dueKeys(100), []);
    assert.equal(cache.minDueAbove(0), Number.POSITIVE_INFINITY);

    const again = await setup(['a', 'b', 'c'], 10);
    again.cache.adopt(again.all);
    again.cache.put('a', { value: {}, due: 1 });
    again.cache.discardDirty();
    assert.equal(again.cache.complete, false);

    const big = await setup(['a', 'b', 'c'], 2);
    big.cache.adopt(big.all);
    assert.equal(big.cache.complete, false);
    big.cache.adopt(undefined);
    assert.equal(big.cache.complete, false);
  });

  it('stays complete when what it evicts is a key known to be absent', async () => {
    const { cache, all } = await setup(['a'], 2);
    cache.adopt(all);
    await cache.prefetch(['x', 'y']); // absent in the backend: cached as null
    cache.get('a'); // the most recently used: x is the one to go
    cache.markApplied();
    assert.equal(cache.complete, true);
    assert.deepEqual(cache.dueKeys(0), ['a']);
  });
});

describe('state entries', () => {
  it('encode as JSON.stringify of { v, d } would, and leave the window index out', () => {
    const entries: StoredEntry[] = [
      { value: { '0': { count: 1, lat: 44.6 } }, due: 35_999_999, starts: [0] },
      { value: 42 },
      { value: null, due: -0 },
      { value: 'a "quoted" \u2028 key', due: Number.POSITIVE_INFINITY },
      { value: undefined, due: 3 },
      { value: undefined },
    ];
    for (const e of entries) {
      const wrapped = e.due === undefined ? { v: e.value } : { v: e.value, d: e.due };
      assert.equal(encodeEntry(e), JSON.stringify(wrapped));
    }
  });
});
