import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/env.js';
import { resolvePipelines } from '../../src/pipelines/index.js';
import { declaredTopics } from '../../src/topics/registry.js';
import { infra, repoRoot, uniqueName } from '../helpers/env.js';
import { createTopics, produce } from '../helpers/kafka.js';
import { startService, type ServiceProcess } from '../helpers/service.js';

/**
 * The service's /metrics against real Prometheus tooling: promtool's linter, a real Prometheus
 * scraping it (with the chart's alert rules loaded), and every metric the dashboard and the
 * alert rules use actually exposed. Needs Kafka, Redis, and Debian's `prometheus` package
 * (/usr/bin/prometheus and /usr/bin/promtool, or PROMETHEUS / PROMTOOL).
 */

const PROMETHEUS = process.env.PROMETHEUS ?? '/usr/bin/prometheus';
const PROMTOOL = process.env.PROMTOOL ?? '/usr/bin/promtool';

const ROOT = repoRoot();
const ALERTS = join(ROOT, 'helm/stream-template/files/alerts.yaml');
const DASHBOARD = join(ROOT, 'helm/stream-template/dashboards/stream-template.json');

// prom-client's default Node metrics that are gauges named *_total; not ours to rename.
const KNOWN_LINT =
  /^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;
// Series Prometheus itself adds to every target.
const SYNTHETIC = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped']);
const PROMQL_WORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'inf',
  'nan',
]);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels, strings or durations. */
function promqlMetricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w$.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()/g)) {
    const word = m[1];
    if (!PROMQL_WORDS.has(word.toLowerCase())) names.add(word);
  }
  return [...names];
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

async function eventually<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(500);
  }
  const reason = last instanceof Error ? ` (last error: ${last.message})` : '';
  throw new Error(`${what}: not within ${timeoutMs} ms${reason}`);
}

interface PromVector {
  metric: Record<string, string>;
  value: [number, string];
}

