import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config/env.js';
import { resolvePipelines } from '../../src/pipelines/index.js';
import { connectRedis, createRedisClient } from '../../src/runtime/state/redis-client.js';
import { declaredTopics } from '../../src/topics/registry.js';
import { infra, uniqueName } from '../helpers/env.js';
import { createTopics, produce, readTopics } from '../helpers/kafka.js';
import { startService, type ServiceProcess } from '../helpers/service.js';

/**
 * A secured broker (SASL_SSL + SCRAM-SHA-512 with a CA that scripts/kafka.sh generates) and an
 * AUTH-protected Redis: the service connects with credentials from files, verifies the CA, and
 * no secret reaches its logs, metrics or health output. scripts/test.sh exports KAFKA_SASL_BROKERS
 * and KAFKA_SASL_CA when it starts the broker; the SCRAM user is stream / stream-secret.
 */
const SASL_BROKERS = process.env.KAFKA_SASL_BROKERS;
const SASL_CA = process.env.KAFKA_SASL_CA;
const SASL_PASSWORD = process.env.KAFKA_SASL_TEST_PASSWORD ?? 'stream-secret';
const WRONG_PASSWORD = 'Wr0ng-pa55word-7f3c';
const REDIS_PASSWORD = 'r3dis-Pa55word-91ab';

const dir = mkdtempSync(join(tmpdir(), 'security-'));
const file = (name: string, content: string): string => {
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
};

function pipelineEnv(app: string): Record<string, string> {
  return {
    SERVICE_NAME: app,
    INSTANCE_ID: 'sec',
    PIPELINES: 'branch-totals',
    BRANCH_INPUT_TOPIC: `${app}-payments`,
    BRANCH_TOTALS_TOPIC: `${app}-totals`,
    BRANCH_WINDOWED_TOPIC: `${app}-windowed`,
    KAFKA_TOPIC_PARTITIONS: '2',
  };
}

async function prepareTopics(env: Record<string, string>): Promise<void> {
  const config = loadConfig({ ...env, KAFKA_BROKERS: infra().brokers });
  await createTopics(declaredTopics(config, resolvePipelines(config, env)));
}

