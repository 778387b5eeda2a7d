import type { ConsumerGlobalConfig, GlobalConfig } from '@confluentinc/kafka-javascript';

/** Connection settings shared by every Kafka client the service creates (consumer, producer, admin, generators). */
export interface KafkaConnection {
  brokers: string;
  clientId?: string;
  security?: {
    protocol: 'plaintext' | 'ssl' | 'sasl_plaintext' | 'sasl_ssl';
    sasl?: { mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; username: string; password: string };
    ssl?: { caLocation?: string; certificateLocation?: string; keyLocation?: string; keyPassword?: string };
  };
}

/**
 * Flat librdkafka keys, never the KafkaJS `kafkaJS: {}` block: that block silently
 * turns on auto-commit and retries=5, which break the transactional loop.
 */
export function librdkafkaConfig(conn: KafkaConnection): GlobalConfig {
  const conf: GlobalConfig = {
    'bootstrap.servers': conn.brokers,
    'client.id': conn.clientId ?? 'stream-template',
    // Warnings and errors only; the KafkaJS-layer admin otherwise prints every connect to the console.
    log_level: 4,
    'socket.keepalive.enable': true,
    // Brokers that disappear are retried by librdkafka itself; keep reconnects quick but not a storm.
    'reconnect.backoff.ms': 100,
    'reconnect.backoff.max.ms': 2000,
  };
  const sec = conn.security;
  if (!sec || sec.protocol === 'plaintext') return conf;
  conf['security.protocol'] = sec.protocol;
  if (sec.sasl) {
    conf['sasl.mechanisms'] = sec.sasl.mechanism;
    conf['sasl.username'] = sec.sasl.username;
    conf['sasl.password'] = sec.sasl.password;
  }
  if (sec.ssl?.caLocation) conf['ssl.ca.location'] = sec.ssl.caLocation;
  if (sec.ssl?.certificateLocation) conf['ssl.certificate.location'] = sec.ssl.certificateLocation;
  if (sec.ssl?.keyLocation) conf['ssl.key.location'] = sec.ssl.keyLocation;
  if (sec.ssl?.keyPassword) conf['ssl.key.password'] = sec.ssl.keyPassword;
  return conf;
}

/**
 * The consumer's prefetch, sized from MAX_BATCH_BYTES so that the input held in memory stays
 * within a few times it: the queue of fetched records (one for the whole high-level consumer)
 * holds this much, and a fetch response adds to it after that limit is checked, so it
 * overshoots by up to one response, decompressed. One response is therefore a quarter of the
 * queue, and a sixteenth of that per partition: otherwise one response could bring 1 MiB from
 * each of a dozen partitions, three times as much once decompressed, which was the largest
 * native allocation in a heap profile (docs/benchmarks.md). librdkafka raises fetch.max.bytes
 * to message.max.bytes and a partition's fetch size to its largest record by itself, so one
 * record always fits. A partition whose queue is full is looked at again after 100 ms, not
 * librdkafka's 1 s: the queue holds about half a second of input at full speed, and it drained
 * while the fetcher waited. queued.min.messages stays at its default: lowered, it makes
 * librdkafka back off that way after every few thousand records, which cut a passthrough from
 * 107,000 to 29,000 records/s here.
 */
export function prefetchConfig(maxBatchBytes: number): ConsumerGlobalConfig {
  const fetchBytes = Math.max(1_048_576, Math.floor(maxBatchBytes / 4));
  return {
    'queued.max.messages.kbytes': Math.min(2_097_151, Math.max(1, Math.ceil(maxBatchBytes / 1024))),
    'fetch.max.bytes': fetchBytes,
    'max.partition.fetch.bytes': Math.max(65_536, Math.floor(fetchBytes / 16)),
    'fetch.queue.backoff.ms': 100,
  };
}

/** The config with secrets masked, for logs and health output. */
export function redactedConfig(conf: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(conf).map(([k, v]) => [k, /password|secret|token/i.test(k) ? '<redacted>' : v]),
  );
}
