import { type FraudTransaction, TRANSACTION_TYPES } from './fraud.js';
import { type Payment } from './payments.js';
import { type Rng } from './random.js';

const SHARED_KINDS = [
  'invalid-json',
  'wrong-type',
  'missing-field',
  'nan',
  'infinity',
  'invalid-date',
  'huge-string',
  'oversized-value',
  'binary',
  'json-null',
  'duplicate-keys',
] as const;

export const FRAUD_MALFORMED_KINDS = [...SHARED_KINDS, 'unknown-transaction-type'] as const;
export const PAYMENT_MALFORMED_KINDS = [...SHARED_KINDS, 'unknown-branch'] as const;
export type FraudMalformedKind = (typeof FRAUD_MALFORMED_KINDS)[number];
export type PaymentMalformedKind = (typeof PAYMENT_MALFORMED_KINDS)[number];
export type MalformedKind = FraudMalformedKind | PaymentMalformedKind;

/** Size of one string field in a `huge-string` record: far beyond any sane name, well within a Kafka message. */
export const HUGE_STRING_CHARS = 200 * 1024;
/**
 * Total size of an `oversized-value` record. "1 MB", but under librdkafka's default message.max.bytes
 * (1,000,000 including framing), so the generator's own producer can still send it.
 */
export const OVERSIZED_VALUE_BYTES = 999_000;

export const UNKNOWN_TRANSACTION_TYPES = ['crypto_exchange', 'casino', 'HIGHWAY_TOLL', ''] as const;
export const UNKNOWN_BRANCH_ID = 42;

/** The kind-specific facts about a record type that the malformed variants need. */
interface Shape {
  entries: Array<[string, unknown]>;
  numericFields: readonly string[];
  dateField: string;
  invalidDates: readonly string[];
  /** The free-text field to blow up for `huge-string`. */
  textField: string;
  /** A different but well-typed value for `field`, for the first of two duplicate keys. */
  otherValue(field: string, value: unknown, rng: Rng): unknown;
}

const fraudShape = (tx: FraudTransaction): Shape => ({
  entries: Object.entries(tx),
  numericFields: ['online_payment_amount', 'in_store_payment_amount', 'lat', 'lon'],
  dateField: 'transaction_datetime',
  invalidDates: ['not a date', '2024-13-01T00:00:00Z', '2024-01-01T25:61:00Z', '', 'yesterday'],
  textField: 'customer',
  otherValue(field, value, rng) {
    if (typeof value === 'number') return value + 1;
    if (field === 'transaction_type') return rng.choice(TRANSACTION_TYPES.filter((t) => t !== value));
    if (field === 'transaction_datetime')
      return new Date(Date.parse(tx.transaction_datetime) - 3_600_000).toISOString();
    return `${String(value)} Jr.`;
  },
});

const paymentShape = (p: Payment): Shape => ({
  entries: Object.entries(p),
  numericFields: ['orderId', 'payAmount', 'payPlatform', 'branchId'],
  dateField: 'createTime',
  invalidDates: ['not a date', '2024-13-01 00:00:00', '2024-01-01 25:61:00', '', 'yesterday'],
  textField: 'createTime',
  otherValue(field, value) {
    if (field === 'payPlatform') return value === 0 ? 1 : 0;
    if (field === 'branchId') return ((value as number) + 1) % 10;
    if (typeof value === 'number') return value + 1;
    // createTime: the same format an hour earlier would need the zone; a different valid-looking time suffices.
    return (value as string).replace(/^\d{4}/, (y) => String(Number(y) - 1));
  },
});

/** JSON object text from entries whose values are already JSON text (so they can be non-JSON on purpose). */
function objectText(entries: ReadonlyArray<readonly [string, string]>): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}

const jsonEntries = (entries: Array<[string, unknown]>): Array<[string, string]> =>
  entries.map(([k, v]) => [k, JSON.stringify(v)]);

function replaceRaw(entries: Array<[string, unknown]>, field: string, raw: string): Array<[string, string]> {
  return entries.map(([k, v]) => [k, k === field ? raw : JSON.stringify(v)]);
}

function pythonRepr(value: unknown): string {
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return String(value);
}

function invalidJson(shape: Shape, rng: Rng): string {
  const valid = objectText(jsonEntries(shape.entries));
  switch (rng.int(0, 2)) {
    case 0:
      // A proper prefix of an object's text is never valid JSON: the closing brace is missing.
      return valid.slice(0, rng.int(0, valid.length - 1));
    case 1:
      // What `str(dict)` instead of `json.dumps(dict)` produces in a Python producer.
      return `{${shape.entries.map(([k, v]) => `${pythonRepr(k)}: ${pythonRepr(v)}`).join(', ')}}`;
    default:
      return `${valid.slice(0, -1)},}`;
  }
}

