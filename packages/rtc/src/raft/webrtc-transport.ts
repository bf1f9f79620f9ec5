/**
 * `WebRtcTransport`: a RaftNode's {@link Transport} over the mesh's data channels. Each message travels as
 * the shared codec's JSON text in the mesh's Raft slot (`sendRaftMessage(peer, text)`), so the receiver
 * checks it exactly as every other transport does: size first, then JSON, then the message validators.
 * Anything else, a message not addressed to this node, or one whose `from` is not the peer whose channel it
 * came on (a peer only speaks for itself) is dropped and counted. A message to a peer whose channel is not
 * open is dropped, never queued: Raft retries what matters, and a queue would only grow while a peer is gone.
 *
 * **Fragments.** A data channel message has a size limit (Chromium's SCTP `max-message-size` is 256 KiB) and
 * so has the mesh's control frame, while the core's appends reach about 1 MiB and a snapshot is the whole
 * state. Text longer than `fragmentChars` is therefore sent as consecutive fragments, `#<i>/<n>:<piece>`
 * (codec text always starts with `{`), which the ordered channel delivers back to back; the receiver joins
 * them and decodes the whole. A sequence broken by a lost channel or a misbehaving peer is discarded.
 * @module
 */
import {
  CodecError, decodeMessage, encodeMessage, type NodeId, type Transport, type WireMessage,
} from '@raftrtc/raft';
import type { MeshHub, PeerDisconnectReason } from './mesh-link.js';

/**
 * Default bound on one received message (UTF-8 bytes, or characters while fragments are joined). The core
 * cuts appends at about 1 MiB counted in UTF-16 units: up to 3 MiB of UTF-8 for non-Latin chat (the seeds
 * are Vietnamese and Chinese); the bound leaves room for that and for a modest snapshot.
 */
export const DEFAULT_RTC_MAX_MESSAGE_BYTES = 8 << 20;

/**
 * Default fragment size in UTF-16 units. A fragment's frame is at most about 6× this in bytes (3 bytes of
 * UTF-8 per unit, doubled if every character is a quote JSON escapes): 96 KiB, under both the mesh's default
 * 256 KiB control frame limit and Chromium's 256 KiB data channel message limit.
 */
export const DEFAULT_FRAGMENT_CHARS = 16 * 1024;

const FRAGMENT = /^#(\d{1,9})\/(\d{1,9}):/;

/** Options of {@link WebRtcTransport}. */
export interface WebRtcTransportOptions {
  /** This node's id: the mesh's peer id. */
  id: NodeId;
  /** The mesh, shared with the room membership. */
  hub: MeshHub;
  /** Largest accepted message; default {@link DEFAULT_RTC_MAX_MESSAGE_BYTES}. */
  maxMessageBytes?: number;
  /** Longer codec text is sent in fragments of this many UTF-16 units; default {@link DEFAULT_FRAGMENT_CHARS}. */
  fragmentChars?: number;
}

/** What a {@link WebRtcTransport} did, for metrics and tests. */
export interface WebRtcTransportStats {
  /** Messages sent (a fragmented one counts once). */
  sent: number;
  /** Of those, sent in fragments. */
  fragmented: number;
  /** Not sent: the peer's channel is not open. */
  unsent: number;
  /** Not sent: not encodable as JSON, or the mesh refused it (too large, or the channel was closing). */
  refused: number;
  delivered: number;
  /** Refused for size: by the codec, or fragments adding up to more than the bound. */
  oversized: number;
  /** Not codec text or a fragment: not a string, not JSON, not a valid message, or a fragment out of sequence. */
  malformed: number;
  /** Valid, but not for this node or not from the peer whose channel carried it. */
  misaddressed: number;
  /** Fragmented messages discarded unfinished (the channel closed, or the sender started another). */
  incomplete: number;
}

/** A fragmented message being received from one peer. */
interface Assembly { count: number; next: number; parts: string[]; chars: number }

/** A RaftNode transport over the WebRTC mesh; see the module comment. */
export class WebRtcTransport implements Transport {
  readonly id: NodeId;
  readonly stats: WebRtcTransportStats = {
    sent: 0, fragmented: 0, unsent: 0, refused: 0, delivered: 0, oversized: 0, malformed: 0, misaddressed: 0, incomplete: 0,
  };
  private readonly hub: MeshHub;
  private readonly maxBytes: number;
  private readonly fragmentChars: number;
  private onMessage: ((m: WireMessage) => void) | null = null;
  private unsubscribe: Array<() => void> = [];
  private readonly partials = new Map<NodeId, Assembly>();

