import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failures, runChaos, summarize } from './harness.js';

/**
 * semantics.md G4: Redis loses everything (FLUSHALL) while a member processes. The member
 * must notice, rebuild the state from the changelog, and re-emit nothing already committed:
 * the outputs and the Redis state afterwards equal the failure-free run's.
 * CHAOS_SEED replays an input and schedule; CHAOS_ECHO=1 prints the member's logs.
 */
describe('G4: Redis loses its data while a member processes', () => {
  const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const run = (
    name: string,
    o: {
      records: number;
      keysPerPartition: number;
      cacheEntries: number;
      flushes: number;
      produceMs: number;
      gapMs: [number, number];
    },
  ) =>
    runChaos({
      name,
      plan: {
        partitions: 4,
        keysPerPartition: o.keysPerPartition,
        recordsPerPartition: o.records / 4,
        invalidRatio: 0.01,
        seed,
      },
      internalPartitions: 4,
      initialMembers: ['m1'],
      steps: Array.from({ length: o.flushes }, () => ({ kind: 'flushall' as const })),
      gapMs: o.gapMs,
      restartDelayMs: [0, 0],
      produceMs: o.produceMs,
      settleTimeoutMs: 60_000,
      memberEnv: { CHAOS_CACHE_ENTRIES: String(o.cacheEntries) },
      seed,
    });

  it('rebuilds from the changelog; outputs and state equal the failure-free run', async () => {
    const report = await run('g4', {
      records: 10_000,
      keysPerPartition: 8,
      cacheEntries: 10_000,
      flushes: 2,
      produceMs: 20_000,
      gapMs: [4000, 8000],
    });
    console.log(summarize(report));
    assert.deepEqual(failures(report), []);
    assert.equal(report.events.flushes, 2);
    assert.ok(report.members.m1.rebuilds >= 1, 'the member rebuilt state from the changelog');
  });

  it('also when the write-back cache holds fewer keys than a task has (reads reach Redis)', async () => {
    // With 2 cached entries per store most keys are read from Redis on every batch, so a read
    // between the FLUSHALL and the next refused write meets an empty Redis.
    // The input is there at once, so the member works through a backlog: batch after batch,
    // each reading keys from Redis, while the FLUSHALLs land.
    const report = await run('g4-small-cache', {
      records: 40_000,
      keysPerPartition: 256,
      cacheEntries: 2,
      flushes: 4,
      produceMs: 1000,
      gapMs: [300, 1500],
    });
    console.log(summarize(report));
    assert.deepEqual(failures(report), []);
    assert.ok(report.members.m1.rebuilds >= 1, 'the member rebuilt state from the changelog');
  });
});
