/**
 * `TcpTransport`: a {@link Transport} between Node.js processes over plain TCP.
 *
 * Each node listens on one address and keeps one outbound connection per peer, opened lazily on the first
 * send and used only for sending; inbound connections are used only for receiving. Keeping the two
 * directions apart means there is never a question of which of two simultaneous dials wins.
 *
 * Wire format: every frame is `[length u32be][payload]`. The first frames of a connection are the handshake
 * (JSON objects, at most {@link HANDSHAKE_MAX_BYTES} each):
 *
 * 1. dialer → listener: `{"t":"hello","v":1,"id":<dialer id>,"nonce":<32 random bytes, base64>}`
 * 2. listener → dialer: `{"t":"welcome","v":1,"id":<listener id>,"nonce":<32 random bytes, base64>,"proof":P_l}`
 * 3. dialer → listener: `{"t":"proof","proof":P_d}`
 *
 * where `P_x = base64(HMAC-SHA256(secret, "raftrtc-tcp/1\n" + role + "\n" + dialerId + "\n" + listenerId +
 * "\n" + dialerNonce + "\n" + listenerNonce))`, `role` being `listener` or `dialer`. Both nonces and both ids
 * are bound into both proofs, so a proof cannot be replayed on another connection or reflected back with the
 * roles swapped. The dialer also checks that the listener is the peer it meant to reach. After the handshake
 * every frame from the dialer is one message from the shared codec (`encodeMessage`), UTF-8.
 *
 * Anything unexpected (a frame above the limit, bytes that are not UTF-8, text the codec refuses, a failed
 * or slow handshake) closes that connection and is counted in {@link TcpTransport.stats}; nothing from such
 * a connection reaches `onMessage`.
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { TextDecoder } from 'node:util';
import {
  CodecError, DEFAULT_MAX_MESSAGE_BYTES, RaftError, decodeMessage, encodeMessage,
  type NodeId, type Transport, type WireMessage,
} from '@raftrtc/raft';

/** Largest handshake frame: ids and nonces only, so anything bigger is not a peer. */
export const HANDSHAKE_MAX_BYTES = 4096;

const PROTOCOL_VERSION = 1;
const NONCE_BYTES = 32;

/** A host and port. */
export interface TcpAddress {
  host: string;
  port: number;
}

/** Structured log sink: an event name and its fields. */
export type TcpTransportLog = (event: string, fields: Record<string, unknown>) => void;

export interface TcpTransportOptions {
  /** This node's id; peers authenticate it in the handshake. */
  id: NodeId;
  /** Where to listen for peers; port 0 picks a free port (see {@link TcpTransport.address}). */
  listen: TcpAddress;
  /** Where each peer listens. Can be changed later with `addPeer`/`removePeer`. */
  peers?: Record<NodeId, TcpAddress>;
  /** The cluster secret every member shares. A string is taken as UTF-8. */
  secret: string | Uint8Array;
  /** Largest message in bytes, both ways. Default the codec's {@link DEFAULT_MAX_MESSAGE_BYTES}. */
  maxMessageBytes?: number;
  /**
   * Messages kept per peer while it is unreachable or slow. Default 4096. When full the oldest is dropped:
   * Raft tolerates loss, and the newest messages carry the newest term and commit, so they are the ones
   * worth having when the peer comes back (the old ones would be superseded or re-sent anyway).
   */
  maxQueuedMessages?: number;
  /** Bytes kept per peer, counted like `maxQueuedMessages` (oldest dropped first). Default 64 MiB. */
  maxQueuedBytes?: number;
  /**
   * Reconnect delays: after the n-th consecutive failed dial (n ≥ 1) the next waits `min(maxMs, initialMs *
   * 2^(n-1))`, and after a connection that worked `initialMs`, each times a factor drawn
   * from [0.5, 1) so that nodes restarted together do not redial in lockstep. Default 100 ms up to 5 s.
   */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Source of the jitter, in [0, 1); default `Math.random`. Injectable for tests. */
  random?: () => number;
  /** A connection whose handshake does not finish in this long is closed. Default 5000 ms. */
  handshakeTimeoutMs?: number;
  /** Structured log; silent by default. */
  log?: TcpTransportLog;
}

