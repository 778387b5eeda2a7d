/**
 * CPU time of the whole machine and of the broker and Redis, from Linux's /proc. A member's own
 * CPU time says what the runtime costs; these say what the box spends per record altogether,
 * which bounds what any one scenario can reach on it: the broker and Redis share its cores.
 */
import { readFileSync } from 'node:fs';

/** CPU seconds so far: the broker and Redis when their pids are known, and every core of the machine. */
export interface BoxCpu {
  broker: number | null;
  redis: number | null;
  box: number;
}

/** Pids of the broker and Redis that scripts/lib.sh start_missing_infra started: INFRA_KAFKA_PID, INFRA_REDIS_PID. */
export interface ServerPids {
  broker: number | null;
  redis: number | null;
}

/**
 * Clock ticks per second of /proc's counters: USER_HZ, which the kernel fixes at 100 for user
 * space on x86 and arm whatever its internal HZ (sysconf(_SC_CLK_TCK), which Node does not expose).
 */
const USER_HZ = 100;

/**
 * Busy ticks of all cores from the first line of /proc/stat: user, nice, system, irq and
 * softirq (guest time is already inside user). Idle, iowait and steal are not this box's work.
 */
export function busyTicks(procStat: string): number {
  const line = procStat.split('\n', 1)[0];
  const f = line.trim().split(/\s+/);
  if (f[0] !== 'cpu' || f.length < 8) throw new Error(`not the first line of /proc/stat: ${line}`);
  const [user, nice, system, , , irq, softirq] = f.slice(1, 8).map(Number);
  return user + nice + system + irq + softirq;
}

/**
 * utime + stime of /proc/<pid>/stat, in ticks. Its second field, the command, is in parentheses
 * and may hold spaces or parentheses itself, so the fields are counted from its last ')'.
 */
export function processTicks(pidStat: string): number {
  const rest = pidStat
    .slice(pidStat.lastIndexOf(')') + 2)
    .trim()
    .split(/\s+/);
  // After the command: state is field 3 of the whole line, utime field 14, stime field 15.
  const utime = Number(rest[14 - 3]);
  const stime = Number(rest[15 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('not a /proc/<pid>/stat line');
  return utime + stime;
}

function processSeconds(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    return processTicks(readFileSync(`/proc/${pid}/stat`, 'utf8')) / USER_HZ;
  } catch {
    return null;
  }
}

export function readBoxCpu(pids: ServerPids): BoxCpu {
  return {
    broker: processSeconds(pids.broker),
    redis: processSeconds(pids.redis),
    box: busyTicks(readFileSync('/proc/stat', 'utf8')) / USER_HZ,
  };
}

/** The CPU seconds between two readings; a server whose pid went away in between counts as unknown. */
export function cpuBetween(a: BoxCpu, b: BoxCpu): BoxCpu {
  const d = (x: number | null, y: number | null): number | null => (x === null || y === null ? null : y - x);
  return { broker: d(a.broker, b.broker), redis: d(a.redis, b.redis), box: b.box - a.box };
}

/** The pids from the environment; an unset, empty or malformed one is unknown (a broker not started here). */
export function serverPids(env: NodeJS.ProcessEnv = process.env): ServerPids {
  const pid = (v: string | undefined): number | null => {
    const n = Number(v);
    return v !== undefined && v !== '' && Number.isSafeInteger(n) && n > 0 ? n : null;
  };
  return { broker: pid(env.INFRA_KAFKA_PID), redis: pid(env.INFRA_REDIS_PID) };
}
