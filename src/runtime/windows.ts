/**
 * Event-time windows, aligned to the Unix epoch in UTC like Flink's: a window is [start, end),
 * and it fires once, when the watermark reaches end - 1.
 */
export interface WindowSpec {
  kind: 'tumbling' | 'hopping';
  sizeMs: number;
  /** Hop for hopping windows; equals sizeMs for tumbling ones. */
  advanceMs: number;
}

export interface Window {
  start: number;
  end: number;
}

export function tumbling(sizeMs: number): WindowSpec {
  if (!Number.isSafeInteger(sizeMs) || sizeMs <= 0)
    throw new RangeError(`window size must be a positive whole number of ms, got ${sizeMs}`);
  return { kind: 'tumbling', sizeMs, advanceMs: sizeMs };
}

export function hopping(sizeMs: number, advanceMs: number): WindowSpec {
  if (!Number.isSafeInteger(sizeMs) || sizeMs <= 0)
    throw new RangeError(`window size must be a positive whole number of ms, got ${sizeMs}`);
  if (!Number.isSafeInteger(advanceMs) || advanceMs <= 0 || advanceMs > sizeMs || sizeMs % advanceMs !== 0) {
    throw new RangeError(`hop must divide the window size (${sizeMs} ms), got ${advanceMs}`);
  }
  return { kind: 'hopping', sizeMs, advanceMs };
}

export const seconds = (n: number): number => n * 1000;
export const minutes = (n: number): number => n * 60_000;
export const hours = (n: number): number => n * 3_600_000;

/** Floor that is correct for negative timestamps too (before 1970), as Flink's TimeWindow.getWindowStartWithOffset. */
function alignDown(ts: number, step: number): number {
  return ts - (((ts % step) + step) % step);
}

/**
 * The start of the oldest window a timestamp belongs to; the others follow every advanceMs,
 * while a start is at or before the timestamp. The hot path loops over them without windowsFor's array.
 */
export function firstWindowStart(spec: WindowSpec, ts: number): number {
  return alignDown(ts, spec.advanceMs) - spec.sizeMs + spec.advanceMs;
}

/** The windows a timestamp belongs to, oldest first. */
export function windowsFor(spec: WindowSpec, ts: number): Window[] {
  const out: Window[] = [];
  for (let start = firstWindowStart(spec, ts); start <= ts; start += spec.advanceMs) {
    out.push({ start, end: start + spec.sizeMs });
  }
  return out;
}

/** A window has fired once the watermark has reached its last millisecond. */
export function isClosed(window: Pick<Window, 'end'>, watermark: number): boolean {
  return window.end - 1 <= watermark;
}
