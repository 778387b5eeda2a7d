import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { Registry } from 'prom-client';
import { APP_CONFIG } from '../config/tokens.js';
import type { AppConfig } from '../config/env.js';
import { HealthState } from '../health/health-state.js';
import { RedisProbe } from '../health/redis-probe.js';
import type { ResolvedPipeline } from '../pipelines/pipeline.js';
import { PIPELINE_LIST } from '../config/tokens.js';
import type { FatalRuntimeError } from '../runtime/kafka/errors.js';
import { RuntimeMetrics } from '../runtime/metrics.js';
import { RedisStateStore, type RedisClient } from '../runtime/state/redis-backend.js';
import { connectRedis, createRedisClient } from '../runtime/state/redis-client.js';
import { StreamRuntime, type RuntimeLogger } from '../runtime/stream-runtime.js';

/** Owns the Redis client and the runtime for the service's lifetime; also answers the Redis readiness probe. */
@Injectable()
export class StreamService extends RedisProbe implements OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly redis: RedisClient;
  readonly state: RedisStateStore;
  private runtime: StreamRuntime | undefined;
  private starting: Promise<void> | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(PIPELINE_LIST) private readonly pipelines: ResolvedPipeline[],
    @Inject(Registry) registry: Registry,
    @Inject(HealthState) private readonly health: HealthState,
    @Inject(PinoLogger) private readonly logger: PinoLogger,
  ) {
    super();
    this.logger.setContext('StreamService');
    this.redis = createRedisClient(config.redis);
    // Errors are reported through the probe and the loop; ioredis would otherwise print each reconnect.
    this.redis.on('error', () => undefined);
    this.metrics = new RuntimeMetrics(registry);
    this.state = new RedisStateStore(this.redis, {
      app: config.service.name,
      onRoundTrip: (op, s) => this.metrics.redisRoundTrip.observe({ op }, s),
    });
  }

  readonly metrics: RuntimeMetrics;

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  /** Not awaited by Nest: health and metrics answer (not ready) while the group is joined and state restored. */
  onApplicationBootstrap(): void {
    this.starting = this.start().catch((err: unknown) => {
      this.logger.fatal(
        { err: err instanceof Error ? err.message : String(err) },
        'stream runtime failed to start',
      );
      exitSoon(1);
    });
  }

  private async start(): Promise<void> {
    const c = this.config;
    await connectRedis(this.redis);
    if (this.pipelines.length === 0) {
      this.logger.warn('no pipelines enabled (PIPELINES); nothing to process');
      return;
    }
    const log: RuntimeLogger = {
      debug: (o, m) => this.logger.debug(o, m),
      info: (o, m) => this.logger.info(o, m),
      warn: (o, m) => this.logger.warn(o, m),
      error: (o, m) => this.logger.error(o, m),
    };
    this.runtime = new StreamRuntime({
      app: c.service.name,
      instanceId: c.service.instanceId,
      connection: { brokers: c.kafka.brokers, clientId: c.service.name, security: c.kafka.security },
      guarantee: c.kafka.processingGuarantee,
      commitIntervalMs: c.kafka.commitIntervalMs,
      commitCaughtUpMs: c.kafka.commitCaughtUpMs,
      maxBatchRecords: c.kafka.maxBatchRecords,
      maxBatchBytes: c.kafka.maxBatchBytes,
      maxRecordBytes: c.kafka.maxRecordBytes,
      maxOpenWindowsPerTask: c.state.maxOpenWindowsPerTask,
      transactionTimeoutMs: c.kafka.transactionTimeoutMs,
      sessionTimeoutMs: c.kafka.sessionTimeoutMs,
      autoOffsetReset: c.kafka.autoOffsetReset,
      internalPartitions: c.kafka.topicPartitions,
      replicationFactor: c.kafka.replicationFactor,
      cacheEntriesPerStore: c.state.cacheEntries,
      staticMembership: c.kafka.staticMembership,
      plans: this.pipelines.map((p) => p.plan),
      state: this.state,
      metrics: this.metrics,
      health: this.health,
      logger: log,
      onFatal: (err: FatalRuntimeError) => {
        this.logger.fatal({ err: err.message, code: err.code }, 'exiting after a fatal error');
        exitSoon(70);
      },
    });
    await this.runtime.start();
  }

  async beforeApplicationShutdown(signal?: string): Promise<void> {
    this.health.shuttingDown = true;
    this.logger.info({ signal }, 'shutting down: finishing the open transaction and leaving the group');
    await this.starting;
    await this.runtime?.stop();
    this.redis.disconnect();
  }
}

function exitSoon(code: number): void {
  // Let the log line reach stdout first.
  setTimeout(() => process.exit(code), 100).unref();
}
