/**
 * The chaos tests' shared logic: an input plan whose result does not depend on how
 * partitions interleave (semantics.md G1), the failure-free expected result from the
 * TopologyTestDriver, real member processes (test/chaos/member.ts) killed with SIGKILL,
 * stalled with SIGSTOP, joining and leaving, and the comparison of what read_committed
 * readers and Redis hold afterwards with the expected result.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { KafkaJS } from '../../src/runtime/kafka/client.js';
import { librdkafkaConfig } from '../../src/runtime/kafka/client-config.js';
import { runtimeTopicSpecs } from '../../src/runtime/runtime-topics.js';
import { RedisStateStore, type RedisClient } from '../../src/runtime/state/redis-backend.js';
import { connectRedis, createRedisClient } from '../../src/runtime/state/redis-client.js';
import { decodeEntry } from '../../src/runtime/state/store.js';
import { TopologyTestDriver } from '../../src/runtime/testing/driver.js';
import { internalTopics } from '../../src/runtime/topology.js';
import { infra, uniqueName } from '../helpers/env.js';
import { createTopics, readTopics, type ReadRecord } from '../helpers/kafka.js';
import {
  CHAOS,
  chaosTopology,
  type ChaosTopics,
  type ChaosValue,
  type TotalsOutput,
  type WindowOutput,
} from './member.js';

const MEMBER = fileURLToPath(new URL('./member.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The repository's own start/stop scripts, with the ports and run dir the test command exported. */
async function infraScript(script: 'redis' | 'kafka', args: string[]): Promise<void> {
  const child = spawn('bash', [`scripts/${script}.sh`, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`scripts/${script}.sh ${args.join(' ')} exited ${code}: ${out.trim()}`);
}

// ---- input plan ---------------------------------------------------------------------------

/** Small, seedable PRNG (mulberry32): the same seed gives the same input. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface PlanOptions {
  partitions: number;
  keysPerPartition: number;
  recordsPerPartition: number;
  /** Share of records that are invalid and must reach the DLQ exactly once. */
  invalidRatio: number;
  seed: number;
}

export interface PlannedRecord {
  partition: number;
  key: string;
  value: Buffer;
  /** The DLQ reason the runtime must give, for invalid records. */
  invalid: string | undefined;
  /** Valid records only. */
  ts: number;
  amt: number;
}

export interface InputPlan {
  options: PlanOptions;
  /** Records per source partition, in the order they are produced; the last one of each is its sentinel. */
  partitions: PlannedRecord[][];
  total: number;
  valid: number;
  invalid: number;
}

/** Event times start on a window boundary. */
const BASE_TS = 1_700_000_000_000;
/** How much earlier than its partition's clock a record may be: below the out-of-orderness bound. */
const JITTER_MS = 3000;

/**
 * Per partition, event times advance by a partition-specific step with up to JITTER_MS of
 * disorder (< the 5 s bound, so no record is ever late), and every key lives on one partition.
 * Then the windows, totals and dead letters do not depend on how partitions interleave.
 * Each partition ends with a sentinel record far in the future (key `end-<p>`) that moves every
 * watermark past every real window, so each real window fires: its count is in the output.
 */
export function makePlan(options: PlanOptions): InputPlan {
  const random = rng(options.seed);
  const partitions: PlannedRecord[][] = [];
  let id = 0;
  let maxTs = BASE_TS;
  let invalid = 0;
  for (let p = 0; p < options.partitions; p++) {
    const step = 40 + 10 * p;
    const list: PlannedRecord[] = [];
    for (let j = 0; j < options.recordsPerPartition; j++) {
      const key = `k${p}-${Math.floor(random() * options.keysPerPartition)}`;
      const ts = BASE_TS + j * step - Math.floor(random() * JITTER_MS);
      const amt = 1 + Math.floor(random() * 1000);
      const i = id++;
      maxTs = Math.max(maxTs, ts);
      if (random() < options.invalidRatio) {
        invalid++;
        const kind = Math.floor(random() * 4);
        const [reason, value] =
          kind === 0
            ? ['invalid-json', `{"k":"${key}","i":${i},`]
            : kind === 1
              ? ['invalid-event-time', JSON.stringify({ k: key, ts: 'soon', amt, i })]
              : kind === 2
                ? ['invalid-key', JSON.stringify({ k: '', ts, amt, i })]
                : ['validation', JSON.stringify({ k: key, ts, amt: -amt, i })];
        list.push({ partition: p, key, value: Buffer.from(value), invalid: reason, ts: 0, amt: 0 });
        continue;
      }
      const v: ChaosValue = { k: key, ts, amt, i };
      list.push({ partition: p, key, value: Buffer.from(JSON.stringify(v)), invalid: undefined, ts, amt });
    }
    partitions.push(list);
  }
  // Sentinels: after every real record, far enough ahead to close every real window.
  const sentinelTs = maxTs + 3 * CHAOS.windowMs + CHAOS.outOfOrdernessMs;
  for (let p = 0; p < options.partitions; p++) {
    const v: ChaosValue = { k: `end-${p}`, ts: sentinelTs, amt: 0, i: id++ };
    partitions[p].push({
      partition: p,
      key: v.k,
      value: Buffer.from(JSON.stringify(v)),
      invalid: undefined,
      ts: v.ts,
      amt: 0,
    });
  }
  const total = partitions.reduce((n, l) => n + l.length, 0);
  return { options, partitions, total, valid: total - invalid, invalid };
}

// ---- expected result (failure-free, in memory) ----------------------------------------------

export interface ExpectedResult {
  /** Window outputs as `key \0 JSON value` strings. */
  windows: Map<string, number>;
  windowCount: number;
  /** Final totals per key. */
  totals: Map<string, TotalsOutput>;
  dlq: Map<string, number>;
  dlqCount: number;
  late: number;
  /** `${repartition topic}/${partition}` -> store -> key -> encoded entry. */
  state: Map<string, Record<string, Record<string, string>>>;
}

export const repartitionTopic = (app: string): string =>
  internalTopics.repartition(app, CHAOS.pipeline, CHAOS.stage);

const windowEntry = (key: string | null, value: string): string => `${key ?? ''}\u0000${value}`;
const dlqEntry = (key: string | null, value: string, h: Record<string, string>): string =>
  [key ?? '', value, h['x-reason'], h['x-source-partition'], h['x-source-offset']].join('\u0000');

/**
 * The same topology in the TopologyTestDriver, fed the same records: by partition (all of
 * partition 0, then 1, ...) or round robin. With this input the order does not matter: a
 * record is judged by a watermark that can only be lower than its own partition's, which is
 * below its event time, so nothing is late; each window holds the same records; every real
 * window fires once the sentinels are in; and each key's records keep their order.
 */
