/** Fraud-trigger fixtures shared by the engine's unit tests. */
import { fraudTriggerConfig } from '../../src/pipelines/fraud-trigger/fraud-trigger.config.js';
import { fraudTriggerTopology } from '../../src/pipelines/fraud-trigger/fraud-trigger.topology.js';
import type { EngineLimits } from '../../src/runtime/engine.js';
import { TopologyTestDriver } from '../../src/runtime/testing/driver.js';

export const T0 = Date.parse('2024-01-01T00:00:00Z');
export const HOUR = 3_600_000;

/** An in-store transaction inside the rule's lat/lon box, `ms` after T0. */
export const tx = (customer: string, ms: number) => ({
  customer,
  transaction_type: 'shopping',
  online_payment_amount: 0,
  in_store_payment_amount: 10,
  lat: 44.7,
  lon: 20.4,
  transaction_datetime: new Date(T0 + ms).toISOString(),
});

/** The fraud trigger in the test driver, committing after every record. */
export async function fraudDriver(
  limits: Partial<EngineLimits> = {},
  repartitionPartitions = 1,
): Promise<TopologyTestDriver> {
  const plan = fraudTriggerTopology(fraudTriggerConfig({}));
  return new TopologyTestDriver(plan, { commitEvery: 1, repartitionPartitions, limits }).start();
}
