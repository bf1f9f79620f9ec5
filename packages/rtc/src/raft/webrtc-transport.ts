/**
 * `WebRtcTransport`: a RaftNode's {@link Transport} over the mesh's data channels. Each message travels as
 * the shared codec's JSON text in the mesh's Raft slot (`sendRaftMessage(peer, text)`), so the receiver
 * checks it exactly as every other transport does: size first, then JSON, then the message validators.
 * Anything else, a message not addressed to this node, or one whose `from` is not the peer whose channel it
 * came on (a peer only speaks for itself) is dropped and counted. A message to a peer whose channel is not
 * open is dropped, never queued: Raft retries what matters, and a queue would only grow while a peer is gone.
 * @module
 */
import {
  CodecError, decodeMessage, encodeMessage, type NodeId, type Transport, type WireMessage,
} from '@raftrtc/raft';
import type { MeshHub } from './mesh-link.js';

/**
 * Default bound on one received message, in UTF-8 bytes: the core sends appends of up to about 1 MiB. The
 * mesh frames the text once more (JSON escapes every quote), so its frame limit (`WebRTCManager`'s
 * `limits.maxControlFrameBytes`, 256 KiB by default) must be raised above this plus the escaping, or large
 * appends and snapshots are refused by the sender's mesh (counted in `stats.refused`) and never arrive.
 */
export const DEFAULT_RTC_MAX_MESSAGE_BYTES = 1 << 20;

/** Options of {@link WebRtcTransport}. */
export interface WebRtcTransportOptions {
  /** This node's id: the mesh's peer id. */
  id: NodeId;
  /** The mesh, shared with the room membership. */
  hub: MeshHub;
  /** Largest accepted message in bytes; default {@link DEFAULT_RTC_MAX_MESSAGE_BYTES}. */
  maxMessageBytes?: number;
}

/** What a {@link WebRtcTransport} did, for metrics and tests. */
export interface WebRtcTransportStats {
  sent: number;
  /** Not sent: the peer's channel is not open. */
  unsent: number;
  /** Not sent: not encodable as JSON, or the mesh refused it (larger than its frame limit, or the channel was closing). */
  refused: number;
  delivered: number;
  /** Refused by the codec for size. */
  oversized: number;
  /** Not codec text: not a string, not JSON, or not a valid message. */
  malformed: number;
  /** Valid, but not for this node or not from the peer whose channel carried it. */
  misaddressed: number;
}

/** A RaftNode transport over the WebRTC mesh; see the module comment. */
export class WebRtcTransport implements Transport {
  readonly id: NodeId;
  readonly stats: WebRtcTransportStats = { sent: 0, unsent: 0, refused: 0, delivered: 0, oversized: 0, malformed: 0, misaddressed: 0 };
  private readonly hub: MeshHub;
  private readonly maxBytes: number;
  private onMessage: ((m: WireMessage) => void) | null = null;
  private unsubscribe: (() => void) | null = null;

  constructor(options: WebRtcTransportOptions) {
    this.id = options.id;
    this.hub = options.hub;
    this.maxBytes = options.maxMessageBytes ?? DEFAULT_RTC_MAX_MESSAGE_BYTES;
  }

  async start(onMessage: (message: WireMessage) => void): Promise<void> {
    this.onMessage = onMessage;
    this.unsubscribe ??= this.hub.on('raft', this.handlePayload);
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
    const result = this.hub.send(message.to, text);
    if (result === 'sent') this.stats.sent++;
    else if (result === 'refused') this.stats.refused++;
    else this.stats.unsent++;
  }

  async close(): Promise<void> {
    this.onMessage = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  private readonly handlePayload = (from: NodeId, payload: unknown): void => {
    const deliver = this.onMessage;
    if (!deliver) return;
    if (typeof payload !== 'string') { this.stats.malformed++; return; }
    let m: WireMessage;
    try {
      m = decodeMessage(payload, { maxBytes: this.maxBytes });
    } catch (err) {
      if (err instanceof CodecError && err.reason === 'oversized') this.stats.oversized++;
      else this.stats.malformed++;
      return;
    }
    if (m.to !== this.id || m.from !== from) { this.stats.misaddressed++; return; }
    this.stats.delivered++;
    deliver(m);
  };
}
