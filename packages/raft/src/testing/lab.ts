/**
 * `LabConfig`: MIT 6.824's `config.go` (labs 2A–2D) on top of the {@link Simulation}, so the lab's Raft
 * tests can be ported nearly line by line. Servers are numbered 0..n-1 (node ids `s0`, `s1`, …). Time is
 * virtual: `sleep` advances the simulation, and every wait the lab bounds in seconds (`one`'s 10 s,
 * `checkOneLeader`'s ten rounds, the 120 s test limit) is the same number of virtual milliseconds, after
 * which the call throws a {@link LabFailure}.
 *
 * Timing follows the lab: a tick is 25 ms, the election timeout is drawn from [300, 600) ms and the leader
 * sends heartbeats every 100 ms.
 * @module
 */
import { NotLeaderError, ProposalDroppedError } from '../index.js';
import type { Entry, NodeId, Snapshot } from '../core/types.js';
import { canonicalJson } from './digest.js';
import type { NetworkConfig } from './network.js';
import type { Rng } from './rng.js';
import { Simulation } from './simulation.js';
import type { StateMachine } from './state-machine.js';

/** What a lab server applied at one index: a command, or an entry that is not one. */
type LabValue = { kind: 'command'; cmd: unknown } | { kind: 'empty' } | { kind: 'conf' };

function labValue(e: Entry): LabValue {
  if (e.type === 'conf') return { kind: 'conf' };
  return e.data === null ? { kind: 'empty' } : { kind: 'command', cmd: e.data };
}

/**
 * The lab's application: it records what was applied at each index, and its snapshot is that record (like
 * config.go's `xlog`), so a server restored from a snapshot still knows every command before it.
 */
export class LabStateMachine implements StateMachine {
  log = new Map<number, LabValue>();

  apply(entry: Entry): void {
    this.log.set(entry.index, labValue(entry));
  }

  snapshot(): [number, LabValue][] {
    return [...this.log];
  }

  restore(data: unknown): void {
    this.log = new Map(data as [number, LabValue][]);
  }
}

/** Options of {@link LabConfig}. */
export interface LabOptions {
  seed: number;
  /** Start with an unreliable network (labrpc's `setunreliable`). */
  unreliable?: boolean;
  /** Compact every 10 applied entries, like the lab's `SnapShotInterval`. */
  snapshot?: boolean;
  /** The command that replays the test, reported in failures. */
  replay?: string;
}

/** A lab check failed (config.go's `t.Fatalf`). */
export class LabFailure extends Error {
  readonly seed: number;
  readonly now: number;

  constructor(message: string, seed: number, now: number, replay: string | undefined) {
    super(`${message}\n  lab seed ${seed}, at ${now} ms\n  replay: ${replay ?? `run the test again with seed ${seed}`}`);
    this.name = 'LabFailure';
    this.seed = seed;
    this.now = now;
  }
}

/** Traffic and progress of one test, as config.go's `end()` prints them. */
export interface LabSummary {
  description: string;
  elapsedMs: number;
  servers: number;
  rpcs: number;
  bytes: number;
  commands: number;
}

/** labrpc's reliable network hands a message over at once; we allow a little jitter. */
const RELIABLE: Partial<NetworkConfig> = { dropRate: 0, minDelayMs: 0, maxDelayMs: 2 };
/** labrpc's unreliable network drops one message in ten and delays the rest by up to 26 ms. */
const UNRELIABLE: Partial<NetworkConfig> = { dropRate: 0.1, minDelayMs: 0, maxDelayMs: 26 };
/** config.go fails a test that runs longer than two minutes. */
const TEST_LIMIT_MS = 120_000;
/** Every 10 applied entries, like the lab's SnapShotInterval. */
const SNAPSHOT_INTERVAL = 10;

const isRequest = (type: string) => !type.endsWith('Resp');

