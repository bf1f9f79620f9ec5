/**
 * webraft's API (`RaftInterface` / `NodeInstance`) over {@link RaftNode}, so code written for webraft runs
 * on this library's Raft. The application extends both classes as in webraft's README: `createInstance()`
 * returns its `NodeInstance` subclass, whose `write(payload)` sends a JSON-serialisable object to that peer
 * and which calls `gotData(payload)` with whatever the peer sent. Those two calls are the whole transport:
 * an internal {@link Transport} adapter routes RaftNode's messages through them, and every incoming payload
 * passes the shared codec's validation before the node sees it.
 *
 * Differences from webraft, all forced by running real Raft underneath:
 * - The cluster's first configuration is the set of addresses `join()`ed in the same turn of the event loop
 *   as the first `join()` (plus this node), sorted so every initial member writes the same bootstrap entry;
 *   `options.voters` overrides it (`[]`: a new node that waits to be added by the leader). Later `join` /
 *   `leave` calls are membership changes, carried out when *this* node is (or becomes) the leader.
 * - `apply` listeners get `(entry, index, cb)`; the next entry is emitted only after every listener called
 *   `cb()` for this one, so the persistence layer sees entries one at a time, in order. `cb(err)` re-emits
 *   the entry after one heartbeat. `updated` follows each completed `apply`.
 * - `refresh` is emitted with `(cb, state, index)` when RaftNode installs a snapshot (sent by the leader
 *   or found in storage at start): `state` is what {@link RaftInterface.getSnapshot} returned on the node
 *   that made it, as of log index `index`; no further `apply` is emitted until `cb()` is called. Entries
 *   the snapshot covers that its maker's app had not yet taken then follow as ordinary `apply` events.
 * - `propose(data)` resolves with the entry's index once this node's `apply` listeners took the entry.
 * @module
 */
import { RaftError } from '../core/errors.js';
import type { Role } from '../core/types.js';
import { decodeMessage } from '../node/codec.js';
import { TypedEmitter } from '../node/emitter.js';
import { StoppedError } from '../node/errors.js';
import { MemoryStorage } from '../node/memory-storage.js';
import type { WireMessage } from '../node/node-messages.js';
import { RaftNode, type StateMachine } from '../node/raft-node.js';
import type { Storage } from '../node/storage.js';
import { realTimers, type TimerHandle, type Timers } from '../node/timers.js';
import type { Transport } from '../node/transport.js';

/** A committed entry as webraft's `apply` listeners see it. */
export interface WebRaftEntry<C = unknown> {
  command: C;
  term: number;
  index: number;
}

/** The callback of an `apply` listener: call it once the entry is durable in the app's persistence layer. */
export type WebRaftApplyCallback = (error?: unknown) => void;
/** The callback of a `refresh` listener: call it once the state is reloaded (webraft passes term and index). */
export type WebRaftRefreshCallback = (term?: number, index?: number) => void;

/** The events of a {@link RaftInterface}, named as in webraft. */
export interface RaftInterfaceEventMap<C = unknown> {
  /** A node joined the configuration (when the change is applied; the initial members at bootstrap). */
  join: (address: string, as: 'voter' | 'learner') => void;
  /** A node left the configuration (when the change is applied). */
  leave: (address: string) => void;
  leader: (term: number) => void;
  candidate: (term: number) => void;
  follower: (term: number, leader: string | null) => void;
  'state changed': (role: Role, leader: string | null, term: number) => void;
  'heartbeat timeout': (term: number) => void;
  'start election': (term: number) => void;
  /** Persist `entry`, then call `cb()`; the next entry waits for it. */
  apply: (entry: WebRaftEntry<C>, index: number, cb: WebRaftApplyCallback) => void;
  /** `apply` completed for `index` on every listener. */
  updated: (index: number) => void;
  /** The node's state was replaced by a snapshot: reload the app's state, then call `cb()`. */
  refresh: (cb: WebRaftRefreshCallback, state: unknown, index: number) => void;
  error: (error: unknown) => void;
}

/** Options of {@link RaftInterface}; everything is optional, as webraft takes none. */
export interface RaftInterfaceOptions {
  /** Initial configuration; default this node plus the addresses joined before the node started. */
  voters?: string[];
  /** Raft's own log and votes; default a {@link MemoryStorage} (no durability across processes). */
  storage?: Storage;
  /**
   * The index the app's persistence layer already holds: entries at or below it are not emitted again
   * after a restart (RaftNode replays its log into a fresh state machine), nor is a `refresh` to an older
   * snapshot.
   */
  appliedIndex?: number;
  /** Default: the host's timers. Tests pass fake ones. */
  timers?: Timers;
  /** Randomness of election timeouts (default Math.random). */
  random?: () => number;
  /** Overrides of the timing derived from the getters (see {@link RaftInterface.heartbeatFrequency}). */
  tickMs?: number;
  electionTicks?: number;
  snapshotEvery?: number;
  proposalTimeoutMs?: number;
}

