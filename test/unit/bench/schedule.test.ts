import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { throughputSchedule } from '../../../bench/harness.js';

describe('throughput schedule', () => {
  it('runs each chosen scenario once per round, the floors group before the topology-io group', () => {
    const plan = throughputSchedule(
      ['topology-io-eos', 'fraud-eos', 'passthrough', 'engine', 'topology-io-alos'],
      3,
    );
    assert.deepEqual(
      plan.map((g) => g.rounds),
      [
        [
          ['passthrough', 'fraud-eos'],
          ['passthrough', 'fraud-eos'],
          ['passthrough', 'fraud-eos'],
        ],
        [
          ['topology-io-eos', 'topology-io-alos'],
          ['topology-io-eos', 'topology-io-alos'],
          ['topology-io-eos', 'topology-io-alos'],
        ],
      ],
    );
    assert.deepEqual(
      plan[0].scenarios.map((t) => [t.scenario, t.pipeline, t.guarantee, t.kind]),
      [
        ['passthrough', 'passthrough', 'at_least_once', 'fraud'],
        ['fraud-eos', 'fraud-trigger', 'exactly_once', 'fraud'],
      ],
    );
  });

  it('leaves out a group none of whose scenarios was chosen', () => {
    const plan = throughputSchedule(['branch-eos', 'latency'], 2);
    assert.deepEqual(
      plan.map((g) => g.rounds),
      [[['branch-eos'], ['branch-eos']]],
    );
    assert.deepEqual(throughputSchedule(['engine', 'scale'], 3), []);
  });
});
