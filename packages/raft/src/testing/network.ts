/**
 * The simulated wire between nodes: it decides each message's fate (lost, duplicated, how long it takes)
 * and who can reach whom (partitions, asymmetric blocks, labrpc-style disconnection), and counts traffic.
 * It schedules nothing itself; the simulation turns its decisions into delivery events.
 * @module
 */
import type { Message } from '../core/messages.js';
import type { NodeId } from '../core/types.js';
import type { Rng } from './rng.js';

/**
 * How messages travel. A delay is drawn uniformly from [minDelayMs, maxDelayMs] per copy, so a range wider
 * than zero reorders messages.
 */
export interface NetworkConfig {
  /** Probability in [0, 1] that a message is lost. */
  dropRate: number;
  /** Probability in [0, 1] that a delivered message arrives twice (each copy with its own delay). */
  duplicateRate: number;
  minDelayMs: number;
  maxDelayMs: number;
  /**
   * MIT labrpc's long reordering: two replies (types ending in `Resp`) in three are held back a further
   * 200 + rand(1 + rand(2000)) ms, so stale answers arrive long after newer ones.
   */
  longReordering: boolean;
  /**
   * How a message is copied onto the wire. `json` (default) round-trips it through JSON like a real
   * transport, which also exposes non-serialisable data; `structured-clone` keeps types JSON would lose;
   * `shared` hands the same object over, which the contract allows because messages are immutable.
   */
  wire: 'json' | 'structured-clone' | 'shared';
}

/** The configuration used for anything not given. */
export const DEFAULT_NETWORK: Readonly<NetworkConfig> = Object.freeze({
  dropRate: 0,
  duplicateRate: 0,
  minDelayMs: 1,
  maxDelayMs: 10,
  longReordering: false,
  wire: 'json',
});

/** Why a message never reached its destination's core. */
export type DropReason =
  | 'loss' // the drop rate struck
  | 'partition' // a partition or block separates sender and receiver
  | 'disconnected' // the sender or the receiver is disconnected (labrpc)
  | 'crashed' // the sender or the receiver crashed while it was in flight, or the receiver was down
  | 'unknown-node'; // addressed to a node the simulation does not have

/** A count of messages and their encoded size in bytes (JSON length). */
export interface Traffic {
  messages: number;
  bytes: number;
}

/** Traffic counters. "Sent" counts every message a node handed over, whatever its fate. */
export class NetworkStats {
  messages = 0;
  bytes = 0;
  readonly byType = new Map<string, Traffic>();
  delivered = 0;
  duplicated = 0;
  readonly dropped = new Map<DropReason, number>();
  private readonly received = new Map<NodeId, Map<string, number>>();

  /** Messages delivered to `id`'s core, by type. */
  receivedBy(id: NodeId): ReadonlyMap<string, number> {
    return this.received.get(id) ?? new Map();
  }

  /** @internal */
  countSent(type: string, bytes: number): void {
    this.messages++;
    this.bytes += bytes;
    const t = this.byType.get(type);
    if (t) {
      t.messages++;
      t.bytes += bytes;
    } else {
      this.byType.set(type, { messages: 1, bytes });
    }
  }

  /** @internal */
  countDelivered(to: NodeId, type: string): void {
    this.delivered++;
    let m = this.received.get(to);
    if (!m) this.received.set(to, (m = new Map()));
    m.set(type, (m.get(type) ?? 0) + 1);
  }

  /** @internal */
  countDropped(reason: DropReason): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
  }
}

/** One copy of a message on its way: the receiver gets `message` at virtual time `at`. */
export interface Delivery {
  message: Message;
  at: number;
}

/** The fate of one sent message: either dropped at once, or one or more deliveries. */
export type Transmission =
  | { bytes: number; drop: DropReason; deliveries: [] }
  | { bytes: number; drop: null; deliveries: Delivery[] };

function checkConfig(c: NetworkConfig): void {
  const rate = (v: number) => Number.isFinite(v) && v >= 0 && v <= 1;
  if (!rate(c.dropRate) || !rate(c.duplicateRate)) throw new RangeError('dropRate and duplicateRate must be in [0, 1]');
  if (!Number.isInteger(c.minDelayMs) || !Number.isInteger(c.maxDelayMs) || c.minDelayMs < 0 || c.maxDelayMs < c.minDelayMs) {
    throw new RangeError(`delays must be integers with 0 <= minDelayMs <= maxDelayMs, got ${c.minDelayMs}..${c.maxDelayMs}`);
  }
}

/** The simulated network among a fixed set of nodes. */
export class Network {
  private cfg: NetworkConfig;
  private readonly nodes: ReadonlySet<NodeId>;
  /** `blocked.get(a)` holds every node that `a` cannot send to. */
  private readonly blocked = new Map<NodeId, Set<NodeId>>();
  private readonly disconnected = new Set<NodeId>();
  readonly stats = new NetworkStats();

