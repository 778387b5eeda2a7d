import { setTimeout as sleep } from 'node:timers/promises';
import type { HealthState } from '../health/health-state.js';
import {
  DEFAULT_LIMITS,
  KeyedTask,
  SourceTask,
  type EngineHooks,
  type EngineLimits,
  type KeyedTaskSnapshot,
  SourceTaskGroup,
  type SourceGroupSnapshot,
} from './engine.js';
import { ChangelogReader } from './kafka/changelog-reader.js';
import {
  asError,
  KafkaConsumer,
  kafkaCall,
  Producer,
  type DeliveryReport,
  type KafkaConsumerType,
  type LibrdKafkaError,
  type Message,
  type ProducerType,
  type TopicPartition,
  type TopicPartitionOffsetAndMetadata,
} from './kafka/client.js';
import { librdkafkaConfig, prefetchConfig, type KafkaConnection } from './kafka/client-config.js';
import { classifyTxnError, describeError, FatalRuntimeError, isKafkaError } from './kafka/errors.js';
import { ensureTopics } from './kafka/topics.js';
import { runtimeTopicSpecs } from './runtime-topics.js';
import type { RuntimeMetrics } from './metrics.js';
import type { Emitter, InputRecord, OutputRecord } from './records.js';
import { isStateError, StateRefusedError, type ApplyOutcome, type TaskDelta } from './state/store.js';
import type { RedisStateStore } from './state/redis-backend.js';
import { internalTopics, type KeyedStagePlan, type TopologyPlan } from './topology.js';

export interface RuntimeLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface StreamRuntimeOptions {
  /** application.id: the consumer group and the prefix of internal topics and Redis keys. */
  app: string;
  /** Stable per member across restarts: suffix of transactional.id, group.instance.id. */
  instanceId: string;
  connection: KafkaConnection;
  guarantee: 'exactly_once' | 'at_least_once';
  /** The longest a transaction stays open. */
  commitIntervalMs: number;
  /**
   * How long a transaction stays open once the member has caught up (its last poll drained the
   * prefetch queue), at most commitIntervalMs. Under a backlog every poll comes back full and
   * commitIntervalMs applies, so commits stay few; at a lighter load each hop of the topology
   * waits this long instead (default commitIntervalMs: no difference).
   */
  commitCaughtUpMs?: number;
  maxBatchRecords: number;
  /**
   * Bytes of input per transaction before it commits early; it also sizes librdkafka's
   * prefetch queue and fetches, so the input held in memory stays within a few times this.
   */
  maxBatchBytes: number;
  /** Key plus value bytes of an input record; larger ones go to the DLQ unparsed (default 256 KiB). */
  maxRecordBytes?: number;
  /** Windows open at once per keyed task; a record that would open more goes to the DLQ (default 1,000,000). */
  maxOpenWindowsPerTask?: number;
  transactionTimeoutMs: number;
  sessionTimeoutMs: number;
  autoOffsetReset: 'earliest' | 'latest';
  /** Partitions of the internal repartition and changelog topics. */
  internalPartitions: number;
  replicationFactor: number;
  /** Clean entries kept in each task's write-back cache per store. */
  cacheEntriesPerStore: number;
  /** Use static group membership (group.instance.id): a restarted member gets its partitions back without a rebalance. */
  staticMembership: boolean;
  plans: TopologyPlan[];
  state: RedisStateStore;
  metrics: RuntimeMetrics;
  health: HealthState;
  logger: RuntimeLogger;
  /** Called once on an unrecoverable error; the default service exits non-zero so it is restarted. */
  onFatal: (err: FatalRuntimeError) => void;
  /** Extra librdkafka settings (tests shorten timeouts with these). */
  consumerOverrides?: Record<string, string | number | boolean>;
  producerOverrides?: Record<string, string | number | boolean>;
}

type Task = { kind: 'source'; task: SourceTaskGroup } | { kind: 'keyed'; task: KeyedTask; pipeline: string };

interface Committed {
  offset: number;
  metadata: string | undefined;
}

interface ClientLog {
  severity: number;
  fac: string;
  message: string;
}

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** A committed transaction's state for one task, waiting for its Redis apply. */
interface PendingApply {
  task: KeyedTask;
  delta: TaskDelta;
  ends: Record<string, number>;
}

/**
 * The consume-transform-produce loop. Per commit interval, across every partition this
 * member owns, in this order:
 *
 *   1. poll and process records into the open transaction (outputs, repartition records,
 *      dead letters, late events)
 *   2. broadcast watermarks, upsert changed table rows, write changelog records
 *   3. flush (to learn the changelog offsets), send offsets with each task's stream-time
 *      snapshot as commit metadata, commit the transaction
 *   4. apply each task's state delta to Redis with the fenced script
 *
 * A crash between 3 and 4 leaves Redis behind Kafka; the next owner sees it on assignment
 * and replays the changelog gap (G2). See docs/architecture.md.
 */
export class StreamRuntime {
  private consumer: KafkaConsumerType | undefined;
  private producer: ProducerType | undefined;
  private readonly tasks = new Map<string, Task>();
  private readonly committed = new Map<string, Committed>();
  /**
   * Where consumption of a never-committed partition began: the rewind target for it, as
   * seek() has no "back to where auto.offset.reset put us" (-1001 is refused, and ignoring
   * that refusal would skip the aborted records).
   */
  private readonly origins = new Map<string, number>();
  /**
   * The lowest offset of records that arrived for a partition with no task. Partitions are
   * assigned only once their task exists (onAssign), so this should stay empty; it is the
   * safety net for a client that delivers early anyway: those records are not processed, so
   * the partition must start at its committed offset (or the first of them), or the next
   * commit would skip them.
   */
  private readonly early = new Map<string, number>();
  /** The offset the first record of a newly created or rewound task should have, to log where it differs. */
  private readonly expectFirst = new Map<string, number>();
  private readonly events: Array<{ kind: 'assign' | 'revoke'; partitions: TopicPartition[]; lost: boolean }> =
    [];
  private readonly stageByTopic = new Map<string, { plan: TopologyPlan; stage: KeyedStagePlan }>();
  private readonly sourceByTopic = new Map<string, Array<{ plan: TopologyPlan; index: number }>>();
  private readonly sourcePartitions = new Map<string, number>();
  private readonly changelogTopics = new Set<string>();
  private readonly changelogEnds = new Map<string, number>();
  private readonly deliveryErrors: LibrdKafkaError[] = [];
  private readonly restore: ChangelogReader;
  private stopping = false;
  private lastClientError: string | undefined;
  /** While false, rebalance callbacks are answered on the spot: no loop is there to do it. */
  private loopRunning = false;
  private loopDone: Promise<void> | undefined;
  /**
   * librdkafka's threads wake JavaScript through handles Node does not count as pending work,
   * so an await on a client callback alone can let the process think it is done. A running
   * runtime holds the process open with this timer until stop() has finished.
   */
  private holdOpen: NodeJS.Timeout | undefined;
  private txnOpen = false;
  private txnStarted = 0;
  /** The last poll came back with fewer records than asked for: nothing is waiting in the prefetch queue. */
  private caughtUp = false;
  private txnBytes = 0;
  /** Records produced whose delivery report has not arrived yet. */
  private undelivered = 0;
  /** Input positions processed in the open transaction: task key -> next offset. */
  private readonly pending = new Map<string, number>();
  private readonly touchedKeyed = new Set<KeyedTask>();
  private readonly touchedSources = new Set<SourceTaskGroup>();
  private readonly latencies: number[] = [];
  private readonly produced = new Map<string, number>();
  private readonly onCommitted: Array<() => void> = [];
  private dirtyApplies: PendingApply[] = [];
  private readonly hooksByPipeline = new Map<string, EngineHooks>();
  private readonly toRecover = new Map<KeyedTask, 'refresh' | 'rebuild'>();
  private readonly limits: EngineLimits;

