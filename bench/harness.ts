/**
 * The benchmark harness (`npm run bench -- <scenario...>`, see docs/benchmarks.md). It preloads
 * input topics with generated records (fixed seed, sim event times) before the clock starts,
 * runs each scenario several times (the throughput scenarios in rounds: each once per round) with
 * members as separate processes (bench/member.ts), and writes one JSON results file plus a
 * PASS/FAIL line per floor.
 *
 * Needs KAFKA_BROKERS and REDIS_URL (scripts/bench.sh starts both when they are not given).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { generate, type GeneratorKind } from '../src/generators/index.js';
import {
  KafkaConsumer,
  KafkaJS,
  kafkaCall,
  Producer,
  type KafkaConsumerType,
  type Message,
  type TopicPartition,
  type TopicPartitionOffsetAndMetadata,
} from '../src/runtime/kafka/client.js';
import { librdkafkaConfig } from '../src/runtime/kafka/client-config.js';
import { isKafkaError } from '../src/runtime/kafka/errors.js';
import { ensureTopics } from '../src/runtime/kafka/topics.js';
import { internalTopics } from '../src/runtime/topology.js';
import { cpuBetween, readBoxCpu, serverPids, type BoxCpu, type ServerPids } from './box-cpu.js';
import { ENGINE_PIPELINES, type EnginePipeline, type EngineRun } from './engine.js';

const MEMBER = fileURLToPath(new URL('./member.js', import.meta.url));
const ENGINE = fileURLToPath(new URL('./engine.js', import.meta.url));
/** Every member's log lines (all but the samples) are kept here for post-mortems. */
const MEMBER_LOGS = join(process.env.STREAM_RUN_DIR ?? '.run/bench', 'member-logs');
export const SCENARIOS = [
  'passthrough',
  'fraud-eos',
  'fraud-alos',
  'branch-eos',
  'topology-io-eos',
  'topology-io-alos',
  'engine',
  'latency',
  'recovery',
  'scale',
] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchOptions {
  records: number;
  runs: number;
  seed: number;
  partitions: number;
  /** Latency scenario: offered loads (events/s) and measured seconds per run. */
  latencyRates: number[];
  latencySeconds: number;
  /** Recovery: paced load while members are killed. */
  recoveryRate: number;
  scaleMembers: number[];
  /** Records per scale run: 9 runs of several processes each are the longest part of a full bench. */
  scaleRecords: number;
  /** Records per engine run: its state lives in the bench process, not in Redis (bench/engine.ts). */
  engineRecords: number;
  out: string;
  brokers: string;
  redisUrl: string;
  /** The broker's and Redis's pids, for their CPU time, when the scripts started them. */
  servers: ServerPids;
  /** The image's process settings, as this machine runs them (hostImageEnv()). */
  imageEnv: Record<string, string>;
  /** Extra environment for members (e.g. MAX_BATCH_RECORDS to try a setting); it overrides imageEnv. */
  memberEnv: Record<string, string>;
  log: (msg: string) => void;
}

export interface ThroughputRun {
  members: number;
  records: number;
  seconds: number;
  eventsPerSecond: number;
  cpuSecondsPerMillion: number;
  /** Per member: CPU seconds and peak RSS (VmHWM). */
  perMember: Array<{ cpuSeconds: number; peakRssMb: number; consumed: number }>;
  peakRssMb: number;
  redisCommandsPerRecord: number;
  outputs: Record<string, number>;
  /**
   * CPU seconds from the first member's first input record until the end, as the members' own:
   * the broker's and Redis's (null when the scripts did not start them), and the whole
   * machine's, members, harness and all; `busy` is the share of all cores that the machine's was.
   * Not in results before 2026-12-08.
   */
  serverCpu?: BoxCpu & { busy: number };
}

export interface Stat {
  median: number;
  min: number;
  max: number;
}

export interface ThroughputResult {
  scenario: string;
  settings: Record<string, string | number>;
  runs: ThroughputRun[];
  eventsPerSecond: Stat;
  cpuSecondsPerMillion: Stat;
  peakRssMb: Stat;
  redisCommandsPerRecord: Stat;
  /** CPU seconds per million input records of the broker, of Redis and of the machine; as serverCpu. */
  serverCpu?: { broker: Stat | null; redis: Stat | null; box: Stat; busy: Stat };
}

