import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Registry } from 'prom-client';
import { generate, OVERSIZED_VALUE_BYTES } from '../../src/generators/index.js';
import {
  FRAUD_MALFORMED_KINDS,
  malformedFraud,
  malformedPayment,
  PAYMENT_MALFORMED_KINDS,
  type MalformedKind,
} from '../../src/generators/malformed.js';
import type { FraudTransaction } from '../../src/generators/fraud.js';
import type { Payment } from '../../src/generators/payments.js';
import { Rng } from '../../src/generators/random.js';
import { branchTotalsConfig } from '../../src/pipelines/branch-totals/branch-totals.config.js';
import { branchTotalsTopology } from '../../src/pipelines/branch-totals/branch-totals.topology.js';
import { fraudTriggerConfig } from '../../src/pipelines/fraud-trigger/fraud-trigger.config.js';
import {
  fraudTriggerTopology,
  type CustomerWindow,
} from '../../src/pipelines/fraud-trigger/fraud-trigger.topology.js';
import { DEFAULT_LIMITS } from '../../src/runtime/engine.js';
import { H } from '../../src/runtime/records.js';
import { decodeEntry } from '../../src/runtime/state/store.js';
import { internalTopics, type TopologyPlan } from '../../src/runtime/topology.js';
import { uniqueName } from '../helpers/env.js';
import { createTopics, produce, readTopics, type ReadRecord } from '../helpers/kafka.js';
import { eventually, startRuntime, type RuntimeHandle } from '../helpers/runtime.js';
import { branchOracle, decimalEquals, formatDecimal, parseDecimal } from '../oracle/branch-oracle.js';
import { fraudOracle } from '../oracle/fraud-oracle.js';

/**
 * Hostile input (issue #7, item 1): 10,000 malformed records of every kind among 10,000 valid
 * ones, per use case, through the real runtime on the real broker and Redis. The service must
 * not crash or stall; each malformed record must be in `<input>.dlq` exactly once (matched by
 * its source partition and offset) with its reason; each valid one must be processed, with the
 * results of a run on the valid records alone; and input = processed + late + dead letters.
 */

const handles: RuntimeHandle[] = [];
after(async () => {
  for (const h of handles) await h.stop().catch(() => undefined);
});

const MALFORMED = 10_000;
const VALID = 10_000;
const PARTITIONS = 2;
const TIMEOUT_MS = 240_000;
const MAX = DEFAULT_LIMITS.maxRecordBytes;

/** Kinds beyond the generator's: Kafka tombstones, and records just over or exactly at MAX_RECORD_BYTES. */
type Kind = MalformedKind | 'tombstone' | 'over-limit';

/** Reasons each kind may be refused with (several where the kind picks a field at random). */
const REASONS: Record<Kind, readonly string[]> = {
  'invalid-json': ['not-json'],
  'wrong-type': ['schema'],
  'missing-field': ['schema'],
  nan: ['not-json'],
  infinity: ['schema'],
  'invalid-date': ['schema', 'invalid-event-time'],
  'huge-string': ['schema'],
  'oversized-value': ['record-too-large'],
  binary: ['not-utf8'],
  'json-null': ['schema'],
  'duplicate-keys': ['duplicate-key'],
  'unknown-transaction-type': ['schema'],
  'unknown-branch': ['validation'],
  tombstone: ['null-value'],
  'over-limit': ['record-too-large'],
};

/** The big kinds are few (about 25 MB in all), the cheap ones fill up to MALFORMED. */
const FIXED: Partial<Record<Kind, number>> = { 'oversized-value': 12, 'huge-string': 40, 'over-limit': 10 };

interface Sent {
  value: Buffer | null;
  partition: number;
  offset: number;
  kind: Kind | undefined;
}

/** A valid record padded with an extra field to exactly `bytes` (schemas allow extra fields). */
function padTo(value: Buffer, bytes: number): Buffer {
  const head = Buffer.from(`${value.toString('utf8').slice(0, -1)},"padding":"`);
  const out = Buffer.alloc(bytes, 'p');
  head.copy(out);
  out.write('"}', bytes - 2, 'latin1');
  return out;
}

/**
 * Interleaves malformed records (random partitions and positions, seeded) with the valid ones
 * (on the partitions `partitionOf` gives), and numbers each with its offset: every topic is new
 * and the test producer writes in order, so offsets are positions in the partition.
 */
