import { InvalidRecordError } from './records.js';
import type { WindowSpec, Window } from './windows.js';

/**
 * The declarative side of the runtime: a use case describes its dataflow with this builder,
 * Kafka Streams-style, and the runtime (or the test driver) executes the compiled plan.
 *
 * Shape: source -> stateless steps -> sinks, and/or groupBy -> internal repartition topic ->
 * keyed aggregations (windowed or running) -> outputs. Aggregations always run after a
 * groupBy: that is where the key, the task and the watermark of a record are decided.
 */

export type Decoder<V> = (bytes: Buffer) => V;

export interface SourceOptions<V> {
  /** Parses and validates; throws InvalidRecordError (or anything) to send the record to `<topic>.dlq`. */
  decode: Decoder<V>;
  /** Event time in ms since the epoch; a non-finite result sends the record to the DLQ. */
  timestamp: (value: V) => number;
  /** Bounded out-of-orderness of the watermark. */
  outOfOrdernessMs: number;
  /**
   * Optional: after this much processing time without records, the partition's watermark
   * advances with the wall clock and stops holding back others. The decision is written to
   * the repartition topic before it takes effect, so a replay decides the same (G5).
   */
  idleTimeoutMs?: number;
}

export interface Aggregator<V, A> {
  init: () => A;
  add: (acc: A, value: V) => A;
}

export interface SinkOptions<T> {
  key?: (value: T) => string | null;
  value?: (value: T) => unknown;
  /** Called for each record after its transaction commits: for business metrics, never for aborted output. */
  observe?: (value: T) => void;
}

/** Called with each emitted value after its transaction commits. */
export type Observer<T> = (key: string, value: T) => void;

type Step = (value: unknown) => unknown[];

export interface StatelessNode {
  kind: 'step';
  step: Step;
  children: PlanNode[];
}
export interface SinkNode {
  kind: 'sink';
  topic: string;
  key: (value: unknown) => string | null;
  value: (value: unknown) => unknown;
  observe: ((value: unknown) => void) | undefined;
}
export interface RepartitionNode {
  kind: 'repartition';
  stage: KeyedStagePlan;
  key: (value: unknown) => string;
}
export type PlanNode = StatelessNode | SinkNode | RepartitionNode;

export interface WindowEmitter {
  topic: string;
  fn: (key: string, window: Window, acc: unknown) => unknown;
  observe: Observer<unknown> | undefined;
}

export interface TableEmitter {
  topic: string;
  fn: (key: string, acc: unknown) => unknown;
  observe: Observer<unknown> | undefined;
}

export interface AggregatePlan {
  store: string;
  window: WindowSpec | undefined;
  init: () => unknown;
  add: (acc: unknown, value: unknown) => unknown;
  windowEmitters: WindowEmitter[];
  tableEmitters: TableEmitter[];
}

export interface KeyedStagePlan {
  /** Unique within the pipeline; names the repartition topic. */
  name: string;
  sourceTopic: string;
  aggregates: AggregatePlan[];
}

export interface SourcePlan {
  topic: string;
  options: SourceOptions<unknown>;
  children: PlanNode[];
}

export interface TopologyPlan {
  pipeline: string;
  sources: SourcePlan[];
  stages: KeyedStagePlan[];
  /** Every topic the plan writes to that is not internal. */
  outputTopics: string[];
}

export class Stream<V> {
  constructor(
    private readonly builder: TopologyBuilder,
    private readonly sourceTopic: string,
    private readonly children: PlanNode[],
  ) {}

  /** Transforms each value; throwing sends the record to the DLQ. */
  map<U>(fn: (value: V) => U): Stream<U> {
    return this.step((v) => [fn(v as V)]);
  }

  filter(predicate: (value: V) => boolean): Stream<V> {
    return this.step((v) => (predicate(v as V) ? [v] : []));
  }

  flatMap<U>(fn: (value: V) => Iterable<U>): Stream<U> {
    return this.step((v) => [...fn(v as V)]);
  }

  /** Rejects values that fail a check: they go to the DLQ with this reason. */
  validate(check: (value: V) => string | undefined): Stream<V> {
    return this.step((v) => {
      const problem = check(v as V);
      if (problem) throw new InvalidRecordError(problem, 'validation');
      return [v];
    });
  }

  to(topic: string, options: SinkOptions<V> = {}): this {
    this.builder.registerOutput(topic);
    this.children.push({
      kind: 'sink',
      topic,
      key: (options.key as (v: unknown) => string | null) ?? (() => null),
      value: (options.value as (v: unknown) => unknown) ?? ((v) => v),
      observe: options.observe as ((v: unknown) => void) | undefined,
    });
    return this;
  }

  /** Re-keys through an internal repartition topic, inside the same transactions. */
  groupBy(name: string, key: (value: V) => string): GroupedStream<V> {
    const stage: KeyedStagePlan = { name, sourceTopic: this.sourceTopic, aggregates: [] };
    this.builder.registerStage(stage);
    this.children.push({ kind: 'repartition', stage, key: key as (v: unknown) => string });
    return new GroupedStream<V>(this.builder, stage);
  }

  private step(step: Step): Stream<never> {
    const children: PlanNode[] = [];
    this.children.push({ kind: 'step', step, children });
    return new Stream(this.builder, this.sourceTopic, children);
  }
}

