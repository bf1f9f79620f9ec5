/**
 * `RoomMembership`: drives a RaftNode's configuration from the mesh, so a room's Raft cluster is exactly
 * the peers that are in the room. The decisions are {@link planBootstrap}, {@link planMembership} and
 * {@link planHandOver} (pure); this module gathers what they need from the mesh and the node, and carries them out one at a
 * time with retries. See `docs/rtc-raft.md` for the whole story, including a room that loses its majority.
 *
 * - Peers tell each other where they stand with a small `RoomState` message on the Raft slot, when a channel
 *   opens and whenever it changes (`fresh`, `waiting`, `member`, `leaving`).
 * - A peer with no Raft state bootstraps a one-voter cluster only when {@link planBootstrap} says it is the
 *   founder; every other peer starts a node with no configuration and waits to be added.
 * - The leader adds each connected newcomer as a learner, promotes it once caught up, and removes members
 *   that left the room, announced they are leaving, or stayed unreachable past the grace period.
 * - {@link RoomMembership.leave}: a leader hands leadership to the most caught-up voter first; then the new
 *   leader removes it, and it closes.
 * - {@link RoomMembership.forceReset}: the explicit, unsafe way out for a survivor whose majority is gone.
 * @module
 */
import {
  RaftError, StoppedError, TypedEmitter, realTimers, type HardState, type NodeId, type NodeSnapshotData, type RaftNode,
  type RaftNodeStatus, type Snapshot, type Storage, type TimerHandle, type Timers, type Transport,
} from '@raftrtc/raft';
import {
  actionKey, planBootstrap, planHandOver, planMembership,
  type BootstrapDecision, type DownPeer, type MembershipAction, type MembershipView,
} from './membership-plan.js';
import {
  ROOM_STATE_TYPE, validateRoomState, type PeerDisconnectReason, type MeshHub, type RoomPeerState, type RoomStateMessage,
} from './mesh-link.js';
import { WebRtcTransport } from './webrtc-transport.js';

/** Thrown when a {@link RoomMembership} is used out of order (started twice, or after close). */
export class RoomMembershipStateError extends RaftError {}

/**
 * Storage that starts from `seed`: what a node made by {@link RoomMembership.forceReset} must be built on.
 * `inner` must be empty; on `load` the seed is written to it (so a restart finds it) and returned, with a
 * hard state whose commit index is the seed's. Every other call goes to `inner`.
 */
export function seededStorage(inner: Storage, seed: Snapshot): Storage {
  return {
    async load() {
      const held = await inner.load();
      if (held.hardState || held.snapshot || held.entries.length > 0) throw new RoomMembershipStateError('a seeded storage must start empty');
      const hardState: HardState = { term: seed.term, vote: null, commit: seed.index };
      await inner.save({ hardState, snapshot: seed, entries: [] });
      return { hardState, snapshot: seed, entries: [] };
    },
    save: (update) => inner.save(update),
    compact: (snapshot) => inner.compact(snapshot),
    close: () => inner.close(),
  };
}

/** How a failed configuration change is retried. */
export interface RetryOptions {
  /** First delay after a failure; doubled after each further failure. Default 100 ms. */
  initialMs?: number;
  /** Largest delay. Default 5 000 ms. */
  maxMs?: number;
  /** Failures of one change (same kind, same peer) before giving up on it until that peer reconnects, disconnects or the leader changes. Default 8. */
  maxAttempts?: number;
}

