/**
 * Typed errors. Expected failures (not being leader, a refused proposal) are errors the caller handles;
 * a broken internal invariant is an {@link InvariantError} and means a bug in the core.
 * @module
 */
import type { NodeId } from './types.js';

/** Base class of every error the library throws on purpose. */
export class RaftError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Thrown when an operation needs the leader and this node is not it. `leader` is the known leader, if any. */
export class NotLeaderError extends RaftError {
  readonly leader: NodeId | null;
  constructor(leader: NodeId | null, message?: string) {
    super(message ?? (leader ? `not the leader; the leader is ${leader}` : 'not the leader; no leader is known'));
    this.leader = leader;
  }
}

/** Thrown when the leader refuses a proposal it would otherwise take (e.g. during leadership transfer). */
export class ProposalDroppedError extends RaftError {}

/** Thrown for a membership change that is invalid or arrives while another is still in flight. */
export class ConfChangeError extends RaftError {}

/** Thrown when `compact()` is asked for an index that is not applied or already compacted. */
export class CompactionError extends RaftError {}

/** Thrown when the caller breaks the Ready cycle (e.g. `ready()` twice without `advance()`). */
export class UsageError extends RaftError {}

/** A broken internal invariant: a bug in the core, never a consequence of input. */
export class InvariantError extends RaftError {}

/** Throws an {@link InvariantError} unless `cond` holds. */
export function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new InvariantError(message);
}
