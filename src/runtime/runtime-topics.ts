import type { TopicSpec } from './kafka/topics.js';
import { internalTopics, type TopologyPlan } from './topology.js';

/** Topics the runtime owns for a set of plans: repartition, changelog, dead-letter and late-event topics. */
export function runtimeTopicSpecs(
  app: string,
  plans: readonly TopologyPlan[],
  partitions: number,
): TopicSpec[] {
  const specs: TopicSpec[] = [];
  for (const plan of plans) {
    for (const s of plan.sources) {
      specs.push({
        name: internalTopics.dlq(s.topic),
        partitions,
        cleanupPolicy: 'delete',
        description: `dead letters of ${s.topic}`,
      });
      if (plan.stages.some((st) => st.sourceTopic === s.topic && st.aggregates.some((a) => a.window))) {
        specs.push({
          name: internalTopics.late(s.topic),
          partitions,
          cleanupPolicy: 'delete',
          description: `late events of ${s.topic}`,
        });
      }
    }
    for (const stage of plan.stages) {
      specs.push({
        name: internalTopics.repartition(app, plan.pipeline, stage.name),
        partitions,
        cleanupPolicy: 'delete',
        internal: true,
        description: `${plan.pipeline}: records re-keyed by ${stage.name}`,
      });
      for (const agg of stage.aggregates) {
        specs.push({
          name: internalTopics.changelog(app, plan.pipeline, agg.store),
          partitions,
          cleanupPolicy: 'compact',
          internal: true,
          // Compaction keeps the latest value per key; recent records stay so a restore sees whole transactions.
          config: { 'min.compaction.lag.ms': '60000' },
          description: `${plan.pipeline}: changelog of store ${agg.store}`,
        });
      }
    }
  }
  return specs;
}
