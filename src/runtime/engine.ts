import { decodesJson } from './codecs.js';
import { partitionForKey } from './kafka/partitioner.js';
import { H, InvalidRecordError, type Emitter, type InputRecord, type OutputRecord } from './records.js';
import {
  StoreCache,
  decodeEntry,
  encodeEntry,
  type StoredEntry,
  type TaskBackend,
  type TaskDelta,
} from './state/store.js';
import {
  internalTopics,
  type AggregatePlan,
  type KeyedStagePlan,
  type PlanNode,
  type SourcePlan,
} from './topology.js';
import { CombinedWatermark, SourceWatermark } from './watermarks.js';
import { firstWindowStart, isClosed, type WindowSpec } from './windows.js';

type StoreChanges = Pick<TaskDelta['stores'][number], 'puts' | 'deletes'>;

/**
 * The processing side of the runtime, free of Kafka and Redis clients: the consume loop and
 * the test driver both feed records through these tasks. One task per input partition.
 */

export interface EngineHooks {
  deadLetter(reason: string): void;
  late(store: string): void;
  /** A record was refused because it would break a limit (it also goes to the DLQ). */
  limitExceeded?(limit: LimitName): void;
  /** An event reached a keyed task, with its input record's timestamp (for the end-to-end latency). */
  event?(timestamp: number): void;
}

export type LimitName = 'max-record-bytes' | 'max-open-windows';

/**
 * Bounds that keep one hostile record or one hot key from exhausting memory. Both decisions
 * depend only on the record and on state that is itself committed and restored, so a replay
 * decides the same (G5).
 */
export interface EngineLimits {
  /**
   * Key plus value bytes of an input record; larger ones go to the DLQ unparsed. Also bounds
   * each record the source stage writes (repartition, sinks): JSON.stringify can expand
   * numbers ("1e20" has 4 bytes, its re-encoding 21), and an output the producer refuses
   * would stop the partition.
   */
  maxRecordBytes: number;
  /** Windows open at once in one keyed task, over all its windowed stores. */
  maxOpenWindowsPerTask: number;
}

export const DEFAULT_LIMITS: Readonly<EngineLimits> = {
  maxRecordBytes: 262_144,
  maxOpenWindowsPerTask: 1_000_000,
};

const MAX_ERROR_MESSAGE = 1024;

/** Watermarks in headers are text; -Infinity ("no watermark yet") has no JSON form. */
export const encodeWatermark = (w: number): string => (Number.isFinite(w) ? String(w) : '-inf');
const finiteOrNull = (n: number): number | null => (Number.isFinite(n) ? n : null);
const nullToNegInf = (n: number | null): number => (n === null ? Number.NEGATIVE_INFINITY : n);

function deadLetter(
  record: InputRecord,
  err: unknown,
  emitter: Emitter,
  dlqTopic: string,
  origin: { topic: string; partition: number; offset: number } = record,
  value: Buffer | null = record.value,
  pipeline?: string,
  extraHeaders: Record<string, string> = {},
): string {
  const errorClass = err instanceof Error ? err.name : typeof err;
  const reason = err instanceof InvalidRecordError ? err.reason : 'processing-error';
  const message = (err instanceof Error ? err.message : String(err)).slice(0, MAX_ERROR_MESSAGE);
  emitter.emit({
    topic: dlqTopic,
    key: record.key === null ? null : record.key.toString('utf8'),
    value,
    timestamp: record.timestamp,
    headers: {
      [H.errorClass]: errorClass,
      [H.errorMessage]: message,
      [H.reason]: reason,
      [H.sourceTopic]: origin.topic,
      [H.sourcePartition]: String(origin.partition),
      [H.sourceOffset]: String(origin.offset),
      [H.sourceTimestamp]: String(record.timestamp),
      ...(pipeline ? { [H.pipeline]: pipeline } : {}),
      ...extraHeaders,
    },
  });
  return reason;
}

export interface SourceTaskSnapshot {
  v: 1;
  /** [max event time, idle floor], null for "none". */
  w: [number | null, number | null];
  /** Last watermark broadcast to the repartition topics. */
  b: number | null;
}

/** Stage A: decode, validate, event time, stateless steps, sinks and repartitioning. */
export class SourceTask {
  readonly watermark: SourceWatermark;
  private broadcastWatermark = Number.NEGATIVE_INFINITY;
  private readonly dlqTopic: string;
  private readonly repartitions: Hop[];
  private readonly hopByStage = new Map<KeyedStagePlan, Hop>();
  /** The first line of every pack this task writes: where its items come from. */
  private readonly packHeader: Buffer;
  /** The source's values are its records' JSON as they are: the hop may carry those bytes. */
  private readonly rawJson: boolean;
  /** Processing time of the last record or idle decision, for the idle timeout. */
  lastActivity: number;
  /** A record's outputs, emitted only once all of them were made: one array for every record. */
  private readonly out: Array<OutputRecord | PackItem> = [];

  constructor(
    readonly app: string,
    readonly pipeline: string,
    readonly plan: SourcePlan,
    readonly partition: number,
    repartitionPartitions: (stage: KeyedStagePlan) => number,
    private readonly hooks: EngineHooks,
    now: number,
    private readonly limits: Readonly<EngineLimits> = DEFAULT_LIMITS,
  ) {
    this.watermark = new SourceWatermark(plan.options.outOfOrdernessMs);
    this.dlqTopic = internalTopics.dlq(plan.topic);
    this.repartitions = collectStages(plan.children).map((stage) => {
      const partitions = repartitionPartitions(stage);
      const hop: Hop = {
        topic: internalTopics.repartition(app, pipeline, stage.name),
        partitions,
        packs: new Array<Pack | undefined>(partitions).fill(undefined),
        buffers: new Array<Buffer | undefined>(partitions).fill(undefined),
      };
      this.hopByStage.set(stage, hop);
      return hop;
    });
    this.packHeader = Buffer.from(`${JSON.stringify([partition, plan.topic] satisfies PackHeader)}\n`);
    this.rawJson = decodesJson(plan.options.decode);
    this.lastActivity = now;
  }

