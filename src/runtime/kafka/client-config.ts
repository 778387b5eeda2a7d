import type { GlobalConfig } from '@confluentinc/kafka-javascript';

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

/** The config with secrets masked, for logs and health output. */
export function redactedConfig(conf: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(conf).map(([k, v]) => [k, /password|secret|token/i.test(k) ? '<redacted>' : v]),
  );
}
