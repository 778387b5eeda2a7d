import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/env.js';
import { resolvePipelines } from '../pipelines/index.js';
import { ensureTopics } from '../runtime/kafka/topics.js';
import { declaredTopics } from '../topics/registry.js';

/** `npm run topics [-- --list]`: creates every declared topic that is missing (idempotent), or lists them. */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { list: { type: 'boolean', default: false } } });
  const app = loadConfig();
  const topics = declaredTopics(app, resolvePipelines(app));
  if (values.list) {
    for (const t of topics) console.log(`${t.name}\t${t.partitions}\t${t.cleanupPolicy}\t${t.description}`);
    return;
  }
  const result = await ensureTopics(
    { brokers: app.kafka.brokers, clientId: `${app.service.name}-topics`, security: app.kafka.security },
    topics,
    app.kafka.replicationFactor,
  );
  console.log(`topics: ${result.created.length} created, ${result.existing.length} already present`);
  for (const name of result.created) console.log(`  + ${name}`);
}

main().catch((err: unknown) => {
  console.error(
    err instanceof ConfigError ? err.message : `topics: ${err instanceof Error ? err.message : String(err)}`,
  );
  process.exit(err instanceof ConfigError ? 78 : 1);
});
