/**
 * The markdown tables of one results file (`npm run bench:table -- [results.json]`), as
 * docs/benchmarks.md shows them under "Latest": throughput, engine, scale, latency, recovery and
 * the floors, formatted by the repository's Prettier settings. The figures are copied by this, not by
 * hand, and test/unit/bench/table.test.ts checks that the document's tables are these tables of the
 * file it names. Default: the newest dated file in bench/results.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { newestResults, thousands } from './chart.js';
import type { BenchResults, Stat } from './harness.js';

type Fmt = (n: number) => string;
const fixed =
  (digits: number): Fmt =>
  (n) =>
    n.toFixed(digits);
const spread = (s: Stat, f: Fmt): string => `${f(s.median)} (${f(s.min)}-${f(s.max)})`;
const perRecord: Fmt = (n) => (n === 0 ? '0' : n.toFixed(3));
const count = (n: number): string => (n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : thousands(n));

function table(header: string[], align: Array<'l' | 'r'>, rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(align.map((a) => (a === 'r' ? '---:' : '---'))), ...rows.map(line)].join('\n');
}

/** How each floor the harness checks reads in the document: its name, its limit's unit, its value. */
function floorRow(r: BenchResults, f: BenchResults['floors'][number]): string[] {
  const [, op = '', limitText = ''] = /^([<>]=)\s*(.+)$/.exec(f.limit) ?? [];
  const limit = Number(limitText);
  const sign = op === '>=' ? '≥' : op === '<=' ? '≤' : op;
  const records = count(r.options.records);
  const shown: Record<string, [string, Fmt, Fmt]> = {
    'fraud EOS events/s': [
      `fraud EOS throughput over ${records} events`,
      (n) => `${thousands(n)}/s`,
      (n) => `${thousands(n)}/s`,
    ],
    'fraud EOS / passthrough': ['fraud EOS / passthrough', fixed(2), fixed(3)],
    'fraud EOS / fraud ALOS': ['fraud EOS / fraud ALOS', fixed(2), fixed(3)],
    'fraud EOS peak RSS MB': [
      `fraud EOS peak RSS (${records} distinct customers)`,
      (n) => `${n} MB`,
      (n) => `${Math.round(n)} MB`,
    ],
    'recovery after SIGKILL s': [
      'recovery after SIGKILL (median)',
      (n) => `${n} s`,
      (n) => `${n.toFixed(2)} s`,
    ],
  };
  const e2e = /^e2e p99 ms at (\d+) ev\/s$/.exec(f.name);
  const [name, showLimit, showValue] = e2e
    ? [`e2e p99 at ${thousands(Number(e2e[1]))} events/s`, (n: number) => `${n} ms`, (n: number) => `${n} ms`]
    : (shown[f.name] ?? [f.name, String, String]);
  const verdict = f.pass === null ? 'not run' : f.pass ? 'PASS' : 'FAIL';
  return [name, `${sign} ${showLimit(limit)}`, f.value === null ? '-' : showValue(f.value), verdict];
}

/** The tables, one blank line apart, before formatting. */
export function resultTables(r: BenchResults): string {
  const o = r.options;
  const tables: string[] = [];
  tables.push(
    table(
      [
        'scenario',
        'events/s, median (min to max)',
        'CPU s / M events',
        'peak RSS MB, median (max)',
        'Redis calls / record',
      ],
      ['l', 'r', 'r', 'r', 'r'],
      r.throughput.map((t) => [
        t.scenario,
        spread(t.eventsPerSecond, thousands),
        t.cpuSecondsPerMillion.median.toFixed(1),
        `${Math.round(t.peakRssMb.median)} (${Math.round(t.peakRssMb.max)})`,
        perRecord(t.redisCommandsPerRecord.median),
      ]),
    ),
  );
  // Only results from 2026-12-08 on have these figures; the tables of older files stay as they were.
  if (r.throughput.length > 0 && r.throughput.every((t) => t.serverCpu !== undefined)) {
    const cores = r.machine.cpus;
    const orDash = (s: Stat | null): string => (s === null ? '-' : s.median.toFixed(1));
    tables.push(
      table(
        [
          'CPU s / M events, median',
          'member',
          'broker',
          'Redis',
          'machine',
          'machine busy',
          `events/s at ${cores} busy cores`,
        ],
        ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
        r.throughput.map((t) => {
          const c = t.serverCpu!;
          return [
            t.scenario,
            t.cpuSecondsPerMillion.median.toFixed(1),
            orDash(c.broker),
            orDash(c.redis),
            c.box.median.toFixed(1),
            `${Math.round(c.busy.median * 100)}%`,
            thousands(Math.round((cores * 1e6) / c.box.median)),
          ];
        }),
      ),
    );
  }
  if (r.engine.length > 0)
    tables.push(
      table(
        [
          `engine (${thousands(o.engineRecords)} records, no Kafka or Redis)`,
          'µs / event, median (min to max)',
          'CPU µs / event',
          'collector µs / event',
          'baseline µs / event',
          'engine / baseline',
        ],
        ['l', 'r', 'r', 'r', 'r', 'r'],
        r.engine.map((e) => [
          e.pipeline,
          spread(e.usPerEvent, fixed(2)),
          e.cpuUsPerEvent.median.toFixed(1),
          e.gcUsPerEvent.median.toFixed(2),
          e.baselineUsPerEvent.median.toFixed(2),
          e.overBaseline.toFixed(2),
        ]),
      ),
    );
  if (r.scale.length > 0)
    tables.push(
      table(
        [
          `scale (fraud-eos, ${thousands(o.scaleRecords)} records)`,
          'events/s, median (min to max)',
          'efficiency',
        ],
        ['l', 'r', 'r'],
        r.scale.map((s) => [
          `${s.members} member${s.members === 1 ? '' : 's'}`,
          spread(s.eventsPerSecond, thousands),
          String(s.efficiency),
        ]),
      ),
    );
  if (r.latency.length > 0)
    tables.push(
      table(
        ['latency (branch-totals, EOS)', 'p50, median (min to max)', 'p99', 'p99.9'],
        ['l', 'r', 'r', 'r'],
        r.latency.map((l) => [
          `${thousands(l.rate)} events/s`,
          ...[l.p50Ms, l.p99Ms, l.p999Ms].map((s) => `${spread(s, String)} ms`),
        ]),
      ),
    );
  if (r.recovery.length > 0)
    tables.push(
      table(
        [`recovery (2 members, ${thousands(o.recoveryRate)} events/s)`, 'seconds, median (min to max)'],
        ['l', 'r'],
        r.recovery.map((x) => [`${x.signal}, restarted at once`, spread(x.seconds, fixed(2))]),
      ),
    );
  tables.push(
    table(
      ['floor', 'limit', 'result', ''],
      ['l', 'l', 'l', 'l'],
      r.floors.map((f) => floorRow(r, f)),
    ),
  );
  return tables.join('\n\n') + '\n';
}

/** The tables as the repository's Prettier writes them, so that they can be pasted and checked. */
export async function formattedTables(r: BenchResults, repoFile: string): Promise<string> {
  const prettier = await import('prettier');
  const config = (await prettier.resolveConfig(repoFile)) ?? {};
  return prettier.format(resultTables(r), { ...config, parser: 'markdown' });
}

async function main(): Promise<void> {
  const [input = newestResults('bench/results')] = process.argv.slice(2);
  const r = JSON.parse(readFileSync(input, 'utf8')) as BenchResults;
  process.stdout.write(await formattedTables(r, 'docs/benchmarks.md'));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
