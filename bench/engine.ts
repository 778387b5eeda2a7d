/**
 * The `engine` scenario's process (`npm run bench -- engine`, see docs/benchmarks.md): one
 * pipeline's source and keyed tasks, run in this process on generated records with no Kafka and
 * no Redis, as one member's consume loop would run them: the source tasks' packs become the
 * keyed tasks' input one transaction later, and every transaction ends with the changelog
 * records, the state delta and its apply (to MemoryStateStore). What it measures is the runtime's own work per event,
 * the part of a member's CPU that the Kafka and Redis clients do not spend, with a spread of a
 * few percent where the full scenarios have about fifteen. The baseline in the same process:
 * each record decoded from UTF-8, parsed, encoded again and copied into a buffer, the least a
 * JSON consume-transform-produce does per event.
 *
 * Prints one JSON line (EngineRun). `--digest` adds a hash of every record the tasks wrote, in
 * order, to check that a change meant to be faster changed no output.
 */
import { createHash } from 'node:crypto';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generate } from '../src/generators/index.js';
import { PIPELINES } from '../src/pipelines/index.js';
import { KeyedTask, SourceTask, type EngineHooks } from '../src/runtime/engine.js';
import type { Emitter, InputRecord, OutputRecord } from '../src/runtime/records.js';
import { MemoryStateStore } from '../src/runtime/state/memory-backend.js';
import { asConsumed } from '../src/runtime/testing/driver.js';

export const ENGINE_PIPELINES = ['fraud-trigger', 'branch-totals'] as const;
export type EnginePipeline = (typeof ENGINE_PIPELINES)[number];

export interface EngineRun {
  pipeline: EnginePipeline;
  records: number;
  /** Wall time per input event on the main thread, collection included. */
  usPerEvent: number;
  /** CPU time of the process per event: also the collector's helper threads. */
  cpuUsPerEvent: number;
  /** Pauses of the collector per event. */
  gcUsPerEvent: number;
  /** The baseline: decode, parse, encode and copy each record once. */
  baselineUsPerEvent: number;
  /** Records the tasks wrote: packs, control records, changelog, outputs, late and dead letters. */
  outputs: number;
  digest?: string;
}

/** All records in one buffer, so that the input costs the heap nothing while it is measured. */
interface Input {
  bytes: Buffer;
  /** Record i is bytes[ends[i - 1] .. ends[i]). */
  ends: Uint32Array;
  partitionOf: Uint8Array;
}

function makeInput(pipeline: EnginePipeline, records: number, seed: number, partitions: number): Input {
  const kind = pipeline === 'fraud-trigger' ? 'fraud' : 'payments';
  const parts: Buffer[] = [];
  const ends = new Uint32Array(records);
  const partitionOf = new Uint8Array(records);
  let at = 0;
  let i = 0;
  for (const r of generate(kind, {
    count: records,
    seed,
    timeMode: 'sim',
    ...(kind === 'fraud' ? { customers: records } : {}),
  })) {
    parts.push(r.value);
    at += r.value.length;
    ends[i] = at;
    partitionOf[i] = i % partitions;
    i++;
  }
  return { bytes: Buffer.concat(parts), ends, partitionOf };
}

const record = (input: Input, i: number, partition: number, offset: number): InputRecord => ({
  topic: 'input',
  partition,
  offset,
  key: null,
  value: input.bytes.subarray(i === 0 ? 0 : input.ends[i - 1], input.ends[i]),
  timestamp: 1_700_000_000_000 + i,
  headers: {},
});

function baseline(input: Input): number {
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const out = Buffer.allocUnsafe(65_536);
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < input.ends.length; i++) {
    const value = record(input, i, 0, i).value!;
    const text = JSON.stringify(JSON.parse(utf8.decode(value)));
    sink += out.write(text, 0);
  }
  const ms = performance.now() - t0;
  if (sink === 0) throw new Error('baseline wrote nothing');
  return ms;
}

