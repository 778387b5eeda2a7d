import { readFileSync } from 'node:fs';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisClient } from './redis-backend.js';

export interface RedisConnection {
  url: string;
  clusterNodes?: string[];
  password?: string;
  tlsCaFile?: string;
}

/**
 * Commands fail fast while Redis is away (no offline queue, one retry, a timeout) so the
 * loop notices, pauses and reports not-ready, instead of hanging on a queue that grows.
 */
export function createRedisClient(c: RedisConnection): RedisClient {
  const url = new URL(c.url);
  const tls =
    url.protocol === 'rediss:' ? { ...(c.tlsCaFile ? { ca: readFileSync(c.tlsCaFile) } : {}) } : undefined;
  const common: RedisOptions = {
    maxRetriesPerRequest: 1,
    commandTimeout: 5000,
    connectTimeout: 5000,
    lazyConnect: true,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    ...(c.password
      ? { password: c.password }
      : url.password
        ? { password: decodeURIComponent(url.password) }
        : {}),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(tls ? { tls } : {}),
  };
  if (c.clusterNodes && c.clusterNodes.length > 0) {
    return new Cluster(
      c.clusterNodes.map((n) => {
        const [host, port] = n.split(':');
        return { host: host, port: Number(port) };
      }),
      { redisOptions: common, enableOfflineQueue: true, lazyConnect: true, slotsRefreshTimeout: 5000 },
    );
  }
  return new Redis({
    ...common,
    host: url.hostname,
    port: Number(url.port || 6379),
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    enableOfflineQueue: false,
  });
}

/** Connects, waiting for Redis if it is not up yet (the service starts before its dependencies in compose). */
export async function connectRedis(client: RedisClient, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // The connection's own errors (WRONGPASS, ECONNREFUSED) say more than the command that fails after them.
  let lastError: Error | undefined;
  const onError = (err: Error) => {
    lastError = err;
  };
  client.on('error', onError);
  try {
    for (;;) {
      try {
        if (client.status === 'wait' || client.status === 'end') await client.connect();
        await client.ping();
        return;
      } catch (err) {
        if (Date.now() > deadline) {
          const why = lastError?.message ?? (err instanceof Error ? err.message : String(err));
          throw new Error(`Redis did not answer within ${timeoutMs} ms: ${why}`, { cause: err });
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    client.off('error', onError);
  }
}