/** Counters, cumulative since construction. */
export interface TcpTransportStats {
  /** Inbound connections accepted. */
  accepted: number;
  /** Outbound connections attempted (first dials and redials). */
  dials: number;
  /** Connections, either way, that completed the handshake. */
  authenticated: number;
  /** Handshakes refused: a wrong proof, a wrong peer id, a handshake frame that is not one, or a timeout. */
  authFailures: number;
  /** Connections closed for a frame above the size limit. */
  oversized: number;
  /** Connections closed for a message the codec refused (not UTF-8, not JSON, not a message). */
  malformed: number;
  /** Messages dropped because they were not addressed to this node or not from the authenticated peer. */
  misaddressed: number;
  /** Messages delivered to `onMessage`. */
  delivered: number;
  /** Messages handed to a socket. */
  sent: number;
  /** Messages dropped from a full send queue. */
  queueDropped: number;
  /** Messages dropped because the destination is not a known peer, or too big to send. */
  unroutable: number;
}

/** The state of the link to one peer, for operators and tests. */
export interface TcpPeerStatus {
  address: TcpAddress;
  /** An authenticated connection is open. */
  connected: boolean;
  /** Messages waiting in the send queue. */
  queued: number;
  /** Consecutive failed dials (the backoff exponent). */
  failures: number;
}

/** A misuse of the transport (start twice, start after close) or a failure to listen. */
export class TcpTransportError extends RaftError {}

/** Why a connection was closed by us; carried in logs. */
type CloseReason = 'oversized' | 'malformed' | 'auth' | 'handshake-timeout' | 'peer-removed' | 'address-changed';

class FrameError extends Error {}

/**
 * Splits a byte stream into `[u32be length][payload]` frames, one at a time so that a limit raised after the
 * handshake applies exactly from the next frame on. Refuses a frame as soon as its header says it is too
 * long, before buffering any of it.
 */