/** MIT 6.824's config.go for labs 2A–2D. See the module comment. */
export class LabConfig {
  readonly n: number;
  readonly sim: Simulation<LabStateMachine>;
  private readonly ids: NodeId[];
  /**
   * Per server, what it applied at each index. Like config.go's `logs`, it survives a crash and is replaced
   * only when the server restores a snapshot.
   */
  private readonly logs: Map<number, LabValue>[];
  private readonly rng: Rng;
  private readonly replay: string | undefined;
  private readonly startedAt: number;
  private maxIndex = 0;
  private begun = { description: '', at: 0, rpcs: 0, bytes: 0, maxIndex: 0 };

  constructor(n: number, options: LabOptions) {
    this.n = n;
    this.ids = Array.from({ length: n }, (_, i) => `s${i}`);
    this.logs = this.ids.map(() => new Map());
    this.replay = options.replay;
    this.sim = new Simulation<LabStateMachine>({
      seed: options.seed,
      nodes: this.ids,
      id: `lab-${n}-${options.seed}`,
      replay: options.replay,
      tickMs: 25,
      electionTicks: 12,
      heartbeatTicks: 4,
      snapshotEvery: options.snapshot ? SNAPSHOT_INTERVAL : 0,
      network: options.unreliable ? UNRELIABLE : RELIABLE,
      stateMachine: () => new LabStateMachine(),
      observer: {
        onApply: (id, e) => this.record(id, e),
        onRestore: (id, s) => this.restore(id, s),
      },
    });
    this.rng = this.sim.fork();
    this.startedAt = this.sim.now;
  }

  /** Virtual time in milliseconds. */
  get now(): number {
    return this.sim.now;
  }

  /** Advances virtual time by `ms`. */
  sleep(ms: number): void {
    this.sim.run(ms);
  }

  // ---- Servers and network -----------------------------------------------------------------------

  /** Crashes server `i` and disconnects it. Its durable state survives. */
  crash1(i: number): void {
    this.disconnect(i);
    this.sim.crash(this.id(i));
  }

  /**
   * Starts server `i` from its durable state (crashing it first if it is up). Like config.go it stays
   * disconnected until {@link connect}.
   */
  start1(i: number): void {
    this.crash1(i);
    this.sim.restart(this.id(i));
  }

  /** Attaches server `i` to the network: it sends and receives again. */
  connect(i: number): void {
    this.sim.network.connect(this.id(i));
  }

  /** Detaches server `i`: it neither sends nor receives. */
  disconnect(i: number): void {
    this.sim.network.disconnect(this.id(i));
  }

  /** Makes the network drop and delay messages (or stop doing so). */
  setUnreliable(unreliable: boolean): void {
    this.sim.network.configure(unreliable ? UNRELIABLE : RELIABLE);
  }

  /** labrpc's long reordering: most replies arrive 200–2200 ms late. */
  setLongReordering(longReordering: boolean): void {
    this.sim.network.configure({ longReordering });
  }

  // ---- Raft API --------------------------------------------------------------------------------------

  /** `rf.Start(cmd)` on server `i`: where the command would go if `i` is the leader. */
  start(i: number, cmd: unknown): { index: number; term: number; isLeader: boolean } {
    const id = this.id(i);
    const node = this.sim.node(id);
    if (!node.core) return { index: -1, term: -1, isLeader: false };
    try {
      const { index, term } = this.sim.propose(id, cmd);
      return { index, term, isLeader: true };
    } catch (err) {
      if (err instanceof NotLeaderError || err instanceof ProposalDroppedError) {
        return { index: -1, term: node.core.status().term, isLeader: false };
      }
      throw err;
    }
  }

  /** `rf.GetState()` on server `i`. */
  getState(i: number): { term: number; isLeader: boolean } {
    const st = this.sim.node(this.id(i)).status();
    if (!st) this.fail(`getState(${i}): server ${i} is crashed`);
    return { term: st.term, isLeader: st.role === 'leader' };
  }

  // ---- Checks ----------------------------------------------------------------------------------------

