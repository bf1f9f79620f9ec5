/**
 * A jitter buffer for one sender's 20 ms frames. Pure: no clock of its own; the playback tick calls
 * {@link JitterBuffer.pop} once per 20 ms and frames are pushed as they arrive.
 *
 * - Frames are ordered by the sender's `seq` (the proto's frame counter). Senders built from the seed's proto
 *   send 0; such a frame is numbered in arrival order, after the highest number seen.
 * - After a silence the buffer primes: it waits until it holds `targetFrames` frames or `targetFrames` ticks have
 *   passed since the first one arrived, so up to that much network jitter is absorbed.
 * - A frame missing at its turn while later ones are buffered is concealed (the caller runs the decoder's packet
 *   loss concealment); a gap wider than `maxGapFrames` is skipped instead of concealed frame by frame.
 * - A frame older than the one due to play next is late and dropped; a second copy of a buffered frame is a
 *   duplicate and dropped. Holding more than `maxFrames` drops the oldest, bounding the delay after a burst.
 * - When the buffer runs dry the frame due is not given up: up to `concealFrames` ticks are bridged by
 *   concealment ("stretch": the playout point waits) and the frame plays when it comes. On a loaded machine or
 *   network a burst after a stall then arrives late but whole, instead of as a hole; the delay it added stays
 *   until the sender pauses (or `maxFrames` is reached). After `concealFrames` dry ticks the buffer goes idle and
 *   primes afresh when frames come again: a muted sender's counter jumps, and that jump is not a loss.
 * @module
 */

/** Tuning of a {@link JitterBuffer}, all in 20 ms frames. */
export interface JitterBufferOptions {
  /** Depth to hold before playing (3 = 60 ms). */
  targetFrames: number;
  /** Most frames held; beyond, the oldest is dropped. Default `targetFrames + 50` (one second more). */
  maxFrames?: number;
  /** Ticks bridged by concealment after the buffer runs dry, before going idle. Default 3. */
  concealFrames?: number;
  /** A gap wider than this is skipped, not concealed. Default 10. */
  maxGapFrames?: number;
}

/** What {@link JitterBuffer.push} did with a frame. */
export type PushResult = 'accepted' | 'duplicate' | 'late';

/** What to play for one tick. */
export type Pop<T> =
  /** `frame`: play it; `conceal`: frame `seq` is lost, conceal it; `stretch`: nothing is due yet, conceal to
   * bridge the wait; `idle`: the sender is silent. */
  | { kind: 'frame'; seq: number; payload: T }
  | { kind: 'conceal'; seq: number }
  | { kind: 'stretch' }
  | { kind: 'idle' };

/** Counters of a {@link JitterBuffer}. */
export interface JitterStats {
  accepted: number;
  duplicates: number;
  late: number;
  /** Frames dropped because the buffer held `maxFrames`. */
  overflowed: number;
  /** Frames skipped over by a gap wider than `maxGapFrames`. */
  skipped: number;
  /** Lost frames concealed. */
  concealed: number;
  /** Ticks bridged while the buffer was dry. */
  stretched: number;
  played: number;
  /** Times the buffer went idle after running dry. */
  resets: number;
}

/** Thrown for options that cannot work (a depth below one frame, say). */
export class JitterOptionsError extends Error {
  override readonly name = 'JitterOptionsError';
}

/** Orders, delays and conceals one sender's frames (see the module comment). */
export class JitterBuffer<T> {
  readonly #target: number;
  readonly #max: number;
  readonly #concealFrames: number;
  readonly #maxGap: number;
  readonly #frames = new Map<number, T>();
  #state: 'idle' | 'priming' | 'playing' = 'idle';
  /** The sequence number due next; everything below it is late. 0 until the first frame plays. */
  #next = 0;
  #highest = 0;
  #primingTicks = 0;
  #dryTicks = 0;
  readonly #stats: JitterStats = { accepted: 0, duplicates: 0, late: 0, overflowed: 0, skipped: 0, concealed: 0, stretched: 0, played: 0, resets: 0 };

  constructor(options: JitterBufferOptions) {
    this.#target = options.targetFrames;
    this.#max = options.maxFrames ?? options.targetFrames + 50;
    this.#concealFrames = options.concealFrames ?? 3;
    this.#maxGap = options.maxGapFrames ?? 10;
    const ints = { targetFrames: this.#target, maxFrames: this.#max, concealFrames: this.#concealFrames, maxGapFrames: this.#maxGap };
    for (const [name, v] of Object.entries(ints)) {
      if (!Number.isInteger(v) || v < 0) throw new JitterOptionsError(`${name} must be a non-negative integer, got ${v}`);
    }
    if (this.#target < 1) throw new JitterOptionsError('targetFrames must be at least 1');
    if (this.#max < this.#target) throw new JitterOptionsError(`maxFrames (${this.#max}) must be at least targetFrames (${this.#target})`);
  }

  /** Whether the sender is being played (not idle and not priming). */
  get playing(): boolean {
    return this.#state === 'playing';
  }

  /** Frames held. */
  get size(): number {
    return this.#frames.size;
  }

  /** A copy of the counters. */
  get stats(): JitterStats {
    return { ...this.#stats };
  }

  /** Adds a frame as it arrives; `seq` 0 means "no counter" and numbers it in arrival order. */
  push(seq: number, payload: T): PushResult {
    const n = seq === 0 ? Math.max(this.#highest, this.#next - 1) + 1 : seq;
    if (n < this.#next) {
      this.#stats.late++;
      return 'late';
    }
    if (this.#frames.has(n)) {
      this.#stats.duplicates++;
      return 'duplicate';
    }
    this.#frames.set(n, payload);
    this.#highest = Math.max(this.#highest, n);
    this.#stats.accepted++;
    while (this.#frames.size > this.#max) {
      const oldest = this.#oldest();
      this.#frames.delete(oldest);
      this.#next = Math.max(this.#next, oldest + 1);
      this.#stats.overflowed++;
    }
    if (this.#state === 'idle') {
      this.#state = 'priming';
      this.#primingTicks = 0;
    }
    return 'accepted';
  }

  /** What to play for this tick; call exactly once per 20 ms. */
  pop(): Pop<T> {
    if (this.#state === 'idle') return { kind: 'idle' };
    if (this.#state === 'priming') {
      this.#primingTicks++;
      if (this.#frames.size < this.#target && this.#primingTicks < this.#target) return { kind: 'idle' };
      this.#state = 'playing';
      this.#dryTicks = 0;
      this.#next = this.#oldest();
    }
    const due = this.#frames.get(this.#next);
    if (due !== undefined) {
      this.#frames.delete(this.#next);
      this.#dryTicks = 0;
      this.#stats.played++;
      return { kind: 'frame', seq: this.#next++, payload: due };
    }
    if (this.#frames.size > 0) {
      const oldest = this.#oldest();
      if (oldest - this.#next > this.#maxGap) {
        this.#stats.skipped += oldest - this.#next;
        this.#next = oldest;
        return this.pop();
      }
      this.#stats.concealed++;
      return { kind: 'conceal', seq: this.#next++ };
    }
    this.#dryTicks++;
    if (this.#dryTicks <= this.#concealFrames) {
      this.#stats.stretched++;
      return { kind: 'stretch' };
    }
    this.#state = 'idle';
    this.#stats.resets++;
    return { kind: 'idle' };
  }

  #oldest(): number {
    let min = Infinity;
    for (const k of this.#frames.keys()) if (k < min) min = k;
    return min;
  }
}
