/**
 * The cluster the page shows: a {@link Simulation} of five `RaftCore` nodes from `@raftrtc/raft/testing`,
 * whose virtual clock the page advances from animation frames. The simulation's observer feeds the
 * messages in flight (so they can be drawn moving), the client requests' fate and the event feed. This
 * is the only module that touches the simulation; the views read it as a {@link ClusterSource}.
 * @module
 */
import { RaftError, type Entry, type Message, type NodeId, type RaftStatus, type Role } from '@raftrtc/raft';
import { isKvCommand, Simulation, type CoreStatus, type KvCommand, type SimObserver } from '@raftrtc/raft/testing';
import { seconds } from './dom.js';
import { describe, entryCount, isRefusal, isReply, kindOf } from './messages.js';
import type { ClusterEvent, ClusterSource, EventTone, Flight, LogCell, NodeState } from './source.js';

/** Real milliseconds that one virtual millisecond lasts at speed 1: slow enough to follow each message. */
const SLOW_MOTION = 30;

/** Virtual milliseconds a lost message takes to fade out. */
export const FADE_MS = 12;

/** A message refused by a cut is drawn dying this far along its link... */
const CUT_REACH = 0.45;
/** ...after travelling this many virtual milliseconds. */
const CUT_TRAVEL_MS = 6;

/** Stepping gives up after this many events without a message, so a quiet cluster cannot hang the page. */
const MAX_STEP_EVENTS = 1000;

/** Keys the client's requests write, in turn. */
const KEYS = ['x', 'y', 'z'] as const;

/**
 * Timing of the simulated cluster. Heartbeats every 3 ticks against a 10–20 ms wire keep at most a couple
 * of messages on each link, and a 100–200 ms election timeout spans several heartbeats, as in a real
 * deployment. Logs compact every 16 applied entries, so a node that was down for long is sent a snapshot.
 */
const SIMULATION = {
  nodes: 5,
  tickMs: 10,
  electionTicks: 10,
  heartbeatTicks: 3,
  snapshotEvery: 16,
  network: { minDelayMs: 10, maxDelayMs: 20 },
} as const;

/** A client request: a `put` proposed on the leader. */
export interface ClientRequest {
  readonly id: string;
  /** E.g. `x = 3`. */
  readonly label: string;
  readonly leader: NodeId;
  readonly index: number;
  readonly term: number;
  /** `lost` when another entry was committed at its index (its leader lost leadership in time). */
  state: 'pending' | 'committed' | 'lost';
}

/** The result of {@link Cluster.request}. */
export type RequestOutcome = { ok: true; request: ClientRequest } | { ok: false; reason: string };

/** How an entry reads in the log view, e.g. `x = 3`, `no-op` or `config`. */
export function entryLabel(e: Entry): string {
  if (e.type === 'conf') return 'configuration';
  if (e.data === null) return 'no-op (new leader)';
  if (isKvCommand(e.data)) return `${e.data.key} = ${e.data.value ?? ''}`;
  return JSON.stringify(e.data);
}

/** Log cells never change once made, so each entry is described once. */
const cells = new WeakMap<Entry, LogCell>();

function cellOf(e: Entry): LogCell {
  let cell = cells.get(e);
  if (!cell) {
    cell = { index: e.index, term: e.term, kind: e.type === 'conf' ? 'conf' : e.data === null ? 'noop' : 'normal', label: entryLabel(e) };
    cells.set(e, cell);
  }
  return cell;
}

function kvText(kv: ReadonlyMap<string, string>): string {
  return [...kv].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(' ') || 'empty';
}

function progressOf(st: CoreStatus): NodeState['progress'] {
  // The simulator types cores by the contract's status(); RaftCore's also reports replication progress.
  return (st as Partial<RaftStatus>).progress ?? null;
}

/** The simulated cluster and the state of its drawing. See the module comment. */
export class Cluster implements ClusterSource {
  readonly sim: Simulation;
  readonly ids: readonly NodeId[];
  /** Requests made, oldest first. */
  readonly requests: ClientRequest[] = [];

  private shown = 0;
  private running = true;
  private speedFactor = 1;
  private halted: Error | null = null;
  private readonly flights = new Map<Message, Flight>();
  private flightIds = 0;
  private sends = 0;
  private restarting = false;
  private readonly roles = new Map<NodeId, Role | null>();
  private readonly listeners = new Set<(event: ClusterEvent) => void>();

  /** `seed` fixes every random choice of the simulation (timeouts, delays, losses). */
  constructor(readonly seed: number) {
    this.sim = new Simulation({ seed, ...SIMULATION });
    this.ids = this.sim.nodeIds;
    for (const node of this.sim.all) this.roles.set(node.id, node.role);
    // Attached after construction: the constructor's own callbacks would find `this.sim` unset.
    this.sim.observer = this.observer;
  }

  // ---- Time ------------------------------------------------------------------------------------------

  /** The virtual time on screen, in ms. It runs up to 1 ms ahead of the simulation so motion is smooth. */
  get time(): number {
    return this.shown;
  }