export async function runEngine(o: {
  pipeline: EnginePipeline;
  records: number;
  seed: number;
  partitions: number;
  batchRecords: number;
  digest: boolean;
}): Promise<EngineRun> {
  const entry = PIPELINES.find((p) => p.name === o.pipeline)!;
  const plan = entry.resolve({}).plan;
  const P = o.partitions;
  const hooks: EngineHooks = { deadLetter: () => undefined, late: () => undefined };
  const source = plan.sources[0];
  const stage = plan.stages[0];
  const sources = Array.from(
    { length: P },
    (_, p) => new SourceTask('bench', plan.pipeline, source, p, () => P, hooks, 0),
  );
  // What Redis keeps, in this process: encoded entries and a due index by due time.
  const state = new MemoryStateStore();
  const keyed = Array.from(
    { length: P },
    (_, p) =>
      new KeyedTask('bench', plan.pipeline, stage, p, P, state.task(`${stage.name}/${p}`), 10_000, hooks),
  );
  for (const t of keyed) {
    await t.backend.claim();
    await t.backend.apply(t.delta(0, {}), 'init');
    await t.refreshDue();
  }
  const input = makeInput(o.pipeline, o.records, o.seed, P);
  const hash = o.digest ? createHash('sha256') : undefined;
  const hop: InputRecord[][] = Array.from({ length: P }, () => []);
  const hopOffsets = new Array<number>(P).fill(0);
  const hopTopic = keyed[0].topic;
  let outputs = 0;
  const emitter: Emitter = {
    emit: (r: OutputRecord) => {
      outputs++;
      hash?.update(`${r.topic}|${r.partition}|${r.key}|${r.timestamp}|${JSON.stringify(r.headers ?? {})}|`);
      if (r.value) hash?.update(r.value);
      if (r.topic !== hopTopic) return;
      const p = r.partition!;
      hop[p].push(asConsumed(r, hopOffsets[p]++));
    },
  };

  const baselineMs = baseline(input);
  let gcMs = 0;
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMs += e.duration;
  });
  gc.observe({ entryTypes: ['gc'] });
  const perPartition = Math.max(1, Math.floor(o.batchRecords / P));
  const sourceOffsets = new Array<number>(P).fill(0);
  let changelogEnd = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  while (next < o.records || hop.some((h) => h.length > 0)) {
    // What the last transaction wrote to the hop is this one's keyed input, as in a member.
    const keyedInput = hop.map((h) => h.splice(0));
    const until = Math.min(o.records, next + perPartition * P);
    for (; next < until; next++) {
      const p = input.partitionOf[next];
      sources[p].process(record(input, next, p, sourceOffsets[p]++), emitter, 0);
    }
    for (const s of sources) s.broadcast(emitter, 0);
    await Promise.all(keyed.map((t, p) => t.prefetch(keyedInput[p])));
    for (let p = 0; p < P; p++) await keyed[p].processPrefetched(keyedInput[p], emitter);
    for (const t of keyed) {
      t.emitTables(emitter, 0);
      t.emitChangelog(emitter, 0);
      const ends = Object.fromEntries(stage.aggregates.map((a) => [a.store, ++changelogEnd]));
      await t.backend.apply(t.delta(sourceOffsets[0], ends), 'apply');
      t.markApplied(ends);
    }
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  // The observer hears of the last collections a turn later.
  await new Promise((resolve) => setTimeout(resolve, 20));
  gc.disconnect();
  const per = (x: number) => Math.round((x / o.records) * 1000) / 1000;
  return {
    pipeline: o.pipeline,
    records: o.records,
    usPerEvent: per(ms * 1000),
    cpuUsPerEvent: per(cpu.user + cpu.system),
    gcUsPerEvent: per(gcMs * 1000),
    baselineUsPerEvent: per(baselineMs * 1000),
    outputs,
    ...(hash ? { digest: hash.digest('hex').slice(0, 16) } : {}),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pipeline: { type: 'string', default: 'fraud-trigger' },
      records: { type: 'string', default: '300000' },
      seed: { type: 'string', default: '1' },
      partitions: { type: 'string', default: '6' },
      'batch-records': { type: 'string', default: process.env.MAX_BATCH_RECORDS ?? '5000' },
      digest: { type: 'boolean', default: false },
    },
  });
  const pipeline = values.pipeline as EnginePipeline;
  if (!ENGINE_PIPELINES.includes(pipeline))
    throw new Error(`--pipeline must be one of ${ENGINE_PIPELINES.join(', ')}, got ${pipeline}`);
  const run = await runEngine({
    pipeline,
    records: Number(values.records),
    seed: Number(values.seed),
    partitions: Number(values.partitions),
    batchRecords: Number(values['batch-records']),
    digest: values.digest,
  });
  process.stdout.write(`${JSON.stringify(run)}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