export interface LatencyRun {
  rate: number;
  achievedRate: number;
  samples: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export interface RecoveryRun {
  signal: 'SIGKILL' | 'SIGTERM';
  seconds: number;
  /** Members other than the victim that exited during recovery (and were restarted). */
  otherRestarts: number;
  /**
   * Seconds from the signal until the replacement's process started, its runtime started
   * (producer fenced, consumer connected), its partitions were assigned and ready, and it
   * consumed its first input record (NaN when it was given only repartition partitions).
   */
  phases: { process: number; started: number; assigned: number; firstInputRecord: number };
}

export interface EngineResult {
  pipeline: EnginePipeline;
  records: number;
  runs: EngineRun[];
  usPerEvent: Stat;
  cpuUsPerEvent: Stat;
  gcUsPerEvent: Stat;
  baselineUsPerEvent: Stat;
  /** The median run's engine time over its own baseline: the runtime's work in units of the least JSON work. */
  overBaseline: number;
}

export interface BenchResults {
  startedAt: string;
  finishedAt?: string;
  command: string;
  machine: { cpus: number; cpuModel: string; memoryGb: number; loadAvgAtStart: number[] };
  versions: Record<string, string>;
  options: Omit<BenchOptions, 'log' | 'brokers' | 'redisUrl' | 'out' | 'servers'>;
  throughput: ThroughputResult[];
  latency: Array<{ rate: number; runs: LatencyRun[]; p50Ms: Stat; p99Ms: Stat; p999Ms: Stat }>;
  recovery: Array<{ signal: string; runs: RecoveryRun[]; seconds: Stat }>;
  engine: EngineResult[];
  scale: Array<{
    members: number;
    records: number;
    eventsPerSecond: Stat;
    efficiency: number;
    perMemberCpuSeconds: Stat;
  }>;
  floors: Array<{ name: string; value: number | null; limit: string; pass: boolean | null }>;
}

export function stat(values: number[]): Stat {
  if (values.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median: round(median), min: round(s[0]), max: round(s[s.length - 1]) };
}

const round = (n: number, digits = 3): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

const uid = (): string => `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;

// ---- Kafka helpers ----------------------------------------------------------------------

type Admin = ReturnType<InstanceType<typeof KafkaJS.Kafka>['admin']>;

class Kafka {
  private admin: Admin | undefined;
  private offsets: { group: string; consumer: KafkaConsumerType } | undefined;
  private readonly partitions = new Map<string, number[]>();
  constructor(readonly brokers: string) {}

  async adminClient(): Promise<Admin> {
    if (!this.admin) {
      const a = new KafkaJS.Kafka(
        librdkafkaConfig({ brokers: this.brokers, clientId: 'bench-admin' }),
      ).admin();
      await a.connect();
      this.admin = a;
    }
    return this.admin;
  }

  async close(): Promise<void> {
    await this.closeOffsetReader();
    await this.admin?.disconnect();
    this.admin = undefined;
  }

  async createTopics(
    names: string[],
    partitions: number,
    compact: string[] = [],
    config?: Record<string, string>,
  ): Promise<void> {
    await ensureTopics(
      { brokers: this.brokers, clientId: 'bench' },
      names.map((name) => ({
        name,
        partitions,
        cleanupPolicy: compact.includes(name) ? 'compact' : 'delete',
        description: 'bench',
        ...(config ? { config } : {}),
      })),
    );
  }

  /**
   * Deletes a finished run's own topics (outputs, repartition, changelogs): otherwise the broker
   * keeps compacting the last run's changelogs while the next one is measured.
   */
  async deleteRunTopics(app: string): Promise<void> {
    const admin = await this.adminClient();
    const mine = (t: string) => t.startsWith(`${app}-`);
    const topics = (await admin.listTopics()).filter(mine);
    if (topics.length === 0) return;
    await admin.deleteTopics({ topics });
    // The answer comes from the controller; the broker's metadata follows a little later. Wait
    // for it, so the next run starts on a broker that has let go of these topics.
    const deadline = Date.now() + 30_000;
    while ((await admin.listTopics()).some(mine)) {
      if (Date.now() > deadline) throw new Error(`topics of ${app} still listed 30 s after their deletion`);
      await sleep(100);
    }
  }

  async exists(topic: string): Promise<boolean> {
    return (await (await this.adminClient()).listTopics()).includes(topic);
  }

  /** Partition -> end offset (high watermark). */
  async ends(topic: string): Promise<Map<number, number>> {
    const r = await (await this.adminClient()).fetchTopicOffsets(topic);
    return new Map(r.map((p) => [p.partition, Number(p.high)]));
  }

  /**
   * Partition -> committed offset of the group (-1 when none), as the group's own consumer reads
   * it. Not the admin client's fetchOffsets: when the coordinator answers NOT_COORDINATOR, as a
   * just-started broker does for a group it has not seen, librdkafka's admin path asks a consumer
   * group handle that an admin client does not have to find the coordinator again, and the process
   * dies of a SIGSEGV (librdkafka #5040, confluent-kafka-javascript #374). That is what killed four
   * harness processes as their first members started. A consumer handles the same answer itself.
   */
  async committed(group: string, topics: string[]): Promise<Map<string, number>> {
    const c = await this.offsetReader(group);
    const partitions: TopicPartition[] = [];
    for (const topic of topics)
      for (const partition of await this.partitionsOf(topic)) partitions.push({ topic, partition });
    for (let attempt = 1; ; attempt++) {
      try {
        const list = await kafkaCall<Array<TopicPartitionOffsetAndMetadata | Error>>((cb) =>
          c.committed(partitions, 10_000, cb),
        );
        const out = new Map<string, number>();
        for (const tp of list) {
          if (tp instanceof Error) throw tp;
          out.set(`${tp.topic}/${tp.partition}`, tp.offset >= 0 ? tp.offset : -1);
        }
        return out;
      } catch (err) {
        // A broker that has just started answers COORDINATOR_LOAD_IN_PROGRESS (14),
        // COORDINATOR_NOT_AVAILABLE (15) or NOT_COORDINATOR (16) for a while, and the wait for
        // it can time out (-185).
        if (attempt >= 50 || !isKafkaError(err) || ![14, 15, 16, -185].includes(err.code)) throw err;
        await sleep(200);
      }
    }
  }

  /**
   * A consumer in `group` that never subscribes, so it never joins the group: it only reads the
   * group's committed offsets. read_uncommitted, so that an offset commit inside a transaction a
   * killed member left open does not hold the answer back (a read_committed consumer asks for
   * stable offsets only, and would wait for that transaction to time out).
   */
  private async offsetReader(group: string): Promise<KafkaConsumerType> {
    if (this.offsets?.group === group) return this.offsets.consumer;
    await this.closeOffsetReader();
    const consumer = new KafkaConsumer({
      ...librdkafkaConfig({ brokers: this.brokers, clientId: 'bench-offsets' }),
      'group.id': group,
      'enable.auto.commit': false,
      'isolation.level': 'read_uncommitted',
    }) as KafkaConsumerType;
    await kafkaCall((cb) => consumer.connect({ timeout: 10_000 }, (err) => cb(err)));
    this.offsets = { group, consumer };
    return consumer;
  }

  private async closeOffsetReader(): Promise<void> {
    const c = this.offsets?.consumer;
    this.offsets = undefined;
    if (c) await new Promise<void>((resolve) => c.disconnect(() => resolve()));
  }

  /** A topic's partitions, kept once known: the bench never changes a topic's partition count. */
  private async partitionsOf(topic: string): Promise<number[]> {
    const known = this.partitions.get(topic);
    if (known) return known;
    const list = [...(await this.ends(topic)).keys()].sort((a, b) => a - b);
    if (list.length > 0) this.partitions.set(topic, list);
    return list;
  }

  /**
   * Whether a read_committed reader finds any record at or after `from`. Below the end offset
   * there may be nothing left but commit markers: with several producers writing one partition,
   * each open transaction's marker lands after the last record.
   */
  async anyVisibleFrom(topic: string, partition: number, from: number, quietMs = 500): Promise<boolean> {
    return this.withReader('bench-tail', async (c) => {
      c.assign([{ topic, partition, offset: from }]);
      const until = Date.now() + quietMs;
      while (Date.now() < until) {
        const batch = await kafkaCall<Message[]>((cb) => c.consume(100, cb));
        if (batch.some((m) => m.offset >= from)) return true;
      }
      return false;
    });
  }

  /** Records in a topic as a read_committed reader sees them (counted by reading it). */
  async countCommitted(topic: string, quietMs = 1500): Promise<number> {
    return this.withReader('bench-count', async (c) => {
      const ends = await this.ends(topic);
      c.assign([...ends.keys()].map((partition) => ({ topic, partition, offset: -2 })));
      let n = 0;
      let lastNew = Date.now();
      while (Date.now() - lastNew < quietMs) {
        const batch = await kafkaCall<Message[]>((cb) => c.consume(5000, cb));
        n += batch.length;
        if (batch.length > 0) lastNew = Date.now();
      }
      return n;
    });
  }

  /** A connected read_committed reader in a group of its own, disconnected when `use` ends. */
  private async withReader<T>(prefix: string, use: (c: KafkaConsumerType) => Promise<T>): Promise<T> {
    const c = this.reader(`${prefix}-${uid()}`);
    await kafkaCall((cb) => c.connect({ timeout: 10_000 }, (err) => cb(err)));
    try {
      return await use(c);
    } finally {
      await new Promise<void>((resolve) => c.disconnect(() => resolve()));
    }
  }

  reader(group: string): KafkaConsumerType {
    const c = new KafkaConsumer({
      ...librdkafkaConfig({ brokers: this.brokers, clientId: 'bench-reader' }),
      'group.id': group,
      'enable.auto.commit': false,
      'isolation.level': 'read_committed',
      'auto.offset.reset': 'earliest',
      'fetch.wait.max.ms': 10,
    }) as KafkaConsumerType;
    c.setDefaultConsumeTimeout(50);
    // Otherwise consume(n) waits the full timeout after every record for the next one, and a
    // batch comes back 50 ms after its last record: the latency samples carried that wait.
    c.setDefaultIsTimeoutOnlyForFirstMessage(true);
    return c;
  }

  async producer(overrides: Record<string, number> = {}): Promise<InstanceType<typeof Producer>> {
    const p = new Producer({
      ...librdkafkaConfig({ brokers: this.brokers, clientId: 'bench-load' }),
      'linger.ms': 5,
      'compression.codec': 'lz4',
      'queue.buffering.max.messages': 500_000,
      'queue.buffering.max.kbytes': 262_144,
      dr_cb: false,
      ...overrides,
    });
    await kafkaCall((cb) => p.connect({ timeout: 30_000 }, (err) => cb(err)));
    p.setPollInterval(20);
    return p;
  }
}

async function produceOne(
  p: InstanceType<typeof Producer>,
  topic: string,
  value: Buffer,
  key: string | null,
  timestamp: number | null,
  partition: number | null = null,
): Promise<void> {
  for (;;) {
    try {
      p.produce(topic, partition, value, key, timestamp);
      return;
    } catch {
      p.poll();
      await sleep(2);
    }
  }
}

/** Records per record batch of a preloaded input: about what the preload wrote on a warm broker. */
const PRELOAD_BATCH_RECORDS = 300;

/** Produces `count` generated records (fixed seed, sim event times) to `topic`, before any clock starts. */
async function preload(
  kafka: Kafka,
  kind: GeneratorKind,
  topic: string,
  o: BenchOptions,
  partitions: number,
): Promise<void> {
  // Kept for the whole bench whatever the record timestamps: runs re-read it from the start.
  await kafka.createTopics([topic], partitions, [], { 'retention.ms': '-1' });
  // The same record batches on every machine: with linger.ms alone their size followed how fast
  // the broker acknowledged, and a just-started broker let batches of up to 4,300 records build
  // up where a warm one got about 300. Such an input ran fraud-eos 30% slower
  // (docs/benchmarks-history.md, _A preload that depended on the broker_).
  // A long linger lets every batch fill to exactly PRELOAD_BATCH_RECORDS.
  const p = await kafka.producer({ 'linger.ms': 1000, 'batch.num.messages': PRELOAD_BATCH_RECORDS });
  const t0 = Date.now();
  let n = 0;
  for (const r of generate(kind, {
    count: o.records,
    seed: o.seed,
    timeMode: 'sim',
    ...(kind === 'fraud' ? { customers: o.records } : {}),
  })) {
    // Round robin, so every partition gets the same share. The Kafka timestamp is the produce
    // time: the event time is in the value, and a 2024 timestamp would let time-based retention
    // delete the records (and the repartition records that inherit it) during the run.
    await produceOne(p, topic, r.value, r.key, null, n % partitions);
    if (++n % 100_000 === 0) o.log(`  preload ${topic}: ${n}/${o.records}`);
  }
  await kafkaCall((cb) => p.flush(120_000, cb));
  await new Promise<void>((resolve) => p.disconnect(10_000, () => resolve()));
  const total = [...(await kafka.ends(topic)).values()].reduce((a, b) => a + b, 0);
  if (total !== o.records) throw new Error(`preload of ${topic}: ${total} records, expected ${o.records}`);
  o.log(
    `  preloaded ${o.records} ${kind} records into ${topic} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
}

