/**
 * A RaftNode cluster for tests: a key-value state machine that counts applications (duplicates must not
 * happen), nodes on one MemoryNetwork and one clock, restartable from their MemoryStorage, and waits
 * bounded in ticks of fake time.
 * @module
 */
import assert from 'node:assert/strict';
import type { Entry, NodeId } from '../../src/core/types.js';
import { MemoryStorage } from '../../src/node/memory-storage.js';
import { MemoryNetwork } from '../../src/node/memory-transport.js';
import { RaftNode, type RaftNodeOptions, type StateMachine } from '../../src/node/raft-node.js';
import type { Timers } from '../../src/node/timers.js';
import type { FakeTimers } from './fake-timers.js';

export type Cmd = { op: 'put'; key: string; value: string } | { op: 'fail' };

/** A key-value store that also counts how often each value was applied (duplicates must not be). */
export class Kv implements StateMachine<Cmd, string | undefined, string, string | undefined> {
  data = new Map<string, string>();
  readonly appliedCount = new Map<string, number>();
  restores = 0;
  apply(cmd: Cmd, _entry: Entry): string | undefined {
    if (cmd.op === 'fail') throw new Error('refused by the state machine');
    const prev = this.data.get(cmd.key);
    this.data.set(cmd.key, cmd.value);
    this.appliedCount.set(cmd.value, (this.appliedCount.get(cmd.value) ?? 0) + 1);
    return prev;
  }
  snapshot(): unknown { return { data: [...this.data], counts: [...this.appliedCount] }; }
  restore(d: unknown): void {
    const s = d as { data: [string, string][]; counts: [string, number][] };
    this.data = new Map(s.data);
    this.appliedCount.clear();
    for (const [k, v] of s.counts) this.appliedCount.set(k, v);
    this.restores++;
  }
  query(key: string): string | undefined { return this.data.get(key); }
}

export const TICK = 10;
export const ELECTION_TICKS = 10;
export const IDS = ['n1', 'n2', 'n3'];
export const put = (key: string, value: string): Cmd => ({ op: 'put', key, value });

export type Node = RaftNode<Cmd, string | undefined, string, string | undefined>;
export type Extra = Partial<Omit<RaftNodeOptions<Cmd>, 'stateMachine'>>;

/** Three nodes on one MemoryNetwork and one clock; nodes can be stopped and restarted from their storage. */
export class Cluster {
  readonly net: MemoryNetwork;
  readonly nodes = new Map<NodeId, Node>();
  readonly machines = new Map<NodeId, Kv>();
  readonly storages = new Map<NodeId, MemoryStorage>();
  /** Called with each node before it starts, to attach listeners. */
  onNode: ((node: Node) => void) | null = null;

  constructor(readonly timers: Timers, readonly extra: Extra = {}, readonly ids: NodeId[] = [...IDS], net?: MemoryNetwork) {
    this.net = net ?? new MemoryNetwork();
  }

  async start(id: NodeId, options: Extra = {}): Promise<Node> {
    const prev = this.storages.get(id);
    const storage = prev ? prev.reopen() : new MemoryStorage();
    this.storages.set(id, storage);
    const kv = new Kv();
    const i = this.ids.indexOf(id);
    const node: Node = new RaftNode<Cmd, string | undefined, string, string | undefined>({
      id, voters: this.ids, storage, transport: this.net.transport(id), stateMachine: kv, timers: this.timers,
      tickMs: TICK, electionTicks: ELECTION_TICKS,
      // Staggered election timeouts: nodes on one clock would otherwise split votes.
      random: () => (i + 0.5) / (this.ids.length + 1),
      ...this.extra, ...options,
    });
    this.nodes.set(id, node);
    this.machines.set(id, kv);
    this.onNode?.(node);
    await node.start();
    return node;
  }

  async startAll(): Promise<void> {
    for (const id of this.ids) await this.start(id);
  }

  async stop(id: NodeId): Promise<void> {
    await this.nodes.get(id)!.stop();
    this.nodes.delete(id);
  }

  async stopAll(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stop(id);
  }

  /** The leader all running nodes agree on, or null. */
  leader(): Node | null {
    const nodes = [...this.nodes.values()];
    const leaders = nodes.filter((n) => n.isLeader);
    if (leaders.length !== 1) return null;
    const id = leaders[0]!.id;
    return nodes.every((n) => n.leader === id) ? leaders[0]! : null;
  }

  followers(): Node[] {
    return [...this.nodes.values()].filter((n) => !n.isLeader);
  }
}

/** Advances fake time a tick at a time until `cond` holds; fails after `maxTicks` ticks. */
export async function until(clock: FakeTimers, cond: () => boolean, what: string, maxTicks = 50 * ELECTION_TICKS): Promise<void> {
  for (let i = 0; i < maxTicks; i++) {
    if (cond()) return;
    await clock.advance(TICK);
  }
  assert.ok(cond(), `${what}: not reached within ${maxTicks} ticks`);
}

/** Advances fake time until `p` settles; returns its outcome. */
export async function settle<T>(clock: FakeTimers, p: Promise<T>, what: string, maxTicks = 50 * ELECTION_TICKS): Promise<{ value?: T; error?: unknown }> {
  let out: { value?: T; error?: unknown } | null = null;
  p.then((value) => { out = { value }; }, (error: unknown) => { out = { error }; });
  await until(clock, () => out !== null, what, maxTicks);
  return out!;
}

