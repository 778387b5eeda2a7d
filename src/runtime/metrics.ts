import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The runtime's Prometheus metrics, named by Prometheus conventions: one `stream_` prefix,
 * base units, `_total` counters, and no per-key labels (topic and partition are bounded).
 */
export class RuntimeMetrics {
  readonly recordsConsumed: Counter<'topic'>;
  readonly recordsProduced: Counter<'topic'>;
  readonly consumerLag: Gauge<'topic' | 'partition'>;
  readonly transactionCommitDuration: Histogram;
  readonly transactionsCommitted: Counter;
  readonly transactionsAborted: Counter<'reason'>;
  readonly batchRecords: Histogram;
  readonly processingDuration: Histogram;
  readonly endToEndLatency: Histogram;
  readonly watermark: Gauge<'topic' | 'partition'>;
  readonly eventTimeLag: Gauge<'topic' | 'partition'>;
  readonly lateRecords: Counter<'pipeline' | 'store'>;
  readonly deadLetters: Counter<'pipeline' | 'reason'>;
  readonly stateKeys: Gauge<'store'>;
  readonly redisRoundTrip: Histogram<'op'>;
  readonly restoreDuration: Histogram;
  readonly restoreRemaining: Gauge;
  readonly restoredRecords: Counter;
  readonly rebalances: Counter<'kind'>;
  readonly assignedPartitions: Gauge;
  readonly paused: Gauge<'reason'>;
  readonly fatalErrors: Counter<'code'>;
  readonly limitExceeded: Counter<'limit'>;
  readonly batchBytes: Histogram;
  readonly openWindows: Gauge<'topic' | 'partition'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.recordsConsumed = new Counter({
      name: 'stream_records_consumed_total',
      help: 'Kafka records read from input and repartition topics (a repartition record is a pack of events).',
      labelNames: ['topic'],
      registers,
    });
    this.recordsProduced = new Counter({
      name: 'stream_records_produced_total',
      help: 'Kafka records written to output, repartition (packs of events), changelog, late and dead-letter topics (committed).',
      labelNames: ['topic'],
      registers,
    });
    this.consumerLag = new Gauge({
      name: 'stream_consumer_lag_records',
      help: 'Records between the committed position and the end of each assigned partition (librdkafka statistics).',
      labelNames: ['topic', 'partition'],
      registers,
    });
    this.transactionCommitDuration = new Histogram({
      name: 'stream_transaction_commit_duration_seconds',
      help: 'Time to send offsets and commit one Kafka transaction.',
      buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
      registers,
    });
    this.transactionsCommitted = new Counter({
      name: 'stream_transactions_committed_total',
      help: 'Kafka transactions committed.',
      registers,
    });
    this.transactionsAborted = new Counter({
      name: 'stream_transactions_aborted_total',
      help: 'Kafka transactions aborted, by cause.',
      labelNames: ['reason'],
      registers,
    });
    this.batchRecords = new Histogram({
      name: 'stream_batch_records',
      help: 'Records per poll.',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
      registers,
    });
    this.processingDuration = new Histogram({
      name: 'stream_processing_duration_seconds',
      help: 'Time to process one polled batch, state reads included.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    this.endToEndLatency = new Histogram({
      name: 'stream_end_to_end_latency_seconds',
      help: 'From an input record timestamp to the commit that makes its results visible; once per record, at its last hop.',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.watermark = new Gauge({
      name: 'stream_watermark_timestamp_seconds',
      help: 'Current event-time watermark of each task.',
      labelNames: ['topic', 'partition'],
      registers,
    });
    this.eventTimeLag = new Gauge({
      name: 'stream_event_time_lag_seconds',
      help: 'Wall clock minus the watermark of each task.',
      labelNames: ['topic', 'partition'],
      registers,
    });
    this.lateRecords = new Counter({
      name: 'stream_late_records_total',
      help: 'Records that arrived after their window fired, sent to the late-events topic.',
      labelNames: ['pipeline', 'store'],
      registers,
    });
    this.deadLetters = new Counter({
      name: 'stream_dead_letters_total',
      help: 'Records sent to a dead-letter topic, by reason.',
      labelNames: ['pipeline', 'reason'],
      registers,
    });
    this.stateKeys = new Gauge({
      name: 'stream_state_keys',
      help: 'Keys held in Redis by the tasks this member owns, per store.',
      labelNames: ['store'],
      registers,
    });
    this.redisRoundTrip = new Histogram({
      name: 'stream_redis_roundtrip_duration_seconds',
      help: 'Duration of state-store calls to Redis.',
      labelNames: ['op'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers,
    });
    this.restoreDuration = new Histogram({
      name: 'stream_restore_duration_seconds',
      help: 'Time to make a newly assigned task ready (claim, catch up from the changelog).',
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
      registers,
    });
    this.restoreRemaining = new Gauge({
      name: 'stream_restore_remaining_records',
      help: 'Changelog records still to replay into Redis by tasks being restored.',
      registers,
    });
    this.restoredRecords = new Counter({
      name: 'stream_restored_records_total',
      help: 'Changelog records replayed into Redis.',
      registers,
    });
    this.rebalances = new Counter({
      name: 'stream_rebalances_total',
      help: 'Partition assignment changes, by kind (assign, revoke, lost).',
      labelNames: ['kind'],
      registers,
    });
    this.assignedPartitions = new Gauge({
      name: 'stream_assigned_partitions',
      help: 'Partitions currently assigned to this member.',
      registers,
    });
    this.paused = new Gauge({
      name: 'stream_paused',
      help: '1 while processing is paused, by reason (redis, kafka, state-lost).',
      labelNames: ['reason'],
      registers,
    });
    this.fatalErrors = new Counter({
      name: 'stream_fatal_errors_total',
      help: 'Fatal client errors that made the member exit for a restart.',
      labelNames: ['code'],
      registers,
    });
    this.limitExceeded = new Counter({
      name: 'stream_limit_exceeded_total',
      help:
        'Times a limit was reached, by limit: max-record-bytes and max-open-windows (the record went to the DLQ), ' +
        'max-batch-bytes (the transaction committed early).',
      labelNames: ['limit'],
      registers,
    });
    this.batchBytes = new Histogram({
      name: 'stream_batch_bytes',
      help: 'Input bytes (keys and values) per poll.',
      buckets: [1024, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864],
      registers,
    });
    this.openWindows = new Gauge({
      name: 'stream_open_windows',
      help: 'Windows open in each keyed task (limit: MAX_OPEN_WINDOWS_PER_TASK).',
      labelNames: ['topic', 'partition'],
      registers,
    });
  }
}
