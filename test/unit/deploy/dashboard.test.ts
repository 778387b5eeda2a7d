import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/**
 * The one Grafana dashboard (chart and compose): a stable uid, a data source variable every
 * query goes through, rate() over $__rate_interval, and only metrics the service declares.
 * Runs from the TypeScript source too (scripts/check-deploy.sh strips types).
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

interface DataSourceRef {
  type?: string;
  uid?: string;
}
interface Target {
  refId: string;
  expr?: string;
  datasource?: DataSourceRef;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: DataSourceRef;
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: string | { query: string };
  datasource?: DataSourceRef;
}
interface Dashboard {
  uid: string;
  title: string;
  templating: { list: Variable[] };
  panels: Panel[];
}

const ROOT = repoRoot();
const dashboard = JSON.parse(
  readFileSync(join(ROOT, 'helm/stream-template/dashboards/stream-template.json'), 'utf8'),
) as Dashboard;
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
const DATASOURCE = '${datasource}';

const alertExprs = (
  parse(readFileSync(join(ROOT, 'helm/stream-template/files/alerts.yaml'), 'utf8')) as {
    groups: Array<{ rules: Array<{ expr: string }> }>;
  }
).groups.flatMap((g) => g.rules.map((r) => r.expr));

/** Metric names of the service's own and prom-client's default metrics in a PromQL expression. */
const metricNames = (expr: string): string[] => expr.match(/\b(?:stream|process|nodejs)_[a-z0-9_]+/g) ?? [];
const baseName = (name: string): string => name.replace(/_(bucket|sum|count)$/, '');

describe('Grafana dashboard', () => {
  it('has a stable uid', () => {
    assert.equal(dashboard.uid, 'stream-template');
    assert.ok(dashboard.title);
  });

  it('has a Prometheus data source variable', () => {
    const ds = dashboard.templating.list.find((v) => v.type === 'datasource');
    assert.ok(ds, 'a variable of type datasource');
    assert.equal(ds.name, 'datasource');
    assert.equal(ds.query, 'prometheus');
  });

  it('queries through the data source variable everywhere', () => {
    assert.ok(panels.length >= 10, `${panels.length} panels`);
    for (const p of panels) {
      assert.equal(p.datasource?.uid, DATASOURCE, `panel "${p.title}" data source`);
      assert.ok(p.targets?.length, `panel "${p.title}" has queries`);
      for (const t of p.targets ?? []) {
        assert.equal(t.datasource?.uid, DATASOURCE, `panel "${p.title}" query ${t.refId} data source`);
        assert.ok(t.expr?.trim(), `panel "${p.title}" query ${t.refId} has an expression`);
      }
    }
    for (const v of dashboard.templating.list.filter((x) => x.type === 'query')) {
      assert.equal(v.datasource?.uid, DATASOURCE, `variable ${v.name} data source`);
    }
  });

  it('takes rates over $__rate_interval', () => {
    for (const e of exprs) {
      for (const m of e.matchAll(/\b(?:rate|irate|increase)\s*\([^[]*\[([^\]]+)\]/g)) {
        assert.equal(m[1], '$__rate_interval', e);
      }
    }
  });

  it('has unique panel ids', () => {
    const ids = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('covers throughput, lag, latency, transactions, watermarks, late and dead letters, state, rebalances', () => {
    const used = new Set(exprs.flatMap(metricNames));
    for (const m of [
      'stream_records_consumed_total',
      'stream_records_produced_total',
      'stream_consumer_lag_records',
      'stream_end_to_end_latency_seconds_bucket',
      'stream_transaction_commit_duration_seconds_bucket',
      'stream_transactions_aborted_total',
      'stream_event_time_lag_seconds',
      'stream_late_records_total',
      'stream_dead_letters_total',
      'stream_state_keys',
      'stream_rebalances_total',
    ]) {
      assert.ok(used.has(m), `a panel shows ${m}`);
    }
    // Business panels: the pipelines' own metrics.
    assert.ok(exprs.some((e) => e.includes('stream_branch_total_amount')));
    assert.ok(exprs.some((e) => e.includes('stream_fraud_alerts_total')));
  });

  it('uses only metrics the service declares, as do the alert rules', () => {
    const source = [
      'src/runtime/metrics.ts',
      'src/app.module.ts',
      'src/pipelines/fraud-trigger/fraud-trigger.metrics.ts',
      'src/pipelines/branch-totals/branch-totals.metrics.ts',
    ]
      .map((f) => readFileSync(join(ROOT, f), 'utf8'))
      .join('\n');
    const declared = new Set([...source.matchAll(/name: '(stream_[a-z0-9_]+)'/g)].map((m) => m[1]));
    assert.ok(declared.size > 10, 'metric declarations found');
    for (const e of [...exprs, ...alertExprs]) {
      for (const name of metricNames(e).filter((n) => n.startsWith('stream_'))) {
        assert.ok(
          declared.has(baseName(name)),
          `${name} (in ${e.trim().split('\n')[0]}) is declared in src/`,
        );
      }
    }
  });
});