  /** Waits for exactly one leader among connected servers (the newest term's) and returns it. */
  checkOneLeader(): number {
    for (let iters = 0; iters < 10; iters++) {
      this.sleep(450 + this.rng.int(100));
      const leaders = new Map<number, number[]>();
      for (let i = 0; i < this.n; i++) {
        if (!this.reachable(i)) continue;
        const { term, isLeader } = this.getState(i);
        if (isLeader) leaders.set(term, [...(leaders.get(term) ?? []), i]);
      }
      let lastTermWithLeader = -1;
      for (const [term, ls] of leaders) {
        if (ls.length > 1) this.fail(`term ${term} has ${ls.length} (>1) leaders`);
        if (term > lastTermWithLeader) lastTermWithLeader = term;
      }
      if (leaders.size !== 0) return (leaders.get(lastTermWithLeader) as number[])[0];
    }
    this.fail('expected one leader, got none');
  }

  /** Checks that connected servers agree on the term, and returns it. */
  checkTerms(): number {
    let term = -1;
    for (let i = 0; i < this.n; i++) {
      if (!this.reachable(i)) continue;
      const t = this.getState(i).term;
      if (term === -1) term = t;
      else if (t !== term) this.fail('servers disagree on term');
    }
    return term;
  }

  /** Checks that no connected server thinks it is the leader. */
  checkNoLeader(): void {
    for (let i = 0; i < this.n; i++) {
      if (this.reachable(i) && this.getState(i).isLeader) this.fail(`expected no leader among connected servers, but ${i} claims to be leader`);
    }
  }

  /**
   * How many servers applied index `index`, and the command there. Entries that are not commands (a
   * leader's empty entry, a conf entry) count but carry no command: `cmd` is then null.
   */
  nCommitted(index: number): [count: number, cmd: unknown] {
    let count = 0;
    let cmd: unknown = null;
    let cmdJson: string | null = null;
    for (let i = 0; i < this.n; i++) {
      const v = this.logs[i].get(index);
      if (!v) continue;
      count++;
      if (v.kind !== 'command') continue;
      const json = canonicalJson(v.cmd);
      if (cmdJson !== null && json !== cmdJson) this.fail(`committed values do not match: index ${index}, ${cmdJson}, ${json}`);
      cmdJson = json;
      cmd = v.cmd;
    }
    return [count, cmd];
  }

  /**
   * Waits for at least `n` servers to apply `index` and returns the command there; returns -1 if some
   * server's term moves past `startTerm` first (when `startTerm > -1`).
   */
  wait(index: number, n: number, startTerm: number): unknown {
    let to = 10;
    for (let iters = 0; iters < 30; iters++) {
      if (this.nCommitted(index)[0] >= n) break;
      this.sleep(to);
      if (to < 1000) to *= 2;
      if (startTerm > -1) {
        for (const node of this.sim.all) {
          const st = node.status();
          if (st && st.term > startTerm) return -1;
        }
      }
    }
    const [nd, cmd] = this.nCommitted(index);
    if (nd < n) this.fail(`only ${nd} decided for index ${index}; wanted ${n}`);
    return cmd;
  }

  /**
   * Submits `cmd` to whichever connected server is leader until `expectedServers` apply it, and returns
   * its index. With `retry`, a leader that fails to commit within 2 s is replaced and the command sent
   * again; gives up after 10 s.
   */
  one(cmd: unknown, expectedServers: number, retry: boolean): number {
    this.checkTimeout();
    const steps = this.oneSteps(cmd, expectedServers, retry);
    for (let r = steps.next(); ; r = steps.next()) {
      if (r.done) return r.value;
      this.sleep(r.value);
    }
  }

