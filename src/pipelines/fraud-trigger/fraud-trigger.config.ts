import { z } from 'zod';
import { parseEnv } from '../../config/parse.js';

const num = (what: string) => z.coerce.number({ message: what }).refine(Number.isFinite, what);
const ms = (what: string) => z.coerce.number({ message: what }).int(what).min(1, what);

export const fraudTriggerEnv = z.object({
  FRAUD_INPUT_TOPIC: z.string().min(1).default('transactions-data'),
  FRAUD_OUTPUT_TOPIC: z.string().min(1).default('fraud-alerts'),
  FRAUD_WINDOW_MS: ms('a window size in whole milliseconds').default(36_000_000),
  FRAUD_OUT_OF_ORDERNESS_MS: z.coerce
    .number()
    .int()
    .min(0, 'a bound in whole milliseconds, 0 or more')
    .default(60_000),
  FRAUD_IDLE_TIMEOUT_MS: ms('an idle timeout in whole milliseconds').optional(),
  FRAUD_MIN_COUNT: z.coerce.number().int().min(1, 'a whole number of transactions, 1 or more').default(3),
  // The seed's code flags online < in-store (its prose says the opposite); the code is what ran.
  FRAUD_COMPARISON: z.enum(['online_lt_in_store', 'online_gt_in_store']).default('online_lt_in_store'),
  FRAUD_LAT_MIN: num('a latitude').default(44.57),
  FRAUD_LAT_MAX: num('a latitude').default(44.91),
  FRAUD_LON_MIN: num('a longitude').default(20.2),
  FRAUD_LON_MAX: num('a longitude').default(20.62),
});

export interface FraudTriggerConfig {
  inputTopic: string;
  outputTopic: string;
  windowMs: number;
  outOfOrdernessMs: number;
  idleTimeoutMs: number | undefined;
  minCount: number;
  comparison: 'online_lt_in_store' | 'online_gt_in_store';
  box: { latMin: number; latMax: number; lonMin: number; lonMax: number };
}

export function fraudTriggerConfig(env: NodeJS.ProcessEnv): FraudTriggerConfig {
  const e = parseEnv(fraudTriggerEnv, env);
  return {
    inputTopic: e.FRAUD_INPUT_TOPIC,
    outputTopic: e.FRAUD_OUTPUT_TOPIC,
    windowMs: e.FRAUD_WINDOW_MS,
    outOfOrdernessMs: e.FRAUD_OUT_OF_ORDERNESS_MS,
    idleTimeoutMs: e.FRAUD_IDLE_TIMEOUT_MS,
    minCount: e.FRAUD_MIN_COUNT,
    comparison: e.FRAUD_COMPARISON,
    box: {
      latMin: e.FRAUD_LAT_MIN,
      latMax: e.FRAUD_LAT_MAX,
      lonMin: e.FRAUD_LON_MIN,
      lonMax: e.FRAUD_LON_MAX,
    },
  };
}
