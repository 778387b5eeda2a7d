import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Resvg } from '@resvg/resvg-js';
import { chartSvg, esc, newestResults } from '../../../bench/chart.js';
import type { BenchResults } from '../../../bench/harness.js';
import { repoRoot } from '../../helpers/env.js';

describe('bench chart', () => {
  it('draws every scenario, load and floor of a results file, and renders to a PNG', () => {
    const file = newestResults(join(repoRoot(), 'bench/results'));
    const r = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
    const svg = chartSvg(r, 'results.json');
    for (const t of r.throughput) assert.ok(svg.includes(`>${t.scenario}</text>`), t.scenario);
    for (const l of r.latency)
      assert.ok(svg.includes(`>${l.rate.toLocaleString('en-US')}/s</text>`), String(l.rate));
    for (const f of r.floors) {
      const verdict = f.pass === null ? 'not run' : f.pass ? 'PASS' : 'FAIL';
      assert.ok(svg.includes(esc(`${verdict}  ${f.name}`)), f.name);
    }
    const png = new Resvg(svg).render().asPng();
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    // IHDR: width and height, big-endian, at bytes 16 and 20.
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [1200, 470]);
  });
});
