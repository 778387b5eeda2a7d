#!/usr/bin/env node
import { isUtf8 } from 'node:buffer';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

import type { KafkaJS } from '@confluentinc/kafka-javascript';

import {
  DEFAULT_TOPICS,
  generate,
  GENERATOR_KINDS,
  type GenerateOptions,
  type GeneratedRecord,
  type GeneratorKind,
  KEY_MODES,
  type KeyMode,
  TIME_MODES,
  type TimeMode,
} from './index.js';
import { createTimeFormatter } from './payments.js';

const USAGE = `usage: cli.js <${GENERATOR_KINDS.join('|')}> [options]
  --count N            records to produce (default: endless)
  --rate N             records per second, 0 = as fast as possible (default 0)
  --seed N             integer seed (default 1)
  --key none|entity    message key: none (like the seeds) or customer / branchId (default none)
  --time seed|live|sim event time: seed (random in the span before now), live (clock +- jitter),
                       sim (start + i*step +- jitter; default, reproducible)
  --sim-start ISO      sim mode start (default 2024-01-01T00:00:00Z)
  --sim-step-ms N      sim mode step (default 1000)
  --jitter-ms N        live/sim maximum disorder (default 30000)
  --now ISO            seed mode: end of the span (default: the clock at each record)
  --seed-span-ms N     seed mode: span before now (default 31 days)
  --malformed S        share 0..1 of malformed records (default 0)
  --customers N        fraud: distinct customers (default 100)
  --tz Area/City       payments: zone of createTime (default UTC)
  --order-id-start N   payments: first orderId (default: start instant in unix seconds)
  --topic NAME         default transactions-data (fraud) / payment_msg (payments)
  --brokers host:port  default $KAFKA_BROKERS, else 127.0.0.1:9092
  --stdout             write one value per line to stdout instead of producing to Kafka
                       (values that are not single-line UTF-8 are written as base64:<data>)`;

const BATCH_MAX = 1000;
const PROGRESS_EVERY_MS = 2000;

class UsageError extends Error {}
/** An expected failure (e.g. no broker): one line on stderr, exit 1, no stack trace. */
class FatalError extends Error {}

interface CliConfig {
  kind: GeneratorKind;
  gen: GenerateOptions;
  rate: number;
  topic: string;
  brokers: string;
  stdout: boolean;
}

function parseNumber(name: string, raw: string | undefined, allowed: string, check: (n: number) => boolean) {
  if (raw === undefined) return undefined;
  const n = raw.trim() === '' ? NaN : Number(raw);
  if (!Number.isFinite(n) || !check(n)) throw new UsageError(`--${name}: got '${raw}', expected ${allowed}`);
  return n;
}

function parseInstant(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  // Date.parse also takes locale-dependent forms ("1/2/2024"); only ISO dates mean the same everywhere.
  const ms = /^[+-]?\d{4,6}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : NaN;
  if (!Number.isFinite(ms)) {
    throw new UsageError(`--${name}: got '${raw}', expected an ISO-8601 instant like 2024-01-01T00:00:00Z`);
  }
  return ms;
}

function oneOf<T extends string>(
  name: string,
  raw: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (raw === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new UsageError(`--${name}: got '${raw}', expected one of ${allowed.join(', ')}`);
  }
  return raw as T;
}