  get fadeMs(): number {
    return FADE_MS;
  }

  timeLabel(at: number): string {
    return seconds(at);
  }

  /** Whether time flows. */
  get playing(): boolean {
    return this.running;
  }

  /** Virtual time runs `speed / SLOW_MOTION` times as fast as real time. */
  get speed(): number {
    return this.speedFactor;
  }

  set speed(value: number) {
    if (!(value > 0)) throw new RangeError(`speed must be positive, got ${value}`);
    this.speedFactor = value;
  }

  /** The error that halted the simulation (a broken safety property would be one), or null. */
  get failure(): Error | null {
    return this.halted;
  }

  /** Pauses or resumes time; a halted simulation stays paused. */
  setPlaying(on: boolean): void {
    this.running = on && this.halted === null;
  }

  /** Lets `realMs` of real time pass. */
  advance(realMs: number): void {
    if (!this.running) return;
    this.shown += (realMs * this.speedFactor) / SLOW_MOTION;
    // run() sets the clock to its end, so a negative span would turn it back.
    this.guard(() => this.sim.run(Math.max(0, Math.floor(this.shown) - this.sim.now)));
    this.prune();
  }

  /** While paused, runs events up to the next one that moves a message (or changes nothing for long). */
  step(): void {
    if (this.running || this.halted) return;
    const sends = this.sends;
    for (let i = 0; i < MAX_STEP_EVENTS; i++) {
      const result = this.guard(() => this.sim.step());
      if (!result || result.kind !== 'tick' || this.sends !== sends) break;
    }
    this.shown = Math.max(this.shown, this.sim.now);
    this.prune();
  }

  // ---- What is drawn ---------------------------------------------------------------------------------

  /** The messages on the wire, and lost ones still fading out. */
  inFlight(): IterableIterator<Flight> {
    return this.flights.values();
  }

  /** The state of node `id`. */
  node(id: NodeId): NodeState {
    const view = this.sim.node(id);
    const st = view.status();
    const store = view.durable;
    const snap = store.snapshot;
    const last = store.entries.at(-1);
    const isolated = !this.sim.network.isConnected(id);
    const base = {
      id,
      name: id,
      isolated,
      note: isolated ? 'isolated' : '',
      entries: store.entries.map(cellOf),
      snapshot: snap ? { index: snap.index, term: snap.term } : null,
      lastIndex: store.lastIndex,
      lastTerm: last?.term ?? snap?.term ?? 0,
    };
    if (!st) {
      const hard = store.hardState;
      return {
        ...base, alive: false, shown: 'crashed', term: hard?.term ?? 0, vote: hard?.vote ?? null, leader: null,
        commit: hard?.commit ?? 0, applied: 0, stateText: 'lost in crash', progress: null,
      };
    }
    return {
      ...base, alive: true, shown: st.role, term: st.term, vote: st.vote, leader: st.leader, commit: st.commit,
      applied: view.applied, stateText: kvText(view.stateMachine.data), progress: progressOf(st),
    };
  }

  /** The live leader of the highest term, or null. */
  leader(): NodeId | null {
    return this.sim.leader();
  }

  /** The highest index committed anywhere, as the simulator's invariant checks track it. */
  committed(): number {
    return this.sim.invariants.commitIndex;
  }

  /** Whether messages between `a` and `b` are blocked in either direction (isolation aside). */
  isCut(a: NodeId, b: NodeId): boolean {
    const net = this.sim.network;
    return net.obstacle(a, b) === 'partition' || net.obstacle(b, a) === 'partition';
  }

