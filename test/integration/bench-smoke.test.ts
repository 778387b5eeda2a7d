/**
 * A short run of the benchmark harness (bench/harness.ts) against the test broker and Redis:
 * tiny N, one run, passthrough, fraud-eos, topology-io-eos and engine. It checks the results file is well-formed and
 * the counts add up; it asserts nothing about speed (the machine is shared during tests).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { serverPids } from '../../bench/box-cpu.js';
import { hostImageEnv, runBench, type BenchResults } from '../../bench/harness.js';
import { KafkaJS } from '../../src/runtime/kafka/client.js';
import { librdkafkaConfig } from '../../src/runtime/kafka/client-config.js';
import { infra } from '../helpers/env.js';

const RECORDS = 5000;

describe('bench harness smoke run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs four scenarios and writes consistent results', { timeout: 240_000 }, async () => {
    const { brokers, redisUrl } = infra();
    // Known when scripts/test.sh started the broker and Redis, as it does in CI.
    const servers = serverPids();
    const out = join(dir, 'results.json');
    const admin = new KafkaJS.Kafka(librdkafkaConfig({ brokers, clientId: 'bench-smoke' })).admin();
    await admin.connect();
    // Disconnected whatever fails below: a connected client keeps the test file's process alive.
    try {
      const runTopics = async (): Promise<string[]> =>
        (await admin.listTopics()).filter((t) => /^bench-(passthrough|fraud-eos|topology-io-eos)-/.test(t));
      const before = new Set(await runTopics());
      await runBench(['passthrough', 'fraud-eos', 'topology-io-eos', 'engine'], {
        records: RECORDS,
        runs: 1,
        seed: 7,
        partitions: 3,
        latencyRates: [],
        latencySeconds: 1,
        recoveryRate: 100,
        scaleMembers: [1],
        scaleRecords: RECORDS,
        engineRecords: RECORDS,
        out,
        brokers,
        redisUrl,
        servers,
        imageEnv: hostImageEnv(),
        memberEnv: {},
        log: () => undefined,
      });
      const r = JSON.parse(readFileSync(out, 'utf8')) as BenchResults;
      assert.equal(typeof r.startedAt, 'string');
      assert.equal(typeof r.finishedAt, 'string');
      assert.ok(r.machine.cpus >= 1);
      assert.match(r.versions.node, /^v\d+/);
      assert.deepEqual(
        r.throughput.map((t) => t.scenario),
        ['passthrough', 'fraud-eos', 'topology-io-eos'],
      );
      for (const t of r.throughput) {
        assert.equal(t.runs.length, 1);
        const run = t.runs[0];
        assert.equal(run.records, RECORDS);
        assert.equal(run.members, 1);
        // Every input record was consumed by the member, once.
        assert.equal(
          run.perMember.reduce((a, m) => a + m.consumed, 0),
          RECORDS,
          `${t.scenario}: consumed`,
        );
        assert.ok(run.seconds > 0 && Number.isFinite(run.eventsPerSecond) && run.eventsPerSecond > 0);
        assert.ok(run.cpuSecondsPerMillion > 0);
        assert.ok(run.peakRssMb > 0);
        assert.ok(run.redisCommandsPerRecord >= 0);
        assert.equal(t.eventsPerSecond.median, run.eventsPerSecond);
        // The machine's CPU includes the member's; the broker serves every scenario, Redis the fraud one.
        const c = run.serverCpu!;
        assert.ok(c.box >= run.perMember[0].cpuSeconds * 0.9, `${t.scenario}: machine ${c.box} s`);
        assert.ok(c.busy > 0 && c.busy <= 1.05, `${t.scenario}: busy ${c.busy}`);
        assert.equal(c.broker === null, servers.broker === null, `${t.scenario}: broker CPU ${c.broker}`);
        assert.equal(c.redis === null, servers.redis === null, `${t.scenario}: Redis CPU ${c.redis}`);
        if (c.broker !== null) assert.ok(c.broker > 0, `${t.scenario}: broker CPU ${c.broker}`);
        assert.deepEqual(t.serverCpu?.box, {
          median: Math.round((c.box / RECORDS) * 1e6 * 1000) / 1000,
          min: Math.round((c.box / RECORDS) * 1e6 * 1000) / 1000,
          max: Math.round((c.box / RECORDS) * 1e6 * 1000) / 1000,
        });
        assert.ok(
          t.eventsPerSecond.min <= t.eventsPerSecond.median &&
            t.eventsPerSecond.median <= t.eventsPerSecond.max,
        );
      }
      const [pass, eos, io] = r.throughput;
      // The passthrough copies every record. topology-io-eos sends the records to the hop in packs,
      // at least one per input and hop partition, far fewer than the records (decision 0010), and
      // each record of a pack to the changelog once (no tombstone: the window's changelog has none),
      // in transactions whose commit markers take an offset too, at least one in each of the 3
      // partitions. The fraud trigger sends none to the DLQ or late topic (sim event times stay
      // within the out-of-orderness bound).
      assert.equal(pass.runs[0].outputs.out, RECORDS);
      assert.ok(
        io.runs[0].outputs.hop >= 3 * 3 + 3 && io.runs[0].outputs.hop < RECORDS / 4,
        `hop ${io.runs[0].outputs.hop}`,
      );
      assert.ok(io.runs[0].outputs.changelog >= RECORDS + 3, `changelog ${io.runs[0].outputs.changelog}`);
      assert.equal(eos.runs[0].outputs.dlq, 0);
      assert.equal(eos.runs[0].outputs.late, 0);
      assert.ok(eos.runs[0].outputs.out >= 0);
      assert.ok(eos.runs[0].redisCommandsPerRecord > 0);
      // The engine runs both pipelines in a process of their own, without Kafka or Redis: each
      // customer of a transaction writes its window to the changelog (about 63% of 5,000 draws
      // from 5,000 customers are distinct).
      assert.deepEqual(
        r.engine.map((e) => [e.pipeline, e.records, e.runs.length]),
        [
          ['fraud-trigger', RECORDS, 1],
          ['branch-totals', RECORDS, 1],
        ],
      );
      for (const e of r.engine) {
        const run = e.runs[0];
        assert.ok(run.usPerEvent > 0 && run.baselineUsPerEvent > 0 && run.gcUsPerEvent >= 0, e.pipeline);
        assert.equal(e.overBaseline, Math.round((run.usPerEvent / run.baselineUsPerEvent) * 100) / 100);
      }
      assert.ok(r.engine[0].runs[0].outputs > RECORDS / 2, `engine outputs ${r.engine[0].runs[0].outputs}`);
      // Floors: each is judged, or skipped when its scenario did not run.
      const byName = new Map(r.floors.map((f) => [f.name, f]));
      assert.equal(typeof byName.get('fraud EOS events/s')?.pass, 'boolean');
      assert.equal(typeof byName.get('fraud EOS / passthrough')?.pass, 'boolean');
      assert.equal(byName.get('recovery after SIGKILL s')?.pass, null);
      // Each run deletes its own topics, so the broker does not compact them during the next run.
      assert.deepEqual(
        (await runTopics()).filter((t) => !before.has(t)),
        [],
      );
    } finally {
      await admin.disconnect();
    }
  });
});