  /**
   * {@link one} as a generator that yields the virtual milliseconds it wants to sleep instead of sleeping,
   * so that a test can interleave several of them like the lab's goroutines.
   */
  *oneSteps(cmd: unknown, expectedServers: number, retry: boolean): Generator<number, number, undefined> {
    const want = canonicalJson(cmd);
    const t0 = this.now;
    let starts = 0;
    while (this.now - t0 < 10_000) {
      let index = -1;
      for (let si = 0; si < this.n; si++) {
        starts = (starts + 1) % this.n;
        if (!this.sim.network.isConnected(this.id(starts))) continue;
        const r = this.start(starts, cmd);
        if (r.isLeader) {
          index = r.index;
          break;
        }
      }
      if (index !== -1) {
        const t1 = this.now;
        while (this.now - t1 < 2_000) {
          const [nd, cmd1] = this.nCommitted(index);
          if (nd > 0 && nd >= expectedServers && canonicalJson(cmd1) === want) return index;
          yield 20;
        }
        if (!retry) this.fail(`one(${want.slice(0, 40)}) failed to reach agreement`);
      } else {
        yield 50;
      }
    }
    this.fail(`one(${want.slice(0, 40)}) failed to reach agreement`);
  }

  /** Fails once the test has run for more than 120 s of virtual time, like config.go. */
  checkTimeout(): void {
    if (this.now - this.startedAt > TEST_LIMIT_MS) this.fail('test took longer than 120 seconds');
  }

  // ---- Accounting ------------------------------------------------------------------------------------

  /** Bytes of every RPC request sent (replies excluded, as labrpc counts them). */
  bytesTotal(): number {
    let bytes = 0;
    for (const [type, t] of this.sim.network.stats.byType) if (isRequest(type)) bytes += t.bytes;
    return bytes;
  }

  /** RPC requests sent by all servers, delivered or not. */
  rpcTotal(): number {
    let n = 0;
    for (const [type, t] of this.sim.network.stats.byType) if (isRequest(type)) n += t.messages;
    return n;
  }

  /** RPC requests delivered to server `i`. */
  rpcCount(i: number): number {
    let n = 0;
    for (const [type, count] of this.sim.network.stats.receivedBy(this.id(i))) if (isRequest(type)) n += count;
    return n;
  }

  /** Durable Raft state of server `i` in bytes (hard state and log, snapshot excluded), like RaftStateSize. */
  logSize(i: number): number {
    return this.sim.node(this.id(i)).durable.logBytes();
  }

  /** Durable snapshot of server `i` in bytes. */
  snapshotSize(i: number): number {
    return this.sim.node(this.id(i)).durable.snapshotBytes();
  }

  /** Starts a test: resets the counters {@link end} reports. */
  begin(description: string): void {
    this.begun = { description, at: this.now, rpcs: this.rpcTotal(), bytes: this.bytesTotal(), maxIndex: this.maxIndex };
  }

  /** Ends a test: checks the time limit and returns what it cost since {@link begin}. */
  end(): LabSummary {
    this.checkTimeout();
    const b = this.begun;
    return {
      description: b.description, elapsedMs: this.now - b.at, servers: this.n,
      rpcs: this.rpcTotal() - b.rpcs, bytes: this.bytesTotal() - b.bytes, commands: this.maxIndex - b.maxIndex,
    };
  }

  // ---- Internals -------------------------------------------------------------------------------------

  private record(id: NodeId, e: Entry): void {
    this.logs[this.index(id)].set(e.index, labValue(e));
    if (e.index > this.maxIndex) this.maxIndex = e.index;
  }

  private restore(id: NodeId, s: Snapshot): void {
    this.logs[this.index(id)] = new Map(s.data as [number, LabValue][]);
    if (s.index > this.maxIndex) this.maxIndex = s.index;
  }

  /** Connected and up: the servers config.go's checks look at. */
  private reachable(i: number): boolean {
    return this.sim.network.isConnected(this.id(i)) && this.sim.node(this.id(i)).alive;
  }

  private id(i: number): NodeId {
    const id = this.ids[i];
    if (id === undefined) throw new RangeError(`no server ${i} (servers are 0..${this.n - 1})`);
    return id;
  }

  private index(id: NodeId): number {
    return this.ids.indexOf(id);
  }

  private fail(message: string): never {
    throw new LabFailure(message, this.sim.seed, this.now, this.replay);
  }
}
