import { createHash } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import {
  StateRefusedError,
  StateUnavailableError,
  type ApplyOutcome,
  type TaskBackend,
  type TaskDelta,
  type TaskMeta,
} from './store.js';

export type RedisClient = Redis | Cluster;

/**
 * Task state in Redis. Every key of a task shares one hash tag, so on Redis Cluster a task
 * lives in one slot and its Lua scripts touch one node:
 *
 *   {app|topic|partition}:meta          owner token, epoch, in (next input offset), cl:<store>
 *   {app|topic|partition}:kv:<store>    key -> encoded entry
 *   {app|topic|partition}:due:<store>   key scored by the watermark at which it fires
 *
 * Writes go through APPLY, which refuses a writer that is not the current owner ("fenced",
 * G3) and refuses plain writes when the meta is gone ("lost": Redis lost its data, G4).
 */

const CLAIM = `
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
local input = redis.call('HGET', KEYS[1], 'in')
if not input then
  for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, 3) == 'cl:' then redis.call('HDEL', KEYS[1], f) end
  end
end
local out = { epoch, input or '' }
for i = 2, #ARGV do out[#out + 1] = redis.call('HGET', KEYS[1], 'cl:' .. ARGV[i]) or '' end
return out
`;

const APPLY = `
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 'lost' end
if owner ~= ARGV[1] then return 'fenced' end
if ARGV[2] == 'apply' and redis.call('HEXISTS', KEYS[1], 'in') == 0 then return 'lost' end
local final = tonumber(ARGV[3]) >= 0
local a = 5
-- One variadic command per kind and store: a Lua-to-Redis call per row cost more than the row.
for s = 1, tonumber(ARGV[4]) do
  local kv, due = KEYS[2 * s], KEYS[2 * s + 1]
  local name, cl, np, nd = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 4
  local hset, zadd, zrem, hdel = {}, {}, {}, {}
  for _ = 1, np do
    local k, v, d = ARGV[a], ARGV[a + 1], ARGV[a + 2]
    a = a + 3
    hset[#hset + 1] = k
    hset[#hset + 1] = v
    if d == '' then zrem[#zrem + 1] = k else zadd[#zadd + 1] = d; zadd[#zadd + 1] = k end
  end
  for _ = 1, nd do
    hdel[#hdel + 1] = ARGV[a]
    zrem[#zrem + 1] = ARGV[a]
    a = a + 1
  end
  if #hset > 0 then redis.call('HSET', kv, unpack(hset)) end
  if #zadd > 0 then redis.call('ZADD', due, unpack(zadd)) end
  if #hdel > 0 then redis.call('HDEL', kv, unpack(hdel)) end
  if #zrem > 0 then redis.call('ZREM', due, unpack(zrem)) end
  if final then redis.call('HSET', KEYS[1], 'cl:' .. name, cl) end
end
if final then redis.call('HSET', KEYS[1], 'in', ARGV[3]) end
return 'ok'
`;

// Reads are fenced like writes: after a FLUSHALL a plain read would return nothing, and an
// output computed from that empty state would commit before the next APPLY could notice (G4).
const READ = `
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner or redis.call('HEXISTS', KEYS[1], 'in') == 0 then return { 'lost' } end
if owner ~= ARGV[1] then return { 'fenced' } end
-- The first key scored above the watermark, with its score.
local function above(watermark)
  return redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. watermark, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
end
local r
if ARGV[2] == 'load' then
  r = redis.call('HMGET', KEYS[2], unpack(ARGV, 3))
elseif ARGV[2] == 'due' then
  -- The first element is the smallest score above the watermark ('' if none), then the due keys.
  r = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
  table.insert(r, 1, above(ARGV[3])[2] or '')
else
  r = above(ARGV[3])
end
local out = { 'ok' }
for i = 1, #r do out[i + 1] = r[i] end
return out
`;

class Script {
  readonly sha: string;
  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(client: RedisClient, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT'))
        return client.eval(this.lua, keys.length, ...keys, ...args);
      throw err;
    }
  }
}

