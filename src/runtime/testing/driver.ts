import { DEFAULT_LIMITS, KeyedTask, SourceTask, type EngineHooks, type EngineLimits } from '../engine.js';
import type { Emitter, InputRecord, OutputRecord } from '../records.js';
import { MemoryStateStore } from '../state/memory-backend.js';
import { internalTopics, type KeyedStagePlan, type TopologyPlan } from '../topology.js';

export interface DriverOptions {
  app?: string;
  /** Partitions of each source topic (default 1, like the seeds). */
  sourcePartitions?: Record<string, number>;
  /** Partitions of each repartition topic (default 4). */
  repartitionPartitions?: number;
  /** Records per simulated transaction (default 100). */
  commitEvery?: number;
  /** Virtual processing-time start (ms). */
  startTime?: number;
  cacheEntries?: number;
  /** The runtime's limits (MAX_RECORD_BYTES, MAX_OPEN_WINDOWS_PER_TASK); defaults as in the service. */
  limits?: Partial<EngineLimits>;
}

export interface PipedRecord {
  value: unknown;
  key?: string | null;
  partition?: number;
  /** Kafka record timestamp; defaults to the virtual clock. */
  timestamp?: number;
}

export interface DrivenOutput {
  topic: string;
  partition: number | undefined;
  key: string | null;
  value: unknown;
  headers: Record<string, string>;
}

/**
 * Runs a topology without Kafka or Redis, like Kafka Streams' TopologyTestDriver: the same
 * engine the service runs, an in-memory state backend, an in-order simulated repartition
 * topic, simulated commits, and a virtual clock for idle timeouts.
 */
export class TopologyTestDriver {
  readonly app: string;
  readonly state = new MemoryStateStore();
  readonly outputs: DrivenOutput[] = [];
  readonly counters = { deadLetters: 0, late: 0, limitExceeded: 0 };
  private now: number;
  private readonly sourceTasks = new Map<string, SourceTask>();
  private readonly keyedTasks = new Map<string, KeyedTask>();
  private readonly keyedInput = new Map<string, InputRecord[]>();
  private readonly offsets = new Map<string, number>();
  private readonly dirtyKeyed = new Set<KeyedTask>();
  private readonly touchedSources = new Set<SourceTask>();
  private sinceCommit = 0;
  private readonly onCommitted: Array<() => void> = [];
  private readonly opts: Required<
    Omit<DriverOptions, 'app' | 'startTime' | 'sourcePartitions' | 'limits'>
  > & {
    sourcePartitions: Record<string, number>;
    limits: EngineLimits;
  };

  constructor(
    readonly plan: TopologyPlan,
    options: DriverOptions = {},
  ) {
    this.app = options.app ?? 'test';
    this.now = options.startTime ?? 0;
    this.opts = {
      sourcePartitions: options.sourcePartitions ?? {},
      repartitionPartitions: options.repartitionPartitions ?? 4,
      commitEvery: options.commitEvery ?? 100,
      cacheEntries: options.cacheEntries ?? 10_000,
      limits: { ...DEFAULT_LIMITS, ...options.limits },
    };
    const hooks: EngineHooks = {
      deadLetter: () => this.counters.deadLetters++,
      late: () => this.counters.late++,
      limitExceeded: () => this.counters.limitExceeded++,
    };
    for (const source of plan.sources) {
      for (let p = 0; p < this.sourcePartitionCount(source.topic); p++) {
        this.sourceTasks.set(
          `${source.topic}/${p}`,
          new SourceTask(
            this.app,
            plan.pipeline,
            source,
            p,
            () => this.opts.repartitionPartitions,
            hooks,
            this.now,
            this.opts.limits,
          ),
        );
      }
    }
    for (const stage of plan.stages) {
      for (let p = 0; p < this.opts.repartitionPartitions; p++) {
        const topic = internalTopics.repartition(this.app, plan.pipeline, stage.name);
        const task = new KeyedTask(
          this.app,
          plan.pipeline,
          stage,
          p,
          this.sourcePartitionCount(stage.sourceTopic),
          this.state.task(`${topic}/${p}`),
          this.opts.cacheEntries,
          hooks,
          this.opts.limits,
        );
        this.keyedTasks.set(`${topic}/${p}`, task);
      }
    }
  }

  /** Claims every task's state, as a fresh member would on assignment. */
  async start(): Promise<this> {
    for (const t of this.keyedTasks.values()) {
      await t.backend.claim();
      await t.backend.apply(t.delta(0, {}), 'init');
      await t.refreshDue();
    }
    return this;
  }

  get clock(): number {
    return this.now;
  }

  /** Moves the virtual processing clock; idle timeouts are checked at the next commit. */
  advanceTime(ms: number): void {
    this.now += ms;
  }

