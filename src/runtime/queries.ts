import { partitionForKey } from './kafka/partitioner.js';
import { decodeEntry, type StoredEntry } from './state/store.js';
import type { RedisStateStore } from './state/redis-backend.js';
import { internalTopics, type TopologyPlan } from './topology.js';

/**
 * Reads task state straight from Redis, without owning the task: any replica answers any key,
 * with no routing to the owner (Kafka Streams' interactive queries need that routing). Reads
 * see the state as of the last applied transaction.
 */
export class StateQueries {
  constructor(
    private readonly state: RedisStateStore,
    private readonly app: string,
    private readonly partitions: number,
    private readonly plans: readonly TopologyPlan[],
  ) {}

  private topicOf(pipeline: string, store: string): string {
    const plan = this.plans.find((p) => p.pipeline === pipeline);
    const stage = plan?.stages.find((s) => s.aggregates.some((a) => a.store === store));
    if (!plan || !stage) throw new Error(`no store ${store} in pipeline ${pipeline}`);
    return internalTopics.repartition(this.app, pipeline, stage.name);
  }

  /** One key: its task is where the repartition step sent it (Kafka's murmur2 partitioner). */
  async get(pipeline: string, store: string, key: string): Promise<StoredEntry | undefined> {
    const topic = this.topicOf(pipeline, store);
    const text = await this.state.read(topic, partitionForKey(key, this.partitions), store, key);
    return text === null ? undefined : decodeEntry(text);
  }

  /** Every key of a store, across all tasks: for small stores (a handful of branches), not for customers. */
  async all(pipeline: string, store: string): Promise<Map<string, StoredEntry>> {
    const topic = this.topicOf(pipeline, store);
    const out = new Map<string, StoredEntry>();
    for (let p = 0; p < this.partitions; p++) {
      for (const [k, v] of Object.entries(await this.state.readAll(topic, p, store)))
        out.set(k, decodeEntry(v));
    }
    return out;
  }
}
