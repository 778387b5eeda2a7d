import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failures, runChaos, summarize } from './harness.js';

/**
 * Outages under load (`npm run test:chaos`): the test Redis stopped for 30 s and restarted
 * with its data, then restarted empty, then the broker stopped for 30 s, while two members
 * process a steady input. During each outage readiness must be false; afterwards processing
 * resumes by itself, and the outputs and the Redis state equal the failure-free run's.
 * Needs the Kafka and Redis that scripts/chaos.sh started (it sets CHAOS_INFRA=1), since it
 * stops and starts them.
 */
describe(
  'outages under load: Redis down, Redis empty, broker down',
  {
    skip:
      process.env.CHAOS_FULL === '1' && process.env.CHAOS_INFRA === '1'
        ? false
        : 'run by `npm run test:chaos` with the Kafka and Redis it starts itself',
  },
  () => {
    it('pauses, reports not ready, resumes by itself, and loses or repeats nothing', async () => {
      const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
      const report = await runChaos({
        name: 'outages',
        plan: { partitions: 4, keysPerPartition: 16, recordsPerPartition: 15_000, invalidRatio: 0.01, seed },
        internalPartitions: 4,
        initialMembers: ['m1', 'm2'],
        steps: [
          { kind: 'redis-down', ms: 30_000, empty: false },
          { kind: 'redis-down', ms: 1000, empty: true },
          { kind: 'broker-down', ms: 30_000 },
        ],
        gapMs: [5000, 10_000],
        restartDelayMs: [0, 0],
        produceMs: 120_000,
        produceTickMs: 500,
        settleTimeoutMs: 300_000,
        seed,
      });
      console.log(summarize(report));
      assert.deepEqual(failures(report), []);
      assert.equal(report.outages.length, 3);
      for (const o of report.outages) console.log(`time to resume after "${o.what}": ${o.resumeMs} ms`);
    });
  },
);
