import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { Logger } from 'nestjs-pino';
import type { Registry } from 'prom-client';
import { AppModule, createRegistry } from './app.module.js';
import { ConfigError, loadConfig, type AppConfig } from './config/env.js';
import type { ResolvedPipeline } from './pipelines/pipeline.js';
import { resolvePipelines } from './pipelines/index.js';

async function bootstrap(
  config: AppConfig,
  pipelines: ResolvedPipeline[],
  registry: Registry,
): Promise<void> {
  const app = await NestFactory.create(AppModule.forRoot(config, pipelines, registry), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  // Our own handlers rather than enableShutdownHooks(): Nest re-raises the signal after its
  // hooks, so the exit status would read "killed"; an orderly stop should exit 0.
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => {
      fatal(`shutdown did not finish within SHUTDOWN_GRACE_MS=${config.service.shutdownGraceMs}`);
      process.exit(1);
    }, config.service.shutdownGraceMs).unref();
    // app.close() runs beforeApplicationShutdown: stop fetching, finish or abort the transaction, leave the group.
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        fatal(`shutdown on ${signal} failed`, err);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  await app.listen(config.service.httpPort, '0.0.0.0');
}

function fatal(msg: string, err?: unknown): void {
  const line: Record<string, unknown> = { level: 'fatal', time: new Date().toISOString(), msg };
  if (err instanceof Error && !(err instanceof ConfigError))
    line.err = { type: err.name, message: err.message, stack: err.stack };
  process.stderr.write(`${JSON.stringify(line)}\n`);
}

let config: AppConfig;
let pipelines: ResolvedPipeline[];
let registry: Registry;
try {
  config = loadConfig();
  registry = createRegistry(config);
  pipelines = resolvePipelines(config, process.env, registry);
} catch (err) {
  if (err instanceof ConfigError) {
    fatal(err.message);
    process.exit(78); // EX_CONFIG: a restart will not help
  }
  throw err;
}

bootstrap(config, pipelines, registry).catch((err: unknown) => {
  fatal(`startup failed: ${err instanceof Error ? err.message : String(err)}`, err);
  process.exit(1);
});
