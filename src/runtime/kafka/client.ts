/**
 * The one place the Kafka client is imported. The package is CommonJS, and Node's ESM
 * loader cannot see its named exports, so everything goes through the default export.
 */
import rdkafka from '@confluentinc/kafka-javascript';

export const { KafkaConsumer, Producer, KafkaJS } = rdkafka;
export type { Logger as KafkaJSLogger } from '@confluentinc/kafka-javascript/types/kafkajs.js';
import type {
  KafkaConsumer as RdKafkaConsumer,
  LibrdKafkaError as LibrdKafkaErrorType,
  TopicPartition,
} from '@confluentinc/kafka-javascript';

/** Methods the consumer has at runtime (lib/kafka-consumer.js) that its type declarations omit. */
export interface ConsumerExtras {
  incrementalAssign(assignments: TopicPartition[]): void;
  incrementalUnassign(assignments: TopicPartition[]): void;
  assignmentLost(): boolean;
  rebalanceProtocol(): 'NONE' | 'EAGER' | 'COOPERATIVE';
  setDefaultIsTimeoutOnlyForFirstMessage(value: boolean): void;
}

export type KafkaConsumerType = RdKafkaConsumer & ConsumerExtras;

export type {
  Producer as ProducerType,
  LibrdKafkaError,
  Message,
  TopicPartition,
  TopicPartitionOffset,
  TopicPartitionOffsetAndMetadata,
  ConsumerGlobalConfig,
  ProducerGlobalConfig,
  DeliveryReport,
  MessageHeader,
  Metadata,
} from '@confluentinc/kafka-javascript';

/** Client errors arrive as plain objects in some paths; make them Errors that keep code and flags. */
export function asError(err: LibrdKafkaErrorType | Error): Error & Partial<LibrdKafkaErrorType> {
  if (err instanceof Error) return err;
  return Object.assign(new Error(err.message), err);
}

/** Runs a callback-style client call as a promise, rejecting with an Error. */
export function kafkaCall<T = void>(
  fn: (cb: (err: LibrdKafkaErrorType | null | undefined, result?: T) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) =>
    fn((err, result) => (err ? reject(asError(err)) : resolve(result as T))),
  );
}
