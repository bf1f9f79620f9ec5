/**
 * The data shapes of the RaftCore contract (`shared/spec/raft-core.md`). Everything here is plain,
 * JSON-serialisable data so it can cross any transport and sit in any storage unchanged.
 * @module
 */

/** A node's identity: any string unique within the cluster. */
export type NodeId = string;

/** The role a node plays. Only the `becomeX` functions in `raft.ts` change it. */
export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/**
 * One log entry. `index` is 1-based and consecutive. A `normal` entry whose `data` is `null` is the empty
 * entry a new leader appends to commit its term (Raft §5.4.2); applications skip it.
 */
export interface Entry {
  index: number;
  term: number;
  type: 'normal' | 'conf';
  data: unknown;
}

/** What must be durable before any message of the same Ready is sent. */
export interface HardState {
  term: number;
  vote: NodeId | null;
  commit: number;
}

/**
 * A cluster configuration. `outgoing` is present only during joint consensus (Raft thesis §4.3): it holds
 * the old voters, and every decision then needs a majority of both `voters` and `outgoing`.
 */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  outgoing?: NodeId[];
}

/** The application's state as of log index `index`, with the configuration in force there. */
export interface Snapshot {
  index: number;
  term: number;
  conf: ConfState;
  data: unknown;
}

/** One membership change; several in one proposal go through joint consensus. */
export interface ConfChange {
  type: 'addVoter' | 'addLearner' | 'remove';
  node: NodeId;
}

/**
 * The `data` of a `conf` entry. `changes` enters a new configuration (joint when there are several);
 * `leaveJoint` leaves the joint configuration; `bootstrap` is entry 1 of a new cluster, written identically
 * by every initial voter so that nodes added later learn the initial configuration from the log.
 */
export type ConfEntryData =
  | { op: 'bootstrap'; voters: NodeId[] }
  | { op: 'change'; changes: ConfChange[] }
  | { op: 'leaveJoint' };

/** An answer to `readIndex()`: serve the read once the state machine has applied `index`. */
export interface ReadState {
  index: number;
  context: unknown;
}

/**
 * Everything the core wants done. Handle it in this order: persist `hardState`, `entries` and `snapshot`;
 * restore the state machine from `snapshot`; apply `committed`; send `messages`; then call `advance()`.
 * Messages must never be sent before the state of the same Ready is durable.
 */
export interface Ready {
  role: Role;
  leader: NodeId | null;
  /** Non-null when it changed since the last Ready: persist it. */
  hardState: HardState | null;
  /** Persist: an entry at index i replaces the stored entry at i and every later one. */
  entries: Entry[];
  /** Persist in place of the whole stored log, then restore the state machine from it. */
  snapshot: Snapshot | null;
  /** Apply in index order, after the snapshot; each index is delivered exactly once. */
  committed: Entry[];
  /** Send only after hardState, entries and snapshot are durable. */
  messages: import('./messages.js').Message[];
  readStates: ReadState[];
}
