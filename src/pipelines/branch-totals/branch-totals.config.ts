import { z } from 'zod';
import { parseEnv } from '../../config/parse.js';

const validZone = (tz: string): boolean => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};

export const branchTotalsEnv = z.object({
  BRANCH_INPUT_TOPIC: z.string().min(1).default('payment_msg'),
  BRANCH_TOTALS_TOPIC: z.string().min(1).default('branch-totals'),
  BRANCH_WINDOWED_TOPIC: z.string().min(1).default('branch-totals-windowed'),
  BRANCH_NAMES: z
    .string()
    .regex(
      /^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$/,
      'a comma-separated list of branch names; branchId i maps to the i-th',
    )
    .default(Array.from({ length: 10 }, (_, i) => `Branch_${i}`).join(',')),
  BRANCH_WINDOW_MS: z.coerce
    .number()
    .int()
    .min(1000, 'a window size in whole milliseconds, at least 1000')
    .default(60_000),
  BRANCH_OUT_OF_ORDERNESS_MS: z.coerce
    .number()
    .int()
    .min(0, 'a bound in whole milliseconds, 0 or more')
    .default(5_000),
  BRANCH_IDLE_TIMEOUT_MS: z.coerce.number().int().min(1, 'an idle timeout in whole milliseconds').optional(),
  // The seed writes local time without a zone; UTC unless told otherwise.
  BRANCH_TIMEZONE: z
    .string()
    .refine(validZone, 'an IANA time zone such as UTC or Europe/Berlin')
    .default('UTC'),
});

export interface BranchTotalsConfig {
  inputTopic: string;
  totalsTopic: string;
  windowedTopic: string;
  branches: string[];
  windowMs: number;
  outOfOrdernessMs: number;
  idleTimeoutMs: number | undefined;
  timeZone: string;
}

export function branchTotalsConfig(env: NodeJS.ProcessEnv): BranchTotalsConfig {
  const e = parseEnv(branchTotalsEnv, env);
  return {
    inputTopic: e.BRANCH_INPUT_TOPIC,
    totalsTopic: e.BRANCH_TOTALS_TOPIC,
    windowedTopic: e.BRANCH_WINDOWED_TOPIC,
    branches: e.BRANCH_NAMES.split(','),
    windowMs: e.BRANCH_WINDOW_MS,
    outOfOrdernessMs: e.BRANCH_OUT_OF_ORDERNESS_MS,
    idleTimeoutMs: e.BRANCH_IDLE_TIMEOUT_MS,
    timeZone: e.BRANCH_TIMEZONE,
  };
}