function parseCli(argv: string[]): CliConfig | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        count: { type: 'string' },
        rate: { type: 'string' },
        seed: { type: 'string' },
        key: { type: 'string' },
        time: { type: 'string' },
        'sim-start': { type: 'string' },
        'sim-step-ms': { type: 'string' },
        'jitter-ms': { type: 'string' },
        now: { type: 'string' },
        'seed-span-ms': { type: 'string' },
        malformed: { type: 'string' },
        customers: { type: 'string' },
        tz: { type: 'string' },
        'order-id-start': { type: 'string' },
        topic: { type: 'string' },
        brokers: { type: 'string' },
        stdout: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    // Some of parseArgs' messages span lines (hints for values starting with '-'); the contract is one line.
    throw new UsageError((e as Error).message.replace(/\s*\n\s*/g, ' '));
  }
  const { values: v, positionals } = parsed;
  if (v.help) return 'help';
  if (positionals.length !== 1) {
    throw new UsageError(
      `expected exactly one generator kind (${GENERATOR_KINDS.join(' or ')}), got ${positionals.length}`,
    );
  }
  const kind = positionals[0] as GeneratorKind;
  if (!GENERATOR_KINDS.includes(kind)) {
    throw new UsageError(`generator kind: got '${kind}', expected one of ${GENERATOR_KINDS.join(', ')}`);
  }
  const isInt = (n: number) => Number.isSafeInteger(n);

  const tz = v.tz;
  if (tz !== undefined) {
    try {
      createTimeFormatter(tz);
    } catch {
      throw new UsageError(`--tz: got '${tz}', expected an IANA time zone like UTC or Europe/Belgrade`);
    }
    if (kind === 'fraud') console.error('note: --tz only affects payments; fraud times are ISO-8601 UTC');
  }
  const topic = v.topic ?? DEFAULT_TOPICS[kind];
  if (topic.trim() === '') throw new UsageError(`--topic: got '', expected a topic name`);
  const brokers = v.brokers ?? process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
  if (!/^[^\s,]+:\d+(,[^\s,]+:\d+)*$/.test(brokers)) {
    throw new UsageError(`--brokers: got '${brokers}', expected host:port[,host:port...]`);
  }

  return {
    kind,
    rate:
      parseNumber('rate', v.rate, 'a number >= 0 (records per second, 0 = unlimited)', (n) => n >= 0) ?? 0,
    topic,
    brokers,
    stdout: v.stdout ?? false,
    gen: {
      count: parseNumber('count', v.count, 'an integer >= 0', (n) => isInt(n) && n >= 0),
      seed: parseNumber('seed', v.seed, 'an integer', isInt),
      keyMode: oneOf<KeyMode>('key', v.key, KEY_MODES),
      timeMode: oneOf<TimeMode>('time', v.time, TIME_MODES),
      simStartMs: parseInstant('sim-start', v['sim-start']),
      simStepMs: parseNumber('sim-step-ms', v['sim-step-ms'], 'a number >= 0', (n) => n >= 0),
      jitterMs: parseNumber('jitter-ms', v['jitter-ms'], 'a number >= 0', (n) => n >= 0),
      now: parseInstant('now', v.now),
      seedSpanMs: parseNumber('seed-span-ms', v['seed-span-ms'], 'a number >= 0', (n) => n >= 0),
      malformedShare: parseNumber(
        'malformed',
        v.malformed,
        'a share between 0 and 1',
        (n) => n >= 0 && n <= 1,
      ),
      customers: parseNumber('customers', v.customers, 'an integer >= 1', (n) => isInt(n) && n >= 1),
      timeZone: tz,
      orderIdStart: parseNumber('order-id-start', v['order-id-start'], 'an integer', isInt),
    },
  };
}

interface Sink {
  write(batch: GeneratedRecord[]): Promise<void>;
  close(): Promise<void>;
}

function stdoutSink(): Sink {
  const out = process.stdout;
  return {
    async write(batch) {
      let text = '';
      for (const r of batch) {
        // A newline inside a value would split it into two lines for the reader.
        const plain = isUtf8(r.value) && !r.value.includes(0x0a) && !r.value.includes(0x0d);
        text += plain ? `${r.value.toString('utf8')}\n` : `base64:${r.value.toString('base64')}\n`;
      }
      if (!out.write(text)) await once(out, 'drain');
    },
    async close() {
      // Nothing is buffered here; stdout flushes itself before the process exits.
    },
  };
}

