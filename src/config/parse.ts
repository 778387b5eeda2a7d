import type { z } from 'zod';
import { ConfigError } from './env.js';

/** Parses a group of environment variables with a zod schema, failing like loadConfig does. */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const variable = String(issue.path[0] ?? 'environment');
  throw new ConfigError(variable, env[variable], issue.message);
}
