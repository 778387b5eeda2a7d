/**
 * A chart of one results file (`npm run bench:chart -- [results.json] [out.png]`): throughput of
 * each scenario against the passthrough, and end-to-end latency at each offered load against the
 * p99 floor, each with the spread of its runs. Drawn as SVG and rendered to PNG by resvg, with the
 * machine's fonts (Debian: fonts-dejavu-core). Defaults: the newest dated file in bench/results,
 * written to docs/benchmarks.png.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResults, Stat } from './harness.js';

const W = 1200;
const H = 470;
const FONT = 'DejaVu Sans, Liberation Sans, Arial, sans-serif';

/** Text as SVG markup carries it. */
export const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
export const thousands = (n: number): string => Math.round(n).toLocaleString('en-US');

function text(x: number, y: number, s: string, attrs = ''): string {
  const size = attrs.includes('font-size') ? '' : 'font-size="13" ';
  return `<text x="${x}" y="${y}" font-family="${FONT}" ${size}${attrs}>${esc(s)}</text>`;
}

/** A bar from 0 to the median and a whisker from min to max, horizontal, in a panel's scale. */
function bar(x0: number, y: number, h: number, scale: (v: number) => number, s: Stat, fill: string): string {
  const w = Math.max(1, scale(s.median) - x0);
  const [a, b] = [scale(s.min), scale(s.max)];
  const mid = y + h / 2;
  return (
    `<rect x="${x0}" y="${y}" width="${w}" height="${h}" fill="${fill}"/>` +
    `<line x1="${a}" y1="${mid}" x2="${b}" y2="${mid}" stroke="#222" stroke-width="1.5"/>` +
    `<line x1="${a}" y1="${mid - 5}" x2="${a}" y2="${mid + 5}" stroke="#222" stroke-width="1.5"/>` +
    `<line x1="${b}" y1="${mid - 5}" x2="${b}" y2="${mid + 5}" stroke="#222" stroke-width="1.5"/>`
  );
}

/** Round numbers for an axis: a few ticks up to at least `max`. */
function ticks(max: number): number[] {
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= max + step / 2; v += step) out.push(v);
  if (out[out.length - 1] < max) out.push(out[out.length - 1] + step);
  return out;
}