const claimScript = new Script(CLAIM);
const applyScript = new Script(APPLY);
const readScript = new Script(READ);

/**
 * Rows per APPLY call: large transactions are split so one script never blocks Redis for long,
 * and so that no variadic call inside it passes more arguments than Lua's unpack allows (8,000).
 */
const APPLY_CHUNK = 2000;
const LOAD_CHUNK = 1000;

export function taskTag(app: string, topic: string, partition: number): string {
  return `{${app}|${topic}|${partition}}`;
}

export interface RedisStateStoreOptions {
  app: string;
  /** Observes each round trip's duration, for the redis_roundtrip metric. */
  onRoundTrip?: (op: string, seconds: number) => void;
}

export class RedisStateStore {
  constructor(
    readonly client: RedisClient,
    private readonly options: RedisStateStoreOptions,
  ) {}

  task(topic: string, partition: number, stores: readonly string[]): TaskBackend {
    return new RedisTaskBackend(this, taskTag(this.options.app, topic, partition), stores);
  }

  /** @internal */
  async timed<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const start = process.hrtime.bigint();
    try {
      return await fn();
    } finally {
      this.options.onRoundTrip?.(op, Number(process.hrtime.bigint() - start) / 1e9);
    }
  }

  /** Reads one key of one task's store without taking ownership: for query endpoints on any replica. */
  async read(topic: string, partition: number, store: string, key: string): Promise<string | null> {
    return this.client.hget(`${taskTag(this.options.app, topic, partition)}:kv:${store}`, key);
  }

  async readAll(topic: string, partition: number, store: string): Promise<Record<string, string>> {
    return this.client.hgetall(`${taskTag(this.options.app, topic, partition)}:kv:${store}`);
  }

  async meta(topic: string, partition: number): Promise<Record<string, string>> {
    return this.client.hgetall(`${taskTag(this.options.app, topic, partition)}:meta`);
  }
}

class RedisTaskBackend implements TaskBackend {
  /** A fresh token per claim: an owner that lost Redis's data cannot collide with a later claim's epoch. */
  private token = '';

  constructor(
    private readonly store: RedisStateStore,
    private readonly tag: string,
    private readonly stores: readonly string[],
  ) {}

  private get meta(): string {
    return `${this.tag}:meta`;
  }
  private kv(store: string): string {
    return `${this.tag}:kv:${store}`;
  }
  private due(store: string): string {
    return `${this.tag}:due:${store}`;
  }

  async claim(): Promise<TaskMeta> {
    this.token = randomBytes(12).toString('hex');
    const keys = [this.meta, ...this.stores.flatMap((s) => [this.kv(s), this.due(s)])];
    const out = (await this.store.timed('claim', () =>
      claimScript.run(this.store.client, keys, [this.token, ...this.stores]),
    )) as [number, string, ...string[]];
    const changelogOffsets: Record<string, number> = {};
    this.stores.forEach((s, i) => {
      const v = out[2 + i];
      if (v) changelogOffsets[s] = Number(v);
    });
    return {
      epoch: Number(out[0]),
      inputOffset: out[1] === '' ? undefined : Number(out[1]),
      changelogOffsets,
    };
  }

  /** A read that Redis answers only for the current owner of intact state; else StateRefusedError. */
  private async read(
    op: 'load' | 'due' | 'next',
    key: string,
    args: string[],
  ): Promise<Array<string | null>> {
    let out: [string, ...Array<string | null>];
    try {
      out = (await this.store.timed(op === 'load' ? 'load' : 'due', () =>
        readScript.run(this.store.client, [this.meta, key], [this.token, op, ...args]),
      )) as [string, ...Array<string | null>];
    } catch (err) {
      throw new StateUnavailableError(this.tag, err);
    }
    if (out[0] !== 'ok') throw new StateRefusedError(out[0] as 'fenced' | 'lost', this.tag);
    return out.slice(1);
  }

