import { Global, Module, type DynamicModule } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { LoggerModule } from 'nestjs-pino';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { StateQueries } from './runtime/queries.js';
import { pipelineConfigToken } from './pipelines/pipeline.js';
import type { AppConfig } from './config/env.js';
import { APP_CONFIG, PIPELINE_LIST } from './config/tokens.js';
import { HealthState } from './health/health-state.js';
import { HealthModule } from './health/health.module.js';
import { RedisProbe } from './health/redis-probe.js';
import { loggerParams } from './logging/logger.js';
import { MetricsController } from './metrics/metrics.controller.js';
import type { ResolvedPipeline } from './pipelines/pipeline.js';
import { StreamService } from './stream/stream.service.js';

/** One registry for the process: default metrics, the runtime's, and the pipelines' business metrics. */
export /** One registry for the process: default metrics, the runtime's, and the pipelines' business metrics. */
function createRegistry(config: AppConfig): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const info = new Gauge({
    name: 'stream_build_info',
    help: 'Always 1; labels say what runs.',
    labelNames: ['version', 'node_version', 'guarantee'],
    registers: [registry],
  });
  info.set(
    {
      version: process.env.npm_package_version ?? '0.1.0',
      node_version: process.version,
      guarantee: config.kafka.processingGuarantee,
    },
    1,
  );
  return registry;
}

@Global()
@Module({})
class CoreModule {
  static forRoot(config: AppConfig, pipelines: ResolvedPipeline[], registry: Registry): DynamicModule {
    return {
      module: CoreModule,
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: PIPELINE_LIST, useValue: pipelines },
        { provide: Registry, useValue: registry },
        ...pipelines.map((p) => ({ provide: pipelineConfigToken(p.name), useValue: p.config })),
        {
          provide: StateQueries,
          inject: [StreamService],
          useFactory: (s: StreamService) =>
            new StateQueries(
              s.state,
              config.service.name,
              config.kafka.topicPartitions,
              pipelines.map((p) => p.plan),
            ),
        },
        { provide: HealthState, useValue: new HealthState() },
        StreamService,
        { provide: RedisProbe, useExisting: StreamService },
      ],
      exports: [
        APP_CONFIG,
        PIPELINE_LIST,
        Registry,
        HealthState,
        RedisProbe,
        StreamService,
        StateQueries,
        ...pipelines.map((p) => pipelineConfigToken(p.name)),
      ],
    };
  }
}

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, pipelines: ResolvedPipeline[], registry: Registry): DynamicModule {
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot(loggerParams(config)),
        // Validated already (loadConfig); exposed for code that prefers ConfigService.
        ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [() => ({ app: config })] }),
        CoreModule.forRoot(config, pipelines, registry),
        HealthModule,
      ],
      controllers: [MetricsController, ...pipelines.flatMap((p) => p.controllers)],
    };
  }
}
