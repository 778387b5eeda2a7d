import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';

/**
 * Every setting the service reads, validated once at boot. A bad value stops the
 * process with one line naming the variable, the value given and what is allowed
 * (see ConfigError); nothing downstream re-validates.
 */

const hostPort = /^[A-Za-z0-9._-]+:\d{1,5}$/;

const brokerList = z
  .string()
  .transform((s) => s.split(',').map((b) => b.trim()))
  .refine((list) => list.length > 0 && list.every((b) => hostPort.test(b)), {
    message: 'a comma-separated list of host:port, e.g. 127.0.0.1:9092',
  })
  .transform((list) => list.join(','));

const port = z.coerce
  .number({ message: 'a TCP port number from 1 to 65535' })
  .int('a TCP port number from 1 to 65535')
  .min(1, 'a TCP port number from 1 to 65535')
  .max(65535, 'a TCP port number from 1 to 65535');

const positiveInt = (what: string, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ message: `${what}` })
    .int(what)
    .min(1, what)
    .max(max, what);

const nonEmpty = z.string().trim().min(1, 'a non-empty string');

const identifier = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, ".", "_" or "-", 1 to 63 characters');

const redisUrl = z
  .string()
  .regex(/^rediss?:\/\/.+/, 'a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379');

export const envSchema = z.object({
  SERVICE_NAME: identifier.default('stream-template'),
  // Stable per member: it becomes the transactional.id suffix, so a restarted member fences its zombie at once.
  INSTANCE_ID: identifier.optional(),
  HTTP_PORT: port.default(8080),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
  SHUTDOWN_GRACE_MS: positiveInt('a whole number of milliseconds from 1 to 600000', 600_000).default(25_000),

  KAFKA_BROKERS: brokerList.default('127.0.0.1:9092'),
  KAFKA_SECURITY_PROTOCOL: z.enum(['plaintext', 'ssl', 'sasl_plaintext', 'sasl_ssl']).default('plaintext'),
  KAFKA_SASL_MECHANISM: z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']).default('SCRAM-SHA-512'),
  KAFKA_SASL_USERNAME: nonEmpty.optional(),
  KAFKA_SASL_PASSWORD: nonEmpty.optional(),
  KAFKA_SASL_PASSWORD_FILE: nonEmpty.optional(),
  KAFKA_SSL_CA_LOCATION: nonEmpty.optional(),
  KAFKA_SSL_CERTIFICATE_LOCATION: nonEmpty.optional(),
  KAFKA_SSL_KEY_LOCATION: nonEmpty.optional(),
  KAFKA_SSL_KEY_PASSWORD_FILE: nonEmpty.optional(),
  KAFKA_TOPIC_PARTITIONS: positiveInt('a whole number of partitions from 1 to 1000', 1000).default(6),
  KAFKA_REPLICATION_FACTOR: positiveInt('a replication factor from 1 to 7', 7).default(1),

  REDIS_URL: redisUrl.default('redis://127.0.0.1:6379'),
  // Comma-separated host:port seeds; when set, the store talks Redis Cluster and REDIS_URL only supplies credentials/TLS.
  REDIS_CLUSTER_NODES: brokerList.optional(),
  REDIS_PASSWORD_FILE: nonEmpty.optional(),
  REDIS_TLS_CA_FILE: nonEmpty.optional(),

  PROCESSING_GUARANTEE: z.enum(['exactly_once', 'at_least_once']).default('exactly_once'),
  COMMIT_INTERVAL_MS: positiveInt('a whole number of milliseconds from 1 to 60000', 60_000).default(100),
  // At most COMMIT_INTERVAL_MS (checked in loadConfig); unset, the smaller of 50 and COMMIT_INTERVAL_MS.
  COMMIT_CAUGHT_UP_MS: positiveInt('a whole number of milliseconds from 1 to 60000', 60_000).optional(),
  MAX_BATCH_RECORDS: positiveInt('a whole number of records from 1 to 100000', 100_000).default(5000),
  TRANSACTION_TIMEOUT_MS: positiveInt('a whole number of milliseconds from 1000 to 900000', 900_000)
    .refine((v) => v >= 1000, 'a whole number of milliseconds from 1000 to 900000')
    .default(30_000),
  SESSION_TIMEOUT_MS: positiveInt('a whole number of milliseconds from 6000 to 300000', 300_000)
    .refine((v) => v >= 6000, 'a whole number of milliseconds from 6000 to 300000')
    .default(15_000),
  MAX_BATCH_BYTES: positiveInt('a whole number of bytes from 1 to 1073741824', 1_073_741_824).default(
    8_388_608,
  ),
  // Leaves room under the producer's message.max.bytes (1,000,000) for the DLQ headers on a copy.
  MAX_RECORD_BYTES: positiveInt('a whole number of bytes from 1 to 983040', 983_040).default(262_144),
  MAX_OPEN_WINDOWS_PER_TASK: positiveInt(
    'a whole number of windows from 1 to 1000000000',
    1_000_000_000,
  ).default(1_000_000),
  AUTO_OFFSET_RESET: z.enum(['earliest', 'latest']).default('earliest'),
  STATIC_MEMBERSHIP: z.enum(['true', 'false'], { message: 'true or false' }).default('true'),
  // Per store and per task: a member with 6 keyed tasks keeps up to 60,000 clean entries per store.
  // 100,000 held 1M distinct fraud customers' windows at about 1 GB RSS (docs/benchmarks.md).
  STATE_CACHE_ENTRIES: positiveInt('a whole number of entries from 1 to 10000000', 10_000_000).default(
    10_000,
  ),
  PIPELINES: z
    .string()
    .regex(/^[a-z0-9-]+(,[a-z0-9-]+)*$/, 'a comma-separated list of pipeline names, or "all"')
    .default('all'),
});

