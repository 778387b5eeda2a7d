/**
 * The summary of `npm run bench:ab` (scripts/bench-ab.sh): the medians of the alternating single
 * runs in a results folder, side A (the baseline build) against side B (the working tree), per
 * scenario. Whether a difference is larger than the spread is for the reader: the lines show both.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stat, type BenchResults, type Stat } from './harness.js';

type Side = 'a' | 'b';
/** Scenario -> side -> metric -> one value per run. */
type Table = Map<string, Record<Side, Record<string, number[]>>>;

export function collect(dir: string): Table {
  const table: Table = new Map();
  const add = (scenario: string, side: Side, metric: string, value: number): void => {
    let row = table.get(scenario);
    if (!row) table.set(scenario, (row = { a: {}, b: {} }));
    (row[side][metric] ??= []).push(value);
  };
  for (const file of readdirSync(dir).sort()) {
    const m = /^([ab])-\d+\.json$/.exec(file);
    if (!m) continue;
    const side = m[1] as Side;
    const r = JSON.parse(readFileSync(join(dir, file), 'utf8')) as BenchResults;
    for (const t of r.throughput)
      for (const run of t.runs) {
        add(t.scenario, side, 'events/s', run.eventsPerSecond);
        add(t.scenario, side, 'CPU s/M', run.cpuSecondsPerMillion);
        add(t.scenario, side, 'peak RSS MB', run.peakRssMb);
      }
    for (const e of r.engine ?? [])
      for (const run of e.runs) {
        add(`engine ${e.pipeline}`, side, 'us/event', run.usPerEvent);
        add(`engine ${e.pipeline}`, side, 'GC us/event', run.gcUsPerEvent);
      }
    for (const l of r.latency)
      for (const run of l.runs) add(`latency @${l.rate}/s`, side, 'p99 ms', run.p99Ms);
    for (const x of r.recovery) for (const run of x.runs) add(`recovery ${x.signal}`, side, 's', run.seconds);
  }
  return table;
}

export function summary(table: Table, baseline: string): string {
  const f = (s: Stat): string => `${s.median} (${s.min}-${s.max})`;
  const lines: string[] = [];
  for (const [scenario, row] of table)
    for (const metric of Object.keys(row.a)) {
      const a = stat(row.a[metric] ?? []);
      const b = stat(row.b[metric] ?? []);
      const change = a.median
        ? `${b.median >= a.median ? '+' : ''}${Math.round((b.median / a.median - 1) * 1000) / 10}%`
        : '-';
      lines.push(`${scenario} ${metric}: A ${baseline} ${f(a)} | B ${f(b)} | B/A median ${change}`);
    }
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [dir, baseline = 'A'] = process.argv.slice(2);
  if (!dir) throw new Error('usage: ab.js <results folder> [name of side A]');
  console.log(summary(collect(dir), baseline));
}
