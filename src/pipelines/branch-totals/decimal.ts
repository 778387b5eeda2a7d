/**
 * Exact decimal sums for money. Each amount is taken as the decimal its JSON text shows
 * (JavaScript and Python both print the shortest decimal that round-trips), held as a
 * BigInt count of 10^-40 units, and summed exactly: no floating-point drift, whatever the
 * number of records. A double has at most 17 significant digits, so every amount from
 * about 1e-23 upwards is held exactly; smaller ones are rounded half-even at the 40th
 * fractional digit (an error below 5e-41 per record).
 */
const SCALE = 40;
const ONE = 10n ** BigInt(SCALE);

export function toUnits(amount: number): bigint {
  if (!Number.isFinite(amount)) throw new RangeError(`amount is not finite: ${amount}`);
  const text = String(amount);
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(text);
  if (!m) throw new RangeError(`cannot read amount ${text}`);
  const [, sign, int, frac = '', exp = '0'] = m;
  const digits = `${int}${frac}`;
  // value = digits * 10^(exp - frac.length); units = value * 10^SCALE
  const shift = Number(exp) - frac.length + SCALE;
  let units: bigint;
  if (shift >= 0) {
    units = BigInt(digits) * 10n ** BigInt(shift);
  } else {
    const div = 10n ** BigInt(-shift);
    const n = BigInt(digits);
    units = n / div;
    const rem = n % div;
    const twice = rem * 2n;
    if (twice > div || (twice === div && units % 2n === 1n)) units += 1n;
  }
  return sign === '-' ? -units : units;
}

export function unitsToString(units: bigint): string {
  const neg = units < 0n;
  const abs = neg ? -units : units;
  const int = abs / ONE;
  const frac = (abs % ONE).toString().padStart(SCALE, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}

/** Adds an amount to a sum kept as a decimal string (state must be JSON). */
export function addAmount(sum: string, amount: number): string {
  return unitsToString(fromString(sum) + toUnits(amount));
}

export function fromString(s: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d{1,40}))?$/.exec(s);
  if (!m) throw new RangeError(`not a decimal sum: ${s}`);
  const units = BigInt(m[2]) * ONE + BigInt((m[3] ?? '').padEnd(SCALE, '0') || '0');
  return m[1] === '-' ? -units : units;
}
