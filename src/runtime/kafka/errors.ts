import type { LibrdKafkaError } from './client.js';

/**
 * How a failed transactional call is handled (librdkafka INTRODUCTION, "Handling errors"):
 * retry the same call, abort and rewind, or give up the process so the orchestrator
 * restarts it with a fresh producer.
 */
export type TxnErrorClass = 'retry' | 'abort' | 'fatal';

// Fenced or unauthorised producers never recover: a newer instance owns the transactional.id.
const FATAL_CODES = new Set([
  -144, // ERR__FENCED
  -150, // ERR__FATAL
  90, // PRODUCER_FENCED
  47, // INVALID_PRODUCER_EPOCH
  49, // INVALID_PRODUCER_ID_MAPPING
  53, // TRANSACTIONAL_ID_AUTHORIZATION_FAILED
  31, // CLUSTER_AUTHORIZATION_FAILED
]);

// The group moved on (a rebalance we lost, a zombie waking up): the transaction cannot
// commit its offsets, so it is aborted and its input re-read by whoever owns it now.
const ABORT_CODES = new Set([
  22, // ILLEGAL_GENERATION
  25, // UNKNOWN_MEMBER_ID
  82, // FENCED_INSTANCE_ID
  27, // REBALANCE_IN_PROGRESS
  -149, // ERR__... (txn requires abort after a failed delivery)
  -152, // ERR__PURGE_QUEUE
]);

export function isKafkaError(err: unknown): err is LibrdKafkaError {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'number';
}

export function classifyTxnError(err: unknown): TxnErrorClass {
  if (!isKafkaError(err)) return 'abort';
  if (err.isFatal || FATAL_CODES.has(err.code)) return 'fatal';
  if (err.isTxnRequiresAbort || ABORT_CODES.has(err.code)) return 'abort';
  if (err.isRetriable || err.code === -185 /* ERR__TIMED_OUT */) return 'retry';
  // librdkafka says "none set: treat as fatal"; a failed abort afterwards still escalates,
  // so abort first and let a truly broken producer prove itself fatal.
  return 'abort';
}

export function describeError(err: unknown): string {
  if (isKafkaError(err)) return `${err.message} (code ${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

/** Raised to end the process: the member exits non-zero and Kubernetes restarts it. */
export class FatalRuntimeError extends Error {
  constructor(
    message: string,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FatalRuntimeError';
  }
}
