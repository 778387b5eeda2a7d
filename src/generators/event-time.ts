import { type Rng } from './random.js';

export const TIME_MODES = ['seed', 'live', 'sim'] as const;
export type TimeMode = (typeof TIME_MODES)[number];

export const DEFAULT_SIM_START_MS = Date.UTC(2024, 0, 1, 0, 0, 0);
export const DEFAULT_SIM_STEP_MS = 1000;
export const DEFAULT_JITTER_MS = 30_000;
/** 31 days: the brief's reading of the seed's `date_time_between('-1m', 'now')` (see {@link EventTimeOptions.seedSpanMs}). */
export const DEFAULT_SEED_SPAN_MS = 31 * 24 * 60 * 60 * 1000;

export interface EventTimeOptions {
  mode: TimeMode;
  /**
   * `seed` mode: the instant the span ends at. Undefined = the clock at each record, as the Python seed does;
   * set it for reproducible output.
   */
  now?: number;
  /**
   * `seed` mode: how far back from `now` event times reach. The default is a month, as the brief reads the
   * seed; note that in Python Faker `'-1m'` actually means one minute (`M` is months), so 60000 reproduces
   * the seed's real behaviour.
   */
  seedSpanMs?: number;
  /** `sim` mode: event time of record 0 before jitter. */
  simStartMs?: number;
  /** `sim` mode: event-time distance between consecutive records before jitter. */
  simStepMs?: number;
  /** `live` and `sim`: maximum disorder. No record is ever more than this behind the highest event time before it. */
  jitterMs?: number;
  /**
   * Event times are multiples of this (1 = ms). Payments' createTime has whole seconds, so their Kafka
   * timestamp must be rounded the same way or the two would disagree about the event time.
   */
  resolutionMs?: number;
  /** Wall clock for `live` mode and for `seed` mode without `now`; injectable for tests. */
  clock?: () => number;
}

export interface EventTimeSource {
  /** The instant the stream is anchored at: sim start, or `now`/the clock at creation. */
  readonly startMs: number;
  /** Event time (ms since the epoch, an integer) of the next record. */
  next(): number;
}

function checkNonNegative(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a finite number >= 0`);
}

function checkInstant(name: string, value: number): void {
  // The range of a JS Date, so that toISOString() works on every generated instant.
  if (!Number.isFinite(value) || Math.abs(value) > 8.64e15)
    throw new RangeError(`${name} is not a valid instant`);
}

export function createEventTimeSource(opts: EventTimeOptions, rng: Rng): EventTimeSource {
  const clock = opts.clock ?? Date.now;
  const res = opts.resolutionMs ?? 1;
  if (!Number.isInteger(res) || res < 1) throw new RangeError('resolutionMs must be an integer >= 1');
  const floorRes = (t: number): number => Math.floor(t / res) * res;
  const ceilRes = (t: number): number => Math.ceil(t / res) * res;

  switch (opts.mode) {
    case 'seed': {
      const span = opts.seedSpanMs ?? DEFAULT_SEED_SPAN_MS;
      checkNonNegative('seedSpanMs', span);
      if (opts.now !== undefined) checkInstant('now', opts.now);
      const fixedNow = opts.now;
      return {
        startMs: fixedNow ?? clock(),
        next(): number {
          const now = fixedNow ?? clock();
          // [lo, now) with lo on the grid, so rounding down to the grid cannot leave the span.
          const lo = ceilRes(now - span);
          if (lo >= now) return floorRes(now);
          return floorRes(lo + rng.random() * (now - lo));
        },
      };
    }
    case 'live':
    case 'sim': {
      const jitter = opts.jitterMs ?? DEFAULT_JITTER_MS;
      checkNonNegative('jitterMs', jitter);
      const step = opts.simStepMs ?? DEFAULT_SIM_STEP_MS;
      checkNonNegative('simStepMs', step);
      const simStart = opts.simStartMs ?? DEFAULT_SIM_START_MS;
      checkInstant('simStartMs', simStart);
      const sim = opts.mode === 'sim';
      let i = 0;
      let maxSeen = -Infinity;
      return {
        startMs: sim ? simStart : clock(),
        next(): number {
          const base = sim ? simStart + i * step : clock();
          i++;
          let t = floorRes(base + (rng.random() * 2 - 1) * jitter);
          // Symmetric jitter alone could put a record up to 2*jitter - step behind an earlier one; clamping
          // makes the bound hard, so a watermark of `max - bound` with bound >= jitter never sees a late record.
          const floor = ceilRes(maxSeen - jitter);
          if (t < floor) t = floor;
          if (t > maxSeen) maxSeen = t;
          return t;
        },
      };
    }
  }
}
