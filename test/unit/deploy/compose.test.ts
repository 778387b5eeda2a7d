import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/**
 * docker-compose.yml must run what the Helm chart deploys: the same topics, settings, port,
 * dashboard file and alert rules. Runs from the TypeScript source too (scripts/check-deploy.sh
 * strips types), so it imports nothing relative.
 */

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'helm/stream-template/Chart.yaml'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root not found above the test file');
    dir = up;
  }
  return dir;
}

const ROOT = repoRoot();
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const yamlFile = <T>(path: string): T => parse(read(path), { merge: true }) as T;

interface ComposeService {
  image?: string;
  command?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  volumes?: string[];
  stop_grace_period?: string;
  hostname?: string;
}
interface Values {
  serviceName: string;
  httpPort: number;
  shutdownGraceMs: number;
  terminationGracePeriodSeconds: number;
  kafka: { partitions: number; topics: Record<string, string> };
  service: { port: number };
}

const compose = yamlFile<{ services: Record<string, ComposeService> }>('docker-compose.yml');
const values = yamlFile<Values>('helm/stream-template/values.yaml');
const services = compose.services;
const members = Object.entries(services).filter(([, s]) => s.environment?.INSTANCE_ID !== undefined);
const env = (s: ComposeService, name: string): string | undefined =>
  s.environment?.[name] === undefined ? undefined : String(s.environment[name]);

/** Bind mounts of a service, source (relative to the repository) to target. */
function mounts(service: ComposeService): Map<string, string> {
  const m = new Map<string, string>();
  for (const v of service.volumes ?? []) {
    const [source, target] = v.split(':');
    if (source?.startsWith('./') && target) m.set(posix.normalize(source), target);
  }
  return m;
}

describe('docker-compose.yml against the Helm chart', () => {
  it('parses, with a broker, redis, two members, both generators, prometheus and grafana', () => {
    for (const name of [
      'broker',
      'redis',
      'topics',
      'generator-fraud',
      'generator-payments',
      'prometheus',
      'grafana',
    ]) {
      assert.ok(services[name], `service ${name}`);
    }
    assert.equal(members.length, 2, 'two consumer-group members');
    assert.notEqual(
      env(members[0][1], 'INSTANCE_ID'),
      env(members[1][1], 'INSTANCE_ID'),
      'distinct INSTANCE_IDs',
    );
  });

  it('configures transactions on a single broker', () => {
    const broker = services.broker;
    assert.equal(env(broker, 'KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR'), '1');
    assert.equal(env(broker, 'KAFKA_TRANSACTION_STATE_LOG_MIN_ISR'), '1');
    assert.equal(env(broker, 'KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR'), '1');
    assert.match(env(broker, 'KAFKA_PROCESS_ROLES') ?? '', /broker.*controller|controller.*broker/);
  });

  it('names the same topics as the chart', () => {
    const t = values.kafka.topics;
    const expected: Record<string, string | undefined> = {
      FRAUD_INPUT_TOPIC: t.fraudInput,
      FRAUD_OUTPUT_TOPIC: t.fraudAlerts,
      BRANCH_INPUT_TOPIC: t.branchInput,
      BRANCH_TOTALS_TOPIC: t.branchTotals,
      BRANCH_WINDOWED_TOPIC: t.branchWindowed,
    };
    for (const [name, s] of [...members, ['topics', services.topics] as const]) {
      for (const [variable, topic] of Object.entries(expected))
        assert.equal(env(s, variable), topic, `${name} ${variable}`);
    }
    const topicArg = (s: ComposeService) => s.command?.[s.command.indexOf('--topic') + 1];
    assert.equal(topicArg(services['generator-fraud']), t.fraudInput);
    assert.equal(topicArg(services['generator-payments']), t.branchInput);
  });

  it('uses the same service name, partitions and shutdown timing as the chart', () => {
    for (const [name, s] of [...members, ['topics', services.topics] as const]) {
      assert.equal(env(s, 'SERVICE_NAME'), values.serviceName, `${name} SERVICE_NAME`);
      assert.equal(
        env(s, 'KAFKA_TOPIC_PARTITIONS'),
        String(values.kafka.partitions),
        `${name} KAFKA_TOPIC_PARTITIONS`,
      );
    }
    for (const [name, s] of members) {
      assert.equal(env(s, 'SHUTDOWN_GRACE_MS'), String(values.shutdownGraceMs), `${name} SHUTDOWN_GRACE_MS`);
      assert.equal(
        s.stop_grace_period,
        `${values.terminationGracePeriodSeconds}s`,
        `${name} stop_grace_period`,
      );
    }
  });

  it('serves health and metrics on HTTP_PORT 8080, as the chart does', () => {
    assert.equal(values.httpPort, 8080);
    assert.equal(values.service.port, 8080);
    const scrape = yamlFile<{ scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }> }>(
      'deploy/compose/prometheus.yml',
    );
    const targets = scrape.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    for (const [name, s] of members) {
      assert.equal(env(s, 'HTTP_PORT'), '8080', `${name} HTTP_PORT`);
      assert.ok(
        (s.ports ?? []).some((p) => p.endsWith(':8080')),
        `${name} publishes container port 8080`,
      );
      assert.ok(targets.includes(`${s.hostname ?? name}:8080`), `prometheus scrapes ${name}`);
    }
  });

  it('provisions the chart’s dashboard file in Grafana', () => {
    const file = 'helm/stream-template/dashboards/stream-template.json';
    assert.ok(existsSync(join(ROOT, file)));
    assert.match(
      read('helm/stream-template/templates/grafana-dashboard.yaml'),
      /\.Files\.Get "dashboards\/stream-template\.json"/,
    );
    const target = mounts(services.grafana).get(file);
    assert.ok(target, `grafana mounts ${file}`);
    const provider = yamlFile<{ providers: Array<{ type: string; options: { path: string } }> }>(
      'deploy/compose/grafana/provisioning/dashboards/stream-template.yaml',
    );
    assert.ok(
      provider.providers.some(
        (p) => p.type === 'file' && posix.dirname(target) === posix.normalize(p.options.path),
      ),
      `a file provider reads ${posix.dirname(target)}`,
    );
    assert.ok(mounts(services.grafana).has('deploy/compose/grafana/provisioning'));
  });

  it('loads the chart’s alert rules in Prometheus', () => {
    const file = 'helm/stream-template/files/alerts.yaml';
    assert.match(
      read('helm/stream-template/templates/prometheusrule.yaml'),
      /\.Files\.Get "files\/alerts\.yaml"/,
    );
    const target = mounts(services.prometheus).get(file);
    assert.ok(target, `prometheus mounts ${file}`);
    const config = yamlFile<{ rule_files: string[] }>('deploy/compose/prometheus.yml');
    const glob = (pattern: string) =>
      new RegExp(`^${pattern.replace(/[.]/g, '\\.').replace(/\*/g, '[^/]*')}$`);
    assert.ok(
      config.rule_files.some((p) => glob(p).test(target)),
      `rule_files ${config.rule_files.join(', ')} include ${target}`,
    );
  });
});
