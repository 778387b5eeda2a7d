import { type Rng } from './random.js';

export const PAYMENTS_TOPIC = 'payment_msg';
export const MAX_PRICE = 1000;
export const BRANCH_COUNT = 10;
export const DEFAULT_TIME_ZONE = 'UTC';

/** The seed's payment, fields in the seed's order (it is the JSON key order too). */
export interface Payment {
  /** "YYYY-MM-DD HH:MM:SS", wall time in the generator's zone, no offset (as the seed writes it). */
  createTime: string;
  orderId: number;
  payAmount: number;
  payPlatform: 0 | 1;
  /** 0..9; the service maps it to `Branch_<id>`. */
  branchId: number;
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/**
 * Returns a formatter of instants as "YYYY-MM-DD HH:MM:SS" in `timeZone` (IANA name). Throws a RangeError for
 * an unknown zone, so a bad option fails at start-up rather than on the first record.
 */
export function createTimeFormatter(timeZone: string = DEFAULT_TIME_ZONE): (ms: number) => string {
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  const resolved = fmt.resolvedOptions().timeZone;
  if (resolved === 'UTC' || resolved === 'Etc/UTC') {
    // Intl is ~20x slower than slicing the ISO string, and UTC is the default for benchmarks.
    return (ms) => {
      const iso = new Date(ms).toISOString();
      return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
    };
  }
  let lastSecond = NaN;
  let last = '';
  return (ms) => {
    const second = Math.floor(ms / 1000);
    if (second === lastSecond) return last;
    const parts: Record<string, string> = {};
    for (const p of fmt.formatToParts(ms)) parts[p.type] = p.value;
    const year = Number(parts.year);
    // Years outside 0..9999 cannot be written in this fixed format; they do not occur in practice.
    last = `${String(year).padStart(4, '0')}-${parts.month}-${parts.day} ${pad2(Number(parts.hour))}:${parts.minute}:${parts.second}`;
    lastSecond = second;
    return last;
  };
}

/** One payment, drawing from `rng` in the seed's order: amount, platform, branch. */
export function makePayment(
  rng: Rng,
  orderId: number,
  eventTimeMs: number,
  format: (ms: number) => string,
): Payment {
  const payAmount = MAX_PRICE * rng.random();
  const payPlatform = rng.random() < 0.9 ? 0 : 1;
  const branchId = rng.int(0, BRANCH_COUNT - 1);
  return { createTime: format(eventTimeMs), orderId, payAmount, payPlatform, branchId };
}
