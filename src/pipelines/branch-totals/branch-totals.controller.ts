import { Controller, Get, Inject, NotFoundException, Param } from '@nestjs/common';
import { StateQueries } from '../../runtime/queries.js';
import { pipelineConfigToken } from '../pipeline.js';
import type { BranchTotalsConfig } from './branch-totals.config.js';
import type { BranchTotal } from './branch-totals.topology.js';

export interface BranchView {
  branch: string;
  pay_amount: number;
  pay_amount_exact: string;
  count: number;
}

export interface BranchDetail extends BranchView {
  /** Event-time windows still open (not yet fired): the most recent ones. Closed ones are on the windowed topic. */
  open_windows: Array<{
    window_start: string;
    window_end: string;
    pay_amount: number;
    pay_amount_exact: string;
    count: number;
  }>;
}

/** Running totals per branch, read from Redis by any replica. */
@Controller('branches')
export class BranchTotalsController {
  constructor(
    @Inject(StateQueries) private readonly queries: StateQueries,
    @Inject(pipelineConfigToken('branch-totals')) private readonly config: BranchTotalsConfig,
  ) {}

  @Get()
  async list(): Promise<{ branches: BranchView[] }> {
    const totals = await this.queries.all('branch-totals', 'branch-totals');
    return {
      branches: this.config.branches.map((branch) =>
        view(branch, totals.get(branch)?.value as BranchTotal | undefined),
      ),
    };
  }

  @Get(':branch')
  async one(@Param('branch') branch: string): Promise<BranchDetail> {
    if (!this.config.branches.includes(branch)) {
      throw new NotFoundException({
        error: 'not_found',
        message: `unknown branch ${JSON.stringify(branch)}; known: ${this.config.branches.join(', ')}`,
      });
    }
    const total = await this.queries.get('branch-totals', 'branch-totals', branch);
    const windows = await this.queries.get('branch-totals', 'branch-windows', branch);
    const open = (windows?.value ?? {}) as Record<string, BranchTotal>;
    return {
      ...view(branch, total?.value as BranchTotal | undefined),
      open_windows: Object.keys(open)
        .map(Number)
        .sort((a, b) => a - b)
        .map((start) => ({
          window_start: new Date(start).toISOString(),
          window_end: new Date(start + this.config.windowMs).toISOString(),
          pay_amount: Number(open[String(start)].sum),
          pay_amount_exact: open[String(start)].sum,
          count: open[String(start)].count,
        })),
    };
  }
}

function view(branch: string, t: BranchTotal | undefined): BranchView {
  return { branch, pay_amount: Number(t?.sum ?? '0'), pay_amount_exact: t?.sum ?? '0', count: t?.count ?? 0 };
}
