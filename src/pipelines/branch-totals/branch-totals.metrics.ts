import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * The seed's Kibana view, in Prometheus. A branch's running total is set by the member that
 * owns its task; after a partition moves the old member's value goes stale but never exceeds
 * the truth, so dashboards take `max by (branch)`.
 */
export interface BranchTotalsMetrics {
  total: Gauge<'branch'>;
  payments: Gauge<'branch'>;
  windowAmount: Gauge<'branch'>;
  windows: Counter<'branch'>;
}

export function branchTotalsMetrics(registry: Registry): BranchTotalsMetrics {
  const registers = [registry];
  return {
    total: new Gauge({
      name: 'stream_branch_total_amount',
      help: 'Running total of payments per branch (committed).',
      labelNames: ['branch'],
      registers,
    }),
    payments: new Gauge({
      name: 'stream_branch_payments',
      help: 'Payments counted in the running total per branch (committed).',
      labelNames: ['branch'],
      registers,
    }),
    windowAmount: new Gauge({
      name: 'stream_branch_window_amount',
      help: 'Total of the last closed event-time window per branch.',
      labelNames: ['branch'],
      registers,
    }),
    windows: new Counter({
      name: 'stream_branch_windows_total',
      help: 'Closed event-time windows emitted per branch.',
      labelNames: ['branch'],
      registers,
    }),
  };
}
