import { definePipeline } from '../pipeline.js';
import { cardVelocityConfig } from './card-velocity.config.js';
import { cardVelocityTopology } from './card-velocity.topology.js';

export const cardVelocity = definePipeline({
  name: 'card-velocity',
  config: cardVelocityConfig,
  topics: (app, c) => [
    {
      name: c.CARD_VELOCITY_INPUT_TOPIC,
      partitions: app.kafka.topicPartitions,
      cleanupPolicy: 'delete',
      description: 'card transactions (input)',
    },
    {
      name: c.CARD_VELOCITY_OUTPUT_TOPIC,
      partitions: app.kafka.topicPartitions,
      cleanupPolicy: 'delete',
      description: 'customers with too many card uses in an hour',
    },
  ],
  topology: cardVelocityTopology,
});
