/**
 * `RaftManager`: the API of the WebRTC+RAFT chat app's `src/utils/raft.ts`, as a thin module over
 * {@link RaftNode}. The app owns the wire (a WebRTC data channel): it gives the manager a send callback
 * (`setOnSendMessage`) and feeds every Raft message it receives to `handleMessage`. Committed entries reach
 * the app through `setOnLogEntry`, role changes through `setOnStateChange`.
 *
 * Membership: `addPeer` / `removePeer` say which peers this node wants in the cluster.
 *  - The first peers form the cluster: the node starts in a microtask after the first `addPeer`, and this
 *    node plus every peer added in that same synchronous run of code are the initial voters. Every member
 *    of a new cluster must start with the same set (add them all at once, e.g. when the room's peer list is
 *    known), or call `start()` explicitly once the set is complete. A lone node can call `start()` with no
 *    peer: it forms a one-node cluster.
 *  - A node that joins an existing cluster is created with `{ join: true }`: it starts with no
 *    configuration and waits for the leader to add it (two clusters bootstrapped separately can never merge).
 *  - Afterwards `addPeer` / `removePeer` are wishes every member records; the leader turns its wishes into
 *    membership changes, one at a time (a new leader picks up what its predecessor left undone). So the
 *    seed's flow, where every member calls `addPeer(id)` when a data channel opens and `removePeer(id)` when
 *    it closes, works whichever member is leader.
 * @module
 */
import { RaftError } from '../core/errors.js';
import type { Entry, NodeId, Role } from '../core/types.js';
import { decodeMessage } from '../node/codec.js';
import { MemoryStorage } from '../node/memory-storage.js';
import type { WireMessage } from '../node/node-messages.js';
import { RaftNode, type RaftNodeOptions, type StateMachine } from '../node/raft-node.js';
import type { Storage } from '../node/storage.js';
import { realTimers, type TimerHandle, type Timers } from '../node/timers.js';
import type { Transport } from '../node/transport.js';

/** The seed's node state. A pre-candidate (pre-vote, its term unchanged) is reported as `follower`. */
export type NodeState = 'follower' | 'candidate' | 'leader';

/** A committed entry, as the seed's `LogEntry`. `index` is the Raft index (membership and empty leader entries use indexes too, so indexes have gaps). */
export interface LogEntry<D = unknown> {
  term: number;
  index: number;
  data: D;
  /** `Date.now()` on the node that called `appendEntry`: the same on every node. */
  timestamp: number;
}

/** Options of {@link RaftManager}: RaftNode's timing options, plus storage and how the node enters a cluster. */
export interface RaftManagerOptions
  extends Partial<Pick<RaftNodeOptions, 'tickMs' | 'electionTicks' | 'heartbeatTicks' | 'snapshotEvery' | 'proposalTimeoutMs' | 'timers' | 'random'>> {
  /** Default: a new {@link MemoryStorage}. With stored state the node restarts as the member it was. */
  storage?: Storage;
  /** Join an existing cluster: start at once with no configuration and wait for the leader to add this node. */
  join?: boolean;
}

/** The command stored in the log: the app's data plus the proposer's timestamp, so every node reports the same one. */
interface Appended<D> { data: D; timestamp: number }

/** Thrown by `appendEntry` before the node started (no peer added, no `start()`), or after `cleanup()`. */
export class RaftManagerStateError extends RaftError {}

/**
 * The Transport a RaftNode sees: `send` calls the app's callback, and the app's `handleMessage` delivers.
 * Best effort, like any transport: a message with no callback set, or whose callback throws, is lost, and
 * Raft's retries cover it.
 */
class CallbackTransport implements Transport {
  sendFn: ((peerId: NodeId, message: WireMessage) => void) | null = null;
  private onMessage: ((m: WireMessage) => void) | null = null;
  constructor(readonly id: NodeId) {}

  async start(onMessage: (message: WireMessage) => void): Promise<void> { this.onMessage = onMessage; }
  send(message: WireMessage): void {
    if (!this.onMessage || !this.sendFn) return;
    try {
      this.sendFn(message.to, message);
    } catch {
      // The Transport contract: send never throws. A failing data channel is a lost message.
    }
  }
  async close(): Promise<void> { this.onMessage = null; }
  /** Whether the node is receiving (started, not closed). */
  get open(): boolean { return this.onMessage !== null; }
  deliver(message: WireMessage): void { this.onMessage?.(message); }
}

