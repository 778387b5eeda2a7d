import type { JSONSchemaType } from 'ajv';
import { jsonDecoder } from '../../runtime/codecs.js';
import { TopologyBuilder, type TopologyPlan } from '../../runtime/topology.js';
import { tumbling } from '../../runtime/windows.js';
import type { BranchTotalsConfig } from './branch-totals.config.js';
import type { BranchTotalsMetrics } from './branch-totals.metrics.js';
import { addAmount } from './decimal.js';
import { localTimeToEpoch } from './local-time.js';

/** A payment, the seed generator's fields (semantics.md section 2). */
export interface Payment {
  createTime: string;
  orderId: number;
  payAmount: number;
  payPlatform: number;
  branchId: number;
}

const paymentSchema: JSONSchemaType<Payment> = {
  type: 'object',
  required: ['createTime', 'orderId', 'payAmount', 'payPlatform', 'branchId'],
  properties: {
    createTime: { type: 'string', minLength: 19, maxLength: 19 },
    orderId: { type: 'integer' },
    payAmount: { type: 'number', minimum: 0, maximum: 1e12 },
    payPlatform: { type: 'integer', enum: [0, 1] },
    branchId: { type: 'integer' },
  },
  additionalProperties: true,
};

export interface BranchTotal {
  /** Exact decimal sum (see decimal.ts). */
  sum: string;
  count: number;
}

/** The value upserted to branch-totals, key = branch. */
export interface BranchTotalRow {
  branch: string;
  pay_amount: number;
  /** Exact decimal sum; pay_amount is its nearest double. */
  pay_amount_exact: string;
  count: number;
}

export interface BranchWindowRow extends BranchTotalRow {
  window_start: string;
  window_end: string;
}

interface Keyed {
  branch: string;
  amount: number;
}

/**
 * Branch totals (seed: payment_msg_processing.py). branchId -> branch name; the running
 * total per branch is upserted to the compacted branch-totals topic (latest per branch once
 * per commit), and per-minute event-time totals go to branch-totals-windowed. Exact sums.
 */
export function branchTotalsTopology(c: BranchTotalsConfig, metrics?: BranchTotalsMetrics): TopologyPlan {
  const b = new TopologyBuilder('branch-totals');
  const byBranch = b
    .source<Payment>(c.inputTopic, {
      decode: jsonDecoder(paymentSchema),
      timestamp: (p) => localTimeToEpoch(p.createTime, c.timeZone),
      outOfOrdernessMs: c.outOfOrdernessMs,
      ...(c.idleTimeoutMs !== undefined ? { idleTimeoutMs: c.idleTimeoutMs } : {}),
    })
    .validate((p) => (c.branches[p.branchId] === undefined ? `unknown branchId ${p.branchId}` : undefined))
    .map((p): Keyed => ({ branch: c.branches[p.branchId], amount: p.payAmount }))
    .groupBy('by-branch', (p) => p.branch);

  const add = (t: BranchTotal, p: Keyed): BranchTotal => ({
    sum: addAmount(t.sum, p.amount),
    count: t.count + 1,
  });
  const init = (): BranchTotal => ({ sum: '0', count: 0 });

  byBranch.aggregate<BranchTotal>('branch-totals', { init, add }).toTopic(
    c.totalsTopic,
    (branch, t): BranchTotalRow => ({
      branch,
      pay_amount: Number(t.sum),
      pay_amount_exact: t.sum,
      count: t.count,
    }),
    (branch, row) => {
      metrics?.total.set({ branch }, row.pay_amount);
      metrics?.payments.set({ branch }, row.count);
    },
  );

  byBranch
    .windowedBy(tumbling(c.windowMs))
    .aggregate<BranchTotal>('branch-windows', { init, add })
    .emitOnClose(
      c.windowedTopic,
      (branch, w, t): BranchWindowRow => ({
        branch,
        window_start: new Date(w.start).toISOString(),
        window_end: new Date(w.end).toISOString(),
        pay_amount: Number(t.sum),
        pay_amount_exact: t.sum,
        count: t.count,
      }),
      (branch, row) => {
        metrics?.windowAmount.set({ branch }, row.pay_amount);
        metrics?.windows.inc({ branch });
      },
    );
  return b.build();
}
