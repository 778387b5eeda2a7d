import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStateStore } from '../../../src/runtime/state/memory-backend.js';
import type { TaskDelta } from '../../../src/runtime/state/store.js';

const delta = (offset: number, value: string): TaskDelta => ({
  inputOffset: offset,
  stores: [{ store: 's', changelogOffset: offset, puts: [['k', value, undefined]], deletes: [] }],
});

describe('state fencing (memory backend, same contract as the Redis scripts)', () => {
  it('refuses a zombie once a new owner has claimed the task (G3)', async () => {
    const store = new MemoryStateStore();
    const zombie = store.task('t/0');
    await zombie.claim();
    assert.equal(await zombie.apply(delta(0, 'init'), 'init'), 'ok');
    assert.equal(await zombie.apply(delta(1, 'a'), 'apply'), 'ok');
    const owner = store.task('t/0');
    const meta = await owner.claim();
    assert.equal(meta.inputOffset, 1);
    assert.equal(await zombie.apply(delta(2, 'zombie'), 'apply'), 'fenced');
    assert.equal(await owner.apply(delta(2, 'b'), 'apply'), 'ok');
    assert.deepEqual(store.dump('t/0'), { s: { k: 'b' } });
  });

  it('notices lost data instead of writing onto an empty base (G4)', async () => {
    const store = new MemoryStateStore();
    const t = store.task('t/0');
    await t.claim();
    await t.apply(delta(0, 'x'), 'init');
    store.flushAll();
    assert.equal(await t.apply(delta(1, 'y'), 'apply'), 'lost');
    const meta = await t.claim();
    assert.equal(meta.inputOffset, undefined);
    assert.equal(
      await t.apply(delta(1, 'y'), 'apply'),
      'lost',
      'plain writes stay refused until a rebuild sets the offset',
    );
    assert.equal(await t.apply(delta(1, 'y'), 'init'), 'ok');
    assert.equal(await t.apply(delta(2, 'z'), 'apply'), 'ok');
  });
});