export type Env = z.infer<typeof envSchema>;

export interface KafkaSecurity {
  protocol: Env['KAFKA_SECURITY_PROTOCOL'];
  sasl?: { mechanism: Env['KAFKA_SASL_MECHANISM']; username: string; password: string };
  ssl?: { caLocation?: string; certificateLocation?: string; keyLocation?: string; keyPassword?: string };
}

export interface AppConfig {
  service: {
    name: string;
    instanceId: string;
    httpPort: number;
    logLevel: Env['LOG_LEVEL'];
    shutdownGraceMs: number;
  };
  kafka: {
    brokers: string;
    security: KafkaSecurity;
    topicPartitions: number;
    replicationFactor: number;
    processingGuarantee: Env['PROCESSING_GUARANTEE'];
    commitIntervalMs: number;
    commitCaughtUpMs: number;
    maxBatchRecords: number;
    maxBatchBytes: number;
    maxRecordBytes: number;
    staticMembership: boolean;
    transactionTimeoutMs: number;
    sessionTimeoutMs: number;
    autoOffsetReset: Env['AUTO_OFFSET_RESET'];
  };
  redis: { url: string; clusterNodes?: string[]; password?: string; tlsCaFile?: string };
  state: { cacheEntries: number; maxOpenWindowsPerTask: number };
  pipelines: 'all' | string[];
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly value: string | undefined,
    readonly allowed: string,
  ) {
    super(`invalid setting ${variable}=${JSON.stringify(value ?? '')}: expected ${allowed}`);
    this.name = 'ConfigError';
  }
}

const DEFAULT_COMMIT_CAUGHT_UP_MS = 50;

const SECRET_VARIABLES = /PASSWORD|SECRET|TOKEN/;