/** A payload from a peer that is not a well-formed message addressed from that peer to this node. */
export class WebRaftPayloadError extends RaftError {}

/**
 * One peer connection. Subclass it: implement {@link write}, and call {@link gotData} with every payload
 * the peer sends.
 */
export abstract class NodeInstance {
  readonly address: string;
  readonly raft: RaftInterface<any>;

  constructor(address: string, raft: RaftInterface<any>) {
    this.address = address;
    this.raft = raft;
  }

  /** Sends `payload` (a JSON-serialisable object; do not mutate it) to this peer. Must not throw for a dead peer. */
  abstract write(payload: unknown): void;

  /** Hands a payload received from this peer to Raft. */
  gotData(payload: unknown): void {
    this.raft.gotData(this.address, payload);
  }

  /** Called when the peer is `leave()`d; override to close the connection. */
  close(): void {}
}

/** What a snapshot holds: the app's state as of `index`, and the committed entries after it the app had not taken yet. */
interface WebRaftSnapshot<C> { state: unknown; index: number; entries: WebRaftEntry<C>[] }

type Job<C> =
  | { kind: 'apply'; entry: WebRaftEntry<C> }
  | { kind: 'refresh'; index: number; state: unknown };

interface Waiter { index: number; resolve: () => void; reject: (err: unknown) => void }

/**
 * The Raft side of webraft's API. Subclass it and implement {@link createInstance}. See the module comment
 * for how it maps onto {@link RaftNode}.
 */
export abstract class RaftInterface<C = unknown> extends TypedEmitter<RaftInterfaceEventMap<C>> {
  readonly address: string;
  private readonly options: RaftInterfaceOptions;
  private readonly instances = new Map<string, NodeInstance>();
  private readonly bootstrapPeers = new Set<string>();
  /** Membership wanted by this node's `join`/`leave` calls after start; the leader carries them out. */
  private readonly intents = new Map<string, 'join' | 'leave'>();
  private changing = false;
  private node: RaftNode<C, number> | null = null;
  private starting: Promise<void> | null = null;
  private stopped = false;
  private onMessage: ((m: WireMessage) => void) | null = null;
  /** The last snapshot RaftNode restored, picked up by its `refresh` event. */
  private restored: WebRaftSnapshot<C> | null = null;

  private readonly queue: Job<C>[] = [];
  private busy = false;
  /** The job the app is working on (its callbacks not all called yet). */
  private current: Job<C> | null = null;
  private pumping = false;
  /** Highest index the app has taken (its `apply`/`refresh` callbacks were called). */
  private done: number;
  private readonly waiters: Waiter[] = [];
  /** The pending re-emission of an entry whose apply callback failed; cleared by `stop()`. */
  private retry: TimerHandle = null;
  private readonly timers: Timers;

  constructor(address: string, options: RaftInterfaceOptions = {}) {
    super();
    this.address = address;
    this.options = options;
    this.done = options.appliedIndex ?? 0;
    this.timers = options.timers ?? realTimers;
  }

  /** Returns the connection to the peer at `address`. */
  abstract createInstance(address: string): NodeInstance;

  /** webraft's election timeout getter; RaftNode draws its own from `heartbeatTimeout` (see below). */
  get electionTimeout(): number { return Math.random() * 150 + 150; }
  /** Milliseconds between heartbeats: one RaftNode tick (`tickMs`), a heartbeat every tick. */
  get heartbeatFrequency(): number { return 100; }
  /**
   * Milliseconds without a leader before an election: `electionTicks = max(2, ceil(heartbeatTimeout /
   * heartbeatFrequency))`, and RaftNode draws each timeout from [electionTicks, 2·electionTicks) ticks.
   */
  get heartbeatTimeout(): number { return 200; }

  /** The state a snapshot carries to lagging nodes; override when the app's state lives in this process. */
  getSnapshot(): unknown { return null; }

  /** webraft's `listen(type, handler)`. */
  listen<K extends keyof RaftInterfaceEventMap<C>>(type: K, handler: RaftInterfaceEventMap<C>[K]): () => void {
    return this.on(type, handler);
  }

  /** webraft's `unlisten(type, handler)`. */
  unlisten<K extends keyof RaftInterfaceEventMap<C>>(type: K, handler: RaftInterfaceEventMap<C>[K]): void {
    this.off(type, handler);
  }

