/**
 * The Redis task backend's scripts on a real Redis, with transactions larger than one APPLY
 * chunk: each chunk writes a store with one variadic command per kind, and only the last
 * chunk moves the offsets.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { RedisStateStore, taskTag } from '../../src/runtime/state/redis-backend.js';
import { connectRedis, createRedisClient } from '../../src/runtime/state/redis-client.js';
import type { TaskDelta } from '../../src/runtime/state/store.js';
import { infra, uniqueName } from '../helpers/env.js';

const N = 4500; // more than two chunks of 2,000 rows

describe('Redis task backend', () => {
  const redis = createRedisClient({ url: infra().redisUrl });
  redis.on('error', () => undefined);
  after(() => redis.disconnect());

  it('applies thousands of puts and deletes across chunks, exactly, and refuses a fenced owner', async () => {
    await connectRedis(redis);
    const app = uniqueName('backend');
    const state = new RedisStateStore(redis, { app });
    const a = state.task('t', 0, ['w']);
    await a.claim();
    const delta = (
      inputOffset: number,
      changelogOffset: number,
      d: Partial<TaskDelta['stores'][number]>,
    ) => ({
      inputOffset,
      stores: [{ store: 'w', changelogOffset, puts: [], deletes: [], ...d }],
    });
    assert.equal(await a.apply(delta(0, 0, {}), 'init'), 'ok');

    const key = (i: number) => `k${i}`;
    const puts: TaskDelta['stores'][number]['puts'] = [];
    for (let i = 0; i < N; i++) puts.push([key(i), `{"v":${i},"d":${1000 + i}}`, 1000 + i]);
    assert.equal(await a.apply(delta(10, 100, { puts }), 'apply'), 'ok');

    // Then: the first third deleted, the second third rewritten without a due time.
    const deletes = Array.from({ length: N / 3 }, (_, i) => key(i));
    const rewrites: TaskDelta['stores'][number]['puts'] = [];
    for (let i = N / 3; i < (2 * N) / 3; i++) rewrites.push([key(i), `{"v":-${i}}`, undefined]);
    assert.equal(await a.apply(delta(20, 200, { puts: rewrites, deletes }), 'apply'), 'ok');

    const kv = await state.readAll('t', 0, 'w');
    assert.equal(Object.keys(kv).length, (2 * N) / 3);
    assert.equal(kv[key(0)], undefined);
    assert.equal(kv[key(N / 3)], `{"v":-${N / 3}}`);
    assert.equal(kv[key(N - 1)], `{"v":${N - 1},"d":${1000 + N - 1}}`);
    const due = await a.dueKeys('w', Number.POSITIVE_INFINITY);
    assert.deepEqual(due.keys.sort(), Array.from({ length: N / 3 }, (_, i) => key((2 * N) / 3 + i)).sort());
    assert.equal(due.next, Number.POSITIVE_INFINITY);
    assert.equal(await a.nextDue('w', 0), 1000 + (2 * N) / 3);
    // One round trip: the keys due at a watermark, and the first due above it.
    const some = await a.dueKeys('w', 1000 + (2 * N) / 3 + 1);
    assert.deepEqual(some.keys.sort(), [key((2 * N) / 3), key((2 * N) / 3 + 1)].sort());
    assert.equal(some.next, 1000 + (2 * N) / 3 + 2);
    const meta = await state.meta('t', 0);
    assert.equal(meta.in, '20');
    assert.equal(meta['cl:w'], '200');

    // A new owner's claim fences the old one: its writes and reads are refused.
    const b = state.task('t', 0, ['w']);
    await b.claim();
    assert.equal(await a.apply(delta(30, 300, { deletes: [key(N - 1)] }), 'apply'), 'fenced');
    assert.equal((await state.readAll('t', 0, 'w'))[key(N - 1)] !== undefined, true);
    await assert.rejects(a.load('w', [key(N - 1)]), /fenced/);
    await redis.del(
      `${taskTag(app, 't', 0)}:meta`,
      `${taskTag(app, 't', 0)}:kv:w`,
      `${taskTag(app, 't', 0)}:due:w`,
    );
  });

  it('splits a transaction over several stores at any row, puts before deletes, store by store', async () => {
    await connectRedis(redis);
    const app = uniqueName('backend-stores');
    const state = new RedisStateStore(redis, { app });
    const stores = ['a', 'b', 'c', 'd'];
    const t = state.task('t', 0, stores);
    await t.claim();
    const empty = stores.map((store) => ({ store, changelogOffset: 0, puts: [], deletes: [] }));
    assert.equal(await t.apply({ inputOffset: 0, stores: empty }, 'init'), 'ok');
    const puts = (store: string, n: number): TaskDelta['stores'][number]['puts'] =>
      Array.from({ length: n }, (_, i) => [`${store}${i}`, `{"v":${i}}`, undefined]);
    const names = (store: string, from: number, to: number): string[] =>
      Array.from({ length: to - from }, (_, i) => `${store}${from + i}`);
    // Rows per store: a 2,500, b 1,900, c 0, d 700, so chunk ends fall inside a's puts, b's deletes, d's puts.
    await t.apply(
      {
        inputOffset: 5,
        stores: [
          { store: 'a', changelogOffset: 1, puts: puts('a', 2500), deletes: [] },
          { store: 'b', changelogOffset: 2, puts: puts('b', 1900), deletes: [] },
          { store: 'c', changelogOffset: 3, puts: [], deletes: [] },
          { store: 'd', changelogOffset: 4, puts: puts('d', 700), deletes: [] },
        ],
      },
      'apply',
    );
    assert.equal(
      await t.apply(
        {
          inputOffset: 9,
          stores: [
            { store: 'a', changelogOffset: 11, puts: puts('a', 2100), deletes: names('a', 2100, 2500) },
            { store: 'b', changelogOffset: 12, puts: puts('b', 100), deletes: names('b', 100, 1900) },
            { store: 'c', changelogOffset: 13, puts: [], deletes: [] },
            { store: 'd', changelogOffset: 14, puts: [], deletes: names('d', 0, 650) },
          ],
        },
        'apply',
      ),
      'ok',
    );
    const expected: Record<string, number> = { a: 2100, b: 100, c: 0, d: 50 };
    for (const store of stores) {
      const kv = await state.readAll('t', 0, store);
      const want = store === 'd' ? names('d', 650, 700) : names(store, 0, expected[store]);
      assert.deepEqual(Object.keys(kv).sort(), want.sort(), `store ${store}`);
    }
    const meta = await state.meta('t', 0);
    assert.equal(meta.in, '9');
    assert.deepEqual(
      stores.map((s) => meta[`cl:${s}`]),
      ['11', '12', '13', '14'],
    );
    await redis.del(
      `${taskTag(app, 't', 0)}:meta`,
      ...stores.flatMap((s) => [`${taskTag(app, 't', 0)}:kv:${s}`, `${taskTag(app, 't', 0)}:due:${s}`]),
    );
  });
});
