import { jsonDecoder } from '../../runtime/codecs.js';
import { TopologyBuilder, type TopologyPlan } from '../../runtime/topology.js';
import { tumbling } from '../../runtime/windows.js';
import type { FraudTriggerConfig } from './fraud-trigger.config.js';
import type { FraudTriggerMetrics } from './fraud-trigger.metrics.js';
import { eventTime, transactionSchema, type Transaction } from './fraud-trigger.schema.js';

export interface CustomerWindow {
  count: number;
  online: number;
  inStore: number;
  /** Last values in arrival order, as Flink's LAST_VALUE. */
  lat: number;
  lon: number;
}

export interface FraudAlert {
  customer: string;
  count_transactions: number;
  total_online_payment_amount: number;
  total_in_store_payment_amount: number;
  lat: number;
  lon: number;
  last_transaction_time: string;
}

/**
 * Fraud trigger (seed: the Flink job app.py). Per customer, 10-hour event-time tumbling
 * windows with a 60 s bounded out-of-orderness watermark; when a window fires, alert if
 * count >= 3, online spend < in-store spend, and the last position is inside the box.
 * Late records go to transactions-data.late; invalid ones to transactions-data.dlq.
 * Exactly once, end to end.
 */
export function fraudTriggerTopology(c: FraudTriggerConfig, metrics?: FraudTriggerMetrics): TopologyPlan {
  const b = new TopologyBuilder('fraud-trigger');
  b.source<Transaction>(c.inputTopic, {
    decode: jsonDecoder(transactionSchema),
    timestamp: eventTime,
    outOfOrdernessMs: c.outOfOrdernessMs,
    ...(c.idleTimeoutMs !== undefined ? { idleTimeoutMs: c.idleTimeoutMs } : {}),
  })
    .groupBy('by-customer', (tx) => tx.customer)
    .windowedBy(tumbling(c.windowMs))
    .aggregate<CustomerWindow>('customer-windows', {
      init: () => ({ count: 0, online: 0, inStore: 0, lat: 0, lon: 0 }),
      add: (w, tx) => ({
        count: w.count + 1,
        online: w.online + tx.online_payment_amount,
        inStore: w.inStore + tx.in_store_payment_amount,
        lat: tx.lat,
        lon: tx.lon,
      }),
    })
    .emitOnClose(
      c.outputTopic,
      (customer, window, w): FraudAlert | null => {
        const spendRule = c.comparison === 'online_lt_in_store' ? w.online < w.inStore : w.online > w.inStore;
        const { latMin, latMax, lonMin, lonMax } = c.box;
        const inBox = w.lon > lonMin && w.lon < lonMax && w.lat > latMin && w.lat < latMax;
        if (!spendRule || w.count < c.minCount || !inBox) return null;
        return {
          customer,
          count_transactions: w.count,
          total_online_payment_amount: w.online,
          total_in_store_payment_amount: w.inStore,
          lat: w.lat,
          lon: w.lon,
          last_transaction_time: new Date(window.end).toISOString(),
        };
      },
      () => metrics?.alerts.inc(),
    );
  return b.build();
}
