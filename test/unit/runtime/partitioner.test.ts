import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { murmur2, partitionForKey } from '../../../src/runtime/kafka/partitioner.js';

// Expected values printed by org.apache.kafka.common.utils.Utils.murmur2 (kafka-clients 4.1.1).
const JAVA: Array<[string, number, number]> = [
  ['21', -973932308, 0],
  ['foobar', -790332482, 0],
  ['a-little-bit-long-string', -985981536, 2],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971, 5],
  ['abc', 479470107, 3],
  ['Ärger', -1067146653, 5],
  ['customer-7', -1283830537, 1],
];

describe('partitioner', () => {
  it('matches the Java client murmur2 byte for byte', () => {
    for (const [key, hash] of JAVA) assert.equal(murmur2(Buffer.from(key, 'utf8')), hash, key);
  });

  it('places keys where the Java default partitioner would (6 partitions)', () => {
    for (const [key, , partition] of JAVA) assert.equal(partitionForKey(key, 6), partition, key);
  });

  it('hashes only the key, whatever was hashed before it and however long it is', () => {
    const long = 'ü'.repeat(300); // past the buffer kept for short keys
    const sequence = ['a-little-bit-long-string', 'abc', long, '21', 'Ärger', long.slice(0, 255)];
    for (const key of sequence)
      assert.equal(
        partitionForKey(key, 7),
        (murmur2(Buffer.from(key, 'utf8')) & 0x7fffffff) % 7,
        key.slice(0, 30),
      );
  });
});