function mix(
  valid: Buffer[],
  partitionOf: (value: Buffer, i: number) => number,
  malformed: (kind: MalformedKind, base: Buffer, rng: Rng) => Buffer,
  kinds: readonly MalformedKind[],
  bases: Buffer[],
  seed: number,
): Sent[] {
  const rng = new Rng(seed, 'hostile');
  const plan: Kind[] = [];
  for (const [kind, n] of Object.entries(FIXED) as Array<[Kind, number]>)
    for (let i = 0; i < n; i++) plan.push(kind);
  const cheap: Kind[] = [...kinds.filter((k) => FIXED[k] === undefined), 'tombstone'];
  while (plan.length < MALFORMED) plan.push(rng.choice(cheap));
  const bad: Sent[] = plan.map((kind, i) => {
    let value: Buffer | null;
    if (kind === 'tombstone') value = null;
    else if (kind === 'over-limit') value = padTo(bases[i % bases.length], MAX + 1);
    else value = malformed(kind, bases[i % bases.length], rng);
    return { value, partition: rng.int(0, PARTITIONS - 1), offset: -1, kind };
  });
  // A few valid records exactly at the limit: refused one byte later, accepted here.
  const good: Sent[] = valid.map((v, i) => ({
    value: i % 3000 === 1 ? padTo(v, MAX) : v,
    partition: partitionOf(v, i),
    offset: -1,
    kind: undefined,
  }));
  const all: Sent[] = [];
  let b = 0;
  for (const g of good) {
    all.push(g);
    while (b < bad.length && rng.bernoulli(0.5)) all.push(bad[b++]);
  }
  while (b < bad.length) all.push(bad[b++]);
  const next = new Array<number>(PARTITIONS).fill(0);
  for (const s of all) s.offset = next[s.partition]++;
  return all;
}

const byPartition = (sent: Sent[]): Buffer[][] => {
  const out = Array.from({ length: PARTITIONS }, (): Buffer[] => []);
  for (const s of sent) if (s.kind === undefined) out[s.partition].push(s.value!);
  return out;
};