  /** Connects to `address` (through {@link createInstance}) and, once started, asks for it to be a member. */
  join(address: string): void {
    if (address === this.address || this.stopped) return;
    if (!this.instances.has(address)) this.instances.set(address, this.createInstance(address));
    if (!this.starting) {
      this.bootstrapPeers.add(address);
      // Joins made in the same turn form the initial configuration, so start at the end of the turn.
      if (this.bootstrapPeers.size === 1) queueMicrotask(() => { this.start().catch((err) => this.emit('error', err)); });
      return;
    }
    this.intents.set(address, 'join');
    this.reconcile();
  }

  /** Drops the connection to `address` and asks for it to be removed from the configuration. */
  leave(address: string): void {
    const inst = this.instances.get(address);
    this.instances.delete(address);
    inst?.close();
    if (address === this.address || this.stopped) return;
    this.bootstrapPeers.delete(address);
    if (!this.starting) return;
    this.intents.set(address, 'leave');
    this.reconcile();
  }

  /**
   * A payload received from `from`. Anything that is not a valid message from `from` to this node is
   * dropped (and reported as an `error` event with {@link WebRaftPayloadError}): a peer's garbage must not
   * reach Raft.
   */
  gotData(from: string, payload: unknown): void {
    let m: WireMessage;
    try {
      m = decodeMessage(typeof payload === 'string' ? payload : JSON.stringify(payload));
    } catch (err) {
      this.emit('error', new WebRaftPayloadError(`dropped a payload from ${from}`, { cause: err }));
      return;
    }
    if (m.from !== from || m.to !== this.address) {
      this.emit('error', new WebRaftPayloadError(`dropped a message from ${m.from} to ${m.to} received from ${from}`));
      return;
    }
    this.onMessage?.(m);
  }

  /** Replicates `data`; resolves with its index once this node's `apply` listeners took it. */
  async propose(data: C): Promise<number> {
    await this.start();
    const index = await this.node!.propose(data);
    // undefined: the entry was covered by a snapshot from the leader, so the refresh already took it.
    if (typeof index !== 'number') return this.done;
    await this.taken(index);
    return index;
  }

  /** Starts the node; `join()` does it by itself. Idempotent. */
  start(): Promise<void> {
    if (this.stopped) return Promise.reject(new StoppedError());
    if (!this.starting) this.starting = this.boot();
    return this.starting;
  }

  /** Stops the node and its timers; pending proposals reject with {@link StoppedError}. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const stopped = new StoppedError();
    for (const w of this.waiters.splice(0)) w.reject(stopped);
    this.queue.length = 0;
    this.current = null;
    if (this.retry !== null) { this.timers.clearTimeout(this.retry); this.retry = null; }
    if (this.starting) await this.starting.catch(() => {});
    await this.node?.stop();
  }

  /** The underlying node (for status, reads, transfers), once started. */
  get raftNode(): RaftNode<C, number> | null { return this.node; }

  // ---- RaftNode wiring ---------------------------------------------------------------------------------

  private async boot(): Promise<void> {
    const o = this.options;
    const tickMs = o.tickMs ?? this.heartbeatFrequency;
    const voters = o.voters ?? [this.address, ...this.bootstrapPeers].sort();
    const transport: Transport = {
      id: this.address,
      start: async (onMessage) => { this.onMessage = onMessage; },
      send: (m) => this.send(m),
      close: async () => { this.onMessage = null; },
    };
    const sm: StateMachine<C, number> = {
      apply: (command, entry) => {
        this.enqueue({ kind: 'apply', entry: { command, term: entry.term, index: entry.index } });
        return entry.index;
      },
      snapshot: () => this.snapshotData(),
      restore: (data) => { this.restored = data as WebRaftSnapshot<C>; },
    };
    const node = new RaftNode<C, number>({
      id: this.address, voters, storage: o.storage ?? new MemoryStorage(), transport, stateMachine: sm,
      tickMs,
      electionTicks: o.electionTicks ?? Math.max(2, Math.ceil(this.heartbeatTimeout / tickMs)),
      heartbeatTicks: 1,
      timers: this.timers,
      ...(o.random ? { random: o.random } : {}),
      ...(o.snapshotEvery !== undefined ? { snapshotEvery: o.snapshotEvery } : {}),
      ...(o.proposalTimeoutMs !== undefined ? { proposalTimeoutMs: o.proposalTimeoutMs } : {}),
    });
    this.node = node;
    node.on('join', (id, as) => this.emit('join', id, as));
    node.on('leave', (id) => this.emit('leave', id));
    node.on('leader', (term) => { this.emit('leader', term); this.reconcile(); });
    node.on('candidate', (term) => this.emit('candidate', term));
    node.on('follower', (term, leader) => this.emit('follower', term, leader));
    node.on('state changed', (role, leader, term) => this.emit('state changed', role, leader, term));
    node.on('heartbeat timeout', (term) => this.emit('heartbeat timeout', term));
    node.on('start election', (term) => this.emit('start election', term));
    node.on('refresh', (index) => {
      const snap = this.restored ?? { state: null, index, entries: [] };
      this.enqueue({ kind: 'refresh', index: snap.index, state: snap.state });
      for (const entry of snap.entries) this.enqueue({ kind: 'apply', entry });
    });
    // A membership change that failed (another in flight) is retried once something new was applied.
    node.on('updated', () => this.reconcile());
    node.on('error', (err) => this.emit('error', err));
    await node.start();
  }

