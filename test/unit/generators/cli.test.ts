import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// Tests run from build/test/unit/generators; the CLI is built next to them.
const CLI = fileURLToPath(new URL('../../../src/generators/cli.js', import.meta.url));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('generator CLI', () => {
  it('writes one JSON value per line with --stdout, reproducibly', () => {
    const a = cli('fraud', '--count', '3', '--stdout');
    assert.equal(a.status, 0, a.stderr);
    const lines = a.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    for (const l of lines) assert.ok('customer' in (JSON.parse(l) as object));
    assert.equal(cli('fraud', '--count', '3', '--stdout').stdout, a.stdout);
    assert.notEqual(cli('fraud', '--count', '3', '--stdout', '--seed', '2').stdout, a.stdout);
  });

  it('passes the options through', () => {
    const r = cli(
      'payments',
      '--count=2',
      '--stdout',
      '--time',
      'sim',
      '--sim-start',
      '2024-07-01T10:00:00Z',
      '--jitter-ms',
      '0',
      '--sim-step-ms',
      '60000',
      '--tz',
      'Europe/Belgrade',
    );
    assert.equal(r.status, 0, r.stderr);
    const [p0, p1] = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { createTime: string; orderId: number });
    assert.equal(p0?.createTime, '2024-07-01 12:00:00');
    assert.equal(p1?.createTime, '2024-07-01 12:01:00');
    assert.equal(p1?.orderId, Date.UTC(2024, 6, 1, 10) / 1000 + 1);
  });

  it('writes values that are not single-line UTF-8 as base64', () => {
    const r = cli('payments', '--count', '600', '--stdout', '--malformed', '1', '--seed', '3');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 600);
    const b64 = lines.filter((l) => l.startsWith('base64:'));
    assert.ok(b64.length > 10);
    for (const l of b64) assert.equal(Buffer.from(l.slice(7), 'base64')[0], 0xff);
  });

  it('exits 2 with a one-line message naming the bad option', () => {
    for (const [args, name] of [
      [['fraud', '--count', 'many'], '--count'],
      [['fraud', '--rate=-1'], '--rate'],
      [['fraud', '--key', 'customer'], '--key'],
      [['fraud', '--time', 'now'], '--time'],
      [['payments', '--tz', 'Mars/Olympus'], '--tz'],
      [['payments', '--malformed', '1.5'], '--malformed'],
      [['payments', '--sim-start', 'tomorrow'], '--sim-start'],
      [['payments', '--brokers', 'localhost'], '--brokers'],
      [['fraud', '--customers', '0'], '--customers'],
      [['fraud', '--frobnicate'], '--frobnicate'],
      [['walrus'], 'kind'],
      [[], 'kind'],
    ] as const) {
      const r = cli(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.ok(r.stderr.includes(name), r.stderr);
      assert.equal(r.stdout, '');
    }
  });
});
