import { createEventTimeSource, type EventTimeSource, type TimeMode } from './event-time.js';
import { CustomerNames, DEFAULT_CUSTOMERS, FRAUD_TOPIC, makeFraudTransaction } from './fraud.js';
import {
  FRAUD_MALFORMED_KINDS,
  type MalformedKind,
  malformedFraud,
  malformedPayment,
  PAYMENT_MALFORMED_KINDS,
} from './malformed.js';
import { createTimeFormatter, DEFAULT_TIME_ZONE, makePayment, PAYMENTS_TOPIC } from './payments.js';
import { Rng } from './random.js';

export {
  DEFAULT_JITTER_MS,
  DEFAULT_SEED_SPAN_MS,
  DEFAULT_SIM_START_MS,
  DEFAULT_SIM_STEP_MS,
  TIME_MODES,
  type TimeMode,
} from './event-time.js';
export {
  CustomerNames,
  DEFAULT_CUSTOMERS,
  FRAUD_TOPIC,
  type FraudTransaction,
  LAT_RANGE,
  LON_RANGE,
  TRANSACTION_TYPES,
  type TransactionType,
} from './fraud.js';
export {
  FRAUD_MALFORMED_KINDS,
  type FraudMalformedKind,
  HUGE_STRING_CHARS,
  type MalformedKind,
  OVERSIZED_VALUE_BYTES,
  PAYMENT_MALFORMED_KINDS,
  type PaymentMalformedKind,
  UNKNOWN_BRANCH_ID,
} from './malformed.js';
export { BRANCH_COUNT, DEFAULT_TIME_ZONE, type Payment, PAYMENTS_TOPIC } from './payments.js';

export const GENERATOR_KINDS = ['fraud', 'payments'] as const;
export type GeneratorKind = (typeof GENERATOR_KINDS)[number];
export const KEY_MODES = ['none', 'entity'] as const;
export type KeyMode = (typeof KEY_MODES)[number];

export const DEFAULT_TOPICS: Readonly<Record<GeneratorKind, string>> = {
  fraud: FRAUD_TOPIC,
  payments: PAYMENTS_TOPIC,
};

export interface GeneratedRecord {
  /** null in key mode `none`, as the seeds send no key. */
  key: string | null;
  value: Buffer;
  /** ms since the epoch: the event time of a valid record, and of the valid record a malformed one replaced. */
  timestamp: number;
  /** Set on malformed records only: which kind of malformed. */
  malformed?: MalformedKind;
}

export interface GenerateOptions {
  /** Number of records; undefined = endless. */
  count?: number;
  /** Default 1. Same seed and options (and a fixed clock: time mode `sim`, or `seed` with `now`) = same bytes. */
  seed?: number;
  /** `none` (default, like the seeds) or `entity`: the customer for fraud, the branchId as a string for payments. */
  keyMode?: KeyMode;
  /** Default `sim`, the only mode whose output does not depend on the wall clock. */
  timeMode?: TimeMode;
  /** `seed` mode: end of the span (ms); undefined = the clock at each record. */
  now?: number;
  /** `seed` mode: length of the span before `now` (ms); default a month. */
  seedSpanMs?: number;
  /** `sim` mode: event time of record 0 (ms); default 2024-01-01T00:00:00Z. */
  simStartMs?: number;
  /** `sim` mode: default 1000. */
  simStepMs?: number;
  /** `sim` and `live`: maximum lag behind the highest event time so far (ms); default 30000. */
  jitterMs?: number;
  /** Share of records (0..1) replaced by malformed ones; default 0. */
  malformedShare?: number;
  /** Fraud: number of distinct customers; default 100, as in the seed. */
  customers?: number;
  /** Payments: IANA zone createTime is written in; default UTC. */
  timeZone?: string;
  /** Payments: orderId of record 0; default the stream's start instant in unix seconds, as in the seed. */
  orderIdStart?: number;
  /** Wall clock for `live` mode and `seed` mode without `now`. */
  clock?: () => number;
}

