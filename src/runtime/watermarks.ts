/**
 * Watermarks with bounded out-of-orderness, per source partition, as Flink computes them:
 * after each record, the highest event time seen so far minus the bound. They are a function
 * of the position in the log only, never of batch boundaries or the wall clock, so a replay
 * decides exactly as the first run did (G5).
 */
export const NO_WATERMARK = Number.NEGATIVE_INFINITY;

export class SourceWatermark {
  private maxEventTime = Number.NEGATIVE_INFINITY;
  /** Raised by an idle-timeout decision; never lowered. */
  private floor = NO_WATERMARK;

  constructor(readonly outOfOrdernessMs: number) {}

  get current(): number {
    return Math.max(this.maxEventTime - this.outOfOrdernessMs, this.floor);
  }

  get maxTimestamp(): number {
    return this.maxEventTime;
  }

  /** Folds in one record; returns the watermark that held before it (what judges the record). */
  observe(eventTime: number): number {
    const before = this.current;
    if (eventTime > this.maxEventTime) this.maxEventTime = eventTime;
    return before;
  }

  /** An idle decision that has been written to Kafka: the watermark moves to at least `to`. */
  advanceTo(to: number): void {
    if (to > this.floor) this.floor = to;
  }

  snapshot(): [number, number] {
    return [this.maxEventTime, this.floor];
  }

  restore([maxEventTime, floor]: [number, number]): void {
    this.maxEventTime = maxEventTime;
    this.floor = floor;
  }
}

/**
 * A downstream task's view of its upstream partitions' watermarks, carried through the
 * repartition topic. Its watermark is the minimum over upstream partitions that are not
 * idle; a partition never heard from holds it back, as in Flink. When every upstream
 * partition is idle, the most advanced one leads.
 */
export class CombinedWatermark {
  private readonly upstream: number[];
  private readonly idle: boolean[];
  private combined = NO_WATERMARK;

  constructor(readonly upstreamPartitions: number) {
    this.upstream = new Array<number>(upstreamPartitions).fill(NO_WATERMARK);
    this.idle = new Array<boolean>(upstreamPartitions).fill(false);
  }

  get current(): number {
    return this.combined;
  }

  /** Folds in what one upstream partition reported; returns the combined watermark. Never goes back. */
  update(partition: number, watermark: number, idle: boolean): number {
    if (partition < 0 || partition >= this.upstreamPartitions) {
      throw new RangeError(`upstream partition ${partition} outside 0..${this.upstreamPartitions - 1}`);
    }
    if (watermark > this.upstream[partition]) this.upstream[partition] = watermark;
    this.idle[partition] = idle;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let p = 0; p < this.upstreamPartitions; p++) {
      if (!this.idle[p] && this.upstream[p] < min) min = this.upstream[p]!;
      if (this.upstream[p] > max) max = this.upstream[p]!;
    }
    // All idle: the idle advances (recorded in Kafka) are all that moves time, so the most
    // advanced one leads; otherwise the last windows of a quiet stream would never close.
    const next = min === Number.POSITIVE_INFINITY ? max : min;
    if (next > this.combined) this.combined = next;
    return this.combined;
  }

  snapshot(): { w: number[]; i: number[]; c: number } {
    return { w: [...this.upstream], i: this.idle.flatMap((b, p) => (b ? [p] : [])), c: this.combined };
  }

  restore(s: { w: number[]; i: number[]; c: number }): void {
    if (s.w.length !== this.upstreamPartitions) {
      throw new Error(
        `watermark snapshot has ${s.w.length} upstream partitions, topology has ${this.upstreamPartitions}`,
      );
    }
    s.w.forEach((w, p) => (this.upstream[p] = w));
    this.idle.fill(false);
    for (const p of s.i) this.idle[p] = true;
    this.combined = s.c;
  }
}
