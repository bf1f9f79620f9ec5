/**
 * raftq's API (`Raftq`: a `dispatch` / `subscribe` event bus, a `persistAgent`) over {@link RaftNode}, so an
 * app written for raftq runs on this library's Raft: log replication with commit, not just the last
 * leader's data.
 *
 * The bus, as in raftq's README:
 * - Outgoing network events: subscribe to `voteRequest`, `voteResponse`, `syncData`, `dataResponse` and
 *   deliver each {@link RaftqMessage} to `message.destination`, where it is dispatched as respectively
 *   `voteRequestReceived`, `voteResponseReceived`, `dataReceived`, `dataResponseReceived`. The payload's
 *   `data` is our wire message; which event carries which message type:
 *   | event          | wire messages                                   | direction            |
 *   | `voteRequest`  | `PreVote`, `Vote`                               | candidate → voters   |
 *   | `voteResponse` | `PreVoteResp`, `VoteResp`                       | voter → candidate    |
 *   | `syncData`     | `Append`, `Heartbeat`, `Snapshot`, `TimeoutNow`, `ReadIndexResp`, `ForwardConfResp` | leader → followers |
 *   | `dataResponse` | `AppendResp`, `HeartbeatResp`, `ReadIndex`, `Forward`, `ForwardConf` | follower → leader |
 *   Any of the four `…Received` events accepts any wire message (routing is by the message, not the name);
 *   each is validated by the shared codec first, and garbage is logged and dropped, never thrown.
 * - Local events: dispatch `ackNode` ({@link RaftqNode}; `time: 0` means it left), `serviceStarted`
 *   (`{ node }`: starts this node), `replicateData` (the data to replicate), `serviceCrashed`. Subscribe to
 *   `log` (`{ message }`), `roleChanged` and `dataReplicated` (each applied datum, on every node).
 *
 * Membership, mapped onto Raft's: at `serviceStarted` a node with no persisted state bootstraps a cluster
 * of itself when no other node was acked (the first server of raftq's example), and otherwise waits to be
 * added (`voters: []`), because a cluster already runs; `{ node, voters }` gives the initial configuration
 * explicitly. `ackNode` on the leader adds the node as a voter (or removes it when `time` is 0), one change
 * at a time; every node remembers its acks, so a newly elected leader carries out the ones still pending.
 *
 * Timing: `heartbeat` is one RaftNode tick (a heartbeat every tick); `electionTicks =
 * max(2, round(minimumElectionTime / heartbeat))`; RaftNode draws each election timeout from
 * [electionTicks, 2·electionTicks) ticks, and the random draw is scaled so the range ends at
 * `maximumElectionTime` — capped at twice the minimum, RaftNode's widest range.
 *
 * Persistence: `persistAgent.persist(node, data)` receives Raft's whole durable state (`StorageState`:
 * hard state, snapshot, log after it), once per Ready that changed it, and must have stored it when its
 * promise resolves; `restore(node)` returns the last one, or undefined for a fresh start. The log is
 * compacted every `snapshotEvery` (default 1000) entries, which bounds what each call writes.
 * @module
 */
import { RaftError } from '../core/errors.js';
import type { Entry, NodeId, Role, Snapshot } from '../core/types.js';
import { decodeMessage } from '../node/codec.js';
import { StoppedError } from '../node/errors.js';
import type { WireMessage } from '../node/node-messages.js';
import { RaftNode, type StateMachine } from '../node/raft-node.js';
import type { Storage, StorageState, StorageUpdate } from '../node/storage.js';
import { realTimers, type Timers } from '../node/timers.js';
import type { Transport } from '../node/transport.js';

/** raftq's roles, with its numbers. A pre-candidate counts as a candidate. */
export const RaftRole = { CANDIDATE: 1, FOLLOWER: 2, LEADER: 3 } as const;
export type RaftRole = (typeof RaftRole)[keyof typeof RaftRole];

export type RaftNodeId = NodeId;

/** raftq's `RaftNode` (renamed: that name is this library's node class): an id and a liveness time, 0 when gone. */
export interface RaftqNode {
  id: RaftNodeId;
  time: number;
}

