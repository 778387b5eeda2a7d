/**
 * The fraud trigger as a plain batch computation, written from notes/semantics.md section 1
 * and sharing no code with the service (nothing from src/runtime or src/pipelines).
 *
 * - Event time = transaction_datetime (ISO-8601 with Z).
 * - Watermark of a partition after a record = highest event time so far in it - bound; before
 *   its first record there is none. A record is judged by the watermark that held before it.
 * - Tumbling windows of `windowMs`, aligned to the epoch, end exclusive, keyed by customer.
 *   A window fires when the watermark reaches end - 1; a record whose window has fired is late.
 * - Per (customer, window): count, online and in-store sums (doubles, added in arrival order,
 *   starting from 0), lat/lon of the last record to arrive.
 * - Alert when online < in-store, count >= 3, 20.20 < lon < 20.62, 44.57 < lat < 44.91.
 *
 * Several partitions: the window operator's watermark is the minimum of the partitions'
 * watermarks, so which records are late depends on how the partitions interleave. This oracle
 * only answers for input where it does not (semantics.md, G1): each customer in one partition,
 * and no record late even against its own partition's watermark (which is never behind the
 * minimum). Then nothing is late under any interleaving, and the windows that have fired at
 * the end are those with end - 1 <= min over partitions of their final watermarks.
 */

export interface FraudOracleOptions {
  windowMs?: number;
  outOfOrdernessMs?: number;
  minCount?: number;
}

/** An alert, keys in the order of the service's output (the seed's CSV columns). */
export interface OracleAlert {
  customer: string;
  count_transactions: number;
  total_online_payment_amount: number;
  total_in_store_payment_amount: number;
  lat: number;
  lon: number;
  last_transaction_time: string;
}

export interface FraudOracleResult {
  /** key = customer, value = the alert's JSON text. */
  alerts: Array<{ key: string; value: string }>;
  total: number;
  late: number;
  /** The late records: key = customer, value = the input record's text. */
  lateRecords: Array<{ key: string; value: string }>;
  /** Windows (customer, start) that fired by the end, alert or not. */
  windowsFired: number;
  /** Windows still open at the end (the final watermark has not reached them). */
  windowsOpen: number;
  /** The watermark at the end: the minimum over partitions. */
  finalWatermark: number;
}

interface Tx {
  customer: string;
  online: number;
  inStore: number;
  lat: number;
  lon: number;
  time: number;
}

interface Agg {
  count: number;
  online: number;
  inStore: number;
  lat: number;
  lon: number;
}

function parseTx(value: Buffer | string): Tx {
  const o = JSON.parse(typeof value === 'string' ? value : value.toString('utf8')) as Record<string, unknown>;
  const { customer, online_payment_amount, in_store_payment_amount, lat, lon, transaction_datetime } = o;
  if (
    typeof customer !== 'string' ||
    typeof online_payment_amount !== 'number' ||
    typeof in_store_payment_amount !== 'number' ||
    typeof lat !== 'number' ||
    typeof lon !== 'number' ||
    typeof transaction_datetime !== 'string' ||
    !transaction_datetime.endsWith('Z')
  ) {
    throw new Error(`the oracle only takes valid transactions, got ${JSON.stringify(o)}`);
  }
  const time = Date.parse(transaction_datetime);
  if (!Number.isFinite(time)) throw new Error(`bad transaction_datetime ${transaction_datetime}`);
  return { customer, online: online_payment_amount, inStore: in_store_payment_amount, lat, lon, time };
}

/** `partitions[p]` = the values of input partition p, in log order. */
export function fraudOracle(
  partitions: ReadonlyArray<ReadonlyArray<Buffer | string>>,
  opts: FraudOracleOptions = {},
): FraudOracleResult {
  const windowMs = opts.windowMs ?? 10 * 60 * 60 * 1000;
  const bound = opts.outOfOrdernessMs ?? 60_000;
  const minCount = opts.minCount ?? 3;

  // customer -> window start -> aggregate
  const windows = new Map<string, Map<number, Agg>>();
  const partitionOf = new Map<string, number>();
  const finalWatermarks: number[] = [];
  let total = 0;
  const lateRecords: FraudOracleResult['lateRecords'] = [];

  partitions.forEach((values, p) => {
    let maxTime = -Infinity;
    for (const value of values) {
      const tx = parseTx(value);
      total++;
      const seenIn = partitionOf.get(tx.customer);
      if (seenIn !== undefined && seenIn !== p && partitions.length > 1) {
        throw new Error(
          `customer ${tx.customer} is in partitions ${seenIn} and ${p}: the result would depend on interleaving`,
        );
      }
      partitionOf.set(tx.customer, p);

      const watermarkBefore = maxTime - bound;
      maxTime = Math.max(maxTime, tx.time);
      const start = tx.time - (((tx.time % windowMs) + windowMs) % windowMs);
      const end = start + windowMs;
      if (end - 1 <= watermarkBefore) {
        if (partitions.length > 1) {
          throw new Error(
            `record at ${new Date(tx.time).toISOString()} in partition ${p} is late against its own partition: ` +
              'with several partitions the result would depend on interleaving',
          );
        }
        lateRecords.push({
          key: tx.customer,
          value: typeof value === 'string' ? value : value.toString('utf8'),
        });
        continue;
      }
      let byStart = windows.get(tx.customer);
      if (!byStart) windows.set(tx.customer, (byStart = new Map<number, Agg>()));
      const a = byStart.get(start) ?? { count: 0, online: 0, inStore: 0, lat: 0, lon: 0 };
      byStart.set(start, {
        count: a.count + 1,
        online: a.online + tx.online,
        inStore: a.inStore + tx.inStore,
        lat: tx.lat,
        lon: tx.lon,
      });
    }
    finalWatermarks.push(maxTime - bound);
  });

  const finalWatermark = finalWatermarks.length === 0 ? -Infinity : Math.min(...finalWatermarks);
  const alerts: FraudOracleResult['alerts'] = [];
  let windowsFired = 0;
  let windowsOpen = 0;
  for (const [customer, byStart] of windows) {
    for (const [start, a] of byStart) {
      const end = start + windowMs;
      if (end - 1 > finalWatermark) {
        windowsOpen++;
        continue;
      }
      windowsFired++;
      const alert =
        a.online < a.inStore &&
        a.count >= minCount &&
        a.lon > 20.2 &&
        a.lon < 20.62 &&
        a.lat > 44.57 &&
        a.lat < 44.91;
      if (!alert) continue;
      const row: OracleAlert = {
        customer,
        count_transactions: a.count,
        total_online_payment_amount: a.online,
        total_in_store_payment_amount: a.inStore,
        lat: a.lat,
        lon: a.lon,
        last_transaction_time: new Date(end).toISOString(),
      };
      alerts.push({ key: customer, value: JSON.stringify(row) });
    }
  }
  return { alerts, total, late: lateRecords.length, lateRecords, windowsFired, windowsOpen, finalWatermark };
}
