import type { AppConfig } from '../config/env.js';
import type { ResolvedPipeline } from '../pipelines/pipeline.js';
import type { TopicSpec } from '../runtime/kafka/topics.js';
import { runtimeTopicSpecs } from '../runtime/runtime-topics.js';

/**
 * The topic registry: every topic the enabled pipelines read or write, with partitions and
 * cleanup policy, from one place. The topics CLI, the demo and the tests create topics from it.
 */
export function declaredTopics(app: AppConfig, pipelines: readonly ResolvedPipeline[]): TopicSpec[] {
  const all = [
    ...pipelines.flatMap((p) => p.topics(app)),
    ...runtimeTopicSpecs(
      app.service.name,
      pipelines.map((p) => p.plan),
      app.kafka.topicPartitions,
    ),
  ];
  const byName = new Map<string, TopicSpec>();
  for (const t of all) if (!byName.has(t.name)) byName.set(t.name, t);
  return [...byName.values()];
}
