/**
 * `MemoryNetwork` and `MemoryTransport`: an in-process network for tests and single-process clusters.
 * Every message goes through the shared codec, as on a real wire, so encoding bugs and garbage handling are
 * exercised; delivery is asynchronous (never inside `send`), and the network can drop, cut and partition.
 * @module
 */
import type { NodeId } from '../core/types.js';
import { decodeMessage, DEFAULT_MAX_MESSAGE_BYTES, encodeMessage } from './codec.js';
import type { WireMessage } from './node-messages.js';
import { realTimers, type Timers } from './timers.js';
import type { Transport } from './transport.js';

/** Options of {@link MemoryNetwork}. */
export interface MemoryNetworkOptions {
  /** Largest message accepted by a receiver, in bytes. */
  maxBytes?: number;
  /** Delivery delay in ms, or a function drawing one per message (reorders). 0: next microtask. */
  latencyMs?: number | (() => number);
  /** The clock delays run on (default the host's), so latency works on fake timers in tests. */
  timers?: Timers;
}

/** Counters of what the network did, for tests. */
export interface MemoryNetworkStats {
  sent: number;
  delivered: number;
  /** Dropped by a cut link, a partition, the drop rate, a filter or a closed/unknown receiver. */
  dropped: number;
  /** Refused by the receiver's codec. */
  refused: number;
}

type Receiver = (text: string) => void;

/** The medium that connects {@link MemoryTransport}s. */
export class MemoryNetwork {
  readonly maxBytes: number;
  readonly stats: MemoryNetworkStats = { sent: 0, delivered: 0, dropped: 0, refused: 0 };
  /** Return false to drop a message; runs before delivery is scheduled. */
  filter: ((m: WireMessage) => boolean) | null = null;
  private readonly receivers = new Map<NodeId, Receiver>();
  private readonly cut = new Set<string>();
  private groups: Map<NodeId, number> | null = null;
  private dropRate = 0;
  private random: () => number = Math.random;
  private readonly latency: () => number;
  private readonly timers: Timers;

  constructor(options: MemoryNetworkOptions = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    const l = options.latencyMs ?? 0;
    this.latency = typeof l === 'function' ? l : () => l;
    this.timers = options.timers ?? realTimers;
  }

  /** A transport for node `id` on this network. */
  transport(id: NodeId): MemoryTransport {
    return new MemoryTransport(this, id);
  }

  /** Drops every message from `from` to `to` (one direction) until {@link heal}. */
  drop(from: NodeId, to: NodeId): void { this.cut.add(`${from}\u0000${to}`); }

  /** Cuts `id` off from everyone, both directions. */
  isolate(id: NodeId): void { this.partition([id]); }

  /** Only nodes in the same group talk; nodes in no group form one group together. */
  partition(...groups: NodeId[][]): void {
    this.groups = new Map();
    groups.forEach((g, i) => g.forEach((id) => this.groups!.set(id, i + 1)));
  }

  /** Drops each message with probability `rate`, drawn from `random`. */
  setDropRate(rate: number, random: () => number = Math.random): void {
    this.dropRate = rate;
    this.random = random;
  }

  /** Restores every link: no cuts, no partition, no drop rate. */
  heal(): void {
    this.cut.clear();
    this.groups = null;
    this.dropRate = 0;
  }

  /** Delivers raw text to `to` as if a peer had sent it: for testing what the codec refuses. */
  sendRaw(to: NodeId, text: string): void {
    this.schedule(to, text);
  }

  /** @internal */
  attach(id: NodeId, receiver: Receiver): void { this.receivers.set(id, receiver); }
  /** @internal */
  detach(id: NodeId, receiver: Receiver): void {
    if (this.receivers.get(id) === receiver) this.receivers.delete(id);
  }

  /** @internal Called by {@link MemoryTransport.send}. */
  route(m: WireMessage): void {
    this.stats.sent++;
    if (!this.linked(m.from, m.to) || (this.filter && !this.filter(m))) { this.stats.dropped++; return; }
    if (this.dropRate > 0 && this.random() < this.dropRate) { this.stats.dropped++; return; }
    this.schedule(m.to, encodeMessage(m));
  }

  private linked(from: NodeId, to: NodeId): boolean {
    if (this.cut.has(`${from}\u0000${to}`)) return false;
    if (!this.groups) return true;
    return (this.groups.get(from) ?? 0) === (this.groups.get(to) ?? 0);
  }

  private schedule(to: NodeId, text: string): void {
    // Looked up at delivery, not at send: a node that closes meanwhile must not receive it.
    const deliver = (): void => {
      const r = this.receivers.get(to);
      if (!r) { this.stats.dropped++; return; }
      r(text);
    };
    const ms = this.latency();
    if (ms > 0) this.timers.setTimeout(deliver, ms);
    else queueMicrotask(deliver);
  }

  /** @internal */
  countDelivered(ok: boolean): void {
    if (ok) this.stats.delivered++;
    else this.stats.refused++;
  }
}

/** One node's endpoint on a {@link MemoryNetwork}. */
export class MemoryTransport implements Transport {
  readonly id: NodeId;
  private readonly network: MemoryNetwork;
  private onMessage: ((m: WireMessage) => void) | null = null;

  constructor(network: MemoryNetwork, id: NodeId) {
    this.network = network;
    this.id = id;
  }

  async start(onMessage: (message: WireMessage) => void): Promise<void> {
    this.onMessage = onMessage;
    this.network.attach(this.id, this.handleText);
  }

  send(message: WireMessage): void {
    if (!this.onMessage) return; // not started or closed: a closed transport sends nothing
    this.network.route(message);
  }

  async close(): Promise<void> {
    this.network.detach(this.id, this.handleText);
    this.onMessage = null;
  }

  private readonly handleText = (text: string): void => {
    const onMessage = this.onMessage;
    if (!onMessage) return;
    let m: WireMessage;
    try {
      m = decodeMessage(text, { maxBytes: this.network.maxBytes });
    } catch {
      // A peer's garbage is dropped, never thrown: the network counts it for tests.
      this.network.countDelivered(false);
      return;
    }
    this.network.countDelivered(true);
    onMessage(m);
  };
}
