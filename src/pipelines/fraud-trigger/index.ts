import { definePipeline } from '../pipeline.js';
import { fraudTriggerConfig } from './fraud-trigger.config.js';
import { FraudTriggerController } from './fraud-trigger.controller.js';
import { fraudTriggerMetrics } from './fraud-trigger.metrics.js';
import { fraudTriggerTopology } from './fraud-trigger.topology.js';

export const fraudTrigger = definePipeline({
  name: 'fraud-trigger',
  config: fraudTriggerConfig,
  topics: (app, c) => [
    {
      name: c.inputTopic,
      partitions: app.kafka.topicPartitions,
      cleanupPolicy: 'delete',
      description: 'card transactions (input)',
    },
    {
      name: c.outputTopic,
      partitions: app.kafka.topicPartitions,
      cleanupPolicy: 'delete',
      description: 'fraud alerts (output)',
    },
  ],
  metrics: fraudTriggerMetrics,
  topology: fraudTriggerTopology,
  controllers: [FraudTriggerController],
});
