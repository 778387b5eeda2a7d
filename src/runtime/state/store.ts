/**
 * State of one task (one partition of a keyed stage), per store. Entries are whole values,
 * never increments, so applying the same write twice is harmless (semantics.md pitfall 4).
 */
export interface StoredEntry {
  value: unknown;
  /** Windowed stores: the watermark at which this key's earliest open window fires. */
  due?: number;
  /**
   * Windowed stores, in memory only (never encoded): the start of every window in `value`,
   * ascending, so firing takes the closed ones off the front instead of scanning them all.
   * Derived from `value` when absent.
   */
  starts?: number[];
}

/** JSON of `{ v: value, d: due }` (without `d` when there is none), written without the wrapper object. */
export function encodeEntry(entry: StoredEntry): string {
  const v = JSON.stringify(entry.value) as string | undefined;
  const d = entry.due;
  // No JSON for the value (undefined, a function): the member is left out, as JSON.stringify does.
  if (v === undefined) return JSON.stringify(d === undefined ? {} : { d });
  if (d === undefined) return `{"v":${v}}`;
  return `{"v":${v},"d":${Number.isFinite(d) ? d : 'null'}}`;
}

export function decodeEntry(text: string): StoredEntry {
  const parsed = JSON.parse(text) as { v: unknown; d?: number };
  return parsed.d === undefined ? { value: parsed.v } : { value: parsed.v, due: parsed.d };
}

/** The committed changes of one task, applied to the backend after the Kafka transaction commits. */
export interface TaskDelta {
  /** Next input offset the state reflects. */
  inputOffset: number;
  stores: Array<{
    store: string;
    /** Next changelog offset after this transaction's records for the store. */
    changelogOffset: number;
    puts: Array<[key: string, encoded: string, due: number | undefined]>;
    deletes: string[];
  }>;
}

export interface TaskMeta {
  /** Undefined when the task has no state in the backend: never written, or lost (FLUSHALL, restart without persistence). */
  inputOffset: number | undefined;
  changelogOffsets: Record<string, number>;
  epoch: number;
}

export type ApplyOutcome = 'ok' | 'fenced' | 'lost';