/** The replicated state: the committed log itself, as the seed's app keeps it. */
class LogMachine<D> implements StateMachine<Appended<D>, LogEntry<D>> {
  log: LogEntry<D>[] = [];
  apply(cmd: Appended<D>, entry: Entry): LogEntry<D> {
    const e: LogEntry<D> = { term: entry.term, index: entry.index, data: cmd.data, timestamp: cmd.timestamp };
    this.log.push(e);
    return e;
  }
  snapshot(): unknown { return this.log.slice(); }
  restore(data: unknown): void { this.log = (data as LogEntry<D>[]).slice(); }
}

/** The WebRTC+RAFT document's `RaftManager` over {@link RaftNode}. See the module comment. */
export class RaftManager<D = unknown> {
  readonly nodeId: NodeId;
  private readonly transport: CallbackTransport;
  private readonly machine = new LogMachine<D>();
  private readonly node: RaftNode<Appended<D>, LogEntry<D>>;
  /** Peers this node wants in the cluster, and peers it wants out (only the leader acts on them). */
  private readonly wanted = new Set<NodeId>();
  private readonly unwanted = new Set<NodeId>();
  private phase: 'new' | 'starting' | 'started' | 'cleaned' = 'new';
  private started: Promise<void> | null = null;
  /** A start is queued by the first addPeer: the rest of that synchronous run may add more peers. */
  private startQueued = false;
  private changing = false;
  private readonly timers: Timers;
  private readonly retryMs: number;
  private retry: TimerHandle = null;
  private lastReported: { state: NodeState; leader: NodeId | null } = { state: 'follower', leader: null };
  private onStateChange: ((state: NodeState, leaderId: NodeId | null, term: number) => void) | null = null;
  private onLogEntry: ((entry: LogEntry<D>) => void) | null = null;
  private onError: ((error: unknown) => void) | null = null;

  constructor(nodeId: NodeId, options: RaftManagerOptions = {}) {
    this.nodeId = nodeId;
    this.transport = new CallbackTransport(nodeId);
    const { storage, join, ...timing } = options;
    this.timers = options.timers ?? realTimers;
    this.retryMs = (options.tickMs ?? 100) * (options.electionTicks ?? 10);
    // `voters` is read at start(); the getter lets the peers added before then form the cluster.
    const self = this;
    this.node = new RaftNode<Appended<D>, LogEntry<D>>({
      id: nodeId,
      get voters() { return join ? [] : [self.nodeId, ...self.wanted]; },
      storage: storage ?? new MemoryStorage(),
      transport: this.transport,
      stateMachine: this.machine,
      ...timing,
    });
    this.node.on('apply', (_cmd, entry) => this.onLogEntry?.(entry));
    this.node.on('state changed', (role, leader, term) => this.reportState(role, leader, term));
    this.node.on('updated', () => this.reconcile());
    this.node.on('error', (err) => this.onError?.(err));
    if (join) void this.start();
  }

  // ---- Peers -----------------------------------------------------------------------------------------

  /** This node wants `peerId` in the cluster (call it when the peer's data channel opens). See the module comment. */
  addPeer(peerId: NodeId): void {
    if (peerId === this.nodeId || this.phase === 'cleaned') return;
    this.wanted.add(peerId);
    this.unwanted.delete(peerId);
    if (this.phase === 'new' && !this.startQueued) {
      this.startQueued = true;
      queueMicrotask(() => void this.start());
    }
    else this.reconcile();
  }

  /** This node wants `peerId` out of the cluster (call it when the peer's data channel closes). */
  removePeer(peerId: NodeId): void {
    if (peerId === this.nodeId || this.phase === 'cleaned') return;
    this.wanted.delete(peerId);
    this.unwanted.add(peerId);
    this.reconcile();
  }

  /** Starts the node now with the peers added so far (see the module comment); idempotent. */
  start(): Promise<void> {
    if (this.started) return this.started;
    if (this.phase === 'cleaned') return Promise.resolve();
    this.phase = 'starting';
    this.started = this.node.start().then(() => {
      if (this.phase === 'starting') this.phase = 'started';
    });
    // Reported through onError: the seed's API has no promise for the caller to watch.
    this.started.catch((err: unknown) => this.onError?.(err));
    return this.started;
  }

  // ---- Messages ----------------------------------------------------------------------------------------

  /**
   * Feeds a Raft message received from a peer: the object given to the sender's send callback, after a
   * JSON round trip, or its JSON text. It is validated first (a peer is not trusted): a malformed one is
   * dropped, as is any message that arrives before this node started.
   */
  handleMessage(message: WireMessage | string): void {
    if (!this.transport.open) return;
    let m: WireMessage;
    try {
      m = decodeMessage(typeof message === 'string' ? message : JSON.stringify(message));
    } catch {
      return; // garbage from the wire never reaches the node
    }
    if (m.to !== this.nodeId) return;
    this.transport.deliver(m);
  }

