/**
 * A tiny in-process network for the multi-node paper tests, after etcd's `network` in raft_test.go: it
 * handles every node's Ready in the contract's order and delivers messages until the cluster is quiet.
 * Links can be cut, nodes isolated, crashed and restarted. The full seeded simulator lives in
 * `src/testing/`; this one has no clock, no randomness and no reordering.
 * @module
 */
import assert from 'node:assert/strict';
import { RaftCore, type RaftCoreOptions } from '../../src/core/raft.js';
import type { Message } from '../../src/core/messages.js';
import type { Entry, NodeId, ReadState } from '../../src/core/types.js';
import { ELECTION, MemoryStorage, attach, storage, take, tickN } from './core.js';

export class Network {
  readonly nodes = new Map<NodeId, RaftCore>();
  /** Every message delivered, in order. */
  readonly delivered: Message[] = [];
  /** Answers to readIndex(), per node, in order. */
  readonly reads = new Map<NodeId, ReadState[]>();
  /** Return false to drop a message. */
  filter: (m: Message) => boolean = () => true;
  private readonly cut = new Set<string>();
  private readonly options = new Map<NodeId, RaftCoreOptions>();
  private readonly down = new Map<NodeId, MemoryStorage>();
  /** Index → the entry first applied there by any node: no node may apply another (state-machine safety). */
  private readonly appliedAt = new Map<number, Entry>();
  /** Term → its leader: no term may have two (election safety). */
  private readonly leaders = new Map<number, NodeId>();

  /**
   * A new cluster whose initial voters are `ids` (or an empty network to `add` restored nodes to). The
   * i-th node's election timeout is ELECTION + i·ELECTION/(2n) ticks, so nodes ticked together do not
   * split votes forever.
   */
  constructor(ids: readonly NodeId[] = [], options: Partial<RaftCoreOptions> = {}) {
    ids.forEach((id, i) => this.add(id, { voters: [...ids], random: () => i / ids.length / 2, ...options }));
  }

  /** Starts a node: an initial voter, one restored from storage, or (with neither) one waiting to be added. */
  add(id: NodeId, options: Partial<RaftCoreOptions> = {}): RaftCore {
    const { restore, ...rest } = options;
    const opts: RaftCoreOptions = { id, electionTicks: ELECTION, random: () => 0, ...rest };
    this.options.set(id, opts);
    const core = new RaftCore({ ...opts, restore });
    if (restore) attach(core, MemoryStorage.from(restore));
    this.nodes.set(id, core);
    return core;
  }

  get(id: NodeId): RaftCore {
    const core = this.nodes.get(id);
    if (!core) throw new Error(`no running node ${id}`);
    return core;
  }

  cutLink(a: NodeId, b: NodeId): void { this.cut.add(`${a}>${b}`).add(`${b}>${a}`); }

  isolate(id: NodeId): void { for (const other of this.options.keys()) if (other !== id) this.cutLink(id, other); }

  heal(): void { this.cut.clear(); }

  /** Stops a node; only what its Readys made durable survives. */
  crash(id: NodeId): void {
    this.down.set(id, storage(this.get(id)).afterCrash());
    this.nodes.delete(id);
  }

  /** Rebuilds a crashed node from its storage. */
  restart(id: NodeId): RaftCore {
    const st = this.down.get(id);
    const opts = this.options.get(id);
    if (!st || !opts) throw new Error(`${id} is not down`);
    this.down.delete(id);
    const core = new RaftCore({ ...opts, restore: st.restore() });
    attach(core, st);
    this.nodes.set(id, core);
    return core;
  }

  tick(id: NodeId, n = 1): void { tickN(this.get(id), n); }

  /** Ticks `id` alone until it starts a campaign, then lets the cluster settle. */
  campaign(id: NodeId): void {
    const core = this.get(id);
    for (let i = 0; i < 2 * ELECTION && core.status().role === 'follower'; i++) core.tick();
    this.stabilize();
  }

  /** Ticks every running node `n` times, letting the cluster settle after each round, as real time would. */
  tickAll(n: number): void {
    for (let i = 0; i < n; i++) {
      for (const core of this.nodes.values()) core.tick();
      this.stabilize();
    }
  }

  /** Handles Readys and delivers messages, in rounds, until no node has anything left to do. */
  stabilize(): void {
    for (let round = 0; round < 1000; round++) {
      const out: Message[] = [];
      for (const core of this.nodes.values()) {
        if (!core.hasReady()) continue;
        const rd = take(core);
        if (rd.role === 'leader') this.checkLeader(core.status().term, core.id);
        for (const e of rd.committed) this.checkApplied(core.id, e);
        if (rd.readStates.length) this.reads.set(core.id, [...(this.reads.get(core.id) ?? []), ...rd.readStates]);
        out.push(...rd.messages);
      }
      if (out.length === 0) return;
      for (const m of out) {
        const to = this.nodes.get(m.to);
        if (!to || this.cut.has(`${m.from}>${m.to}`) || !this.filter(m)) continue;
        this.delivered.push(m);
        to.step(m);
      }
    }
    throw new Error('the network did not settle in 1000 rounds');
  }

  /** Data of the normal, non-empty entries `id` has applied since it last started, in order. */
  appliedData(id: NodeId): unknown[] {
    return storage(this.get(id)).applied.filter((e) => e.type === 'normal' && e.data !== null).map((e) => e.data);
  }

  private checkLeader(term: number, id: NodeId): void {
    const prev = this.leaders.get(term);
    assert.ok(prev === undefined || prev === id, `two leaders in term ${term}: ${prev} and ${id}`);
    this.leaders.set(term, id);
  }

  private checkApplied(id: NodeId, e: Entry): void {
    const prev = this.appliedAt.get(e.index);
    if (prev) assert.deepEqual(e, prev, `${id} applied a different entry at ${e.index}`);
    else this.appliedAt.set(e.index, e);
  }
}