export function chartSvg(r: BenchResults, source: string): string {
  const parts: string[] = [];
  parts.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  const v = r.versions;
  parts.push(
    text(20, 28, `npm run bench: ${source}`, 'font-size="16" font-weight="bold"'),
    text(
      20,
      48,
      `${r.machine.cpus} vCPU ${r.machine.cpuModel}, ${r.machine.memoryGb} GB; Node ${v.node}, ` +
        `kafka-javascript ${v['@confluentinc/kafka-javascript'] ?? '?'} (librdkafka ${v.librdkafka ?? '?'}), ` +
        `Kafka ${v.kafka ?? '?'}, Redis ${v.redis ?? '?'}; broker and Redis on the same machine`,
      'fill="#444"',
    ),
  );

  // Throughput: one bar per scenario, the median of its runs, whiskers from min to max.
  const tp = r.throughput;
  const left = 160;
  const right = 640;
  const top = 90;
  const rowH = 34;
  const maxEps = Math.max(1, ...tp.map((t) => t.eventsPerSecond.max));
  const tx = ticks(maxEps);
  const xScale = (e: number) => left + ((right - left) * e) / tx[tx.length - 1];
  parts.push(
    text(20, top - 14, 'throughput, events/s (median, min to max of the runs)', 'font-weight="bold"'),
  );
  tp.forEach((t, i) => {
    const y = top + i * rowH;
    const fill = t.scenario === 'passthrough' || t.scenario.startsWith('topology-io') ? '#9db4cc' : '#2f6fa8';
    parts.push(
      text(left - 8, y + 17, t.scenario, 'text-anchor="end"'),
      bar(left, y + 4, rowH - 12, xScale, t.eventsPerSecond, fill),
      text(xScale(t.eventsPerSecond.max) + 6, y + 17, thousands(t.eventsPerSecond.median), 'fill="#222"'),
    );
  });
  const axisY = top + tp.length * rowH + 4;
  parts.push(`<line x1="${left}" y1="${axisY}" x2="${right}" y2="${axisY}" stroke="#888"/>`);
  for (const t of tx)
    parts.push(
      `<line x1="${xScale(t)}" y1="${axisY}" x2="${xScale(t)}" y2="${axisY + 5}" stroke="#888"/>`,
      text(xScale(t), axisY + 19, thousands(t), 'text-anchor="middle" fill="#555" font-size="11"'),
    );
  const pass = tp.find((t) => t.scenario === 'passthrough')?.eventsPerSecond.median;
  if (pass) {
    const x = xScale(0.4 * pass);
    parts.push(
      `<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${axisY + 24}" stroke="#c33" stroke-dasharray="5,4"/>`,
      text(x + 4, axisY + 34, 'the fraud EOS floor: 0.40 of the passthrough', 'fill="#c33" font-size="11"'),
    );
  }
  parts.push(
    text(
      20,
      axisY + 54,
      'light: the baselines (the same client with no runtime, and the topology’s Kafka I/O alone)',
      'fill="#555" font-size="11"',
    ),
  );

  // Latency: p50, p99 and p99.9 per offered load, against the p99 floor.
  const lx = 720;
  const lw = 440;
  const lat = r.latency;
  const maxMs = Math.max(330, ...lat.flatMap((l) => [l.p999Ms.max, l.p99Ms.max]));
  const ly = ticks(maxMs);
  const lScale = (ms: number) => lx + 115 + ((lw - 115) * ms) / ly[ly.length - 1];
  parts.push(
    text(lx, top - 14, 'end-to-end latency, ms (branch-totals, exactly once)', 'font-weight="bold"'),
  );
  const colors: Record<string, string> = { p50: '#8fbf7f', p99: '#3d8b3d', 'p99.9': '#1f5a1f' };
  let row = 0;
  for (const l of lat) {
    parts.push(text(lx, top + row * 26 + 17, `${thousands(l.rate)}/s`, 'font-weight="bold"'));
    for (const [name, s] of [
      ['p50', l.p50Ms],
      ['p99', l.p99Ms],
      ['p99.9', l.p999Ms],
    ] as const) {
      const y = top + row * 26;
      parts.push(
        text(lx + 110, y + 17, name, 'text-anchor="end" font-size="11"'),
        bar(lx + 115, y + 5, 16, lScale, s, colors[name]),
        text(lScale(s.max) + 6, y + 17, String(s.median), 'font-size="11"'),
      );
      row++;
    }
    row += 0.5;
  }
  const lAxis = top + row * 26 + 4;
  parts.push(`<line x1="${lx + 115}" y1="${lAxis}" x2="${lx + lw}" y2="${lAxis}" stroke="#888"/>`);
  for (const t of ly)
    parts.push(
      `<line x1="${lScale(t)}" y1="${lAxis}" x2="${lScale(t)}" y2="${lAxis + 5}" stroke="#888"/>`,
      text(lScale(t), lAxis + 19, String(t), 'text-anchor="middle" fill="#555" font-size="11"'),
    );
  if (lat.length > 0)
    parts.push(
      `<line x1="${lScale(300)}" y1="${top - 4}" x2="${lScale(300)}" y2="${lAxis}" stroke="#c33" stroke-dasharray="5,4"/>`,
      text(
        lScale(300) - 4,
        lAxis - 6,
        'p99 floor at 5,000/s',
        'text-anchor="end" fill="#c33" font-size="11"',
      ),
    );

  // The floors, as the harness judged them.
  const fy = H - 20 - 18 * Math.ceil(r.floors.length / 2);
  parts.push(text(20, fy - 8, 'floors', 'font-weight="bold"'));
  r.floors.forEach((f, i) => {
    const verdict = f.pass === null ? 'not run' : f.pass ? 'PASS' : 'FAIL';
    const color = f.pass === null ? '#777' : f.pass ? '#2a7a2a' : '#c33';
    parts.push(
      text(
        20 + (i % 2) * 580,
        fy + 12 + Math.floor(i / 2) * 18,
        `${verdict}  ${f.name}: ${f.value ?? '-'} (${f.limit})`,
        `fill="${color}"`,
      ),
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${parts.join('')}</svg>`;
}

/** The newest results file named by its date (the A/B folders and others are not). */
export function newestResults(dir: string): string {
  const files = readdirSync(dir)
    .filter((f) => /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.json$/.test(f))
    .sort();
  if (files.length === 0) throw new Error(`no dated results file in ${dir}`);
  return join(dir, files[files.length - 1]);
}

async function main(): Promise<void> {
  const [input = newestResults('bench/results'), out = 'docs/benchmarks.png'] = process.argv.slice(2);
  const r = JSON.parse(readFileSync(input, 'utf8')) as BenchResults;
  const svg = chartSvg(r, input.slice(input.lastIndexOf('/') + 1));
  const { Resvg } = await import('@resvg/resvg-js');
  const png = new Resvg(svg, {
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
    fitTo: { mode: 'original' },
  })
    .render()
    .asPng();
  writeFileSync(out, png);
  console.log(`${out}: ${png.length} bytes, from ${input}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