/** Options of {@link RoomMembership}. Durations in ms, on `timers`' clock. */
export interface RoomMembershipOptions<N extends RaftNode<unknown, unknown, unknown, unknown>> {
  /** This peer's id in the mesh, also its Raft node id. */
  id: NodeId;
  /** The mesh; create it before the mesh connects to signaling. */
  hub: MeshHub;
  /**
   * Makes this peer's RaftNode, not started, with `id`, the given `voters` and `transport`, and storage that
   * holds nothing yet or this peer's own earlier state. Called once, and again only to replace a node: when
   * a peer that waited to be added bootstraps after all (the first node never joined anything), and on
   * {@link RoomMembership.forceReset}. A replacement needs empty storage (a fresh `MemoryStorage`, or a new
   * database), and when `seed` is not null it must be `seededStorage(empty, seed)`.
   */
  createNode(init: { voters: NodeId[]; transport: Transport; seed: Snapshot | null }): N;
  /**
   * The room's other peers according to signaling when this peer joined, read after its own presence was
   * visible; null (default) when unknown, which makes a lone peer wait `bootstrapTimeoutMs` before it
   * bootstraps and can split a room whose members connect later than that. See {@link planBootstrap}.
   */
  peersAtJoin?: readonly NodeId[] | null;
  /** How long a member may stay unreachable before the leader removes it. Default 10 000. */
  graceMs?: number;
  /** Without `peersAtJoin`: how long a peer waits for the others before it bootstraps. Default 5 000. */
  bootstrapTimeoutMs?: number;
  /** How often the leader re-plans without an event (catch-up progress, grace periods). Default 100. */
  checkIntervalMs?: number;
  retry?: RetryOptions;
  /** How long {@link RoomMembership.leave} waits for the leader to remove this peer. Default 5 000. */
  leaveTimeoutMs?: number;
  /** The transport's bound on one received message; see {@link WebRtcTransport}. */
  maxMessageBytes?: number;
  /** Default: the host's timers (`realTimers`). */
  timers?: Timers;
}

/** What {@link RoomMembership.leave} achieved. */
export interface LeaveOutcome {
  /** The voter this peer handed leadership to, if it was leader and the transfer completed. */
  transferredTo: NodeId | null;
  /** Whether this peer saw itself removed from the configuration before closing. */
  removed: boolean;
}

/** The events of a {@link RoomMembership}. */
export interface RoomMembershipEventMap {
  /** This peer's own state changed (as announced to the others). */
  state: (state: RoomPeerState) => void;
  /** This peer founded the room's cluster (`reset`: again, alone, through {@link RoomMembership.forceReset}). */
  bootstrap: (reason: Extract<BootstrapDecision, { action: 'bootstrap' }>['reason'] | 'reset') => void;
  /** A configuration change this peer made as leader was applied, or (`transfer`) its successor leads. */
  change: (action: MembershipAction) => void;
  /** A change failed; it is retried after `retryInMs`, or not at all (null) until the peer's situation changes. */
  'change failed': (action: MembershipAction, error: unknown, retryInMs: number | null) => void;
  /** A bug in a listener, or a node that could not be made or started. */
  error: (error: unknown) => void;
}

/** Counters for metrics and tests. */
export interface RoomMembershipStats {
  /** RoomState messages refused: malformed, not addressed to us, or claiming another sender. */
  refused: number;
}

interface Failure { count: number; retryAt: number }

/** Drives a RaftNode's membership from the mesh; see the module comment. */
export class RoomMembership<N extends RaftNode<unknown, unknown, unknown, unknown> = RaftNode> extends TypedEmitter<RoomMembershipEventMap> {
  readonly id: NodeId;
  readonly stats: RoomMembershipStats = { refused: 0 };
  private readonly opts: RoomMembershipOptions<N>;
  private readonly hub: MeshHub;
  private readonly timers: Timers;
  private readonly graceMs: number;
  private readonly bootstrapTimeoutMs: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly maxAttempts: number;

  private phase: 'new' | 'running' | 'closed' = 'new';
  private current: N | null = null;
  private currentTransport: WebRtcTransport | null = null;
  /** The voters the current node was created with: `[]` means it may still bootstrap. */
  private createdWith: NodeId[] = [];
  /** Set while the node is being replaced: nothing may touch it meanwhile. */
  private replacing = false;
  private leaving = false;
  private joinedAt = 0;
  private ticker: TimerHandle = null;
  private evaluateQueued = false;
  private unsubscribe: Array<() => void> = [];
  private nodeUnsubscribe: Array<() => void> = [];
  /** What each connected peer last announced. */
  private readonly states = new Map<NodeId, RoomStateMessage>();
  private readonly down = new Map<NodeId, DownPeer>();
  private readonly failures = new Map<string, Failure>();
  private readonly gaveUp = new Set<string>();
  private inflight: Promise<void> | null = null;
  private announced = '';
  private ownState: RoomPeerState | null = null;
  /** Set by {@link leave} while it waits to see this peer removed. */
  private onRemoved: (() => void) | null = null;
  /** The peer a leaving leader handed leadership to. */
  private handedTo: NodeId | null = null;

