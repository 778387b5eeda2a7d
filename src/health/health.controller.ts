import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { HealthState } from './health-state.js';
import { RedisProbe } from './redis-probe.js';

/** A loop that has not turned for this long is stuck: well under max.poll.interval.ms, so Kubernetes restarts it first. */
export const LIVENESS_STALL_MS = 60_000;

@Controller('health')
export class HealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(HealthIndicatorService) private readonly indicators: HealthIndicatorService,
    @Inject(HealthState) private readonly state: HealthState,
    @Inject(RedisProbe) private readonly redis: RedisProbe,
  ) {}

  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([
      () => {
        const loop = this.indicators.check('loop');
        const { ok, sinceLastBeatMs } = this.state.liveness(LIVENESS_STALL_MS);
        return ok
          ? loop.up({ sinceLastBeatMs })
          : loop.down({ sinceLastBeatMs, stallAfterMs: LIVENESS_STALL_MS });
      },
    ]);
  }

  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([
      () => {
        const stream = this.indicators.check('stream');
        const problems = this.state.readinessProblems();
        return problems.length === 0 ? stream.up() : stream.down({ problems });
      },
      () =>
        this.indicators
          .check('redis')
          .attempt(() => this.redis.ping())
          .withTimeout(2000),
    ]);
  }
}