  constructor(nodes: readonly NodeId[], config: Partial<NetworkConfig>, private readonly rng: Rng) {
    this.nodes = new Set(nodes);
    this.cfg = { ...DEFAULT_NETWORK, ...config };
    checkConfig(this.cfg);
  }

  /** The configuration in force. */
  get config(): Readonly<NetworkConfig> {
    return this.cfg;
  }

  /** Changes part of the configuration; messages already in flight keep their fate. */
  configure(change: Partial<NetworkConfig>): void {
    const next = { ...this.cfg, ...change };
    checkConfig(next);
    this.cfg = next;
  }

  /**
   * Splits the network into groups that cannot reach each other, replacing any earlier partition or
   * block. Nodes named in no group form one more group together.
   */
  partition(groups: readonly (readonly NodeId[])[]): void {
    this.blocked.clear();
    const groupOf = new Map<NodeId, number>();
    groups.forEach((g, i) => {
      for (const id of g) {
        this.known(id);
        if (groupOf.has(id)) throw new RangeError(`node ${id} is in two partition groups`);
        groupOf.set(id, i);
      }
    });
    for (const a of this.nodes) {
      for (const b of this.nodes) {
        if ((groupOf.get(a) ?? -1) !== (groupOf.get(b) ?? -1)) this.block(a, b);
      }
    }
  }

  /** Cuts every link to and from `id`, in addition to any other cut. */
  isolate(id: NodeId): void {
    this.known(id);
    for (const other of this.nodes) {
      if (other === id) continue;
      this.block(id, other);
      this.block(other, id);
    }
  }

  /** Stops messages from `from` to `to`; the opposite direction is unaffected. */
  block(from: NodeId, to: NodeId): void {
    this.known(from);
    this.known(to);
    if (from === to) return;
    let set = this.blocked.get(from);
    if (!set) this.blocked.set(from, (set = new Set()));
    set.add(to);
  }

  /** Lets messages from `from` to `to` through again. */
  unblock(from: NodeId, to: NodeId): void {
    this.blocked.get(from)?.delete(to);
  }

  /** Restores full connectivity: removes every partition and block, and reconnects every node. */
  heal(): void {
    this.blocked.clear();
    this.disconnected.clear();
  }

  /** labrpc's disconnect: the node neither sends nor receives until reconnected. Partitions are kept. */
  disconnect(id: NodeId): void {
    this.known(id);
    this.disconnected.add(id);
  }

  /** Undoes {@link disconnect}. */
  connect(id: NodeId): void {
    this.known(id);
    this.disconnected.delete(id);
  }

  /** Whether `id` is connected in the labrpc sense. */
  isConnected(id: NodeId): boolean {
    return !this.disconnected.has(id);
  }

  /** Why a message from `from` to `to` cannot pass right now, or null when it can. */
  obstacle(from: NodeId, to: NodeId): DropReason | null {
    if (!this.nodes.has(to) || !this.nodes.has(from)) return 'unknown-node';
    if (this.disconnected.has(from) || this.disconnected.has(to)) return 'disconnected';
    if (this.blocked.get(from)?.has(to)) return 'partition';
    return null;
  }

  /**
   * Takes a message from node `from` and decides its fate; `now` is the virtual time of sending. The
   * sender is passed apart from `msg.from` because a partition cuts the real link, whatever a message claims.
   */
  send(from: NodeId, msg: Message, now: number): Transmission {
    const json = JSON.stringify(msg);
    const bytes = json.length;
    this.stats.countSent(msg.type, bytes);
    const c = this.cfg;
    const obstacle = this.obstacle(from, msg.to);
    const drop = obstacle ?? (c.dropRate > 0 && this.rng.chance(c.dropRate) ? 'loss' : null);
    if (drop) {
      this.stats.countDropped(drop);
      return { bytes, drop, deliveries: [] };
    }
    const copies = c.duplicateRate > 0 && this.rng.chance(c.duplicateRate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    const deliveries: Delivery[] = [];
    for (let i = 0; i < copies; i++) {
      let delay = this.rng.range(c.minDelayMs, c.maxDelayMs);
      if (c.longReordering && msg.type.endsWith('Resp') && this.rng.int(900) < 600) {
        delay += 200 + this.rng.int(1 + this.rng.int(2000));
      }
      deliveries.push({ message: this.copy(msg, json), at: now + delay });
    }
    return { bytes, drop: null, deliveries };
  }

  private copy(msg: Message, json: string): Message {
    switch (this.cfg.wire) {
      case 'json': return JSON.parse(json) as Message;
      case 'structured-clone': return structuredClone(msg);
      case 'shared': return msg;
    }
  }

  private known(id: NodeId): void {
    if (!this.nodes.has(id)) throw new RangeError(`unknown node ${id}`);
  }
}