function build(kind: MalformedKind, shape: Shape, rng: Rng): Buffer | string {
  const { entries } = shape;
  switch (kind) {
    case 'invalid-json':
      return invalidJson(shape, rng);
    case 'wrong-type': {
      const [field, value] = rng.choice(entries);
      // Clearly wrong for every field (no string "12.5" that a lenient parser might coerce).
      const wrong = rng.bernoulli(0.5) ? rng.bernoulli(0.5) : { value };
      return objectText(replaceRaw(entries, field, JSON.stringify(wrong)));
    }
    case 'missing-field': {
      const drop = rng.int(0, entries.length - 1);
      return objectText(jsonEntries(entries.filter((_, i) => i !== drop)));
    }
    case 'nan':
      return objectText(replaceRaw(entries, rng.choice(shape.numericFields), 'NaN'));
    case 'infinity':
      // JSON.parse reads an overflowing literal as ±Infinity; a schema must reject it.
      return objectText(
        replaceRaw(entries, rng.choice(shape.numericFields), rng.bernoulli(0.5) ? '1e999' : '-1e999'),
      );
    case 'invalid-date':
      return objectText(replaceRaw(entries, shape.dateField, JSON.stringify(rng.choice(shape.invalidDates))));
    case 'unknown-transaction-type':
      return objectText(
        replaceRaw(entries, 'transaction_type', JSON.stringify(rng.choice(UNKNOWN_TRANSACTION_TYPES))),
      );
    case 'unknown-branch':
      return objectText(replaceRaw(entries, 'branchId', String(UNKNOWN_BRANCH_ID)));
    case 'huge-string': {
      const found = entries.find(([k]) => k === shape.textField)?.[1];
      const current = typeof found === 'string' && found !== '' ? found : 'x';
      // The value is repeated as encoded JSON bytes, whole copies only so no escape is cut in half; going
      // through a 200 KB JS string and JSON.stringify costs ~10x more, which shows at benchmark rates.
      const unit = Buffer.from(JSON.stringify(current).slice(1, -1), 'utf8');
      const copies = Math.ceil(HUGE_STRING_CHARS / current.length);
      // A NUL character cannot occur in JSON.stringify output (it escapes it), so it marks the spot exactly.
      const [before = '', after = ''] = objectText(replaceRaw(entries, shape.textField, '"\u0000"')).split(
        '\u0000',
      );
      return Buffer.concat([
        Buffer.from(before),
        Buffer.alloc(copies * unit.length, unit),
        Buffer.from(after),
      ]);
    }
    case 'oversized-value': {
      // Filled in place: building a 1 MB string and then encoding it costs several times more.
      const head = Buffer.from(`${objectText(jsonEntries(entries)).slice(0, -1)},"padding":"`, 'utf8');
      const out = Buffer.alloc(Math.max(OVERSIZED_VALUE_BYTES, head.length + 2), 'x');
      head.copy(out, 0);
      out.write('"}', out.length - 2, 'latin1');
      return out;
    }
    case 'binary': {
      // 0xff never occurs in UTF-8, so the value is invalid UTF-8 whatever bytes follow.
      const bytes = rng.bytes(rng.int(16, 1024));
      bytes[0] = 0xff;
      return bytes;
    }
    case 'json-null':
      return 'null';
    case 'duplicate-keys': {
      // JSON.parse keeps the last value silently; strict parsers reject it. Either way the record is ambiguous.
      const [field, value] = rng.choice(entries);
      const dup: [string, string] = [field, JSON.stringify(shape.otherValue(field, value, rng))];
      return objectText([dup, ...jsonEntries(entries)]);
    }
  }
}

/** The malformed stand-in for `tx`: built from its fields, so it looks like the record it replaces. */
export function malformedFraud(kind: FraudMalformedKind, tx: FraudTransaction, rng: Rng): Buffer {
  const out = build(kind, fraudShape(tx), rng);
  return typeof out === 'string' ? Buffer.from(out, 'utf8') : out;
}

/** The malformed stand-in for `p`: built from its fields, so it looks like the record it replaces. */
export function malformedPayment(kind: PaymentMalformedKind, p: Payment, rng: Rng): Buffer {
  const out = build(kind, paymentShape(p), rng);
  return typeof out === 'string' ? Buffer.from(out, 'utf8') : out;
}
