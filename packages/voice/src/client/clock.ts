/**
 * A drift-free 20 ms tick. Each tick is scheduled for `start + k·period`, not "period after the last one", so
 * timer lateness never accumulates: a file played into the call keeps real-time pace, and an output WAV's
 * length follows the wall clock. When the event loop was blocked, the missed ticks run one per event-loop turn
 * until caught up (up to `maxCatchUp`; beyond that the clock realigns rather than replay seconds of ticks).
 * @module
 */
import { performance } from 'node:perf_hooks';
import { FRAME_MS } from './opus.js';

/** Options of a {@link FrameClock}. */
export interface FrameClockOptions {
  periodMs?: number;
  /** Most missed ticks run at once after a stall. Default 50 (one second of 20 ms ticks). */
  maxCatchUp?: number;
  /** Milliseconds on a monotonic clock; replaceable for tests. */
  now?: () => number;
}

/** Calls `onTick(k)` for k = 0, 1, 2… every period until stopped. */
export class FrameClock {
  readonly #onTick: (index: number) => void;
  readonly #period: number;
  readonly #maxCatchUp: number;
  readonly #now: () => number;
  #start = 0;
  #index = 0;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #running = false;

  constructor(onTick: (index: number) => void, options: FrameClockOptions = {}) {
    this.#onTick = onTick;
    this.#period = options.periodMs ?? FRAME_MS;
    this.#maxCatchUp = options.maxCatchUp ?? 50;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Starts ticking; the first tick runs now. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#start = this.#now();
    this.#index = 0;
    this.#run();
  }

  /** Stops; no tick runs after this returns. */
  stop(): void {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
  }

  #run = (): void => {
    this.#timer = undefined;
    this.#immediate = undefined;
    const due = Math.floor((this.#now() - this.#start) / this.#period);
    if (due - this.#index > this.#maxCatchUp) this.#index = due - this.#maxCatchUp;
    if (this.#index <= due) {
      this.#onTick(this.#index++);
      if (!this.#running) return;
      // Behind: the next tick runs after the event loop has polled I/O (setImmediate), so audio that arrived
      // during a stall reaches the jitter buffers before the ticks that are due to play it.
      if (this.#index <= due) {
        this.#immediate = setImmediate(this.#run);
        return;
      }
    }
    const wait = this.#start + this.#index * this.#period - this.#now();
    this.#timer = setTimeout(this.#run, Math.max(0, wait));
  };
}