/** Events Raftq emits for the app to carry to another node. */
export type RaftqNetworkEvent = 'voteRequest' | 'voteResponse' | 'syncData' | 'dataResponse';
/** The events the app dispatches on the receiving node. */
export type RaftqReceivedEvent = 'voteRequestReceived' | 'voteResponseReceived' | 'dataReceived' | 'dataResponseReceived';
/** Every event name of the bus. */
export type RaftEventType =
  | RaftqNetworkEvent | RaftqReceivedEvent
  | 'serviceStarted' | 'serviceCrashed' | 'replicateData' | 'ackNode'
  | 'log' | 'roleChanged' | 'dataReplicated';

/** A message to carry from `source` to `destination`; `data` is the wire message (see the module comment). */
export interface RaftqMessage {
  type: RaftqNetworkEvent;
  source: RaftqNode;
  destination: RaftqNode;
  /** A sensible delivery timeout in ms (one heartbeat): a later delivery is of no use. */
  timeout: number;
  data: WireMessage;
}

export interface RaftqLog { message: string }
export interface RaftqRoleChange { role: RaftRole; previous: RaftRole; term: number; leader: RaftNodeId | null }
/** One replicated datum, applied on this node. */
export interface RaftqReplicated<D = unknown> { data: D; index: number; term: number }

/** What each subscribable event's listener receives. */
export interface RaftqEventMap<D = unknown> {
  voteRequest: RaftqMessage;
  voteResponse: RaftqMessage;
  syncData: RaftqMessage;
  dataResponse: RaftqMessage;
  log: RaftqLog;
  roleChanged: RaftqRoleChange;
  dataReplicated: RaftqReplicated<D>;
}

export type RaftqListener<T> = (message: T) => void | Promise<void>;
export type UnsubscribeFunc = () => void;

/** raftq's persistence hooks; `data` is a JSON-serialisable {@link StorageState}. */
export interface PersistAgent {
  persist(node: RaftqNode, data: StorageState): Promise<void>;
  restore(node: RaftqNode): Promise<StorageState | undefined>;
}

/** Options of {@link Raftq}: raftq's four, then this library's extras. */
export interface RaftqOptions {
  /** ms between the leader's heartbeats; default 100. */
  heartbeat?: number;
  /** ms; default 200. */
  minimumElectionTime?: number;
  /** ms; default 800 (RaftNode caps the range at twice the minimum). */
  maximumElectionTime?: number;
  persistAgent: PersistAgent;
  /** Entries between log compactions; default 1000. */
  snapshotEvery?: number;
  /** Default: the host's timers. Tests pass fake ones. */
  timers?: Timers;
  /** Randomness of election timeouts (default Math.random), before scaling to the range. */
  random?: () => number;
  proposalTimeoutMs?: number;
}

/** Invalid options. */
export class RaftqOptionsError extends RaftError {}
/** `persistAgent.restore` returned something that is not a persisted Raft state. */
export class RaftqPersistError extends RaftError {}

const NETWORK_EVENT: Record<WireMessage['type'], RaftqNetworkEvent> = {
  PreVote: 'voteRequest', Vote: 'voteRequest',
  PreVoteResp: 'voteResponse', VoteResp: 'voteResponse',
  Append: 'syncData', Heartbeat: 'syncData', Snapshot: 'syncData', TimeoutNow: 'syncData', ReadIndexResp: 'syncData',
  ForwardConfResp: 'syncData',
  AppendResp: 'dataResponse', HeartbeatResp: 'dataResponse', ReadIndex: 'dataResponse', Forward: 'dataResponse',
  ForwardConf: 'dataResponse',
};

const RECEIVED = new Set<string>(['voteRequestReceived', 'voteResponseReceived', 'dataReceived', 'dataResponseReceived']);

function toRaftRole(role: Role): RaftRole {
  return role === 'leader' ? RaftRole.LEADER : role === 'follower' ? RaftRole.FOLLOWER : RaftRole.CANDIDATE;
}

/** A {@link Storage} over a persistAgent: keeps the state in memory and hands all of it to `persist` on each change. */
class PersistAgentStorage implements Storage {
  private state: StorageState = { hardState: null, snapshot: null, entries: [] };
  constructor(private readonly agent: PersistAgent, private readonly node: RaftqNode) {}