  process(record: InputRecord, emitter: Emitter, now: number): void {
    this.lastActivity = now;
    const out = this.out;
    out.length = 0;
    try {
      if (record.value === null) throw new InvalidRecordError('record value is null', 'null-value');
      if (this.tooLarge(record, emitter)) return;
      const value = this.plan.options.decode(record.value);
      const eventTime = this.plan.options.timestamp(value);
      if (!Number.isFinite(eventTime))
        throw new InvalidRecordError('event time is not a valid instant', 'invalid-event-time');
      // The watermark before this record judges it downstream (Flink's order: record, then watermark).
      const before = this.watermark.current;
      this.walk(
        this.plan.children,
        value,
        record,
        eventTime,
        before,
        out,
        this.rawJson ? record.value : undefined,
      );
      this.watermark.observe(eventTime);
    } catch (err) {
      this.hooks.deadLetter(
        deadLetter(record, err, emitter, this.dlqTopic, record, record.value, this.pipeline),
      );
      return;
    }
    for (const o of out) {
      if ('hop' in o) this.append(o, emitter);
      else emitter.emit(o);
    }
  }

  /**
   * Items for one repartition partition travel together, one record per PACK_BYTES: the
   * keyed stage sees none of them before this transaction commits anyway, so a pack costs no
   * latency, and it spares the hop a produce, a delivery report and a consume per event.
   * Written as they come into a buffer of the partition's own, kept from pack to pack and grown
   * by doubling up to PACK_BYTES: as large as the largest pack so far, not PACK_BYTES for every
   * pair of source and hop partition, and no new buffer per pack but the copy that is emitted.
   */
  private append(item: PackItem, emitter: Emitter): void {
    const { hop, partition, key, body } = item;
    // At most, in bytes: the ItemMeta line (four numbers of at most 24 characters, the key with
    // every character escaped, brackets and commas), then the body (a character is at most
    // three bytes in UTF-8), and two newlines.
    const need = 4 * 24 + 6 * key.length + 8 + (typeof body === 'string' ? body.length * 3 : body.length) + 2;
    let pack = hop.packs[partition];
    if (pack && pack.len + need > PACK_BYTES) {
      this.emitPack(hop, partition, pack, emitter);
      pack = undefined;
    }
    const len = pack?.len ?? this.packHeader.length;
    let buf = hop.buffers[partition];
    if (buf === undefined || len + need > buf.length) {
      const grown = Buffer.allocUnsafe(
        Math.max(PACK_START_BYTES, len + need, Math.min(PACK_BYTES, 2 * (buf?.length ?? 0))),
      );
      if (pack && buf) buf.copy(grown, 0, 0, pack.len);
      hop.buffers[partition] = buf = grown;
    }
    if (!pack) {
      this.packHeader.copy(buf);
      hop.packs[partition] = pack = { len, timestamp: item.timestamp };
    }
    // The ItemMeta line, the same bytes as JSON.stringify of it, written without making it a string.
    let at = pack.len;
    buf[at++] = 0x5b; // [
    at = Number.isFinite(item.watermark) ? writeNumber(buf, at, item.watermark) : at + buf.write('null', at);
    buf[at++] = 0x2c; // ,
    at = writeNumber(buf, at, item.eventTime);
    buf[at++] = 0x2c;
    at = writeNumber(buf, at, item.offset);
    buf[at++] = 0x2c;
    at = writeNumber(buf, at, item.timestamp);
    buf[at++] = 0x2c;
    if (plainJsonString(key)) {
      buf[at++] = 0x22; // "
      at += buf.write(key, at);
      buf[at++] = 0x22;
    } else at += buf.write(JSON.stringify(key), at);
    buf[at++] = 0x5d; // ]
    buf[at++] = NEWLINE;
    at += typeof body === 'string' ? buf.write(body, at) : body.copy(buf, at);
    buf[at++] = NEWLINE;
    pack.len = at;
    if (item.timestamp > pack.timestamp) pack.timestamp = item.timestamp;
  }

  private emitPack(hop: Hop, partition: number, pack: Pack, emitter: Emitter): void {
    hop.packs[partition] = undefined;
    const buf = hop.buffers[partition]!;
    emitter.emit({
      topic: hop.topic,
      partition,
      key: PACK_KEY,
      // A copy: the partition's buffer takes the next pack.
      value: Buffer.from(buf.subarray(0, pack.len)),
      timestamp: pack.timestamp,
    });
    // One event alone may have needed more; the buffer keeps no more than a pack of many needs.
    if (buf.length > PACK_BYTES) hop.buffers[partition] = undefined;
  }

  /** Writes the open packs: before a watermark control record, which must follow them, and at commit. */
  flush(emitter: Emitter): void {
    for (const hop of this.repartitions)
      for (let p = 0; p < hop.partitions; p++) {
        const pack = hop.packs[p];
        if (pack) this.emitPack(hop, p, pack, emitter);
      }
  }

  private dropPacks(): void {
    for (const hop of this.repartitions) hop.packs.fill(undefined);
  }

  /**
   * Checked before any parsing, so a huge record costs no more than its bytes. Its DLQ copy
   * keeps neither key nor value: the copy must fit the DLQ topic and the producer's
   * message.max.bytes whatever the input topic allowed, and the original stays readable at
   * x-source-topic/partition/offset until retention removes it.
   */
  private tooLarge(record: InputRecord, emitter: Emitter): boolean {
    const bytes = record.value!.length + (record.key?.length ?? 0);
    const max = this.limits.maxRecordBytes;
    if (bytes <= max) return false;
    this.hooks.limitExceeded?.('max-record-bytes');
    const err = new InvalidRecordError(
      `record of ${bytes} bytes (key and value) is over MAX_RECORD_BYTES=${max}; not parsed, key and value dropped`,
      'record-too-large',
    );
    this.hooks.deadLetter(
      deadLetter({ ...record, key: null }, err, emitter, this.dlqTopic, record, null, this.pipeline, {
        [H.recordBytes]: String(bytes),
      }),
    );
    return true;
  }