  constructor(options: RoomMembershipOptions<N>) {
    super();
    this.opts = options;
    this.id = options.id;
    this.hub = options.hub;
    this.timers = options.timers ?? realTimers;
    this.graceMs = options.graceMs ?? 10_000;
    this.bootstrapTimeoutMs = options.bootstrapTimeoutMs ?? 5_000;
    this.retryInitialMs = options.retry?.initialMs ?? 100;
    this.retryMaxMs = options.retry?.maxMs ?? 5_000;
    this.maxAttempts = options.retry?.maxAttempts ?? 8;
  }

  /** The current RaftNode (null before {@link start} resolves). Replaced at most once; see `createNode`. */
  get node(): N | null {
    return this.current;
  }

  /** The current node's transport, for its counters (null before {@link start} resolves). */
  get transport(): WebRtcTransport | null {
    return this.currentTransport;
  }

  /** This peer's state as last announced (null before start). */
  get state(): RoomPeerState | null {
    return this.ownState;
  }

  /**
   * Listens to the mesh, decides whether to bootstrap, makes and starts the node. Resolves once the node
   * runs; joining the cluster happens afterwards (watch `state` for `member`).
   * @throws {RoomMembershipStateError} started twice, or `createNode` made a node with another id; or
   * whatever `createNode` or the node's start threw (the membership is closed then).
   */
  async start(): Promise<void> {
    if (this.phase !== 'new') throw new RoomMembershipStateError(`cannot start a room membership that is ${this.phase}`);
    this.phase = 'running';
    this.joinedAt = this.now();
    for (const p of this.hub.leftPeers()) this.down.set(p, { since: this.joinedAt, reason: 'left' });
    this.unsubscribe = [
      this.hub.on('connected', this.handleConnected),
      this.hub.on('disconnected', this.handleDisconnected),
      this.hub.on('room', this.handleRoomPayload),
    ];
    const first = planBootstrap(this.bootstrapView());
    try {
      await this.makeNode(first.action === 'bootstrap' ? [this.id] : []);
    } catch (err) {
      await this.close();
      throw err;
    }
    if (this.isClosed()) return;
    if (first.action === 'bootstrap') this.emit('bootstrap', first.reason);
    this.ticker = this.timers.setInterval(this.schedule, this.opts.checkIntervalMs ?? 100);
    this.announceAll(true);
    this.schedule();
  }

  /**
   * Leaves the room's cluster gracefully, then closes. It announces `leaving`, so nobody adds this peer
   * again or waits for it to bootstrap, and the leader removes it. As leader it hands over first
   * ({@link planHandOver}: a transfer to the most caught-up staying voter, promoting a learner first when
   * there is none, or removing itself when nobody can take over). It waits up to `leaveTimeoutMs` to see itself removed. Best effort: whatever fails, the others remove this
   * peer when its presence leaves or after the grace period.
   */
  async leave(): Promise<LeaveOutcome> {
    if (this.phase !== 'running' || this.leaving) {
      await this.close();
      return { transferredTo: null, removed: false };
    }
    this.leaving = true;
    this.announceAll(false);
    const node = this.current;
    let removed = false;
    if (node && !this.replacing) {
      const st = node.status();
      const alone = st.conf.voters.length === 1 && st.conf.voters[0] === this.id && st.conf.learners.length === 0;
      if (this.inConf(st) && !alone) removed = await this.waitRemoved();
    }
    await this.close();
    return { transferredTo: this.handedTo, removed };
  }

  /** Stops the node and stops listening, without telling anyone (like a closed page). */
  async close(): Promise<void> {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    if (this.ticker !== null) this.timers.clearInterval(this.ticker);
    this.ticker = null;
    this.onRemoved?.();
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    for (const off of this.nodeUnsubscribe) off();
    this.nodeUnsubscribe = [];
    await this.current?.stop();
  }

  // ---- The node ---------------------------------------------------------------------------------------

  private async makeNode(voters: NodeId[], seed: Snapshot | null = null): Promise<void> {
    const transport = new WebRtcTransport({ id: this.id, hub: this.hub, ...(this.opts.maxMessageBytes !== undefined ? { maxMessageBytes: this.opts.maxMessageBytes } : {}) });
    const node = this.opts.createNode({ voters, transport, seed });
    if (node.id !== this.id) throw new RoomMembershipStateError(`createNode made node ${node.id}, expected ${this.id}`);
    // Any change of role, leader or configuration may change what we announce or plan.
    this.nodeUnsubscribe = [
      node.on('join', this.schedule), node.on('leave', this.schedule), node.on('state changed', this.handleRoleChange),
    ];
    await node.start();
    // Closed while the node started: close() could not see it, so it is stopped here.
    if (this.isClosed()) { await node.stop(); return; }
    if (seed && node.status().applied !== seed.index) {
      await node.stop();
      throw new RoomMembershipStateError('createNode ignored the seed: build the node on seededStorage(empty storage, seed)');
    }
    // Only a started node has a status: until now every event handler saw no node and did nothing.
    this.current = node;
    this.currentTransport = transport;
    this.createdWith = voters;
  }