  async load(): Promise<StorageState> {
    const d = await this.agent.restore(this.node);
    if (d === undefined || d === null) return structuredClone(this.state);
    const o = d as Partial<StorageState>;
    if (typeof o !== 'object' || !Array.isArray(o.entries) || o.hardState === undefined || o.snapshot === undefined) {
      throw new RaftqPersistError(`persistAgent.restore returned no Raft state for node ${this.node.id}`);
    }
    this.state = structuredClone({ hardState: o.hardState, snapshot: o.snapshot, entries: o.entries });
    return structuredClone(this.state);
  }

  async save(u: StorageUpdate): Promise<void> {
    const s = this.state;
    let entries = s.entries;
    let snapshot = s.snapshot;
    if (u.snapshot) { snapshot = u.snapshot; entries = []; }
    if (u.entries.length > 0) {
      const first = u.entries[0]!.index;
      const start = entries.length > 0 ? entries[0]!.index : (snapshot?.index ?? 0) + 1;
      entries = entries.slice(0, Math.max(0, first - start)).concat(u.entries);
    }
    this.state = { hardState: u.hardState ?? s.hardState, snapshot, entries };
    await this.persist();
  }

  async compact(snap: Snapshot): Promise<void> {
    const s = this.state;
    if (s.snapshot && snap.index <= s.snapshot.index) return;
    this.state = { hardState: s.hardState, snapshot: snap, entries: s.entries.filter((e: Entry) => e.index > snap.index) };
    await this.persist();
  }

  async close(): Promise<void> {}

  // A copy: the agent may keep the object (a Map-backed agent does) while the log moves on.
  private persist(): Promise<void> { return this.agent.persist(this.node, structuredClone(this.state)); }
}

/** raftq's `Raftq` over {@link RaftNode}. See the module comment. */
export class Raftq<D = unknown> {
  private readonly options: RaftqOptions;
  private readonly heartbeat: number;
  private readonly listeners = new Map<string, Set<RaftqListener<any>>>();
  /** Nodes acked by the app (time 0: left), and members learned from the configuration. */
  private readonly known = new Map<RaftNodeId, RaftqNode>();
  /** Acks not yet reflected in the configuration; the leader carries them out. */
  private readonly intents = new Map<RaftNodeId, 'add' | 'remove'>();
  private changing = false;
  private me: RaftqNode | null = null;
  private node: RaftNode<D, number> | null = null;
  private onMessage: ((m: WireMessage) => void) | null = null;
  private destroyed = false;
  private role: RaftRole = RaftRole.FOLLOWER;

  constructor(options: RaftqOptions) {
    const heartbeat = options.heartbeat ?? 100;
    const min = options.minimumElectionTime ?? 200;
    const max = options.maximumElectionTime ?? 800;
    if (!(heartbeat > 0) || !(min > 0) || !(max > min)) {
      throw new RaftqOptionsError('need heartbeat > 0 and 0 < minimumElectionTime < maximumElectionTime');
    }
    if (!options.persistAgent) throw new RaftqOptionsError('persistAgent is required');
    this.options = { ...options, minimumElectionTime: min, maximumElectionTime: max };
    this.heartbeat = heartbeat;
  }

  // ---- The bus ----------------------------------------------------------------------------------------

  /** Listens to an event of the bus; returns the function that stops listening. */
  subscribe<K extends keyof RaftqEventMap<D>>(type: K, listener: RaftqListener<RaftqEventMap<D>[K]>): UnsubscribeFunc {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => { set!.delete(listener); };
  }