  private encodeOutput(value: unknown, topic: string): string {
    const text = JSON.stringify(value);
    // Characters bound bytes from below (at most 3 bytes each in UTF-8): count only when it may matter.
    const max = this.limits.maxRecordBytes;
    const bytes = text.length * 3 <= max ? text.length : Buffer.byteLength(text);
    if (bytes > max) {
      this.hooks.limitExceeded?.('max-record-bytes');
      throw new InvalidRecordError(
        `its record for ${topic} would be ${bytes} bytes, over MAX_RECORD_BYTES=${max}`,
        'record-too-large',
      );
    }
    return text;
  }

  private walk(
    nodes: PlanNode[],
    value: unknown,
    record: InputRecord,
    eventTime: number,
    wm: number,
    out: Array<OutputRecord | PackItem>,
    /** The record's bytes while they are still the JSON of `value`: above any step. */
    raw: Buffer | undefined,
  ): void {
    for (const node of nodes) {
      switch (node.kind) {
        case 'step':
          for (const v of node.step(value))
            this.walk(node.children, v, record, eventTime, wm, out, undefined);
          break;
        case 'sink': {
          const observe = node.observe;
          out.push({
            topic: node.topic,
            key: node.key(value),
            value: Buffer.from(this.encodeOutput(node.value(value), node.topic)),
            timestamp: record.timestamp,
            ...(observe ? { committed: () => observe(value) } : {}),
          });
          break;
        }
        case 'repartition': {
          const key = node.key(value);
          if (typeof key !== 'string' || key.length === 0) {
            throw new InvalidRecordError(
              `group key must be a non-empty string, got ${JSON.stringify(key)}`,
              'invalid-key',
            );
          }
          const hop = this.hopByStage.get(node.stage)!;
          // The bytes as they came spare encoding the value again, and are what the late topic
          // should get; not with a newline, which ends a line of the pack, or a byte order mark,
          // which the decoder dropped and JSON.parse refuses.
          const body =
            raw !== undefined && raw.indexOf(NEWLINE) < 0 && !hasBom(raw)
              ? raw
              : this.encodeOutput(value, hop.topic);
          out.push({
            hop,
            partition: partitionForKey(key, hop.partitions),
            watermark: wm,
            eventTime,
            offset: record.offset,
            timestamp: record.timestamp,
            key,
            body,
          });
          break;
        }
      }
    }
  }

  /**
   * At each commit: tell every downstream task how far this partition's watermark got, so
   * windows fire even on partitions that receive none of its records. Written in the same
   * transaction, so it is part of the log a replay reads.
   */
  broadcast(emitter: Emitter, timestamp: number, idle = false): void {
    this.flush(emitter);
    const wm = this.watermark.current;
    if (!idle && !(wm > this.broadcastWatermark)) return;
    this.broadcastWatermark = Math.max(this.broadcastWatermark, wm);
    const meta: ControlMeta = [this.partition, finiteOrNull(wm), idle ? 1 : 0];
    const control = Buffer.from(JSON.stringify(meta));
    for (const r of this.repartitions) {
      for (let p = 0; p < r.partitions; p++) {
        emitter.emit({ topic: r.topic, partition: p, key: null, value: control, timestamp });
      }
    }
  }

  /**
   * The idle timeout's decision, taken on processing time and therefore written to Kafka
   * before it takes effect: the watermark advances by the idle time, and downstream tasks
   * stop waiting for this partition until it has records again.
   */
  idleAdvance(emitter: Emitter, now: number, idleTimeoutMs: number): boolean {
    if (this.repartitions.length === 0 || now - this.lastActivity < idleTimeoutMs) return false;
    const base = this.watermark.current;
    if (Number.isFinite(base)) this.watermark.advanceTo(base + (now - this.lastActivity));
    this.lastActivity = now;
    this.broadcast(emitter, now, true);
    return true;
  }

  snapshot(): SourceTaskSnapshot {
    const [max, floor] = this.watermark.snapshot();
    return { v: 1, w: [finiteOrNull(max), finiteOrNull(floor)], b: finiteOrNull(this.broadcastWatermark) };
  }

  /** Back to a committed snapshot: the open packs belong to the transaction that is gone. */
  restore(s: SourceTaskSnapshot | undefined): void {
    this.dropPacks();
    if (!s) {
      this.watermark.restore([Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]);
      this.broadcastWatermark = Number.NEGATIVE_INFINITY;
      return;
    }
    this.watermark.restore([nullToNegInf(s.w[0]), nullToNegInf(s.w[1])]);
    this.broadcastWatermark = nullToNegInf(s.b);
  }
}

export interface SourceGroupSnapshot {
  v: 1;
  /** Per pipeline reading this partition. */
  p: Record<string, SourceTaskSnapshot>;
}

/**
 * One input partition as the consume loop sees it: every pipeline that reads the topic runs
 * its own SourceTask on each record, with its own decoder, watermark and dead letters (marked
 * with the pipeline in a header). Their snapshots commit together with the partition's offset.
 */
export class SourceTaskGroup {
  /**
   * Whether a record's results become visible when this task's transaction commits: some
   * pipeline writes straight to a sink. Otherwise they do only downstream, after the keyed stage.
   */
  readonly writesSinks: boolean;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly members: readonly SourceTask[],
  ) {
    this.writesSinks = members.some((m) => hasSink(m.plan.children));
  }

  process(record: InputRecord, emitter: Emitter, now: number): void {
    for (const m of this.members) m.process(record, emitter, now);
  }

  broadcast(emitter: Emitter, timestamp: number): void {
    for (const m of this.members) m.broadcast(emitter, timestamp);
  }

  /** Each member's own idle timeout; true if any of them wrote an idle decision. */
  idleTick(emitter: Emitter, now: number): boolean {
    let any = false;
    for (const m of this.members) {
      const idle = m.plan.options.idleTimeoutMs;
      if (idle !== undefined && m.idleAdvance(emitter, now, idle)) any = true;
    }
    return any;
  }

  /** The lowest of the members' watermarks, for the metrics. */
  get watermark(): { current: number } {
    return { current: Math.min(...this.members.map((m) => m.watermark.current)) };
  }

  snapshot(): SourceGroupSnapshot {
    return { v: 1, p: Object.fromEntries(this.members.map((m) => [m.pipeline, m.snapshot()])) };
  }

  restore(s: SourceGroupSnapshot | undefined): void {
    for (const m of this.members) m.restore(s?.p?.[m.pipeline]);
  }
}

