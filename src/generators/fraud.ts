import { TRANSACTION_TYPES } from '../pipelines/fraud-trigger/fraud-trigger.schema.js';
import { type Rng, seededFaker } from './random.js';

export const FRAUD_TOPIC = 'transactions-data';

// One list for what the generator writes and what the fraud trigger accepts.
export { TRANSACTION_TYPES };
export type TransactionType = (typeof TRANSACTION_TYPES)[number];

/** Half-open, like Python's random.uniform(a, b) = a + (b - a) * random(). */
export const LAT_RANGE = [44.57, 44.91] as const;
export const LON_RANGE = [20.2, 20.63] as const;

/** The seed's transaction, fields in the seed's order (it is the JSON key order too). */
export interface FraudTransaction {
  customer: string;
  transaction_type: TransactionType;
  online_payment_amount: number;
  in_store_payment_amount: number;
  lat: number;
  lon: number;
  /** ISO-8601 UTC with `Z`; the event time. */
  transaction_datetime: string;
}

export const DEFAULT_CUSTOMERS = 100;
/**
 * Up to this many customers, every name is a distinct plain faker name, as in the seed. Beyond it, faker's
 * name space would make unique draws slow and memory-hungry, so names repeat this pool with a numeric suffix.
 */
export const PLAIN_NAME_LIMIT = 5000;

/**
 * The customer population: `count` distinct names, a deterministic function of the seed. Names beyond the
 * pool are computed on demand, so a million customers cost a pool of 5000 names, not a million strings.
 */
export class CustomerNames {
  readonly count: number;
  private readonly pool: string[];

  constructor(count: number, seed: number) {
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError('customers must be an integer >= 1');
    this.count = count;
    const poolSize = Math.min(count, PLAIN_NAME_LIMIT);
    const faker = seededFaker(seed, 'customers');
    const seen = new Set<string>();
    this.pool = [];
    // The en name space has millions of combinations, so 5000 distinct names need few retries; the cap only
    // turns a faker data change into an error instead of an endless loop.
    for (let attempts = 0; this.pool.length < poolSize; attempts++) {
      if (attempts > poolSize * 50) throw new Error(`could not draw ${poolSize} distinct customer names`);
      const name = faker.person.fullName();
      // No digits in a base name keeps "<name> <n>" unambiguous, hence distinct from every other name.
      if (/\d/.test(name) || seen.has(name)) continue;
      seen.add(name);
      this.pool.push(name);
    }
  }

  get(i: number): string {
    const p = this.pool.length;
    const name = this.pool[i % p];
    const round = Math.floor(i / p);
    return round === 0 ? name : `${name} ${round + 1}`;
  }
}

/**
 * Python's round(x, 2): correctly rounded from the double's exact value, ties to even. toFixed rounds the
 * exact value too but sends exact ties up; those only occur at odd multiples of 1/8, handled here.
 */
export function round2(x: number): number {
  const scaled = x * 100;
  if (Number.isInteger(x * 8) && Math.abs(scaled % 1) === 0.5) {
    const down = Math.floor(scaled);
    return (down % 2 === 0 ? down : down + 1) / 100;
  }
  return Number(x.toFixed(2));
}

/** One transaction, drawing from `rng` in the seed's order: amount, customer, type, (time), lat, lon. */
export function makeFraudTransaction(
  rng: Rng,
  customers: CustomerNames,
  eventTimeMs: number,
): FraudTransaction {
  // Like the seed, the amount can round to 0, and then both amounts are 0.
  const amounts = rng.shuffle([0, round2(rng.int(1, 100) * rng.random())]);
  const customer = customers.get(rng.int(0, customers.count - 1));
  const transactionType = rng.choice(TRANSACTION_TYPES);
  const lat = rng.float(LAT_RANGE[0], LAT_RANGE[1]);
  const lon = rng.float(LON_RANGE[0], LON_RANGE[1]);
  return {
    customer,
    transaction_type: transactionType,
    online_payment_amount: amounts[0],
    in_store_payment_amount: amounts[1],
    lat,
    lon,
    transaction_datetime: new Date(eventTimeMs).toISOString(),
  };
}
