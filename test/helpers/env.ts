import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the real broker and Redis are: scripts/test.sh exports these (or the user did). */
export function infra(): { brokers: string; redisUrl: string; clusterNodes: string | undefined } {
  const brokers = process.env.KAFKA_BROKERS;
  const redisUrl = process.env.REDIS_URL;
  if (!brokers || !redisUrl) {
    throw new Error(
      'KAFKA_BROKERS and REDIS_URL must be set: run the tests with `npm test`, which starts Kafka and Redis',
    );
  }
  return { brokers, redisUrl, clusterNodes: process.env.REDIS_CLUSTER_NODES };
}

/** A name no other test run uses: tests share one broker and one Redis. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/**
 * The repository's root, found above this file (it runs from build/ too). The tests under
 * test/unit/deploy keep their own copy: scripts/check-deploy.sh runs them from the TypeScript
 * source, where a relative import would not resolve.
 */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'helm/stream-template/Chart.yaml'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root not found above the test helpers');
    dir = up;
  }
  return dir;
}
