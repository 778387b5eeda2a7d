import type { ApplyOutcome, TaskBackend, TaskDelta, TaskMeta } from './store.js';

interface MemoryTaskState {
  owner: number;
  epoch: number;
  inputOffset: number | undefined;
  changelogOffsets: Record<string, number>;
  kv: Map<string, Map<string, string>>;
  due: Map<string, DueIndex>;
}

/**
 * A store's keys by the watermark at which they fire, as the Redis backend's sorted set keeps
 * them: due keys and the next due are found without reading every key, which a test driver or a
 * benchmark over many keys would otherwise do at each firing.
 */
class DueIndex {
  private readonly byKey = new Map<string, number>();
  private readonly byDue = new Map<number, Set<string>>();

  set(key: string, due: number): void {
    this.delete(key);
    this.byKey.set(key, due);
    let keys = this.byDue.get(due);
    if (!keys) this.byDue.set(due, (keys = new Set()));
    keys.add(key);
  }

  delete(key: string): void {
    const due = this.byKey.get(key);
    if (due === undefined) return;
    this.byKey.delete(key);
    const keys = this.byDue.get(due)!;
    keys.delete(key);
    if (keys.size === 0) this.byDue.delete(due);
  }

  dueAt(watermark: number): string[] {
    const out: string[] = [];
    for (const [due, keys] of this.byDue) if (due <= watermark) for (const k of keys) out.push(k);
    return out;
  }

  /** A copy, for tests that put a task's state back as it was at an earlier commit. */
  clone(): DueIndex {
    const c = new DueIndex();
    for (const [key, due] of this.byKey) c.set(key, due);
    return c;
  }

  nextAbove(watermark: number): number {
    let min = Number.POSITIVE_INFINITY;
    for (const due of this.byDue.keys()) if (due > watermark && due < min) min = due;
    return min;
  }
}

/**
 * The same contract as the Redis backend, in memory: used by the test driver, and by unit
 * tests of fencing, where a "zombie" is simply a second backend handle to the same task.
 */
export class MemoryStateStore {
  private readonly tasks = new Map<string, MemoryTaskState>();
  private nextOwner = 1;

  task(taskId: string): TaskBackend {
    return new MemoryTaskBackend(this, taskId, this.nextOwner++);
  }

  /** Simulates FLUSHALL. */
  flushAll(): void {
    this.tasks.clear();
  }

  /** @internal */
  state(taskId: string, create: boolean): MemoryTaskState | undefined {
    let s = this.tasks.get(taskId);
    if (!s && create) {
      s = { owner: 0, epoch: 0, inputOffset: undefined, changelogOffsets: {}, kv: new Map(), due: new Map() };
      this.tasks.set(taskId, s);
    }
    return s;
  }

  /** Every stored entry of a task, for assertions: store -> key -> encoded entry. */
  dump(taskId: string): Record<string, Record<string, string>> {
    const s = this.tasks.get(taskId);
    if (!s) return {};
    return Object.fromEntries([...s.kv].map(([store, m]) => [store, Object.fromEntries(m)]));
  }

  taskIds(): string[] {
    return [...this.tasks.keys()];
  }
}

class MemoryTaskBackend implements TaskBackend {
  constructor(
    private readonly store: MemoryStateStore,
    private readonly taskId: string,
    private readonly token: number,
  ) {}

  claim(): Promise<TaskMeta> {
    const s = this.store.state(this.taskId, true)!;
    s.owner = this.token;
    s.epoch++;
    if (s.inputOffset === undefined) {
      s.kv.clear();
      s.due.clear();
      s.changelogOffsets = {};
    }
    return Promise.resolve({
      inputOffset: s.inputOffset,
      changelogOffsets: { ...s.changelogOffsets },
      epoch: s.epoch,
    });
  }

  load(store: string, keys: readonly string[]): Promise<Array<string | null>> {
    const m = this.store.state(this.taskId, false)?.kv.get(store);
    return Promise.resolve(keys.map((k) => m?.get(k) ?? null));
  }

  async dueKeys(store: string, watermark: number): Promise<{ keys: string[]; next: number }> {
    const keys = this.store.state(this.taskId, false)?.due.get(store)?.dueAt(watermark) ?? [];
    return { keys, next: await this.nextDue(store, watermark) };
  }

  nextDue(store: string, watermark: number): Promise<number> {
    const due = this.store.state(this.taskId, false)?.due.get(store);
    return Promise.resolve(due?.nextAbove(watermark) ?? Number.POSITIVE_INFINITY);
  }

  /** Everything is at hand here: a single chunk, taken at the call. */
  entries(store: string): AsyncIterable<Array<[string, string]>> {
    const m = this.store.state(this.taskId, false)?.kv.get(store);
    const chunks: Array<Array<[string, string]>> = m && m.size > 0 ? [[...m]] : [];
    return {
      [Symbol.asyncIterator]: () => {
        let i = 0;
        return {
          next: () =>
            Promise.resolve(
              i < chunks.length
                ? { value: chunks[i++], done: false as const }
                : { value: undefined, done: true as const },
            ),
        };
      },
    };
  }

  apply(delta: TaskDelta, mode: 'apply' | 'init'): Promise<ApplyOutcome> {
    const s = this.store.state(this.taskId, false);
    if (!s) return Promise.resolve('lost');
    if (s.owner !== this.token) return Promise.resolve('fenced');
    if (mode === 'apply' && s.inputOffset === undefined) return Promise.resolve('lost');
    for (const st of delta.stores) {
      const kv = s.kv.get(st.store) ?? new Map<string, string>();
      const due = s.due.get(st.store) ?? new DueIndex();
      s.kv.set(st.store, kv);
      s.due.set(st.store, due);
      for (const [k, v, d] of st.puts) {
        kv.set(k, v);
        if (d === undefined) due.delete(k);
        else due.set(k, d);
      }
      for (const k of st.deletes) {
        kv.delete(k);
        due.delete(k);
      }
      s.changelogOffsets[st.store] = st.changelogOffset;
    }
    if (mode === 'apply' || delta.inputOffset >= 0) s.inputOffset = delta.inputOffset;
    return Promise.resolve('ok');
  }
}