  /** A waiting peer founds the cluster after all: its node never joined anything, so it is replaced. */
  private async rebootstrap(reason: Extract<BootstrapDecision, { action: 'bootstrap' }>['reason']): Promise<void> {
    try {
      await this.replaceNode(null);
      if (!this.isClosed()) this.emit('bootstrap', reason);
    } catch (err) {
      // Without a node the membership can do nothing more: report it and stop.
      this.emit('error', err);
      await this.close();
    }
  }

  /** Stops the current node and makes a one-voter one (from `seed` when given); nothing touches either meanwhile. */
  private async replaceNode(seed: Snapshot | null): Promise<void> {
    this.replacing = true;
    try {
      for (const off of this.nodeUnsubscribe) off();
      this.nodeUnsubscribe = [];
      await this.current?.stop();
      if (this.isClosed()) return;
      await this.makeNode([this.id], seed);
    } finally {
      this.replacing = false;
      this.schedule();
    }
  }

  /**
   * **Unsafe; for a room whose majority is gone for good.** Makes this peer the only voter of a new cluster
   * that starts from `state` (the state machine's `snapshot()`, taken just before: without a majority
   * nothing is applied meanwhile), so the room can go on: the leader it becomes adds newcomers as usual.
   *
   * What it costs: entries the lost majority committed but this peer had not applied are gone, and so is the
   * node's duplicate filter (proposal ids). And if the lost peers were not gone after all (a network
   * partition, not closed pages) and come back still running, they keep their old cluster beside the new one:
   * the room is split and the two never merge. So call it only on the user's say-so, once the others'
   * presence left the room. Refused (typed) unless this peer is a member, running, not leaving, and no other
   * member of its configuration is connected.
   * @throws {RoomMembershipStateError} the conditions above; or createNode ignored the seed (the membership
   * is closed then).
   */
  async forceReset(state: unknown): Promise<void> {
    const node = this.current;
    if (this.phase !== 'running' || this.leaving || this.replacing || !node) {
      throw new RoomMembershipStateError('forceReset needs a running membership that is not leaving or replacing its node');
    }
    const st = node.status();
    if (!this.inConf(st)) throw new RoomMembershipStateError('forceReset needs a member: this peer is in no configuration');
    const others = [...new Set([...st.conf.voters, ...st.conf.learners, ...(st.conf.outgoing ?? [])])].filter((p) => p !== this.id);
    if (others.length === 0) throw new RoomMembershipStateError('forceReset has nothing to do: this peer is the whole cluster');
    const here = others.filter((p) => this.hub.isConnected(p));
    if (here.length > 0) throw new RoomMembershipStateError(`forceReset refused: ${here.join(', ')} still connected`);
    const data: NodeSnapshotData = { state, ids: [] };
    const seed: Snapshot = { index: st.applied, term: st.term, conf: { voters: [this.id], learners: [] }, data };
    try {
      await this.replaceNode(seed);
    } catch (err) {
      await this.close();
      throw err;
    }
    this.failures.clear();
    this.gaveUp.clear();
    if (!this.isClosed()) this.emit('bootstrap', 'reset');
  }

  // ---- Mesh events ------------------------------------------------------------------------------------

  private readonly handleConnected = (peer: NodeId): void => {
    this.down.delete(peer);
    this.forgetFailures(peer);
    this.sendState(peer);
    this.schedule();
  };

  private readonly handleDisconnected = (peer: NodeId, reason: PeerDisconnectReason): void => {
    const prev = this.down.get(peer);
    // A presence leave after the channel failed keeps the failure's time but says the peer is gone for good.
    this.down.set(peer, { since: prev?.since ?? this.now(), reason });
    this.states.delete(peer);
    this.forgetFailures(peer);
    this.schedule();
  };

