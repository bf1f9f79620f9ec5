/**
 * The MIT 6.824 lab 2 API over {@link RaftNode}: `make(peers, me, persister, applyCh)`, `start(command)`
 * returning `{ index, term, isLeader }` at once, `getState()`, `kill()`, and an {@link ApplyMsg} sent on
 * `applyCh` for each committed command, in log order, on every peer.
 *
 * Where it differs from the lab (and why):
 *  - Indexes are Raft log indexes. Entry 1 of a new cluster is the membership bootstrap entry and each new
 *    leader appends an empty entry, so command indexes have gaps; `start()`'s index is still the
 *    `commandIndex` the command is applied at.
 *  - `applyCh` cannot block Raft (there are no goroutines): it is a callback or a {@link Channel} with an
 *    unbounded buffer. It is called from the node's Ready loop, so a receiver that keeps up sees every
 *    message before the node compacts.
 *  - The lab's service calls `Snapshot(index, data)`; here the node compacts by itself every
 *    `snapshotEvery` entries and asks `config.snapshot()` for the service's state (the state after the last
 *    ApplyMsg it was sent). Without `config.snapshot` the log is never compacted. A snapshot installed from
 *    the leader reaches the service as an ApplyMsg with `snapshotValid`.
 * @module
 */
import { UsageError } from '../core/errors.js';
import type { NodeId } from '../core/types.js';
import { MemoryStorage } from '../node/memory-storage.js';
import { RaftNode, type RaftNodeOptions } from '../node/raft-node.js';
import type { Storage, StorageState } from '../node/storage.js';
import type { Transport } from '../node/transport.js';

/** What a peer sends to its service for each committed command, or for a snapshot installed from the leader. */
export interface ApplyMsg<C = unknown> {
  commandValid: boolean;
  command: C | undefined;
  commandIndex: number;
  snapshotValid?: boolean;
  snapshot?: unknown;
  /** The term of the snapshot's last entry (RaftNode's `refresh` reports it after the index). */
  snapshotTerm?: number;
  snapshotIndex?: number;
}

/** Where ApplyMsgs go: a callback, or anything with `send` (e.g. a {@link Channel}). */
export type ApplyCh<C = unknown> = ((msg: ApplyMsg<C>) => void) | { send(msg: ApplyMsg<C>): void };

/** An unbounded async channel: `send` never blocks; `receive` waits for the next value; iterable with `for await`. */
export class Channel<T> implements AsyncIterable<T> {
  private readonly buffer: T[] = [];
  private readonly waiting: ((v: T) => void)[] = [];

  send(value: T): void {
    const w = this.waiting.shift();
    if (w) w(value);
    else this.buffer.push(value);
  }

  receive(): Promise<T> {
    if (this.buffer.length > 0) return Promise.resolve(this.buffer.shift()!);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Everything buffered now, without waiting. */
  drain(): T[] { return this.buffer.splice(0); }

  get length(): number { return this.buffer.length; }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) yield await this.receive();
  }
}

/** A {@link Storage} that can be opened again on the same durable state (as {@link MemoryStorage} can). */
interface Reopenable extends Storage { reopen(): Storage }
const isReopenable = (s: Storage): s is Reopenable => typeof (s as Partial<Reopenable>).reopen === 'function';

/**
 * The lab's `Persister`: where a peer's Raft state lives across `kill()` and a new `make()`. Here the node
 * persists through a {@link Storage} itself (hard state, log and snapshot, one write per Ready), so the
 * Persister is a handle on one; `copy()` is what the lab's tester does before restarting a crashed peer.
 */
export class Persister {
  readonly storage: Storage;
  constructor(storage: Storage = new MemoryStorage()) { this.storage = storage; }

  /** A persister on the same durable state, for the next incarnation of the peer (needs a reopenable storage). */
  copy(): Persister {
    if (!isReopenable(this.storage)) throw new UsageError('Persister.copy() needs a storage with reopen(), such as MemoryStorage');
    return new Persister(this.storage.reopen());
  }

  /** What is durable now: hard state, snapshot and log (needs a reopenable storage; reads a separate handle). */
  readRaftState(): Promise<StorageState> {
    if (!isReopenable(this.storage)) return Promise.reject(new UsageError('Persister.readRaftState() needs a storage with reopen()'));
    const handle = this.storage.reopen();
    return handle.load().finally(() => handle.close());
  }
}

/** The lab's `peers`: every peer's id (index = the lab's server number) and the network that connects them (e.g. a MemoryNetwork). */
export interface LabPeers {
  readonly ids: readonly NodeId[];
  readonly network: { transport(id: NodeId): Transport };
}