describe('metrics with Prometheus tooling', () => {
  const app = uniqueName('e2e-prom');
  // Own topics: the broker is shared with the other tests.
  const env: Record<string, string> = {
    SERVICE_NAME: app,
    KAFKA_TOPIC_PARTITIONS: '2',
    FRAUD_INPUT_TOPIC: `${app}-tx`,
    FRAUD_OUTPUT_TOPIC: `${app}-alerts`,
    BRANCH_INPUT_TOPIC: `${app}-payments`,
    BRANCH_TOTALS_TOPIC: `${app}-totals`,
    BRANCH_WINDOWED_TOPIC: `${app}-windowed`,
  };
  let service: ServiceProcess | undefined;
  let prometheus: ChildProcess | undefined;
  let promLog = '';
  let promUrl = '';
  let workDir = '';

  const scrape = async (): Promise<string> => {
    const res = await fetch(`${service!.url}/metrics`);
    assert.equal(res.status, 200);
    return res.text();
  };
  const query = async (q: string): Promise<PromVector[]> => {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = (await res.json()) as { status: string; data?: { result: PromVector[] }; error?: string };
    if (body.status !== 'success') throw new Error(`query ${q}: ${body.error ?? res.status}`);
    return body.data!.result;
  };

  before(async () => {
    for (const bin of [PROMETHEUS, PROMTOOL]) {
      assert.ok(
        existsSync(bin),
        `${bin} is missing: install Debian's prometheus package (apt-get install prometheus)`,
      );
    }
    const config = loadConfig({ ...env, KAFKA_BROKERS: infra().brokers });
    await createTopics(declaredTopics(config, resolvePipelines(config, env)));

    service = startService(env);
    await service.ready(120_000);

    workDir = await mkdtemp(join(tmpdir(), 'stream-prom-'));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    await writeFile(
      join(workDir, 'prometheus.yml'),
      JSON.stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [ALERTS],
        scrape_configs: [
          { job_name: 'stream', static_configs: [{ targets: [`127.0.0.1:${service.port}`] }] },
        ],
      }),
    );
    prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(workDir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(workDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout!.on('data', (d: Buffer) => (promLog += d.toString()));
    prometheus.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
    await eventually('prometheus ready', 30_000, async () => {
      if (prometheus!.exitCode !== null)
        throw new Error(`prometheus exited ${prometheus!.exitCode}:\n${promLog.slice(-3000)}`);
      return (await fetch(`${promUrl}/-/ready`)).ok || undefined;
    });

    // Traffic: payments for branch-totals, one malformed record for the dead-letter path.
    const payment = {
      createTime: '2024-01-01 00:00:01',
      orderId: 1,
      payAmount: 1.5,
      payPlatform: 0,
      branchId: 1,
    };
    await produce(env.BRANCH_INPUT_TOPIC, [
      ...Array.from({ length: 200 }, (_, i) => ({ value: { ...payment, orderId: i + 1 } })),
      { value: 'not json' },
    ]);
  });

  after(async () => {
    if (prometheus && prometheus.exitCode === null && prometheus.signalCode === null) {
      prometheus.kill('SIGTERM');
      await Promise.race([once(prometheus, 'exit'), sleep(10_000)]);
      if (prometheus.exitCode === null && prometheus.signalCode === null) prometheus.kill('SIGKILL');
    }
    await service?.stop().catch(() => undefined);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('passes promtool check metrics (apart from prom-client defaults)', async () => {
    const text = await scrape();
    const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    // 0: clean; 3: lint findings (listed on stdout/stderr); anything else: the exposition did not parse.
    assert.ok(r.status === 0 || r.status === 3, `promtool exited ${r.status}: ${r.stdout}${r.stderr}`);
    const findings = `${r.stdout}\n${r.stderr}`
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    const unexpected = findings.filter((l) => !KNOWN_LINT.test(l));
    assert.deepEqual(unexpected, [], 'promtool findings beyond the known prom-client default gauges');
    assert.ok(!findings.some((l) => l.startsWith('stream_')), 'no findings on stream_ metrics');
  });

  it('is scraped by a real Prometheus, which loads the chart’s alert rules', async () => {
    const consumed = await eventually('stream_records_consumed_total in Prometheus', 120_000, async () => {
      const result = await query('stream_records_consumed_total');
      return result.length > 0 && result.some((s) => Number(s.value[1]) > 0) ? result : undefined;
    });
    assert.ok(consumed.every((s) => s.metric.job === 'stream'));

    const res = await fetch(`${promUrl}/api/v1/rules?type=alert`);
    const body = (await res.json()) as {
      data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> };
    };
    const rules = body.data.groups.flatMap((g) => g.rules);
    const expected = (
      parse(readFileSync(ALERTS, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string }> }> }
    ).groups.flatMap((g) => g.rules.map((r) => r.alert));
    assert.deepEqual(rules.map((r) => r.name).sort(), [...expected].sort());
    // Evaluated at least once, without a PromQL error.
    await eventually('alert rules evaluated', 30_000, async () => {
      const b = (await (await fetch(`${promUrl}/api/v1/rules?type=alert`)).json()) as typeof body;
      const all = b.data.groups.flatMap((g) => g.rules);
      return all.every((r) => r.health === 'ok') ? all : undefined;
    });
  });

  it('exposes every metric the dashboard and the alert rules use', async () => {
    // Wait until the traffic went through: the labelled series appear with it.
    await eventually('records processed', 120_000, async () => {
      const text = await scrape();
      const consumed = [...text.matchAll(/^stream_records_consumed_total\{[^}]*\} (\d+)/gm)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
      return consumed >= 200 ? true : undefined;
    });
    const text = await scrape();
    const families = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));

    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      panels: Array<{
        panels?: Array<{ targets?: Array<{ expr?: string }> }>;
        targets?: Array<{ expr?: string }>;
      }>;
    };
    const dashboardExprs = dashboard.panels
      .flatMap((p) => [p, ...(p.panels ?? [])])
      .flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
    const alertExprs = (
      parse(readFileSync(ALERTS, 'utf8')) as { groups: Array<{ rules: Array<{ expr: string }> }> }
    ).groups.flatMap((g) => g.rules.map((r) => r.expr));
    const used = new Set([...dashboardExprs, ...alertExprs].flatMap(promqlMetricNames));
    assert.ok(
      used.has('stream_records_consumed_total') && used.has('up'),
      `names found: ${[...used].join(', ')}`,
    );

    const missing: string[] = [];
    for (const name of used) {
      if (SYNTHETIC.has(name)) {
        if ((await query(`${name}{job="stream"}`)).length === 0) missing.push(`${name} (from Prometheus)`);
        continue;
      }
      const family = name.replace(/_(bucket|sum|count)$/, '');
      const exposed =
        families.has(name) ||
        (family !== name && ['histogram', 'summary'].includes(families.get(family) ?? ''));
      if (!exposed) missing.push(name);
    }
    assert.deepEqual(
      missing,
      [],
      'metrics used by the dashboard or the alerts but not exposed by the service',
    );
  });
});
