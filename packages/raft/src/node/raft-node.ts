/**
 * `RaftNode`: runs a {@link RaftCore} by itself, in Node.js or a browser. It owns the clock (ticks), the
 * {@link Storage}, the {@link Transport} and the application's {@link StateMachine}, and handles each Ready
 * in the contract's order: persist (one `save` per Ready, awaited: a group commit), restore, send, apply,
 * `advance()` — except that a leader sends and applies while it writes (thesis §10.2.1, `parallelWrite`).
 * Only one Ready is in flight; ticks and messages that arrive meanwhile go to the core and are picked up by
 * the next turn of the loop, so the more load, the more each save carries.
 *
 * Proposals carry a unique id in their entry, so a proposal retried after a leader change, or a forward
 * the network duplicated, is applied once. A follower forwards proposals to the leader (a node-layer
 * `Forward` message the core never sees) and settles the caller's promise when it applies the entry itself;
 * membership changes and transfers travel the same way (`ForwardConf`, answered by `ForwardConfResp`).
 * Reads are ReadIndex by default, or served from a leader's lease on request (see {@link RaftNode.read}).
 * @module
 */
import { ConfChangeError, NotLeaderError, ProposalDroppedError, RaftError } from '../core/errors.js';
import { isQuorum } from '../core/quorum.js';
import { RaftCore, type RaftStatus } from '../core/raft.js';
import { mayOverlapWrite } from '../core/parallel-write.js';
import type {
  ConfChange, ConfEntryData, Entry, HardState, NodeId, Ready, ReadState, Role, Snapshot,
} from '../core/types.js';
import {
  AppliedIds, isNodeSnapshotData, isProposalData, type NodeSnapshotData, type ProposalData,
} from './applied-ids.js';
import { TypedEmitter } from './emitter.js';
import { StoppedError, TimeoutError } from './errors.js';
import {
  isNodeMessage, MAX_FORWARD_BATCH, type ForwardConfMsg, type ForwardConfRespMsg, type ForwardedProposal,
  type ForwardMsg, type NodeMessage, type WireMessage,
} from './node-messages.js';
import type { Storage } from './storage.js';
import { realTimers, type TimerHandle, type Timers } from './timers.js';
import type { Transport } from './transport.js';

/**
 * The application's replicated state. `apply` must be deterministic: every node applies the same commands
 * in the same order and must reach the same state and result.
 */
export interface StateMachine<C = unknown, R = unknown, Q = unknown, A = unknown> {
  /** Applies one committed command; the result settles the proposer's promise. A throw rejects it. */
  apply(command: C, entry: Entry): R;
  /** The whole state, as plain data the node may keep and store; must not be mutated afterwards. */
  snapshot(): unknown;
  /** Replaces the whole state with one made by `snapshot()` (on start, or when a leader sends one). */
  restore(data: unknown): void;
  /** Answers a linearizable read (see {@link RaftNode.read}); without it reads resolve undefined. */
  query?(query: Q): A;
}

/** Options of {@link RaftNode}. Durations are in ms; election and heartbeat timing is in ticks. */
export interface RaftNodeOptions<C = unknown, R = unknown, Q = unknown, A = unknown> {
  id: NodeId;
  /** Initial voters of a new cluster, including `id`; ignored when storage already holds state. Empty: wait to be added. */
  voters: NodeId[];
  storage: Storage;
  transport: Transport;
  stateMachine: StateMachine<C, R, Q, A>;
  /** One tick, default 100 ms. */
  tickMs?: number;
  /** Default 10 ticks; each election timeout is drawn from [electionTicks, 2·electionTicks) ticks. */
  electionTicks?: number;
  /** Default 1 tick. */
  heartbeatTicks?: number;
  /**
   * Compact the log once this many entries were applied since the last snapshot; default 10 000. With a
   * storage that reports its sizes (`Storage.sizes`, e.g. FileStorage), also wait until the log written since
   * the last snapshot is at least as large as that snapshot (Raft thesis §5.1.1): a snapshot writes the
   * whole state, so for a large state a fixed entry count would spend most of the disk and CPU on
   * snapshots; with the size rule their cost stays proportional to the log, whatever the state's size.
   */
  snapshotEvery?: number;
  /** Proposals, reads, membership changes and transfers fail with {@link TimeoutError} after this; default 5 election timeouts. */
  proposalTimeoutMs?: number;
  /** Default true: a follower forwards proposals to the leader; false: they reject with {@link NotLeaderError}. */
  forwardProposals?: boolean;
  /**
   * Default true: a leader sends a Ready's appends and applies its committed entries while that Ready is
   * being written (Raft thesis §10.2.1), in the cases {@link mayOverlapWrite} allows, so its own fsync
   * overlaps the followers' and clients are answered without waiting for it. False: everything waits for the
   * write, as the core's contract states in general.
   */
  parallelWrite?: boolean;
  /** Default: the host's global timers. */
  timers?: Timers;
  /** Randomness for election timeouts (default Math.random). */
  random?: () => number;
  /** How many applied proposal ids are remembered for deduplication; default 100 000. */
  dedupWindow?: number;
  /**
   * How {@link RaftNode.read} confirms leadership by default: `'index'` (default) a ReadIndex round,
   * `'lease'` a lease when one is held (see {@link RaftNode.read} for the clock assumption).
   */
  readMode?: 'index' | 'lease';
  /**
   * Lease reads: how far the clocks of two nodes may drift apart during one election timeout, plus the
   * one-way delay of a heartbeat response, in ms. The lease is shortened by this much. Default 2 ticks.
   */
  clockDriftBoundMs?: number;
}

