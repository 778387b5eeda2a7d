import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fraudTriggerConfig } from '../../../src/pipelines/fraud-trigger/fraud-trigger.config.js';
import { fraudTriggerTopology } from '../../../src/pipelines/fraud-trigger/fraud-trigger.topology.js';
import { KeyedTask, PACK_BYTES, SourceTask } from '../../../src/runtime/engine.js';
import { partitionForKey } from '../../../src/runtime/kafka/partitioner.js';
import { H, type InputRecord, type OutputRecord } from '../../../src/runtime/records.js';
import { MemoryStateStore } from '../../../src/runtime/state/memory-backend.js';
import { asConsumed, TopologyTestDriver } from '../../../src/runtime/testing/driver.js';
import { TopologyBuilder } from '../../../src/runtime/topology.js';
import { fraudDriver, HOUR, T0, tx } from '../../helpers/fraud.js';

const PARTITIONS = 3;

/** The fraud trigger's source task for one input partition, writing to PARTITIONS repartition partitions. */
function sourceTask() {
  const plan = fraudTriggerTopology(fraudTriggerConfig({}));
  const task = new SourceTask(
    'app',
    plan.pipeline,
    plan.sources[0],
    0,
    () => PARTITIONS,
    { deadLetter: () => undefined, late: () => undefined },
    0,
  );
  return { plan, task };
}

const input = (offset: number, value: unknown): InputRecord => ({
  topic: 'transactions-data',
  partition: 0,
  offset,
  key: null,
  value: Buffer.from(JSON.stringify(value)),
  timestamp: T0 + offset,
  headers: {},
});

/** As the consume loop hands them to a keyed task. */
const consumed = (out: OutputRecord[], partition: number): InputRecord[] =>
  out.filter((r) => r.partition === partition).map((r, offset) => asConsumed(r, offset));

/**
 * A keyed task of the fraud trigger with one upstream partition, its dead letters' reasons, and
 * records of its repartition topic as a writer might have put them there.
 */
async function keyedTaskOfOne() {
  const d = await fraudDriver();
  const model = d.keyedTask('by-customer', 0)!;
  const dead: string[] = [];
  const task = new KeyedTask(d.app, model.pipeline, model.stage, 0, 1, d.state.task(`${model.topic}/0`), 10, {
    deadLetter: (reason) => dead.push(reason),
    late: () => undefined,
  });
  await task.backend.claim();
  const record = (offset: number, key: string | null, value: string): InputRecord => ({
    topic: model.topic,
    partition: 0,
    offset,
    key: key === null ? null : Buffer.from(key),
    value: Buffer.from(value),
    timestamp: T0,
    headers: {},
  });
  return { task, dead, record };
}

