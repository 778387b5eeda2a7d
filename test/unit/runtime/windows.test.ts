import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hopping, hours, isClosed, minutes, tumbling, windowsFor } from '../../../src/runtime/windows.js';

describe('windows', () => {
  it('aligns tumbling windows to the epoch, end exclusive', () => {
    const ten = tumbling(hours(10));
    // 473,352 hours from the epoch to 2024-01-01: 10-hour windows there run 22:00-08:00, not 00:00-10:00.
    const ts = Date.parse('2024-01-01T07:59:59.999Z');
    assert.deepEqual(windowsFor(ten, ts), [
      { start: Date.parse('2023-12-31T22:00:00Z'), end: Date.parse('2024-01-01T08:00:00Z') },
    ]);
    assert.deepEqual(windowsFor(ten, ts + 1)[0].start, Date.parse('2024-01-01T08:00:00Z'));
  });

  it('floors negative timestamps like Flink', () => {
    assert.deepEqual(windowsFor(tumbling(1000), -1), [{ start: -1000, end: 0 }]);
    assert.deepEqual(windowsFor(tumbling(1000), -1000), [{ start: -1000, end: 0 }]);
  });

  it('gives every overlapping hopping window, oldest first', () => {
    const w = windowsFor(hopping(minutes(10), minutes(5)), minutes(12));
    assert.deepEqual(w, [
      { start: minutes(5), end: minutes(15) },
      { start: minutes(10), end: minutes(20) },
    ]);
  });

  it('rejects hops that do not divide the size', () => {
    assert.throws(() => hopping(1000, 300), /divide/);
    assert.throws(() => tumbling(0), /positive/);
  });

  it('closes a window when the watermark reaches end - 1', () => {
    const w = { start: 0, end: 1000 };
    assert.equal(isClosed(w, 998), false);
    assert.equal(isClosed(w, 999), true);
  });
});
