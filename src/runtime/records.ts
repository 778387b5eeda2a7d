/** Record shapes that cross the runtime's parts. */

export interface InputRecord {
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  /** Kafka record timestamp (ms); the end-to-end latency is measured from it. */
  timestamp: number;
  headers: Record<string, Buffer>;
}

export interface OutputRecord {
  topic: string;
  /** Chosen by the runtime for repartition and changelog topics; librdkafka's partitioner otherwise. */
  partition?: number;
  key: string | null;
  value: Buffer | null;
  headers?: Record<string, string>;
  timestamp?: number;
  /** Called once the transaction that carries this record has committed (business metrics). */
  committed?: () => void;
}

/** Where the engine sends what it produces: the transaction in production, a list in the test driver. */
export interface Emitter {
  emit(record: OutputRecord): void;
}

/** Thrown by decoders and validators: the record goes to the dead-letter topic with this reason. */
export class InvalidRecordError extends Error {
  constructor(
    message: string,
    readonly reason: string = 'invalid',
  ) {
    super(message);
    this.name = 'InvalidRecordError';
  }
}

/** Header names the runtime writes; stable, since consumers of the DLQ and late topics read them. */
export const H = {
  errorClass: 'x-error-class',
  errorMessage: 'x-error-message',
  reason: 'x-reason',
  sourceTopic: 'x-source-topic',
  sourcePartition: 'x-source-partition',
  sourceOffset: 'x-source-offset',
  sourceTimestamp: 'x-source-timestamp',
  failedAt: 'x-failed-at',
  eventTime: 'x-event-time',
  watermark: 'x-watermark',
  windowEnd: 'x-window-end',
  store: 'x-store',
  pipeline: 'x-pipeline',
  /** On `record-too-large` dead letters, which carry no key or value: the size that was refused. */
  recordBytes: 'x-record-bytes',
} as const;
