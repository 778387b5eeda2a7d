import type { AppConfig } from '../config/env.js';
import type { TopicSpec } from '../runtime/kafka/topics.js';
import type { TopologyPlan } from '../runtime/topology.js';

/** What a use case hands the service: its settings, its topics and its topology. One folder each. */
export interface Pipeline<C> {
  name: string;
  /** Parses the pipeline's own environment variables; throws ConfigError on a bad one (at boot). */
  config(env: NodeJS.ProcessEnv): C;
  /** The external topics it reads and writes (internal ones are the runtime's). */
  topics(app: AppConfig, config: C): TopicSpec[];
  topology(config: C): TopologyPlan;
}

/** A pipeline with its settings read: what the service and the tools work with. */
export interface ResolvedPipeline {
  name: string;
  plan: TopologyPlan;
  topics(app: AppConfig): TopicSpec[];
}

export interface PipelineEntry {
  name: string;
  resolve(env: NodeJS.ProcessEnv): ResolvedPipeline;
}

export function definePipeline<C>(p: Pipeline<C>): PipelineEntry {
  return {
    name: p.name,
    resolve: (env) => {
      const config = p.config(env);
      return { name: p.name, plan: p.topology(config), topics: (app) => p.topics(app, config) };
    },
  };
}