/** Per-call options of {@link RaftNode.read}. */
export interface ReadOptions {
  /** true: serve from a lease when one is held; false: always ReadIndex. Default: the node's `readMode`. */
  lease?: boolean;
}

/** The events of a {@link RaftNode}, with their listeners' signatures. */
export interface RaftNodeEventMap<C = unknown, R = unknown> {
  /** A node joined the configuration (initial voters at bootstrap, `addVoter`, `addLearner`), when applied. */
  join: (node: NodeId, as: 'voter' | 'learner') => void;
  /** A node was removed from the configuration, when applied. */
  leave: (node: NodeId) => void;
  /** This node became leader. */
  leader: (term: number) => void;
  /** This node became candidate (after a successful pre-vote, when pre-vote is on). */
  candidate: (term: number) => void;
  /** This node became follower; `leader` is the known leader, if any. */
  follower: (term: number, leader: NodeId | null) => void;
  /** The role or the known leader changed. */
  'state changed': (role: Role, leader: NodeId | null, term: number) => void;
  /** This follower heard no leader for an election timeout and started campaigning. */
  'heartbeat timeout': (term: number) => void;
  /** This node started an election in `term` (it voted for itself). */
  'start election': (term: number) => void;
  /** A command was applied, with the state machine's result. */
  apply: (command: C, result: R, entry: Entry) => void;
  /** A Ready applied entries; `applied` is the new applied index. */
  updated: (applied: number) => void;
  /**
   * The state machine was replaced by a snapshot (at start, or sent by the leader) taken at log `index`,
   * whose entry was written in `term` (last, so listeners written for `(index)` keep working).
   */
  refresh: (index: number, term: number) => void;
  /** A storage failure (the node stops), or a listener's bug. */
  error: (error: unknown) => void;
}

/** {@link RaftNode.status}: the core's status plus the node's own counters. */
export interface RaftNodeStatus extends RaftStatus {
  /** Storage saves made by this node (one per Ready that had something to persist). */
  saves: number;
  pendingProposals: number;
  pendingReads: number;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
  timer: TimerHandle;
}

interface PendingProposal<R> extends Waiter<R> {
  id: string;
  command: unknown;
  /** Term of the local `propose` that put it in our own log as leader; -1 when not (forwarded or waiting). */
  localTerm: number;
  /** Tick count at the last attempt; -1 before the first. */
  triedAt: number;
}

interface PendingRead<A> extends Waiter<A> {
  query: unknown;
  /** The read index once the leader confirmed it; null until then. */
  index: number | null;
  triedAt: number;
}

interface PendingConf extends Waiter<void> {
  index: number;
  term: number;
}

/** A follower's membership change or transfer sent to the leader, until the leader answers. */
interface PendingConfForward extends Waiter<void> {
  id: string;
  request: { op: 'change'; changes: ConfChange[] } | { op: 'transfer'; target: NodeId };
  /** Tick count at the last send; -1 before the first. */
  triedAt: number;
}

/** How many answers to forwarded conf requests a leader keeps, to answer a retry with the same answer. */
const CONF_ANSWERS_KEPT = 256;
/** How many applied entries' terms are remembered, to settle a forwarded change the leader answered late. */
const RECENT_TERMS = 1024;

/** Rebuilds the typed error a leader refused a forwarded request with. */
function remoteError(e: NonNullable<ForwardConfRespMsg['error']>): RaftError {
  switch (e.name) {
    case 'NotLeaderError': return new NotLeaderError(e.leader ?? null, e.message);
    case 'ConfChangeError': return new ConfChangeError(e.message);
    case 'ProposalDroppedError': return new ProposalDroppedError(e.message);
    default: return new RaftError(e.message);
  }
}

let incarnations = 0;

/**
 * A nonce that differs for every RaftNode instance, even one restarted in the same millisecond in the same
 * process (a counter) or on another machine (random bits), so proposal ids never collide with a previous
 * run's, which deduplication would silently swallow. Not taken from the `random` option: tests fix that.
 */
function incarnation(): string {
  const bytes = new Uint32Array(2);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else { bytes[0] = Math.random() * 2 ** 32; bytes[1] = Math.random() * 2 ** 32; }
  return `${Date.now().toString(36)}${bytes[0]!.toString(36)}${bytes[1]!.toString(36)}${(++incarnations).toString(36)}`;
}

