import { jsonDecoder } from '../../runtime/codecs.js';
import { TopologyBuilder, type TopologyPlan } from '../../runtime/topology.js';
import { tumbling } from '../../runtime/windows.js';
import { eventTime, transactionSchema, type Transaction } from '../fraud-trigger/fraud-trigger.schema.js';
import type { CardVelocityConfig } from './card-velocity.config.js';

export interface CardVelocityAlert {
  customer: string;
  card_uses: number;
  window_start: string;
  window_end: string;
}

/**
 * Card velocity (from the Kafka/Flink overview seed): alert when a customer's card is used
 * more than CARD_VELOCITY_MAX_USES times in one event-time hour. It reads the same
 * transactions as the fraud trigger, with its own watermark and windows.
 */
export function cardVelocityTopology(c: CardVelocityConfig): TopologyPlan {
  const b = new TopologyBuilder('card-velocity');
  b.source<Transaction>(c.CARD_VELOCITY_INPUT_TOPIC, {
    decode: jsonDecoder(transactionSchema),
    timestamp: eventTime,
    outOfOrdernessMs: c.CARD_VELOCITY_OUT_OF_ORDERNESS_MS,
  })
    .groupBy('by-customer', (tx) => tx.customer)
    .windowedBy(tumbling(c.CARD_VELOCITY_WINDOW_MS))
    .aggregate<number>('card-uses', { init: () => 0, add: (n) => n + 1 })
    .emitOnClose(c.CARD_VELOCITY_OUTPUT_TOPIC, (customer, w, uses): CardVelocityAlert | null =>
      uses > c.CARD_VELOCITY_MAX_USES
        ? {
            customer,
            card_uses: uses,
            window_start: new Date(w.start).toISOString(),
            window_end: new Date(w.end).toISOString(),
          }
        : null,
    );
  return b.build();
}