  constructor(private readonly o: StreamRuntimeOptions) {
    this.restore = new ChangelogReader(o.connection, `${o.app}-restore`);
    this.limits = {
      maxRecordBytes: o.maxRecordBytes ?? DEFAULT_LIMITS.maxRecordBytes,
      maxOpenWindowsPerTask: o.maxOpenWindowsPerTask ?? DEFAULT_LIMITS.maxOpenWindowsPerTask,
    };
    for (const plan of o.plans) {
      plan.sources.forEach((s, index) =>
        this.sourceByTopic.set(s.topic, [...(this.sourceByTopic.get(s.topic) ?? []), { plan, index }]),
      );
      for (const stage of plan.stages) {
        this.stageByTopic.set(internalTopics.repartition(o.app, plan.pipeline, stage.name), { plan, stage });
        for (const agg of stage.aggregates)
          this.changelogTopics.add(internalTopics.changelog(o.app, plan.pipeline, agg.store));
      }
      this.hooksByPipeline.set(plan.pipeline, {
        deadLetter: (reason) => o.metrics.deadLetters.inc({ pipeline: plan.pipeline, reason }),
        late: (store) => o.metrics.lateRecords.inc({ pipeline: plan.pipeline, store }),
        limitExceeded: (limit) => o.metrics.limitExceeded.inc({ limit }),
        event: (timestamp) => this.latencies.push(timestamp),
      });
    }
  }

  async start(): Promise<void> {
    try {
      await this.connect();
    } catch (err) {
      // librdkafka says why it cannot connect (SASL, TLS, DNS) through error events, while the
      // call itself fails with a bare "transport failure": name the cause.
      const base = describeError(err);
      const cause =
        this.lastClientError && !base.includes(this.lastClientError) ? `: ${this.lastClientError}` : '';
      throw new Error(`${base}${cause}`, { cause: err });
    }
  }

  private async connect(): Promise<void> {
    const o = this.o;
    this.holdOpen ??= setInterval(() => undefined, 60_000);
    const eos = o.guarantee === 'exactly_once';
    // The producer first: its error events explain a broker that cannot be reached or refuses us.
    const producer = new Producer({
      ...librdkafkaConfig({ ...o.connection, clientId: `${o.app}-${o.instanceId}` }),
      ...(eos
        ? { 'transactional.id': `${o.app}-${o.instanceId}`, 'transaction.timeout.ms': o.transactionTimeoutMs }
        : {}),
      'enable.idempotence': true,
      'linger.ms': 1,
      'compression.codec': 'lz4',
      dr_cb: true,
      ...(o.producerOverrides ?? {}),
    });
    producer.on('delivery-report', (err: LibrdKafkaError | null, report: DeliveryReport) =>
      this.onDelivery(err, report),
    );
    producer.on('event.error', (err: LibrdKafkaError) => this.onClientError('producer', err));
    producer.on('event.log', (log: ClientLog) => this.onClientLog('producer', log));
    await kafkaCall((cb) => producer.connect({ timeout: 30_000 }, (err) => cb(err)));
    await ensureTopics(
      o.connection,
      runtimeTopicSpecs(o.app, o.plans, o.internalPartitions),
      o.replicationFactor,
    );
    await this.loadSourcePartitionCounts();
    producer.setPollInterval(50);
    if (eos) await this.call('initTransactions', (cb) => producer.initTransactions(30_000, cb));
    this.producer = producer;

    const rawConsumer = new KafkaConsumer({
      ...librdkafkaConfig({ ...o.connection, clientId: `${o.app}-${o.instanceId}` }),
      'group.id': o.app,
      ...(o.staticMembership ? { 'group.instance.id': `${o.app}-${o.instanceId}` } : {}),
      'partition.assignment.strategy': 'cooperative-sticky',
      'session.timeout.ms': o.sessionTimeoutMs,
      'heartbeat.interval.ms': Math.max(500, Math.floor(o.sessionTimeoutMs / 5)),
      'enable.auto.commit': false,
      'enable.auto.offset.store': false,
      'isolation.level': 'read_committed',
      'auto.offset.reset': o.autoOffsetReset,
      'fetch.wait.max.ms': 50,
      // MAX_BATCH_BYTES bounds what sits in memory before processing, not only the transaction.
      ...prefetchConfig(o.maxBatchBytes),
      'statistics.interval.ms': 5000,
      rebalance_cb: (err: LibrdKafkaError, assignment: TopicPartition[]) => this.onRebalance(err, assignment),
      ...(o.consumerOverrides ?? {}),
    });
    const consumer = rawConsumer as KafkaConsumerType;
    consumer.on('event.error', (err: LibrdKafkaError) => this.onClientError('consumer', err));
    consumer.on('event.log', (log: ClientLog) => this.onClientLog('consumer', log));
    consumer.on('event.stats', (stats: { message: string }) => this.onStats(stats.message));
    await kafkaCall((cb) => consumer.connect({ timeout: 30_000 }, (err) => cb(err)));
    // An idle poll waits no longer than an open transaction may: its commit is due then.
    consumer.setDefaultConsumeTimeout(Math.min(100, this.commitCaughtUpMs));
    consumer.setDefaultIsTimeoutOnlyForFirstMessage(true);
    this.consumer = consumer;
    consumer.subscribe([...this.sourceByTopic.keys(), ...this.stageByTopic.keys()]);
    o.health.kafkaConnected = true;
    o.logger.info(
      { app: o.app, instance: o.instanceId, guarantee: o.guarantee, topics: consumer.subscription() },
      'stream runtime started',
    );
    o.health.loopStarted();
    this.loopDone = this.loop().catch((err: unknown) => this.fatal(err));
  }