  /** The transport's `send`: through the peer's NodeInstance; no connection means the message is lost, as Raft allows. */
  private send(m: WireMessage): void {
    const inst = this.instances.get(m.to);
    if (!inst) return;
    try {
      inst.write(m);
    } catch (err) {
      this.emit('error', err); // a Transport never throws into the node
    }
  }

  /** Carries out this node's join/leave wishes when it is leader, one membership change at a time. */
  private reconcile(): void {
    const node = this.node;
    if (!node || this.stopped || this.changing || !node.isLeader) return;
    let conf;
    try { conf = node.status().conf; } catch { return; }
    const members = new Set([...conf.voters, ...conf.learners]);
    for (const [address, want] of this.intents) {
      const change = want === 'join' && !conf.voters.includes(address) ? node.addVoter(address)
        : want === 'leave' && members.has(address) ? node.removeNode(address) : null;
      if (!change) { this.intents.delete(address); continue; }
      this.changing = true;
      change.then(
        () => { this.changing = false; this.reconcile(); },
        () => { this.changing = false; }, // not leader any more, or another change in flight: retried on the next `updated`/`leader`
      );
      return;
    }
  }

  /**
   * RaftNode snapshots right after applying, while the app may still be persisting queued entries, so the
   * app's state (`getSnapshot()`) can lag behind the snapshot's index. The snapshot therefore carries the
   * app's state at the index it really has, plus the entries after it: the receiver refreshes to the state
   * and is then given those entries as ordinary `apply` events.
   */
  private snapshotData(): WebRaftSnapshot<C> {
    let base: WebRaftSnapshot<C> = { state: this.getSnapshot() ?? null, index: this.done, entries: [] };
    for (const job of this.current ? [this.current, ...this.queue] : this.queue) {
      if (job.kind === 'refresh') base = { state: job.state, index: job.index, entries: [] };
      else if (job.entry.index > base.index) base.entries.push(job.entry);
    }
    return base;
  }

  // ---- The apply queue: one entry at a time to the app ---------------------------------------------------

  private enqueue(job: Job<C>): void {
    if (this.stopped) return;
    this.queue.push(job);
    this.pump();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.busy && this.queue.length > 0 && !this.stopped) this.run(this.queue.shift()!);
    } finally {
      this.pumping = false;
    }
  }

  private run(job: Job<C>): void {
    const index = job.kind === 'apply' ? job.entry.index : job.index;
    // Already in the app's persistence layer (a restart replays the log): skip it.
    if (index <= this.done) return;
    const event = job.kind === 'apply' ? 'apply' : 'refresh';
    const listeners = this.listenerCount(event);
    if (listeners === 0) { this.finish(job, index); return; }
    this.busy = true;
    this.current = job;
    let remaining = listeners;
    let failed = false;
    const cb = (error?: unknown): void => {
      if (failed || remaining === 0 || this.stopped) return;
      if (job.kind === 'apply' && error !== undefined && error !== null) {
        // webraft leaves retrying to the app; a failed callback is retried here too, so no entry is skipped.
        failed = true;
        this.emit('error', error);
        this.retry = this.timers.setTimeout(() => { this.retry = null; if (!this.stopped) this.run(job); }, this.options.tickMs ?? this.heartbeatFrequency);
        return;
      }
      if (--remaining === 0) { this.busy = false; this.current = null; this.finish(job, index); this.pump(); }
    };
    if (job.kind === 'apply') this.emit('apply', job.entry, index, cb);
    else this.emit('refresh', cb, job.state, index);
  }

  private finish(job: Job<C>, index: number): void {
    this.done = index;
    if (job.kind === 'apply') this.emit('updated', index);
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (w.index <= index) { this.waiters.splice(i, 1); w.resolve(); }
    }
  }

  private taken(index: number): Promise<void> {
    if (index <= this.done) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ index, resolve, reject }));
  }
}
