import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failures, rng, runChaos, summarize, withKills } from './harness.js';

/**
 * semantics.md G1-G3 with real processes (the short version; `npm run test:chaos` runs the
 * full one): 2-3 member processes, SIGKILLs at random instants with restarts under the same
 * INSTANCE_ID, a member joining and one leaving with SIGTERM, and one SIGSTOPped until its
 * partitions have moved to another member, then SIGCONTed. Afterwards read_committed readers
 * and Redis must hold exactly what the failure-free run (the TopologyTestDriver) produces.
 * CHAOS_SEED replays a schedule and input; CHAOS_ECHO=1 prints the members' logs.
 */
describe('chaos (short): SIGKILL, SIGSTOP, joins and leaves', () => {
  it('ends with the outputs and Redis state of a failure-free run', async () => {
    const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const random = rng(seed + 1);
    const report = await runChaos({
      name: 'short',
      plan: { partitions: 4, keysPerPartition: 8, recordsPerPartition: 5000, invalidRatio: 0.01, seed },
      internalPartitions: 4,
      initialMembers: ['m1', 'm2'],
      steps: withKills(
        random,
        [
          { kind: 'join', member: 'm3' },
          { kind: 'kill-before-apply' },
          { kind: 'stop' },
          { kind: 'leave', member: 'm3' },
        ],
        4,
      ),
      gapMs: [1000, 5000],
      restartDelayMs: [200, 4000],
      produceMs: 40_000,
      redisLatencyMs: 20,
      settleTimeoutMs: 120_000,
      seed,
    });
    console.log(summarize(report));
    assert.deepEqual(failures(report), []);
    assert.ok(report.inputs.total >= 20_000, 'at least 20,000 input records');
    assert.ok(
      report.events.kills - report.events.killsBeforeApply >= 4,
      'at least 4 SIGKILLs at random instants',
    );
    assert.ok(
      report.events.killsBeforeApply >= 1,
      'a member was killed between a commit and its Redis write',
    );
    assert.ok(
      Object.values(report.members).some((m) => m.catchUps > 0),
      'a restore replayed the changelog gap that kill left',
    );
    assert.equal(report.events.stops, 1, 'one member was SIGSTOPped until its partitions moved');
    assert.ok(report.events.joins >= 1 && report.events.leaves >= 1, 'a member joined and one left');
  });
});
