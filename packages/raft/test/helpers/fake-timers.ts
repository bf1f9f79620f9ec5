/**
 * Fake timers for RaftNode tests: time moves only when the test calls `advance`, and after every timer
 * that fires the microtask queue and the event loop's pending callbacks drain (a `setImmediate`), so the
 * nodes' Ready loops, in-memory storage and in-memory network settle between two instants.
 * @module
 */
import type { Timers } from '../../src/node/timers.js';

interface FakeTimer { at: number; every: number | null; fn: () => void }

/** Resolves after every queued microtask and the promise chains they start have run. */
export const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class FakeTimers implements Timers {
  /** The fake time, in ms. */
  time = 0;
  now = (): number => this.time;
  private seq = 0;
  private readonly timers = new Map<number, FakeTimer>();

  setTimeout = (fn: () => void, ms: number): number => this.add(fn, ms, null);
  setInterval = (fn: () => void, ms: number): number => this.add(fn, ms, Math.max(1, ms));
  clearTimeout = (handle: unknown): void => { this.timers.delete(handle as number); };
  clearInterval = (handle: unknown): void => { this.timers.delete(handle as number); };

  /** Timers still scheduled: after every node stopped, there must be none. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing due timers in order (ties in creation order). */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    for (;;) {
      let nextId = -1;
      let next: FakeTimer | undefined;
      for (const [id, t] of this.timers) {
        if (t.at <= target && (!next || t.at < next.at || (t.at === next.at && id < nextId))) { next = t; nextId = id; }
      }
      if (!next) break;
      this.time = next.at;
      if (next.every !== null) next.at += next.every;
      else this.timers.delete(nextId);
      next.fn();
      await flush();
    }
    this.time = target;
    await flush();
  }

  private add(fn: () => void, ms: number, every: number | null): number {
    const id = ++this.seq;
    this.timers.set(id, { at: this.time + Math.max(0, ms), every, fn });
    return id;
  }
}
