import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { IMAGE_ENV } from '../../../bench/harness.js';
import { repoRoot } from '../../helpers/env.js';

/** `ENV` instructions of the Dockerfile's last stage, as name -> value. */
function runtimeEnv(dockerfile: string): Record<string, string> {
  const stages = dockerfile.split(/^FROM /m);
  const env: Record<string, string> = {};
  for (const line of stages[stages.length - 1].split('\n')) {
    const m = /^ENV\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const pair of m[1].split(/\s+/)) {
      const i = pair.indexOf('=');
      env[pair.slice(0, i)] = pair.slice(i + 1);
    }
  }
  return env;
}

describe('the image', () => {
  it('runs the service with the process settings the benchmarks measured', () => {
    const env = runtimeEnv(readFileSync(join(repoRoot(), 'Dockerfile'), 'utf8'));
    for (const [name, value] of Object.entries(IMAGE_ENV)) assert.equal(env[name], value, name);
  });
});
