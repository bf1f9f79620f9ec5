/**
 * The shapes the simulator shares with its users: what it needs from a core, and the observer hooks a
 * visualizer or a trace recorder plugs in.
 * @module
 */
import type { Message } from '../core/messages.js';
import type { RaftStatus } from '../core/raft.js';
import type { ConfChange, Entry, NodeId, Ready, Role, Snapshot } from '../core/types.js';
import type { DropReason } from './network.js';

/** The part of `RaftCore.status()` the simulator reads. */
export type CoreStatus = Pick<RaftStatus, 'id' | 'term' | 'vote' | 'role' | 'leader' | 'commit' | 'applied' | 'firstIndex' | 'lastIndex' | 'conf'>;

/** The RaftCore contract as the simulator drives it; a test may hand in any implementation, even a broken one. */
export interface CoreLike {
  tick(): void;
  step(message: Message): void;
  propose(data: unknown): { index: number; term: number };
  proposeConfChange(changes: ConfChange[]): { index: number; term: number };
  transferLeader(to: NodeId): void;
  readIndex(context: unknown): void;
  compact(index: number, data: unknown): Snapshot;
  hasReady(): boolean;
  ready(): Ready;
  advance(): void;
  status(): CoreStatus;
}

/** The options the simulator passes to a core's constructor (a subset of `RaftCoreOptions`). */
export interface CoreOptions {
  id: NodeId;
  voters: NodeId[];
  restore?: { hardState?: { term: number; vote: NodeId | null; commit: number }; entries?: Entry[]; snapshot?: Snapshot | null };
  electionTicks: number;
  heartbeatTicks: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  random: () => number;
}

/** A RaftCore constructor. */
export type CoreConstructor = new (options: CoreOptions) => CoreLike;

/**
 * Hooks called as the simulation runs, e.g. to draw it or to record a trace. All are optional; an absent
 * hook costs one property check. Messages passed in are the wire copies: treat them as read-only.
 */
export interface SimObserver {
  /** A node handed `msg` to the network at `sentAt`; `deliverAt` is null when it was dropped at once. Called per copy. */
  onSend?(msg: Message, from: NodeId, to: NodeId, sentAt: number, deliverAt: number | null): void;
  /** `msg` reached its receiver's core at `at`. */
  onDeliver?(msg: Message, at: number): void;
  /** `msg` was lost, at sending or on arrival. */
  onDrop?(msg: Message, reason: DropReason, at: number): void;
  /** A node's role or term changed. */
  onRoleChange?(id: NodeId, role: Role, term: number): void;
  /** A node's state machine applied a committed entry. */
  onApply?(id: NodeId, entry: Entry): void;
  /** A node's state machine was restored from a snapshot (received, or its durable one at restart). */
  onRestore?(id: NodeId, snapshot: Snapshot): void;
  onCrash?(id: NodeId): void;
  /** A node was rebuilt from durable state; it has not yet replayed its committed entries. */
  onRestart?(id: NodeId): void;
}