/** Extra settings the lab passes through its config: timing, and the service's snapshot for compaction. */
export interface LabConfig
  extends Partial<Pick<RaftNodeOptions, 'tickMs' | 'electionTicks' | 'heartbeatTicks' | 'proposalTimeoutMs' | 'timers' | 'random'>> {
  /** The service's state after the last ApplyMsg it received; enables compaction every `snapshotEvery` entries. */
  snapshot?: () => unknown;
  /** Default 1000 when `snapshot` is given. */
  snapshotEvery?: number;
}

/** What `make` returns: the lab's `Raft` methods. */
export interface LabRaft<C = unknown> {
  readonly me: number;
  /** Appends `command` when this peer is leader and returns where it will be committed, at once (it does not wait). */
  start(command: C): { index: number; term: number; isLeader: boolean };
  getState(): { term: number; isLeader: boolean };
  /** Stops the peer (its timers, transport and storage); resolves once it is fully stopped. */
  kill(): Promise<void>;
  /** Resolves once the peer loaded its state and is running. */
  readonly ready: Promise<void>;
  /** The node underneath. */
  readonly node: RaftNode<C>;
}

const deliver = <C>(ch: ApplyCh<C>, msg: ApplyMsg<C>): void => {
  if (typeof ch === 'function') ch(msg);
  else ch.send(msg);
};

/**
 * Creates and starts peer `me` of `peers`. A peer with state in `persister` restarts as the member it was;
 * a new one bootstraps a cluster of all `peers.ids`.
 */
export function make<C = unknown>(peers: LabPeers, me: number, persister: Persister, applyCh: ApplyCh<C>, config: LabConfig = {}): LabRaft<C> {
  const id = peers.ids[me];
  if (id === undefined) throw new UsageError(`me = ${me} is not an index of peers (${peers.ids.length})`);
  const { snapshot, snapshotEvery, ...timing } = config;
  let restored: unknown;
  const node = new RaftNode<C>({
    id,
    voters: [...peers.ids],
    storage: persister.storage,
    transport: peers.network.transport(id),
    // The lab's Start never forwards: a follower answers isLeader false and the client tries another peer.
    forwardProposals: false,
    snapshotEvery: snapshot ? (snapshotEvery ?? 1000) : Number.POSITIVE_INFINITY,
    stateMachine: {
      apply: () => undefined, // the service is the state machine: it learns each command from applyCh
      snapshot: () => (snapshot ? snapshot() : null),
      restore: (data) => { restored = data; },
    },
    ...timing,
  });
  node.on('apply', (command, _result, entry) => deliver(applyCh, { commandValid: true, command, commandIndex: entry.index }));
  // `refresh` follows `restore`, with the index the snapshot covers and that entry's term.
  node.on('refresh', (index, term) => deliver(applyCh, {
    commandValid: false, command: undefined, commandIndex: 0, snapshotValid: true, snapshot: restored, snapshotTerm: term, snapshotIndex: index,
  }));
  const ready = node.start();
  // Reported through `ready`; an unobserved failure must not become an unhandled rejection.
  ready.catch(() => {});
  let killed = false;

  const getState = (): { term: number; isLeader: boolean } => {
    if (killed) return { term: 0, isLeader: false };
    try {
      const st = node.status();
      return { term: st.term, isLeader: st.role === 'leader' };
    } catch {
      return { term: 0, isLeader: false }; // still loading its state
    }
  };

  return {
    me,
    ready,
    node,
    getState,
    kill: async () => { killed = true; await node.stop(); },
    start(command: C) {
      if (command === null || command === undefined) throw new TypeError('command must not be null or undefined');
      const { term, isLeader } = getState();
      // The core's role, not the node's last Ready: a peer that just lost leadership says so at once.
      if (!isLeader) return { index: -1, term, isLeader: false };
      const st = node.status();
      // During a leadership transfer the core refuses proposals and RaftNode would keep this one to retry
      // later, at an index nobody could be told: answer as a non-leader instead, as the lab's Start would.
      if (st.transferee !== null) return { index: -1, term, isLeader: false };
      const before = st.lastIndex;
      // RaftNode.propose puts the entry in the core's log synchronously when leader; its index is then the
      // core's last index. The promise (settled when applied) is not needed: the service learns via applyCh.
      node.propose(command).catch(() => {});
      const after = node.status();
      if (after.lastIndex !== before + 1) {
        // Not expected (leader, no transfer, valid command): report the refusal rather than a wrong index.
        return { index: -1, term: after.term, isLeader: false };
      }
      return { index: after.lastIndex, term: after.term, isLeader: true };
    },
  };
}
