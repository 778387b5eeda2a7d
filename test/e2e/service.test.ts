import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/env.js';
import { resolvePipelines } from '../../src/pipelines/index.js';
import { declaredTopics } from '../../src/topics/registry.js';
import { infra, uniqueName } from '../helpers/env.js';
import { createTopics, produce, readTopics } from '../helpers/kafka.js';
import { startService, type ServiceProcess } from '../helpers/service.js';

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

/** Runs the service with an environment and returns how it ended, for boot-time validation. */
function boot(env: Record<string, string>): { status: number | null; lines: string[] } {
  const r = spawnSync(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: r.status, lines: `${r.stdout}${r.stderr}`.trim().split('\n') };
}

describe('the service process', () => {
  const app = uniqueName('e2e-svc');
  const env = {
    SERVICE_NAME: app,
    INSTANCE_ID: 'm0',
    FRAUD_INPUT_TOPIC: `${app}-tx`,
    FRAUD_OUTPUT_TOPIC: `${app}-alerts`,
    // Two pipelines on one input topic: each record goes through both.
    CARD_VELOCITY_INPUT_TOPIC: `${app}-tx`,
    CARD_VELOCITY_OUTPUT_TOPIC: `${app}-velocity`,
    BRANCH_INPUT_TOPIC: `${app}-payments`,
    BRANCH_TOTALS_TOPIC: `${app}-totals`,
    BRANCH_WINDOWED_TOPIC: `${app}-windowed`,
    KAFKA_TOPIC_PARTITIONS: '2',
  };
  let svc: ServiceProcess;

  before(async () => {
    const { brokers } = infra();
    const config = loadConfig({ ...env, KAFKA_BROKERS: brokers });
    await createTopics(declaredTopics(config, resolvePipelines(config, env)));
    svc = startService(env);
  });
  after(async () => {
    if (svc.child.exitCode === null) await svc.stop().catch(() => undefined);
  });

  it('becomes ready: Kafka connected, group joined, Redis answering', async () => {
    await svc.ready(60_000);
    const body = (await (await fetch(`${svc.url}/health/ready`)).json()) as {
      status: string;
      info: Record<string, unknown>;
    };
    assert.equal(body.status, 'ok');
    assert.ok(body.info.stream && body.info.redis);
    const live = await fetch(`${svc.url}/health/live`);
    assert.equal(live.status, 200);
  });

  it('processes records end to end and counts them in /metrics', async () => {
    await produce(
      `${app}-payments`,
      Array.from({ length: 50 }, (_, i) => ({
        value: { createTime: '2024-01-01 00:00:01', orderId: i, payAmount: 2.5, payPlatform: 0, branchId: 3 },
      })),
    );
    const totals = await readTopics([`${app}-totals`], { quietMs: 1500, timeoutMs: 30_000 });
    const last = JSON.parse(totals.at(-1)!.value!.toString()) as {
      branch: string;
      pay_amount_exact: string;
      count: number;
    };
    assert.deepEqual(last, { branch: 'Branch_3', pay_amount: 125, pay_amount_exact: '125', count: 50 });
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`stream_records_consumed_total\\{topic="${app}-payments"\\} 50`));
  });

  it('answers state queries from Redis, and 404 with a clear body for unknown names', async () => {
    const list = (await (await fetch(`${svc.url}/branches`)).json()) as {
      branches: Array<{ branch: string; count: number }>;
    };
    assert.equal(list.branches.length, 10);
    assert.deepEqual(
      list.branches.find((b) => b.branch === 'Branch_3'),
      { branch: 'Branch_3', pay_amount: 125, pay_amount_exact: '125', count: 50 },
    );
    const one = (await (await fetch(`${svc.url}/branches/Branch_3`)).json()) as {
      count: number;
      open_windows: Array<{ window_start: string; count: number }>;
    };
    assert.equal(one.count, 50);
    assert.deepEqual(
      one.open_windows.map((w) => [w.window_start, w.count]),
      [['2024-01-01T00:00:00.000Z', 50]],
    );
    const unknown = await fetch(`${svc.url}/branches/Branch_42`);
    assert.equal(unknown.status, 404);
    assert.match(
      ((await unknown.json()) as { message: string }).message,
      /unknown branch "Branch_42"; known: Branch_0/,
    );

    await produce(`${app}-tx`, [
      {
        value: {
          customer: 'Ann Example',
          transaction_type: 'shopping',
          online_payment_amount: 0,
          in_store_payment_amount: 12.5,
          lat: 44.7,
          lon: 20.4,
          transaction_datetime: '2024-01-01T09:00:00Z',
        },
      },
    ]);
    const deadline = Date.now() + 20_000;
    let res = await fetch(`${svc.url}/customers/${encodeURIComponent('Ann Example')}/windows`);
    while (res.status === 404 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      res = await fetch(`${svc.url}/customers/${encodeURIComponent('Ann Example')}/windows`);
    }
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      customer: 'Ann Example',
      windows: [
        {
          window_start: '2024-01-01T08:00:00.000Z',
          window_end: '2024-01-01T18:00:00.000Z',
          count_transactions: 1,
          total_online_payment_amount: 0,
          total_in_store_payment_amount: 12.5,
          lat: 44.7,
          lon: 20.4,
        },
      ],
    });
    const nobody = await fetch(`${svc.url}/customers/nobody/windows`);
    assert.equal(nobody.status, 404);
    assert.match(
      ((await nobody.json()) as { message: string }).message,
      /customer "nobody" has no open window/,
    );
  });

  it('exports business metrics for committed output only', async () => {
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    assert.match(metrics, /^stream_branch_total_amount\{branch="Branch_3"\} 125$/m);
    assert.match(metrics, /^stream_branch_payments\{branch="Branch_3"\} 50$/m);
    assert.match(metrics, /^stream_fraud_alerts_total 0$/m);
  });

  it('writes JSON logs, one object a line', () => {
    const lines = svc.logs().trim().split('\n');
    assert.ok(lines.length > 3);
    for (const line of lines) {
      const entry = JSON.parse(line) as { level: string; msg: string; instance: string };
      assert.equal(entry.instance, 'm0');
    }
  });

  it('stops on SIGTERM: finishes, leaves the group, exits 0', async () => {
    const started = Date.now();
    assert.equal(await svc.stop(30_000), 0);
    assert.ok(Date.now() - started < 25_000);
    assert.match(svc.logs(), /stream runtime stopped/);
  });
});

describe('bad settings stop the service at boot', () => {
  for (const [variable, value, expected] of [
    ['KAFKA_BROKERS', '', /^invalid setting KAFKA_BROKERS="": expected a comma-separated list of host:port/],
    ['HTTP_PORT', 'http', /^invalid setting HTTP_PORT="http": expected a TCP port number from 1 to 65535$/],
    ['FRAUD_WINDOW_MS', '-5', /^invalid setting FRAUD_WINDOW_MS="-5": expected a window size/],
  ] as const) {
    it(`${variable}=${JSON.stringify(value)} exits 78 with one line naming it`, () => {
      const { status, lines } = boot({ [variable]: value });
      assert.equal(status, 78);
      assert.equal(lines.length, 1, lines.join('\n'));
      const entry = JSON.parse(lines[0]) as { level: string; msg: string };
      assert.equal(entry.level, 'fatal');
      assert.match(entry.msg, expected);
    });
  }
});