export async function expectedRun(
  plan: InputPlan,
  app: string,
  topics: ChaosTopics,
  internalPartitions: number,
  order: 'by-partition' | 'round-robin',
): Promise<ExpectedResult> {
  const driver = await new TopologyTestDriver(chaosTopology(topics), {
    app,
    sourcePartitions: { [topics.input]: plan.options.partitions },
    repartitionPartitions: internalPartitions,
    commitEvery: 500,
  }).start();
  const feed = function* (): Generator<{ key: string; value: Buffer; partition: number }> {
    if (order === 'by-partition') {
      for (const list of plan.partitions) for (const r of list) yield r;
      return;
    }
    const longest = Math.max(...plan.partitions.map((l) => l.length));
    for (let j = 0; j < longest; j++) for (const list of plan.partitions) if (j < list.length) yield list[j];
  };
  await driver.pipe(
    topics.input,
    [...feed()].map((r) => ({ key: r.key, value: r.value, partition: r.partition })),
  );
  await driver.commit();
  const asText = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString('utf8') : JSON.stringify(v));
  const windowsOut = driver.read(topics.windows);
  const totals = new Map<string, TotalsOutput>();
  for (const o of driver.read(topics.totals)) totals.set(o.key!, o.value as TotalsOutput);
  const dlqOut = driver.read(internalTopics.dlq(topics.input));
  const state = new Map<string, Record<string, Record<string, string>>>();
  for (let p = 0; p < internalPartitions; p++) {
    const id = `${repartitionTopic(app)}/${p}`;
    state.set(id, driver.state.dump(id));
  }
  return {
    windows: multiset(windowsOut.map((o) => windowEntry(o.key, asText(o.value)))),
    windowCount: windowsOut.length,
    totals,
    dlq: multiset(dlqOut.map((o) => dlqEntry(o.key, asText(o.value), o.headers))),
    dlqCount: dlqOut.length,
    late: driver.read(internalTopics.late(topics.input)).length,
    state,
  };
}

/** What the plan implies without any engine: every real window and every key's final total. */
export function directResult(plan: InputPlan): {
  windows: Map<string, number>;
  totals: Map<string, TotalsOutput>;
  dlq: Map<string, number>;
} {
  const windows = new Map<string, WindowOutput>();
  const totals = new Map<string, TotalsOutput>();
  const dlq: string[] = [];
  for (const list of plan.partitions) {
    list.forEach((r, offset) => {
      if (r.invalid) {
        dlq.push(
          dlqEntry(r.key, r.value.toString('utf8'), {
            'x-reason': r.invalid,
            'x-source-partition': String(r.partition),
            'x-source-offset': String(offset),
          }),
        );
        return;
      }
      const t = totals.get(r.key) ?? { key: r.key, count: 0, sum: 0 };
      totals.set(r.key, { key: r.key, count: t.count + 1, sum: t.sum + r.amt });
      if (r.key.startsWith('end-')) return;
      const start = r.ts - (r.ts % CHAOS.windowMs);
      const id = `${r.key}|${start}`;
      const w = windows.get(id) ?? { key: r.key, window_start: start, count: 0, sum: 0 };
      windows.set(id, { ...w, count: w.count + 1, sum: w.sum + r.amt });
    });
  }
  return {
    windows: multiset([...windows.values()].map((w) => windowEntry(w.key, JSON.stringify(w)))),
    totals,
    dlq: multiset(dlq),
  };
}

// ---- comparisons ------------------------------------------------------------------------------

export function multiset(items: Iterable<string>): Map<string, number> {
  const m = new Map<string, number>();
  for (const i of items) m.set(i, (m.get(i) ?? 0) + 1);
  return m;
}

export interface MultisetDiff {
  missing: number;
  duplicates: number;
  /** Present in the actual run but never expected at all. */
  unexpected: number;
  samples: string[];
}

/** Counts of `expected` entries missing from `actual`, and of entries `actual` has more often. */
export function diffMultisets(expected: Map<string, number>, actual: Map<string, number>): MultisetDiff {
  const d: MultisetDiff = { missing: 0, duplicates: 0, unexpected: 0, samples: [] };
  const sample = (what: string, k: string, n: number) => {
    if (d.samples.length < 10) d.samples.push(`${what} x${n}: ${k.replaceAll('\u0000', ' | ')}`);
  };
  for (const [k, n] of expected) {
    const got = actual.get(k) ?? 0;
    if (got < n) {
      d.missing += n - got;
      sample('missing', k, n - got);
    }
    if (got > n) {
      d.duplicates += got - n;
      sample('duplicate', k, got - n);
    }
  }
  for (const [k, n] of actual) {
    if (expected.has(k)) continue;
    d.unexpected += n;
    sample('unexpected', k, n);
  }
  return d;
}

function sameMap<V>(a: Map<string, V>, b: Map<string, V>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (JSON.stringify(b.get(k)) !== JSON.stringify(v)) return false;
  return true;
}

/** Asserts that two expected results are the same, so the driver's interleaving does not matter. */
export function sameExpected(a: ExpectedResult, b: ExpectedResult): string[] {
  const problems: string[] = [];
  const w = diffMultisets(a.windows, b.windows);
  if (w.missing + w.duplicates + w.unexpected > 0) problems.push(`windows differ: ${JSON.stringify(w)}`);
  if (!sameMap(a.totals, b.totals)) problems.push('totals differ');
  const d = diffMultisets(a.dlq, b.dlq);
  if (d.missing + d.duplicates + d.unexpected > 0) problems.push(`dead letters differ: ${JSON.stringify(d)}`);
  if (a.late !== b.late) problems.push(`late records differ: ${a.late} vs ${b.late}`);
  const s = diffState(a.state, b.state);
  if (s.mismatched > 0) problems.push(`state differs: ${JSON.stringify(s)}`);
  return problems;
}

export interface StateDiff {
  entries: number;
  mismatched: number;
  samples: string[];
}

/** Compares decoded entries task by task, store by store. */
export function diffState(
  expected: Map<string, Record<string, Record<string, string>>>,
  actual: Map<string, Record<string, Record<string, string>>>,
): StateDiff {
  const d: StateDiff = { entries: 0, mismatched: 0, samples: [] };
  for (const [task, stores] of expected) {
    const got = actual.get(task) ?? {};
    for (const store of [CHAOS.windowStore, CHAOS.totalsStore]) {
      const e = stores[store] ?? {};
      const a = got[store] ?? {};
      for (const key of new Set([...Object.keys(e), ...Object.keys(a)])) {
        d.entries++;
        const ev = e[key] === undefined ? undefined : decodeEntry(e[key]);
        const av = a[key] === undefined ? undefined : decodeEntry(a[key]);
        if (JSON.stringify(canonical(ev)) === JSON.stringify(canonical(av))) continue;
        d.mismatched++;
        if (d.samples.length < 10)
          d.samples.push(
            `${task} ${store} ${key}: expected ${(e[key] ?? '-').slice(0, 160)} got ${(a[key] ?? '-').slice(0, 160)}`,
          );
      }
    }
  }
  return d;
}