  /** Graceful stop: finish the open transaction, release partitions, leave the group. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.o.health.shuttingDown = true;
    await this.loopDone;
    const c = this.consumer;
    const p = this.producer;
    // The consumer stays reachable until it is gone: disconnect() revokes everything, and the
    // rebalance callback must answer that revoke or librdkafka waits for ever.
    if (c) await new Promise<void>((resolve) => c.disconnect(() => resolve()));
    if (p) await new Promise<void>((resolve) => p.disconnect(10_000, () => resolve()));
    this.consumer = undefined;
    this.producer = undefined;
    await this.restore.close();
    this.o.health.loopStopped();
    this.o.health.kafkaConnected = false;
    this.o.logger.info({}, 'stream runtime stopped');
    clearInterval(this.holdOpen);
    this.holdOpen = undefined;
  }

  private async loop(): Promise<void> {
    this.loopRunning = true;
    try {
      await this.runLoop();
    } finally {
      this.loopRunning = false;
      // Events queued after the last turn need no work now (the last commit is done): release them.
      this.drainEventsOnStop();
    }
  }

  private async runLoop(): Promise<void> {
    const o = this.o;
    while (!this.stopping) {
      o.health.heartbeat();
      await this.handleEvents();
      if (this.dirtyApplies.length > 0) {
        await this.retryApplies();
        continue;
      }
      if (this.toRecover.size > 0) {
        await this.recoverTasks();
        continue;
      }
      const messages = await this.poll();
      this.caughtUp = messages.length < o.maxBatchRecords;
      if (messages.length > 0) await this.processBatch(messages);
      await this.idleTick();
      if (this.txnOpen && (this.dueToCommit() || this.events.length > 0)) await this.commit();
    }
    if (this.txnOpen) await this.commit();
    await this.retryApplies();
  }

  private dueToCommit(): boolean {
    if (this.deliveryErrors.length > 0) return true;
    if (this.txnBytes >= this.o.maxBatchBytes) {
      this.o.metrics.limitExceeded.inc({ limit: 'max-batch-bytes' });
      return true;
    }
    const age = Date.now() - this.txnStarted;
    return age >= (this.caughtUp ? this.commitCaughtUpMs : this.o.commitIntervalMs);
  }

  private get commitCaughtUpMs(): number {
    return Math.min(this.o.commitCaughtUpMs ?? this.o.commitIntervalMs, this.o.commitIntervalMs);
  }

  private poll(): Promise<Message[]> {
    const c = this.consumer!;
    return new Promise((resolve) =>
      c.consume(this.o.maxBatchRecords, (err, msgs) => {
        if (err) {
          // Transport errors surface here while a broker is away; librdkafka reconnects by itself.
          if (err.code !== -185) this.o.logger.warn({ err: describeError(err) }, 'poll failed');
          resolve([]);
          return;
        }
        resolve(msgs);
      }),
    );
  }

  private async processBatch(messages: Message[]): Promise<void> {
    const o = this.o;
    const end = o.metrics.processingDuration.startTimer();
    o.metrics.batchRecords.observe(messages.length);
    await this.begin();
    const emitter = this.emitter();
    const now = Date.now();
    const keyedBatches = new Map<KeyedTask, InputRecord[]>();
    let bytes = 0;
    for (const m of messages) bytes += m.size + (m.key?.length ?? 0);
    o.metrics.batchBytes.observe(bytes);
    // Per batch, not per record: a labelled inc costs an object and a label hash each time.
    const consumed = new Map<string, number>();
    // Records come in runs of one partition; the key string is built once per run.
    let lastTopic = '';
    let lastPartition = -1;
    let key = '';
    for (const m of messages) {
      if (m.partition !== lastPartition || m.topic !== lastTopic) {
        lastTopic = m.topic;
        lastPartition = m.partition;
        key = tpKey(m.topic, m.partition);
      }
      const t = this.tasks.get(key);
      // A record for a partition we no longer own (revoked while it was in flight) is not ours
      // to process; one for a partition whose assignment is queued is re-read once its task exists.
      if (!t) {
        this.early.set(key, Math.min(this.early.get(key) ?? m.offset, m.offset));
        continue;
      }
      const expected = this.expectFirst.get(key);
      if (expected !== undefined) {
        this.expectFirst.delete(key);
        if (m.offset !== expected && this.sourceByTopic.has(m.topic))
          o.logger.warn(
            { partition: key, expected, offset: m.offset },
            'first record after assignment or rewind is not at the committed offset',
          );
      }
      const record = toInput(m);
      if (!this.committed.has(key) && !this.origins.has(key)) this.origins.set(key, m.offset);
      this.txnBytes += m.size + (m.key?.length ?? 0);
      this.pending.set(key, m.offset + 1);
      consumed.set(m.topic, (consumed.get(m.topic) ?? 0) + 1);
      // Observed once per event, at the commit that makes its results visible: a record bound
      // for a repartition topic is measured when the keyed stage commits it, not twice, and
      // per event of its pack (the `event` hook), not per record.
      if (t.kind === 'source' && t.task.writesSinks) this.latencies.push(record.timestamp);
      if (t.kind === 'source') {
        t.task.process(record, emitter, now);
        this.touchedSources.add(t.task);
      } else {
        const list = keyedBatches.get(t.task) ?? [];
        list.push(record);
        keyedBatches.set(t.task, list);
      }
    }
    for (const [topic, n] of consumed) o.metrics.recordsConsumed.inc({ topic }, n);
    // Every task's cache misses at once: one round trip's wait for the batch instead of one per task.
    const prefetched = await Promise.all(
      [...keyedBatches].map(([task, records]) =>
        task.prefetch(records).then(
          () => undefined,
          (err: unknown) => ({ task, err }),
        ),
      ),
    );
    const failed = prefetched.find((f) => f !== undefined);
    if (failed) {
      if (!isStateError(failed.err)) throw failed.err;
      end();
      await this.onStateReadError(failed.task, failed.err);
      return;
    }
    for (const [task, records] of keyedBatches) {
      this.touchedKeyed.add(task);
      try {
        await task.processPrefetched(records, emitter);
      } catch (err) {
        if (!isStateError(err)) throw err;
        end();
        await this.onStateReadError(task, err);
        return;
      }
    }
    end();
  }

  /**
   * A state read failed mid-transaction: what the transaction computed may rest on missing
   * state, so it must not commit. Abort, rewind, and recover the task before reading again.
   */
  private async onStateReadError(task: KeyedTask, err: unknown): Promise<void> {
    const lost = err instanceof StateRefusedError && err.outcome === 'lost';
    this.o.logger.warn(
      { task: `${task.topic}/${task.partition}`, err: describeError(err) },
      lost ? 'state lost in Redis; aborting and rebuilding' : 'state read failed; aborting the transaction',
    );
    await this.abort(err);
    if (lost) this.toRecover.set(task, 'rebuild');
  }

  /** Tasks whose state must be re-read (after an abort) or rebuilt (Redis lost it) before they process again. */
  private async recoverTasks(): Promise<void> {
    for (const [task, what] of this.toRecover) {
      if (this.tasks.get(tpKey(task.topic, task.partition))?.task !== task) {
        this.toRecover.delete(task);
        continue;
      }
      try {
        if (what === 'rebuild') await this.rebuildTask(task);
        else await task.refreshDue();
        this.toRecover.delete(task);
        this.setPaused('redis', false);
      } catch (err) {
        if (!isStateError(err)) throw err;
        if (err instanceof StateRefusedError) {
          // Lost: rebuild. Fenced: another member owns the task now, and the revoke is on its way.
          if (err.outcome === 'lost') this.toRecover.set(task, 'rebuild');
          else this.toRecover.delete(task);
          continue;
        }
        this.setPaused('redis', true, describeError(err));
        this.o.logger.warn({ err: describeError(err) }, 'redis unavailable; processing paused');
        await this.keepAlive(500);
        return;
      }
    }
  }