  private readonly handleRoomPayload = (from: NodeId, payload: unknown): void => {
    const bad = validateRoomState(payload);
    const m = payload as RoomStateMessage;
    if (bad !== null || m.from !== from || m.to !== this.id) { this.stats.refused++; return; }
    this.states.set(from, m);
    this.schedule();
  };

  private readonly handleRoleChange = (): void => {
    // A new leader, or a new term: past failures say nothing about what the new leader can do.
    this.failures.clear();
    this.gaveUp.clear();
    this.schedule();
  };

  // ---- Deciding and acting ----------------------------------------------------------------------------

  /** Evaluates once in a microtask, however many events arrive in one turn. */
  private readonly schedule = (): void => {
    if (this.evaluateQueued || this.phase !== 'running') return;
    this.evaluateQueued = true;
    queueMicrotask(() => {
      this.evaluateQueued = false;
      try {
        this.evaluate();
      } catch (err) {
        this.emit('error', err);
      }
    });
  };

  private evaluate(): void {
    const node = this.current;
    if (this.phase !== 'running' || this.replacing || !node) return;
    const st = node.status();
    this.announceAll(false);
    if (this.leaving) {
      if (this.onRemoved && this.removedSeen(st)) this.onRemoved();
      else if (!this.inflight && st.role === 'leader') {
        const action = planHandOver(this.membershipView(st, this.now()));
        if (action) this.execute(node, action);
      }
      return;
    }
    if (this.ownState === 'fresh') {
      const d = planBootstrap(this.bootstrapView());
      if (d.action === 'bootstrap' && this.createdWith.length === 0) void this.rebootstrap(d.reason);
      return;
    }
    if (this.ownState !== 'member' || this.inflight || st.role !== 'leader') return;
    const now = this.now();
    this.trackUnseen(st, now);
    const action = planMembership(this.membershipView(st, now));
    if (action) this.execute(node, action);
  }

  private membershipView(st: RaftNodeStatus, now: number): MembershipView {
    const blocked = new Set(this.gaveUp);
    for (const [key, f] of this.failures) if (f.retryAt > now) blocked.add(key);
    return {
      self: this.id, now, status: st, connected: new Set(this.hub.connectedPeers()), states: this.peerStates(),
      down: this.down, graceMs: this.graceMs, blocked,
    };
  }

  /**
   * Whether a leaving peer is out of the configuration: its own shows it (it removed itself as leader), or a
   * peer announces that it leads a configuration without it (a follower never learns of its own removal).
   */
  private removedSeen(st: RaftNodeStatus): boolean {
    if (!this.inConf(st)) return true;
    for (const [p, m] of this.states) {
      if (m.leader === p && m.state === 'member' && !m.voters.includes(this.id) && !m.learners.includes(this.id)) return true;
    }
    return false;
  }

  /**
   * Members the leader has no channel to and no record of (it learned of them from the log) count as down
   * from now; records of peers that are no longer members are dropped, so the map stays as small as the room.
   */
  private trackUnseen(st: RaftNodeStatus, now: number): void {
    const members = new Set([...st.conf.voters, ...st.conf.learners, ...(st.conf.outgoing ?? [])]);
    for (const m of members) {
      if (m !== this.id && !this.hub.isConnected(m) && !this.down.has(m)) this.down.set(m, { since: now, reason: 'unseen' });
    }
    for (const p of this.down.keys()) if (!members.has(p)) this.down.delete(p);
  }

  private execute(node: N, action: MembershipAction): void {
    const key = actionKey(action);
    const op = action.type === 'addLearner' ? node.addLearner(action.node)
      : action.type === 'promote' ? node.addVoter(action.node)
        : action.type === 'transfer' ? node.transferLeadership(action.node)
          : node.removeNode(action.node);
    this.inflight = op.then(
      () => {
        this.failures.delete(key);
        if (action.type === 'transfer') this.handedTo = action.node;
        this.emit('change', action);
      },
      (err: unknown) => {
        if (err instanceof StoppedError || this.isClosed()) return;
        const count = (this.failures.get(key)?.count ?? 0) + 1;
        if (count >= this.maxAttempts) {
          this.failures.delete(key);
          this.gaveUp.add(key);
          this.emit('change failed', action, err, null);
          return;
        }
        const delay = Math.min(this.retryMaxMs, this.retryInitialMs * 2 ** (count - 1));
        this.failures.set(key, { count, retryAt: this.now() + delay });
        this.emit('change failed', action, err, delay);
      },
    ).finally(() => {
      this.inflight = null;
      this.schedule();
    });
  }

