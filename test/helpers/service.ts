import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { infra } from './env.js';

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

export interface ServiceProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  logs(): string;
  /** Resolves when /health/ready answers 200. */
  ready(timeoutMs?: number): Promise<void>;
  /** SIGTERM, then the exit code (or the signal name). */
  stop(timeoutMs?: number): Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  exited: Promise<number | string>;
}

let nextPort = 18_100 + (process.pid % 500) * 2;

/** Starts the built service (build/src/main.js) as a real process against the test broker and Redis. */
export function startService(env: Record<string, string>): ServiceProcess {
  const port = Number(env.HTTP_PORT ?? nextPort++);
  const { brokers, redisUrl } = infra();
  const child = spawn(process.execPath, ['--enable-source-maps', MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      KAFKA_BROKERS: brokers,
      REDIS_URL: redisUrl,
      HTTP_PORT: String(port),
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = once(child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    child,
    logs: () => output,
    exited,
    async ready(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`service exited with ${child.exitCode}:\n${output}`);
        try {
          const res = await fetch(`${url}/health/ready`);
          if (res.status === 200) return;
          last = await res.text();
        } catch (err) {
          last = String(err);
        }
        await sleep(200);
      }
      throw new Error(`service not ready after ${timeoutMs} ms: ${last}\n${output.slice(-4000)}`);
    },
    async stop(timeoutMs = 30_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = sleep(timeoutMs).then(() => 'timeout' as const);
      const r = await Promise.race([exited, t]);
      if (r === 'timeout') {
        child.kill('SIGKILL');
        throw new Error(`service did not stop within ${timeoutMs} ms`);
      }
      return r;
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      child.kill(signal);
      if (signal === 'SIGKILL') await exited;
    },
  };
}
