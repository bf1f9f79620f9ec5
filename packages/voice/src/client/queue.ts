/**
 * The bounded queue between two pipeline stages (the seed's buffered channels): a producer never waits, and
 * when the consumer falls behind the oldest items are dropped and counted, so a stalled stage costs at most
 * `capacity` items of delay instead of unbounded memory.
 * @module
 */

/** A FIFO of at most `capacity` items that drops the oldest when full. */
export class BoundedQueue<T> {
  readonly #capacity: number;
  readonly #items: T[] = [];
  #waiter: ((item: T | undefined) => void) | undefined;
  #closed = false;
  #dropped = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity must be a positive integer, got ${capacity}`);
    this.#capacity = capacity;
  }

  /** Items dropped because the queue was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Items waiting. */
  get length(): number {
    return this.#items.length;
  }

  /** Adds an item (handed straight to a waiting consumer if any); ignored once closed. */
  push(item: T): void {
    if (this.#closed) return;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w(item);
      return;
    }
    if (this.#items.length >= this.#capacity) {
      this.#items.shift();
      this.#dropped++;
    }
    this.#items.push(item);
  }

  /** The next item, waiting for one if empty; `undefined` once closed and drained. One consumer at a time. */
  shift(): Promise<T | undefined> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift());
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  /** Ends the queue: items already queued are still handed out, then `shift` yields `undefined`. */
  close(): void {
    this.#closed = true;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.(undefined);
  }
}