  /** Starts this node: `message.node` is this node; `voters` optionally the initial configuration. */
  dispatch(type: 'serviceStarted', message: { node: RaftqNode; voters?: RaftNodeId[] }): Promise<void>;
  /** Records a node; `time: 0` means it left. On the leader, the configuration follows. */
  dispatch(type: 'ackNode', message: RaftqNode): Promise<void>;
  /** Replicates `message`; resolves once applied on this node (rejects like {@link RaftNode.propose}). */
  dispatch(type: 'replicateData', message: D): Promise<void>;
  /** The app is going down: logged, then the node is destroyed. */
  dispatch(type: 'serviceCrashed', message: { reason?: string }): Promise<void>;
  /** A message carried from another node's network event. */
  dispatch(type: RaftqReceivedEvent, message: RaftqMessage): Promise<void>;
  dispatch(type: RaftEventType, message: unknown): Promise<void>;
  async dispatch(type: RaftEventType, message: unknown): Promise<void> {
    if (RECEIVED.has(type)) { this.receive(type, message); return; }
    switch (type) {
      case 'serviceStarted': return this.start(message as { node: RaftqNode; voters?: RaftNodeId[] });
      case 'ackNode': this.ack(message as RaftqNode); return;
      case 'replicateData': return this.replicateData(message as D);
      case 'serviceCrashed':
        this.log(`service crashed: ${String((message as { reason?: unknown } | null)?.reason ?? 'no reason given')}`);
        return this.destroy();
      default:
        // The app's mistake, but dispatch is often called unawaited from a network handler: log, never throw.
        this.log(`dispatch: '${type}' cannot be dispatched`);
    }
  }

  // ---- Methods ------------------------------------------------------------------------------------------

  /** Replicates `data` through the leader; resolves once it is applied on this node. */
  async replicateData(data: D): Promise<void> {
    if (!this.node || this.destroyed) throw new StoppedError('raftq is not running: dispatch serviceStarted first');
    await this.node.propose(data);
  }

  getLeader(): RaftNodeId | null { return this.node?.leader ?? null; }
  getRole(): RaftRole { return this.role; }

  /** This node (the object given to `serviceStarted`; the app may set its `time`). */
  getNode(): RaftqNode {
    if (!this.me) throw new StoppedError('raftq has not started: dispatch serviceStarted first');
    return this.me;
  }

  /** The other nodes: those acked and alive, and every member of the configuration. */
  getFollowers(): RaftqNode[] {
    const out = new Map<RaftNodeId, RaftqNode>();
    for (const [id, n] of this.known) if (n.time !== 0) out.set(id, n);
    for (const id of this.members()) {
      if (!out.has(id)) {
        const n = this.known.get(id) ?? { id, time: Date.now() };
        this.known.set(id, n);
        out.set(id, n);
      }
    }
    if (this.me) out.delete(this.me.id);
    return [...out.values()];
  }

  /** Stops the node and clears its timers. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.node?.stop();
  }

  /** The underlying node (status, reads, transfers), once started. */
  get raftNode(): RaftNode<D, number> | null { return this.node; }

  // ---- Internals ----------------------------------------------------------------------------------------

  private async start(message: { node: RaftqNode; voters?: RaftNodeId[] }): Promise<void> {
    if (this.destroyed) throw new StoppedError('raftq was destroyed');
    if (this.me) throw new RaftError('raftq already started');
    this.me = message.node;
    const o = this.options;
    const min = o.minimumElectionTime!;
    const max = o.maximumElectionTime!;
    const electionTicks = Math.max(2, Math.round(min / this.heartbeat));
    // RaftNode waits electionTicks + floor(r·electionTicks) ticks; scaling r ends the range at the maximum.
    const spread = Math.max(0, Math.min(1, (max / this.heartbeat - electionTicks) / electionTicks));
    const random = o.random ?? Math.random;
    const acked = [...this.known.values()].filter((n) => n.time !== 0 && n.id !== this.me!.id);
    const voters = message.voters ?? (acked.length === 0 ? [this.me.id] : []);
    const transport: Transport = {
      id: this.me.id,
      start: async (onMessage) => { this.onMessage = onMessage; },
      send: (m) => this.send(m),
      close: async () => { this.onMessage = null; },
    };
    const sm: StateMachine<D, number> = {
      apply: (data, entry) => {
        this.last = { data, index: entry.index, term: entry.term };
        this.emit('dataReplicated', this.last);
        return entry.index;
      },
      snapshot: () => this.last,
      restore: (snap) => { this.last = snap as RaftqReplicated<D> | null; },
    };
    const node = new RaftNode<D, number>({
      id: this.me.id, voters, storage: new PersistAgentStorage(o.persistAgent, this.me), transport, stateMachine: sm,
      tickMs: this.heartbeat, electionTicks, heartbeatTicks: 1,
      timers: o.timers ?? realTimers,
      random: () => random() * spread,
      snapshotEvery: o.snapshotEvery ?? 1000,
      ...(o.proposalTimeoutMs !== undefined ? { proposalTimeoutMs: o.proposalTimeoutMs } : {}),
    });
    this.node = node;
    node.on('state changed', (role, leader, term) => {
      const next = toRaftRole(role);
      if (next !== this.role) {
        const previous = this.role;
        this.role = next;
        this.emit('roleChanged', { role: next, previous, term, leader });
      }
      this.log(`${role} in term ${term}, leader ${leader ?? 'unknown'}`);
      if (role === 'leader') this.reconcile();
    });
    node.on('join', (id, as) => { this.log(`${id} joined as ${as}`); });
    node.on('leave', (id) => { this.log(`${id} left`); });
    // A refresh replaced the state: the latest datum is announced again, as a node catching up needs it.
    node.on('refresh', () => { if (this.last) this.emit('dataReplicated', this.last); });
    node.on('updated', () => this.reconcile());
    node.on('error', (err) => this.log(`error: ${String(err)}`));
    await node.start();
    this.log(`started with ${voters.length === 0 ? 'no configuration (waiting to be added)' : `voters ${voters.join(',')}`}`);
  }

