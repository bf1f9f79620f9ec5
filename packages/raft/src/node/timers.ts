/**
 * The clock a {@link RaftNode} uses, as an interface so tests can run a cluster on fake time (livekit's
 * `CriticalTimers` idea). The default uses the host's global timers, which exist in Node.js and browsers.
 * @module
 */

/** An opaque timer handle: whatever the implementation's `setTimeout`/`setInterval` return. */
export type TimerHandle = unknown;

/** The four timer functions a node needs, and the clock they run on. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
  /**
   * Milliseconds on the same clock as the timers (monotonic; the origin does not matter). Only lease reads
   * need it, so it is optional: a `Timers` without it keeps working and its node never serves a lease
   * read (falling back to ReadIndex), because any other clock could run ahead of or behind these timers.
   */
  now?(): number;
}

type Handle = ReturnType<typeof globalThis.setTimeout>;

/** The host's timers (`globalThis`), looked up at call time so a test framework's mocks apply. */
export const realTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as Handle),
  setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
  clearInterval: (h) => globalThis.clearInterval(h as Handle),
  // Monotonic where available (Node.js and browsers): a wall clock set back would stretch a lease.
  now: () => globalThis.performance?.now() ?? Date.now(),
};
