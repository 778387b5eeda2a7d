/**
 * What the probes need to know about the processing loop, updated by the runtime as it
 * runs. Plain state with no Nest dependency so the runtime and its tests can use it alone.
 */
export class HealthState {
  private lastBeat = 0;
  private loopRunning = false;
  kafkaConnected = false;
  groupJoined = false;
  restoringTasks = 0;
  shuttingDown = false;
  /** Why processing is paused (broker or Redis unreachable, state lost), or undefined when it runs. */
  pausedReason: string | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  loopStarted(): void {
    this.loopRunning = true;
    this.lastBeat = this.now();
  }

  loopStopped(): void {
    this.loopRunning = false;
  }

  /** Called by the loop on every turn, including idle polls and outage retries. */
  heartbeat(): void {
    this.lastBeat = this.now();
  }

  /** Liveness: the loop, if started, has turned recently. A broker outage never fails it: restarts do not fix brokers. */
  liveness(stallAfterMs: number): { ok: boolean; sinceLastBeatMs: number | null } {
    if (!this.loopRunning) return { ok: true, sinceLastBeatMs: null };
    const since = this.now() - this.lastBeat;
    return { ok: since <= stallAfterMs, sinceLastBeatMs: since };
  }

  readinessProblems(): string[] {
    const problems: string[] = [];
    if (this.shuttingDown) problems.push('shutting down');
    if (!this.kafkaConnected) problems.push('kafka clients not connected');
    if (!this.groupJoined) problems.push('consumer group not joined');
    if (this.restoringTasks > 0) problems.push(`restoring state for ${this.restoringTasks} task(s)`);
    if (this.pausedReason) problems.push(`paused: ${this.pausedReason}`);
    return problems;
  }
}
