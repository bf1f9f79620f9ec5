/**
 * `MemoryMesh`: an in-process stand-in for the WebRTC mesh, for unit tests of the Raft layer. Each peer gets a
 * {@link MeshLink} with the mesh's semantics: a link between two peers is either open (both sides got
 * `connected`) or not; messages on an open link arrive in order, asynchronously, after a JSON round trip
 * (as over the control channel); messages on a closed link are lost.
 * @module
 */
import type { NodeId } from '@raftrtc/raft';
import type { PeerDisconnectReason, MeshLink } from './mesh-link.js';

/** Counters of what the mesh did, for tests. */
export interface MemoryMeshStats {
  delivered: number;
  /** Sent on a link that was not open, or that closed before delivery. */
  lost: number;
}

interface Callbacks {
  message: ((from: NodeId, message: unknown) => void) | null;
  connected: ((peerId: NodeId) => void) | null;
  disconnected: ((peerId: NodeId, reason: PeerDisconnectReason) => void) | null;
}

const pairKey = (a: NodeId, b: NodeId): string => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`);

/** Options of {@link MemoryMesh}. */
export interface MemoryMeshOptions {
  /** Largest JSON frame a send accepts, in UTF-16 units; larger sends throw, as the real mesh's do. Default: no limit. */
  maxFrameLength?: number;
}

/** Thrown by a {@link MemoryMesh} link's send for a frame over `maxFrameLength`. */
export class MemoryMeshFrameError extends RangeError {
  override readonly name = 'MemoryMeshFrameError';
}

/** The in-memory mesh; see the module comment. */
export class MemoryMesh {
  readonly stats: MemoryMeshStats = { delivered: 0, lost: 0 };
  private readonly maxFrameLength: number;
  private readonly peers = new Map<NodeId, Callbacks>();
  /** Open links, and a generation per pair so a message sent before a reconnect is not delivered after it. */
  private readonly open = new Map<string, number>();
  private generation = 0;

  constructor(options: MemoryMeshOptions = {}) {
    this.maxFrameLength = options.maxFrameLength ?? Infinity;
  }

  /** A link for peer `id` (not connected to anyone yet). */
  link(id: NodeId): MeshLink {
    const cb: Callbacks = { message: null, connected: null, disconnected: null };
    this.peers.set(id, cb);
    return {
      sendRaftMessage: (to, message) => this.send(id, to, message),
      setOnRaftMessage: (f) => { cb.message = f; },
      setOnPeerConnected: (f) => { cb.connected = f; },
      setOnPeerDisconnected: (f) => { cb.disconnected = f; },
    };
  }

  /** Opens the link between `a` and `b`: both get `connected`, in a microtask (as a channel's `open` event). */
  connect(a: NodeId, b: NodeId): void {
    const key = pairKey(a, b);
    if (this.open.has(key)) return;
    this.open.set(key, ++this.generation);
    queueMicrotask(() => {
      if (this.open.get(key) === undefined) return;
      this.peers.get(a)?.connected?.(b);
      this.peers.get(b)?.connected?.(a);
    });
  }

  /** Opens the link between `id` and every other peer of the mesh. */
  connectAll(id: NodeId): void {
    for (const other of this.peers.keys()) if (other !== id) this.connect(id, other);
  }

  /** Closes the link between `a` and `b`; both get `disconnected` with `reason`. */
  disconnect(a: NodeId, b: NodeId, reason: PeerDisconnectReason): void {
    const key = pairKey(a, b);
    if (!this.open.delete(key)) return;
    queueMicrotask(() => {
      this.peers.get(a)?.disconnected?.(b, reason);
      this.peers.get(b)?.disconnected?.(a, reason);
    });
  }

  /** Closes every link of `id` with `reason` (`left`: its presence left the room; `failed`: its network died). */
  isolate(id: NodeId, reason: PeerDisconnectReason): void {
    for (const other of this.peers.keys()) if (other !== id) this.disconnect(id, other, reason);
  }

  /**
   * `id`'s presence leaves the room: every other peer gets `disconnected(id, 'left')`, linked to it or not
   * (presence is room-wide), its links close, and it can never connect again.
   */
  leave(id: NodeId): void {
    for (const other of this.peers.keys()) if (other !== id) this.open.delete(pairKey(id, other));
    this.peers.delete(id);
    queueMicrotask(() => {
      for (const cb of this.peers.values()) cb.disconnected?.(id, 'left');
    });
  }

  /** Delivers `payload` to `to` as if `from` had sent it on their open link, bypassing the sender's link. */
  inject(from: NodeId, to: NodeId, payload: unknown): void {
    this.send(from, to, payload);
  }

  private send(from: NodeId, to: NodeId, message: unknown): boolean {
    const key = pairKey(from, to);
    const gen = this.open.get(key);
    if (gen === undefined) { this.stats.lost++; return false; }
    // Through JSON, like the mesh's framing: what arrives is what a real peer would parse.
    const text = JSON.stringify(message);
    if (text.length > this.maxFrameLength) throw new MemoryMeshFrameError(`frame of ${text.length} exceeds ${this.maxFrameLength}`);
    queueMicrotask(() => {
      const target = this.peers.get(to);
      if (this.open.get(key) !== gen || !target?.message) { this.stats.lost++; return; }
      this.stats.delivered++;
      target.message(from, JSON.parse(text) as unknown);
    });
    return true;
  }
}
