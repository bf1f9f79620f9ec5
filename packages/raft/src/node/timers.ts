/**
 * The clock a {@link RaftNode} uses, as an interface so tests can run a cluster on fake time (livekit's
 * `CriticalTimers` idea). The default uses the host's global timers, which exist in Node.js and browsers.
 * @module
 */

/** An opaque timer handle: whatever the implementation's `setTimeout`/`setInterval` return. */
export type TimerHandle = unknown;

/** The four timer functions a node needs. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
}

type Handle = ReturnType<typeof globalThis.setTimeout>;

/** The host's timers (`globalThis`), looked up at call time so a test framework's mocks apply. */
export const realTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as Handle),
  setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
  clearInterval: (h) => globalThis.clearInterval(h as Handle),
};