function hasSink(nodes: PlanNode[]): boolean {
  return nodes.some((n) => n.kind === 'sink' || (n.kind === 'step' && hasSink(n.children)));
}

function collectStages(nodes: PlanNode[], acc: KeyedStagePlan[] = []): KeyedStagePlan[] {
  for (const n of nodes) {
    if (n.kind === 'repartition' && !acc.includes(n.stage)) acc.push(n.stage);
    if (n.kind === 'step') collectStages(n.children, acc);
  }
  return acc;
}

/**
 * The repartition topic's records (docs/decisions/0010-repartition-packs.md). A data record is
 * a pack: the events one source task sent to one partition in one transaction, in order, up
 * to PACK_BYTES. One record per event cost the hop a produce, a delivery report, a consume and
 * the broker's work for each; the keyed stage reads none of them before the transaction
 * commits, so packing them delays nothing. Lines, each ending in a newline (JSON.stringify
 * never writes a raw one, and an event's own bytes are used only without one):
 *
 *   pack:    [upstream partition, source topic]                                  (key = "pack")
 *            then per event: [watermark before it or null, event time, source offset,
 *                             input timestamp, group key]
 *                            its JSON
 *   control: [upstream partition, watermark or null, idle 0|1], no newline       (key = null)
 *
 * The upstream partition is also the source partition: a source task reads one. The keyed
 * task passes an event's JSON on to the late and dead-letter topics as it came.
 */
type PackHeader = [number, string];
type ItemMeta = [number | null, number, number, number, string];
type ControlMeta = [number, number | null, 0 | 1];

const PACK_KEY = 'pack';
/**
 * A pack closes before it would pass this many bytes, unless it is one event alone, which
 * MAX_RECORD_BYTES bounds: packs stay far below the producer's and the topic's 1 MB limits,
 * and a partition's pack is not held back for long.
 */
export const PACK_BYTES = 65_536;
const PACK_START_BYTES = 4096;
const NEWLINE = 0x0a;
const hasBom = (b: Buffer): boolean => b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;

/** An open pack: its bytes are the first `len` of its hop partition's buffer. */
interface Pack {
  len: number;
  timestamp: number;
}

/** One repartition topic as a source task writes it: the open pack of each partition. */
interface Hop {
  topic: string;
  partitions: number;
  packs: Array<Pack | undefined>;
  /** Per partition, the buffer its packs are written into (see SourceTask.append). */
  buffers: Array<Buffer | undefined>;
}

/** An event on its way into a pack: its ItemMeta fields, and its JSON. */
interface PackItem {
  hop: Hop;
  partition: number;
  /** The source task's watermark before the event; -Infinity for none (null in the pack). */
  watermark: number;
  eventTime: number;
  offset: number;
  /** The input record's timestamp. */
  timestamp: number;
  key: string;
  /** The event's JSON: the input record's own bytes, or encoded again. */
  body: string | Buffer;
}

/** Whether JSON.stringify writes a string as it is between quotes: nothing to escape, no surrogate. */
function plainJsonString(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return false;
  }
  return true;
}

/**
 * Writes a finite number as JSON.stringify would, at `at`; returns the end. Integers up to
 * 2^53 digit by digit, the rest (fractions, exponents) through their string.
 */