/** The backend could not be reached for a read (Redis down, timed out, loading): retry later. */
export class StateUnavailableError extends Error {
  constructor(task: string, cause: unknown) {
    super(`state read of ${task} failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = 'StateUnavailableError';
  }
}

export const isStateError = (err: unknown): err is StateRefusedError | StateUnavailableError =>
  err instanceof StateRefusedError || err instanceof StateUnavailableError;

/**
 * A read refused by the backend: another member owns the task now (`fenced`), or the backend
 * lost the task's state (`lost`). Whatever the transaction computed from it must not commit.
 */
export class StateRefusedError extends Error {
  constructor(
    readonly outcome: 'fenced' | 'lost',
    readonly task: string,
  ) {
    super(`state read of ${task} refused: ${outcome}`);
    this.name = 'StateRefusedError';
  }
}

/** Storage for one task's stores. Every write is fenced by the ownership claim (G3). */
export interface TaskBackend {
  /** Takes ownership: later writes by earlier owners are refused. Clears partial state if the task has none. */
  claim(): Promise<TaskMeta>;
  /** Reads throw StateRefusedError once the task is fenced or its state is lost. */
  load(store: string, keys: readonly string[]): Promise<Array<string | null>>;
  /**
   * Keys whose entry fires at or before this watermark (may include some that no longer do),
   * and the smallest `due` above it (+Infinity if none): one round trip, as firing needs both.
   */
  dueKeys(store: string, watermark: number): Promise<{ keys: string[]; next: number }>;
  /** The smallest `due` above the watermark, or +Infinity. */
  nextDue(store: string, watermark: number): Promise<number>;
  /**
   * Every entry of a store, each once, in chunks: counting open windows after a restore.
   * Only called while the task owns the state and writes nothing.
   */
  entries(store: string): AsyncIterable<Array<[key: string, encoded: string]>>;
  /** `init` writes are allowed while the task has no inputOffset (rebuild after loss); the final one sets it. */
  apply(delta: TaskDelta, mode: 'apply' | 'init'): Promise<ApplyOutcome>;
}

interface CacheSlot {
  entry: StoredEntry | null;
  dirty: boolean;
}

/**
 * In-process write-back cache of one store of one task: the hot path reads and writes here,
 * and Redis sees only the committed result, once per transaction. Clean entries are evicted
 * least-recently-used past `maxEntries`; dirty ones stay until applied.
 */
export class StoreCache {
  private readonly slots = new Map<string, CacheSlot>();
  /**
   * The dirty slots' keys, in the order they turned dirty: each commit walks what changed, not
   * the whole cache (iterating a Map of 10,000 clean slots per store and commit allocated an
   * entry pair per slot, an eighth of fraud-trigger's garbage).
   */
  private readonly dirtyKeys = new Set<string>();
  /**
   * Whether every entry the backend holds for this store is in the cache: then the cache alone
   * knows which keys are due, and firing needs no round trip. Learnt from a full scan (adopt);
   * forgotten when a stored entry is evicted, an abort drops what the backend still has, or on clear.
   */
  private whole = false;

  constructor(
    readonly store: string,
    private readonly backend: TaskBackend,
    readonly maxEntries: number,
  ) {}

  get complete(): boolean {
    return this.whole;
  }

  /**
   * After a full scan of the backend's entries, while it holds exactly the committed state: takes
   * them in if they fit beside what is cached, and then holds every key. `undefined`: too many.
   */
  adopt(entries: ReadonlyArray<[string, StoredEntry]> | undefined): void {
    this.whole = false;
    if (entries === undefined) return;
    let added = 0;
    for (const [k] of entries) if (!this.slots.has(k)) added++;
    if (this.slots.size + added > this.maxEntries) return;
    for (const [k, entry] of entries) if (!this.slots.has(k)) this.slots.set(k, { entry, dirty: false });
    this.whole = true;
  }

  get size(): number {
    return this.slots.size;
  }

  get dirtySize(): number {
    return this.dirtyKeys.size;
  }

  async prefetch(keys: Iterable<string>): Promise<void> {
    const missing: string[] = [];
    for (const k of keys) if (!this.slots.has(k)) missing.push(k);
    if (missing.length === 0) return;
    const loaded = await this.backend.load(this.store, missing);
    missing.forEach((k, i) => {
      // A concurrent prefetch may have filled it, and a dirty slot must win over the stored value.
      if (!this.slots.has(k)) {
        const text = loaded[i];
        this.slots.set(k, { entry: text == null ? null : decodeEntry(text), dirty: false });
      }
    });
  }

  /** Prefetch first: a miss here is a runtime bug, not a cache miss. */
  get(key: string): StoredEntry | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined)
      throw new Error(`state for key ${JSON.stringify(key)} of store ${this.store} was not prefetched`);
    // Refresh recency for eviction.
    this.slots.delete(key);
    this.slots.set(key, slot);
    return slot.entry ?? undefined;
  }

  put(key: string, entry: StoredEntry): void {
    this.write(key, entry);
  }

  delete(key: string): void {
    this.write(key, null);
  }

  private write(key: string, entry: StoredEntry | null): void {
    this.dirtyKeys.add(key);
    const slot = this.slots.get(key);
    if (slot === undefined) {
      this.slots.set(key, { entry, dirty: true });
      return;
    }
    // In place, and not moved: every write follows a get of the same key, which made it the most recent.
    slot.entry = entry;
    slot.dirty = true;
  }

  /** Each changed key with its entry (null: deleted), in the order they changed. A callback: no pair per entry. */
  forEachDirty(fn: (key: string, entry: StoredEntry | null) => void): void {
    for (const k of this.dirtyKeys) fn(k, this.slots.get(k)!.entry);
  }

  /**
   * Keys whose entry fires at or before the watermark: the dirty ones, which the backend's index
   * does not have yet, or every cached one while the cache is complete.
   */
  dueKeys(watermark: number): string[] {
    const out: string[] = [];
    for (const k of this.considered()) {
      const due = this.slots.get(k)!.entry?.due;
      if (due !== undefined && due <= watermark) out.push(k);
    }
    return out;
  }

  /** The smallest due above the watermark, over the same entries as dueKeys. */
  minDueAbove(watermark: number): number {
    let min = Number.POSITIVE_INFINITY;
    for (const k of this.considered()) {
      const d = this.slots.get(k)!.entry?.due;
      if (d !== undefined && d > watermark && d < min) min = d;
    }
    return min;
  }

  /** The keys the backend's due index does not answer for: the dirty ones, or all while the cache is complete. */
  private considered(): Iterable<string> {
    return this.whole ? this.slots.keys() : this.dirtyKeys;
  }

  /** After the backend applied the transaction: everything is clean, and the cache shrinks back to its bound. */
  markApplied(): void {
    for (const k of this.dirtyKeys) this.slots.get(k)!.dirty = false;
    this.dirtyKeys.clear();
    this.evict();
  }

  /** After an aborted transaction: forget what it changed; the backend still holds the committed values. */
  discardDirty(): void {
    for (const k of this.dirtyKeys) this.slots.delete(k);
    this.dirtyKeys.clear();
    this.whole = false;
  }

  clear(): void {
    this.slots.clear();
    this.dirtyKeys.clear();
    this.whole = false;
  }

  private evict(): void {
    let excess = this.slots.size - this.maxEntries;
    if (excess <= 0) return;
    for (const [k, s] of this.slots) {
      if (excess <= 0) break;
      if (!s.dirty) {
        this.slots.delete(k);
        if (s.entry !== null) this.whole = false;
        excess--;
      }
    }
  }
}