  /** The latest applied datum: the state machine's whole state, so a snapshot carries it. */
  private last: RaftqReplicated<D> | null = null;

  private ack(n: RaftqNode): void {
    if (typeof n !== 'object' || n === null || typeof n.id !== 'string' || n.id.length === 0) {
      this.log('ackNode: not a node');
      return;
    }
    if (this.me && n.id === this.me.id) return;
    this.known.set(n.id, { id: n.id, time: n.time });
    this.intents.set(n.id, n.time === 0 ? 'remove' : 'add');
    this.reconcile();
  }

  private receive(type: string, message: unknown): void {
    if (!this.node || this.destroyed) return; // not running: Raft retries
    const data = (message as { data?: unknown } | null)?.data;
    let m: WireMessage;
    try {
      m = decodeMessage(JSON.stringify(data ?? null));
    } catch (err) {
      this.log(`${type}: dropped a malformed message (${String(err)})`);
      return;
    }
    if (m.to !== this.me!.id) { this.log(`${type}: dropped a message for ${m.to}`); return; }
    this.onMessage?.(m);
  }

  private send(m: WireMessage): void {
    const type = NETWORK_EVENT[m.type];
    const destination = this.known.get(m.to) ?? { id: m.to, time: 0 };
    this.emit(type, { type, source: this.me!, destination, timeout: this.heartbeat, data: m });
  }

  private members(): RaftNodeId[] {
    try {
      const conf = this.node?.status().conf;
      return conf ? [...conf.voters, ...conf.learners] : [];
    } catch {
      return [];
    }
  }

  /** The leader turns acks into membership changes, one at a time (Raft allows no more). */
  private reconcile(): void {
    const node = this.node;
    if (!node || this.destroyed || this.changing || !node.isLeader) return;
    const members = new Set(this.members());
    for (const [id, want] of this.intents) {
      const change = want === 'add' && !members.has(id) ? node.addVoter(id)
        : want === 'remove' && members.has(id) ? node.removeNode(id) : null;
      if (!change) { this.intents.delete(id); continue; }
      this.changing = true;
      this.log(`${want === 'add' ? 'adding' : 'removing'} ${id}`);
      change.then(
        () => { this.changing = false; this.reconcile(); },
        (err: unknown) => { this.changing = false; this.log(`membership change for ${id} failed: ${String(err)}`); },
      );
      return;
    }
  }

  private log(message: string): void {
    this.emit('log', { message });
  }

  private emit<K extends keyof RaftqEventMap<D>>(type: K, message: RaftqEventMap<D>[K]): void {
    const set = this.listeners.get(type);
    if (!set) return;
    for (const l of [...set]) {
      try {
        // Listeners are often async network calls: a failure is theirs, Raft retries.
        const r = l(message);
        if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch(() => {});
      } catch {
        // A listener's bug must not break the node's loop.
      }
    }
  }
}