function assertNoSecrets(text: string, where: string): void {
  for (const secret of [SASL_PASSWORD, WRONG_PASSWORD, REDIS_PASSWORD]) {
    assert.ok(!text.includes(secret), `a secret appears in ${where}`);
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

describe(
  'secured Kafka (SASL_SSL, SCRAM-SHA-512)',
  { skip: !SASL_BROKERS || !SASL_CA ? 'the broker was not started by npm test with a SASL listener' : false },
  () => {
    it('connects with credentials from files, verifies the CA, and keeps secrets out of logs, metrics and health', async () => {
      const app = uniqueName('sec-sasl');
      const env = pipelineEnv(app);
      await prepareTopics(env);
      const svc = startService({
        ...env,
        KAFKA_BROKERS: SASL_BROKERS!,
        KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
        KAFKA_SASL_USERNAME: 'stream',
        KAFKA_SASL_PASSWORD_FILE: file('sasl-password', SASL_PASSWORD),
        KAFKA_SSL_CA_LOCATION: SASL_CA!,
        LOG_LEVEL: 'debug',
      });
      try {
        await svc.ready(60_000);
        await produce(`${app}-payments`, [
          {
            value: {
              createTime: '2024-01-01 00:00:01',
              orderId: 1,
              payAmount: 7.25,
              payPlatform: 1,
              branchId: 2,
            },
          },
        ]);
        const totals = await readTopics([`${app}-totals`], { count: 1, timeoutMs: 30_000 });
        assert.equal(
          (JSON.parse(totals[0].value!.toString()) as { pay_amount_exact: string }).pay_amount_exact,
          '7.25',
        );
        assertNoSecrets(await (await fetch(`${svc.url}/metrics`)).text(), '/metrics');
        assertNoSecrets(await (await fetch(`${svc.url}/health/ready`)).text(), '/health/ready');
        assertNoSecrets(await (await fetch(`${svc.url}/health/live`)).text(), '/health/live');
      } finally {
        await svc.stop().catch(() => undefined);
      }
      assertNoSecrets(svc.logs(), 'the logs');
    });

    it('fails clearly on wrong credentials: never ready, a log line naming the cause, no secret', async () => {
      const app = uniqueName('sec-wrong');
      const env = pipelineEnv(app);
      await prepareTopics(env);
      const svc = startService({
        ...env,
        KAFKA_BROKERS: SASL_BROKERS!,
        KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
        KAFKA_SASL_USERNAME: 'stream',
        KAFKA_SASL_PASSWORD_FILE: file('wrong-password', WRONG_PASSWORD),
        KAFKA_SSL_CA_LOCATION: SASL_CA!,
      });
      let sawNotReady = false;
      const deadline = Date.now() + 60_000;
      while (svc.child.exitCode === null && Date.now() < deadline) {
        const res = await fetch(`${svc.url}/health/ready`).catch(() => undefined);
        if (res) {
          assert.notEqual(res.status, 200, 'never ready with wrong credentials');
          sawNotReady ||= res.status === 503;
          assertNoSecrets(await res.text(), '/health/ready');
        }
        await sleep(250);
      }
      const code = await Promise.race([svc.exited, sleep(5000).then(() => 'running')]);
      assert.notEqual(code, 0, 'exits non-zero so the orchestrator shows the failure');
      assert.notEqual(code, 'running');
      assert.ok(sawNotReady, 'readiness answered 503 while it tried');
      const fatal = svc
        .logs()
        .split('\n')
        .filter((l) => l.includes('"level":"fatal"'));
      assert.ok(
        fatal.some((l) => /SASL authentication error|invalid credentials/.test(l)),
        `a fatal line names the cause:\n${fatal.join('\n')}`,
      );
      assertNoSecrets(svc.logs(), 'the logs');
    });
  },
);

describe('Redis AUTH', () => {
  let redis: ChildProcess;
  let port: number;
  before(async () => {
    port = await freePort();
    redis = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--requirepass',
        REDIS_PASSWORD,
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      {
        stdio: 'ignore',
      },
    );
    const client = createRedisClient({ url: `redis://127.0.0.1:${port}`, password: REDIS_PASSWORD });
    client.on('error', () => undefined);
    await connectRedis(client, 10_000);
    client.disconnect();
  });
  after(() => {
    redis.kill('SIGTERM');
  });

  it('is refused without the password and accepted with it', async () => {
    for (const password of [undefined, WRONG_PASSWORD]) {
      const client = createRedisClient({
        url: `redis://127.0.0.1:${port}`,
        ...(password ? { password } : {}),
      });
      client.on('error', () => undefined);
      try {
        await assert.rejects(
          connectRedis(client, 1500),
          /NOAUTH|WRONGPASS|Authentication required|invalid username-password/i,
        );
      } finally {
        client.disconnect();
      }
    }
  });

  it('serves a member that reads the password from a file, with no secret in its output', async () => {
    const app = uniqueName('sec-redis');
    const env = pipelineEnv(app);
    await prepareTopics(env);
    const svc: ServiceProcess = startService({
      ...env,
      REDIS_URL: `redis://127.0.0.1:${port}`,
      REDIS_PASSWORD_FILE: file('redis-password', REDIS_PASSWORD),
    });
    try {
      await svc.ready(60_000);
      await produce(`${app}-payments`, [
        {
          value: { createTime: '2024-01-01 00:00:01', orderId: 1, payAmount: 1, payPlatform: 0, branchId: 5 },
        },
      ]);
      const totals = await readTopics([`${app}-totals`], { count: 1, timeoutMs: 30_000 });
      assert.equal(totals.length, 1);
      const body = (await (await fetch(`${svc.url}/branches/Branch_5`)).json()) as { count: number };
      assert.equal(body.count, 1, 'state was written to and read from the AUTH-protected Redis');
      assertNoSecrets(await (await fetch(`${svc.url}/metrics`)).text(), '/metrics');
    } finally {
      await svc.stop().catch(() => undefined);
    }
    assertNoSecrets(svc.logs(), 'the logs');
  });
});