/** JSON with sorted object keys, so two equal entries compare equal whatever their key order. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, x]) => [k, canonical(x)]),
    );
  return v;
}

// ---- member processes -------------------------------------------------------------------------

export interface LogLine {
  t: number;
  level: string;
  msg: string;
  instance?: string;
  partitions?: string[];
  lost?: boolean;
  outcome?: string;
  err?: string;
  code?: string;
  [k: string]: unknown;
}

export class Member {
  child: ChildProcess | undefined;
  incarnation = 0;
  readonly owned = new Set<string>();
  readonly lines: Array<LogLine & { incarnation: number }> = [];
  readonly exits: Array<{
    incarnation: number;
    code: number | null;
    signal: string | null;
    expected: boolean;
  }> = [];
  /** Set before the harness itself ends the process, so the exit is not taken for a crash. */
  private expectingExit = false;
  stopped = false;
  private exited: Promise<unknown> = Promise.resolve();
  private readonly listeners: Array<(l: LogLine) => void> = [];

  constructor(
    readonly id: string,
    private readonly env: Record<string, string>,
    private readonly echo: boolean,
    private readonly logFile?: WriteStream,
  ) {}

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.running) throw new Error(`${this.id} is already running`);
    this.incarnation++;
    const incarnation = this.incarnation;
    this.expectingExit = false;
    this.stopped = false;
    this.owned.clear();
    const child = spawn(process.execPath, ['--enable-source-maps', MEMBER], {
      env: { PATH: process.env.PATH ?? '', ...this.env, INSTANCE_ID: this.id },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.onLine(text, incarnation);
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      for (const text of d.toString('utf8').split('\n'))
        if (text.trim())
          this.onLine(JSON.stringify({ t: Date.now(), level: 'stderr', msg: text }), incarnation);
    });
    this.exited = once(child, 'exit').then(([code, signal]) => {
      this.exits.push({
        incarnation,
        code: code as number | null,
        signal: signal as string | null,
        expected: this.expectingExit,
      });
      if (this.incarnation === incarnation) this.owned.clear();
    });
  }

  private onLine(text: string, incarnation: number): void {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { t: Date.now(), level: 'raw', msg: text };
    }
    this.lines.push({ ...line, incarnation });
    this.logFile?.write(`[${this.id}#${incarnation}] ${text}\n`);
    if (this.echo) console.log(`[${this.id}#${incarnation}] ${text}`);
    if (incarnation === this.incarnation) {
      if (line.msg === 'partitions assigned and ready')
        for (const p of line.partitions ?? []) this.owned.add(p);
      if (line.msg === 'partitions revoked') for (const p of line.partitions ?? []) this.owned.delete(p);
    }
    for (const l of this.listeners) l(line);
  }

  /** Resolves with the first log line (from now on) that matches. */
  waitFor(match: (l: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.splice(this.listeners.indexOf(listener), 1);
        reject(new Error(`${this.id}: no "${what}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (l: LogLine) => {
        if (!match(l)) return;
        clearTimeout(timer);
        this.listeners.splice(this.listeners.indexOf(listener), 1);
        resolve(l);
      };
      this.listeners.push(listener);
    });
  }

  async kill(signal: 'SIGKILL' | 'SIGTERM', timeoutMs = 60_000): Promise<void> {
    if (!this.running) return;
    this.expectingExit = true;
    if (this.stopped) this.child!.kill('SIGCONT');
    this.child!.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      this.exited.then(() => 'done'),
      new Promise((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.child!.kill('SIGKILL');
      await this.exited;
      throw new Error(`${this.id} did not exit within ${timeoutMs} ms of ${signal}`);
    }
  }

  pause(): void {
    this.child!.kill('SIGSTOP');
    this.stopped = true;
  }

  resume(): void {
    this.child!.kill('SIGCONT');
    this.stopped = false;
  }

  count(msg: string, filter: (l: LogLine) => boolean = () => true): number {
    return this.lines.filter((l) => l.msg === msg && filter(l)).length;
  }
}

// ---- the chaos run --------------------------------------------------------------------------

export type ChaosStep =
  | { kind: 'kill' }
  /** SIGKILL a member with state right after a Kafka commit, before its Redis write (G2's gap). */
  | { kind: 'kill-before-apply' }
  | { kind: 'join'; member: string }
  | { kind: 'leave'; member: string }
  | { kind: 'stop' }
  | { kind: 'flushall' }
  /** Stops the test Redis (scripts/redis.sh) for `ms`, then starts it again, with its data or empty. */
  | { kind: 'redis-down'; ms: number; empty: boolean }
  /** Stops the test broker (scripts/kafka.sh) for `ms`, then starts it again with its data. */
  | { kind: 'broker-down'; ms: number };

export interface OutageReport {
  what: string;
  downMs: number;
  /** Running members whose readiness went false during the outage. */
  notReady: string[];
  /** Running members that never reported not ready: a readiness probe that missed the outage. */
  stayedReady: string[];
  /** From the infrastructure answering again to every running member ready again. */
  resumeMs: number | undefined;
}

export interface ChaosScenario {
  name: string;
  plan: PlanOptions;
  internalPartitions: number;
  /** Members started before the input, in this order. */
  initialMembers: string[];
  steps: ChaosStep[];
  /** Random pause before each step. */
  gapMs: [number, number];
  /** SIGKILLed members come back after a random delay in this range (same INSTANCE_ID). */
  restartDelayMs: [number, number];
  /** The input is produced at an even pace over this long, while the steps run. */
  produceMs: number;
  /** ... in one burst per tick (default 100 ms); longer ticks give the members backlogs to chew on. */
  produceTickMs?: number;
  settleTimeoutMs: number;
  memberEnv?: Record<string, string>;
  /**
   * Members reach Redis through a proxy that delays each request by this much, so that the
   * Redis write after each commit takes a while and SIGKILLs often land between the Kafka
   * commit and the state apply (the gap that a restore must replay, G2).
   */
  redisLatencyMs?: number;
  /** Seed for the schedule (targets, gaps); the plan has its own. */
  seed: number;
}

export interface ChaosReport {
  scenario: string;
  /** Every member's log lines, prefixed with member#incarnation. */
  logPath: string;
  seed: number;
  planSeed: number;
  durationsMs: { expected: number; chaos: number; settle: number; total: number };
  inputs: { total: number; valid: number; invalid: number; partitions: number; keys: number };
  events: {
    kills: number;
    /** Of the kills, those between a Kafka commit and its Redis write. */
    killsBeforeApply: number;
    restarts: number;
    joins: number;
    leaves: number;
    stops: number;
    flushes: number;
    crashes: number;
    log: string[];
  };
  windows: { expected: number; got: number } & MultisetDiff;
  totals: { keys: number; mismatched: number; nonMonotonic: number; samples: string[] };
  deadLetters: { expected: number; got: number } & MultisetDiff;
  late: { expected: number; got: number };
  accounting: { keys: number; mismatched: number; samples: string[] };
  state: StateDiff;
  /** The expected result computed twice (by partition and round robin) agrees, and matches the plan. */
  expectedSelfCheck: string[];
  members: Record<
    string,
    {
      incarnations: number;
      exits: string[];
      catchUps: number;
      rebuilds: number;
      refused: Record<string, number>;
      aborted: number;
      fatal: string[];
    }
  >;
  /** The SIGSTOPped member: whether its Redis write was held back until its partitions moved, and how Redis answered it. */
  zombie: { member: string | undefined; heldWrite: boolean; refusedWrite: string | undefined };
  outages: OutageReport[];
  /** Problems with the schedule itself (a stalled member whose partitions never moved, a leave that failed). */
  scheduleProblems: string[];
  /** Fatal exits of members that were never stalled: each one is a runtime problem. */
  unexpectedFatal: string[];
}

/** Every member id the scenario uses. */
function memberIds(s: ChaosScenario): string[] {
  const ids = new Set(s.initialMembers);
  for (const step of s.steps) if (step.kind === 'join' || step.kind === 'leave') ids.add(step.member);
  return [...ids];
}

const between = (random: () => number, [lo, hi]: [number, number]): number =>
  Math.round(lo + random() * (hi - lo));

/** Inserts `kills` kill steps at random places among the structural steps. */
export function withKills(random: () => number, structural: ChaosStep[], kills: number): ChaosStep[] {
  const steps = [...structural];
  for (let i = 0; i < kills; i++)
    steps.splice(Math.floor(random() * (steps.length + 1)), 0, { kind: 'kill' });
  return steps;
}

async function readState(
  store: RedisStateStore,
  app: string,
  partitions: number,
): Promise<Map<string, Record<string, Record<string, string>>>> {
  const out = new Map<string, Record<string, Record<string, string>>>();
  for (let p = 0; p < partitions; p++) {
    const stores: Record<string, Record<string, string>> = {};
    for (const s of [CHAOS.windowStore, CHAOS.totalsStore])
      stores[s] = await store.readAll(repartitionTopic(app), p, s);
    out.set(`${repartitionTopic(app)}/${p}`, stores);
  }
  return out;
}

/**
 * A TCP proxy between one member and Redis. It delays every request by `delayMs` (keeping
 * their order), and it can be armed to call back, and drop the request, when the member sends
 * its next state write (the APPLY script in 'apply' mode): the harness then SIGKILLs the member
 * after its Kafka transaction committed and before Redis got the transaction's state.
 */
export class RedisProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<{ destroy(): void }>();
  private onApply: (() => void) | undefined;
  private onHold: (() => void) | undefined;
  /** Requests held back (in order) since a held state write, until release(). */
  private held: Array<() => void> | undefined;
  url = '';

  constructor(
    private readonly redisUrl: string,
    private readonly delayMs: number,
  ) {}

  async start(): Promise<this> {
    const target = new URL(this.redisUrl);
    const server = createServer((client) => {
      const upstream = createConnection({ host: target.hostname, port: Number(target.port || 6379) });
      this.sockets.add(client);
      this.sockets.add(upstream);
      client.on('data', (chunk: Buffer) => {
        const send = () => {
          if (!upstream.destroyed) upstream.write(chunk);
        };
        if (this.held) {
          this.held.push(send);
          return;
        }
        if (this.onApply && isStateWrite(chunk)) {
          const cb = this.onApply;
          this.onApply = undefined;
          cb();
          return;
        }
        if (this.onHold && isStateWrite(chunk)) {
          const cb = this.onHold;
          this.onHold = undefined;
          this.held = [send];
          cb();
          return;
        }
        if (this.delayMs > 0) setTimeout(send, this.delayMs);
        else send();
      });
      upstream.pipe(client);
      const end = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    this.server = server;
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no port');
    const url = new URL(this.redisUrl);
    url.hostname = '127.0.0.1';
    url.port = String(address.port);
    this.url = url.toString();
    return this;
  }

  /** Resolves when the member sends its next state write, which is dropped; `then` runs first. */
  nextStateWrite(then: () => void, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.onApply = undefined;
        resolve(false);
      }, timeoutMs);
      this.onApply = () => {
        clearTimeout(timer);
        then();
        resolve(true);
      };
    });
  }

  /**
   * Holds the member's next state write (and everything after it) back; `then` runs when it
   * arrives. release() sends them on, late: the write of a zombie.
   */
  holdNextStateWrite(then: () => void, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.onHold = undefined;
        resolve(false);
      }, timeoutMs);
      this.onHold = () => {
        clearTimeout(timer);
        then();
        resolve(true);
      };
    });
  }

  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const send of held) send();
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server?.close();
  }
}

/** An EVALSHA/EVAL whose arguments include the bulk string "apply": the fenced state write. */
function isStateWrite(chunk: Buffer): boolean {
  const text = chunk.toString('latin1');
  return /\r\n\$(?:7\r\nevalsha|4\r\neval)\r\n/i.test(`\r\n${text}`) && text.includes('\r\n$5\r\napply\r\n');
}

/** Waits until the broker's metadata lists every topic with a leader for each partition. */
async function waitForTopics(brokers: string, names: string[]): Promise<void> {
  const admin = new KafkaJS.Kafka(librdkafkaConfig({ brokers, clientId: 'chaos-admin' })).admin();
  await admin.connect();
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const meta = await admin.fetchTopicMetadata({ topics: names, timeout: 5000 });
        if (meta.length === names.length && meta.every((t) => t.partitions.every((p) => p.leader >= 0)))
          return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
      if (Date.now() > deadline) throw new Error(`topics not in the broker's metadata: ${names.join(', ')}`);
      await sleep(200);
    }
  } finally {
    await admin.disconnect();
  }
}

export async function runChaos(s: ChaosScenario): Promise<ChaosReport> {
  const t0 = Date.now();
  const random = rng(s.seed);
  const { brokers, redisUrl } = infra();
  const app = uniqueName(`chaos-${s.name}`);
  const topics: ChaosTopics = { input: `${app}-in`, windows: `${app}-windows`, totals: `${app}-totals` };
  const plan = makePlan(s.plan);
  const log: string[] = [];
  const note = (m: string) => {
    const line = `+${((Date.now() - t0) / 1000).toFixed(1)}s ${m}`;
    log.push(line);
    console.log(`[chaos ${s.name}] ${line}`);
  };
  note(
    `app ${app}: ${plan.total} records (${plan.invalid} invalid) over ${s.plan.partitions} partitions, schedule seed ${s.seed}, plan seed ${s.plan.seed}`,
  );

  // The failure-free answer, twice, in two interleavings: they must agree, and match the plan.
  const expected = await expectedRun(plan, app, topics, s.internalPartitions, 'by-partition');
  const other = await expectedRun(plan, app, topics, s.internalPartitions, 'round-robin');
  const selfCheck = sameExpected(expected, other).map((p) => `by-partition vs round-robin: ${p}`);
  const direct = directResult(plan);
  const dw = diffMultisets(direct.windows, expected.windows);
  if (dw.missing + dw.duplicates + dw.unexpected > 0)
    selfCheck.push(`driver windows differ from the plan: ${JSON.stringify(dw)}`);
  if (!sameMap(direct.totals, expected.totals)) selfCheck.push('driver totals differ from the plan');
  const dd = diffMultisets(direct.dlq, expected.dlq);
  if (dd.missing + dd.duplicates + dd.unexpected > 0)
    selfCheck.push(`driver dead letters differ from the plan: ${JSON.stringify(dd)}`);
  if (expected.late !== 0) selfCheck.push(`driver judged ${expected.late} records late`);
  const tExpected = Date.now() - t0;
  note(
    `expected: ${expected.windowCount} window outputs, ${expected.totals.size} keys, ${expected.dlqCount} dead letters (${tExpected} ms)`,
  );

  const specs = runtimeTopicSpecs(app, [chaosTopology(topics)], s.internalPartitions);
  await createTopics([
    { name: topics.input, partitions: s.plan.partitions },
    { name: topics.windows, partitions: 4 },
    { name: topics.totals, partitions: 4, cleanupPolicy: 'compact' },
    ...specs,
  ]);

  // Members subscribe at once: a topic the broker's metadata does not list yet would be left
  // out of their subscription until librdkafka's next metadata refresh, minutes later.
  await waitForTopics(brokers, [topics.input, topics.windows, topics.totals, ...specs.map((t) => t.name)]);

  const redis: RedisClient = createRedisClient({ url: redisUrl });
  redis.on('error', () => undefined);
  await connectRedis(redis);
  const stateStore = new RedisStateStore(redis, { app });

  const env: Record<string, string> = {
    KAFKA_BROKERS: brokers,
    REDIS_URL: redisUrl,
    CHAOS_APP: app,
    CHAOS_INPUT: topics.input,
    CHAOS_WINDOWS: topics.windows,
    CHAOS_TOTALS: topics.totals,
    CHAOS_PARTITIONS: String(s.internalPartitions),
    ...(s.memberEnv ?? {}),
  };
  const echo = process.env.CHAOS_ECHO === '1';
  // Every member's log, kept for the post-mortem of a failed run.
  const logDir = join(ROOT, '.run', 'chaos-logs');
  mkdirSync(logDir, { recursive: true });
  const logPath = join(logDir, `${app}.log`);
  const logFile = createWriteStream(logPath);
  const members = new Map<string, Member>();
  /** Each member reaches Redis through its own proxy. */
  const proxies = new Map<string, RedisProxy>();
  for (const id of memberIds(s)) {
    proxies.set(id, await new RedisProxy(redisUrl, s.redisLatencyMs ?? 0).start());
    members.set(id, new Member(id, { ...env, REDIS_URL: proxies.get(id)!.url }, echo, logFile));
  }
  const member = (id: string): Member => {
    const m = members.get(id);
    if (!m) throw new Error(`unknown member ${id}`);
    return m;
  };
  /** Members that should be running (the supervisor restarts those that crash). */
  const wanted = new Set<string>();
  const events = {
    kills: 0,
    killsBeforeApply: 0,
    restarts: 0,
    joins: 0,
    leaves: 0,
    stops: 0,
    flushes: 0,
    crashes: 0,
  };
  const scheduleProblems: string[] = [];
  const zombies = new Set<string>();
  const zombie: ChaosReport['zombie'] = { member: undefined, heldWrite: false, refusedWrite: undefined };
  const outages: OutageReport[] = [];
  let finished = false;

  const startMember = async (id: string, waitReady: boolean): Promise<void> => {
    const m = member(id);
    const ready = m.waitFor((l) => l.msg === 'member started', 60_000, 'member started');
    m.start();
    if (waitReady) await ready;
    else ready.catch(() => undefined);
  };

  // A supervisor, as Kubernetes would be: a member that exits by itself is restarted.
  const supervisor = (async () => {
    while (!finished) {
      for (const id of wanted) {
        const m = member(id);
        if (m.running || m.child === undefined) continue;
        const last = m.exits[m.exits.length - 1];
        if (!last || last.expected || last.incarnation !== m.incarnation) continue;
        events.crashes++;
        note(
          `${id}#${m.incarnation} exited by itself (code ${last.code}, signal ${last.signal}): restarting`,
        );
        await sleep(500);
        if (!m.running) await startMember(id, false);
      }
      await sleep(200);
    }
  })();

  try {
    for (const id of s.initialMembers) {
      wanted.add(id);
      await startMember(id, true);
      note(`${id} started`);
    }

    let stepsOver = (): void => undefined;
    const stepsDone = new Promise<void>((resolve) => (stepsOver = resolve));
    // The input, at an even pace, while the schedule runs; the sentinels last.
    const producer = new KafkaJS.Kafka(librdkafkaConfig({ brokers, clientId: `${app}-producer` })).producer({
      'linger.ms': 5,
      'enable.idempotence': true,
    });
    await producer.connect();
    const produceAll = (async () => {
      const sent = plan.partitions.map(() => 0);
      const bodies = plan.partitions.map((l) => l.slice(0, -1));
      const start = Date.now();
      for (;;) {
        const f = Math.min(1, (Date.now() - start) / s.produceMs);
        const messages: Array<{ key: string; value: Buffer; partition: number }> = [];
        bodies.forEach((list, p) => {
          const to = Math.floor(f * list.length);
          for (; sent[p] < to; sent[p]++) {
            const r = list[sent[p]];
            messages.push({ key: r.key, value: r.value, partition: r.partition });
          }
        });
        for (let i = 0; i < messages.length; i += 5000)
          await producer.send({ topic: topics.input, messages: messages.slice(i, i + 5000) });
        if (f >= 1) break;
        await sleep(s.produceTickMs ?? 100);
      }
      note(`input produced except the sentinels`);
      // The sentinels close every window once the schedule is over: a write after the last step.
      await stepsDone;
      await producer.send({
        topic: topics.input,
        messages: plan.partitions.map((l) => {
          const r = l[l.length - 1];
          return { key: r.key, value: r.value, partition: r.partition };
        }),
      });
      await producer.disconnect();
      note(`sentinels produced: ${plan.total} records in all`);
    })();

    for (const step of s.steps) {
      await sleep(between(random, s.gapMs));
      const running = [...wanted].map(member).filter((m) => m.running && !m.stopped);
      switch (step.kind) {
        case 'kill': {
          // A member that is up (the supervisor may be restarting the others).
          for (let i = 0; i < 100 && running.length === 0; i++) {
            await sleep(100);
            running.push(...[...wanted].map(member).filter((m) => m.running && !m.stopped));
          }
          if (running.length === 0) {
            scheduleProblems.push('kill skipped: no member running for 10 s');
            break;
          }
          // Preferably one that owns partitions (killing a member that has not joined yet tests
          // little), and most often one with state: only those have a Redis write to interrupt.
          const owning = running.filter((r) => r.owned.size > 0);
          const stateful = owning.filter((r) =>
            [...r.owned].some((p) => p.startsWith(repartitionTopic(app))),
          );
          const pool =
            stateful.length > 0 && random() < 0.7 ? stateful : owning.length > 0 ? owning : running;
          const m = pool[Math.floor(random() * pool.length)];
          const incarnation = m.incarnation;
          const owned = m.owned.size;
          await m.kill('SIGKILL');
          events.kills++;
          const delay = between(random, s.restartDelayMs);
          note(`SIGKILL ${m.id}#${incarnation} (owning ${owned}); restart in ${delay} ms`);
          await sleep(delay);
          await startMember(m.id, false);
          events.restarts++;
          break;
        }
        case 'kill-before-apply': {
          const statefulNow = () =>
            [...wanted]
              .map(member)
              .filter(
                (r) =>
                  r.running && !r.stopped && [...r.owned].some((p) => p.startsWith(repartitionTopic(app))),
              );
          // After a join or a kill the group may still be rebalancing: give it time.
          for (let i = 0; i < 120 && statefulNow().length === 0; i++) await sleep(250);
          const stateful = statefulNow();
          if (stateful.length === 0) {
            scheduleProblems.push('kill-before-apply skipped: no member owns a stateful task');
            break;
          }
          const m = stateful[Math.floor(random() * stateful.length)];
          const incarnation = m.incarnation;
          // Not while it restores (a restore writes state too): a second after its last assignment.
          const settled = () => {
            const last = m.lines.findLast(
              (l) => l.incarnation === m.incarnation && l.msg === 'partitions assigned and ready',
            );
            return last !== undefined && Date.now() - last.t > 1000;
          };
          for (let i = 0; i < 100 && !settled(); i++) await sleep(100);
          const hit = await proxies.get(m.id)!.nextStateWrite(() => void m.kill('SIGKILL'), 15_000);
          // No state write in 15 s (the input may be over): a plain SIGKILL instead.
          await m.kill('SIGKILL');
          events.kills++;
          if (hit) events.killsBeforeApply++;
          const delay = between(random, s.restartDelayMs);
          note(
            hit
              ? `SIGKILL ${m.id}#${incarnation} between its Kafka commit and its Redis write; restart in ${delay} ms`
              : `SIGKILL ${m.id}#${incarnation} (it wrote no state for 15 s); restart in ${delay} ms`,
          );
          await sleep(delay);
          await startMember(m.id, false);
          events.restarts++;
          break;
        }
        case 'join':
          wanted.add(step.member);
          await startMember(step.member, false);
          events.joins++;
          note(`${step.member} joins`);
          break;
        case 'leave': {
          const m = member(step.member);
          wanted.delete(step.member);
          if (!m.running) break;
          const began = Date.now();
          try {
            await m.kill('SIGTERM', 60_000);
          } catch (err) {
            scheduleProblems.push(String(err));
          }
          const exit = m.exits[m.exits.length - 1];
          if (exit?.code !== 0)
            scheduleProblems.push(`${m.id} left with ${exit?.code ?? exit?.signal}, not 0`);
          events.leaves++;
          note(`${m.id} left gracefully in ${Date.now() - began} ms (exit ${exit?.code ?? exit?.signal})`);
          break;
        }
        case 'stop': {
          // A member that owns partitions, while another one can take them over (after a join or
          // a kill the group may still be rebalancing: give it time).
          for (let i = 0; i < 120 && running.filter((m) => m.owned.size > 0).length === 0; i++) {
            await sleep(250);
            running.splice(
              0,
              running.length,
              ...[...wanted].map(member).filter((m) => m.running && !m.stopped),
            );
          }
          const owners = running.filter((m) => m.owned.size > 0);
          if (running.length < 2 || owners.length === 0) {
            scheduleProblems.push(`stop skipped: ${running.length} running, ${owners.length} owning`);
            break;
          }
          // Best: one with state, stopped just as it sends the Redis write after a commit. The
          // proxy holds that write back until the partitions have moved and delivers it then,
          // as a zombie's late write: Redis must refuse it (G3).
          const stateful = owners.filter((r) =>
            [...r.owned].some((p) => p.startsWith(repartitionTopic(app))),
          );
          let m = owners[Math.floor(random() * owners.length)];
          let heldWrite = false;
          if (stateful.length > 0) {
            m = stateful[Math.floor(random() * stateful.length)];
            const settled = () => {
              const last = m.lines.findLast(
                (l) => l.incarnation === m.incarnation && l.msg === 'partitions assigned and ready',
              );
              return last !== undefined && Date.now() - last.t > 1000;
            };
            for (let i = 0; i < 100 && !settled(); i++) await sleep(100);
            heldWrite = await proxies.get(m.id)!.holdNextStateWrite(() => m.pause(), 15_000);
          }
          if (!heldWrite) m.pause();
          const owned = [...m.owned];
          const stoppedAt = Date.now();
          events.stops++;
          zombies.add(`${m.id}#${m.incarnation}`);
          zombie.member = `${m.id}#${m.incarnation}`;
          zombie.heldWrite = heldWrite;
          note(
            `SIGSTOP ${m.id}#${m.incarnation}${heldWrite ? ' as it sent its Redis write (held back)' : ''}, ` +
              `owning ${owned.length}: ${owned.join(' ')}`,
          );
          // Until every one of its partitions is ready on another member.
          const moved = (): string[] =>
            owned.filter(
              (p) =>
                ![...members.values()].some(
                  (o) =>
                    o !== m &&
                    o.lines.some(
                      (l) =>
                        l.t >= stoppedAt &&
                        l.incarnation === o.incarnation &&
                        l.msg === 'partitions assigned and ready' &&
                        (l.partitions ?? []).includes(p),
                    ),
                ),
            );
          const deadline = Date.now() + 60_000;
          while (moved().length > 0 && Date.now() < deadline) await sleep(250);
          if (moved().length > 0) scheduleProblems.push(`${m.id}'s ${moved().join(' ')} never moved`);
          note(
            `${m.id}'s partitions moved after ${Date.now() - stoppedAt} ms; ${heldWrite ? 'its write goes to Redis now; ' : ''}SIGCONT`,
          );
          const woke = Date.now();
          // Give the zombie time to find out; what it did is in the report.
          const reaction = m
            .waitFor(
              (l) =>
                (heldWrite && l.msg === 'state apply refused') ||
                (!heldWrite && l.msg === 'partitions revoked' && l.lost === true) ||
                l.msg === 'member exiting after a fatal error',
              30_000,
              heldWrite ? 'a refused state write' : 'lost partitions',
            )
            .catch(() => undefined);
          proxies.get(m.id)!.release();
          m.resume();
          const seen = await reaction;
          zombie.refusedWrite = m.lines.find((l) => l.t >= woke && l.msg === 'state apply refused')?.outcome;
          note(
            `${m.id} after SIGCONT: ${seen ? `${seen.msg} after ${seen.t - woke} ms` : 'no reaction within 30 s'}; ` +
              m.lines
                .filter((l) => l.t >= woke && l.level !== 'info')
                .map((l) => `${l.msg}${l.outcome ? ` (${l.outcome})` : ''}${l.err ? `: ${l.err}` : ''}`)
                .slice(0, 6)
                .join('; '),
          );
          break;
        }
        case 'flushall':
          await redis.flushall();
          events.flushes++;
          note('FLUSHALL');
          break;
        case 'redis-down':
        case 'broker-down': {
          const script = step.kind === 'redis-down' ? 'redis' : 'kafka';
          const what =
            step.kind === 'redis-down'
              ? `Redis stopped ${step.ms} ms, restarted ${step.empty ? 'empty' : 'with its data'}`
              : `broker stopped ${step.ms} ms, restarted with its data`;
          const up = [...wanted].map(member).filter((m) => m.running);
          const downAt = Date.now();
          await infraScript(script, ['stop']);
          note(`${what}: stopped`);
          await sleep(step.ms);
          await infraScript(
            script,
            step.kind === 'redis-down' && step.empty ? ['start', '--clean'] : ['start'],
          );
          const backAt = Date.now();
          note(`${what}: answering again after ${backAt - downAt} ms`);
          const readiness = (m: Member) =>
            m.lines.filter((l) => l.incarnation === m.incarnation && l.msg === 'readiness' && l.t >= downAt);
          const readyAgainAt = (m: Member): number | undefined => {
            const lines = readiness(m);
            const last = lines[lines.length - 1];
            return last?.ready === true && lines.some((l) => l.ready === false)
              ? lines.find((l) => l.ready === true && l.t >= backAt - 1000)?.t
              : undefined;
          };
          const deadline = Date.now() + 180_000;
          while (Date.now() < deadline && up.some((m) => m.running && readyAgainAt(m) === undefined))
            await sleep(250);
          const times = up.map(readyAgainAt);
          const resumeMs = times.every((t) => t !== undefined)
            ? Math.max(0, ...times.map((t) => t - backAt))
            : undefined;
          const report: OutageReport = {
            what,
            downMs: backAt - downAt,
            notReady: up.filter((m) => readiness(m).some((l) => l.ready === false)).map((m) => m.id),
            stayedReady: up.filter((m) => !readiness(m).some((l) => l.ready === false)).map((m) => m.id),
            resumeMs,
          };
          outages.push(report);
          note(
            `${what}: not ready during it: ${report.notReady.join(' ') || 'none'}; ` +
              (resumeMs === undefined
                ? 'not all ready again within 180 s'
                : `all ready again ${resumeMs} ms after`),
          );
          break;
        }
      }
    }
    stepsOver();
    await produceAll;
    const tChaos = Date.now() - t0;

    // Settle: every wanted member up, Redis at the expected state, all window outputs there.
    for (const id of wanted) if (!member(id).running) await startMember(id, false);
    note(`settling with ${[...wanted].join(', ')}`);
    const settleDeadline = Date.now() + s.settleTimeoutMs;
    const allPartitions = [
      ...Array.from({ length: s.plan.partitions }, (_, p) => `${topics.input}/${p}`),
      ...Array.from({ length: s.internalPartitions }, (_, p) => `${repartitionTopic(app)}/${p}`),
    ];
    // Settled: every wanted member up and every partition ready on one of them, Redis at the
    // expected state, and every expected window output there.
    let lastDiff: StateDiff | undefined;
    let unowned = allPartitions;
    while (Date.now() < settleDeadline) {
      const up = [...wanted].map(member).filter((m) => m.running);
      unowned = allPartitions.filter((p) => !up.some((m) => m.owned.has(p)));
      if (up.length === wanted.size && unowned.length === 0) {
        lastDiff = diffState(expected.state, await readState(stateStore, app, s.internalPartitions));
        if (lastDiff.mismatched === 0) {
          const w = await readTopics([topics.windows], { quietMs: 300 });
          if (w.length >= expected.windowCount) break;
        }
      }
      await sleep(1000);
    }
    note(
      `settled: ${unowned.length} partitions unowned, ${lastDiff?.mismatched ?? '?'} Redis entries differ; ` +
        `owners: ${[...wanted].map((id) => `${id}=${member(id).owned.size}`).join(' ')}`,
    );
    if (unowned.length > 0)
      scheduleProblems.push(`partitions never owned after the schedule: ${unowned.join(' ')}`);
    const tSettle = Date.now() - t0 - tChaos;

    const dlqTopic = internalTopics.dlq(topics.input);
    const lateTopic = internalTopics.late(topics.input);
    const all = await readTopics([topics.windows, topics.totals, dlqTopic, lateTopic], {
      quietMs: 3000,
      timeoutMs: 300_000,
    });
    const by = (t: string) => all.filter((r) => r.topic === t);
    const windowsGot = by(topics.windows);
    const dlqGot = by(dlqTopic);
    const lateGot = by(lateTopic);
    const wdiff = diffMultisets(
      expected.windows,
      multiset(windowsGot.map((r) => windowEntry(r.key, r.value?.toString('utf8') ?? '<null>'))),
    );
    const ddiff = diffMultisets(
      expected.dlq,
      multiset(dlqGot.map((r) => dlqEntry(r.key, r.value?.toString('utf8') ?? '<null>', r.headers))),
    );
    const totals = checkTotals(by(topics.totals), expected.totals);
    const accounting = checkAccounting(
      plan,
      windowsGot,
      dlqGot,
      lateGot,
      await readState(stateStore, app, s.internalPartitions),
    );
    const state = diffState(expected.state, await readState(stateStore, app, s.internalPartitions));

    const memberReport: ChaosReport['members'] = {};
    const unexpectedFatal: string[] = [];
    for (const m of members.values()) {
      const fatalLines = m.lines.filter(
        (l) => l.msg === 'member exiting after a fatal error' || l.msg === 'member failed to start',
      );
      const fatal = fatalLines.map((l) => `#${l.incarnation}: ${l.code ?? ''} ${l.err ?? ''}`);
      // A zombie may die when it wakes up; any other fatal exit is a runtime problem.
      unexpectedFatal.push(
        ...fatalLines
          .filter((l) => !zombies.has(`${m.id}#${l.incarnation}`))
          .map((l) => `${m.id}#${l.incarnation}: ${l.code ?? ''} ${l.err ?? ''}`),
      );
      const refused: Record<string, number> = {};
      for (const l of m.lines)
        if (l.msg === 'state apply refused') refused[l.outcome ?? '?'] = (refused[l.outcome ?? '?'] ?? 0) + 1;
      memberReport[m.id] = {
        incarnations: m.incarnation,
        exits: m.exits.map((e) => `#${e.incarnation}:${e.code ?? e.signal}${e.expected ? '' : '(own)'}`),
        catchUps: m.count('catching up state from the changelog'),
        rebuilds: m.count('rebuilding state from the changelog'),
        refused,
        aborted: m.count('transaction aborted; rewinding to the last commit'),
        fatal,
      };
    }
    const report: ChaosReport = {
      scenario: s.name,
      seed: s.seed,
      planSeed: s.plan.seed,
      durationsMs: {
        expected: tExpected,
        chaos: tChaos - tExpected,
        settle: tSettle,
        total: Date.now() - t0,
      },
      inputs: {
        total: plan.total,
        valid: plan.valid,
        invalid: plan.invalid,
        partitions: s.plan.partitions,
        keys: expected.totals.size,
      },
      events: { ...events, log },
      windows: { expected: expected.windowCount, got: windowsGot.length, ...wdiff },
      totals,
      deadLetters: { expected: expected.dlqCount, got: dlqGot.length, ...ddiff },
      late: { expected: expected.late, got: lateGot.length },
      accounting,
      state,
      expectedSelfCheck: selfCheck,
      members: memberReport,
      zombie,
      outages,
      scheduleProblems,
      unexpectedFatal,
      logPath,
    };
    return report;
  } finally {
    finished = true;
    await supervisor;
    for (const m of members.values()) await m.kill('SIGKILL').catch(() => undefined);
    redis.disconnect();
    for (const p of proxies.values()) p.close();
    logFile.end();
  }
}

/** The last value per key must be the expected final total, and each key's counts must only grow. */
function checkTotals(records: ReadRecord[], expected: Map<string, TotalsOutput>): ChaosReport['totals'] {
  const last = new Map<string, TotalsOutput>();
  const samples: string[] = [];
  let nonMonotonic = 0;
  const ordered = [...records].sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  for (const r of ordered) {
    const v = JSON.parse(r.value!.toString('utf8')) as TotalsOutput;
    const prev = last.get(r.key!);
    if (prev && !(v.count > prev.count && v.sum >= prev.sum)) {
      nonMonotonic++;
      if (samples.length < 10) samples.push(`${r.key}: ${JSON.stringify(prev)} then ${JSON.stringify(v)}`);
    }
    last.set(r.key!, v);
  }
  let mismatched = 0;
  for (const key of new Set([...expected.keys(), ...last.keys()])) {
    if (JSON.stringify(expected.get(key)) === JSON.stringify(last.get(key))) continue;
    mismatched++;
    if (samples.length < 10)
      samples.push(
        `${key}: expected ${JSON.stringify(expected.get(key))} got ${JSON.stringify(last.get(key))}`,
      );
  }
  return { keys: last.size, mismatched, nonMonotonic, samples };
}

/**
 * semantics.md G1 for any input: every record is accounted for exactly once, per key:
 * produced = window counts (fired, or still open in Redis) + late + dead letters.
 */
function checkAccounting(
  plan: InputPlan,
  windows: ReadRecord[],
  dlq: ReadRecord[],
  late: ReadRecord[],
  state: Map<string, Record<string, Record<string, string>>>,
): ChaosReport['accounting'] {
  const produced = new Map<string, number>();
  for (const list of plan.partitions)
    for (const r of list) produced.set(r.key, (produced.get(r.key) ?? 0) + 1);
  const seen = new Map<string, number>();
  const add = (key: string | null, n: number) => seen.set(key ?? '', (seen.get(key ?? '') ?? 0) + n);
  for (const r of windows) add(r.key, (JSON.parse(r.value!.toString('utf8')) as WindowOutput).count);
  for (const r of [...dlq, ...late]) add(r.key, 1);
  for (const stores of state.values()) {
    for (const [key, text] of Object.entries(stores[CHAOS.windowStore] ?? {})) {
      const open = decodeEntry(text).value as Record<string, { count: number }>;
      for (const acc of Object.values(open)) add(key, acc.count);
    }
  }
  let mismatched = 0;
  const samples: string[] = [];
  for (const key of new Set([...produced.keys(), ...seen.keys()])) {
    if ((produced.get(key) ?? 0) === (seen.get(key) ?? 0)) continue;
    mismatched++;
    if (samples.length < 10)
      samples.push(`${key}: produced ${produced.get(key) ?? 0}, accounted ${seen.get(key) ?? 0}`);
  }
  return { keys: produced.size, mismatched, samples };
}

/** `3x message` for repeated messages, in first-seen order. */
function countSame(items: string[]): string[] {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(i, (counts.get(i) ?? 0) + 1);
  return [...counts].map(([i, n]) => (n > 1 ? `${n}x ${i}` : i));
}

/** A short summary for the test output. */
export function summarize(r: ChaosReport): string {
  const members = Object.entries(r.members)
    .map(
      ([id, m]) =>
        `${id}: ${m.incarnations} incarnation(s), exits [${m.exits.join(' ')}], catch-ups ${m.catchUps}, ` +
        `rebuilds ${m.rebuilds}, refused ${JSON.stringify(m.refused)}, aborts ${m.aborted}` +
        (m.fatal.length
          ? `, fatal exits [${countSame(m.fatal.map((f) => f.replace(/^#\d+: /, ''))).join('; ')}]`
          : ''),
    )
    .join('\n  ');
  return [
    `chaos ${r.scenario}: seed ${r.seed}, plan seed ${r.planSeed}`,
    `durations: expected ${r.durationsMs.expected} ms, chaos ${r.durationsMs.chaos} ms, settle ${r.durationsMs.settle} ms, total ${r.durationsMs.total} ms`,
    `inputs: ${r.inputs.total} (${r.inputs.valid} valid, ${r.inputs.invalid} invalid) over ${r.inputs.partitions} partitions, ${r.inputs.keys} keys`,
    `events: ${r.events.kills} SIGKILLs (${r.events.killsBeforeApply} between a commit and its Redis write), ${r.events.restarts} restarts, ${r.events.joins} joins, ${r.events.leaves} leaves, ${r.events.stops} SIGSTOPs, ${r.events.flushes} FLUSHALLs, ${r.events.crashes} crashes`,
    `window outputs: expected ${r.windows.expected}, got ${r.windows.got}, missing ${r.windows.missing}, duplicates ${r.windows.duplicates}, unexpected ${r.windows.unexpected}`,
    `totals: ${r.totals.keys} keys, ${r.totals.mismatched} final values wrong, ${r.totals.nonMonotonic} non-increasing updates`,
    `dead letters: expected ${r.deadLetters.expected}, got ${r.deadLetters.got}, missing ${r.deadLetters.missing}, duplicates ${r.deadLetters.duplicates}, unexpected ${r.deadLetters.unexpected}`,
    `late: expected ${r.late.expected}, got ${r.late.got}`,
    `accounting (input = window counts + open windows + late + dead letters, per key): ${r.accounting.mismatched} of ${r.accounting.keys} keys off`,
    `redis state: ${r.state.entries} entries compared, ${r.state.mismatched} differ`,
    `restores that replayed a changelog gap (Redis behind Kafka): ${Object.values(r.members).reduce((n, m) => n + m.catchUps, 0)}`,
    ...(r.zombie.member
      ? [
          `zombie ${r.zombie.member}: ${r.zombie.heldWrite ? `its late Redis write was answered ${r.zombie.refusedWrite ?? 'with nothing (not refused)'}` : 'stopped between writes'}`,
        ]
      : []),
    ...r.outages.map(
      (o) =>
        `outage: ${o.what}: not ready during it: ${o.notReady.join(' ') || 'none'}; resumed ${o.resumeMs === undefined ? 'never' : `${o.resumeMs} ms after`}`,
    ),
    `expected self-check: ${r.expectedSelfCheck.length === 0 ? 'ok' : r.expectedSelfCheck.join('; ')}`,
    `members:\n  ${members}`,
    `member logs: ${r.logPath}`,
    ...(r.scheduleProblems.length ? [`schedule problems: ${r.scheduleProblems.join('; ')}`] : []),
    ...(r.unexpectedFatal.length
      ? [
          `unexpected fatal exits: ${countSame(r.unexpectedFatal.map((f) => f.replace(/#\d+: /, ': '))).join('; ')}`,
        ]
      : []),
    ...[
      ...r.windows.samples,
      ...r.totals.samples,
      ...r.deadLetters.samples,
      ...r.accounting.samples,
      ...r.state.samples,
    ].map((x) => `  ${x}`),
  ].join('\n');
}

/** Every G1/G2 check of a report, as one list of failures (empty when the run was exact). */
export function failures(r: ChaosReport): string[] {
  const f: string[] = [];
  if (r.expectedSelfCheck.length) f.push(...r.expectedSelfCheck);
  if (r.windows.missing) f.push(`${r.windows.missing} window outputs missing`);
  if (r.windows.duplicates) f.push(`${r.windows.duplicates} window outputs duplicated`);
  if (r.windows.unexpected) f.push(`${r.windows.unexpected} window outputs unexpected`);
  if (r.totals.mismatched) f.push(`${r.totals.mismatched} final totals wrong`);
  if (r.totals.nonMonotonic) f.push(`${r.totals.nonMonotonic} totals updates went backwards`);
  if (r.deadLetters.missing + r.deadLetters.duplicates + r.deadLetters.unexpected)
    f.push(
      `dead letters: ${r.deadLetters.missing} missing, ${r.deadLetters.duplicates} duplicated, ${r.deadLetters.unexpected} unexpected`,
    );
  if (r.late.got !== r.late.expected) f.push(`${r.late.got} late records, expected ${r.late.expected}`);
  if (r.accounting.mismatched) f.push(`${r.accounting.mismatched} keys not accounted for exactly once`);
  if (r.state.mismatched) f.push(`${r.state.mismatched} Redis entries differ from the failure-free state`);
  if (r.zombie.heldWrite && r.zombie.refusedWrite !== 'fenced')
    f.push(
      `the zombie's late Redis write was not refused as fenced (${r.zombie.refusedWrite ?? 'no refusal logged'})`,
    );
  if (r.unexpectedFatal.length)
    f.push(`fatal exits: ${countSame(r.unexpectedFatal.map((x) => x.replace(/#\d+: /, ': '))).join('; ')}`);
  for (const o of r.outages) {
    if (o.stayedReady.length) f.push(`${o.what}: ${o.stayedReady.join(' ')} stayed ready`);
    if (o.resumeMs === undefined) f.push(`${o.what}: not every member was ready again within 180 s`);
  }
  f.push(...r.scheduleProblems);
  return f;
}
