/**
 * A deterministic cluster simulation in virtual time. Nodes run the RaftCore under a simulated network;
 * one seeded {@link Rng} decides every tick phase, delay, loss and election timeout, so a seed replays a
 * run exactly. It reads no clock and sets no timer, so it runs in unit tests and in a browser alike
 * (a visualizer calls {@link Simulation.step} from `requestAnimationFrame`).
 *
 * After every event the {@link InvariantChecker} has seen each Ready, so a safety violation throws at the
 * event that caused it.
 * @module
 */
import type { Message } from '../core/messages.js';
import type { ConfChange, Entry, NodeId, ReadState, Ready, Role, Snapshot } from '../core/types.js';
import { mayOverlapWrite } from '../core/parallel-write.js';
import { RaftCore } from '../index.js';
import { SimulationError, type RunInfo } from './errors.js';
import { EventQueue } from './event-queue.js';
import { InvariantChecker } from './invariants.js';
import { Network, type DropReason, type NetworkConfig } from './network.js';
import { Rng } from './rng.js';
import { SimNode, type NodeView, type ReadRecord } from './sim-node.js';
import { KvStateMachine, type StateMachine, type StateMachineFactory } from './state-machine.js';
import { DurableStore } from './storage.js';
import type { CoreConstructor, CoreLike, SimObserver } from './types.js';

/** Options of {@link Simulation}. */
export interface SimulationOptions<SM extends StateMachine = KvStateMachine> {
  seed: number;
  /** A node count (named n1, n2, …) or the node ids. */
  nodes: number | NodeId[];
  /** The initial voters; default all nodes. The others start with no configuration and wait to be added. */
  voters?: NodeId[];
  /** Default 10. */
  electionTicks?: number;
  /** Default 1. */
  heartbeatTicks?: number;
  /** Virtual milliseconds per tick; default 10. */
  tickMs?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /** Compact a node's log every this many applied entries; 0 (default) never. */
  snapshotEvery?: number;
  /**
   * Virtual milliseconds a Ready's write may take, drawn from [1, diskMs] per write; 0 (default): writes
   * are instantaneous. While a write is under way the node goes on stepping messages and ticks, as a real
   * node does, and a crash loses the write.
   */
  diskMs?: number;
  /**
   * Whether a leader sends a Ready's messages and applies its committed entries before that Ready's write
   * is durable, where {@link mayOverlapWrite} allows it (what `RaftNode` does). Default false. Meaningful
   * with `diskMs`.
   */
  parallelWrite?: boolean;
  network?: Partial<NetworkConfig>;
  /** The core under test; default `RaftCore`. */
  core?: CoreConstructor;
  /** Makes a node's state machine; default a {@link KvStateMachine}. */
  stateMachine?: StateMachineFactory<SM>;
  observer?: SimObserver;
  /** A name reported in errors; default `sim-<seed>`. */
  id?: string;
  /** The command that replays this run, reported in errors, e.g. `npm run chaos -- --seed 123`. */
  replay?: string;
}

/** What one {@link Simulation.step} did. */
export type StepResult =
  | { at: number; kind: 'tick'; node: NodeId }
  | { at: number; kind: 'written'; node: NodeId }
  | { at: number; kind: 'deliver'; message: Message }
  | { at: number; kind: 'drop'; message: Message; reason: DropReason };

type SimEvent<SM extends StateMachine> =
  | { kind: 'tick'; node: SimNode<SM>; incarnation: number }
  | { kind: 'deliver'; message: Message; from: SimNode<SM>; to: SimNode<SM>; fromIncarnation: number; toIncarnation: number }
  | { kind: 'written'; node: SimNode<SM>; incarnation: number; rd: Ready; term: number; delivered: boolean };

/** A core that still has a Ready after this many rounds in a row is taken to be stuck in a loop. */
const MAX_READY_ROUNDS = 10_000;

/** A Raft cluster in virtual time. See the module comment. */
export class Simulation<SM extends StateMachine = KvStateMachine> {
  readonly id: string;
  readonly seed: number;
  readonly network: Network;
  readonly invariants: InvariantChecker;
  /** Every node, voter or not, in the order given. */
  readonly nodeIds: readonly NodeId[];
  readonly voters: readonly NodeId[];
  readonly tickMs: number;
  /** Hooks for a visualizer or a trace; may be replaced at any time. */
  observer: SimObserver | undefined;