  // ---- State -----------------------------------------------------------------------------------------

  getState(): NodeState { return this.lastReported.state; }
  getLeaderId(): NodeId | null { return this.node.leader; }
  isLeader(): boolean { return this.node.isLeader; }
  /** The current term (0 before start). */
  getTerm(): number { return this.phase === 'started' ? this.node.status().term : 0; }

  /**
   * Appends `data` to the replicated log: on the leader at once, on a follower forwarded to the leader
   * (the seed's `client-message`). Resolves with the committed entry once this node applied it. The
   * returned promise may be ignored, as the seed does: a failure then only reaches `setOnError`.
   */
  appendEntry(data: D): Promise<LogEntry<D>> {
    const timestamp = Date.now();
    let p: Promise<LogEntry<D>>;
    if (this.phase === 'started') {
      p = this.node.propose({ data, timestamp });
    } else if (this.phase === 'starting' || (this.phase === 'new' && this.startQueued)) {
      // Peers were just added (the start is a microtask away) or the node is loading: wait for it rather
      // than refuse, so "addPeer, then appendEntry" in one handler works. The queued start runs first.
      p = Promise.resolve().then(() => this.start()).then(() => this.node.propose({ data, timestamp }));
    } else {
      p = Promise.reject(new RaftManagerStateError(
        `cannot append: the manager is ${this.phase === 'cleaned' ? 'cleaned up' : 'not started (no peer added, no start())'}`));
    }
    // A handler, so an ignored promise is no unhandled rejection; the caller's own handlers still see it.
    p.catch((err: unknown) => this.onError?.(err));
    return p;
  }

  /** The committed entries this node applied, oldest first (a copy). */
  getLog(): LogEntry<D>[] { return this.machine.log.slice(); }

  /** The commit index this node knows (0 before start). */
  getCommitIndex(): number { return this.phase === 'started' ? this.node.status().commit : 0; }

  /** The node underneath, for what the seed's API does not cover (reads, transfers, status). */
  get raftNode(): RaftNode<Appended<D>, LogEntry<D>> { return this.node; }

  // ---- Callbacks -------------------------------------------------------------------------------------

  /** How messages leave: `cb(peerId, message)` sends `message` (JSON-serialisable) to `peerId`'s manager. */
  setOnSendMessage(cb: (peerId: NodeId, message: WireMessage) => void): void { this.transport.sendFn = cb; }
  /** Called when the state or the known leader changes. */
  setOnStateChange(cb: (state: NodeState, leaderId: NodeId | null, term: number) => void): void { this.onStateChange = cb; }
  /** Called once for each committed entry, in log order, on every node. */
  setOnLogEntry(cb: (entry: LogEntry<D>) => void): void { this.onLogEntry = cb; }
  /** Failed appends, a failed start, storage failures. */
  setOnError(cb: (error: unknown) => void): void { this.onError = cb; }

  /** Stops the node and its timers; the manager cannot be used afterwards. */
  async cleanup(): Promise<void> {
    this.phase = 'cleaned';
    if (this.retry !== null) this.timers.clearTimeout(this.retry);
    this.retry = null;
    await this.node.stop();
  }

  // ---- Internals -------------------------------------------------------------------------------------

  private reportState(role: Role, leader: NodeId | null, term: number): void {
    const state: NodeState = role === 'pre-candidate' ? 'follower' : role;
    if (state === this.lastReported.state && leader === this.lastReported.leader) return;
    this.lastReported = { state, leader };
    this.onStateChange?.(state, leader, term);
    if (state === 'leader') this.reconcile();
  }

  /** On the leader: the next membership change that brings the configuration to this node's wishes. */
  private reconcile(): void {
    if (this.phase !== 'started' || this.changing || !this.node.isLeader) return;
    const conf = this.node.status().conf;
    const add = [...this.wanted].find((p) => !conf.voters.includes(p));
    const remove = add === undefined ? [...this.unwanted].find((p) => conf.voters.includes(p) || conf.learners.includes(p)) : undefined;
    if (add === undefined && remove === undefined) return;
    this.changing = true;
    const change = add !== undefined ? this.node.addVoter(add) : this.node.removeNode(remove!);
    change.then(() => {
      this.changing = false;
      this.reconcile(); // the next change, if any
    }, () => {
      // Refused (a new leader's first entry not yet committed, another change in flight) or timed out: not
      // fatal. Retried after an election timeout, not at once: an immediate retry would spin on the refusal.
      this.changing = false;
      if (this.retry !== null || this.phase !== 'started') return;
      this.retry = this.timers.setTimeout(() => { this.retry = null; this.reconcile(); }, this.retryMs);
    });
  }
}