// ---- members ----------------------------------------------------------------------------

interface MemberLine {
  t: number;
  ev: string;
  cpu?: number;
  consumed?: number;
  msg?: string;
  err?: string;
  processStart?: number;
}

class Member {
  readonly proc: ChildProcess;
  readonly lines: MemberLine[] = [];
  first: MemberLine | undefined;
  /** Settles when the first input record is reported. */
  readonly firstSeen: Promise<void>;
  private seeFirst!: () => void;
  last: MemberLine | undefined;
  readonly logFile: string;
  exited: Promise<number | null>;

  constructor(
    readonly name: string,
    env: Record<string, string>,
    log: (msg: string) => void,
  ) {
    // BENCH_MEMBER_WRAPPER runs each member under a tool, e.g. "heaptrack -o .run/heap/m" for native memory.
    const wrapper = (process.env.BENCH_MEMBER_WRAPPER ?? '').split(' ').filter(Boolean);
    const [cmd, ...args] = [...wrapper, process.execPath, MEMBER];
    this.proc = spawn(cmd, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
    this.firstSeen = new Promise((resolve) => (this.seeFirst = resolve));
    mkdirSync(MEMBER_LOGS, { recursive: true });
    this.logFile = join(MEMBER_LOGS, `${name}.log`);
    const file = createWriteStream(this.logFile);
    this.proc.once('exit', () => file.end());
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      if (!line.includes('"ev":"sample"')) file.write(`${line}\n`);
      let m: MemberLine;
      try {
        m = JSON.parse(line) as MemberLine;
      } catch {
        return;
      }
      if (m.ev === 'first') {
        this.first = m;
        this.seeFirst();
      }
      if (m.ev === 'sample') this.last = m;
      else this.lines.push(m);
      if (m.ev === 'fatal' || (m.ev === 'log' && (m as { level?: string }).level === 'error'))
        log(`  ${name}: ${line.slice(0, 400)}`);
    });
    createInterface({ input: this.proc.stderr! }).on('line', (line) => {
      file.write(`stderr: ${line}\n`);
      log(`  ${name} stderr: ${line}`);
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** VmHWM of the process, MB (Linux), read before it exits. */
  peakRssMb(): number {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : Number.NaN;
    } catch {
      return Number.NaN;
    }
  }

  async waitFor(pred: (m: MemberLine) => boolean, timeoutMs: number): Promise<MemberLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find(pred);
      if (hit) return hit;
      if (this.proc.exitCode !== null) throw new Error(`${this.name} exited with ${this.proc.exitCode}`);
      if (Date.now() > deadline) throw new Error(`${this.name}: timed out waiting`);
      await sleep(20);
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill(signal);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(t);
  }
}

// ---- scenarios --------------------------------------------------------------------------

interface PipelineSetup {
  pipeline: 'fraud-trigger' | 'branch-totals' | 'passthrough' | 'topology-io';
  guarantee: 'exactly_once' | 'at_least_once';
  input: string;
}

/** The process settings of the Dockerfile's runtime stage: members run as the image runs the service. */
export const IMAGE_ENV: Readonly<Record<string, string>> = {
  LD_PRELOAD: '/usr/local/lib/libjemalloc.so.2',
  NODE_OPTIONS: '--max-semi-space-size=4 --max-old-space-size=384',
};

/**
 * IMAGE_ENV with the image's path of jemalloc replaced by this machine's (Debian's package
 * libjemalloc2, which scripts/setup.sh installs). Without it the members would measure glibc's
 * allocator, not the image's; `--env LD_PRELOAD=` measures exactly that on purpose.
 */
export function hostImageEnv(libDirs = ['/usr/local/lib', ...multiarchLibDirs()]): Record<string, string> {
  const name = IMAGE_ENV.LD_PRELOAD.slice(IMAGE_ENV.LD_PRELOAD.lastIndexOf('/') + 1);
  const found = libDirs.map((d) => join(d, name)).find((f) => existsSync(f));
  if (!found) {
    throw new Error(
      `${name} not found in ${libDirs.join(', ')}: install Debian's libjemalloc2 (scripts/setup.sh does), or pass --env LD_PRELOAD= to measure glibc's allocator`,
    );
  }
  return { ...IMAGE_ENV, LD_PRELOAD: found };
}

function multiarchLibDirs(): string[] {
  try {
    return readdirSync('/usr/lib')
      .filter((d) => d.endsWith('-linux-gnu'))
      .map((d) => join('/usr/lib', d));
  } catch {
    return [];
  }
}