  private forgetFailures(peer: NodeId): void {
    for (const key of [...this.failures.keys(), ...this.gaveUp]) {
      if (key.endsWith(`:${peer}`)) { this.failures.delete(key); this.gaveUp.delete(key); }
    }
  }

  /** Waits until {@link removedSeen} holds (checked by `evaluate`), or `leaveTimeoutMs` passes. */
  private waitRemoved(): Promise<boolean> {
    this.schedule();
    return new Promise<boolean>((resolve) => {
      const timer = this.timers.setTimeout(() => finish(false), this.opts.leaveTimeoutMs ?? 5_000);
      const finish = (removed: boolean): void => {
        this.timers.clearTimeout(timer);
        this.onRemoved = null;
        resolve(removed);
      };
      this.onRemoved = () => finish(!this.isClosed());
    });
  }

  // ---- Announcing -------------------------------------------------------------------------------------

  private inConf(st: RaftNodeStatus): boolean {
    const c = st.conf;
    return c.voters.includes(this.id) || c.learners.includes(this.id) || (c.outgoing ?? []).includes(this.id);
  }

  private computeState(st: RaftNodeStatus): RoomPeerState {
    if (this.leaving) return 'leaving';
    if (this.inConf(st) && !this.orphaned(st)) return 'member';
    return st.lastIndex === 0 ? 'fresh' : 'waiting';
  }

  /**
   * Whether this member was removed without learning it: a leader stops replicating to a member as soon as
   * it appends the change removing it, so a peer removed while unreachable still finds itself in its own
   * configuration (and a learner, which never campaigns, keeps believing in its old leader). It is orphaned
   * when a connected peer announces that it leads a configuration without us, and the leader we believe in
   * is that very peer, or nobody, or a peer that no longer says it leads. Saying `waiting` then lets that
   * leader add us back. A newly added peer may see this for a moment (the leader's announcement of the
   * change comes after its first append); that leader has us in its configuration already and adds nothing.
   */
  private orphaned(st: RaftNodeStatus): boolean {
    const ours = st.leader;
    const oursLeads = ours !== null && this.states.get(ours)?.leader === ours;
    for (const [p, m] of this.states) {
      if (m.leader !== p || m.state !== 'member' || m.voters.includes(this.id) || m.learners.includes(this.id)) continue;
      if (ours === null || ours === p || !oursLeads) return true;
    }
    return false;
  }

  private stateMessage(to: NodeId): RoomStateMessage | null {
    const node = this.current;
    if (!node || this.replacing) return null;
    const st = node.status();
    return {
      type: ROOM_STATE_TYPE, from: this.id, to, state: this.computeState(st), leader: st.leader,
      voters: [...st.conf.voters].sort(), learners: [...st.conf.learners].sort(),
    };
  }

  private sendState(peer: NodeId): void {
    const m = this.stateMessage(peer);
    if (m) this.hub.send(peer, m);
  }

  /** Sends our state to every connected peer when it changed since the last announcement (or when `force`). */
  private announceAll(force: boolean): void {
    const m = this.stateMessage('');
    if (!m) return;
    const signature = JSON.stringify([m.state, m.leader, m.voters, m.learners]);
    if (!force && signature === this.announced) return;
    this.announced = signature;
    for (const p of this.hub.connectedPeers()) this.hub.send(p, { ...m, to: p });
    if (m.state !== this.ownState) {
      this.ownState = m.state;
      this.emit('state', m.state);
    }
  }

  // ---- Views ------------------------------------------------------------------------------------------

  private peerStates(): Map<NodeId, RoomPeerState> {
    const out = new Map<NodeId, RoomPeerState>();
    for (const [p, m] of this.states) out.set(p, m.state);
    return out;
  }

  private bootstrapView(): Parameters<typeof planBootstrap>[0] {
    return {
      self: this.id, now: this.now(), joinedAt: this.joinedAt, timeoutMs: this.bootstrapTimeoutMs,
      peersAtJoin: this.opts.peersAtJoin ?? null, connected: new Set(this.hub.connectedPeers()), states: this.peerStates(),
      left: new Set([...this.down].filter(([, d]) => d.reason === 'left').map(([p]) => p)),
    };
  }

  private now(): number {
    return this.timers.now ? this.timers.now() : Date.now();
  }

  private isClosed(): boolean {
    return this.phase === 'closed';
  }
}
