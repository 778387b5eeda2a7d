/**
 * Branch totals as a plain batch computation, from notes/semantics.md section 2, sharing no
 * code with the service: branch = Branch_<branchId>; the running total of a branch is the exact
 * sum of the decimals its payAmount values show as text (String(number), which is also their
 * JSON text), computed with BigInt at whatever scale the input needs; no rounding anywhere.
 *
 * Windowed totals (the second output): tumbling event-time windows over createTime (UTC wall
 * time), with per-partition watermarks (highest event time so far - bound) combined by minimum.
 * Like the fraud oracle, it only answers for several partitions when no record is late even
 * against its own partition's watermark, so that the answer does not depend on interleaving.
 */

/** digits * 10^-scale, scale >= 0. */
export interface Decimal {
  digits: bigint;
  scale: number;
}

export function parseDecimal(text: string): Decimal {
  const m = /^(-?)(\d+)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) throw new Error(`not a decimal: ${text}`);
  const [, sign, int, frac = '', exp = '0'] = m;
  let digits = BigInt(`${int}${frac}`);
  let scale = frac.length - Number(exp);
  if (scale < 0) {
    digits *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { digits: sign === '-' ? -digits : digits, scale };
}

function rescale(d: Decimal, scale: number): bigint {
  return d.digits * 10n ** BigInt(scale - d.scale);
}

export function addDecimal(a: Decimal, b: Decimal): Decimal {
  const scale = Math.max(a.scale, b.scale);
  return { digits: rescale(a, scale) + rescale(b, scale), scale };
}

export function decimalEquals(a: Decimal, b: Decimal): boolean {
  const scale = Math.max(a.scale, b.scale);
  return rescale(a, scale) === rescale(b, scale);
}

/** Plain notation, no trailing fractional zeros, no exponent. */
export function formatDecimal(d: Decimal): string {
  const neg = d.digits < 0n;
  const abs = (neg ? -d.digits : d.digits).toString().padStart(d.scale + 1, '0');
  const int = abs.slice(0, abs.length - d.scale);
  const frac = abs.slice(abs.length - d.scale).replace(/0+$/, '');
  return `${neg ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}

const ZERO: Decimal = { digits: 0n, scale: 0 };

export interface BranchSum {
  branch: string;
  sum: Decimal;
  count: number;
}

export interface BranchWindowSum extends BranchSum {
  start: number;
  end: number;
}

export interface BranchOracleOptions {
  windowMs?: number;
  outOfOrdernessMs?: number;
}

export interface BranchOracleResult {
  totals: Map<string, BranchSum>;
  /** Fired windows, keyed `${branch}@${start}`. */
  windows: Map<string, BranchWindowSum>;
  windowsOpen: number;
  total: number;
  late: number;
  /** Amounts whose decimal text has more than 18 fractional digits. */
  longAmounts: number;
  finalWatermark: number;
}

interface Pay {
  branch: string;
  amount: Decimal;
  fracDigits: number;
  time: number;
}

function parsePayment(value: Buffer | string): Pay {
  const o = JSON.parse(typeof value === 'string' ? value : value.toString('utf8')) as Record<string, unknown>;
  const { createTime, payAmount, branchId } = o;
  if (
    typeof createTime !== 'string' ||
    typeof payAmount !== 'number' ||
    typeof branchId !== 'number' ||
    !Number.isInteger(branchId) ||
    branchId < 0 ||
    branchId > 9
  ) {
    throw new Error(`the oracle only takes valid payments, got ${JSON.stringify(o)}`);
  }
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(createTime);
  if (!m) throw new Error(`bad createTime ${createTime}`);
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number);
  const amount = parseDecimal(String(payAmount));
  return {
    branch: `Branch_${branchId}`,
    amount,
    fracDigits: amount.scale,
    time: Date.UTC(y, mo - 1, d, h, mi, s),
  };
}

/** `partitions[p]` = the values of input partition p, in log order. */
export function branchOracle(
  partitions: ReadonlyArray<ReadonlyArray<Buffer | string>>,
  opts: BranchOracleOptions = {},
): BranchOracleResult {
  const windowMs = opts.windowMs ?? 60_000;
  const bound = opts.outOfOrdernessMs ?? 5_000;
  const totals = new Map<string, BranchSum>();
  const open = new Map<string, BranchWindowSum>();
  const finalWatermarks: number[] = [];
  let total = 0;
  let late = 0;
  let longAmounts = 0;

  partitions.forEach((values, p) => {
    let maxTime = -Infinity;
    for (const value of values) {
      const pay = parsePayment(value);
      total++;
      if (pay.fracDigits > 18) longAmounts++;
      const t = totals.get(pay.branch) ?? { branch: pay.branch, sum: ZERO, count: 0 };
      totals.set(pay.branch, { branch: pay.branch, sum: addDecimal(t.sum, pay.amount), count: t.count + 1 });

      const watermarkBefore = maxTime - bound;
      maxTime = Math.max(maxTime, pay.time);
      const start = pay.time - (((pay.time % windowMs) + windowMs) % windowMs);
      const end = start + windowMs;
      if (end - 1 <= watermarkBefore) {
        if (partitions.length > 1) {
          throw new Error(
            `payment at ${new Date(pay.time).toISOString()} in partition ${p} is late against its own partition: ` +
              'with several partitions the windowed result would depend on interleaving',
          );
        }
        late++;
        continue;
      }
      const k = `${pay.branch}@${start}`;
      const w = open.get(k) ?? { branch: pay.branch, start, end, sum: ZERO, count: 0 };
      open.set(k, { ...w, sum: addDecimal(w.sum, pay.amount), count: w.count + 1 });
    }
    finalWatermarks.push(maxTime - bound);
  });

  const finalWatermark = finalWatermarks.length === 0 ? -Infinity : Math.min(...finalWatermarks);
  const windows = new Map<string, BranchWindowSum>();
  let windowsOpen = 0;
  for (const [k, w] of open) {
    if (w.end - 1 <= finalWatermark) windows.set(k, w);
    else windowsOpen++;
  }
  return { totals, windows, windowsOpen, total, late, longAmounts, finalWatermark };
}
