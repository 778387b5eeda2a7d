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
});