  /** Subscribes to the event feed; returns the unsubscribe function. */
  onEvent(listener: (event: ClusterEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- Actions ---------------------------------------------------------------------------------------

  /** Crashes node `id`: its memory is lost, its durable log and hard state are kept. */
  crash(id: NodeId): void {
    if (!this.sim.node(id).alive) return;
    this.guard(() => this.sim.crash(id));
    this.emit(`${id} crashed`, 'fault');
  }

  /** Restarts a crashed node from its durable state. */
  restart(id: NodeId): void {
    if (this.sim.node(id).alive) return;
    this.restarting = true;
    try {
      this.guard(() => this.sim.restart(id));
    } finally {
      this.restarting = false;
    }
    this.emit(`${id} restarted from its durable log`, 'fault');
  }

  /** Cuts node `id` off from every other node, or reconnects it. Link cuts are kept either way. */
  setIsolated(id: NodeId, isolated: boolean): void {
    if (isolated) this.sim.network.disconnect(id);
    else this.sim.network.connect(id);
    this.emit(isolated ? `${id} is isolated from the network` : `${id} is reconnected`, 'network');
  }

  /** Blocks or unblocks the link between `a` and `b`, in both directions. */
  setLink(a: NodeId, b: NodeId, open: boolean): void {
    const net = this.sim.network;
    if (open) {
      net.unblock(a, b);
      net.unblock(b, a);
    } else {
      net.block(a, b);
      net.block(b, a);
    }
    this.emit(open ? `link ${a}–${b} mended` : `link ${a}–${b} cut`, 'network');
  }

  /**
   * Splits the network in two. The leader goes into the minority with one other node, so the minority
   * keeps a leader that can no longer commit while the majority elects a new one.
   */
  split(): void {
    const ids = this.ids;
    const leader = this.leader();
    const minority = leader ? [leader, ids[(ids.indexOf(leader) + 1) % ids.length]] : ids.slice(0, 2);
    const majority = ids.filter((id) => !minority.includes(id));
    this.sim.network.partition([minority, majority]);
    this.emit(`network split: ${minority.join(' ')} | ${majority.join(' ')}`, 'network');
  }

  /** Removes every cut and reconnects every node. */
  heal(): void {
    this.sim.network.heal();
    this.emit('network healed', 'network');
  }

  /** Sets the probability that a message is lost, in [0, 1]. */
  setLoss(rate: number): void {
    this.sim.network.configure({ dropRate: rate });
  }

  /** Proposes the next client request on the leader. */
  request(): RequestOutcome {
    const n = this.requests.length + 1;
    const command: KvCommand = { op: 'put', key: KEYS[(n - 1) % KEYS.length], value: String(n), id: `req-${n}` };
    let placed: ReturnType<Simulation['proposeOnLeader']>;
    try {
      placed = this.sim.proposeOnLeader(command);
    } catch (err) {
      if (err instanceof RaftError) return { ok: false, reason: err.message };
      this.fail(err);
      return { ok: false, reason: 'the simulation stopped' };
    }
    if (!placed) return { ok: false, reason: 'there is no leader right now; wait for an election to finish' };
    const request: ClientRequest = {
      id: command.id as string, label: `${command.key} = ${command.value}`, leader: placed.leader, index: placed.index,
      term: placed.term, state: 'pending',
    };
    this.requests.push(request);
    this.emit(`${request.label} proposed to ${request.leader} at index ${request.index}`, 'request');
    return { ok: true, request };
  }

  // ---- Observer --------------------------------------------------------------------------------------

  private readonly observer: SimObserver = {
    onSend: (message, from, to, sentAt, deliverAt) => {
      this.sends++;
      const refused = deliverAt === null;
      this.flights.set(message, {
        id: this.flightIds++, kind: kindOf(message), reply: isReply(message), refusal: isRefusal(message),
        entries: entryCount(message), label: describe(message), from, to, sentAt,
        endAt: refused ? sentAt + CUT_TRAVEL_MS : deliverAt,
        reach: refused ? CUT_REACH : 1,
        lostAt: refused ? sentAt + CUT_TRAVEL_MS : null,
      });
    },
    onDeliver: (message) => {
      this.flights.delete(message);
    },
    onDrop: (message, _reason, at) => {
      const flight = this.flights.get(message);
      if (flight && flight.lostAt === null) flight.lostAt = at;
    },
    onRoleChange: (id, role, term) => {
      const before = this.roles.get(id);
      this.roles.set(id, role);
      if (role === 'leader' && before !== 'leader') this.emit(`${id} is leader for term ${term}`, 'leader');
      else if (role === 'candidate') this.emit(`${id} stands for election in term ${term}`, 'election');
      else if (before === 'leader' && role !== 'leader') this.emit(`${id} stepped down in term ${term}`, 'election');
    },
    onApply: (_id, entry) => this.settleRequests(entry),
    onRestore: (id, snapshot) => {
      if (!this.restarting) this.emit(`${id} installed a snapshot up to index ${snapshot.index}`, 'network');
    },
  };

  /** A request commits when its entry is first applied anywhere, and is lost when another entry is. */
  private settleRequests(entry: Entry): void {
    for (const r of this.requests) {
      if (r.state !== 'pending' || r.index !== entry.index) continue;
      const mine = isKvCommand(entry.data) && entry.data.id === r.id;
      r.state = mine ? 'committed' : 'lost';
      this.emit(mine ? `${r.label} committed at index ${r.index}` : `${r.label} lost: index ${r.index} went to term ${entry.term}`, 'request');
    }
  }

  // ---- Helpers ---------------------------------------------------------------------------------------

  private prune(): void {
    for (const [message, f] of this.flights) {
      if (f.lostAt !== null && this.shown > f.lostAt + FADE_MS) this.flights.delete(message);
    }
  }

  private guard<T>(fn: () => T): T | undefined {
    if (this.halted) return undefined;
    try {
      return fn();
    } catch (err) {
      this.fail(err);
      return undefined;
    }
  }

  private fail(err: unknown): void {
    this.halted = err instanceof Error ? err : new Error(String(err));
    this.running = false;
    this.emit(`simulation stopped: ${this.halted.message.split('\n')[0]}`, 'error');
  }

  private emit(text: string, tone: EventTone): void {
    const event = { at: this.sim.now, text, tone };
    for (const listener of this.listeners) listener(event);
  }
}
