import { definePipeline } from '../pipeline.js';
import { branchTotalsConfig } from './branch-totals.config.js';
import { BranchTotalsController } from './branch-totals.controller.js';
import { branchTotalsMetrics } from './branch-totals.metrics.js';
import { branchTotalsTopology } from './branch-totals.topology.js';

export const branchTotals = definePipeline({
  name: 'branch-totals',
  config: branchTotalsConfig,
  topics: (app, c) => [
    {
      name: c.inputTopic,
      partitions: app.kafka.topicPartitions,
      cleanupPolicy: 'delete',
      description: 'payments (input)',
    },
    // An upsert table: compaction keeps the latest total per branch.
    {
      name: c.totalsTopic,
      partitions: app.kafka.topicPartitions,
      cleanupPolicy: 'compact',
      description: 'running total per branch (upsert)',
    },
    {
      name: c.windowedTopic,
      partitions: app.kafka.topicPartitions,
      cleanupPolicy: 'delete',
      description: 'per-window totals per branch',
    },
  ],
  metrics: branchTotalsMetrics,
  topology: branchTotalsTopology,
  controllers: [BranchTotalsController],
});
