import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ZodType } from 'zod';
import { ConfigError, loadConfig } from '../../../src/config/env.js';
import { resolvePipelines } from '../../../src/pipelines/index.js';

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    resolvePipelines(loadConfig(env), env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('configuration', () => {
  it('has working defaults for every variable', () => {
    const c = loadConfig({});
    assert.equal(c.kafka.brokers, '127.0.0.1:9092');
    assert.equal(c.kafka.processingGuarantee, 'exactly_once');
    assert.equal(c.kafka.commitIntervalMs, 100);
    assert.equal(c.kafka.commitCaughtUpMs, 50);
    assert.equal(c.service.httpPort, 8080);
    assert.equal(resolvePipelines(c, {}).length, 3);
  });

  it('names the variable, the value and what is allowed, on one line', () => {
    const e = configError({ KAFKA_BROKERS: '' });
    assert.equal(e.variable, 'KAFKA_BROKERS');
    assert.match(
      e.message,
      /^invalid setting KAFKA_BROKERS="": expected a comma-separated list of host:port/,
    );
    assert.ok(!e.message.includes('\n'));
    const p = configError({ HTTP_PORT: 'eighty' });
    assert.equal(p.message, 'invalid setting HTTP_PORT="eighty": expected a TCP port number from 1 to 65535');
    assert.equal(configError({ HTTP_PORT: '70000' }).variable, 'HTTP_PORT');
    assert.equal(configError({ PROCESSING_GUARANTEE: 'maybe' }).variable, 'PROCESSING_GUARANTEE');
    assert.equal(configError({ COMMIT_INTERVAL_MS: '0' }).variable, 'COMMIT_INTERVAL_MS');
  });

  it('keeps the caught-up commit interval within COMMIT_INTERVAL_MS', () => {
    assert.equal(loadConfig({ COMMIT_INTERVAL_MS: '30' }).kafka.commitCaughtUpMs, 30);
    assert.equal(loadConfig({ COMMIT_CAUGHT_UP_MS: '100' }).kafka.commitCaughtUpMs, 100);
    const e = configError({ COMMIT_INTERVAL_MS: '200', COMMIT_CAUGHT_UP_MS: '250' });
    assert.equal(
      e.message,
      'invalid setting COMMIT_CAUGHT_UP_MS="250": expected a whole number of milliseconds from 1 to COMMIT_INTERVAL_MS (200)',
    );
    assert.equal(configError({ COMMIT_CAUGHT_UP_MS: '0' }).variable, 'COMMIT_CAUGHT_UP_MS');
  });

  it('validates pipeline settings at boot too', () => {
    assert.equal(configError({ FRAUD_MIN_COUNT: 'three' }).variable, 'FRAUD_MIN_COUNT');
    assert.equal(configError({ BRANCH_TIMEZONE: 'Mars/Olympus' }).variable, 'BRANCH_TIMEZONE');
    assert.equal(configError({ PIPELINES: 'nope' }).variable, 'PIPELINES');
  });

  it('requires SASL credentials when SASL is on, and never echoes a secret', () => {
    assert.equal(configError({ KAFKA_SECURITY_PROTOCOL: 'sasl_ssl' }).variable, 'KAFKA_SASL_USERNAME');
    assert.equal(
      configError({ KAFKA_SECURITY_PROTOCOL: 'sasl_ssl', KAFKA_SASL_USERNAME: 'u' }).variable,
      'KAFKA_SASL_PASSWORD',
    );
    const e = configError({ KAFKA_SASL_PASSWORD: ' ' });
    assert.ok(!e.message.includes('" "'));
    assert.match(e.message, /<redacted>/);
    const ok = loadConfig({
      KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'p',
    });
    assert.deepEqual(ok.kafka.security.sasl, { mechanism: 'SCRAM-SHA-512', username: 'u', password: 'p' });
  });
});

describe('.env.example', () => {
  it('lists every variable the service reads, with its real default', async () => {
    const { readFileSync } = await import('node:fs');
    const { fraudTriggerEnv } = await import('../../../src/pipelines/fraud-trigger/fraud-trigger.config.js');
    const { branchTotalsEnv } = await import('../../../src/pipelines/branch-totals/branch-totals.config.js');
    const { envSchema } = await import('../../../src/config/env.js');
    const { cardVelocityEnv } = await import('../../../src/pipelines/card-velocity/card-velocity.config.js');
    const text = readFileSync(new URL('../../../../.env.example', import.meta.url), 'utf8');
    const listed = new Map<string, string | undefined>();
    for (const line of text.split('\n')) {
      const m = /^(# )?([A-Z][A-Z0-9_]+)=(.*)$/.exec(line);
      if (m) listed.set(m[2], m[1] ? undefined : m[3]);
    }
    const shapes: Array<Record<string, ZodType>> = [
      envSchema.shape,
      fraudTriggerEnv.shape,
      branchTotalsEnv.shape,
      cardVelocityEnv.shape,
    ];
    for (const shape of shapes) {
      for (const [name, field] of Object.entries(shape)) {
        assert.ok(listed.has(name), `${name} is missing from .env.example`);
        const parsed = field.safeParse(undefined);
        const data: unknown = parsed.success ? parsed.data : undefined;
        const def = typeof data === 'string' || typeof data === 'number' ? String(data) : undefined;
        assert.equal(listed.get(name), def, `default of ${name}`);
      }
    }
  });
});
