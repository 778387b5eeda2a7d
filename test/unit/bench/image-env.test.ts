import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { hostImageEnv, IMAGE_ENV } from '../../../bench/harness.js';
import { repoRoot } from '../../helpers/env.js';

/** `ENV` instructions of the Dockerfile's last stage, as name -> value (a value may be double-quoted). */
function runtimeEnv(dockerfile: string): Record<string, string> {
  const stages = dockerfile.split(/^FROM /m);
  const env: Record<string, string> = {};
  for (const line of stages[stages.length - 1].split('\n')) {
    const m = /^ENV\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const pair of m[1].matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g))
      env[pair[1]] = pair[2].replace(/^"(.*)"$/, '$1');
  }
  return env;
}

describe('the image', () => {
  it('runs the service with the process settings the benchmarks measured', () => {
    const env = runtimeEnv(readFileSync(join(repoRoot(), 'Dockerfile'), 'utf8'));
    for (const [name, value] of Object.entries(IMAGE_ENV)) assert.equal(env[name], value, name);
  });

  it("links the allocator it preloads, and members find this machine's copy of it", () => {
    const stages = readFileSync(join(repoRoot(), 'Dockerfile'), 'utf8').split(/^FROM /m);
    const runtime = stages[stages.length - 1];
    assert.match(
      runtime,
      /apt-get install [^\n]*\blibjemalloc2\b/,
      'the runtime stage installs libjemalloc2',
    );
    assert.match(
      runtime,
      new RegExp(`ln -s [^\\n]+ ${IMAGE_ENV.LD_PRELOAD}`),
      'and links what LD_PRELOAD names',
    );
    const dir = mkdtempSync(join(tmpdir(), 'lib-'));
    writeFileSync(join(dir, 'libjemalloc.so.2'), '');
    assert.equal(hostImageEnv(['/nonexistent', dir]).LD_PRELOAD, join(dir, 'libjemalloc.so.2'));
    assert.equal(hostImageEnv([dir]).NODE_OPTIONS, IMAGE_ENV.NODE_OPTIONS);
    assert.throws(() => hostImageEnv(['/nonexistent']), /libjemalloc2/);
  });
});
