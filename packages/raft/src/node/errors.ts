/**
 * The node layer's typed errors, beside the core's (`core/errors.ts`).
 * @module
 */
import { RaftError } from '../core/errors.js';

/**
 * A proposal, read, membership change or transfer did not complete within its timeout (no leader, no
 * quorum). The outcome of a timed-out proposal is unknown: it may still be committed and applied later
 * (once, thanks to its id), exactly like a request whose answer was lost.
 */
export class TimeoutError extends RaftError {
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number) {
    super(`${what} timed out after ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/** The node was stopped (or never started) before the operation could complete. */
export class StoppedError extends RaftError {
  constructor(message = 'the node is stopped') {
    super(message);
  }
}
