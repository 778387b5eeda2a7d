import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cardVelocityConfig } from '../../../src/pipelines/card-velocity/card-velocity.config.js';
import { cardVelocityTopology } from '../../../src/pipelines/card-velocity/card-velocity.topology.js';
import { TopologyTestDriver } from '../../../src/runtime/testing/driver.js';

const T0 = Date.parse('2024-03-01T10:00:00Z');
const use = (customer: string, minute: number) => ({
  value: {
    customer,
    transaction_type: 'restaurant',
    online_payment_amount: 1,
    in_store_payment_amount: 0,
    lat: 44.7,
    lon: 20.4,
    transaction_datetime: new Date(T0 + minute * 60_000).toISOString(),
  },
});

describe('card velocity (the third use case)', () => {
  it('alerts on more than 10 card uses in one event-time hour', async () => {
    const d = await new TopologyTestDriver(cardVelocityTopology(cardVelocityConfig({})), {
      commitEvery: 1,
    }).start();
    await d.pipe('transactions-data', [
      ...Array.from({ length: 11 }, (_, i) => use('busy', i * 5)),
      ...Array.from({ length: 10 }, (_, i) => use('calm', i * 5)),
      use('clock', 62), // moves the watermark past 11:00 (60 s bound)
    ]);
    await d.commit();
    assert.deepEqual(
      d.read('card-velocity-alerts').map((a) => a.value),
      [
        {
          customer: 'busy',
          card_uses: 11,
          window_start: '2024-03-01T10:00:00.000Z',
          window_end: '2024-03-01T11:00:00.000Z',
        },
      ],
    );
  });
});