function memberEnv(
  o: BenchOptions,
  app: string,
  instance: string,
  s: PipelineSetup,
  outputs: Record<string, string>,
): Record<string, string> {
  return {
    KAFKA_BROKERS: o.brokers,
    REDIS_URL: o.redisUrl,
    SERVICE_NAME: app,
    INSTANCE_ID: instance,
    PROCESSING_GUARANTEE: s.guarantee,
    KAFKA_TOPIC_PARTITIONS: String(o.partitions),
    LOG_LEVEL: 'warn',
    ...o.imageEnv,
    ...(s.pipeline === 'passthrough'
      ? { BENCH_MODE: 'passthrough', BENCH_INPUT: s.input, BENCH_OUTPUT: outputs.out }
      : s.pipeline === 'topology-io'
        ? {
            BENCH_MODE: 'passthrough',
            BENCH_INPUT: s.input,
            BENCH_HOP: outputs.hop,
            BENCH_CHANGELOG: outputs.changelog,
          }
        : { BENCH_MODE: 'pipeline', PIPELINES: s.pipeline }),
    ...(s.pipeline === 'fraud-trigger'
      ? { FRAUD_INPUT_TOPIC: s.input, FRAUD_OUTPUT_TOPIC: outputs.out }
      : {}),
    ...(s.pipeline === 'branch-totals'
      ? {
          BRANCH_INPUT_TOPIC: s.input,
          BRANCH_TOTALS_TOPIC: outputs.out,
          BRANCH_WINDOWED_TOPIC: outputs.windowed,
        }
      : {}),
    ...o.memberEnv,
  };
}

function outputTopics(app: string, s: PipelineSetup): Record<string, string> {
  if (s.pipeline === 'topology-io') return { hop: `${app}-hop`, changelog: `${app}-changelog` };
  return s.pipeline === 'branch-totals'
    ? { out: `${app}-totals`, windowed: `${app}-windowed` }
    : { out: `${app}-out` };
}

/**
 * The members copy records without decoding or state: no DLQ, and the outputs are counted by their
 * end offsets, as reading back three million records would take longer than the run (under
 * exactly once these include the commit markers).
 */
const isCopy = (s: PipelineSetup): boolean => s.pipeline === 'passthrough' || s.pipeline === 'topology-io';

/** The group's topics whose committed offsets show the work is done: input, and the repartition topic. */
function progressTopics(app: string, s: PipelineSetup): string[] {
  if (s.pipeline === 'passthrough') return [s.input];
  if (s.pipeline === 'topology-io') return [s.input, outputTopics(app, s).hop];
  const stage = s.pipeline === 'fraud-trigger' ? 'by-customer' : 'by-branch';
  return [s.input, internalTopics.repartition(app, s.pipeline, stage)];
}

/**
 * Deletes a finished run's state from Redis and compacts its append-only file. A fraud run leaves
 * the windows the watermark never closed (about 30,000); kept, they grew every later AOF rewrite,
 * so a run's Redis cost depended on how many runs came before it in the same invocation.
 */
