import type { Type } from '@nestjs/common';
import { Registry } from 'prom-client';
import type { AppConfig } from '../config/env.js';
import type { TopicSpec } from '../runtime/kafka/topics.js';
import type { TopologyPlan } from '../runtime/topology.js';

/** What a use case hands the service: settings, topics, topology, and optionally metrics and HTTP endpoints. One folder each. */
export interface Pipeline<C, M = undefined> {
  name: string;
  /** Parses the pipeline's own environment variables; throws ConfigError on a bad one (at boot). */
  config(env: NodeJS.ProcessEnv): C;
  /** The external topics it reads and writes (internal ones are the runtime's). */
  topics(app: AppConfig, config: C): TopicSpec[];
  /** Business metrics, registered on the service's registry; the topology updates them for committed output. */
  metrics?(registry: Registry, config: C): M;
  topology(config: C, metrics: M): TopologyPlan;
  /** NestJS controllers (query endpoints); they can inject PIPELINE_CONFIG(name) and StateQueries. */
  controllers?: Array<Type<unknown>>;
}

/** A pipeline with its settings read: what the service and the tools work with. */
export interface ResolvedPipeline {
  name: string;
  config: unknown;
  plan: TopologyPlan;
  topics(app: AppConfig): TopicSpec[];
  controllers: Array<Type<unknown>>;
}

export interface PipelineEntry {
  name: string;
  resolve(env: NodeJS.ProcessEnv, registry?: Registry): ResolvedPipeline;
}

export function definePipeline<C, M = undefined>(p: Pipeline<C, M>): PipelineEntry {
  return {
    name: p.name,
    resolve: (env, registry = new Registry()) => {
      const config = p.config(env);
      const metrics = (p.metrics ? p.metrics(registry, config) : undefined) as M;
      return {
        name: p.name,
        config,
        plan: p.topology(config, metrics),
        topics: (app) => p.topics(app, config),
        controllers: p.controllers ?? [],
      };
    },
  };
}

/** Injection token for one pipeline's parsed config. */
export const pipelineConfigToken = (name: string): string => `PIPELINE_CONFIG:${name}`;
