import { Controller, Get, Inject, NotFoundException, Param } from '@nestjs/common';
import { StateQueries } from '../../runtime/queries.js';
import { pipelineConfigToken } from '../pipeline.js';
import type { FraudTriggerConfig } from './fraud-trigger.config.js';
import type { CustomerWindow } from './fraud-trigger.topology.js';

export interface CustomerWindowView {
  window_start: string;
  window_end: string;
  count_transactions: number;
  total_online_payment_amount: number;
  total_in_store_payment_amount: number;
  lat: number;
  lon: number;
}

/** Open (not yet fired) fraud windows of a customer, read from Redis by any replica. */
@Controller('customers')
export class FraudTriggerController {
  constructor(
    @Inject(StateQueries) private readonly queries: StateQueries,
    @Inject(pipelineConfigToken('fraud-trigger')) private readonly config: FraudTriggerConfig,
  ) {}

  @Get(':customer/windows')
  async windows(
    @Param('customer') customer: string,
  ): Promise<{ customer: string; windows: CustomerWindowView[] }> {
    const entry = await this.queries.get('fraud-trigger', 'customer-windows', customer);
    const windows = (entry?.value ?? {}) as Record<string, CustomerWindow>;
    const starts = Object.keys(windows)
      .map(Number)
      .sort((a, b) => a - b);
    if (starts.length === 0) {
      throw new NotFoundException({
        error: 'not_found',
        message: `customer ${JSON.stringify(customer)} has no open window (unknown, or every window has fired)`,
      });
    }
    return {
      customer,
      windows: starts.map((start) => {
        const w = windows[String(start)];
        return {
          window_start: new Date(start).toISOString(),
          window_end: new Date(start + this.config.windowMs).toISOString(),
          count_transactions: w.count,
          total_online_payment_amount: w.online,
          total_in_store_payment_amount: w.inStore,
          lat: w.lat,
          lon: w.lon,
        };
      }),
    };
  }
}