export class GroupedStream<V> {
  constructor(
    private readonly builder: TopologyBuilder,
    private readonly stage: KeyedStagePlan,
  ) {}

  windowedBy(window: WindowSpec): WindowedStream<V> {
    return new WindowedStream<V>(this.builder, this.stage, window);
  }

  /** A running aggregate per key over all time, kept in the state store. */
  aggregate<A>(store: string, aggregator: Aggregator<V, A>): Table<A> {
    const plan = this.builder.registerAggregate(this.stage, store, undefined, aggregator);
    return new Table<A>(this.builder, plan);
  }
}

export class WindowedStream<V> {
  constructor(
    private readonly builder: TopologyBuilder,
    private readonly stage: KeyedStagePlan,
    private readonly window: WindowSpec,
  ) {}

  aggregate<A>(store: string, aggregator: Aggregator<V, A>): WindowedTable<A> {
    const plan = this.builder.registerAggregate(this.stage, store, this.window, aggregator);
    return new WindowedTable<A>(this.builder, plan);
  }
}

export class WindowedTable<A> {
  constructor(
    private readonly builder: TopologyBuilder,
    private readonly plan: AggregatePlan,
  ) {}

  /**
   * When a window fires (the watermark passes its end), `fn` decides the output value;
   * returning null or undefined emits nothing. The output key is the group key.
   */
  emitOnClose<O>(
    topic: string,
    fn: (key: string, window: Window, acc: A) => O | null | undefined,
    observe?: Observer<O>,
  ): this {
    this.builder.registerOutput(topic);
    this.plan.windowEmitters.push({
      topic,
      fn: fn as WindowEmitter['fn'],
      observe: observe as Observer<unknown> | undefined,
    });
    return this;
  }
}

export class Table<A> {
  constructor(
    private readonly builder: TopologyBuilder,
    private readonly plan: AggregatePlan,
  ) {}

  /** Upserts the latest value of each changed key once per commit (like Kafka Streams' record cache). */
  toTopic<O = A>(
    topic: string,
    fn: (key: string, acc: A) => O = (_k, acc) => acc as unknown as O,
    observe?: Observer<O>,
  ): this {
    this.builder.registerOutput(topic);
    this.plan.tableEmitters.push({
      topic,
      fn: fn as TableEmitter['fn'],
      observe: observe as Observer<unknown> | undefined,
    });
    return this;
  }
}

export class TopologyBuilder {
  private readonly sources: SourcePlan[] = [];
  private readonly stages: KeyedStagePlan[] = [];
  private readonly outputs = new Set<string>();
  private readonly stores = new Set<string>();

  constructor(readonly pipeline: string) {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(pipeline))
      throw new Error(`pipeline name must be kebab-case, got "${pipeline}"`);
  }

  source<V>(topic: string, options: SourceOptions<V>): Stream<V> {
    if (this.sources.some((s) => s.topic === topic))
      throw new Error(`topic ${topic} is already a source of ${this.pipeline}`);
    const children: PlanNode[] = [];
    this.sources.push({ topic, options: options as SourceOptions<unknown>, children });
    return new Stream<V>(this, topic, children);
  }

  build(): TopologyPlan {
    if (this.sources.length === 0) throw new Error(`pipeline ${this.pipeline} has no source`);
    for (const stage of this.stages) {
      if (stage.aggregates.length === 0)
        throw new Error(`groupBy("${stage.name}") in ${this.pipeline} has no aggregate`);
    }
    return {
      pipeline: this.pipeline,
      sources: this.sources,
      stages: this.stages,
      outputTopics: [...this.outputs],
    };
  }

  /** @internal */
  registerOutput(topic: string): void {
    this.outputs.add(topic);
  }

  /** @internal */
  registerStage(stage: KeyedStagePlan): void {
    if (this.stages.some((s) => s.name === stage.name))
      throw new Error(`groupBy name "${stage.name}" is used twice`);
    if (!/^[a-z0-9][a-z0-9-]*$/.test(stage.name))
      throw new Error(`groupBy name must be kebab-case, got "${stage.name}"`);
    this.stages.push(stage);
  }

  /** @internal */
  registerAggregate<V, A>(
    stage: KeyedStagePlan,
    store: string,
    window: WindowSpec | undefined,
    aggregator: Aggregator<V, A>,
  ): AggregatePlan {
    if (this.stores.has(store)) throw new Error(`store name "${store}" is used twice`);
    if (!/^[a-z0-9][a-z0-9-]*$/.test(store)) throw new Error(`store name must be kebab-case, got "${store}"`);
    this.stores.add(store);
    const plan: AggregatePlan = {
      store,
      window,
      init: aggregator.init,
      add: aggregator.add as AggregatePlan['add'],
      windowEmitters: [],
      tableEmitters: [],
    };
    stage.aggregates.push(plan);
    return plan;
  }
}

/** Internal topic names, derived from the application id so two deployments never share them. */
export const internalTopics = {
  repartition: (app: string, pipeline: string, stage: string) => `${app}-${pipeline}-${stage}-repartition`,
  changelog: (app: string, pipeline: string, store: string) => `${app}-${pipeline}-${store}-changelog`,
  dlq: (source: string) => `${source}.dlq`,
  late: (source: string) => `${source}.late`,
};