/** Every malformed record exactly once in the DLQ, found by its origin, with its reason and headers. */
function checkDeadLetters(
  input: string,
  pipeline: string,
  sent: Sent[],
  dlq: ReadRecord[],
): Map<string, number> {
  const byOrigin = new Map(sent.map((s) => [`${s.partition}/${s.offset}`, s]));
  const seen = new Set<string>();
  const reasons = new Map<string, number>();
  for (const r of dlq) {
    const h = r.headers;
    assert.equal(h[H.sourceTopic], input);
    assert.equal(h[H.pipeline], pipeline);
    const origin = `${h[H.sourcePartition]}/${h[H.sourceOffset]}`;
    const s = byOrigin.get(origin);
    assert.ok(s, `dead letter for ${origin}, which was never sent`);
    assert.ok(
      s.kind !== undefined,
      `valid record ${origin} (${s.value?.length} bytes) in the DLQ: ${h[H.errorMessage]}`,
    );
    assert.ok(!seen.has(origin), `${origin} in the DLQ twice`);
    seen.add(origin);
    const reason = h[H.reason];
    assert.ok(REASONS[s.kind].includes(reason), `${s.kind} at ${origin} dead-lettered as ${reason}`);
    assert.equal(h[H.errorClass], 'InvalidRecordError');
    assert.ok(h[H.errorMessage].length > 0 && h[H.errorMessage].length <= 1024);
    assert.ok(h[H.sourceTimestamp] !== undefined);
    if (reason === 'record-too-large') {
      assert.equal(r.value, null, 'a too-large record is not copied');
      assert.equal(h[H.recordBytes], String(s.value!.length));
    } else {
      assert.ok(
        s.value === null ? r.value === null : r.value !== null && r.value.equals(s.value),
        `${origin}: the DLQ copy differs from the input`,
      );
    }
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  const missing = sent.filter((s) => s.kind !== undefined && !seen.has(`${s.partition}/${s.offset}`));
  assert.deepEqual(
    missing.slice(0, 5).map((s) => `${s.kind} at ${s.partition}/${s.offset}`),
    [],
    `${missing.length} malformed records not in the DLQ`,
  );
  return reasons;
}

async function metric(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((n, v) => n + v.value, 0);
}

function summary(sent: Sent[]): string {
  const kinds = new Map<string, number>();
  for (const s of sent) kinds.set(s.kind ?? 'valid', (kinds.get(s.kind ?? 'valid') ?? 0) + 1);
  return [...kinds].map(([k, n]) => `${k} ${n}`).join(', ');
}

describe('hostile input (issue #7)', () => {
  it('fraud-trigger: 10,000 malformed records among 10,000 valid ones', async () => {
    const app = uniqueName('hostile-fraud');
    const input = `${app}-tx`;
    const output = `${app}-alerts`;
    const countsTopic = `${app}-window-counts`;
    // Jitter under the 60 s bound and each customer on one partition: nothing is ever late,
    // whatever the interleaving, so the oracle's alerts are exact (as in oracle.test.ts).
    const valid = [
      ...generate('fraud', { count: VALID, seed: 71, simStepMs: 60_000, jitterMs: 30_000, customers: 100 }),
    ].map((r) => r.value);
    const bases = [...generate('fraud', { count: 500, seed: 72 })].map((r) => r.value);
    const customerPartition = new Map<string, number>();
    const sent = mix(
      valid,
      (v) => {
        const { customer } = JSON.parse(v.toString('utf8')) as { customer: string };
        let p = customerPartition.get(customer);
        if (p === undefined) customerPartition.set(customer, (p = customerPartition.size % PARTITIONS));
        return p;
      },
      (kind, base, rng) =>
        malformedFraud(
          kind as (typeof FRAUD_MALFORMED_KINDS)[number],
          JSON.parse(base.toString('utf8')) as FraudTransaction,
          rng,
        ),
      FRAUD_MALFORMED_KINDS,
      bases,
      73,
    );
    const oracle = fraudOracle(byPartition(sent));
    assert.equal(oracle.late, 0);
    const malformedCount = sent.filter((s) => s.kind !== undefined).length;
    assert.equal(malformedCount, MALFORMED);

    await createTopics([
      { name: input, partitions: PARTITIONS },
      { name: output, partitions: 1 },
      { name: countsTopic, partitions: 1 },
    ]);
    await produce(
      input,
      sent.map((s) => ({ value: s.value, partition: s.partition })),
    );

    // The real topology, plus one emitter that writes every fired window's count: with the
    // windows still open in Redis, that accounts for each processed record.
    const plan: TopologyPlan = fraudTriggerTopology(
      fraudTriggerConfig({ FRAUD_INPUT_TOPIC: input, FRAUD_OUTPUT_TOPIC: output }),
    );
    const stage = plan.stages[0];
    const windows = stage.aggregates.find((a) => a.window)!;
    windows.windowEmitters.push({
      topic: countsTopic,
      fn: (_key, _w, acc) => ({ count: (acc as CustomerWindow).count }),
      observe: undefined,
    });
    const h = await startRuntime(app, [plan]);
    handles.push(h);
    const repartition = internalTopics.repartition(app, plan.pipeline, stage.name);

    const dlqTopic = `${input}.dlq`;
    const lateTopic = `${input}.late`;
    const account = async (quietMs: number) => {
      const all = await readTopics([countsTopic, lateTopic, dlqTopic, output], { quietMs });
      const of = (t: string) => all.filter((r) => r.topic === t);
      const fired = of(countsTopic).reduce(
        (n, r) => n + (JSON.parse(r.value!.toString('utf8')) as { count: number }).count,
        0,
      );
      let open = 0;
      for (let p = 0; p < 4; p++) {
        for (const text of Object.values(await h.state.readAll(repartition, p, windows.store)))
          for (const w of Object.values(decodeEntry(text).value as Record<string, CustomerWindow>))
            open += w.count;
      }
      return { fired, open, late: of(lateTopic), dlq: of(dlqTopic), alerts: of(output) };
    };
    let a = await account(500);
    await eventually(
      async () => {
        a = await account(500);
        return a.fired + a.open + a.late.length + a.dlq.length >= sent.length;
      },
      TIMEOUT_MS,
      'every input record accounted for',
    );
    a = await account(3000);
    assert.deepEqual(h.fatal, []);
    assert.ok(h.health.liveness(10_000).ok, 'the processing loop stalled');

    const reasons = checkDeadLetters(input, plan.pipeline, sent, a.dlq);
    assert.equal(a.late.length, 0);
    assert.equal(a.fired + a.open, VALID, 'valid records in windows');
    assert.equal(
      a.fired + a.open + a.late.length + a.dlq.length,
      sent.length,
      'input = processed + late + DLQ',
    );
    const alerts = a.alerts.map((r) => `${r.key}\u0000${r.value!.toString('utf8')}`).sort();
    assert.deepEqual(alerts, oracle.alerts.map((r) => `${r.key}\u0000${r.value}`).sort(), 'alerts');
    assert.equal(await metric(h.registry, 'stream_dead_letters_total'), MALFORMED);
    assert.equal(
      await metric(h.registry, 'stream_limit_exceeded_total', { limit: 'max-record-bytes' }),
      (FIXED['oversized-value'] ?? 0) + (FIXED['over-limit'] ?? 0),
    );
    await h.stop();
    handles.splice(handles.indexOf(h), 1);
    console.log(
      `hostile fraud-trigger: sent ${sent.length} (${summary(sent)}); windows ${a.fired} fired + ${a.open} open, ` +
        `late ${a.late.length}, DLQ ${a.dlq.length} (${[...reasons].map(([r, n]) => `${r} ${n}`).join(', ')}), ` +
        `alerts ${a.alerts.length}; oversized values ${OVERSIZED_VALUE_BYTES} bytes`,
    );
  });

  it('branch-totals: 10,000 malformed records among 10,000 valid ones', async () => {
    const app = uniqueName('hostile-branch');
    const input = `${app}-payments`;
    const totalsTopic = `${app}-totals`;
    const windowedTopic = `${app}-windowed`;
    const config = branchTotalsConfig({
      BRANCH_INPUT_TOPIC: input,
      BRANCH_TOTALS_TOPIC: totalsTopic,
      BRANCH_WINDOWED_TOPIC: windowedTopic,
    });
    const valid = [...generate('payments', { count: VALID, seed: 81, jitterMs: 1000 })].map((r) => r.value);
    const bases = [...generate('payments', { count: 500, seed: 82 })].map((r) => r.value);
    const sent = mix(
      valid,
      (_, i) => i % PARTITIONS,
      (kind, base, rng) =>
        malformedPayment(
          kind as (typeof PAYMENT_MALFORMED_KINDS)[number],
          JSON.parse(base.toString('utf8')) as Payment,
          rng,
        ),
      PAYMENT_MALFORMED_KINDS,
      bases,
      83,
    );
    const oracle = branchOracle(byPartition(sent), {
      windowMs: config.windowMs,
      outOfOrdernessMs: config.outOfOrdernessMs,
    });
    assert.equal(oracle.late, 0);

    await createTopics([
      { name: input, partitions: PARTITIONS },
      { name: totalsTopic, partitions: 1, cleanupPolicy: 'compact' },
      { name: windowedTopic, partitions: 1 },
    ]);
    await produce(
      input,
      sent.map((s) => ({ value: s.value, partition: s.partition })),
    );
    const plan = branchTotalsTopology(config);
    const h = await startRuntime(app, [plan]);
    handles.push(h);

    const dlqTopic = `${input}.dlq`;
    const lateTopic = `${input}.late`;
    const account = async (quietMs: number) => {
      const all = await readTopics([totalsTopic, lateTopic, dlqTopic], { quietMs });
      const latest = new Map<string, { count: number; pay_amount_exact: string }>();
      for (const r of all)
        if (r.topic === totalsTopic)
          latest.set(
            r.key!,
            JSON.parse(r.value!.toString('utf8')) as { count: number; pay_amount_exact: string },
          );
      const processed = [...latest.values()].reduce((n, t) => n + t.count, 0);
      return {
        latest,
        processed,
        late: all.filter((r) => r.topic === lateTopic),
        dlq: all.filter((r) => r.topic === dlqTopic),
      };
    };
    let a = await account(500);
    await eventually(
      async () => {
        a = await account(500);
        return a.processed + a.dlq.length >= sent.length;
      },
      TIMEOUT_MS,
      'every input record accounted for',
    );
    a = await account(3000);
    assert.deepEqual(h.fatal, []);
    assert.ok(h.health.liveness(10_000).ok, 'the processing loop stalled');

    const reasons = checkDeadLetters(input, plan.pipeline, sent, a.dlq);
    assert.equal(a.late.length, 0);
    // Late payments would still count in the running totals, so: input = totals + DLQ.
    assert.equal(a.processed + a.dlq.length, sent.length, 'input = processed + DLQ');
    assert.equal(a.processed, VALID);
    for (const [branch, want] of oracle.totals) {
      const got = a.latest.get(branch);
      assert.ok(got, branch);
      assert.equal(got.count, want.count, `${branch}: count`);
      assert.ok(
        decimalEquals(parseDecimal(got.pay_amount_exact), want.sum),
        `${branch}: ${got.pay_amount_exact}, want ${formatDecimal(want.sum)}`,
      );
    }
    assert.equal(a.latest.size, oracle.totals.size);
    assert.equal(await metric(h.registry, 'stream_dead_letters_total'), MALFORMED);
    await h.stop();
    handles.splice(handles.indexOf(h), 1);
    console.log(
      `hostile branch-totals: sent ${sent.length} (${summary(sent)}); processed ${a.processed}, ` +
        `late ${a.late.length}, DLQ ${a.dlq.length} (${[...reasons].map(([r, n]) => `${r} ${n}`).join(', ')})`,
    );
  });
});
