import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { BenchResults } from '../../../bench/harness.js';
import { formattedTables, resultTables } from '../../../bench/table.js';
import { repoRoot } from '../../helpers/env.js';

const readResults = (file: string): Partial<BenchResults> =>
  JSON.parse(readFileSync(join(repoRoot(), file), 'utf8')) as Partial<BenchResults>;

/** The tables `npm run bench:table` prints for a results file, each one whole. */
const tablesOf = async (r: Partial<BenchResults>, doc: string): Promise<string[]> =>
  (await formattedTables(r as BenchResults, doc)).trim().split('\n\n');

describe('bench tables', () => {
  it('docs/benchmarks.md shows the tables of the results file its Latest run names', async () => {
    const doc = join(repoRoot(), 'docs/benchmarks.md');
    const text = readFileSync(doc, 'utf8');
    const latest = /\*\*Latest: `(bench\/results\/[^`]+\.json)`\*\*/.exec(text);
    assert.ok(latest, 'docs/benchmarks.md names its Latest results file');
    const r = readResults(latest[1]);
    const tables = await tablesOf(r, doc);
    // Throughput, machine CPU (results from 2026-12-08 on), engine, scale, latency, recovery, floors.
    assert.equal(tables.length, r.throughput!.every((t) => t.serverCpu) ? 7 : 6);
    // Each table whole, as `npm run bench:table` prints it: a hand edit of one figure fails here.
    for (const t of tables) assert.ok(text.includes(t), `docs/benchmarks.md lacks, from ${latest[1]}:\n${t}`);
  });

  it('docs/benchmarks-history.md shows the tables of each results file it names that bench:table can print', async () => {
    const doc = join(repoRoot(), 'docs/benchmarks-history.md');
    const text = readFileSync(doc, 'utf8');
    const heads = [...text.matchAll(/\*\*Earlier: `(bench\/results\/[^`]+\.json)`\*\*/g)];
    assert.ok(heads.length > 0, 'docs/benchmarks-history.md names its runs');
    let checked = 0;
    for (const [k, head] of heads.entries()) {
      // A named file that is missing fails here: the history would cite figures no one can read.
      const r = readResults(head[1]);
      // Files from before the engine scenario predate bench:table; their tables were written by hand.
      if (!Array.isArray(r.engine)) continue;
      const section = text.slice(head.index, heads[k + 1]?.index ?? text.length);
      for (const t of await tablesOf(r, doc))
        assert.ok(section.includes(t), `the history's ${head[1]} lacks, from that file:\n${t}`);
      checked++;
    }
    assert.ok(checked >= 5, `only ${checked} runs of the history were checked`);
  });

  it('prints the machine CPU table only for results that have it, with the rate at busy cores', () => {
    const stat = (median: number) => ({ median, min: median, max: median });
    const scenario = (name: string, serverCpu?: object) => ({
      scenario: name,
      eventsPerSecond: stat(1000),
      cpuSecondsPerMillion: stat(30),
      peakRssMb: stat(200),
      redisCommandsPerRecord: stat(0),
      ...(serverCpu ? { serverCpu } : {}),
    });
    const base = {
      machine: { cpus: 2 },
      options: { records: 5000, engineRecords: 1000, scaleRecords: 1000, recoveryRate: 5000 },
      engine: [],
      scale: [],
      latency: [],
      recovery: [],
      floors: [],
    };
    const cpu = { broker: stat(20), redis: null, box: stat(64), busy: stat(0.751) };
    const withCpu = resultTables({
      ...base,
      throughput: [scenario('fraud-eos', cpu), scenario('passthrough', { ...cpu, box: stat(12.5) })],
    } as unknown as BenchResults);
    const lines = withCpu.split('\n');
    assert.ok(lines.includes('| fraud-eos | 30.0 | 20.0 | - | 64.0 | 75% | 31,250 |'), withCpu);
    assert.ok(lines.includes('| passthrough | 30.0 | 20.0 | - | 12.5 | 75% | 160,000 |'), withCpu);
    // An older file, or one scenario without the figures: no such table, so older tables read as before.
    const without = resultTables({
      ...base,
      throughput: [scenario('fraud-eos', cpu), scenario('passthrough')],
    } as unknown as BenchResults);
    assert.ok(!without.includes('busy cores'), without);
  });

  it('writes each floor with its limit, its value in the limit’s unit and its verdict', () => {
    const r = {
      options: { records: 5000, engineRecords: 1000, scaleRecords: 1000, recoveryRate: 5000 },
      throughput: [],
      engine: [],
      scale: [],
      latency: [],
      recovery: [],
      floors: [
        { name: 'fraud EOS events/s', value: 19999, limit: '>= 20000', pass: false },
        { name: 'fraud EOS / passthrough', value: 0.4, limit: '>= 0.4', pass: true },
        { name: 'e2e p99 ms at 5000 ev/s', value: null, limit: '<= 300', pass: null },
        { name: 'fraud EOS peak RSS MB', value: 301.2, limit: '<= 300', pass: false },
        { name: 'recovery after SIGKILL s', value: 1.419, limit: '<= 5', pass: true },
        { name: 'a floor of a newer harness', value: 7, limit: '<= 8', pass: true },
      ],
    } as unknown as BenchResults;
    assert.deepEqual(resultTables(r).trim().split('\n').slice(-6), [
      '| fraud EOS throughput over 5,000 events | ≥ 20,000/s | 19,999/s | FAIL |',
      '| fraud EOS / passthrough | ≥ 0.40 | 0.400 | PASS |',
      '| e2e p99 at 5,000 events/s | ≤ 300 ms | - | not run |',
      '| fraud EOS peak RSS (5,000 distinct customers) | ≤ 300 MB | 301 MB | FAIL |',
      '| recovery after SIGKILL (median) | ≤ 5 s | 1.42 s | PASS |',
      '| a floor of a newer harness | ≤ 8 | 7 | PASS |',
    ]);
  });
});
