import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyedTask } from '../../../src/runtime/engine.js';
import { H, type InputRecord, type OutputRecord } from '../../../src/runtime/records.js';
import { fraudDriver, HOUR, T0, tx } from '../../helpers/fraud.js';

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
    const d = await fraudDriver();
    const model = d.keyedTask('by-customer', 0)!;
    const dead: string[] = [];
    const task = new KeyedTask(
      d.app,
      model.pipeline,
      model.stage,
      0,
      1,
      d.state.task(`${model.topic}/0`),
      10,
      { deadLetter: (reason) => dead.push(reason), late: () => undefined },
    );
    await task.backend.claim();
    const out: OutputRecord[] = [];
    const record = (offset: number, key: string | null, value: string): InputRecord => ({
      topic: model.topic,
      partition: 0,
      offset,
      key: key === null ? null : Buffer.from(key),
      value: Buffer.from(value),
      timestamp: T0,
      headers: {},
    });
    await task.process(
      [
        record(0, 'ann', JSON.stringify(tx('ann', 0))), // no metadata line
        record(1, 'ann', `[0,5,1]\n${JSON.stringify(tx('ann', 0))}`), // metadata of the wrong shape
        record(2, 'ann', `[0,5,"x","t",0,1]\n${JSON.stringify(tx('ann', 0))}`), // no event time
        record(3, null, 'not json'),
        record(4, null, '{"watermark":1}'),
        record(5, null, '[7,5,0]'), // an upstream partition the task does not have
      ],
      { emit: (r) => out.push(r) },
    );
    assert.deepEqual(dead, Array(6).fill('invalid-repartition-record'));
    assert.deepEqual(
      out.map((r) => [r.topic, r.headers?.[H.sourceOffset]]),
      [0, 1, 2, 3, 4, 5].map((o) => ['transactions-data.dlq', String(o)]),
    );
    assert.equal(task.watermark.current, Number.NEGATIVE_INFINITY);
    assert.equal(task.openWindows, 0);
  });
});