describe('repartition records', () => {
  it('carry the original JSON and its origin through to the late topic', async () => {
    const d = await fraudDriver();
    const late = tx('ann', 0);
    await d.pipe('transactions-data', [{ value: tx('ann', 0) }, { value: tx('bob', 11 * HOUR) }]);
    await d.commit();
    await d.pipe('transactions-data', [{ value: late }]);
    await d.commit();
    const [record] = d.read('transactions-data.late');
    assert.deepEqual(record.value, late);
    assert.equal(record.key, 'ann');
    assert.equal(record.headers[H.sourceTopic], 'transactions-data');
    assert.equal(record.headers[H.sourcePartition], '0');
    assert.equal(record.headers[H.sourceOffset], '2');
    assert.equal(record.headers[H.eventTime], String(T0));
    assert.equal(record.headers[H.reason], 'window-closed');
  });

  it('send a record a foreign writer put on the repartition topic to the DLQ, without moving the watermark', async () => {
    const { task, dead, record } = await keyedTaskOfOne();
    const out: OutputRecord[] = [];
    await task.process(
      [
        record(0, 'ann', JSON.stringify(tx('ann', 0))), // no metadata line
        record(1, 'ann', `[0,5,1]\n${JSON.stringify(tx('ann', 0))}`), // metadata of the wrong shape
        record(2, 'ann', `[0,5,"x","t",0,1]\n${JSON.stringify(tx('ann', 0))}`), // no event time
        record(3, null, 'not json'),
        record(4, null, '{"watermark":1}'),
        record(5, null, '[7,5,0]'), // an upstream partition the task does not have
        record(6, 'pack', '[0,"transactions-data"]\n'), // a pack without events
        record(7, 'pack', `[0,"transactions-data"]\n[5,${T0},"x",${T0},"ann"]\n{}\n`), // an offset that is not one
        record(8, 'pack', `[0,"transactions-data"]\n[5,${T0},1,${T0},"ann"]\n{}`), // the last line unended
        // a valid event, then a broken one: the whole record is refused, the valid one included
        record(9, 'pack', `[0,"transactions-data"]\n[5,${T0},1,${T0},"ann"]\n{}\n[5,${T0},2,${T0},""]\n{}\n`),
      ],
      { emit: (r) => out.push(r) },
    );
    assert.deepEqual(dead, Array(10).fill('invalid-repartition-record'));
    assert.deepEqual(
      out.map((r) => [r.topic, r.headers?.[H.sourceOffset]]),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((o) => ['transactions-data.dlq', String(o)]),
    );
    assert.equal(task.watermark.current, Number.NEGATIVE_INFINITY);
    assert.equal(task.openWindows, 0);
  });

  it('read each metadata line as JSON.parse does, in the plain form their writer uses or any other', async () => {
    const { task, dead, record } = await keyedTaskOfOne();
    // Every event is late (its window closed by the watermark of the first), so each comes back
    // on the late topic with its key, event time, origin, timestamp and bytes.
    const lines = [
      `[360000000,0,1,${T0},"ann"]`, // the writer's plain form
      `[ 360000000 , 5 , 2 , ${T0} , "bob" ]`,
      `[3.6e8,1e3,3,1.7e12,"cé 😀"]`,
      String.raw`[360000001.5,2.25,4,1700000000000.0,"d\"e\\f\u00e9\n"]`,
      `[null,7,5,${T0},"\u00e9"]`,
      `[1234567890123456,8,6,${T0},"g"]`,
      `[-0,-9,7,-5,"h"]`,
    ];
    const body = (i: number) => `{"n":${i}}`;
    const pack = `[0,"transactions-data"]\n${lines.map((l, i) => `${l}\n${body(i)}\n`).join('')}`;
    const out: OutputRecord[] = [];
    await task.process(
      [
        record(0, 'pack', pack),
        record(1, 'pack', `[0,"transactions-data"]\n[01,0,1,${T0},"ann"]\n{}\n`), // a leading zero
        record(2, 'pack', `[0,"transactions-data"]\n[5,1e400,1,${T0},"ann"]\n{}\n`), // no finite event time
        record(3, 'pack', `[0,"transactions-data"]\n[5,0,1,${T0},"a\u0001"]\n{}\n`), // a raw control character
      ],
      { emit: (r) => out.push(r) },
    );
    assert.deepEqual(dead, Array(3).fill('invalid-repartition-record'));
    const late = out.filter((r) => r.topic === 'transactions-data.late');
    assert.deepEqual(
      late.map((r) => [
        r.key,
        r.headers?.[H.eventTime],
        r.headers?.[H.sourceOffset],
        r.timestamp,
        r.value!.toString(),
      ]),
      lines.map((l, i) => {
        const [, eventTime, offset, timestamp, key] = JSON.parse(l) as [
          unknown,
          number,
          number,
          number,
          string,
        ];
        return [key, String(eventTime), String(offset), timestamp, body(i)];
      }),
    );
    assert.equal(task.watermark.current, 1234567890123456);
  });

  it('travel in packs, one per partition and transaction until it is full, ahead of the watermark', () => {
    const { task } = sourceTask();
    const out: OutputRecord[] = [];
    const emitter = { emit: (r: OutputRecord) => out.push(r) };
    const n = 2000;
    for (let i = 0; i < n; i++) task.process(input(i, tx(`customer-${i}`, i * 1000)), emitter, 0);
    // Packs fill up while the transaction runs; each is one record, about 64 K characters at most.
    const early = out.length;
    assert.ok(early > 0 && early < 20, `${early} packs written before the commit`);
    task.broadcast(emitter, T0);
    const packs = out.filter((r) => r.key !== null);
    assert.ok(packs.length >= PARTITIONS && packs.length < 20, `${packs.length} packs for ${n} events`);
    for (const r of packs) assert.ok(r.value!.length <= PACK_BYTES, `a pack of ${r.value!.length} bytes`);
    for (let p = 0; p < PARTITIONS; p++) {
      const records = out.filter((r) => r.partition === p);
      // The control record comes last: it must not overtake the events whose watermark it carries.
      assert.equal(records.at(-1)!.key, null);
      assert.equal(records.filter((r) => r.key === null).length, 1);
    }
  });

  it('arrive at the keyed task as the events they carry, in order, each with its origin', async () => {
    const { plan, task } = sourceTask();
    const out: OutputRecord[] = [];
    const emitter = { emit: (r: OutputRecord) => out.push(r) };
    const n = 1500;
    for (let i = 0; i < n; i++) task.process(input(i, tx(`customer-${i % 700}`, i * 1000)), emitter, 0);
    task.broadcast(emitter, T0);
    const state = new MemoryStateStore();
    let events = 0;
    for (let p = 0; p < PARTITIONS; p++) {
      const timestamps: number[] = [];
      const keyed = new KeyedTask('app', plan.pipeline, plan.stages[0], p, 1, state.task(`r/${p}`), 10_000, {
        deadLetter: () => assert.fail('no dead letter'),
        late: () => undefined,
        event: (t) => timestamps.push(t),
      });
      await keyed.backend.claim();
      await keyed.process(consumed(out, p), emitter);
      const expected = Array.from({ length: n }, (_, i) => i).filter(
        (i) => partitionForKey(`customer-${i % 700}`, PARTITIONS) === p,
      );
      // Each event once, in the order the source task read them, with its input record's timestamp.
      assert.deepEqual(
        timestamps,
        expected.map((i) => T0 + i),
      );
      assert.equal(keyed.stateKeys(), new Set(expected.map((i) => i % 700)).size);
      events += timestamps.length;
    }
    assert.equal(events, n);
  });

  it('write the metadata line of each event as JSON.stringify would, whatever its key and times', () => {
    const b = new TopologyBuilder('meta');
    b.source<{ k: string; t: number }>('in', {
      decode: (bytes) => JSON.parse(bytes.toString('utf8')) as { k: string; t: number },
      timestamp: (v) => v.t,
      outOfOrdernessMs: 0,
    })
      .groupBy('by-k', (v) => v.k)
      .aggregate<number>('n', { init: () => 0, add: (n) => n + 1 });
    const plan = b.build();
    const task = new SourceTask(
      'app',
      'meta',
      plan.sources[0],
      0,
      () => 1,
      { deadLetter: () => undefined, late: () => undefined },
      0,
    );
    const out: OutputRecord[] = [];
    const emitter = { emit: (r: OutputRecord) => out.push(r) };
    const events: Array<{ k: string; t: number }> = [
      { k: 'plain', t: 0 },
      { k: 'quote " and \\ backslash', t: -1500 },
      { k: 'tab\tnew\nline\u0001', t: 1.5 },
      { k: 'émoji 🙂 and a lone \ud800', t: 1e21 },
      { k: 'ü', t: Number.MAX_SAFE_INTEGER },
      { k: 'x', t: -0 },
    ];
    const expected: string[] = [];
    let wm: number | null = null;
    events.forEach((v, i) => {
      const timestamp = 1_700_000_000_000 + i;
      task.process(
        {
          topic: 'in',
          partition: 0,
          offset: i * 1_000_003,
          key: null,
          value: Buffer.from(JSON.stringify(v)),
          timestamp,
          headers: {},
        },
        emitter,
        0,
      );
      expected.push(JSON.stringify([wm, v.t, i * 1_000_003, timestamp, v.k]));
      wm = Math.max(wm ?? Number.NEGATIVE_INFINITY, v.t);
    });
    task.flush(emitter);
    const lines = out.flatMap((r) => r.value!.toString('utf8').split('\n').slice(1, -1));
    assert.deepEqual(
      lines.filter((_, i) => i % 2 === 0),
      expected,
    );
  });

  it('carry an event as its bytes came, unless a newline or a byte order mark forces encoding it again', async () => {
    const { plan, task } = sourceTask();
    const t = tx('ann', 0);
    // Keys reordered and spaced: only the bytes themselves are the event as it came.
    const { transaction_datetime, ...rest } = t;
    const spaced = Buffer.from(
      `{ "transaction_datetime" : ${JSON.stringify(transaction_datetime)}, ${JSON.stringify(rest).slice(1)}`,
    );
    const withNewline = Buffer.from(JSON.stringify(t, null, 1));
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(t))]);
    const values = [spaced, withNewline, withBom];
    const state = new MemoryStateStore();
    const p = partitionForKey('ann', PARTITIONS);
    const keyed = new KeyedTask('app', plan.pipeline, plan.stages[0], p, 1, state.task(`r/${p}`), 10_000, {
      deadLetter: () => assert.fail('no dead letter'),
      late: () => undefined,
    });
    await keyed.backend.claim();
    const round = async (records: InputRecord[]) => {
      const out: OutputRecord[] = [];
      const emitter = { emit: (r: OutputRecord) => out.push(r) };
      for (const r of records) task.process(r, emitter, 0);
      task.broadcast(emitter, T0);
      const mine = consumed(out, p);
      out.length = 0;
      await keyed.process(mine, emitter);
      return out;
    };
    const at = (offset: number, value: Buffer): InputRecord => ({ ...input(offset, null), value });
    // All three reach the keyed task (a dead letter fails the test); a later customer closes ann's window.
    await round([...values.map((v, i) => at(i, v)), input(3, tx('bob', 11 * HOUR))]);
    assert.equal(keyed.openWindows, partitionForKey('bob', PARTITIONS) === p ? 1 : 0);
    const late = await round(values.map((v, i) => at(4 + i, v)));
    assert.deepEqual(
      late.filter((r) => r.topic === 'transactions-data.late').map((r) => r.value!.toString()),
      [spaced.toString(), JSON.stringify(t), JSON.stringify(t)],
    );
  });

  it('are dropped with the transaction when the task goes back to its committed snapshot', () => {
    const { task } = sourceTask();
    const out: OutputRecord[] = [];
    const emitter = { emit: (r: OutputRecord) => out.push(r) };
    task.process(input(0, tx('ann', 0)), emitter, 0);
    task.restore(undefined);
    task.flush(emitter);
    assert.deepEqual(out, []);
  });

  it('give the alerts of one record per transaction when a transaction carries many', async () => {
    const plan = () => fraudTriggerTopology(fraudTriggerConfig({}));
    const records = Array.from({ length: 3000 }, (_, i) => ({
      // 300 customers, each with ten transactions over 40 hours: windows fire as time moves on.
      value: { ...tx(`customer-${i % 300}`, i * 48_000), in_store_payment_amount: 1 + (i % 7) },
    }));
    const alerts = async (commitEvery: number) => {
      const d = await new TopologyTestDriver(plan(), {
        commitEvery,
        repartitionPartitions: PARTITIONS,
      }).start();
      await d.pipe('transactions-data', records);
      await d.commit();
      return d.read('fraud-alerts').map((a) => JSON.stringify([a.key, a.value]));
    };
    const one = await alerts(1);
    assert.ok(one.length > 100, `${one.length} alerts`);
    assert.deepEqual((await alerts(1000)).sort(), [...one].sort());
  });
});