async function deleteRunState(redis: Redis, app: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `{${app}|*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
  if (!/aof_enabled:1/.test(await redis.info('persistence'))) return;
  await redis.bgrewriteaof().catch(() => undefined); // refused only while a rewrite is already running
  const deadline = Date.now() + 60_000;
  while (/aof_rewrite_(in_progress|scheduled):1/.test(await redis.info('persistence'))) {
    if (Date.now() > deadline) throw new Error('Redis AOF rewrite still running after 60 s');
    await sleep(100);
  }
}

async function redisCalls(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats');
  let n = 0;
  for (const m of info.matchAll(/calls=(\d+)/g)) n += Number(m[1]);
  return n;
}

/** Waits until the group has committed every input record and the keyed stage has caught up. */
async function waitDone(
  kafka: Kafka,
  app: string,
  s: PipelineSetup,
  members: Member[],
  timeoutMs: number,
): Promise<number> {
  const topics = progressTopics(app, s);
  const deadline = Date.now() + timeoutMs;
  const inputEnds = await kafka.ends(s.input);
  // When the committed offsets last moved, and the keyed partitions shown since then to hold
  // nothing more past their committed offset.
  let lastMove = Date.now();
  let previous = '';
  let lastTailCheck = 0;
  const drained = new Set<number>();
  for (;;) {
    if (Date.now() > deadline) {
      const committed = await kafka.committed(app, topics);
      const ends = new Map([...inputEnds].map(([p, end]) => [`${s.input}/${p}`, end] as [string, number]));
      if (topics.length > 1)
        for (const [p, end] of await kafka.ends(topics[1])) ends.set(`${topics[1]}/${p}`, end);
      const behind = [...ends]
        .filter(([tp, end]) => (committed.get(tp) ?? -1) < end - (tp.startsWith(s.input) ? 0 : 1))
        .map(([tp, end]) => `${tp} committed ${committed.get(tp) ?? -1} of ${end}`);
      throw new Error(
        `${app}: not done after ${timeoutMs} ms (${behind.join('; ')}); ` +
          `topics kept; member logs: ${members.map((m) => m.logFile).join(' ')}`,
      );
    }
    for (const m of members)
      if (m.proc.exitCode !== null) throw new Error(`${m.name} exited with ${m.proc.exitCode}`);
    const committed = await kafka.committed(app, topics);
    const now = Date.now();
    const snapshot = JSON.stringify([...committed]);
    if (snapshot !== previous) {
      previous = snapshot;
      lastMove = now;
      drained.clear();
    }
    const inputDone = [...inputEnds].every(([p, end]) => (committed.get(`${s.input}/${p}`) ?? -1) >= end);
    if (inputDone && topics.length === 1) return now;
    if (inputDone) {
      const keyed = topics[1];
      const at = (p: number): number => committed.get(`${keyed}/${p}`) ?? -1;
      const slack = s.guarantee === 'exactly_once' ? 1 : 0;
      const behind = [...(await kafka.ends(keyed))]
        .filter(([p, end]) => end > 0 && at(p) < end - slack && !drained.has(p))
        .map(([p]) => p);
      if (behind.length === 0) return drained.size > 0 ? lastMove : now;
      // A partition that stays below its end for a second is read to its end once: if nothing
      // is visible past the committed offset, only commit markers are left there.
      if (now - lastMove >= 1000 && now - lastTailCheck >= 1000) {
        lastTailCheck = now;
        for (const p of behind)
          if (!(await kafka.anyVisibleFrom(keyed, p, Math.max(0, at(p))))) drained.add(p);
        if (behind.every((p) => drained.has(p))) return lastMove;
      }
    }
    await sleep(100);
  }
}

async function throughputRun(
  kafka: Kafka,
  redis: Redis,
  o: BenchOptions,
  s: PipelineSetup,
  scenario: string,
  members: number,
): Promise<ThroughputRun> {
  const app = `bench-${scenario}-${uid()}`;
  const outs = outputTopics(app, s);
  await kafka.createTopics(
    Object.values(outs),
    o.partitions,
    s.pipeline === 'branch-totals' ? [outs.out] : s.pipeline === 'topology-io' ? [outs.changelog] : [],
  );
  // The DLQ and late topics belong to the input topic, so earlier runs over it left records there.
  const shared = isCopy(s)
    ? undefined
    : { dlq: internalTopics.dlq(s.input), late: internalTopics.late(s.input) };
  const before: Record<string, number> = {};
  for (const [name, topic] of Object.entries(shared ?? {}))
    before[name] = (await kafka.exists(topic)) ? await kafka.countCommitted(topic, 500) : 0;
  const calls0 = await redisCalls(redis);
  const ms: Member[] = [];
  for (let i = 0; i < members; i++)
    ms.push(new Member(`${app}-m${i}`, memberEnv(o, app, `m${i}`, s, outs), o.log));
  let finished = false;
  try {
    await Promise.all(ms.map((m) => m.waitFor((l) => l.ev === 'started', 120_000)));
    // Read as soon as the first member's first record is seen, so that it spans what the members' CPU does.
    const cpu0 = Promise.race(ms.map((m) => m.firstSeen)).then(() => ({
      at: Date.now(),
      cpu: readBoxCpu(o.servers),
    }));
    const end = await waitDone(kafka, app, s, ms, Math.max(120_000, o.records));
    const calls1 = await redisCalls(redis);
    // One more sample after the end, for the CPU time up to it.
    await sleep(250);
    const first = await cpu0;
    const box = cpuBetween(first.cpu, readBoxCpu(o.servers));
    const boxSeconds = (Date.now() - first.at) / 1000;
    const starts = ms.map((m) => m.first?.t).filter((t): t is number => t !== undefined);
    const start = Math.min(...starts);
    const seconds = (end - start) / 1000;
    const perMember = ms.map((m) => ({
      cpuSeconds: round(((m.last?.cpu ?? 0) - (m.first?.cpu ?? 0)) / 1e6),
      peakRssMb: round(m.peakRssMb(), 1),
      consumed: m.last?.consumed ?? 0,
    }));
    const cpu = perMember.reduce((a, m) => a + m.cpuSeconds, 0);
    const outputs: Record<string, number> = {};
    for (const [name, topic] of Object.entries(outs)) {
      outputs[name] = isCopy(s)
        ? [...(await kafka.ends(topic)).values()].reduce((a, b) => a + b, 0)
        : await kafka.countCommitted(topic);
    }
    for (const [name, topic] of Object.entries(shared ?? {}))
      outputs[name] = (await kafka.countCommitted(topic, 500)) - before[name];
    const run: ThroughputRun = {
      members,
      records: o.records,
      seconds: round(seconds),
      eventsPerSecond: Math.round(o.records / seconds),
      cpuSecondsPerMillion: round((cpu / o.records) * 1e6),
      perMember,
      peakRssMb: Math.max(...perMember.map((m) => m.peakRssMb)),
      redisCommandsPerRecord: round((calls1 - calls0) / o.records, 4),
      outputs,
      serverCpu: {
        broker: box.broker === null ? null : round(box.broker),
        redis: box.redis === null ? null : round(box.redis),
        box: round(box.box),
        busy: round(box.box / (boxSeconds * cpus().length)),
      },
    };
    finished = true;
    o.log(
      `  ${scenario} x${members}: ${run.eventsPerSecond} ev/s, ${run.cpuSecondsPerMillion} CPU s/M, ` +
        `peak RSS ${run.peakRssMb} MB, ${run.redisCommandsPerRecord} redis cmd/rec, outputs ${JSON.stringify(outputs)}`,
    );
    return run;
  } finally {
    await Promise.all(ms.map((m) => m.stop()));
    // A topic or state left behind costs the next run some broker or Redis CPU, not its
    // correctness. A failed run's are kept for diagnosis.
    if (finished) {
      await kafka
        .deleteRunTopics(app)
        .catch((err: unknown) => o.log(`  could not delete ${app}-*: ${String(err)}`));
      await deleteRunState(redis, app).catch((err: unknown) =>
        o.log(`  could not delete the Redis state of ${app}: ${String(err)}`),
      );
    }
  }
}

function summarize(
  scenario: string,
  settings: Record<string, string | number>,
  runs: ThroughputRun[],
): ThroughputResult {
  return {
    scenario,
    settings,
    runs,
    eventsPerSecond: stat(runs.map((r) => r.eventsPerSecond)),
    cpuSecondsPerMillion: stat(runs.map((r) => r.cpuSecondsPerMillion)),
    peakRssMb: stat(runs.map((r) => r.peakRssMb)),
    redisCommandsPerRecord: stat(runs.map((r) => r.redisCommandsPerRecord)),
    ...serverCpuSummary(runs),
  };
}

function serverCpuSummary(runs: ThroughputRun[]): Pick<ThroughputResult, 'serverCpu'> {
  const with_ = runs.filter((r) => r.serverCpu !== undefined);
  if (with_.length === 0) return {};
  const perMillion = (pick: (c: BoxCpu) => number | null): Stat | null => {
    const xs = with_.map((r) => pick(r.serverCpu!));
    return xs.some((x) => x === null) ? null : stat(with_.map((r, i) => round((xs[i]! / r.records) * 1e6)));
  };
  return {
    serverCpu: {
      broker: perMillion((c) => c.broker),
      redis: perMillion((c) => c.redis),
      box: perMillion((c) => c.box)!,
      busy: stat(with_.map((r) => r.serverCpu!.busy)),
    },
  };
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

/**
 * Paced load on branch-totals (exactly once, one member). Each input record is stamped with its
 * send time; a read_committed reader of the totals topic sees `count` for a branch grow, and the
 * i-th record sent for a branch counts as visible when a committed total with count >= i is read.
 */
async function latencyRun(kafka: Kafka, o: BenchOptions, rate: number): Promise<LatencyRun> {
  const app = `bench-latency-${uid()}`;
  const input = `${app}-in`;
  const s: PipelineSetup = { pipeline: 'branch-totals', guarantee: 'exactly_once', input };
  const outs = outputTopics(app, s);
  await kafka.createTopics([input], o.partitions);
  await kafka.createTopics(Object.values(outs), o.partitions, [outs.out]);
  const member = new Member(`${app}-m0`, memberEnv(o, app, 'm0', s, outs), o.log);
  const reader = kafka.reader(`${app}-reader`);
  const p = await kafka.producer();
  try {
    await member.waitFor((l) => l.ev === 'started', 120_000);
    await kafkaCall((cb) => reader.connect({ timeout: 10_000 }, (err) => cb(err)));
    reader.assign(
      [...Array(o.partitions).keys()].map((partition) => ({ topic: outs.out, partition, offset: -2 })),
    );
    const sent = new Map<string, number[]>();
    const seen = new Map<string, number>();
    const latencies: number[] = [];
    const warmupMs = 3000;
    const t0 = Date.now();
    const measureFrom = t0 + warmupMs;
    const endAt = measureFrom + o.latencySeconds * 1000;
    let reading = true;
    const readLoop = (async () => {
      while (reading) {
        const batch = await kafkaCall<Message[]>((cb) => reader.consume(1000, cb));
        const now = Date.now();
        for (const m of batch) {
          if (!m.value) continue;
          const v = JSON.parse(m.value.toString()) as { branch: string; count: number };
          const times = sent.get(v.branch) ?? [];
          for (let i = (seen.get(v.branch) ?? 0) + 1; i <= v.count && i <= times.length; i++) {
            if (times[i - 1] >= measureFrom && times[i - 1] < endAt) latencies.push(now - times[i - 1]);
          }
          seen.set(v.branch, Math.max(seen.get(v.branch) ?? 0, v.count));
        }
      }
    })();
    const gen = generate('payments', { seed: o.seed, timeMode: 'sim' })[Symbol.iterator]();
    let n = 0;
    while (Date.now() < endAt) {
      const due = Math.floor(((Date.now() - t0) / 1000) * rate);
      while (n < due) {
        const r = gen.next().value as { value: Buffer; key: string | null };
        const ts = Date.now();
        const branch = `Branch_${(JSON.parse(r.value.toString()) as { branchId: number }).branchId}`;
        const list = sent.get(branch) ?? [];
        list.push(ts);
        sent.set(branch, list);
        await produceOne(p, input, r.value, r.key, ts);
        n++;
      }
      await sleep(2);
    }
    const achieved = n / ((Date.now() - t0) / 1000);
    // Let the tail arrive.
    const drainUntil = Date.now() + 10_000;
    while (Date.now() < drainUntil) {
      let all = true;
      for (const [b, list] of sent) if ((seen.get(b) ?? 0) < list.length) all = false;
      if (all) break;
      await sleep(50);
    }
    reading = false;
    await readLoop;
    latencies.sort((a, b) => a - b);
    const run: LatencyRun = {
      rate,
      achievedRate: Math.round(achieved),
      samples: latencies.length,
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      p999Ms: percentile(latencies, 0.999),
      maxMs: latencies.at(-1) ?? Number.NaN,
    };
    o.log(
      `  latency @${rate}/s: p50 ${run.p50Ms} ms, p99 ${run.p99Ms} ms, p99.9 ${run.p999Ms} ms (${run.samples} samples)`,
    );
    return run;
  } finally {
    await new Promise<void>((resolve) => reader.disconnect(() => resolve()));
    await new Promise<void>((resolve) => p.disconnect(5000, () => resolve()));
    await member.stop();
  }
}

/**
 * Two fraud-trigger members (exactly once, static membership) under paced load; one is killed
 * (SIGKILL) or stopped (SIGTERM) and restarted at once with the same INSTANCE_ID, as Kubernetes
 * would. Recovery = time from the signal until every input and repartition partition has
 * committed past where it stood at the signal.
 */
async function recoveryRun(
  kafka: Kafka,
  o: BenchOptions,
  signal: 'SIGKILL' | 'SIGTERM',
): Promise<RecoveryRun> {
  const app = `bench-recovery-${uid()}`;
  const input = `${app}-in`;
  const s: PipelineSetup = { pipeline: 'fraud-trigger', guarantee: 'exactly_once', input };
  const outs = outputTopics(app, s);
  await kafka.createTopics([input, ...Object.values(outs)], o.partitions);
  const env = (i: number): Record<string, string> => ({
    ...memberEnv(o, app, `m${i}`, s, outs),
    STATIC_MEMBERSHIP: 'true',
  });
  const members = [new Member(`${app}-m0`, env(0), o.log), new Member(`${app}-m1`, env(1), o.log)];
  const p = await kafka.producer();
  let producing = true;
  const gen = generate('fraud', { seed: o.seed, timeMode: 'sim', customers: 100_000 })[Symbol.iterator]();
  const load = (async () => {
    const t0 = Date.now();
    let n = 0;
    while (producing) {
      const due = Math.floor(((Date.now() - t0) / 1000) * o.recoveryRate);
      while (n < due) {
        const r = gen.next().value as { value: Buffer; key: string | null };
        await produceOne(p, input, r.value, r.key, null);
        n++;
      }
      await sleep(5);
    }
  })();
  const topics = progressTopics(app, s);
  try {
    await Promise.all(members.map((m) => m.waitFor((l) => l.ev === 'started', 120_000)));
    // Steady state: every partition committing.
    const ready = Date.now() + 60_000;
    let base = await kafka.committed(app, topics);
    for (;;) {
      await sleep(2000);
      const now = await kafka.committed(app, topics);
      const all = topics.every((t) =>
        [...Array(o.partitions).keys()].every(
          (q) => (now.get(`${t}/${q}`) ?? -1) > (base.get(`${t}/${q}`) ?? -1),
        ),
      );
      base = now;
      if (all) break;
      if (Date.now() > ready) throw new Error('recovery: the group did not reach a steady state in 60 s');
    }
    await sleep(3000);
    const victim = members[1];
    const t0 = Date.now();
    victim.proc.kill(signal);
    await victim.exited;
    // Read after the exit: a graceful stop commits its open transaction on the way out, and a
    // killed member may commit between this read and the signal. Read before, either looked
    // like its partitions processing again (0.22 s after a SIGTERM, before its replacement ran).
    const at = await kafka.committed(app, topics);
    members[1] = new Member(`${app}-m1b`, env(1), o.log);
    let restarts = 0;
    for (;;) {
      // Any member that exits is restarted at once, as Kubernetes would (and counted).
      for (let i = 0; i < members.length; i++) {
        if (members[i].proc.exitCode === null && members[i].proc.signalCode === null) continue;
        restarts++;
        o.log(
          `  ${members[i].name} exited (${members[i].proc.exitCode ?? members[i].proc.signalCode}): restarting it`,
        );
        members[i] = new Member(`${app}-m${i}-r${restarts}`, env(i), o.log);
      }
      const now = await kafka.committed(app, topics);
      const all = topics.every((t) =>
        [...Array(o.partitions).keys()].every(
          (q) => (now.get(`${t}/${q}`) ?? -1) > (at.get(`${t}/${q}`) ?? -1),
        ),
      );
      if (all) break;
      if (Date.now() - t0 > 120_000) throw new Error(`recovery after ${signal}: partitions idle for 120 s`);
      await sleep(50);
    }
    const seconds = (Date.now() - t0) / 1000;
    const lines = members[1].lines;
    const at_ = (t: number | undefined): number => (t === undefined ? Number.NaN : round((t - t0) / 1000));
    const started = lines.find((l) => l.ev === 'started');
    const phases = {
      process: at_(started?.processStart),
      started: at_(started?.t),
      assigned: at_(lines.find((l) => l.msg === 'partitions assigned and ready')?.t),
      firstInputRecord: at_(members[1].first?.t),
    };
    o.log(
      `  recovery after ${signal}: ${seconds.toFixed(2)} s (other members restarted: ${restarts}; ` +
        `process ${phases.process} s, started ${phases.started} s, assigned ${phases.assigned} s, first input record ${phases.firstInputRecord} s)`,
    );
    return { signal, seconds: round(seconds), otherRestarts: restarts, phases };
  } finally {
    producing = false;
    await load;
    await new Promise<void>((resolve) => p.disconnect(5000, () => resolve()));
    await Promise.all(members.map((m) => m.stop()));
  }
}

// ---- main -------------------------------------------------------------------------------

function versions(): Record<string, string> {
  const v: Record<string, string> = { node: process.version };
  try {
    const pkg = JSON.parse(
      readFileSync(
        new URL('../../node_modules/@confluentinc/kafka-javascript/package.json', import.meta.url),
        'utf8',
      ),
    ) as { version: string; librdkafka?: string };
    v['@confluentinc/kafka-javascript'] = pkg.version;
    if (pkg.librdkafka) v.librdkafka = pkg.librdkafka;
  } catch {
    /* not found */
  }
  if (process.env.BENCH_KAFKA_VERSION) v.kafka = process.env.BENCH_KAFKA_VERSION;
  return v;
}

interface ThroughputScenario {
  scenario: Scenario;
  pipeline: PipelineSetup['pipeline'];
  guarantee: PipelineSetup['guarantee'];
  kind: GeneratorKind;
}

const THROUGHPUT_GROUPS: ThroughputScenario[][] = [
  [
    { scenario: 'passthrough', pipeline: 'passthrough', guarantee: 'at_least_once', kind: 'fraud' },
    { scenario: 'fraud-eos', pipeline: 'fraud-trigger', guarantee: 'exactly_once', kind: 'fraud' },
    { scenario: 'fraud-alos', pipeline: 'fraud-trigger', guarantee: 'at_least_once', kind: 'fraud' },
    { scenario: 'branch-eos', pipeline: 'branch-totals', guarantee: 'exactly_once', kind: 'payments' },
  ],
  // After the floors' scenarios, so that deleting their three million records cannot touch those.
  [
    { scenario: 'topology-io-eos', pipeline: 'topology-io', guarantee: 'exactly_once', kind: 'fraud' },
    { scenario: 'topology-io-alos', pipeline: 'topology-io', guarantee: 'at_least_once', kind: 'fraud' },
  ],
];

/**
 * The order of the throughput runs: per group, rounds of one run of each chosen scenario, not one
 * scenario's runs in a row. A slow spell of the shared machine then spreads over the baseline and the
 * scenarios measured against it, instead of landing on every run of one of them.
 */
export function throughputSchedule(
  scenarios: readonly Scenario[],
  runs: number,
): Array<{ scenarios: ThroughputScenario[]; rounds: Scenario[][] }> {
  return THROUGHPUT_GROUPS.map((group) => group.filter((t) => scenarios.includes(t.scenario)))
    .filter((chosen) => chosen.length > 0)
    .map((chosen) => ({
      scenarios: chosen,
      rounds: Array.from({ length: runs }, () => chosen.map((t) => t.scenario)),
    }));
}

export async function runBench(scenarios: Scenario[], o: BenchOptions): Promise<BenchResults> {
  const kafka = new Kafka(o.brokers);
  const redis = new Redis(o.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1];
  const { log: _log, brokers: _b, redisUrl: _r, out: _o, servers: _s, ...options } = o;
  const results: BenchResults = {
    startedAt: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGb: round(totalmem() / 2 ** 30, 1),
      loadAvgAtStart: (await import('node:os')).loadavg().map((l) => round(l, 2)),
    },
    versions: { ...versions(), ...(redisVersion ? { redis: redisVersion } : {}) },
    options,
    throughput: [],
    latency: [],
    recovery: [],
    scale: [],
    engine: [],
    floors: [],
  };
  const save = (): void => {
    mkdirSync(dirname(o.out), { recursive: true });
    writeFileSync(o.out, `${JSON.stringify(results, null, 2)}\n`);
  };
  const tag = uid();
  const inputs = new Set<string>();
  const input = async (kind: GeneratorKind, records = o.records): Promise<string> => {
    const t = `bench-${kind}-${records}-${o.seed}-${tag}`;
    if (!inputs.has(t)) {
      await preload(kafka, kind, t, { ...o, records }, o.partitions);
      inputs.add(t);
    }
    return t;
  };
  const settings = (s: PipelineSetup): Record<string, string | number> => ({
    pipeline: s.pipeline,
    guarantee: s.guarantee,
    partitions: o.partitions,
    records: o.records,
    ...(s.pipeline === 'fraud-trigger' ? { customers: o.records } : {}),
    ...o.memberEnv,
  });
  try {
    const throughputRuns = new Map<Scenario, { s: PipelineSetup; runs: ThroughputRun[] }>();
    for (const group of throughputSchedule(scenarios, o.runs)) {
      for (const { scenario, pipeline, guarantee, kind } of group.scenarios)
        throughputRuns.set(scenario, { s: { pipeline, guarantee, input: await input(kind) }, runs: [] });
      for (const [i, round] of group.rounds.entries()) {
        o.log(
          `throughput round ${i + 1} of ${group.rounds.length}: ${round.join(', ')}, ${o.records} records each`,
        );
        for (const scenario of round) {
          const t = throughputRuns.get(scenario)!;
          t.runs.push(await throughputRun(kafka, redis, o, t.s, scenario, 1));
          results.throughput = [...throughputRuns]
            .filter(([, x]) => x.runs.length > 0)
            .map(([sc, x]) => summarize(sc, settings(x.s), x.runs));
          save();
        }
      }
    }
    if (scenarios.includes('engine')) {
      for (const pipeline of ENGINE_PIPELINES) {
        o.log(`engine: ${pipeline}, ${o.runs} run(s) over ${o.engineRecords} records, no Kafka or Redis`);
        const runs: EngineRun[] = [];
        for (let i = 0; i < o.runs; i++) runs.push(await engineRun(o, pipeline));
        const us = stat(runs.map((r) => r.usPerEvent));
        const median = runs.find((r) => r.usPerEvent === us.median) ?? runs[0];
        results.engine.push({
          pipeline,
          records: o.engineRecords,
          runs,
          usPerEvent: us,
          cpuUsPerEvent: stat(runs.map((r) => r.cpuUsPerEvent)),
          gcUsPerEvent: stat(runs.map((r) => r.gcUsPerEvent)),
          baselineUsPerEvent: stat(runs.map((r) => r.baselineUsPerEvent)),
          overBaseline: round(median.usPerEvent / median.baselineUsPerEvent, 2),
        });
        save();
      }
    }
    if (scenarios.includes('scale')) {
      const so: BenchOptions = { ...o, records: o.scaleRecords };
      const s: PipelineSetup = {
        pipeline: 'fraud-trigger',
        guarantee: 'exactly_once',
        input: await input('fraud', so.records),
      };
      const perCount = new Map<number, ThroughputRun[]>();
      for (const members of o.scaleMembers) {
        o.log(`scale: ${members} member(s), ${o.runs} run(s) over ${so.records} records`);
        const reuse =
          members === 1 && so.records === o.records
            ? results.throughput.find((r) => r.scenario === 'fraud-eos')?.runs
            : undefined;
        const runs = reuse ?? [];
        if (!reuse)
          for (let i = 0; i < o.runs; i++)
            runs.push(await throughputRun(kafka, redis, so, s, 'scale', members));
        perCount.set(members, runs);
      }
      const one = stat(perCount.get(1)?.map((r) => r.eventsPerSecond) ?? []).median;
      for (const [members, runs] of perCount) {
        const eps = stat(runs.map((r) => r.eventsPerSecond));
        results.scale.push({
          members,
          records: so.records,
          eventsPerSecond: eps,
          efficiency: round(eps.median / (members * one)),
          perMemberCpuSeconds: stat(runs.flatMap((r) => r.perMember.map((m) => m.cpuSeconds))),
        });
      }
      save();
    }
    if (scenarios.includes('latency')) {
      for (const rate of o.latencyRates) {
        o.log(`latency: ${rate} events/s, ${o.runs} run(s) of ${o.latencySeconds} s`);
        const runs: LatencyRun[] = [];
        for (let i = 0; i < o.runs; i++) runs.push(await latencyRun(kafka, o, rate));
        results.latency.push({
          rate,
          runs,
          p50Ms: stat(runs.map((r) => r.p50Ms)),
          p99Ms: stat(runs.map((r) => r.p99Ms)),
          p999Ms: stat(runs.map((r) => r.p999Ms)),
        });
        save();
      }
    }
    if (scenarios.includes('recovery')) {
      for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
        o.log(`recovery: ${signal}, ${o.runs} run(s) at ${o.recoveryRate} events/s`);
        const runs: RecoveryRun[] = [];
        for (let i = 0; i < o.runs; i++) runs.push(await recoveryRun(kafka, o, signal));
        results.recovery.push({ signal, runs, seconds: stat(runs.map((r) => r.seconds)) });
        save();
      }
    }
  } finally {
    results.floors = floors(results);
    results.finishedAt = new Date().toISOString();
    save();
    await kafka.close();
    redis.disconnect();
  }
  return results;
}

export function floors(r: BenchResults): BenchResults['floors'] {
  const eps = (s: string): number | undefined =>
    r.throughput.find((t) => t.scenario === s)?.eventsPerSecond.median;
  const out: BenchResults['floors'] = [];
  const add = (name: string, value: number | undefined, limit: string, ok: (v: number) => boolean): void => {
    out.push({
      name,
      value: value === undefined ? null : round(value),
      limit,
      pass: value === undefined ? null : ok(value),
    });
  };
  const eos = eps('fraud-eos');
  const pass = eps('passthrough');
  const alos = eps('fraud-alos');
  add('fraud EOS events/s', eos, '>= 20000', (v) => v >= 20_000);
  add(
    'fraud EOS / passthrough',
    eos !== undefined && pass ? eos / pass : undefined,
    '>= 0.40',
    (v) => v >= 0.4,
  );
  add(
    'fraud EOS / fraud ALOS',
    eos !== undefined && alos ? eos / alos : undefined,
    '>= 0.80',
    (v) => v >= 0.8,
  );
  add(
    'e2e p99 ms at 5000 ev/s',
    r.latency.find((l) => l.rate === 5000)?.p99Ms.median,
    '<= 300',
    (v) => v <= 300,
  );
  add(
    'fraud EOS peak RSS MB',
    r.throughput.find((t) => t.scenario === 'fraud-eos')?.peakRssMb.max,
    '<= 300',
    (v) => v <= 300,
  );
  add(
    'recovery after SIGKILL s',
    r.recovery.find((x) => x.signal === 'SIGKILL')?.seconds.median,
    '<= 5',
    (v) => v <= 5,
  );
  return out;
}

const USAGE = `usage: harness.js <scenario...|all> [options]
scenarios: ${SCENARIOS.join(', ')}, all
  --records N        records preloaded per input (default 1000000)
  --runs N           runs per scenario (default 3)
  --seed N           generator seed (default 1)
  --partitions N     partitions of every topic (default 6)
  --latency-seconds N  measured seconds per latency run (default 20)
  --scale-records N  records per scale run (default 200000, at most --records)
  --engine-records N records per engine run (default 300000)
  --out FILE         results file (default bench/results/<date>.json)
  --env K=V          extra member environment, repeatable (e.g. MAX_BATCH_RECORDS=10000)`;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      records: { type: 'string' },
      runs: { type: 'string' },
      seed: { type: 'string' },
      partitions: { type: 'string' },
      'latency-seconds': { type: 'string' },
      'scale-records': { type: 'string' },
      'engine-records': { type: 'string' },
      out: { type: 'string' },
      env: { type: 'string', multiple: true },
      help: { type: 'boolean' },
    },
  });
  if (values.help || positionals.length === 0) {
    console.log(USAGE);
    process.exit(values.help ? 0 : 2);
  }
  const scenarios = positionals.includes('all') ? [...SCENARIOS] : (positionals as Scenario[]);
  for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}\n${USAGE}`);
  const int = (v: string | undefined, d: number): number => {
    const n = v === undefined ? d : Number(v);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`expected a whole number >= 1, got ${v}`);
    return n;
  };
  const brokers = process.env.KAFKA_BROKERS;
  const redisUrl = process.env.REDIS_URL;
  if (!brokers || !redisUrl)
    throw new Error('KAFKA_BROKERS and REDIS_URL must be set (scripts/bench.sh sets them)');
  const date = new Date().toISOString().replace(/:/g, '-').replace(/\..*/, '');
  const o: BenchOptions = {
    records: int(values.records, 1_000_000),
    runs: int(values.runs, 3),
    seed: int(values.seed, 1),
    partitions: int(values.partitions, 6),
    latencyRates: [5000, 20_000],
    latencySeconds: int(values['latency-seconds'], 20),
    recoveryRate: 5000,
    scaleMembers: [1, 2, 3],
    scaleRecords: Math.min(int(values['scale-records'], 200_000), int(values.records, 1_000_000)),
    engineRecords: int(values['engine-records'], 300_000),
    out: values.out ?? `bench/results/${date}.json`,
    brokers,
    redisUrl,
    servers: serverPids(),
    imageEnv: hostImageEnv(),
    memberEnv: Object.fromEntries(
      (values.env ?? []).map((kv) => {
        const i = kv.indexOf('=');
        if (i < 1) throw new Error(`--env expects K=V, got ${kv}`);
        return [kv.slice(0, i), kv.slice(i + 1)];
      }),
    ),
    log: (m) => console.error(`[bench] ${m}`),
  };
  const r = await runBench(scenarios, o);
  console.log(report(r));
  console.log(`results: ${o.out}`);
}