class FrameReader {
  // Chunks are joined only once a whole frame is there: joining on every chunk would copy a large message
  // over and over (quadratic in its size).
  private chunks: Buffer[] = [];
  private buffered = 0;
  limit: number;
  constructor(limit: number) {
    this.limit = limit;
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete frame, or null until more bytes arrive. Throws {@link FrameError} for an oversized header. */
  next(): Buffer | null {
    if (this.buffered < 4) return null;
    while (this.chunks[0]!.length < 4) this.chunks.splice(0, 2, Buffer.concat(this.chunks.slice(0, 2)));
    const length = this.chunks[0]!.readUInt32BE(0);
    if (length > this.limit) throw new FrameError(`frame of ${length} bytes exceeds ${this.limit}`);
    if (this.buffered < 4 + length) return null;
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const rest = all.subarray(4 + length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return all.subarray(4, 4 + length);
  }
}

function frame(payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(payload.length, 0);
  return Buffer.concat([head, payload]);
}

function frameJson(value: unknown): Buffer {
  return frame(Buffer.from(JSON.stringify(value), 'utf8'));
}

/** The handshake proof of `role` for one connection (see the module comment). */
export function handshakeProof(
  secret: string | Uint8Array, role: 'dialer' | 'listener',
  dialerId: string, listenerId: string, dialerNonce: string, listenerNonce: string,
): string {
  return createHmac('sha256', secret)
    .update(['raftrtc-tcp/1', role, dialerId, listenerId, dialerNonce, listenerNonce].join('\n'), 'utf8')
    .digest('base64');
}

/** Compares a received base64 proof with the expected one without leaking where they differ. */
function proofMatches(received: unknown, expected: string): boolean {
  if (typeof received !== 'string') return false;
  const a = Buffer.from(received, 'base64');
  const b = Buffer.from(expected, 'base64');
  // timingSafeEqual needs equal lengths; the length of a valid proof is public anyway.
  return a.length === b.length && timingSafeEqual(a, b);
}

const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;
const isNonce = (v: unknown): v is string => typeof v === 'string' && Buffer.from(v, 'base64').length === NONCE_BYTES;

function parseHandshake(payload: Buffer): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(utf8.decode(payload));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

// fatal: bytes that are not UTF-8 are refused rather than silently replaced.
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** One outbound link: the queue, the socket when there is one, and the redial timer. */
interface Link {
  peer: NodeId;
  address: TcpAddress;
  queue: Buffer[];
  queuedBytes: number;
  socket: Socket | null;
  /** True once the current socket has passed the handshake and may carry messages. */
  ready: boolean;
  /** Whether the socket refused a write and we are waiting for 'drain'. */
  blocked: boolean;
  /** A flush is scheduled for the end of this turn of the event loop. */
  flushQueued: boolean;
  timer: ReturnType<typeof setTimeout> | null;
  /** Consecutive failed dials, for the backoff. */
  failures: number;
}

/** A {@link Transport} over TCP with a shared-secret handshake; see the module comment for the protocol. */
export class TcpTransport implements Transport {
  readonly id: NodeId;
  private readonly listenAt: TcpAddress;
  private readonly peers = new Map<NodeId, TcpAddress>();
  private readonly secret: Buffer;
  private readonly maxMessageBytes: number;
  private readonly maxQueuedMessages: number;
  private readonly maxQueuedBytes: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly random: () => number;
  private readonly handshakeTimeoutMs: number;
  private readonly log: TcpTransportLog;

  private readonly links = new Map<NodeId, Link>();
  /** Every socket we own, either way, so close() can end them all. */
  private readonly sockets = new Set<Socket>();
  private readonly handshakeTimers = new Map<Socket, ReturnType<typeof setTimeout>>();
  private server: Server | null = null;
  private onMessage: ((message: WireMessage) => void) | null = null;
  private started = false;
  private closed = false;
  private readonly counters: TcpTransportStats = {
    accepted: 0, dials: 0, authenticated: 0, authFailures: 0, oversized: 0, malformed: 0,
    misaddressed: 0, delivered: 0, sent: 0, queueDropped: 0, unroutable: 0,
  };

  constructor(options: TcpTransportOptions) {
    this.id = options.id;
    this.listenAt = { ...options.listen };
    for (const [peer, address] of Object.entries(options.peers ?? {})) this.peers.set(peer, { ...address });
    this.secret = typeof options.secret === 'string' ? Buffer.from(options.secret, 'utf8') : Buffer.from(options.secret);
    if (this.secret.length === 0) throw new TcpTransportError('the cluster secret must not be empty');
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxQueuedMessages = Math.max(1, options.maxQueuedMessages ?? 4096);
    this.maxQueuedBytes = options.maxQueuedBytes ?? 64 << 20;
    this.backoffInitialMs = options.backoff?.initialMs ?? 100;
    this.backoffMaxMs = Math.max(this.backoffInitialMs, options.backoff?.maxMs ?? 5000);
    this.random = options.random ?? Math.random;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 5000;
    this.log = options.log ?? (() => {});
  }

  /** A copy of the counters. */
  stats(): TcpTransportStats {
    return { ...this.counters };
  }

  /** The link to `peer`; undefined for a peer never sent to (links are opened lazily) or removed. */
  peerStatus(peer: NodeId): TcpPeerStatus | undefined {
    const link = this.links.get(peer);
    if (!link) return undefined;
    return { address: { ...link.address }, connected: link.ready, queued: link.queue.length, failures: link.failures };
  }

  /** The address actually listened on (the chosen port when `listen.port` was 0); only after `start`. */
  address(): TcpAddress {
    const a = this.server?.address();
    if (!a || typeof a === 'string') throw new TcpTransportError('the transport is not listening');
    return { host: a.address, port: a.port };
  }

  /** Adds a peer or changes its address; a connection to an old address is closed, queued messages kept. */
  addPeer(peer: NodeId, address: TcpAddress): void {
    const old = this.peers.get(peer);
    this.peers.set(peer, { ...address });
    const link = this.links.get(peer);
    if (!link || (old && old.host === address.host && old.port === address.port)) return;
    link.address = { ...address };
    this.detach(link, 'address-changed');
    // A new address is a new chance: dial it now rather than after the old address's backoff.
    this.clearLinkTimer(link);
    link.failures = 0;
    if (link.queue.length > 0 && !this.closed) this.dial(link);
  }

  /** Forgets a peer: its connection is closed and its queued messages dropped. */
  removePeer(peer: NodeId): void {
    this.peers.delete(peer);
    const link = this.links.get(peer);
    if (!link) return;
    this.links.delete(peer);
    this.clearLinkTimer(link);
    this.detach(link, 'peer-removed');
    link.queue = [];
    link.queuedBytes = 0;
  }

  async start(onMessage: (message: WireMessage) => void): Promise<void> {
    if (this.closed) throw new TcpTransportError('the transport is closed');
    if (this.started) throw new TcpTransportError('the transport is already started');
    this.started = true;
    this.onMessage = onMessage;
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (cause: Error): void => {
        reject(new TcpTransportError(`cannot listen on ${this.listenAt.host}:${this.listenAt.port}`, { cause }));
      };
      server.once('error', onError);
      server.listen(this.listenAt.port, this.listenAt.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    // Errors after listening (e.g. EMFILE on accept) are the server's to survive, not ours to crash on.
    server.on('error', (err) => this.log('tcp.server-error', { id: this.id, error: err.message }));
    this.log('tcp.listening', { id: this.id, ...this.address() });
  }

  send(message: WireMessage): void {
    if (this.closed) return;
    const address = this.peers.get(message.to);
    if (!address || message.to === this.id) {
      this.counters.unroutable++;
      return;
    }
    const payload = Buffer.from(encodeMessage(message), 'utf8');
    if (payload.length > this.maxMessageBytes) {
      // The peer would refuse it and close the connection, taking the good messages behind it along.
      this.counters.unroutable++;
      this.log('tcp.message-too-big', { id: this.id, peer: message.to, bytes: payload.length });
      return;
    }
    let link = this.links.get(message.to);
    if (!link) {
      link = {
        peer: message.to, address: { ...address }, queue: [], queuedBytes: 0,
        socket: null, ready: false, blocked: false, flushQueued: false, timer: null, failures: 0,
      };
      this.links.set(message.to, link);
    }
    const f = frame(payload);
    link.queue.push(f);
    link.queuedBytes += f.length;
    while (link.queue.length > this.maxQueuedMessages || (link.queuedBytes > this.maxQueuedBytes && link.queue.length > 1)) {
      const dropped = link.queue.shift()!;
      link.queuedBytes -= dropped.length;
      this.counters.queueDropped++;
    }
    if (link.ready) this.scheduleFlush(link);
    else if (!link.socket && !link.timer) this.dial(link);
  }

  /**
   * Flushes once the current task's sends are queued: a Ready's messages to one peer (appends, heartbeat,
   * forwarded proposals) then leave in one write system call instead of one each.
   */
  private scheduleFlush(link: Link): void {
    if (link.flushQueued) return;
    link.flushQueued = true;
    queueMicrotask(() => {
      link.flushQueued = false;
      this.flush(link);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onMessage = null;
    for (const link of this.links.values()) {
      this.clearLinkTimer(link);
      link.queue = [];
      link.queuedBytes = 0;
    }
    for (const timer of this.handshakeTimers.values()) clearTimeout(timer);
    this.handshakeTimers.clear();
    const closing: Promise<void>[] = [];
    for (const socket of this.sockets) {
      // Still in the set means 'close' has not fired yet (the set forgets a socket on 'close').
      closing.push(new Promise((r) => socket.once('close', () => r())));
      socket.destroy();
    }
    const server = this.server;
    if (server) closing.push(new Promise((r) => server.close(() => r())));
    await Promise.all(closing);
    this.log('tcp.closed', { id: this.id });
  }

  // ---- outbound ----

  private dial(link: Link): void {
    this.counters.dials++;
    const { host, port } = link.address;
    const socket = connect({ host, port });
    socket.setNoDelay(true); // Raft messages are small and latency-bound: no Nagle delay.
    link.socket = socket;
    link.ready = false;
    link.blocked = false;
    this.track(socket);
    const reader = new FrameReader(HANDSHAKE_MAX_BYTES);
    const dialerNonce = randomBytes(NONCE_BYTES).toString('base64');
    let authenticated = false;

    socket.once('connect', () => {
      socket.write(frameJson({ t: 'hello', v: PROTOCOL_VERSION, id: this.id, nonce: dialerNonce }));
    });
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      for (;;) {
        let payload: Buffer | null;
        try {
          payload = reader.next();
        } catch {
          this.counters.authFailures++;
          return this.drop(socket, 'auth');
        }
        if (payload === null) return;
        if (authenticated) {
          // The listener never sends after the welcome; anything more is a broken or hostile peer.
          this.counters.malformed++;
          return this.drop(socket, 'malformed');
        }
        const w = parseHandshake(payload);
        const ok = w !== null && w.t === 'welcome' && w.v === PROTOCOL_VERSION && w.id === link.peer && isNonce(w.nonce)
          && proofMatches(w.proof, handshakeProof(this.secret, 'listener', this.id, link.peer, dialerNonce, w.nonce));
        if (!ok) {
          this.counters.authFailures++;
          this.log('tcp.auth-failed', { id: this.id, peer: link.peer, direction: 'out', claimed: w?.id });
          return this.drop(socket, 'auth');
        }
        authenticated = true;
        this.clearHandshakeTimer(socket);
        socket.write(frameJson({
          t: 'proof', proof: handshakeProof(this.secret, 'dialer', this.id, link.peer, dialerNonce, w.nonce as string),
        }));
        this.counters.authenticated++;
        link.ready = true;
        link.failures = 0;
        this.log('tcp.connected', { id: this.id, peer: link.peer });
        this.flush(link);
      }
    });
    socket.on('drain', () => {
      link.blocked = false;
      if (link.socket === socket && link.ready) this.flush(link);
    });
    socket.on('close', () => {
      if (link.socket !== socket) return; // replaced already (address change, peer removed)
      link.socket = null;
      link.ready = false;
      link.blocked = false;
      if (this.closed || this.links.get(link.peer) !== link) return;
      if (!authenticated) link.failures++;
      this.scheduleRedial(link);
    });
  }

  /** Writes queued frames until the socket pushes back. */
  private flush(link: Link): void {
    const socket = link.socket;
    // A socket the peer has reset is destroyed before its 'close' arrives; keep the queue for the redial.
    if (!socket || !link.ready || socket.destroyed || !socket.writable) return;
    socket.cork();
    while (link.queue.length > 0 && !link.blocked) {
      const f = link.queue.shift()!;
      link.queuedBytes -= f.length;
      this.counters.sent++;
      // Past this point a message is the socket's: lost if the connection dies, which Raft tolerates.
      if (!socket.write(f)) link.blocked = true;
    }
    socket.uncork();
  }

  private scheduleRedial(link: Link): void {
    // After a connection that worked, the first redial still waits initialMs: a peer that accepts and then
    // drops us at once must not turn into a tight loop.
    const base = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** Math.min(Math.max(0, link.failures - 1), 30));
    const delay = base * (0.5 + this.random() / 2);
    this.log('tcp.redial', { id: this.id, peer: link.peer, failures: link.failures, delayMs: Math.round(delay) });
    link.timer = setTimeout(() => {
      link.timer = null;
      if (this.closed || this.links.get(link.peer) !== link) return;
      // Lazy like the first dial: with nothing to say, wait for the next send.
      if (link.queue.length > 0) this.dial(link);
    }, delay);
  }

  /** Closes a link's connection now, so nothing more is written to it; its close handler then stands down. */
  private detach(link: Link, reason: CloseReason): void {
    const socket = link.socket;
    link.socket = null;
    link.ready = false;
    link.blocked = false;
    if (socket) this.drop(socket, reason);
  }

  private clearLinkTimer(link: Link): void {
    if (link.timer) clearTimeout(link.timer);
    link.timer = null;
  }

  // ---- inbound ----

  private accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.counters.accepted++;
    this.track(socket);
    const reader = new FrameReader(HANDSHAKE_MAX_BYTES);
    const listenerNonce = randomBytes(NONCE_BYTES).toString('base64');
    let stage: 'hello' | 'proof' | 'open' = 'hello';
    let peer = '';
    let dialerNonce = '';

    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      while (!socket.destroyed) {
        let payload: Buffer | null;
        try {
          payload = reader.next();
        } catch {
          const reason = stage === 'open' ? 'oversized' : 'auth';
          this.counters[reason === 'auth' ? 'authFailures' : 'oversized']++;
          this.log('tcp.refused', { id: this.id, peer: peer || undefined, reason });
          return this.drop(socket, reason);
        }
        if (payload === null) return;
        if (stage === 'open') {
          if (!this.receive(socket, peer, payload)) return;
          continue;
        }
        const h = parseHandshake(payload);
        if (stage === 'hello') {
          if (h === null || h.t !== 'hello' || h.v !== PROTOCOL_VERSION || !isId(h.id) || h.id === this.id || !isNonce(h.nonce)) {
            this.counters.authFailures++;
            this.log('tcp.auth-failed', { id: this.id, direction: 'in', stage });
            return this.drop(socket, 'auth');
          }
          peer = h.id;
          dialerNonce = h.nonce;
          socket.write(frameJson({
            t: 'welcome', v: PROTOCOL_VERSION, id: this.id, nonce: listenerNonce,
            proof: handshakeProof(this.secret, 'listener', peer, this.id, dialerNonce, listenerNonce),
          }));
          stage = 'proof';
        } else {
          if (h === null || h.t !== 'proof' || !proofMatches(h.proof, handshakeProof(this.secret, 'dialer', peer, this.id, dialerNonce, listenerNonce))) {
            this.counters.authFailures++;
            this.log('tcp.auth-failed', { id: this.id, peer, direction: 'in', stage });
            return this.drop(socket, 'auth');
          }
          stage = 'open';
          this.clearHandshakeTimer(socket);
          this.counters.authenticated++;
          // From now on frames are messages, which may be as large as the message limit.
          reader.limit = this.maxMessageBytes;
          this.log('tcp.accepted', { id: this.id, peer });
        }
      }
    });
    // We never write after the welcome, so a half-closed dialer has nothing more to get from us.
    socket.on('end', () => socket.destroy());
  }

  /** Decodes and delivers one message; false if the connection was closed for it. */
  private receive(socket: Socket, peer: NodeId, payload: Buffer): boolean {
    let message: WireMessage;
    try {
      message = decodeMessage(utf8.decode(payload), { maxBytes: this.maxMessageBytes });
    } catch (err) {
      const reason = err instanceof CodecError && err.reason === 'oversized' ? 'oversized' : 'malformed';
      this.counters[reason]++;
      this.log('tcp.refused', { id: this.id, peer, reason, detail: err instanceof Error ? err.message : String(err) });
      this.drop(socket, reason);
      return false;
    }
    if (message.to !== this.id || message.from !== peer) {
      // A node only speaks for itself; a message claiming another sender or meant for another node is dropped.
      this.counters.misaddressed++;
      this.log('tcp.misaddressed', { id: this.id, peer, from: message.from, to: message.to });
      return true;
    }
    const deliver = this.onMessage;
    if (!deliver) return false;
    this.counters.delivered++;
    deliver(message);
    return true;
  }

  // ---- both ----

  /** Registers a socket for close() and arms its handshake timeout. */
  private track(socket: Socket): void {
    this.sockets.add(socket);
    // Lets an idle link notice a peer that vanished without a FIN (power loss, a dropped route).
    socket.setKeepAlive(true, 10_000);
    const timer = setTimeout(() => {
      this.handshakeTimers.delete(socket);
      this.counters.authFailures++;
      this.log('tcp.handshake-timeout', { id: this.id });
      this.drop(socket, 'handshake-timeout');
    }, this.handshakeTimeoutMs);
    this.handshakeTimers.set(socket, timer);
    // Errors (refused, reset) always end in 'close', which is where the link reacts; here they only log.
    socket.on('error', (err: NodeJS.ErrnoException) => this.log('tcp.socket-error', { id: this.id, error: err.code ?? err.message }));
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.clearHandshakeTimer(socket);
    });
  }

  private clearHandshakeTimer(socket: Socket): void {
    const timer = this.handshakeTimers.get(socket);
    if (timer) clearTimeout(timer);
    this.handshakeTimers.delete(socket);
  }

  private drop(socket: Socket, reason: CloseReason): void {
    this.log('tcp.close-connection', { id: this.id, reason });
    socket.destroy();
  }
}
