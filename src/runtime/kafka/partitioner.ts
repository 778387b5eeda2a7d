/**
 * Kafka's Java default partitioner (murmur2 of the key bytes, positive, modulo the partition
 * count). librdkafka defaults to CRC32, so the runtime picks repartition partitions itself:
 * that way Java clients, Kafka Streams and our query endpoints all agree on where a key lives.
 */
export function partitionForKey(key: string | Buffer, partitions: number): number {
  if (typeof key !== 'string') return (murmur2(key) & 0x7fffffff) % partitions;
  // Once per event on the hop: a key that fits is encoded into one buffer kept for it, not a new one.
  if (key.length * 3 <= scratch.length) {
    const length = scratch.write(key, 0, 'utf8');
    return (murmur2(scratch, length) & 0x7fffffff) % partitions;
  }
  return (murmur2(Buffer.from(key, 'utf8')) & 0x7fffffff) % partitions;
}

const scratch = Buffer.alloc(768);

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils#murmur2), in 32-bit integer arithmetic, over the first `length` bytes. */
export function murmur2(data: Buffer, length = data.length): number {
  const seed = 0x9747b28c;
  const m = 0x5bd1e995;
  const r = 24;
  let h = (seed ^ length) | 0;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k =
      (data[i4] & 0xff) |
      ((data[i4 + 1] & 0xff) << 8) |
      ((data[i4 + 2] & 0xff) << 16) |
      ((data[i4 + 3] & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const tail = length & ~3;
  const rest = length % 4;
  if (rest === 3) h ^= (data[tail + 2] & 0xff) << 16;
  if (rest >= 2) h ^= (data[tail + 1] & 0xff) << 8;
  if (rest >= 1) {
    h ^= data[tail] & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}