/** Checks the options and creates the per-stream state eagerly, so bad options throw at the call, not at the first `next()`. */
function setup(kind: GeneratorKind, opts: GenerateOptions) {
  const seed = opts.seed ?? 1;
  if (!Number.isFinite(seed)) throw new RangeError('seed must be a finite number');
  const count = opts.count;
  if (count !== undefined && (!Number.isSafeInteger(count) || count < 0)) {
    throw new RangeError('count must be an integer >= 0');
  }
  const share = opts.malformedShare ?? 0;
  if (!(share >= 0 && share <= 1)) throw new RangeError('malformedShare must be in [0, 1]');
  const keyMode = opts.keyMode ?? 'none';
  if (!KEY_MODES.includes(keyMode)) throw new RangeError(`keyMode must be one of ${KEY_MODES.join(', ')}`);

  const time: EventTimeSource = createEventTimeSource(
    {
      mode: opts.timeMode ?? 'sim',
      now: opts.now,
      seedSpanMs: opts.seedSpanMs,
      simStartMs: opts.simStartMs,
      simStepMs: opts.simStepMs,
      jitterMs: opts.jitterMs,
      // createTime has whole seconds; the Kafka timestamp must be the same instant.
      resolutionMs: kind === 'payments' ? 1000 : 1,
      clock: opts.clock,
    },
    // Separate streams: the event times, the records and the malformed choices do not shift each other.
    new Rng(seed, `time/${kind}`),
  );
  return {
    seed,
    count,
    share,
    keyMode,
    time,
    records: new Rng(seed, `records/${kind}`),
    malformed: new Rng(seed, 'malformed'),
  };
}

function fraudRecords(opts: GenerateOptions): Generator<GeneratedRecord, void, undefined> {
  const s = setup('fraud', opts);
  const customers = new CustomerNames(opts.customers ?? DEFAULT_CUSTOMERS, s.seed);
  return loop(s.count, () => {
    const timestamp = s.time.next();
    const tx = makeFraudTransaction(s.records, customers, timestamp);
    const key = s.keyMode === 'entity' ? tx.customer : null;
    // The valid record is drawn even when it is replaced, so the records around it stay the same.
    if (s.share > 0 && s.malformed.bernoulli(s.share)) {
      const malformed = s.malformed.choice(FRAUD_MALFORMED_KINDS);
      return { key, value: malformedFraud(malformed, tx, s.malformed), timestamp, malformed };
    }
    return { key, value: Buffer.from(JSON.stringify(tx)), timestamp };
  });
}

function paymentRecords(opts: GenerateOptions): Generator<GeneratedRecord, void, undefined> {
  const s = setup('payments', opts);
  const format = createTimeFormatter(opts.timeZone ?? DEFAULT_TIME_ZONE);
  const orderIdStart = opts.orderIdStart ?? Math.floor(s.time.startMs / 1000);
  if (!Number.isSafeInteger(orderIdStart)) throw new RangeError('orderIdStart must be a safe integer');
  let i = 0;
  return loop(s.count, () => {
    const timestamp = s.time.next();
    const p = makePayment(s.records, orderIdStart + i++, timestamp, format);
    const key = s.keyMode === 'entity' ? String(p.branchId) : null;
    if (s.share > 0 && s.malformed.bernoulli(s.share)) {
      const malformed = s.malformed.choice(PAYMENT_MALFORMED_KINDS);
      return { key, value: malformedPayment(malformed, p, s.malformed), timestamp, malformed };
    }
    return { key, value: Buffer.from(JSON.stringify(p)), timestamp };
  });
}

function* loop(
  count: number | undefined,
  next: () => GeneratedRecord,
): Generator<GeneratedRecord, void, undefined> {
  for (let n = 0; count === undefined || n < count; n++) yield next();
}

/**
 * Records for the seed topics (`transactions-data` for fraud, `payment_msg` for payments), lazily; an
 * endless stream when `count` is undefined. Options are checked on the call, not on the first record: a
 * RangeError names the bad one. The result is one stream: iterating it again continues where it stopped.
 */
export function generate(kind: GeneratorKind, opts: GenerateOptions = {}): Iterable<GeneratedRecord> {
  switch (kind) {
    case 'fraud':
      return fraudRecords(opts);
    case 'payments':
      return paymentRecords(opts);
    default:
      throw new RangeError(`kind must be one of ${GENERATOR_KINDS.join(', ')}`);
  }
}
