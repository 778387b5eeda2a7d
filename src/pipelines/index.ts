import type { Registry } from 'prom-client';
import type { AppConfig } from '../config/env.js';
import { ConfigError } from '../config/env.js';
import { branchTotals } from './branch-totals/index.js';
import { cardVelocity } from './card-velocity/index.js';
import { fraudTrigger } from './fraud-trigger/index.js';
import type { PipelineEntry, ResolvedPipeline } from './pipeline.js';

/** Every use case the service can run; PIPELINES selects among them. A new one is one line here. */
export const PIPELINES: readonly PipelineEntry[] = [fraudTrigger, branchTotals, cardVelocity];

/** The enabled pipelines with their settings parsed: at boot, so a bad setting stops the service. */
export function resolvePipelines(
  app: AppConfig,
  env: NodeJS.ProcessEnv = process.env,
  registry?: Registry,
): ResolvedPipeline[] {
  const names = app.pipelines === 'all' ? PIPELINES.map((p) => p.name) : app.pipelines;
  return names.map((name) => {
    const entry = PIPELINES.find((p) => p.name === name);
    if (!entry)
      throw new ConfigError(
        'PIPELINES',
        names.join(','),
        `"all" or names from: ${PIPELINES.map((p) => p.name).join(', ')}`,
      );
    return entry.resolve(env, registry);
  });
}
