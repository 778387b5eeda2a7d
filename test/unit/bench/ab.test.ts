import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { collect, summary } from '../../../bench/ab.js';

/** The parts of a results file the summary reads: one fraud-eos run and one engine run. */
const results = (eventsPerSecond: number, usPerEvent: number) => ({
  throughput: [
    {
      scenario: 'fraud-eos',
      runs: [{ eventsPerSecond, cpuSecondsPerMillion: 1e6 / eventsPerSecond, peakRssMb: 250 }],
    },
  ],
  engine: [{ pipeline: 'fraud-trigger', runs: [{ usPerEvent, gcUsPerEvent: 1 }] }],
  latency: [],
  recovery: [],
});

describe('bench A/B summary', () => {
  it('gives the medians of each side and the change of B against A, per scenario and metric', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-ab-'));
    try {
      const runs: Array<[string, number, number]> = [
        ['a-1', 30_000, 13],
        ['b-1', 33_000, 12],
        ['a-2', 20_000, 14],
        ['b-2', 36_000, 11],
        ['a-3', 40_000, 12],
        ['b-3', 30_000, 11.5],
      ];
      for (const [name, eps, us] of runs)
        writeFileSync(join(dir, `${name}.json`), JSON.stringify(results(eps, us)));
      writeFileSync(join(dir, 'a-1.log'), 'not a results file');
      const table = collect(dir);
      assert.deepEqual(table.get('fraud-eos')!.a['events/s'], [30_000, 20_000, 40_000]);
      const lines = summary(table, 'abc1234').split('\n');
      assert.ok(
        lines.includes(
          'fraud-eos events/s: A abc1234 30000 (20000-40000) | B 33000 (30000-36000) | B/A median +10%',
        ),
        lines.join('\n'),
      );
      assert.ok(
        lines.includes(
          'engine fraud-trigger us/event: A abc1234 13 (12-14) | B 11.5 (11-12) | B/A median -11.5%',
        ),
        lines.join('\n'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