/** Parses the environment into the typed configuration, or throws a ConfigError for the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue.path[0] ?? 'environment');
    const raw = env[variable];
    // Never echo secrets back, not even invalid ones.
    throw new ConfigError(variable, SECRET_VARIABLES.test(variable) ? '<redacted>' : raw, issue.message);
  }
  const e = parsed.data;
  if (e.COMMIT_CAUGHT_UP_MS !== undefined && e.COMMIT_CAUGHT_UP_MS > e.COMMIT_INTERVAL_MS) {
    throw new ConfigError(
      'COMMIT_CAUGHT_UP_MS',
      env.COMMIT_CAUGHT_UP_MS,
      `a whole number of milliseconds from 1 to COMMIT_INTERVAL_MS (${e.COMMIT_INTERVAL_MS})`,
    );
  }
  return {
    service: {
      name: e.SERVICE_NAME,
      instanceId: e.INSTANCE_ID ?? sanitizeInstanceId(hostname()),
      httpPort: e.HTTP_PORT,
      logLevel: e.LOG_LEVEL,
      shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    },
    kafka: {
      brokers: e.KAFKA_BROKERS,
      security: kafkaSecurity(e),
      topicPartitions: e.KAFKA_TOPIC_PARTITIONS,
      replicationFactor: e.KAFKA_REPLICATION_FACTOR,
      processingGuarantee: e.PROCESSING_GUARANTEE,
      commitIntervalMs: e.COMMIT_INTERVAL_MS,
      commitCaughtUpMs: e.COMMIT_CAUGHT_UP_MS ?? Math.min(DEFAULT_COMMIT_CAUGHT_UP_MS, e.COMMIT_INTERVAL_MS),
      maxBatchRecords: e.MAX_BATCH_RECORDS,
      maxBatchBytes: e.MAX_BATCH_BYTES,
      maxRecordBytes: e.MAX_RECORD_BYTES,
      staticMembership: e.STATIC_MEMBERSHIP === 'true',
      transactionTimeoutMs: e.TRANSACTION_TIMEOUT_MS,
      sessionTimeoutMs: e.SESSION_TIMEOUT_MS,
      autoOffsetReset: e.AUTO_OFFSET_RESET,
    },
    redis: {
      url: e.REDIS_URL,
      ...(e.REDIS_CLUSTER_NODES ? { clusterNodes: e.REDIS_CLUSTER_NODES.split(',') } : {}),
      ...(e.REDIS_PASSWORD_FILE
        ? { password: readSecret('REDIS_PASSWORD_FILE', e.REDIS_PASSWORD_FILE) }
        : {}),
      ...(e.REDIS_TLS_CA_FILE ? { tlsCaFile: e.REDIS_TLS_CA_FILE } : {}),
    },
    state: { cacheEntries: e.STATE_CACHE_ENTRIES, maxOpenWindowsPerTask: e.MAX_OPEN_WINDOWS_PER_TASK },
    pipelines: e.PIPELINES === 'all' ? 'all' : e.PIPELINES.split(','),
  };
}

function kafkaSecurity(e: Env): KafkaSecurity {
  const security: KafkaSecurity = { protocol: e.KAFKA_SECURITY_PROTOCOL };
  if (e.KAFKA_SECURITY_PROTOCOL.startsWith('sasl')) {
    if (!e.KAFKA_SASL_USERNAME) {
      throw new ConfigError(
        'KAFKA_SASL_USERNAME',
        undefined,
        `a user name when KAFKA_SECURITY_PROTOCOL=${e.KAFKA_SECURITY_PROTOCOL}`,
      );
    }
    const password =
      e.KAFKA_SASL_PASSWORD ??
      (e.KAFKA_SASL_PASSWORD_FILE
        ? readSecret('KAFKA_SASL_PASSWORD_FILE', e.KAFKA_SASL_PASSWORD_FILE)
        : undefined);
    if (!password) {
      throw new ConfigError(
        'KAFKA_SASL_PASSWORD',
        undefined,
        `a password (or KAFKA_SASL_PASSWORD_FILE) when KAFKA_SECURITY_PROTOCOL=${e.KAFKA_SECURITY_PROTOCOL}`,
      );
    }
    security.sasl = { mechanism: e.KAFKA_SASL_MECHANISM, username: e.KAFKA_SASL_USERNAME, password };
  }
  if (e.KAFKA_SECURITY_PROTOCOL.endsWith('ssl')) {
    security.ssl = {
      ...(e.KAFKA_SSL_CA_LOCATION ? { caLocation: e.KAFKA_SSL_CA_LOCATION } : {}),
      ...(e.KAFKA_SSL_CERTIFICATE_LOCATION ? { certificateLocation: e.KAFKA_SSL_CERTIFICATE_LOCATION } : {}),
      ...(e.KAFKA_SSL_KEY_LOCATION ? { keyLocation: e.KAFKA_SSL_KEY_LOCATION } : {}),
      ...(e.KAFKA_SSL_KEY_PASSWORD_FILE
        ? { keyPassword: readSecret('KAFKA_SSL_KEY_PASSWORD_FILE', e.KAFKA_SSL_KEY_PASSWORD_FILE) }
        : {}),
    };
  }
  return security;
}

function readSecret(variable: string, path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(
      variable,
      path,
      `a readable file (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
    );
  }
}

function sanitizeInstanceId(host: string): string {
  const id = host
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, '-')
    .slice(0, 63);
  return /^[a-z0-9]/.test(id) ? id : `m-${id}`.slice(0, 63);
}