  async pipe(topic: string, records: Iterable<PipedRecord>): Promise<void> {
    for (const r of records) {
      const partition = r.partition ?? 0;
      const task = this.sourceTasks.get(`${topic}/${partition}`);
      if (!task) throw new Error(`${topic}/${partition} is not a source of ${this.plan.pipeline}`);
      const offset = this.nextOffset(`${topic}/${partition}`);
      const value =
        r.value === null ? null : Buffer.isBuffer(r.value) ? r.value : Buffer.from(JSON.stringify(r.value));
      const input: InputRecord = {
        topic,
        partition,
        offset,
        key: r.key == null ? null : Buffer.from(r.key),
        value,
        timestamp: r.timestamp ?? this.now,
        headers: {},
      };
      task.process(input, this.emitter(), this.now);
      this.touchedSources.add(task);
      await this.drainKeyed();
      if (++this.sinceCommit >= this.opts.commitEvery) await this.commit();
    }
  }

  /** Ends the simulated transaction: watermark broadcasts, idle decisions, table upserts, state apply. */
  async commit(): Promise<void> {
    this.sinceCommit = 0;
    const emitter = this.emitter();
    for (const [id, task] of this.sourceTasks) {
      const idleTimeout = task.plan.options.idleTimeoutMs;
      if (idleTimeout !== undefined && !this.touchedSources.has(task))
        task.idleAdvance(emitter, this.now, idleTimeout);
      else task.broadcast(emitter, this.now);
      void id;
    }
    this.touchedSources.clear();
    await this.drainKeyed();
    for (const task of this.dirtyKeyed) {
      task.emitTables(emitter, this.now);
      task.emitChangelog(emitter, this.now);
      const ends = Object.fromEntries(
        task.stage.aggregates.map((a) => [a.store, this.nextOffset(`cl:${task.topic}/${a.store}`)]),
      );
      const outcome = await task.backend.apply(
        task.delta(this.offsets.get(`${task.topic}/${task.partition}`) ?? 0, ends),
        'apply',
      );
      if (outcome !== 'ok') throw new Error(`state apply for ${task.topic}/${task.partition} was ${outcome}`);
      task.markApplied(ends);
    }
    this.dirtyKeyed.clear();
    for (const observe of this.onCommitted.splice(0)) observe();
  }

  /** Outputs written to a topic (decoded from JSON; tombstones as null), in order. */
  read(topic: string): DrivenOutput[] {
    return this.outputs.filter((o) => o.topic === topic);
  }

  keyedTask(stage: KeyedStagePlan | string, partition: number): KeyedTask | undefined {
    const name = typeof stage === 'string' ? stage : stage.name;
    return this.keyedTasks.get(
      `${internalTopics.repartition(this.app, this.plan.pipeline, name)}/${partition}`,
    );
  }

  private emitter(): Emitter {
    return {
      emit: (o: OutputRecord) => {
        const id = `${o.topic}/${o.partition ?? 0}`;
        if (this.keyedTasks.has(id)) {
          let list = this.keyedInput.get(id);
          if (!list) this.keyedInput.set(id, (list = []));
          list.push(asConsumed(o, this.nextOffset(id), this.now));
          return;
        }
        if (o.committed) this.onCommitted.push(o.committed);
        this.outputs.push({
          topic: o.topic,
          partition: o.partition,
          key: o.key,
          value: o.value === null ? null : parseOrRaw(o.value),
          headers: o.headers ?? {},
        });
      },
    };
  }

  private async drainKeyed(): Promise<void> {
    for (;;) {
      const entry = [...this.keyedInput].find(([, list]) => list.length > 0);
      if (!entry) return;
      const [id, list] = entry;
      this.keyedInput.set(id, []);
      const task = this.keyedTasks.get(id)!;
      await task.process(list, this.emitter());
      this.offsets.set(id, list[list.length - 1].offset + 1);
      this.dirtyKeyed.add(task);
    }
  }

  private nextOffset(id: string): number {
    const o = this.offsets.get(`next:${id}`) ?? 0;
    this.offsets.set(`next:${id}`, o + 1);
    return o;
  }

  private sourcePartitionCount(topic: string): number {
    return this.opts.sourcePartitions[topic] ?? 1;
  }
}

/**
 * An output record as a consumer of its topic reads it back at `offset`: the key and the
 * headers as bytes, the partition and the timestamp filled in (`timestamp` where the output has
 * none, as the producer would stamp it). How the driver, the engine benchmark and the tests
 * hand a source task's repartition records to a keyed task.
 */
export function asConsumed(o: OutputRecord, offset: number, timestamp = 0): InputRecord {
  const headers: Record<string, Buffer> = {};
  for (const k in o.headers) headers[k] = Buffer.from(o.headers[k]);
  return {
    topic: o.topic,
    partition: o.partition ?? 0,
    offset,
    key: o.key === null ? null : Buffer.from(o.key),
    value: o.value,
    timestamp: o.timestamp ?? timestamp,
    headers,
  };
}

function parseOrRaw(b: Buffer): unknown {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    return b;
  }
}