  /** Idle timeouts are decided here, on processing time, and written to Kafka before they count (G5). */
  private async idleTick(): Promise<void> {
    const now = Date.now();
    for (const t of this.tasks.values()) {
      if (t.kind !== 'source') continue;
      const due = t.task.members.some((m) => {
        const idle = m.plan.options.idleTimeoutMs;
        return idle !== undefined && now - m.lastActivity >= idle;
      });
      if (!due) continue;
      await this.begin();
      if (t.task.idleTick(this.emitter(), now)) {
        const key = tpKey(t.task.topic, t.task.partition);
        // The idle decision changes the snapshot, so the partition's offset is committed with it.
        if (!this.pending.has(key)) this.pending.set(key, this.committed.get(key)?.offset ?? 0);
      }
    }
  }

  private async begin(): Promise<void> {
    if (this.txnOpen) return;
    if (this.o.guarantee === 'exactly_once') {
      const p = this.producer!;
      await this.call('beginTransaction', (cb) => p.beginTransaction(cb));
    }
    this.txnOpen = true;
    this.txnStarted = Date.now();
    this.txnBytes = 0;
  }

  private emitter(): Emitter {
    return {
      emit: (r: OutputRecord) => {
        const headers = r.headers ? Object.entries(r.headers).map(([k, v]) => ({ [k]: v })) : undefined;
        try {
          this.producer!.produce(
            r.topic,
            r.partition ?? null,
            r.value,
            r.key,
            r.timestamp ?? null,
            undefined,
            headers,
          );
        } catch (err) {
          // A transaction in an abortable state (a failed delivery, the broker restarting)
          // refuses records with ERR__STATE, and a full queue with ERR__QUEUE_FULL. Both end
          // this transaction, not the process: the commit aborts it and the batch is re-read.
          if (!isKafkaError(err)) throw err;
          this.deliveryErrors.push(err);
          return;
        }
        this.undelivered++;
        this.produced.set(r.topic, (this.produced.get(r.topic) ?? 0) + 1);
        if (r.committed) this.onCommitted.push(r.committed);
      },
    };
  }

  private async commit(): Promise<void> {
    const o = this.o;
    const p = this.producer!;
    const emitter = this.emitter();
    const now = Date.now();
    for (const task of this.touchedSources) task.broadcast(emitter, now);
    for (const task of this.touchedKeyed) {
      task.emitTables(emitter, now);
      task.emitChangelog(emitter, now);
    }
    const end = o.metrics.transactionCommitDuration.startTimer();
    let offsets: TopicPartitionOffsetAndMetadata[] = [];
    try {
      this.changelogEnds.clear();
      // Every transaction waits for its delivery reports, not only one with changelog records.
      // The client hands them to JavaScript 100 per event-loop turn; while a member's
      // transactions held only repartition records (its keyed stage had nothing fetched), up to
      // 455,000 waited in the client's native queue, 80 MB over the member's usual peak.
      if (this.undelivered > 0) {
        await this.call('flush', (cb) => p.flush(30_000, cb));
        // flush's callback can overtake the delivery reports it served: the changelog ends
        // committed below must be final, or Redis could later record more than Kafka holds.
        await this.awaitDeliveries(30_000);
      }
      this.throwDeliveryErrors();
      offsets = this.offsetsToCommit();
      if (o.guarantee === 'exactly_once') {
        if (offsets.length > 0) {
          await this.retrying('sendOffsetsToTransaction', (cb) =>
            p.sendOffsetsToTransaction(offsets, this.consumer!, 30_000, cb),
          );
        }
        await this.retrying('commitTransaction', (cb) => p.commitTransaction(30_000, cb));
      } else if (offsets.length > 0) {
        this.consumer!.commitSync(offsets);
      }
    } catch (err) {
      end();
      await this.abort(err);
      return;
    }
    end();
    // A committed transaction proves the brokers are back after an ALL_BROKERS_DOWN.
    o.health.kafkaConnected = true;
    o.metrics.transactionsCommitted.inc();
    for (const [topic, n] of this.produced) o.metrics.recordsProduced.inc({ topic }, n);
    for (const observe of this.onCommitted) {
      try {
        observe();
      } catch (err) {
        o.logger.warn(
          { err: describeError(err) },
          'an output observer threw; the output itself is committed',
        );
      }
    }
    const committedAt = Date.now();
    for (const ts of this.latencies) o.metrics.endToEndLatency.observe(Math.max(0, committedAt - ts) / 1000);
    // Exactly what Kafka now holds: a rewind or a rebuild must start from the committed
    // changelog ends, not from the task's own view, which lags until the Redis apply.
    for (const tp of offsets)
      this.committed.set(tpKey(tp.topic, tp.partition), {
        offset: tp.offset,
        metadata: tp.metadata ?? undefined,
      });
    // Kafka has the transaction; now Redis gets the state it produced, fenced (G2, G3).
    for (const task of this.touchedKeyed) {
      if (!task.hasDirtyState()) continue;
      const key = tpKey(task.topic, task.partition);
      const ends = this.endsFor(task);
      const inputOffset = this.committed.get(key)?.offset ?? 0;
      this.dirtyApplies.push({ task, delta: task.delta(inputOffset, ends), ends });
    }
    this.resetTxn();
    await this.retryApplies();
    this.updateTaskGauges();
  }

  private offsetsToCommit(): TopicPartitionOffsetAndMetadata[] {
    const out: TopicPartitionOffsetAndMetadata[] = [];
    for (const [key, offset] of this.pending) {
      const t = this.tasks.get(key);
      if (!t) continue;
      const snapshot =
        t.kind === 'keyed'
          ? { ...t.task.snapshot(), cl: { ...t.task.changelogOffsets, ...this.endsFor(t.task) } }
          : t.task.snapshot();
      const topic = t.task.topic;
      out.push({ topic, partition: t.task.partition, offset, metadata: JSON.stringify(snapshot) });
    }
    return out;
  }

  private endsFor(task: KeyedTask): Record<string, number> {
    const ends: Record<string, number> = {};
    for (const store of task.caches.keys()) {
      const end = this.changelogEnds.get(tpKey(task.changelogTopic(store), task.partition));
      if (end !== undefined) ends[store] = end;
    }
    return ends;
  }

