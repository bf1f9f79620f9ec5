/**
 * A priority queue of events in virtual milliseconds: a binary min-heap ordered by time, ties broken by
 * insertion order so that events scheduled for the same millisecond run first-in, first-out.
 * @module
 */

/** An event in the queue: `seq` is its insertion number, unique for the queue's lifetime. */
export interface Scheduled<T> {
  readonly at: number;
  readonly seq: number;
  readonly item: T;
}

function before<T>(x: Scheduled<T>, y: Scheduled<T>): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}

/** A min-heap of scheduled items. */
export class EventQueue<T> {
  private readonly heap: Scheduled<T>[] = [];
  private seq = 0;

  /** Number of events waiting. */
  get size(): number {
    return this.heap.length;
  }

  /** Schedules `item` at virtual time `at` and returns its sequence number. */
  push(at: number, item: T): number {
    const ev: Scheduled<T> = { at, seq: this.seq++, item };
    const h = this.heap;
    let k = h.length;
    h.push(ev);
    while (k > 0) {
      const parent = (k - 1) >> 1;
      if (!before(ev, h[parent])) break;
      h[k] = h[parent];
      k = parent;
    }
    h[k] = ev;
    return ev.seq;
  }

  /** The earliest event, without removing it. */
  peek(): Scheduled<T> | undefined {
    return this.heap[0];
  }

  /** Removes and returns the earliest event. */
  pop(): Scheduled<T> | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let k = 0;
    for (;;) {
      const l = 2 * k + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const child = r < h.length && before(h[r], h[l]) ? r : l;
      if (!before(h[child], last)) break;
      h[k] = h[child];
      k = child;
    }
    h[k] = last;
    return top;
  }
}