async function kafkaSink(brokers: string, topic: string, signal: AbortSignal): Promise<Sink> {
  // Loaded only here so that --stdout works where the native addon is not built.
  const { KafkaJS: K } = await import('../runtime/kafka/client.js');
  const { librdkafkaConfig } = await import('../runtime/kafka/client-config.js');
  // SASL/TLS come from the same variables the service reads.
  const { loadConfig } = await import('../config/env.js');
  const security = loadConfig().kafka.security;
  const producer: KafkaJS.Producer = new K.Kafka(
    librdkafkaConfig({ brokers, clientId: 'generator', security }),
  ).producer({
    'linger.ms': 5,
    'enable.idempotence': true,
  });
  // With no broker answering, connect() fails only after librdkafka's 30 s metadata timeout; a signal in that
  // time must still end the run, with nothing produced.
  const connecting = producer.connect().then(
    () => true,
    (e: unknown) => {
      throw new FatalError(
        `cannot connect to Kafka at ${brokers}: ${e instanceof Error ? e.message : String(e)}`,
      );
    },
  );
  const aborted = new Promise<false>((resolve) => {
    if (signal.aborted) resolve(false);
    signal.addEventListener('abort', () => resolve(false), { once: true });
  });
  if (!(await Promise.race([connecting, aborted]))) {
    // Nothing was produced, so nothing is lost. disconnect() would first wait for the connect attempt (up to
    // librdkafka's 30 s metadata timeout); the native teardown in exit() still does, but without extra steps.
    console.error('interrupted while connecting to Kafka: nothing was sent');
    process.exit(0);
  }
  return {
    async write(batch) {
      await producer.send({
        topic,
        // The record timestamp is the produce time (the event time is in the value): end-to-end latency is
        // measured from it, and `seed`/`sim` event times lie far in the past.
        messages: batch.map((r) => ({ key: r.key, value: r.value })),
      });
    },
    async close() {
      await producer.flush({ timeout: 10_000 });
      await producer.disconnect();
    },
  };
}

async function run(cfg: CliConfig, records: Iterator<GeneratedRecord>): Promise<void> {
  const stop = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      console.error(`${sig} again: exiting without flushing`);
      process.exit(130);
    }
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // After the handlers, so that a signal while connecting is handled as well.
  const sink = cfg.stdout ? stdoutSink() : await kafkaSink(cfg.brokers, cfg.topic, stop.signal);

  const t0 = performance.now();
  let sent = 0;
  let lastTick = { t: t0, sent: 0 };
  let ticked = false;
  const report = (final: boolean) => {
    const now = performance.now();
    const window = final ? now - t0 : now - lastTick.t;
    const count = final ? sent : sent - lastTick.sent;
    const rate = window > 0 ? Math.round((count * 1000) / window) : 0;
    const where = cfg.stdout ? 'stdout' : cfg.topic;
    console.error(`${cfg.kind} -> ${where}: ${sent} records sent, ${rate}/s${final ? ' average, done' : ''}`);
    lastTick = { t: now, sent };
  };
  const progress = setInterval(() => {
    ticked = true;
    report(false);
  }, PROGRESS_EVERY_MS);
  progress.unref();

  try {
    let exhausted = false;
    while (!exhausted && !stop.signal.aborted) {
      const batch: GeneratedRecord[] = [];
      let waitMs = 0;
      while (batch.length < BATCH_MAX) {
        if (cfg.rate > 0) {
          // Due times follow from the start and the count, not from the last send, so slow sends are made
          // up for and the average rate holds over the whole run.
          const due = t0 + ((sent + batch.length) * 1000) / cfg.rate;
          waitMs = due - performance.now();
          if (waitMs > 0) break;
        }
        const r = records.next();
        if (r.done) {
          exhausted = true;
          break;
        }
        batch.push(r.value);
      }
      if (batch.length > 0) {
        await sink.write(batch);
        sent += batch.length;
        // Writes to a file or pipe complete synchronously; without a turn of the event loop, signals and
        // progress ticks would never be handled during an endless unpaced run.
        await new Promise<void>((resolve) => setImmediate(resolve));
      } else if (waitMs > 0) {
        await sleep(waitMs, undefined, { signal: stop.signal }).catch(() => undefined);
      }
    }
  } finally {
    clearInterval(progress);
    await sink.close();
  }
  if (ticked || stop.signal.aborted) report(true);
}

async function main(): Promise<number> {
  let cfg: CliConfig | 'help';
  let records: Iterator<GeneratedRecord> | undefined;
  try {
    cfg = parseCli(process.argv.slice(2));
    // generate() checks the options too, and its errors are usage errors as well.
    if (cfg !== 'help') records = generate(cfg.kind, cfg.gen)[Symbol.iterator]();
  } catch (e) {
    if (e instanceof UsageError || e instanceof RangeError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (cfg === 'help' || records === undefined) {
    console.log(USAGE);
    return 0;
  }
  // A closed pipe (`| head`) is a normal way to stop reading; end quietly instead of with an EPIPE trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  await run(cfg, records);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof FatalError) console.error(`error: ${e.message}`);
    else console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exitCode = 1;
  },
);