  async load(store: string, keys: readonly string[]): Promise<Array<string | null>> {
    const out: Array<string | null> = [];
    for (let i = 0; i < keys.length; i += LOAD_CHUNK)
      out.push(...(await this.read('load', this.kv(store), keys.slice(i, i + LOAD_CHUNK))));
    return out;
  }

  async dueKeys(store: string, watermark: number): Promise<{ keys: string[]; next: number }> {
    const [next, ...keys] = (await this.read('due', this.due(store), [scoreOf(watermark)])) as string[];
    return { keys, next: next === '' ? Number.POSITIVE_INFINITY : Number(next) };
  }

  async nextDue(store: string, watermark: number): Promise<number> {
    const r = await this.read('next', this.due(store), [scoreOf(watermark)]);
    return r.length >= 2 ? Number(r[1]) : Number.POSITIVE_INFINITY;
  }

  async *entries(store: string): AsyncIterable<Array<[string, string]>> {
    // HSCAN never blocks Redis for long, but may return an entry twice (while the hash rehashes).
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, flat] = await this.store.timed('scan', () =>
        this.store.client.hscan(this.kv(store), cursor, 'COUNT', LOAD_CHUNK),
      );
      cursor = next;
      const chunk: Array<[string, string]> = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        if (seen.has(flat[i])) continue;
        seen.add(flat[i]);
        chunk.push([flat[i], flat[i + 1]]);
      }
      if (chunk.length > 0) yield chunk;
    } while (cursor !== '0');
  }

  async apply(delta: TaskDelta, mode: 'apply' | 'init'): Promise<ApplyOutcome> {
    let rows = 0;
    for (const st of delta.stores) rows += st.puts.length + st.deletes.length;
    // Only the last chunk moves the offsets: a crash between chunks leaves the old offsets,
    // and recovery re-applies the whole transaction from the changelog (full values, idempotent).
    // Rows in order: each store's puts, then its deletes, then the next store's; a cursor
    // (store, row) says where the next chunk starts.
    const chunks = Math.max(1, Math.ceil(rows / APPLY_CHUNK));
    let cursorStore = 0;
    let cursorRow = 0;
    for (let c = 0; c < chunks; c++) {
      const final = c === chunks - 1;
      const keys = [this.meta];
      const args: Array<string | number> = [
        this.token,
        mode,
        final ? delta.inputOffset : -1,
        delta.stores.length,
      ];
      let room = APPLY_CHUNK;
      delta.stores.forEach((st, s) => {
        keys.push(this.kv(st.store), this.due(st.store));
        const total = st.puts.length + st.deletes.length;
        let from = 0;
        let to = 0;
        if (s === cursorStore) {
          from = cursorRow;
          to = Math.min(total, from + room);
          room -= to - from;
          cursorRow = to;
          if (cursorRow >= total) {
            cursorStore++;
            cursorRow = 0;
          }
        }
        const puts = st.puts.length;
        const putFrom = Math.min(from, puts);
        const putTo = Math.min(to, puts);
        const delFrom = Math.max(0, from - puts);
        const delTo = Math.max(0, to - puts);
        args.push(st.store, st.changelogOffset, putTo - putFrom, delTo - delFrom);
        for (let i = putFrom; i < putTo; i++) {
          const [k, v, d] = st.puts[i];
          args.push(k, v, d === undefined ? '' : d);
        }
        for (let i = delFrom; i < delTo; i++) args.push(st.deletes[i]);
      });
      const outcome = (await this.store.timed('apply', () =>
        applyScript.run(this.store.client, keys, args),
      )) as ApplyOutcome;
      if (outcome !== 'ok') return outcome;
    }
    return 'ok';
  }
}

function scoreOf(watermark: number): string {
  if (watermark === Number.NEGATIVE_INFINITY) return '-inf';
  if (watermark === Number.POSITIVE_INFINITY) return '+inf';
  return String(watermark);
}
