import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CombinedWatermark, NO_WATERMARK, SourceWatermark } from '../../../src/runtime/watermarks.js';

describe('SourceWatermark', () => {
  it('is the highest event time so far minus the bound, and judges a record by the watermark before it', () => {
    const w = new SourceWatermark(60_000);
    assert.equal(w.observe(100_000), NO_WATERMARK);
    assert.equal(w.current, 40_000);
    assert.equal(w.observe(50_000), 40_000); // out of order: does not move it back
    assert.equal(w.current, 40_000);
    w.observe(200_000);
    assert.equal(w.current, 140_000);
  });

  it('takes idle advances as a floor and survives snapshot/restore', () => {
    const w = new SourceWatermark(1000);
    w.observe(10_000);
    w.advanceTo(50_000);
    assert.equal(w.current, 50_000);
    const copy = new SourceWatermark(1000);
    copy.restore(w.snapshot());
    assert.equal(copy.current, 50_000);
    assert.equal(copy.maxTimestamp, 10_000);
  });
});

describe('CombinedWatermark', () => {
  it('is the minimum over upstream partitions, held back by silent ones', () => {
    const c = new CombinedWatermark(3);
    assert.equal(c.update(0, 100, false), NO_WATERMARK);
    assert.equal(c.update(1, 50, false), NO_WATERMARK);
    assert.equal(c.update(2, 70, false), 50);
    assert.equal(c.update(1, 200, false), 70);
  });

  it('never goes back, even if an upstream reports less', () => {
    const c = new CombinedWatermark(1);
    c.update(0, 100, false);
    assert.equal(c.update(0, 10, false), 100);
  });

  it('leaves idle partitions out of the minimum until they speak again', () => {
    const c = new CombinedWatermark(2);
    c.update(0, 100, false);
    assert.equal(c.current, NO_WATERMARK);
    assert.equal(c.update(1, NO_WATERMARK, true), 100);
    assert.equal(c.update(0, 300, false), 300);
    // Partition 1 wakes up behind: the combined watermark does not go back.
    assert.equal(c.update(1, 150, false), 300);
    assert.equal(c.update(0, 400, false), 300);
  });

  it('follows the most advanced idle partition when all are idle', () => {
    const c = new CombinedWatermark(2);
    c.update(0, 100, false);
    c.update(1, NO_WATERMARK, true);
    assert.equal(c.update(0, 500, true), 500);
  });

  it('rejects an upstream partition it does not know', () => {
    assert.throws(() => new CombinedWatermark(2).update(2, 0, false), /outside/);
  });

  it('restores what it snapshotted', () => {
    const c = new CombinedWatermark(2);
    c.update(0, 10, false);
    c.update(1, 20, true);
    const d = new CombinedWatermark(2);
    d.restore(c.snapshot());
    assert.deepEqual(d.snapshot(), c.snapshot());
  });
});