  /** Applies committed state to Redis; while Redis is away the loop stays here, paused, and nothing is dropped. */
  private async retryApplies(): Promise<void> {
    let backoff = 100;
    while (this.dirtyApplies.length > 0) {
      // Tasks are independent (their own keys, their own fence), so their applies overlap;
      // each task's own stay in commit order, and one that fails holds back the ones after it.
      const chains = new Map<KeyedTask, PendingApply[]>();
      for (const a of this.dirtyApplies) {
        const chain = chains.get(a.task);
        if (chain) chain.push(a);
        else chains.set(a.task, [a]);
      }
      const done = new Set<PendingApply>();
      const results = await Promise.allSettled(
        [...chains.values()].map(async (chain) => {
          for (const next of chain) {
            const outcome = await next.task.backend.apply(next.delta, 'apply');
            done.add(next);
            this.applied(next, outcome);
          }
        }),
      );
      this.dirtyApplies = this.dirtyApplies.filter((a) => !done.has(a));
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (!failure) {
        this.setPaused('redis', false);
      } else {
        const err: unknown = failure.reason;
        this.setPaused('redis', true, describeError(err));
        this.o.logger.warn(
          { err: describeError(err), retryInMs: backoff },
          'redis unavailable; processing paused',
        );
        await this.keepAlive(backoff);
        backoff = Math.min(backoff * 2, 5000);
        if (this.stopping && backoff >= 5000) return;
      }
    }
  }

  private applied(next: PendingApply, outcome: ApplyOutcome): void {
    if (outcome === 'ok') {
      next.task.markApplied(next.ends);
      return;
    }
    // Fenced: another member owns it now (we are the zombie). Lost: Redis dropped its data.
    // Either way the committed transaction is in the changelog; restore sorts it out.
    this.o.logger.warn({ task: `${next.task.topic}/${next.task.partition}`, outcome }, 'state apply refused');
    next.task.discardUncommitted();
    if (outcome === 'lost') this.toRecover.set(next.task, 'rebuild');
  }

  /** While paused, keep polling (no records: everything is paused) so the group does not evict us. */
  private async keepAlive(ms: number): Promise<void> {
    const c = this.consumer;
    if (c) {
      const owned = [...this.tasks.values()].map((t) => ({
        topic: t.task.topic,
        partition: t.task.partition,
      }));
      c.pause(owned);
      await sleep(ms);
      this.o.health.heartbeat();
      c.resume(owned);
    } else {
      await sleep(ms);
    }
  }

  private setPaused(reason: string, paused: boolean, detail?: string): void {
    this.o.metrics.paused.set({ reason }, paused ? 1 : 0);
    this.o.health.pausedReason = paused ? `${reason}: ${detail ?? ''}` : undefined;
  }

  private async abort(cause: unknown): Promise<void> {
    const o = this.o;
    const kind = classifyTxnError(cause);
    if (kind === 'fatal')
      throw new FatalRuntimeError(`transaction failed fatally: ${describeError(cause)}`, codeOf(cause), {
        cause,
      });
    o.logger.warn({ err: describeError(cause) }, 'transaction aborted; rewinding to the last commit');
    o.metrics.transactionsAborted.inc({ reason: isKafkaError(cause) ? String(cause.code) : 'error' });
    if (o.guarantee === 'exactly_once') {
      const p = this.producer!;
      // An abort right after a transaction's first records can send EndTxn before the coordinator
      // has registered their partitions; with no transaction open there, it answers INVALID_TXN_STATE,
      // which librdkafka makes fatal (librdkafka #4849; test/integration/abort-race.test.ts).
      // Delivered records mean registered partitions. Not when Kafka itself asked for the abort:
      // a transaction in an abortable error sends nothing more, and the flush would only time out.
      if (!isKafkaError(cause) && this.undelivered > 0) {
        await kafkaCall((cb) => p.flush(10_000, cb)).catch((err: unknown) =>
          o.logger.warn({ err: describeError(err) }, 'flush before the abort failed; aborting anyway'),
        );
      }
      try {
        await this.retrying('abortTransaction', (cb) => p.abortTransaction(30_000, cb));
      } catch (err) {
        throw new FatalRuntimeError(`abort failed: ${describeError(err)}`, codeOf(err), { cause: err });
      }
    }
    // The aborted records' reports (purged) must not count against the next transaction.
    await this.awaitDeliveries(10_000).catch(() => (this.undelivered = 0));
    await this.rewind();
    this.resetTxn();
    await sleep(100);
  }

  /** Back to the last commit: positions, watermarks, and the cache (Redis already has the committed state). */
  private async rewind(): Promise<void> {
    for (const [key, t] of this.tasks) {
      if (!this.pending.has(key) && !(t.kind === 'keyed' && this.touchedKeyed.has(t.task))) continue;
      const c = this.committed.get(key);
      const restored = c?.metadata
        ? (JSON.parse(c.metadata) as SourceGroupSnapshot & KeyedTaskSnapshot)
        : undefined;
      if (t.kind === 'keyed') {
        t.task.discardUncommitted();
        t.task.restore(restored);
        // Where windows are due is re-read from Redis before the task processes again.
        if (!this.toRecover.has(t.task)) this.toRecover.set(t.task, 'refresh');
      } else {
        t.task.restore(restored);
      }
      const target = c?.offset ?? this.origins.get(key);
      // Nothing committed and nothing consumed: the position is still where the reset put it.
      if (target !== undefined) {
        await this.seek(t.task.topic, t.task.partition, target);
        this.expectFirst.set(key, target);
      }
    }
  }

  /**
   * A seek that did not happen leaves the position after the aborted records, and the next
   * commit would skip them: retry, and if librdkafka keeps refusing, exit so that the
   * restarted member starts from the committed offsets.
   */
  private async seek(topic: string, partition: number, offset: number): Promise<void> {
    const c = this.consumer!;
    for (let attempt = 1; ; attempt++) {
      const err = await new Promise<LibrdKafkaError | null | undefined>((resolve) =>
        c.seek({ topic, partition, offset }, 5000, (e) => resolve(e)),
      );
      if (!err) return;
      if (attempt >= 5)
        throw new FatalRuntimeError(
          `cannot rewind ${topic}/${partition} to offset ${offset}: ${describeError(err)}`,
          codeOf(err),
          { cause: err },
        );
      this.o.logger.warn(
        { topic, partition, offset, err: describeError(err), attempt },
        'seek failed; retrying',
      );
      await sleep(200 * attempt);
    }
  }

  private resetTxn(): void {
    this.txnOpen = false;
    this.pending.clear();
    this.touchedKeyed.clear();
    this.touchedSources.clear();
    this.latencies.length = 0;
    this.produced.clear();
    this.onCommitted.length = 0;
    this.deliveryErrors.length = 0;
  }