function writeNumber(buf: Buffer, at: number, n: number): number {
  if (!Number.isSafeInteger(n)) return at + buf.write(JSON.stringify(n), at);
  if (n < 0) {
    buf[at++] = 0x2d; // -
    n = -n;
  }
  let digits = 1;
  for (let p = 10; p <= n; p *= 10) digits++;
  const end = at + digits;
  for (let i = end - 1; i >= at; i--) {
    buf[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return end;
}

interface RepartitionData {
  key: string;
  eventTime: number;
  /** The input record's timestamp, which outputs inherit, as they would without the hop. */
  timestamp: number;
  /** Where the event came from: the source topic, partition and offset (the data is its own origin). */
  topic: string;
  partition: number;
  offset: number;
  body: string;
}

interface RepartitionItem {
  upstream: number;
  watermark: number;
  idle: boolean;
  /** Undefined for a watermark control record. */
  data: RepartitionData | undefined;
}

const isOptionalNumber = (v: unknown): v is number | null => v === null || typeof v === 'number';

/** The events (or the control item) of one repartition record; throws for any other shape. */
function readRepartitionRecord(record: InputRecord, upstreamPartitions: number): RepartitionItem[] {
  const invalid = (what: string) => new InvalidRecordError(what, 'invalid-repartition-record');
  const value = record.value;
  if (value === null) throw invalid('repartition record without a value');
  const validUpstream = (u: unknown): u is number =>
    Number.isInteger(u) && (u as number) >= 0 && (u as number) < upstreamPartitions;
  if (record.key === null) {
    let meta: unknown;
    try {
      meta = JSON.parse(value.toString('utf8'));
    } catch {
      meta = null;
    }
    if (!Array.isArray(meta) || meta.length !== 3 || !validUpstream(meta[0]) || !isOptionalNumber(meta[1]))
      throw invalid('not a watermark control record');
    const [upstream, watermark, idle] = meta as ControlMeta;
    return [{ upstream, watermark: nullToNegInf(watermark), idle: idle === 1, data: undefined }];
  }
  const notAPack = () => invalid('not a repartition pack');
  const text = value.toString('utf8');
  const line = (from: number): [unknown, number] => {
    const nl = text.indexOf('\n', from);
    if (nl < 0) throw notAPack();
    try {
      return [JSON.parse(text.slice(from, nl)), nl + 1];
    } catch {
      throw notAPack();
    }
  };
  const [header, first] = line(0);
  if (
    !Array.isArray(header) ||
    header.length !== 2 ||
    !validUpstream(header[0]) ||
    typeof header[1] !== 'string'
  )
    throw notAPack();
  const [upstream, topic] = header as PackHeader;
  const items: RepartitionItem[] = [];
  for (let pos = first; pos < text.length;) {
    const [meta, bodyAt] = line(pos);
    const nl = text.indexOf('\n', bodyAt);
    if (
      nl < 0 ||
      !Array.isArray(meta) ||
      meta.length !== 5 ||
      !isOptionalNumber(meta[0]) ||
      !Number.isFinite(meta[1]) ||
      !Number.isInteger(meta[2]) ||
      !Number.isFinite(meta[3]) ||
      typeof meta[4] !== 'string' ||
      meta[4].length === 0
    )
      throw notAPack();
    const [watermark, eventTime, offset, timestamp, key] = meta as ItemMeta;
    items.push({
      upstream,
      watermark: nullToNegInf(watermark),
      idle: false,
      data: {
        key,
        eventTime,
        timestamp,
        topic,
        partition: upstream,
        offset,
        body: text.slice(bodyAt, nl),
      },
    });
    pos = nl + 1;
  }
  if (items.length === 0) throw notAPack();
  return items;
}

export interface KeyedTaskSnapshot {
  v: 1;
  w: { w: Array<number | null>; i: number[]; c: number | null };
  /** Changelog end offset per store after the last committed transaction. */
  cl: Record<string, number>;
}

type WindowMap = Record<string, unknown>;

/** Inserts into an ascending array; new windows usually come last, so look there first. */
function insertSorted(a: number[], x: number): void {
  if (a.length === 0 || a[a.length - 1] < x) {
    a.push(x);
    return;
  }
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  a.splice(lo, 0, x);
}

/** An aggregate of a keyed task, and what processRecord computed for it from the current record. */
interface Staged {
  readonly agg: AggregatePlan;
  readonly cache: StoreCache;
  /** Running aggregates: the keys changed since the last commit. */
  readonly changed: Set<string> | undefined;
  entry: StoredEntry | undefined;
  /** Running aggregates: the key's next value. */
  next: unknown;
  /** Windowed ones: window start and its next accumulator, by turns, for the windows still open. */
  readonly updates: unknown[];
  /** Windowed ones: the key's earliest due after the record, and the end of its last window. */
  due: number;
  lastEnd: number;
}

/** The one own key of an object, or undefined when it has none or more. */
function soleKey(o: WindowMap): string | undefined {
  let only: string | undefined;
  for (const k in o) {
    if (only !== undefined) return undefined;
    only = k;
  }
  return only;
}

/** Stage B: one partition of a repartition topic, with its aggregates and their stores. */
export class KeyedTask {
  readonly watermark: CombinedWatermark;
  readonly caches = new Map<string, StoreCache>();
  private readonly changedTableKeys = new Map<string, Set<string>>();
  private readonly windowSpecs = new Map<string, WindowSpec>();
  /** One per aggregate, reused by every record: what processRecord computed, until all accepted it. */
  private readonly staged: Staged[] = [];
  /** Entries as the changelog got them in this commit, per store: Redis gets the same text, encoded once. */
  private readonly encoded = new Map<string, Map<string, string>>();
  private nextDue = Number.POSITIVE_INFINITY;
  /** Windows open in this task's state, committed or not; recounted from the backend by refreshDue. */
  private open = 0;
  private readonly dlqTopic: string;
  private readonly lateTopic: string;
  readonly topic: string;
  changelogOffsets: Record<string, number> = {};

  constructor(
    readonly app: string,
    readonly pipeline: string,
    readonly stage: KeyedStagePlan,
    readonly partition: number,
    upstreamPartitions: number,
    readonly backend: TaskBackend,
    cacheEntries: number,
    private readonly hooks: EngineHooks,
    private readonly limits: Readonly<EngineLimits> = DEFAULT_LIMITS,
  ) {
    this.watermark = new CombinedWatermark(upstreamPartitions);
    this.topic = internalTopics.repartition(app, pipeline, stage.name);
    this.dlqTopic = internalTopics.dlq(stage.sourceTopic);
    this.lateTopic = internalTopics.late(stage.sourceTopic);
    for (const agg of stage.aggregates) {
      this.caches.set(agg.store, new StoreCache(agg.store, backend, cacheEntries));
      const changed = agg.window ? undefined : new Set<string>();
      if (changed) this.changedTableKeys.set(agg.store, changed);
      else this.windowSpecs.set(agg.store, agg.window!);
      this.staged.push({
        agg,
        cache: this.caches.get(agg.store)!,
        changed,
        entry: undefined,
        next: undefined,
        updates: [],
        due: Number.POSITIVE_INFINITY,
        lastEnd: 0,
      });
    }
  }

  changelogTopic(store: string): string {
    return internalTopics.changelog(this.app, this.pipeline, store);
  }

  /** Windows open in this task now, for the metrics and the MAX_OPEN_WINDOWS_PER_TASK limit. */
  get openWindows(): number {
    return this.open;
  }

  /**
   * Re-reads where windows are due, and how many are open, from the backend: after a restore,
   * a rebuild, or an abort, when the backend holds exactly the committed state. The open-window
   * count is a function of that state, so the limit decides the same on a replay (G5). Counting
   * reads every entry of the windowed stores once; these events are rare. A store that fits in
   * the cache is taken in whole, so that firing its windows needs no round trip (StoreCache.adopt).
   */
  async refreshDue(): Promise<void> {
    this.nextDue = Number.POSITIVE_INFINITY;
    let open = 0;
    try {
      for (const agg of this.stage.aggregates) {
        if (!agg.window) continue;
        const cache = this.caches.get(agg.store)!;
        let whole: Array<[string, StoredEntry]> | undefined = [];
        for await (const chunk of this.backend.entries(agg.store))
          for (const [key, text] of chunk) {
            const entry = decodeEntry(text);
            open += Object.keys(entry.value as WindowMap).length;
            if (whole && whole.length < cache.maxEntries) whole.push([key, entry]);
            else whole = undefined;
          }
        cache.adopt(whole);
        // After the scan, which is not fenced: a task fenced or lost by now is refused here.
        this.nextDue = Math.min(this.nextDue, await this.backend.nextDue(agg.store, this.watermark.current));
      }
    } catch (err) {
      // What the scan took in may be another owner's state, or half of a lost one.
      for (const c of this.caches.values()) c.clear();
      throw err;
    }
    this.open = open;
  }

  /** Each record's items, or why it is not one of ours; read once, by prefetch or by processPrefetched. */
  private readonly decoded = new WeakMap<
    readonly InputRecord[],
    Array<RepartitionItem[] | InvalidRecordError>
  >();

  private decode(records: readonly InputRecord[]): Array<RepartitionItem[] | InvalidRecordError> {
    let out = this.decoded.get(records);
    if (out) return out;
    out = records.map((record) => {
      try {
        return readRepartitionRecord(record, this.watermark.upstreamPartitions);
      } catch (err) {
        if (err instanceof InvalidRecordError) return err;
        throw err;
      }
    });
    this.decoded.set(records, out);
    return out;
  }

  /** Loads every key of these records' events that the caches lack. */
  async prefetch(records: readonly InputRecord[]): Promise<void> {
    const keys = new Set<string>();
    for (const items of this.decode(records)) {
      if (items instanceof InvalidRecordError) continue;
      for (const item of items) if (item.data) keys.add(item.data.key);
    }
    await Promise.all([...this.caches.values()].map((cache) => cache.prefetch(keys)));
  }

  async process(records: readonly InputRecord[], emitter: Emitter): Promise<void> {
    await this.prefetch(records);
    await this.processPrefetched(records, emitter);
  }

  /** process() for records whose keys prefetch() has loaded: the loop loads all tasks' at once. */
  async processPrefetched(records: readonly InputRecord[], emitter: Emitter): Promise<void> {
    const decoded = this.decode(records);
    this.decoded.delete(records);
    for (let i = 0; i < records.length; i++) {
      const record = records[i];
      const items = decoded[i];
      if (items instanceof InvalidRecordError) {
        // Only a foreign writer to this internal topic gets here; its record cannot move the watermark.
        this.hooks.deadLetter(
          deadLetter(record, items, emitter, this.dlqTopic, record, record.value, this.pipeline),
        );
        continue;
      }
      for (const item of items) {
        this.watermark.update(item.upstream, item.watermark, item.idle);
        const data = item.data;
        // Checked here, not in fireDue: an await per event costs a microtask turn.
        if (this.watermark.current >= this.nextDue)
          await this.fireDue(emitter, data?.timestamp ?? record.timestamp);
        if (!data) continue;
        this.hooks.event?.(data.timestamp);
        this.processRecord(data, emitter);
      }
    }
  }

  private processRecord(data: RepartitionData, emitter: Emitter): void {
    const { body, eventTime, key } = data;
    const staged = this.staged;
    let created = 0;
    let watermark: number;
    try {
      const value: unknown = JSON.parse(body);
      watermark = this.watermark.current;
      for (const s of staged) {
        const agg = s.agg;
        const entry = s.cache.get(key);
        s.entry = entry;
        if (!agg.window) {
          s.next = agg.add(entry === undefined ? agg.init() : entry.value, value);
          continue;
        }
        // The entry's map is updated in place, but only once every aggregate accepted the record:
        // a key with many open windows (a lagging upstream partition holds the watermark back)
        // would otherwise cost a copy of every window per record. Nothing else holds the map: the
        // cache decoded it for itself, and an abort drops the dirty slot and reloads the committed value.
        const windows = entry?.value as WindowMap | undefined;
        const { sizeMs, advanceMs } = agg.window;
        const updates = s.updates;
        updates.length = 0;
        let due = entry?.due ?? Number.POSITIVE_INFINITY;
        let lastEnd = 0;
        for (let start = firstWindowStart(agg.window, eventTime); start <= eventTime; start += advanceMs) {
          const end = start + sizeMs;
          lastEnd = end;
          if (isClosed({ end }, watermark)) continue;
          const k = String(start);
          const open = windows !== undefined && k in windows;
          if (!open) created++;
          updates.push(k, agg.add(open ? windows[k] : agg.init(), value));
          if (end - 1 < due) due = end - 1;
        }
        s.due = due;
        s.lastEnd = lastEnd;
      }
      if (created > 0) {
        // Refused before anything is written: the record goes to the DLQ whole, for every aggregate.
        const max = this.limits.maxOpenWindowsPerTask;
        if (this.open + created > max) {
          this.hooks.limitExceeded?.('max-open-windows');
          throw new InvalidRecordError(
            `task ${this.topic}/${this.partition} has ${this.open} open windows; key ${JSON.stringify(key.slice(0, 64))} ` +
              `would open ${created} more, over MAX_OPEN_WINDOWS_PER_TASK=${max}`,
            'too-many-open-windows',
          );
        }
      }
    } catch (err) {
      const event: InputRecord = {
        topic: data.topic,
        partition: data.partition,
        offset: data.offset,
        key: Buffer.from(key),
        value: null,
        timestamp: data.timestamp,
        headers: {},
      };
      this.hooks.deadLetter(
        deadLetter(event, err, emitter, this.dlqTopic, data, Buffer.from(body), this.pipeline),
      );
      return;
    }
    // Only once every aggregate accepted the record, so a throwing aggregator changes nothing.
    for (const s of staged) {
      const { agg, cache, entry } = s;
      if (!agg.window) {
        cache.put(key, { value: s.next });
        s.changed!.add(key);
        continue;
      }
      const updates = s.updates;
      if (updates.length === 0) {
        this.late(data, agg.store, watermark, s.lastEnd, emitter);
        continue;
      }
      const windows = (entry?.value as WindowMap | undefined) ?? {};
      // Kept up to date once fireKey has built it. Until a key fires (after a load, too) it has
      // none, which spares an array per record for keys with one window, the common case.
      const starts = entry?.starts;
      for (let i = 0; i < updates.length; i += 2) {
        const k = updates[i] as string;
        if (starts && !(k in windows)) insertSorted(starts, Number(k));
        windows[k] = updates[i + 1];
      }
      updates.length = 0;
      cache.put(key, starts ? { value: windows, due: s.due, starts } : { value: windows, due: s.due });
      if (s.due < this.nextDue) this.nextDue = s.due;
    }
    this.open += created;
  }

  private late(
    { topic, partition, offset, body, eventTime, key, timestamp }: RepartitionData,
    store: string,
    watermark: number,
    windowEnd: number,
    emitter: Emitter,
  ): void {
    this.hooks.late(store);
    emitter.emit({
      topic: this.lateTopic,
      key,
      value: Buffer.from(body),
      timestamp,
      headers: {
        [H.reason]: 'window-closed',
        [H.store]: store,
        [H.eventTime]: String(eventTime),
        [H.watermark]: encodeWatermark(watermark),
        [H.windowEnd]: String(windowEnd),
        [H.sourceTopic]: topic,
        [H.sourcePartition]: String(partition),
        [H.sourceOffset]: String(offset),
      },
    });
  }

  /**
   * Fires every window whose end the watermark has reached, oldest first, keys in a stable order.
   * The caller checks that one is due (watermark >= nextDue), so most events await nothing.
   */
  private async fireDue(emitter: Emitter, timestamp: number): Promise<void> {
    const wm = this.watermark.current;
    let next = Number.POSITIVE_INFINITY;
    for (const agg of this.stage.aggregates) {
      if (!agg.window) continue;
      const cache = this.caches.get(agg.store)!;
      // The backend's next due above the watermark cannot change while keys fire: firing only
      // touches the cache. So one round trip answers both what fires now and when to look again,
      // and none is needed while the cache holds every stored key.
      const stored = cache.complete
        ? { keys: [], next: Number.POSITIVE_INFINITY }
        : await this.backend.dueKeys(agg.store, wm);
      const due = new Set([...stored.keys, ...cache.dueKeys(wm)]);
      if (due.size > 0) {
        const keys = [...due].sort();
        await cache.prefetch(keys);
        for (const key of keys) this.fireKey(agg, cache, key, wm, emitter, timestamp);
      }
      next = Math.min(next, stored.next, cache.minDueAbove(wm));
    }
    this.nextDue = next;
  }

  private fireKey(
    agg: AggregatePlan,
    cache: StoreCache,
    key: string,
    wm: number,
    emitter: Emitter,
    timestamp: number,
  ): void {
    const entry = cache.get(key);
    if (!entry) return;
    // Updated in place, as in processRecord: the slot turns dirty below, so an abort drops it
    // and reloads the committed value. A copy and a sort of every open window per firing made
    // this quadratic in the windows a key keeps open.
    const windows = entry.value as WindowMap;
    const size = agg.window!.sizeMs;
    if (entry.starts === undefined) {
      // Most keys have one window open when they fire: no index to build for them.
      const only = soleKey(windows);
      if (only !== undefined) {
        const start = Number(only);
        if (!isClosed({ end: start + size }, wm)) return;
        this.fireWindow(agg, key, start, windows[only], emitter, timestamp);
        // Window state expires as soon as its window has fired.
        cache.delete(key);
        return;
      }
    }
    // Closed windows are a prefix of the ascending starts. Scanning every open window of the
    // key at each firing cost a fifth of branch-totals' CPU while a lagging upstream partition
    // kept hundreds of windows open per key.
    const starts = (entry.starts ??= Object.keys(windows)
      .map(Number)
      .sort((a, b) => a - b));
    let n = 0;
    while (n < starts.length && isClosed({ end: starts[n] + size }, wm)) n++;
    if (n === 0) return;
    for (let i = 0; i < n; i++) {
      const k = String(starts[i]);
      const acc = windows[k];
      delete windows[k];
      this.fireWindow(agg, key, starts[i], acc, emitter, timestamp);
    }
    starts.splice(0, n);
    if (starts.length === 0) cache.delete(key);
    else cache.put(key, { value: windows, due: starts[0] + size - 1, starts });
  }

  private fireWindow(
    agg: AggregatePlan,
    key: string,
    start: number,
    acc: unknown,
    emitter: Emitter,
    timestamp: number,
  ): void {
    this.open--;
    const window = { start, end: start + agg.window!.sizeMs };
    for (const e of agg.windowEmitters) {
      const out = e.fn(key, window, acc);
      if (out !== null && out !== undefined) emitKeyed(emitter, e, key, out, timestamp);
    }
  }

  /** At commit: the latest value of each changed key of running aggregates, once. */
  emitTables(emitter: Emitter, timestamp: number): void {
    for (const agg of this.stage.aggregates) {
      if (agg.window) continue;
      const changed = this.changedTableKeys.get(agg.store)!;
      if (changed.size === 0 || agg.tableEmitters.length === 0) {
        changed.clear();
        continue;
      }
      const cache = this.caches.get(agg.store)!;
      for (const key of [...changed].sort()) {
        const entry = cache.get(key);
        if (!entry) continue;
        for (const e of agg.tableEmitters) emitKeyed(emitter, e, key, e.fn(key, entry.value), timestamp);
      }
      changed.clear();
    }
  }

  /**
   * At commit: full values of changed keys to the changelog, same partition. A windowed store
   * writes no tombstones (docs/decisions/0009-windowed-changelog-without-tombstones.md): a key
   * leaves its state only when its last window fires, and the committed watermark alone says
   * that a changelog value is such a leftover, so restoredEntry drops it. That spares one
   * record per key and window.
   */
  emitChangelog(emitter: Emitter, timestamp: number): void {
    for (const cache of this.caches.values()) {
      const topic = this.changelogTopic(cache.store);
      const windowed = !this.changedTableKeys.has(cache.store);
      const encoded = new Map<string, string>();
      this.encoded.set(cache.store, encoded);
      cache.forEachDirty((key, entry) => {
        let text: string | undefined;
        if (entry !== null) encoded.set(key, (text = encodeEntry(entry)));
        else if (windowed) return;
        emitter.emit({
          topic,
          partition: this.partition,
          key,
          value: text === undefined ? null : Buffer.from(text),
          timestamp,
        });
      });
    }
  }

  /**
   * A changelog value as a restore writes it back, or null when the key has no state left.
   * Every window in a windowed value that the committed watermark has closed has fired: the
   * watermark never goes back, and a commit leaves no closed window unfired. So these are
   * the values of keys whose state ended without a tombstone, and only they; one value with
   * both closed and open windows cannot be written, but would lose only the closed ones.
   */
  restoredEntry(
    store: string,
    text: string,
    committedWatermark: number,
  ): { text: string; due?: number } | null {
    const entry = decodeEntry(text);
    const spec = this.windowSpecs.get(store);
    if (!spec || entry.due === undefined || entry.due > committedWatermark) return { text, due: entry.due };
    const windows = entry.value as WindowMap;
    const open: WindowMap = {};
    let due = Number.POSITIVE_INFINITY;
    for (const k of Object.keys(windows)) {
      const end = Number(k) + spec.sizeMs;
      if (isClosed({ end }, committedWatermark)) continue;
      open[k] = windows[k];
      due = Math.min(due, end - 1);
    }
    if (due === Number.POSITIVE_INFINITY) return null;
    return { text: encodeEntry({ value: open, due }), due };
  }

  /**
   * After replaying a changelog gap into state Redis still holds: the entries of keys whose
   * last windows fired in the replayed transactions. Their changelog has nothing for them
   * (no tombstone), so the replay left them as they were, due at or below the committed
   * watermark, and they would fire a second time. A consistent state has no such entry, so
   * this is empty after a clean commit. Store deltas that drop them, for the restore's last
   * APPLY; reads, so not for a rebuild, whose emptied state the replay alone fills.
   */
  async closedLeftovers(committedWatermark: number): Promise<Map<string, StoreChanges>> {
    const out = new Map<string, StoreChanges>();
    if (committedWatermark === Number.NEGATIVE_INFINITY) return out;
    for (const store of this.windowSpecs.keys()) {
      const { keys } = await this.backend.dueKeys(store, committedWatermark);
      if (keys.length === 0) continue;
      const texts = await this.backend.load(store, keys);
      const delta: StoreChanges = { puts: [], deletes: [] };
      keys.forEach((key, i) => {
        const text = texts[i];
        if (text === null || text === undefined) return;
        const entry = this.restoredEntry(store, text, committedWatermark);
        if (entry === null) delta.deletes.push(key);
        else if (entry.text !== text) delta.puts.push([key, entry.text, entry.due]);
      });
      if (delta.puts.length + delta.deletes.length > 0) out.set(store, delta);
    }
    return out;
  }

  hasDirtyState(): boolean {
    for (const c of this.caches.values()) if (c.dirtySize > 0) return true;
    return false;
  }

  /** The writes of the transaction that just committed, for the fenced backend apply. */
  delta(inputOffset: number, changelogEnds: Record<string, number>): TaskDelta {
    return {
      inputOffset,
      stores: [...this.caches.values()].map((cache) => {
        const puts: TaskDelta['stores'][number]['puts'] = [];
        const deletes: string[] = [];
        const encoded = this.encoded.get(cache.store);
        cache.forEachDirty((key, entry) => {
          if (entry === null) deletes.push(key);
          else puts.push([key, encoded?.get(key) ?? encodeEntry(entry), entry.due]);
        });
        this.encoded.delete(cache.store);
        return {
          store: cache.store,
          changelogOffset: changelogEnds[cache.store] ?? this.changelogOffsets[cache.store] ?? 0,
          puts,
          deletes,
        };
      }),
    };
  }

  markApplied(changelogEnds: Record<string, number>): void {
    for (const c of this.caches.values()) c.markApplied();
    Object.assign(this.changelogOffsets, changelogEnds);
  }

  discardUncommitted(): void {
    this.encoded.clear();
    for (const c of this.caches.values()) c.discardDirty();
    for (const s of this.changedTableKeys.values()) s.clear();
  }

  snapshot(): KeyedTaskSnapshot {
    const s = this.watermark.snapshot();
    return {
      v: 1,
      w: { w: s.w.map(finiteOrNull), i: s.i, c: finiteOrNull(s.c) },
      cl: { ...this.changelogOffsets },
    };
  }

  /** The watermark of the last committed transaction, which a restore judges changelog values by. */
  static committedWatermark(s: KeyedTaskSnapshot | undefined): number {
    return s ? nullToNegInf(s.w.c) : Number.NEGATIVE_INFINITY;
  }

  restore(s: KeyedTaskSnapshot | undefined): void {
    if (!s) {
      this.watermark.restore({
        w: new Array<number>(this.watermark.upstreamPartitions).fill(Number.NEGATIVE_INFINITY),
        i: [],
        c: Number.NEGATIVE_INFINITY,
      });
      this.changelogOffsets = {};
      return;
    }
    this.watermark.restore({ w: s.w.w.map(nullToNegInf), i: s.w.i, c: nullToNegInf(s.w.c) });
    this.changelogOffsets = { ...s.cl };
  }

  stateKeys(): number {
    let n = 0;
    for (const c of this.caches.values()) n += c.size;
    return n;
  }
}

/** A keyed JSON output of an aggregate; its observer runs once the transaction has committed. */
function emitKeyed(
  emitter: Emitter,
  sink: { topic: string; observe: ((key: string, value: unknown) => void) | undefined },
  key: string,
  out: unknown,
  timestamp: number,
): void {
  const observe = sink.observe;
  emitter.emit({
    topic: sink.topic,
    key,
    value: Buffer.from(JSON.stringify(out)),
    timestamp,
    ...(observe ? { committed: () => observe(key, out) } : {}),
  });
}

export type { StoredEntry };
