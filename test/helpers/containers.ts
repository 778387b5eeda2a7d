import { writeFileSync } from 'node:fs';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';

/**
 * `node build/test/helpers/containers.js <env-file>`: on machines with a container engine,
 * scripts/test.sh (with STREAM_TESTCONTAINERS=1) starts Kafka and Redis here instead of from
 * Maven jars and apt, writes KAFKA_BROKERS / REDIS_URL to the env file, and stops them on SIGTERM.
 * The broker is the official apache/kafka image, single-node KRaft, configured so transactions
 * work on one node (replication factor and min ISR of the internal topics set to 1).
 */
const KAFKA_IMAGE = process.env.KAFKA_IMAGE ?? 'apache/kafka:4.1.1';
const REDIS_IMAGE = process.env.REDIS_IMAGE ?? 'redis:7';
const HOST_PORT = Number(process.env.KAFKA_PORT ?? 19092);

async function main(envFile: string): Promise<void> {
  const started: StartedTestContainer[] = [];
  const stop = async () => {
    for (const c of started.reverse()) await c.stop().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());

  // The advertised listener must be reachable from the host, so the host port is fixed, not random.
  const kafka = await new GenericContainer(KAFKA_IMAGE)
    .withExposedPorts({ container: 9092, host: HOST_PORT })
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: 'PLAINTEXT://:9092,CONTROLLER://:9093',
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${HOST_PORT}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
      KAFKA_LOG_CLEANER_BACKOFF_MS: '1000',
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .withStartupTimeout(120_000)
    .start();
  started.push(kafka);
  const redis = await new GenericContainer(REDIS_IMAGE)
    .withExposedPorts(6379)
    .withCommand(['redis-server', '--appendonly', 'yes', '--save', ''])
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .start();
  started.push(redis);
  writeFileSync(
    envFile,
    `KAFKA_BROKERS=127.0.0.1:${HOST_PORT}\nREDIS_URL=redis://${redis.getHost()}:${redis.getMappedPort(6379)}\n`,
  );
  console.log(
    `containers ready: kafka 127.0.0.1:${HOST_PORT}, redis ${redis.getHost()}:${redis.getMappedPort(6379)}`,
  );
}

main(process.argv[2] ?? '.run/containers.env').catch((err: unknown) => {
  console.error(`testcontainers: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