  /** Waits until every produced record has its delivery report (they arrive on the event loop). */
  private async awaitDeliveries(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.undelivered > 0) {
      if (Date.now() > deadline)
        throw new Error(`${this.undelivered} delivery reports missing ${timeoutMs} ms after a flush`);
      this.producer?.poll();
      await sleep(1);
    }
  }

  private onDelivery(err: LibrdKafkaError | null, report: DeliveryReport): void {
    if (this.undelivered > 0) this.undelivered--;
    if (err) {
      this.deliveryErrors.push(err);
      return;
    }
    const key = tpKey(report.topic, report.partition);
    if (!this.changelogTopics.has(report.topic)) return;
    const next = report.offset + 1;
    if (next > (this.changelogEnds.get(key) ?? 0)) this.changelogEnds.set(key, next);
  }

  private throwDeliveryErrors(): void {
    const err = this.deliveryErrors[0];
    if (err) throw asError(err);
  }

  // ---- rebalances ---------------------------------------------------------------------

  private onRebalance(err: LibrdKafkaError, assignment: TopicPartition[]): void {
    const consumer = this.consumer;
    if (!consumer) return;
    if (!this.loopRunning) {
      // Shutting down (disconnect() revokes everything) or not started: librdkafka waits for
      // an answer, and there is no transaction left to finish. An assignment that arrives while
      // disconnect() is closing the consumer cannot be taken any more (the client throws
      // "KafkaConsumer is disconnected"); thrown from this callback, that crashed a stopping
      // member in the chaos test, which then hung until killed. The close drops it anyway.
      try {
        if (err.code === -174) consumer.incrementalUnassign(assignment);
        else if (err.code === -175) consumer.incrementalAssign(assignment);
      } catch (e) {
        this.o.logger.warn({ err: describeError(e) }, 'rebalance during shutdown not answered');
      }
      return;
    }
    if (err.code === -175 /* ERR__ASSIGN_PARTITIONS */) {
      // Not assigned yet: onAssign assigns them, at their committed offsets, once their tasks
      // have restored (librdkafka waits for the call and keeps heartbeating). Assigning now and
      // pausing until then costs up to a second: resume() does not wake librdkafka's broker
      // thread, which sleeps up to 1 s when every partition it fetches for is paused
      // (docs/decisions/0007-assign-after-restore.md).
      this.events.push({ kind: 'assign', partitions: assignment, lost: false });
    } else if (err.code === -174 /* ERR__REVOKE_PARTITIONS */) {
      this.events.push({ kind: 'revoke', partitions: assignment, lost: consumer.assignmentLost() });
    } else {
      this.o.logger.error({ err: describeError(err) }, 'rebalance error');
    }
  }

  private async handleEvents(): Promise<void> {
    while (this.events.length > 0) {
      const ev = this.events.shift()!;
      if (ev.kind === 'revoke') await this.onRevoke(ev.partitions, ev.lost);
      else await this.onAssign(ev.partitions);
    }
  }

  private async onRevoke(partitions: TopicPartition[], lost: boolean): Promise<void> {
    const o = this.o;
    o.metrics.rebalances.inc({ kind: lost ? 'lost' : 'revoke' });
    if (this.txnOpen) {
      // Lost partitions belong to someone else already: the commit would be fenced anyway.
      if (lost) await this.abort(new Error('partitions lost'));
      else await this.commit();
    }
    for (const tp of partitions) {
      const key = tpKey(tp.topic, tp.partition);
      this.tasks.delete(key);
      this.committed.delete(key);
      this.origins.delete(key);
      this.early.delete(key);
      this.expectFirst.delete(key);
      o.metrics.watermark.remove({ topic: tp.topic, partition: String(tp.partition) });
      o.metrics.eventTimeLag.remove({ topic: tp.topic, partition: String(tp.partition) });
      o.metrics.consumerLag.remove({ topic: tp.topic, partition: String(tp.partition) });
      o.metrics.openWindows.remove({ topic: tp.topic, partition: String(tp.partition) });
    }
    this.consumer?.incrementalUnassign(partitions);
    o.metrics.assignedPartitions.set(this.tasks.size);
    o.logger.info(
      { partitions: partitions.map((p) => `${p.topic}/${p.partition}`), lost },
      'partitions revoked',
    );
  }

  private drainEventsOnStop(): void {
    for (const ev of this.events.splice(0)) {
      // An assignment librdkafka still waits for is taken and, the loop being over, never read:
      // disconnect() revokes it again.
      if (ev.kind === 'revoke') this.consumer?.incrementalUnassign(ev.partitions);
      else this.consumer?.incrementalAssign(ev.partitions);
    }
  }

  private async onAssign(partitions: TopicPartition[]): Promise<void> {
    const o = this.o;
    o.metrics.rebalances.inc({ kind: 'assign' });
    o.health.groupJoined = true;
    // Counted as restoring from here: counted only after the offsets came back, the service
    // looked ready while it fetched them, and a readiness probe in that gap saw it flap.
    o.health.restoringTasks += partitions.length;
    try {
      const committed = await this.fetchCommitted(partitions);
      for (const tp of partitions) {
        const end = o.metrics.restoreDuration.startTimer();
        await this.createTask(tp, committed.get(tpKey(tp.topic, tp.partition)));
        end();
        o.health.restoringTasks--;
      }
    } catch (err) {
      o.health.restoringTasks = 0;
      throw err;
    }
    // Explicit offsets: fetching starts at once, at the committed offset, without librdkafka
    // fetching it again. A partition never committed starts where auto.offset.reset puts it,
    // unless records of it arrived early: then at the first of those.
    const assignment = partitions.map((tp) => {
      const key = tpKey(tp.topic, tp.partition);
      const first = this.early.get(key);
      this.early.delete(key);
      const committedOffset = this.committed.get(key)?.offset;
      if (first !== undefined)
        o.logger.warn(
          { partition: key, firstEarlyOffset: first, startAt: committedOffset ?? first },
          'records arrived before their task existed; starting at the committed offset',
        );
      const offset = committedOffset ?? first;
      if (offset === undefined) return { topic: tp.topic, partition: tp.partition };
      this.expectFirst.set(key, offset);
      return { topic: tp.topic, partition: tp.partition, offset };
    });
    this.consumer?.incrementalAssign(assignment);
    o.metrics.assignedPartitions.set(this.tasks.size);
    o.logger.info(
      { partitions: partitions.map((p) => `${p.topic}/${p.partition}`) },
      'partitions assigned and ready',
    );
  }

  /**
   * Every partition's committed offset and snapshot, or nothing: a partition whose entry came
   * back as an error (UNSTABLE_OFFSET_COMMIT while a previous owner's transaction is still
   * open, for up to transaction.timeout.ms) must not start as if nothing had been committed.
   */
  private async fetchCommitted(partitions: TopicPartition[]): Promise<Map<string, Committed>> {
    const c = this.consumer!;
    const deadline = Date.now() + this.o.transactionTimeoutMs + 60_000;
    for (let attempt = 1; ; attempt++) {
      try {
        const list = await kafkaCall<Array<TopicPartitionOffsetAndMetadata | Error>>((cb) =>
          c.committed(partitions, 10_000, cb),
        );
        const out = new Map<string, Committed>();
        for (const tp of list) {
          if (tp instanceof Error) throw tp;
          out.set(tpKey(tp.topic, tp.partition), {
            offset: tp.offset >= 0 ? tp.offset : -1,
            metadata: tp.metadata ?? undefined,
          });
        }
        const missing = partitions.filter((tp) => !out.has(tpKey(tp.topic, tp.partition)));
        if (missing.length > 0)
          throw new Error(
            `no committed offset answer for ${missing.map((tp) => `${tp.topic}/${tp.partition}`).join(', ')}`,
          );
        return out;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        this.o.logger.warn(
          { err: describeError(err), attempt },
          'fetching committed offsets failed; retrying',
        );
        this.o.health.heartbeat();
        await sleep(Math.min(500 * attempt, 5000));
      }
    }
  }

  private async createTask(tp: TopicPartition, committed: Committed | undefined): Promise<void> {
    const o = this.o;
    const key = tpKey(tp.topic, tp.partition);
    const snapshot = committed?.metadata ? safeParse(committed.metadata) : undefined;
    if (committed && committed.offset >= 0)
      this.committed.set(key, { offset: committed.offset, metadata: committed.metadata });
    const sources = this.sourceByTopic.get(tp.topic);
    if (sources) {
      const members = sources.map(
        ({ plan, index }) =>
          new SourceTask(
            o.app,
            plan.pipeline,
            plan.sources[index],
            tp.partition,
            () => o.internalPartitions,
            this.hooksByPipeline.get(plan.pipeline)!,
            Date.now(),
            this.limits,
          ),
      );
      const task = new SourceTaskGroup(tp.topic, tp.partition, members);
      task.restore(snapshot as SourceGroupSnapshot | undefined);
      this.tasks.set(key, { kind: 'source', task });
      return;
    }
    const keyed = this.stageByTopic.get(tp.topic);
    if (!keyed) throw new Error(`assigned ${tp.topic}/${tp.partition}, which no pipeline reads`);
    const stores = keyed.stage.aggregates.map((a) => a.store);
    const upstream = this.sourcePartitions.get(keyed.stage.sourceTopic) ?? 1;
    const task = new KeyedTask(
      o.app,
      keyed.plan.pipeline,
      keyed.stage,
      tp.partition,
      upstream,
      o.state.task(tp.topic, tp.partition, stores),
      o.cacheEntriesPerStore,
      this.hooksByPipeline.get(keyed.plan.pipeline)!,
      this.limits,
    );
    task.restore(snapshot as KeyedTaskSnapshot | undefined);
    await this.restoreState(
      task,
      committed?.offset ?? -1,
      (snapshot as KeyedTaskSnapshot | undefined)?.cl ?? {},
      KeyedTask.committedWatermark(snapshot as KeyedTaskSnapshot | undefined),
    );
    await task.refreshDue();
    this.tasks.set(key, { kind: 'keyed', task, pipeline: keyed.plan.pipeline });
  }

  /**
   * Claim, then compare, then catch up (semantics.md pitfall 2): after the claim a zombie's
   * late write is refused, so what we read next is final. Redis behind the committed
   * changelog position: replay the gap. Redis without the task's meta: rebuild from offset 0.
   */
  private async restoreState(
    task: KeyedTask,
    inputOffset: number,
    committedCl: Record<string, number>,
    committedWatermark: number,
  ): Promise<void> {
    const o = this.o;
    for (let attempt = 1; ; attempt++) {
      try {
        const meta = await task.backend.claim();
        const lost = meta.inputOffset === undefined;
        const ahead =
          !lost && Object.entries(meta.changelogOffsets).some(([s, off]) => off > (committedCl[s] ?? 0));
        if (ahead) {
          // Redis claims more than Kafka committed: the group's offsets were reset or the topics recreated.
          throw new FatalRuntimeError(
            `Redis state of ${task.topic}/${task.partition} is ahead of the committed changelog (${JSON.stringify(meta.changelogOffsets)} > ${JSON.stringify(committedCl)}); ` +
              `delete the task's keys or restore the consumer group's offsets`,
            'state-ahead',
          );
        }
        let remaining = 0;
        const plan: Array<{ store: string; from: number; to: number }> = [];
        for (const store of task.caches.keys()) {
          const from = lost ? 0 : (meta.changelogOffsets[store] ?? 0);
          const to = committedCl[store] ?? 0;
          if (to > from) {
            plan.push({ store, from, to });
            remaining += to - from;
          }
        }
        if (lost || plan.length > 0) {
          o.logger.info(
            { task: `${task.topic}/${task.partition}`, lost, plan },
            lost ? 'rebuilding state from the changelog' : 'catching up state from the changelog',
          );
        }
        o.metrics.restoreRemaining.inc(remaining);
        const mode = lost ? 'init' : 'apply';
        for (const { store, from, to } of plan) {
          await this.restore.read(task.changelogTopic(store), task.partition, from, to, async (records) => {
            // The last version of each key wins: APPLY writes puts before deletes, so a key
            // deleted and then written again in one batch must reach it as a put only.
            const latest = new Map<string, string | null>();
            for (const r of records) {
              const k = r.key?.toString() ?? '';
              latest.delete(k);
              latest.set(k, r.value == null ? null : r.value.toString());
            }
            const puts: TaskDelta['stores'][number]['puts'] = [];
            const deletes: string[] = [];
            for (const [k, v] of latest) {
              const entry = v === null ? null : task.restoredEntry(store, v, committedWatermark);
              if (entry === null) deletes.push(k);
              else puts.push([k, entry.text, entry.due]);
            }
            const outcome = await task.backend.apply(
              { inputOffset: -1, stores: [{ store, changelogOffset: 0, puts, deletes }] },
              mode,
            );
            if (outcome !== 'ok')
              throw new Error(`restore of ${task.topic}/${task.partition} refused: ${outcome}`);
            o.metrics.restoreRemaining.dec(records.length);
            o.metrics.restoredRecords.inc(records.length);
          });
        }
        // A rebuild replayed everything into emptied state; a gap replay may leave fired keys behind.
        const leftovers =
          lost || plan.length === 0 ? undefined : await task.closedLeftovers(committedWatermark);
        const final = await task.backend.apply(
          {
            inputOffset: Math.max(0, inputOffset),
            stores: [...task.caches.keys()].map((store) => ({
              store,
              changelogOffset: committedCl[store] ?? 0,
              puts: leftovers?.get(store)?.puts ?? [],
              deletes: leftovers?.get(store)?.deletes ?? [],
            })),
          },
          mode,
        );
        if (final !== 'ok') throw new Error(`restore of ${task.topic}/${task.partition} refused: ${final}`);
        task.changelogOffsets = { ...committedCl };
        return;
      } catch (err) {
        if (err instanceof FatalRuntimeError || attempt >= 30) throw err;
        this.setPaused('redis', true, describeError(err));
        o.logger.warn({ err: describeError(err), attempt }, 'restore failed; retrying');
        await sleep(Math.min(200 * attempt, 5000));
      } finally {
        o.metrics.restoreRemaining.set(0);
      }
    }
  }

  /** Redis lost this task's data while we owned it: claim again and rebuild from the changelog. */
  private async rebuildTask(task: KeyedTask): Promise<void> {
    const key = tpKey(task.topic, task.partition);
    const c = this.committed.get(key);
    const snap = c?.metadata ? (safeParse(c.metadata) as KeyedTaskSnapshot) : undefined;
    for (const cache of task.caches.values()) cache.clear();
    this.o.health.restoringTasks++;
    try {
      // The committed snapshot knows the last transaction's changelog ends even when its apply was refused.
      await this.restoreState(
        task,
        c?.offset ?? -1,
        { ...task.changelogOffsets, ...(snap?.cl ?? {}) },
        KeyedTask.committedWatermark(snap),
      );
      await task.refreshDue();
    } finally {
      this.o.health.restoringTasks--;
    }
  }

  private async loadSourcePartitionCounts(): Promise<void> {
    const { KafkaJS } = await import('./kafka/client.js');
    const admin = new KafkaJS.Kafka(
      librdkafkaConfig({ ...this.o.connection, clientId: `${this.o.app}-meta` }),
    ).admin();
    await admin.connect();
    try {
      const topics = [...this.sourceByTopic.keys()];
      const existing = new Set(await admin.listTopics({ timeout: 10_000 }));
      const missing = topics.filter((t) => !existing.has(t));
      if (missing.length > 0) {
        throw new FatalRuntimeError(
          `source topic(s) missing: ${missing.join(', ')}; create them (npm run topics) before starting`,
          'missing-topic',
        );
      }
      for (const meta of await admin.fetchTopicMetadata({ topics, timeout: 10_000 })) {
        this.sourcePartitions.set(meta.name, meta.partitions.length);
      }
    } finally {
      await admin.disconnect();
    }
  }

  // ---- observability -------------------------------------------------------------------

  private updateTaskGauges(): void {
    const now = Date.now();
    for (const t of this.tasks.values()) {
      const topic = t.task.topic;
      const wm = t.task.watermark.current;
      const labels = { topic, partition: String(t.task.partition) };
      if (t.kind === 'keyed') this.o.metrics.openWindows.set(labels, t.task.openWindows);
      if (!Number.isFinite(wm)) continue;
      this.o.metrics.watermark.set(labels, wm / 1000);
      this.o.metrics.eventTimeLag.set(labels, (now - wm) / 1000);
    }
  }

  private onStats(json: string): void {
    try {
      const stats = JSON.parse(json) as {
        brokers?: Record<string, { state?: string; nodeid?: number }>;
        topics?: Record<
          string,
          { partitions?: Record<string, { consumer_lag?: number; fetch_state?: string }> }
        >;
      };
      // After ALL_BROKERS_DOWN, the first broker connection seen in the statistics makes us
      // connected again, also on a member that has no input to commit.
      if (Object.values(stats.brokers ?? {}).some((b) => (b.nodeid ?? -1) >= 0 && b.state === 'UP'))
        this.o.health.kafkaConnected = true;
      for (const [topic, t] of Object.entries(stats.topics ?? {})) {
        for (const [partition, p] of Object.entries(t.partitions ?? {})) {
          if (partition === '-1' || !this.tasks.has(tpKey(topic, Number(partition)))) continue;
          if (typeof p.consumer_lag === 'number' && p.consumer_lag >= 0)
            this.o.metrics.consumerLag.set({ topic, partition }, p.consumer_lag);
        }
      }
      const keys = new Map<string, number>();
      for (const t of this.tasks.values()) {
        if (t.kind !== 'keyed') continue;
        for (const [store, cache] of t.task.caches) keys.set(store, (keys.get(store) ?? 0) + cache.size);
      }
      for (const [store, n] of keys) this.o.metrics.stateKeys.set({ store }, n);
    } catch {
      // A malformed statistics blob is not worth a log line every five seconds.
    }
  }

  /**
   * librdkafka reports some failures only in its log (SASL and TLS handshakes, for instance);
   * log_level 4 (librdkafka.ts) lets warnings and errors through, and they go to our JSON log.
   */
  private onClientLog(client: string, log: ClientLog): void {
    const message = log.message.replace(/^\[thrd:[^\]]*\]: /, '');
    if (log.severity <= 3) this.lastClientError = message;
    this.o.logger.warn({ client, facility: log.fac, severity: log.severity }, message);
  }

  private onClientError(client: string, err: LibrdKafkaError): void {
    this.lastClientError = describeError(err);
    // The error event carries code -1 for ERR__ALL_BROKERS_DOWN (-187), so the message decides
    // too. Other errors (one transport failure) say nothing about being connected: the statistics
    // or the next committed transaction set it back.
    const all = err.code === -187 || /all broker connections are down/i.test(err.message);
    if (all) this.o.health.kafkaConnected = false;
    if (err.isFatal) {
      this.fatal(
        new FatalRuntimeError(`${client} fatal error: ${describeError(err)}`, String(err.code), {
          cause: err,
        }),
      );
      return;
    }
    this.o.logger.warn({ client, err: describeError(err) }, 'kafka client error');
  }

  private fatal(err: unknown): void {
    const fatal =
      err instanceof FatalRuntimeError
        ? err
        : new FatalRuntimeError(describeError(err), codeOf(err), { cause: err });
    this.o.metrics.fatalErrors.inc({ code: fatal.code });
    const cause = fatal.cause instanceof Error ? fatal.cause : fatal;
    this.o.logger.error(
      { err: fatal.message, code: fatal.code, stack: cause.stack?.split('\n').slice(0, 8).join(' | ') },
      'fatal runtime error; exiting for a restart',
    );
    this.stopping = true;
    this.o.onFatal(fatal);
  }

  // ---- client call helpers -------------------------------------------------------------

  private call(
    name: string,
    fn: (cb: (err: LibrdKafkaError | null | undefined) => void) => void,
  ): Promise<void> {
    return kafkaCall(fn).catch((err: unknown) => {
      if (isKafkaError(err) && (err.isFatal || classifyTxnError(err) === 'fatal')) {
        throw new FatalRuntimeError(`${name} failed fatally: ${describeError(err)}`, String(err.code), {
          cause: err,
        });
      }
      throw err;
    });
  }

  /** Retriable errors (timeouts while a broker is away) retry the same call: a commit resumes where it was. */
  private async retrying(
    name: string,
    fn: (cb: (err: LibrdKafkaError | null | undefined) => void) => void,
  ): Promise<void> {
    let backoff = 100;
    for (;;) {
      try {
        await this.call(name, fn);
        if (backoff > 100) this.setPaused('kafka', false);
        return;
      } catch (err) {
        if (classifyTxnError(err) !== 'retry') throw err;
        this.setPaused('kafka', true, describeError(err));
        this.o.logger.warn(
          { call: name, err: describeError(err), retryInMs: backoff },
          'kafka call will be retried',
        );
        this.o.health.heartbeat();
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }
}

function toInput(m: Message): InputRecord {
  const headers: Record<string, Buffer> = {};
  for (const h of m.headers ?? []) {
    for (const [k, v] of Object.entries(h)) headers[k] = Buffer.isBuffer(v) ? v : Buffer.from(v);
  }
  return {
    topic: m.topic,
    partition: m.partition,
    offset: m.offset,
    key: m.key == null ? null : Buffer.isBuffer(m.key) ? m.key : Buffer.from(m.key),
    value: m.value ?? null,
    timestamp: m.timestamp ?? Date.now(),
    headers,
  };
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function codeOf(err: unknown): string {
  return isKafkaError(err) ? String(err.code) : 'error';
}