/**
 * One engine run in a process of its own, with the image's process settings and the members'
 * extra environment, as a member would run: the collector's settings shape what it measures.
 */
async function engineRun(o: BenchOptions, pipeline: EnginePipeline): Promise<EngineRun> {
  const env = { ...process.env, ...o.imageEnv, ...o.memberEnv };
  const args = [
    ENGINE,
    '--pipeline',
    pipeline,
    '--records',
    String(o.engineRecords),
    '--seed',
    String(o.seed),
    '--partitions',
    String(o.partitions),
  ];
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  // 'close', not 'exit': the last of its output may still be in the pipe when it exits.
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`engine run of ${pipeline} exited with ${code}: ${stderr.slice(0, 2000)}`);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as EngineRun;
}

/** A plain-text summary with PASS/FAIL per floor. */
export function report(r: BenchResults): string {
  const lines: string[] = [];
  const f = (s: Stat): string => `${s.median} (${s.min}-${s.max})`;
  for (const t of r.throughput)
    lines.push(
      `${t.scenario.padEnd(12)} ${f(t.eventsPerSecond)} ev/s | ${f(t.cpuSecondsPerMillion)} CPU s/M | ` +
        `peak RSS ${f(t.peakRssMb)} MB | ${f(t.redisCommandsPerRecord)} redis cmd/rec`,
    );
  // Not a floor: how much of the ceiling the fraud topology's Kafka I/O leaves, and how much of that the runtime gets.
  const median = (name: string): number | undefined =>
    r.throughput.find((t) => t.scenario === name)?.eventsPerSecond.median;
  const pass = median('passthrough');
  for (const g of ['eos', 'alos']) {
    const [io, fraud] = [median(`topology-io-${g}`), median(`fraud-${g}`)];
    if (pass && io) lines.push(`topology-io-${g} / passthrough ${round(io / pass)}`);
    if (io && fraud) lines.push(`fraud-${g} / topology-io-${g} ${round(fraud / io)}`);
  }
  // Not a floor either: the ratio if each scenario kept every core of the machine busy at its cost per record.
  const machine = (name: string): number | undefined =>
    r.throughput.find((t) => t.scenario === name)?.serverCpu?.box.median;
  for (const t of r.throughput)
    if (t.serverCpu)
      lines.push(
        `${t.scenario.padEnd(12)} machine ${t.serverCpu.box.median} CPU s/M (broker ` +
          `${t.serverCpu.broker?.median ?? '-'}, redis ${t.serverCpu.redis?.median ?? '-'}), ` +
          `${Math.round(t.serverCpu.busy.median * 100)}% busy`,
      );
  const [boxPass, boxFraud] = [machine('passthrough'), machine('fraud-eos')];
  if (boxPass && boxFraud)
    lines.push(`fraud-eos / passthrough at equal machine CPU ${round(boxPass / boxFraud)}`);
  for (const e of r.engine)
    lines.push(
      `engine ${e.pipeline.padEnd(13)} ${f(e.usPerEvent)} us/event | GC ${f(e.gcUsPerEvent)} | ` +
        `baseline ${f(e.baselineUsPerEvent)} us/event | ${e.overBaseline} x baseline`,
    );
  for (const s of r.scale)
    lines.push(`scale x${s.members}     ${f(s.eventsPerSecond)} ev/s | efficiency ${s.efficiency}`);
  for (const l of r.latency)
    lines.push(`latency @${l.rate}/s  p50 ${f(l.p50Ms)} | p99 ${f(l.p99Ms)} | p99.9 ${f(l.p999Ms)} ms`);
  for (const x of r.recovery) lines.push(`recovery ${x.signal}  ${f(x.seconds)} s`);
  for (const fl of r.floors)
    lines.push(
      `${fl.pass === null ? 'SKIP' : fl.pass ? 'PASS' : 'FAIL'}  ${fl.name}: ${fl.value ?? '-'} (${fl.limit})`,
    );
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(`[bench] error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  });
}