/** A Raft node with timers, storage, transport and a state machine. See the module comment. */
export class RaftNode<C = unknown, R = unknown, Q = unknown, A = unknown>
  extends TypedEmitter<RaftNodeEventMap<C, R>> {
  readonly id: NodeId;
  private readonly opts: RaftNodeOptions<C, R, Q, A>;
  private readonly timers: Timers;
  private readonly tickMs: number;
  private readonly electionTicks: number;
  private readonly timeoutMs: number;
  private readonly snapshotEvery: number;
  private readonly forward: boolean;
  private readonly leaseDefault: boolean;
  /** How long a follower's heartbeat response keeps counting toward the lease; ≤ 0 disables leases. */
  private readonly leaseMs: number;

  private core: RaftCore | null = null;
  private state: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  private ticker: TimerHandle = null;
  private ticks = 0;
  /** The Ready loop's current run, awaited by `stop()` so storage is never closed under a save. */
  private loopRun: Promise<void> | null = null;
  /** `start()`'s work, awaited by `stop()` so storage is never closed under the initial load. */
  private startRun: Promise<void> | null = null;
  private looping = false;

  private currentTerm = 0;
  /** The snapshot being written, if any: one at a time, and `stop()` waits for it. */
  private compacting: Promise<void> | null = null;
  /** The hard state storage holds: what {@link mayOverlapWrite} compares a Ready with. */
  private durable: HardState | null = null;
  private role: Role = 'follower';
  private leaderId: NodeId | null = null;
  private applied = 0;
  private snapIndex = 0;
  private saves = 0;

  /** Unique per process start: ids from a restarted node must not collide with its earlier ones. */
  private readonly idPrefix: string;
  private seq = 0;
  private readonly appliedIds: AppliedIds;
  private readonly proposals = new Map<string, PendingProposal<R>>();
  private readonly reads = new Map<string, PendingRead<A>>();
  private readonly confs = new Map<number, PendingConf>();
  private readonly transfers = new Set<Waiter<void> & { to: NodeId }>();
  /** Proposals to forward, per leader, sent together in a microtask (one message per leader per turn). */
  private readonly forwardOutbox = new Map<NodeId, ForwardedProposal[]>();
  private forwardFlushQueued = false;
  /** Leader only: ids proposed in the current term and not yet applied, so repeated forwards add nothing. */
  private readonly proposedIds = new Map<string, number>();
  /** Follower: membership changes and transfers sent to the leader and not answered yet, by request id. */
  private readonly confForwards = new Map<string, PendingConfForward>();
  /** Leader: answers to forwarded conf requests, by request id, so a retry gets the same answer. */
  private readonly confAnswers = new Map<string, { term: number; resp: ForwardConfRespMsg }>();
  /** Terms of recently applied entries, at `index % RECENT_TERMS`, paired with their index. */
  private readonly recentTerms: Array<[number, number] | undefined> = [];
  /** Leader: when (on `timers.now()`) each peer last answered our Append/Heartbeat, and in which term. */
  private readonly heard = new Map<NodeId, { at: number; term: number }>();
  /** A term in which this node started a leadership transfer: no lease in it (the transfer bypasses leases). */
  private leaseBlockedTerm = -1;
  /** The latest term of an entry this node applied: a leader's commit index is current once it is its own term. */
  private appliedTerm = 0;

  constructor(options: RaftNodeOptions<C, R, Q, A>) {
    super();
    this.opts = options;
    this.id = options.id;
    this.timers = options.timers ?? realTimers;
    this.tickMs = options.tickMs ?? 100;
    this.electionTicks = options.electionTicks ?? 10;
    this.timeoutMs = options.proposalTimeoutMs ?? 5 * this.electionTicks * this.tickMs;
    this.snapshotEvery = options.snapshotEvery ?? 10_000;
    this.forward = options.forwardProposals ?? true;
    this.leaseDefault = options.readMode === 'lease';
    // Followers ignore campaigns until electionTicks ticks after they last heard us; ticks are quantized,
    // so the first of those can come right away: only electionTicks − 1 whole ticks are guaranteed.
    this.leaseMs = (this.electionTicks - 1) * this.tickMs - (options.clockDriftBoundMs ?? 2 * this.tickMs);
    this.appliedIds = new AppliedIds(options.dedupWindow);
    this.idPrefix = `${this.id}.${incarnation()}.`;
  }

  // ---- Life cycle ------------------------------------------------------------------------------------

  /** Loads storage, restores the state machine and the core, and starts ticking and receiving. */
  start(): Promise<void> {
    if (this.state !== 'new') return Promise.reject(new RaftError(`cannot start a node that is ${this.state}`));
    this.state = 'starting';
    this.startRun = this.boot();
    return this.startRun;
  }

  private async boot(): Promise<void> {
    const stored = await this.opts.storage.load();
    if (this.isStopped()) return;
    if (stored.snapshot) this.restoreSnapshot(stored.snapshot);
    this.core = new RaftCore({
      id: this.id,
      voters: this.opts.voters,
      electionTicks: this.electionTicks,
      heartbeatTicks: this.opts.heartbeatTicks ?? 1,
      ...(this.opts.random ? { random: this.opts.random } : {}),
      restore: {
        ...(stored.hardState ? { hardState: stored.hardState } : {}),
        entries: stored.entries,
        snapshot: stored.snapshot,
      },
    });
    this.currentTerm = stored.hardState?.term ?? 0;
    this.durable = stored.hardState ?? null;
    await this.opts.transport.start(this.handleMessage);
    if (this.isStopped()) return;
    this.state = 'running';
    this.ticker = this.timers.setInterval(this.handleTick, this.tickMs);
    this.kick();
  }

  /**
   * Stops the node: clears every timer, rejects whatever is pending with {@link StoppedError}, waits for
   * the Ready being handled (so storage is never closed under a save), then closes transport and storage.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const wasStarted = this.state !== 'new';
    this.state = 'stopped';
    if (this.ticker !== null) this.timers.clearInterval(this.ticker);
    this.ticker = null;
    const stopped = new StoppedError();
    for (const p of this.proposals.values()) this.settle(p, stopped);
    for (const r of this.reads.values()) this.settle(r, stopped);
    for (const c of this.confs.values()) this.settle(c, stopped);
    for (const t of this.transfers) this.settle(t, stopped);
    for (const f of this.confForwards.values()) this.settle(f, stopped);
    this.confForwards.clear();
    this.proposals.clear();
    this.reads.clear();
    this.confs.clear();
    this.transfers.clear();
    if (this.startRun) await this.startRun.catch(() => {});
    if (this.loopRun) await this.loopRun.catch(() => {});
    if (this.compacting) await this.compacting;
    if (wasStarted) await this.opts.transport.close();
    await this.opts.storage.close();
  }

  // ---- Client API ------------------------------------------------------------------------------------

  /**
   * Replicates `command` and resolves with the state machine's result once this node applied it. On a
   * follower the proposal is forwarded to the leader (unless `forwardProposals` is false: then it rejects
   * with {@link NotLeaderError}). Rejects with {@link TimeoutError} when no leader commits it in time.
   */
  propose(command: C): Promise<R> {
    if (command === null || command === undefined) return Promise.reject(new TypeError('command must not be null or undefined'));
    if (this.state !== 'running') return Promise.reject(new StoppedError(`the node is ${this.state}`));
    return new Promise<R>((resolve, reject) => {
      const id = this.nextId();
      const p: PendingProposal<R> = {
        id, command, localTerm: -1, triedAt: -1, resolve, reject,
        timer: this.timers.setTimeout(() => {
          if (this.proposals.delete(id)) reject(new TimeoutError('proposal', this.timeoutMs));
        }, this.timeoutMs),
      };
      this.proposals.set(id, p);
      this.submit(p);
    });
  }

  /**
   * A linearizable read (ReadIndex, Raft thesis §6.4): the leader confirms it is still leader with a
   * quorum's heartbeat, then this node waits until it applied the confirmed commit index and answers with
   * `stateMachine.query(query)`. Works on followers (the core asks the leader). No clock assumption.
   *
   * Lease read (`{ lease: true }`, or `readMode: 'lease'`; thesis §6.4.1): on the leader, when a quorum
   * (counting itself) answered its heartbeats or appends within the last
   * `(electionTicks − 1) · tickMs − clockDriftBoundMs`, the read is served from the local commit index
   * without any message. Elsewhere, or without a fresh lease, it falls back to ReadIndex. It rests on a
   * clock assumption: no other leader can be elected during the lease, because each follower that answered
   * ignores campaigns for an election timeout after hearing from the leader (the core's check-quorum lease
   * with pre-vote); this holds only while clocks drift apart by less than `clockDriftBoundMs` per lease
   * (which must also cover a response's one-way delay) and a process pause does not outlast the margin.
   * A node that started a leadership transfer in its term serves no lease read in that term (the transfer
   * makes the target campaign regardless of leases), and a `Timers` without `now()` never does.
   */
  read(query: Q, options: ReadOptions = {}): Promise<A> {
    if (this.state !== 'running') return Promise.reject(new StoppedError(`the node is ${this.state}`));
    const leaseIndex = (options.lease ?? this.leaseDefault) ? this.leaseReadIndex() : null;
    if (leaseIndex !== null && leaseIndex <= this.applied) {
      try {
        return Promise.resolve(this.answer(query));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return new Promise<A>((resolve, reject) => {
      const ctx = this.nextId();
      const r: PendingRead<A> = {
        query, index: null, triedAt: -1, resolve, reject,
        timer: this.timers.setTimeout(() => {
          if (this.reads.delete(ctx)) reject(new TimeoutError('read', this.timeoutMs));
        }, this.timeoutMs),
      };
      this.reads.set(ctx, r);
      // Under a lease the read index is known already: the read only waits for this node to apply it.
      if (leaseIndex !== null) r.index = leaseIndex;
      else this.submitRead(ctx, r);
    });
  }

  /**
   * The index a lease read may be served at, or null when this node holds no lease (see {@link read}):
   * it is the leader, its commit index is current (an entry of its term applied), no transfer started in
   * this term, and a quorum of the configuration (both halves when joint) answered it recently.
   */
  private leaseReadIndex(): number | null {
    const now = this.timers.now?.();
    if (now === undefined || this.leaseMs <= 0 || this.role !== 'leader') return null;
    const st = this.core!.status();
    if (st.role !== 'leader' || st.transferee !== null || this.leaseBlockedTerm === st.term) return null;
    if (this.appliedTerm !== st.term) return null;
    const fresh = (v: NodeId): boolean => {
      if (v === this.id) return true;
      const h = this.heard.get(v);
      return h !== undefined && h.term === st.term && now - h.at < this.leaseMs;
    };
    return isQuorum(st.conf, fresh) ? st.commit : null;
  }

  private answer(query: unknown): A {
    const sm = this.opts.stateMachine;
    return (sm.query ? sm.query(query as Q) : undefined) as A;
  }

  /** Adds `node` as a learner; resolves once the change is applied on this node (forwarded from a follower). */
  addLearner(node: NodeId): Promise<void> { return this.changeMembership([{ type: 'addLearner', node }]); }
  /** Adds `node` as a voter, or promotes a learner; see {@link changeMembership}. */
  addVoter(node: NodeId): Promise<void> { return this.changeMembership([{ type: 'addVoter', node }]); }
  /** Removes `node` from the cluster; see {@link changeMembership}. */
  removeNode(node: NodeId): Promise<void> { return this.changeMembership([{ type: 'remove', node }]); }

  /**
   * Proposes a membership change; several changes go through joint consensus. Resolves once the change is
   * applied on this node. On a follower the change is forwarded to the leader (a `ForwardConf`), unless
   * `forwardProposals` is false: then it rejects with {@link NotLeaderError}. Rejects with `ConfChangeError`
   * when the leader finds it invalid or another change in flight, {@link TimeoutError} when no leader takes
   * it in time.
   */
  changeMembership(changes: ConfChange[]): Promise<void> {
    if (this.state !== 'running') return Promise.reject(new StoppedError(`the node is ${this.state}`));
    let at: { index: number; term: number };
    try {
      at = this.core!.proposeConfChange(changes);
    } catch (err) {
      if (err instanceof NotLeaderError && this.forward) {
        return this.forwardConf({ op: 'change', changes: changes.map((c) => ({ type: c.type, node: c.node })) }, 'membership change');
      }
      return Promise.reject(err);
    }
    this.kick();
    return new Promise<void>((resolve, reject) => this.awaitConf(at, resolve, reject, null));
  }

  /**
   * Waits until the conf entry at `at` is applied here (`previous`: the forward's timer, replaced by a new
   * deadline now that the leader took the change). When the leader's answer came after this node applied
   * the entry, the entry's remembered term tells whether it was ours.
   */
  private awaitConf(at: { index: number; term: number }, resolve: () => void, reject: (e: unknown) => void, previous: TimerHandle): void {
    if (previous !== null) this.timers.clearTimeout(previous);
    if (at.index <= this.applied) {
      const seen = this.recentTerms[at.index % RECENT_TERMS];
      // Not remembered: applied long ago (or under a snapshot); the leader answered with it, so it was ours.
      if (seen === undefined || seen[0] !== at.index || seen[1] === at.term) resolve();
      else reject(new ProposalDroppedError('the membership change was overwritten by a new leader'));
      return;
    }
    const c: PendingConf = {
      ...at, resolve, reject,
      timer: this.timers.setTimeout(() => {
        if (this.confs.get(at.index) === c) { this.confs.delete(at.index); reject(new TimeoutError('membership change', this.timeoutMs)); }
      }, this.timeoutMs),
    };
    this.confs.set(at.index, c);
  }

  /** Sends a membership change or transfer to the leader; settled by its answer and the apply/leader change. */
  private forwardConf(request: PendingConfForward['request'], what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const id = this.nextId();
      const f: PendingConfForward = {
        id, request, triedAt: -1, resolve, reject,
        timer: this.timers.setTimeout(() => {
          if (this.confForwards.delete(id)) reject(new TimeoutError(what, this.timeoutMs));
        }, this.timeoutMs),
      };
      this.confForwards.set(id, f);
      this.sendConfForward(f);
    });
  }

  private sendConfForward(f: PendingConfForward): void {
    f.triedAt = this.ticks;
    const to = this.leaderId ?? this.core!.status().leader;
    if (to === null || to === this.id) return; // no leader known yet: retried on a later tick
    const base = { type: 'ForwardConf' as const, from: this.id, to, id: f.id };
    this.opts.transport.send(f.request.op === 'change'
      ? { ...base, op: 'change', changes: f.request.changes }
      : { ...base, op: 'transfer', target: f.request.target });
  }

  /**
   * Hands leadership to `to`; resolves once this node sees `to` as leader. On a follower the request is
   * forwarded to the leader (unless `forwardProposals` is false: {@link NotLeaderError}); the leader's
   * refusal (`ConfChangeError`: not a voter) comes back typed.
   */
  transferLeadership(to: NodeId): Promise<void> {
    if (this.state !== 'running') return Promise.reject(new StoppedError(`the node is ${this.state}`));
    try {
      this.core!.transferLeader(to);
    } catch (err) {
      if (err instanceof NotLeaderError && this.forward) {
        if (err.leader === to) return Promise.resolve();
        return this.waitTransfer(to, this.forwardConf({ op: 'transfer', target: to }, 'leadership transfer'));
      }
      return Promise.reject(err);
    }
    // The target campaigns with a flag that makes voters ignore their lease: ours is void for this term.
    if (to !== this.id) this.leaseBlockedTerm = this.currentTerm;
    if (to === this.id) return Promise.resolve();
    this.kick();
    return new Promise<void>((resolve, reject) => {
      const t: Waiter<void> & { to: NodeId } = {
        to, resolve, reject,
        timer: this.timers.setTimeout(() => {
          if (this.transfers.delete(t)) reject(new TimeoutError('leadership transfer', this.timeoutMs));
        }, this.timeoutMs),
      };
      this.transfers.add(t);
    });
  }

  /**
   * A forwarded transfer: done when this node sees `to` lead; the forward (leader's answer) only reports a
   * refusal, or the timeout when no leader took it. Either way the other waiter is dropped.
   */
  private waitTransfer(to: NodeId, forwarded: Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const t: Waiter<void> & { to: NodeId } = {
        to, resolve, reject,
        timer: null, // the forward carries the deadline
      };
      this.transfers.add(t);
      forwarded.catch((err: unknown) => {
        if (this.transfers.delete(t)) reject(err);
      });
    });
  }

  /** The core's status plus the node's counters. Throws {@link StoppedError} before `start()` completes. */
  status(): RaftNodeStatus {
    if (!this.core) throw new StoppedError('the node has not started');
    return { ...this.core.status(), saves: this.saves, pendingProposals: this.proposals.size, pendingReads: this.reads.size };
  }

  /** The leader this node knows of, or null. */
  get leader(): NodeId | null { return this.leaderId; }
  /** The current term as of the last Ready: cheaper than `status()` on a hot path. */
  get term(): number { return this.currentTerm; }
  /** Whether this node is the leader (as of its last Ready). */
  get isLeader(): boolean { return this.role === 'leader'; }

  // ---- Inputs: ticks and messages ---------------------------------------------------------------------

  private readonly handleTick = (): void => {
    if (this.state !== 'running') return;
    this.ticks++;
    this.core!.tick();
    this.retryPending();
    this.kick();
  };

  private readonly handleMessage = (m: WireMessage): void => {
    if (this.state !== 'running' || !this.core) return;
    if (isNodeMessage(m)) this.handleNodeMessage(m);
    else {
      // Only answers a follower sends to the leader of the same term after it reset its election timer
      // for that leader count toward the lease (a rejecting AppendResp may answer a stale term).
      if ((m.type === 'HeartbeatResp' || (m.type === 'AppendResp' && !m.reject)) && m.to === this.id && m.from !== this.id) {
        const now = this.timers.now?.();
        if (now !== undefined) this.heard.set(m.from, { at: now, term: m.term });
      }
      this.core.step(m);
    }
    this.kick();
  };

  private handleNodeMessage(m: NodeMessage): void {
    if (m.to !== this.id) return;
    if (m.type === 'Forward') this.handleForward(m);
    else if (m.type === 'ForwardConf') this.handleForwardConf(m);
    else this.handleForwardConfResp(m);
  }

  /**
   * A follower's membership change or transfer. A retry of a request answered in this term gets the same
   * answer: proposing the change again would be refused (one change at a time) or applied twice.
   */
  private handleForwardConf(m: ForwardConfMsg): void {
    if (this.role !== 'leader') return; // the follower retries once it knows the new leader
    const kept = this.confAnswers.get(m.id);
    if (kept && kept.term === this.currentTerm) { this.opts.transport.send(kept.resp); return; }
    const resp: ForwardConfRespMsg = { type: 'ForwardConfResp', from: this.id, to: m.from, id: m.id, index: 0, term: 0 };
    try {
      if (m.op === 'change') {
        const at = this.core!.proposeConfChange(m.changes);
        resp.index = at.index;
        resp.term = at.term;
      } else {
        this.core!.transferLeader(m.target);
        if (m.target !== this.id) this.leaseBlockedTerm = this.currentTerm;
      }
    } catch (err) {
      if (err instanceof NotLeaderError) return; // stepped down since the last Ready: the follower retries
      const e = err instanceof Error ? err : new RaftError(String(err));
      resp.error = { name: e.name, message: e.message.slice(0, 1024) };
    }
    this.confAnswers.set(m.id, { term: this.currentTerm, resp });
    if (this.confAnswers.size > CONF_ANSWERS_KEPT) this.confAnswers.delete(this.confAnswers.keys().next().value!);
    this.opts.transport.send(resp);
  }

  /** The leader's answer to one of our forwarded conf requests. */
  private handleForwardConfResp(m: ForwardConfRespMsg): void {
    const f = this.confForwards.get(m.id);
    if (!f) return; // answered already (a duplicate), timed out, or not ours
    this.confForwards.delete(m.id);
    if (m.error) { this.settle(f, remoteError(m.error)); return; }
    if (f.request.op === 'transfer') {
      // Started: `observeRole` settles the caller once `to` leads; keep the deadline running for it.
      const target = f.request.target;
      this.timers.clearTimeout(f.timer);
      const t = [...this.transfers].find((w) => w.to === target && w.timer === null);
      if (t) {
        t.timer = this.timers.setTimeout(() => {
          if (this.transfers.delete(t)) t.reject(new TimeoutError('leadership transfer', this.timeoutMs));
        }, this.timeoutMs);
      }
      return;
    }
    this.awaitConf({ index: m.index, term: m.term }, f.resolve, f.reject, f.timer);
  }

  /** Followers' proposals: each is proposed unless applied already or already in our log this term. */
  private handleForward(m: ForwardMsg): void {
    if (m.to !== this.id || this.role !== 'leader') return;
    for (const f of m.proposals) {
      if (this.appliedIds.has(f.id) || this.proposedIds.get(f.id) === this.currentTerm) continue;
      try {
        const at = this.core!.propose({ pid: f.id, cmd: f.command } satisfies ProposalData);
        this.proposedIds.set(f.id, at.term);
      } catch {
        return; // not leader after all, or a transfer in progress: the followers retry
      }
    }
  }

  private queueForward(leader: NodeId, p: PendingProposal<R>): void {
    let batch = this.forwardOutbox.get(leader);
    if (!batch) this.forwardOutbox.set(leader, (batch = []));
    batch.push({ id: p.id, command: p.command });
    if (this.forwardFlushQueued) return;
    this.forwardFlushQueued = true;
    queueMicrotask(this.handleForwardFlush);
  }

  private readonly handleForwardFlush = (): void => {
    this.forwardFlushQueued = false;
    if (this.state !== 'running') { this.forwardOutbox.clear(); return; }
    for (const [to, batch] of this.forwardOutbox) {
      for (let i = 0; i < batch.length; i += MAX_FORWARD_BATCH) {
        this.opts.transport.send({ type: 'Forward', from: this.id, to, proposals: batch.slice(i, i + MAX_FORWARD_BATCH) });
      }
    }
    this.forwardOutbox.clear();
  };

  // ---- Proposals and reads ----------------------------------------------------------------------------

  private nextId(): string {
    return this.idPrefix + (++this.seq).toString(36);
  }

  /** Puts a proposal in our log when leader, or forwards it to the leader; retried by `retryPending`. */
  private submit(p: PendingProposal<R>): void {
    p.triedAt = this.ticks;
    const core = this.core!;
    try {
      const at = core.propose({ pid: p.id, cmd: p.command } satisfies ProposalData);
      p.localTerm = at.term;
      this.proposedIds.set(p.id, at.term);
      this.kick();
    } catch (err) {
      p.localTerm = -1;
      if (err instanceof NotLeaderError) {
        if (!this.forward) { this.proposals.delete(p.id); this.settle(p, err); return; }
        if (err.leader !== null) this.queueForward(err.leader, p);
        return; // no leader yet: retried on a later tick
      }
      if (err instanceof ProposalDroppedError) return; // leadership transfer in progress: retried later
      this.proposals.delete(p.id);
      this.settle(p, err);
    }
  }

  private submitRead(ctx: string, r: PendingRead<A>): void {
    r.triedAt = this.ticks;
    try {
      this.core!.readIndex(ctx);
      this.kick();
    } catch (err) {
      if (err instanceof NotLeaderError) return; // no leader yet: retried on a later tick
      this.reads.delete(ctx);
      this.settle(r, err);
    }
  }

  /**
   * Retries what may have been lost. A proposal in our own log in the current term needs no retry (it
   * commits or the term changes); a forward or a read request may be lost by the network, so it is
   * repeated every election timeout. Duplicates are harmless: ids make them apply once.
   */
  private retryPending(force = false): void {
    const due = (triedAt: number): boolean => force || triedAt < 0 || this.ticks - triedAt >= this.electionTicks;
    for (const p of this.proposals.values()) {
      if (p.localTerm === this.currentTerm && this.role === 'leader') continue;
      if (due(p.triedAt)) this.submit(p);
    }
    for (const [ctx, r] of this.reads) if (r.index === null && due(r.triedAt)) this.submitRead(ctx, r);
    for (const f of this.confForwards.values()) if (due(f.triedAt)) this.sendConfForward(f);
  }

  private settle<T>(w: Waiter<T>, error: unknown, value?: T): void {
    this.timers.clearTimeout(w.timer);
    if (error !== undefined) w.reject(error);
    else w.resolve(value as T);
  }

  // ---- The Ready loop ---------------------------------------------------------------------------------

  /** Makes sure the loop runs; a no-op while it runs (it checks `hasReady()` again before it ends). */
  private kick(): void {
    if (this.looping || this.state !== 'running') return;
    this.looping = true;
    // A microtask, not a direct call: proposals made in one synchronous burst all land in one Ready.
    this.loopRun = new Promise<void>((resolve) => queueMicrotask(resolve)).then(this.runLoop);
  }

  private readonly runLoop = async (): Promise<void> => {
    try {
      while (this.state === 'running' && this.core!.hasReady()) await this.handleReady(this.core!.ready());
    } catch (err) {
      // A storage failure: the node can no longer promise durability, so it stops.
      this.emit('error', err);
      void this.stop();
    } finally {
      this.looping = false;
    }
  };

  /**
   * One Ready: persist, restore, then send, apply and answer reads, then `advance()`. Where
   * {@link mayOverlapWrite} allows it (a leader), sending and applying come first and the write finishes
   * behind them, so neither followers nor clients wait for this node's fsync.
   */
  private async handleReady(rd: Ready): Promise<void> {
    const core = this.core!;
    const overlap = this.opts.parallelWrite !== false && mayOverlapWrite(rd, this.durable);
    const prevTerm = this.currentTerm;
    const appliedBefore = this.applied;
    if (rd.hardState) this.currentTerm = rd.hardState.term;
    if (overlap) this.deliver(rd);
    if (rd.hardState || rd.entries.length > 0 || rd.snapshot) {
      await this.opts.storage.save({ hardState: rd.hardState, snapshot: rd.snapshot, entries: rd.entries });
      this.saves++;
      if (rd.hardState) this.durable = rd.hardState;
    }
    // Stopped during the save: nothing of this Ready may leave the node any more.
    if (this.isStopped()) return;
    if (!overlap) {
      if (rd.snapshot) this.restoreSnapshot(rd.snapshot);
      this.deliver(rd);
    }
    core.advance();
    if (this.applied > appliedBefore) {
      this.serveReads();
      this.emit('updated', this.applied);
    }
    this.observeRole(rd, prevTerm);
    if (!this.compacting && this.compactionDue()) this.compacting = this.compact();
  }

  /** Sends a Ready's messages (first: followers need not wait for our state machine), applies, answers reads. */
  private deliver(rd: Ready): void {
    for (const m of rd.messages) this.opts.transport.send(m);
    for (const e of rd.committed) this.applyEntry(e);
    for (const rs of rd.readStates) this.handleReadState(rs);
  }

  private applyEntry(e: Entry): void {
    this.applied = e.index;
    this.appliedTerm = e.term;
    this.recentTerms[e.index % RECENT_TERMS] = [e.index, e.term];
    if (e.type === 'conf') { this.applyConf(e); return; }
    if (e.data === null) return; // a new leader's empty entry (Raft §5.4.2)
    const envelope = isProposalData(e.data) ? e.data : null;
    const command = (envelope ? envelope.cmd : e.data) as C;
    if (envelope) {
      if (this.appliedIds.has(envelope.pid)) return; // a retry or duplicated forward: applied once already
      this.appliedIds.add(envelope.pid);
      this.proposedIds.delete(envelope.pid);
    }
    const pending = envelope ? this.proposals.get(envelope.pid) : undefined;
    if (pending) this.proposals.delete(pending.id);
    let result: R;
    try {
      result = this.opts.stateMachine.apply(command, e);
    } catch (err) {
      // Deterministic on every node: the command is refused everywhere, and its proposer learns why.
      if (pending) this.settle(pending, err);
      return;
    }
    this.emit('apply', command, result, e);
    if (pending) this.settle(pending, undefined, result);
  }

  private applyConf(e: Entry): void {
    const data = e.data as ConfEntryData;
    if (data.op === 'bootstrap') for (const v of data.voters) this.emit('join', v, 'voter');
    else if (data.op === 'change') {
      for (const ch of data.changes) {
        if (ch.type === 'remove') this.emit('leave', ch.node);
        else this.emit('join', ch.node, ch.type === 'addVoter' ? 'voter' : 'learner');
      }
    }
    const c = this.confs.get(e.index);
    if (c) {
      this.confs.delete(e.index);
      // Another entry at our index means ours was overwritten by a new leader.
      if (c.term === e.term) this.settle(c, undefined);
      else this.settle(c, new ProposalDroppedError('the membership change was overwritten by a new leader'));
    }
  }

  private handleReadState(rs: ReadState): void {
    const r = typeof rs.context === 'string' ? this.reads.get(rs.context) : undefined;
    if (r && r.index === null) r.index = rs.index;
    if (r) this.serveReads();
  }

  private serveReads(): void {
    for (const [ctx, r] of this.reads) {
      if (r.index === null || r.index > this.applied) continue;
      this.reads.delete(ctx);
      try {
        this.settle(r, undefined, this.answer(r.query));
      } catch (err) {
        this.settle(r, err);
      }
    }
  }

  /** Emits role events and resubmits pending work when the leader changed. */
  private observeRole(rd: Ready, prevTerm: number): void {
    const prevRole = this.role;
    const prevLeader = this.leaderId;
    if (rd.role === prevRole && rd.leader === prevLeader && this.currentTerm === prevTerm) return;
    this.role = rd.role;
    this.leaderId = rd.leader;
    if (this.currentTerm !== prevTerm) this.proposedIds.clear();
    if (rd.role !== prevRole) {
      if (prevRole === 'follower' && (rd.role === 'pre-candidate' || rd.role === 'candidate')) this.emit('heartbeat timeout', this.currentTerm);
      if (rd.role === 'leader') this.emit('leader', this.currentTerm);
      else if (rd.role === 'candidate') this.emit('candidate', this.currentTerm);
      else if (rd.role === 'follower') this.emit('follower', this.currentTerm, rd.leader);
    }
    if (rd.role === 'candidate' && (prevRole !== 'candidate' || this.currentTerm !== prevTerm)) this.emit('start election', this.currentTerm);
    if (rd.role !== prevRole || rd.leader !== prevLeader) this.emit('state changed', rd.role, rd.leader, this.currentTerm);
    for (const t of this.transfers) {
      if (rd.leader === t.to) { this.transfers.delete(t); this.settle(t, undefined); }
    }
    // A forwarded transfer whose target leads already needs no answer from the old leader.
    for (const [id, f] of this.confForwards) {
      if (f.request.op === 'transfer' && f.request.target === rd.leader) { this.confForwards.delete(id); this.settle(f, undefined); }
    }
    // A new leader is known: what waited for one, or went to the old one, is sent again at once.
    if (rd.leader !== null && rd.leader !== prevLeader) this.retryPending(true);
  }

  private compactionDue(): boolean {
    if (this.applied - this.snapIndex < this.snapshotEvery) return false;
    const sizes = this.opts.storage.sizes?.();
    return sizes === undefined || sizes.logBytes >= sizes.snapshotBytes;
  }

  /**
   * Snapshots the state machine and hands it to storage without holding up the Ready loop: writing a
   * large state takes long, and storage keeps appending meanwhile. A failed write stops the node, as a
   * failed save does.
   */
  private async compact(): Promise<void> {
    const data: NodeSnapshotData = { state: this.opts.stateMachine.snapshot(), ids: this.appliedIds.toArray() };
    const snap = this.core!.compact(this.applied, data);
    this.snapIndex = snap.index;
    try {
      await this.opts.storage.compact(snap);
    } catch (err) {
      if (!this.isStopped()) { this.emit('error', err); void this.stop(); }
    } finally {
      this.compacting = null;
    }
  }

  /** Replaces the state machine with a snapshot's state (at start, or when the leader sent one). */
  private restoreSnapshot(snap: Snapshot): void {
    if (isNodeSnapshotData(snap.data)) {
      this.opts.stateMachine.restore(snap.data.state);
      this.appliedIds.reset(snap.data.ids);
    } else {
      this.opts.stateMachine.restore(snap.data);
    }
    this.applied = snap.index;
    this.appliedTerm = snap.term;
    this.snapIndex = snap.index;
    // Proposals the snapshot covers were applied elsewhere; their results are not known here.
    for (const p of this.proposals.values()) {
      if (this.appliedIds.has(p.id)) { this.proposals.delete(p.id); this.settle(p, undefined, undefined as R); }
    }
    this.emit('refresh', snap.index, snap.term);
  }

  private isStopped(): boolean {
    return this.state === 'stopped';
  }
}