  private readonly rng: Rng;
  private readonly queue = new EventQueue<SimEvent<SM>>();
  private readonly nodes = new Map<NodeId, SimNode<SM>>();
  private readonly Core: CoreConstructor;
  private readonly makeMachine: StateMachineFactory<SM>;
  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly preVote: boolean | undefined;
  private readonly checkQuorum: boolean | undefined;
  private readonly snapshotEvery: number;
  private readonly diskMs: number;
  private readonly parallelWrite: boolean;
  private readonly replay: string | undefined;
  private clock = 0;

  constructor(options: SimulationOptions<SM>) {
    this.seed = options.seed;
    this.rng = new Rng(options.seed);
    this.id = options.id ?? `sim-${options.seed}`;
    this.replay = options.replay;
    const ids = typeof options.nodes === 'number' ? Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`) : [...options.nodes];
    if (ids.length === 0 || new Set(ids).size !== ids.length) throw new RangeError('nodes must be a non-empty list of distinct ids');
    this.nodeIds = ids;
    this.voters = options.voters ? [...options.voters] : ids;
    for (const v of this.voters) if (!ids.includes(v)) throw new RangeError(`voter ${v} is not a node`);
    this.tickMs = options.tickMs ?? 10;
    if (!Number.isInteger(this.tickMs) || this.tickMs < 1) throw new RangeError('tickMs must be a positive integer');
    this.electionTicks = options.electionTicks ?? 10;
    this.heartbeatTicks = options.heartbeatTicks ?? 1;
    this.preVote = options.preVote;
    this.checkQuorum = options.checkQuorum;
    this.snapshotEvery = options.snapshotEvery ?? 0;
    this.diskMs = options.diskMs ?? 0;
    if (!Number.isInteger(this.diskMs) || this.diskMs < 0) throw new RangeError('diskMs must be a non-negative integer');
    this.parallelWrite = options.parallelWrite ?? false;
    this.Core = options.core ?? RaftCore;
    // Without a factory SM is KvStateMachine (the type parameter's default), so the cast only names that.
    this.makeMachine = options.stateMachine ?? (() => new KvStateMachine() as unknown as SM);
    this.observer = options.observer;
    this.network = new Network(ids, options.network ?? {}, this.rng.fork());
    this.invariants = new InvariantChecker(() => this.runInfo());
    for (const id of ids) {
      const node = new SimNode<SM>(id, new DurableStore(), this.makeMachine(id));
      this.nodes.set(id, node);
    }
    // Every core exists before any Ready is handled, so no first message finds its receiver not yet started.
    for (const node of this.nodes.values()) this.start(node);
    for (const node of this.nodes.values()) this.settle(node);
  }

  /** Virtual time in milliseconds. */
  get now(): number {
    return this.clock;
  }

  /** Every node, in the order given. */
  get all(): NodeView<SM>[] {
    return [...this.nodes.values()];
  }

  /**
   * A random stream for the test's own choices (which node to crash, which command to send), derived from
   * the seed so that they replay with it. Each call forks a new stream; make forks in a fixed order.
   */
  fork(): Rng {
    return this.rng.fork();
  }

  /** A node by id. */
  node(id: NodeId): NodeView<SM> {
    return this.get(id);
  }

  // ---- Running ---------------------------------------------------------------------------------------

  /** Runs every event due within the next `ms` virtual milliseconds, then sets the clock to the end. */
  run(ms: number): void {
    const end = this.clock + ms;
    for (let ev = this.queue.peek(); ev !== undefined && ev.at <= end; ev = this.queue.peek()) this.process();
    this.clock = end;
  }

  /**
   * Runs until `pred` holds (checked before the first event and after each one) or `maxMs` have passed.
   * Returns whether `pred` held; the clock stops at the event that made it true.
   */
  runUntil(pred: () => boolean, maxMs: number): boolean {
    if (pred()) return true;
    const end = this.clock + maxMs;
    for (let ev = this.queue.peek(); ev !== undefined && ev.at <= end; ev = this.queue.peek()) {
      this.process();
      if (pred()) return true;
    }
    this.clock = end;
    return pred();
  }

  /** Runs the next event that does something (a stale tick of a crashed node does not); null when none is left. */
  step(): StepResult | null {
    while (this.queue.size > 0) {
      const result = this.process();
      if (result) return result;
    }
    return null;
  }

  // ---- Faults ----------------------------------------------------------------------------------------

  /** Crashes a node: all its in-memory state is lost and its in-flight messages will be discarded. */
  crash(id: NodeId): void {
    const node = this.get(id);
    if (!node.core) return;
    node.core = null;
    node.role = null;
    node.incarnation++;
    node.pending = [];
    node.writing = false;
    this.observer?.onCrash?.(id);
  }

  /**
   * Restarts a node from exactly what was durable (crashing it first if it is up). Its state machine is
   * rebuilt from the durable snapshot and replays the committed entries the core hands out again.
   */
  restart(id: NodeId): void {
    const node = this.get(id);
    this.crash(id);
    this.start(node, true);
    this.settle(node);
  }

  // ---- Client operations -----------------------------------------------------------------------------

  /** Proposes `data` on node `id`; returns what the core returns and throws what it throws. */
  propose(id: NodeId, data: unknown): { index: number; term: number } {
    const node = this.get(id);
    const result = this.up(node).propose(data);
    this.drain(node);
    return result;
  }

  /** Proposes `data` on the current {@link leader}; null when there is none. */
  proposeOnLeader(data: unknown): { leader: NodeId; index: number; term: number } | null {
    const leader = this.leader();
    if (leader === null) return null;
    return { leader, ...this.propose(leader, data) };
  }

  /** Proposes a membership change on node `id`; returns what the core returns and throws what it throws. */
  proposeConfChange(id: NodeId, changes: ConfChange[]): { index: number; term: number } {
    const node = this.get(id);
    const result = this.up(node).proposeConfChange(changes);
    this.drain(node);
    return result;
  }

  /** Asks leader `id` to hand leadership to `to`. */
  transferLeader(id: NodeId, to: NodeId): void {
    const node = this.get(id);
    this.up(node).transferLeader(to);
    this.drain(node);
  }

  /**
   * Asks node `id` for a linearizable read. When the core answers and the state machine has applied the
   * read point, `onServed` runs with the state machine; the node's `reads` records the progress.
   * Contexts identify reads by their JSON, so give each outstanding read a distinct one.
   */
  readIndex(id: NodeId, context: unknown, onServed?: (stateMachine: SM, index: number) => void): void {
    const node = this.get(id);
    this.up(node).readIndex(context);
    const key = JSON.stringify(context);
    const record: ReadRecord = { context, askedAt: this.clock, index: null, servedAt: null };
    node.reads.push(record);
    node.pending.push({ key, record, onServed });
    this.invariants.onReadRequest(id, key);
    this.drain(node);
  }

  /** The leader with the highest term among live nodes, or null. */
  leader(): NodeId | null {
    let best: NodeId | null = null;
    let bestTerm = -1;
    for (const node of this.nodes.values()) {
      const st = node.core?.status();
      if (st && st.role === 'leader' && st.term > bestTerm) {
        best = node.id;
        bestTerm = st.term;
      }
    }
    return best;
  }

  // ---- Events ----------------------------------------------------------------------------------------

  private process(): StepResult | null {
    const ev = this.queue.pop();
    if (!ev) return null;
    this.clock = ev.at;
    const e = ev.item;
    if (e.kind === 'written') {
      const node = e.node;
      if (node.incarnation !== e.incarnation || !node.core) return null;
      node.writing = false;
      this.finishReady(node, e.rd, e.term, e.delivered);
      this.settle(node);
      return { at: this.clock, kind: 'written', node: node.id };
    }
    if (e.kind === 'tick') {
      const node = e.node;
      if (node.incarnation !== e.incarnation || !node.core) return null;
      const core = node.core;
      this.guard(node, 'tick()', () => core.tick());
      this.queue.push(this.clock + this.tickMs, e);
      this.settle(node);
      return { at: this.clock, kind: 'tick', node: node.id };
    }
    const { message, from, to } = e;
    const reason: DropReason | null = from.incarnation !== e.fromIncarnation || to.incarnation !== e.toIncarnation || !to.core
      ? 'crashed'
      : this.network.obstacle(from.id, to.id);
    if (reason) {
      this.network.stats.countDropped(reason);
      this.observer?.onDrop?.(message, reason, this.clock);
      return { at: this.clock, kind: 'drop', message, reason };
    }
    const core = to.core as CoreLike;
    this.network.stats.countDelivered(to.id, message.type);
    this.observer?.onDeliver?.(message, this.clock);
    this.guard(to, `step(${message.type} from ${from.id})`, () => core.step(message));
    this.settle(to);
    return { at: this.clock, kind: 'deliver', message };
  }

  /** Handles a node's Readys after an event; if there were none, still checks its role (a core need not announce it). */
  private settle(node: SimNode<SM>): void {
    if (this.drain(node) > 0 || !node.core) return;
    const st = node.core.status();
    this.noteRole(node, st.role, st.term);
  }

  /** Builds a node's core and state machine from its durable store; the caller then handles its Readys. */
  private start(node: SimNode<SM>, restarted = false): void {
    node.incarnation++;
    const random = this.rng.fork();
    const voters = this.voters.includes(node.id) ? [...this.voters] : [];
    const restore = node.durable.empty ? undefined : node.durable.read();
    let core: CoreLike;
    try {
      core = new this.Core({
        id: node.id, voters, restore, electionTicks: this.electionTicks, heartbeatTicks: this.heartbeatTicks,
        preVote: this.preVote, checkQuorum: this.checkQuorum, random: () => random.next(),
      });
    } catch (err) {
      throw new SimulationError(`${node.id}: the core's constructor threw: ${String(err)}`, this.runInfo(), { cause: err });
    }
    node.core = core;
    node.stateMachine = this.makeMachine(node.id);
    node.applied = 0;
    node.appliedEntries = [];
    node.reads = [];
    node.pending = [];
    this.invariants.onStart(node.id, node.durable);
    if (restarted) this.observer?.onRestart?.(node.id);
    const snap = node.durable.snapshot;
    if (snap) this.restoreMachine(node, snap);
    this.queue.push(this.clock + 1 + this.rng.int(this.tickMs), { kind: 'tick', node, incarnation: node.incarnation });
  }

  // ---- Ready handling --------------------------------------------------------------------------------

  /** Handles Readys until the core has none, in the contract's order. Returns how many it handled. */
  private drain(node: SimNode<SM>): number {
    const core = node.core;
    if (!core) return 0;
    let rounds = 0;
    while (!node.writing && this.guard(node, 'hasReady()', () => core.hasReady())) {
      if (++rounds > MAX_READY_ROUNDS) throw new SimulationError(`${node.id}: hasReady() stayed true for ${MAX_READY_ROUNDS} Readys`, this.runInfo());
      const rd = this.guard(node, 'ready()', () => core.ready());
      const term = core.status().term;
      const early = this.parallelWrite && mayOverlapWrite(rd, node.durable.hardState);
      if (early) this.deliver(node, rd);
      const writes = rd.hardState !== null || rd.snapshot !== null || rd.entries.length > 0;
      if (this.diskMs > 0 && writes) {
        node.writing = true;
        this.queue.push(this.clock + 1 + this.rng.int(this.diskMs), { kind: 'written', node, incarnation: node.incarnation, rd, term, delivered: early });
        return rounds;
      }
      this.finishReady(node, rd, term, early);
    }
    return rounds;
  }

  /**
   * The rest of a Ready once its write is done, in the contract's order; `delivered`: its messages were
   * sent and its committed entries applied already, beside the write (`parallelWrite`).
   */
  private finishReady(node: SimNode<SM>, rd: Ready, term: number, delivered: boolean): void {
    const core = node.core as CoreLike;
    // 1. Persist.
    this.invariants.beforePersist(node.id, rd, term, node.durable);
    node.durable.persist(rd.hardState, rd.snapshot, rd.entries);
    this.invariants.afterPersist(node.id, rd, node.durable);
    this.noteRole(node, rd.role, term);
    // 2. Restore the state machine. 3-4. Apply and send.
    if (rd.snapshot) this.restoreMachine(node, rd.snapshot);
    if (!delivered) this.deliver(node, rd);
    // 5. Advance.
    this.guard(node, 'advance()', () => core.advance());
    this.maybeCompact(node, core);
  }

  private deliver(node: SimNode<SM>, rd: Ready): void {
    for (const e of rd.committed) this.apply(node, e);
    for (const rs of rd.readStates) this.answerRead(node, rs);
    for (const m of rd.messages) this.send(node, m);
  }

  private noteRole(node: SimNode<SM>, role: Role, term: number): void {
    this.invariants.onRole(node.id, role, term, node.durable);
    if (node.role === role && node.term === term) return;
    node.role = role;
    node.term = term;
    this.observer?.onRoleChange?.(node.id, role, term);
  }

  private restoreMachine(node: SimNode<SM>, snapshot: Snapshot): void {
    this.invariants.onRestore(node.id, snapshot);
    // A copy, as if read back from disk: the machine may keep and mutate what it is given.
    node.stateMachine.restore(JSON.parse(JSON.stringify(snapshot.data)));
    node.applied = snapshot.index;
    this.observer?.onRestore?.(node.id, snapshot);
    this.serveReads(node);
  }

  private apply(node: SimNode<SM>, e: Entry): void {
    this.invariants.onApply(node.id, e);
    node.stateMachine.apply(e);
    node.applied = e.index;
    node.appliedEntries.push(e);
    this.observer?.onApply?.(node.id, e);
    this.serveReads(node);
  }

  private answerRead(node: SimNode<SM>, rs: ReadState): void {
    const key = JSON.stringify(rs.context);
    this.invariants.onReadState(node.id, key, rs);
    const read = node.pending.find((r) => r.key === key && r.record.index === null);
    if (!read) return;
    read.record.index = rs.index;
    this.serveReads(node);
  }

  private serveReads(node: SimNode<SM>): void {
    if (node.pending.length === 0) return;
    node.pending = node.pending.filter((r) => {
      if (r.record.index === null || r.record.index > node.applied) return true;
      r.record.servedAt = this.clock;
      r.onServed?.(node.stateMachine, r.record.index);
      return false;
    });
  }

  private maybeCompact(node: SimNode<SM>, core: CoreLike): void {
    if (this.snapshotEvery <= 0 || node.applied - node.durable.snapIndex < this.snapshotEvery) return;
    const index = node.applied;
    const data = node.stateMachine.snapshot();
    const snap = this.guard(node, `compact(${index})`, () => core.compact(index, data));
    this.invariants.onCompact(node.id, snap);
    node.durable.compact(snap);
  }

  private send(node: SimNode<SM>, m: Message): void {
    const to = this.nodes.get(m.to);
    const sent = this.network.send(node.id, m, this.clock);
    if (sent.drop) {
      this.observer?.onSend?.(m, node.id, m.to, this.clock, null);
      this.observer?.onDrop?.(m, sent.drop, this.clock);
      return;
    }
    // `to` exists here: the network drops messages to unknown nodes.
    const target = to as SimNode<SM>;
    for (const d of sent.deliveries) {
      this.observer?.onSend?.(d.message, node.id, m.to, this.clock, d.at);
      this.queue.push(d.at, {
        kind: 'deliver', message: d.message, from: node, to: target,
        fromIncarnation: node.incarnation, toIncarnation: target.incarnation,
      });
    }
  }

  // ---- Helpers ---------------------------------------------------------------------------------------

  /** Runs a core call the simulation makes on its own, turning a throw into a SimulationError that names the run. */
  private guard<T>(node: SimNode<SM>, what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new SimulationError(`${node.id}: ${what} threw: ${err instanceof Error ? err.message : String(err)}`, this.runInfo(), { cause: err });
    }
  }

  private get(id: NodeId): SimNode<SM> {
    const node = this.nodes.get(id);
    if (!node) throw new SimulationError(`unknown node ${id}`, this.runInfo());
    return node;
  }

  private up(node: SimNode<SM>): CoreLike {
    if (!node.core) throw new SimulationError(`${node.id} is crashed`, this.runInfo());
    return node.core;
  }

  private runInfo(): RunInfo {
    return { simulation: this.id, seed: this.seed, now: this.clock, replay: this.replay };
  }
}
