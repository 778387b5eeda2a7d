import { z } from 'zod';
import { parseEnv } from '../../config/parse.js';

export const cardVelocityEnv = z.object({
  CARD_VELOCITY_INPUT_TOPIC: z.string().min(1).default('transactions-data'),
  CARD_VELOCITY_OUTPUT_TOPIC: z.string().min(1).default('card-velocity-alerts'),
  CARD_VELOCITY_WINDOW_MS: z.coerce
    .number()
    .int()
    .min(1000, 'a window size in whole milliseconds, at least 1000')
    .default(3_600_000),
  CARD_VELOCITY_MAX_USES: z.coerce
    .number()
    .int()
    .min(1, 'a whole number of card uses, 1 or more')
    .default(10),
  CARD_VELOCITY_OUT_OF_ORDERNESS_MS: z.coerce
    .number()
    .int()
    .min(0, 'a bound in whole milliseconds, 0 or more')
    .default(60_000),
});

export type CardVelocityConfig = z.infer<typeof cardVelocityEnv>;

export const cardVelocityConfig = (env: NodeJS.ProcessEnv): CardVelocityConfig =>
  parseEnv(cardVelocityEnv, env);
