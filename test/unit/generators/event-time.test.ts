import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  createEventTimeSource,
  DEFAULT_SEED_SPAN_MS,
  type EventTimeOptions,
} from '../../../src/generators/event-time.js';
import { generate } from '../../../src/generators/index.js';
import { Rng } from '../../../src/generators/random.js';

function times(opts: EventTimeOptions, n: number, seed = 1): number[] {
  const src = createEventTimeSource(opts, new Rng(seed));
  return Array.from({ length: n }, () => src.next());
}

/** The largest lag of a record behind the highest event time before it. */
function maxLag(ts: readonly number[]): number {
  let max = -Infinity;
  let lag = 0;
  for (const t of ts) {
    if (max - t > lag) lag = max - t;
    if (t > max) max = t;
  }
  return lag;
}

describe('sim mode', () => {
  it('never lags behind the running max by more than the jitter bound', () => {
    for (const [jitterMs, stepMs, resolutionMs] of [
      [30_000, 1000, 1],
      [30_000, 1000, 1000],
      [2_500, 100, 1000],
      [5_000, 0, 1],
      [0, 1000, 1],
      [777, 10, 1],
    ] as const) {
      for (const seed of [1, 2, 3]) {
        const ts = times({ mode: 'sim', jitterMs, simStepMs: stepMs, resolutionMs }, 20_000, seed);
        const lag = maxLag(ts);
        assert.ok(lag <= jitterMs, `lag ${lag} > jitter ${jitterMs} (step ${stepMs}, res ${resolutionMs})`);
        for (const t of ts) assert.equal(t % resolutionMs, 0);
      }
    }
  });

  it('uses the whole jitter bound and stays near start + i * step', () => {
    const start = Date.UTC(2024, 0, 1);
    const ts = times({ mode: 'sim', simStartMs: start, simStepMs: 1000, jitterMs: 30_000 }, 20_000);
    assert.ok(maxLag(ts) > 25_000, 'records do arrive out of order');
    ts.forEach((t, i) => {
      const base = start + i * 1000;
      assert.ok(t >= base - 30_001 && t <= base + 30_000, `record ${i}: ${t - base}`);
      assert.ok(Number.isInteger(t));
    });
  });

  it('increases on average by the step', () => {
    const ts = times({ mode: 'sim', simStepMs: 1000, jitterMs: 30_000 }, 20_000);
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const slope = (mean(ts.slice(-1000)) - mean(ts.slice(0, 1000))) / 19_000;
    assert.ok(Math.abs(slope - 1000) < 20, `slope ${slope}`);
  });

  it('holds in generated records of both kinds, with the defaults', () => {
    for (const kind of ['fraud', 'payments'] as const) {
      const ts = [...generate(kind, { count: 10_000, malformedShare: 0.2 })].map((r) => r.timestamp);
      assert.ok(maxLag(ts) <= 30_000);
      assert.ok(Math.abs((ts[0] ?? 0) - Date.UTC(2024, 0, 1)) <= 30_000);
    }
  });
});

describe('seed mode', () => {
  it('is uniform within the month before now, mostly far behind the running max', () => {
    const now = Date.UTC(2024, 5, 1, 12, 0, 0, 123);
    for (const resolutionMs of [1, 1000]) {
      const ts = times({ mode: 'seed', now, resolutionMs }, 10_000);
      for (const t of ts) assert.ok(t >= now - DEFAULT_SEED_SPAN_MS && t < now, `${t - now}`);
      const lo = ts.filter((t) => t < now - DEFAULT_SEED_SPAN_MS / 2).length;
      assert.ok(Math.abs(lo / 10_000 - 0.5) < 0.03);
    }
    // Under a 60 s bound most records are late: that is the seed's behaviour the brief asks for.
    const ts = times({ mode: 'seed', now }, 10_000);
    let max = -Infinity;
    let late = 0;
    for (const t of ts) {
      if (max - t > 60_000) late++;
      max = Math.max(max, t);
    }
    assert.ok(late / ts.length > 0.9, `late share ${late / ts.length}`);
  });

  it('takes the span as an option (60000 = what Python Faker reads "-1m" as)', () => {
    const now = Date.UTC(2024, 5, 1);
    for (const t of times({ mode: 'seed', now, seedSpanMs: 60_000 }, 1000))
      assert.ok(t >= now - 60_000 && t < now);
  });

  it('follows the clock when now is not given', () => {
    let clock = 1_000_000_000_000;
    const src = createEventTimeSource({ mode: 'seed', seedSpanMs: 1000, clock: () => clock }, new Rng(1));
    const a = src.next();
    clock += 10_000;
    const b = src.next();
    assert.ok(a < 1_000_000_000_000 && a >= 999_999_999_000);
    assert.ok(b >= 1_000_000_009_000 && b < 1_000_000_010_000);
  });
});

describe('live mode', () => {
  it('stays within jitter of the clock and never lags more than the jitter', () => {
    let clock = 1_700_000_000_000;
    const src = createEventTimeSource({ mode: 'live', jitterMs: 500, clock: () => clock }, new Rng(1));
    const ts: number[] = [];
    for (let i = 0; i < 5000; i++) {
      clock += i % 7;
      const t = src.next();
      assert.ok(Math.abs(t - clock) <= 500);
      ts.push(t);
    }
    assert.ok(maxLag(ts) <= 500);
    assert.equal(src.startMs, 1_700_000_000_000);
  });
});

describe('option checks', () => {
  it('rejects negative or non-finite parameters', () => {
    const rng = new Rng(1);
    assert.throws(() => createEventTimeSource({ mode: 'sim', jitterMs: -1 }, rng), RangeError);
    assert.throws(() => createEventTimeSource({ mode: 'sim', simStepMs: NaN }, rng), RangeError);
    assert.throws(() => createEventTimeSource({ mode: 'sim', simStartMs: Infinity }, rng), RangeError);
    assert.throws(() => createEventTimeSource({ mode: 'seed', seedSpanMs: -5 }, rng), RangeError);
    assert.throws(() => createEventTimeSource({ mode: 'sim', resolutionMs: 0 }, rng), RangeError);
  });
});
