import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { prefetchConfig } from '../../../src/runtime/kafka/client-config.js';

describe('the consumer prefetch', () => {
  it('fetches a quarter of the queue at a time, and a sixteenth of that per partition', () => {
    assert.deepEqual(prefetchConfig(8_388_608), {
      'queued.max.messages.kbytes': 8192,
      'fetch.max.bytes': 2_097_152,
      'max.partition.fetch.bytes': 131_072,
      'fetch.queue.backoff.ms': 100,
    });
  });

  it('keeps a fetch large enough for one record and the queue within librdkafka bounds', () => {
    const small = prefetchConfig(1000);
    assert.equal(small['queued.max.messages.kbytes'], 1);
    assert.equal(small['fetch.max.bytes'], 1_048_576);
    assert.equal(small['max.partition.fetch.bytes'], 65_536);
    assert.equal(prefetchConfig(4 * 2 ** 30)['queued.max.messages.kbytes'], 2_097_151);
  });
});