  constructor(options: WebRtcTransportOptions) {
    this.id = options.id;
    this.hub = options.hub;
    this.maxBytes = options.maxMessageBytes ?? DEFAULT_RTC_MAX_MESSAGE_BYTES;
    this.fragmentChars = Math.max(1, options.fragmentChars ?? DEFAULT_FRAGMENT_CHARS);
  }

  async start(onMessage: (message: WireMessage) => void): Promise<void> {
    this.onMessage = onMessage;
    if (this.unsubscribe.length === 0) {
      this.unsubscribe = [this.hub.on('raft', this.handlePayload), this.hub.on('disconnected', this.handleDisconnected)];
    }
  }

  send(message: WireMessage): void {
    if (!this.onMessage) return; // not started or closed: a closed transport sends nothing
    let text: string;
    try {
      text = encodeMessage(message);
    } catch {
      // A command that is not JSON (a cycle, a BigInt) cannot cross any wire; send must not throw for it.
      this.stats.refused++;
      return;
    }
    if (text.length <= this.fragmentChars) { this.count(this.hub.send(message.to, text)); return; }
    const count = Math.ceil(text.length / this.fragmentChars);
    for (let i = 0; i < count; i++) {
      const result = this.hub.send(message.to, `#${i}/${count}:${text.slice(i * this.fragmentChars, (i + 1) * this.fragmentChars)}`);
      // The rest would be discarded by the receiver anyway: the sequence is broken.
      if (result !== 'sent') { this.count(result); return; }
    }
    this.stats.fragmented++;
    this.count('sent');
  }

  async close(): Promise<void> {
    this.onMessage = null;
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    this.partials.clear();
  }

  private count(result: ReturnType<MeshHub['send']>): void {
    if (result === 'sent') this.stats.sent++;
    else if (result === 'refused') this.stats.refused++;
    else this.stats.unsent++;
  }

  private readonly handleDisconnected = (peer: NodeId, _reason: PeerDisconnectReason): void => {
    // The channel that carried the first fragments is gone; the rest will never come on it.
    if (this.partials.delete(peer)) this.stats.incomplete++;
  };

  private readonly handlePayload = (from: NodeId, payload: unknown): void => {
    if (!this.onMessage) return;
    if (typeof payload !== 'string') { this.stats.malformed++; return; }
    const head = FRAGMENT.exec(payload);
    if (!head && payload.startsWith('#')) { this.stats.malformed++; return; }
    if (!head) {
      // A whole message while fragments were pending: the sender gave up on them (a send failed midway).
      if (this.partials.delete(from)) this.stats.incomplete++;
      this.deliver(from, payload);
      return;
    }
    const text = this.join(from, Number(head[1]), Number(head[2]), payload.slice(head[0].length));
    if (text !== null) this.deliver(from, text);
  };

  /** Adds one fragment; returns the whole text once its last fragment arrived, else null. */
  private join(from: NodeId, index: number, count: number, piece: string): string | null {
    let p = this.partials.get(from);
    if (index === 0) {
      if (p) this.stats.incomplete++;
      p = { count, next: 0, parts: [], chars: 0 };
      this.partials.set(from, p);
    }
    if (!p || count < 2 || index !== p.next || count !== p.count) {
      this.partials.delete(from);
      this.stats.malformed++;
      return null;
    }
    p.chars += piece.length;
    // Checked as fragments arrive: a peer must not make us hold more than one message's worth.
    if (p.chars > this.maxBytes) {
      this.partials.delete(from);
      this.stats.oversized++;
      return null;
    }
    p.parts.push(piece);
    p.next++;
    if (p.next < p.count) return null;
    this.partials.delete(from);
    return p.parts.join('');
  }

  private deliver(from: NodeId, text: string): void {
    const deliver = this.onMessage;
    if (!deliver) return;
    let m: WireMessage;
    try {
      m = decodeMessage(text, { maxBytes: this.maxBytes });
    } catch (err) {
      if (err instanceof CodecError && err.reason === 'oversized') this.stats.oversized++;
      else this.stats.malformed++;
      return;
    }
    if (m.to !== this.id || m.from !== from) { this.stats.misaddressed++; return; }
    this.stats.delivered++;
    deliver(m);
  }
}
