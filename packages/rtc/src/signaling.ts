/**
 * Signaling: how peers find each other and exchange SDP and ICE. {@link Signaling} is the interface the
 * manager needs; {@link CentrifugeSignaling} implements it over a Centrifugo channel (our server or a real
 * Centrifugo) with the official `centrifuge` client. Signaling carries only SDP, ICE candidates and presence.
 * @module
 */
import { Centrifuge, type ClientInfo, type Subscription } from 'centrifuge';
import { describe, SignalingError } from './errors.js';
import type { Logger } from './logger.js';

/** The fields of an `RTCIceCandidateInit`, as they travel in an `ice-candidate` payload. */
export interface IceCandidateInit {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

/** Fields of every payload. `generation` numbers the connection attempts between two peers (see `peer-connection.ts`). */
interface Base { from: string; generation?: number }
/** An SDP offer to one peer. */
export interface OfferMessage extends Base { type: 'offer'; to: string; sdp: string }
/** An SDP answer to one peer. */
export interface AnswerMessage extends Base { type: 'answer'; to: string; sdp: string }
/** A trickled ICE candidate to one peer; `null` is end of candidates. */
export interface IceCandidateMessage extends Base { type: 'ice-candidate'; to: string; candidate: IceCandidateInit | null }
/** Announces the sender to the whole room (no `to`). */
export interface PeerJoinedMessage extends Base { type: 'peer-joined'; name?: string }
/** The peers the sender knows, sent to one peer. */
export interface PeerListMessage extends Base { type: 'peer-list'; to: string; peers: string[] }

/**
 * A payload on the room's channel: the same shapes the server accepts (`packages/server/src/signaling-messages.ts`,
 * which is not imported because this package runs in browsers).
 */
export type SignalingMessage = OfferMessage | AnswerMessage | IceCandidateMessage | PeerJoinedMessage | PeerListMessage;

/** Caps matching the server's: anything larger cannot be a real payload. */
const LIMITS = { peerId: 128, sdp: 60_000, candidate: 2_048, sdpMid: 256, name: 64, peers: 256 } as const;
const PEER_ID = /^[A-Za-z0-9_.:-]+$/;

const isPeerId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= LIMITS.peerId && PEER_ID.test(v);
const isShortString = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isOptional = (v: unknown, check: (v: unknown) => boolean): boolean => v === undefined || v === null || check(v);

function validateCandidate(v: unknown): IceCandidateInit | null | undefined {
  if (v === null) return null;
  if (!isRecord(v) || !isShortString(v.candidate, LIMITS.candidate)) return undefined;
  if (!isOptional(v.sdpMid, (x) => isShortString(x, LIMITS.sdpMid))) return undefined;
  if (!isOptional(v.sdpMLineIndex, (x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) < 65536)) return undefined;
  if (!isOptional(v.usernameFragment, (x) => isShortString(x, LIMITS.sdpMid))) return undefined;
  const c: IceCandidateInit = { candidate: v.candidate };
  if (v.sdpMid !== undefined) c.sdpMid = v.sdpMid as string | null;
  if (v.sdpMLineIndex !== undefined) c.sdpMLineIndex = v.sdpMLineIndex as number | null;
  if (v.usernameFragment !== undefined) c.usernameFragment = v.usernameFragment as string | null;
  return c;
}

/**
 * Checks the shape of a received payload and copies the known fields; `null` for anything that is not a
 * {@link SignalingMessage}. Does not check the sender: {@link CentrifugeSignaling} compares `from` with the
 * publisher.
 */
export function validateSignalingMessage(v: unknown): SignalingMessage | null {
  if (!isRecord(v) || !isPeerId(v.from)) return null;
  const from = v.from;
  if (v.generation !== undefined && !(Number.isSafeInteger(v.generation) && (v.generation as number) >= 0)) return null;
  const base: Base = v.generation === undefined ? { from } : { from, generation: v.generation as number };
  if (v.type === 'peer-joined') {
    if (v.name !== undefined && !isShortString(v.name, LIMITS.name)) return null;
    return v.name === undefined ? { ...base, type: 'peer-joined' } : { ...base, type: 'peer-joined', name: v.name as string };
  }
  if (!isPeerId(v.to)) return null;
  const to = v.to;
  switch (v.type) {
    case 'offer':
    case 'answer':
      return isShortString(v.sdp, LIMITS.sdp) && v.sdp.length > 0 ? { ...base, type: v.type, to, sdp: v.sdp } : null;
    case 'ice-candidate': {
      const candidate = validateCandidate(v.candidate);
      return candidate === undefined ? null : { ...base, type: 'ice-candidate', to, candidate };
    }
    case 'peer-list':
      return Array.isArray(v.peers) && v.peers.length <= LIMITS.peers && v.peers.every(isPeerId)
        ? { ...base, type: 'peer-list', to, peers: [...v.peers] }
        : null;
    default:
      return null;
  }
}

/** What a {@link Signaling} reports to the manager. */
export interface SignalingHandlers {
  /** A payload from another peer, already checked for shape and sender. */
  onMessage(message: SignalingMessage): void;
  /** The complete set of other peers in the room, after every (re)subscription: the resync point. */
  onPresence(peers: string[]): void;
  /** A peer appeared in the room. */
  onJoin(peerId: string): void;
  /** A peer's last connection left the room. */
  onLeave(peerId: string): void;
  /** A payload was refused (bad shape, forged sender); counted by the manager. */
  onDropped(reason: 'malformed' | 'forged'): void;
  /** Signaling went up (subscribed) or down (reconnecting). WebRTC connections survive it being down. */
  onStateChange(state: 'connected' | 'disconnected'): void;
}

/** The signaling the manager needs: announce, learn peers, and exchange payloads. */
export interface Signaling {
  /** This peer's id, as the server knows it (the token's `sub`). */
  readonly localId: string;
  /** Connects and subscribes; resolves once subscribed the first time. Rejects with {@link SignalingError}. */
  start(handlers: SignalingHandlers): Promise<void>;
  /** Publishes a payload to the room. Rejects with {@link SignalingError}. */
  send(message: SignalingMessage): Promise<void>;
  /** Leaves the room for good. */
  close(): void;
}

/** Options of {@link CentrifugeSignaling}. */
export interface CentrifugeSignalingOptions {
  /** WebSocket endpoint, e.g. `ws://host/connection/websocket`. */
  url: string;
  /** The room's channel, `room:<room>`. */
  channel: string;
  /** This peer's id (the connection token's `sub`). */
  localId: string;
  /** Connection JWT. */
  token?: string;
  /** Subscription JWT for the channel, when the server wants one. */
  subscriptionToken?: string;
  /** Fetches a fresh connection token when the current one expires (our server: `POST /api/rooms/:room/refresh`). */
  getToken?: () => Promise<string>;
  /** Fetches a fresh subscription token when the current one expires. */
  getSubscriptionToken?: () => Promise<string>;
  /** WebSocket constructor; needed in Node.js (`ws`), browsers have one. */
  WebSocket?: unknown;
  /** Publish pacing; see {@link DEFAULT_PUBLISH_RATE}. */
  publishRate?: PublishRate;
  logger: Logger;
}

/** A token bucket for publications: `perSecond` sustained, `burst` at once. */
export interface PublishRate {
  perSecond: number;
  burst: number;
}

/**
 * Default publish pacing: under our server's default command limit (20 per second, burst 40, counting every
 * command), leaving room for connect, subscribe and presence. A newcomer to a large room publishes an offer
 * and a handful of candidates per peer at once; unpaced, the server would refuse them and then cut the
 * connection for not backing off.
 */
export const DEFAULT_PUBLISH_RATE: Readonly<PublishRate> = { perSecond: 15, burst: 30 };

/** Publications waiting for a token beyond this are refused: signaling is not keeping up at all. */
const MAX_QUEUED_PUBLISHES = 1024;

/** Centrifuge disconnect codes from 3500 on are terminal: the client will not reconnect by itself. */
const FIRST_TERMINAL_DISCONNECT_CODE = 3500;

/**
 * {@link Signaling} over one Centrifugo channel. The `centrifuge` client reconnects and resubscribes by itself;
 * after every subscription this class reads presence and reports it with `onPresence`, so peers that left
 * while signaling was down are noticed. Presence is tracked per connection (`client`) and reported per peer
 * (`user`), so a peer whose old connection's leave arrives after its new connection's join stays present.
 */
export class CentrifugeSignaling implements Signaling {
  readonly localId: string;
  readonly #options: CentrifugeSignalingOptions;
  readonly #clientsByPeer = new Map<string, Set<string>>();
  readonly #rate: PublishRate;
  #tokens: number;
  #refilledAt = 0;
  readonly #queue: { message: SignalingMessage; resolve(): void; reject(e: Error): void }[] = [];
  #queueTimer: ReturnType<typeof setTimeout> | null = null;
  #client: Centrifuge | null = null;
  #sub: Subscription | null = null;
  #closed = false;

  constructor(options: CentrifugeSignalingOptions) {
    this.localId = options.localId;
    this.#options = options;
    this.#rate = options.publishRate ?? DEFAULT_PUBLISH_RATE;
    this.#tokens = this.#rate.burst;
  }

  start(handlers: SignalingHandlers): Promise<void> {
    const o = this.#options;
    const client = new Centrifuge(o.url, {
      ...(o.token !== undefined ? { token: o.token } : {}),
      ...(o.getToken !== undefined ? { getToken: o.getToken } : {}),
      ...(o.WebSocket !== undefined ? { websocket: o.WebSocket } : {}),
    });
    const sub = client.newSubscription(o.channel, {
      joinLeave: true,
      ...(o.subscriptionToken !== undefined ? { token: o.subscriptionToken } : {}),
      ...(o.getSubscriptionToken !== undefined ? { getToken: o.getSubscriptionToken } : {}),
    });
    this.#client = client;
    this.#sub = sub;

    sub.on('publication', (ctx) => this.#onPublication(handlers, ctx.data, ctx.info));
    sub.on('join', (ctx) => {
      if (this.#addClient(ctx.info)) handlers.onJoin(ctx.info.user);
    });
    sub.on('leave', (ctx) => {
      if (this.#removeClient(ctx.info)) handlers.onLeave(ctx.info.user);
    });
    sub.on('subscribing', () => handlers.onStateChange('disconnected'));
    sub.on('error', (ctx) => o.logger.warn('signaling subscription error', { error: ctx.error.message }));
    client.on('error', (ctx) => o.logger.warn('signaling client error', { error: ctx.error.message }));

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (why: string) => {
        if (settled) return;
        settled = true;
        this.close();
        reject(new SignalingError(why));
      };
      sub.on('subscribed', () => {
        void this.#resync(handlers).then(() => {
          if (!settled) {
            settled = true;
            resolve();
          }
        });
      });
      sub.on('unsubscribed', (ctx) => {
        if (this.#closed) return;
        if (!settled) return fail(`subscription to ${o.channel} refused: ${ctx.code} ${ctx.reason}`);
        // The server refused to resubscribe us for good (e.g. the room was recreated and our token predates it).
        // Existing connections keep working; new peers cannot reach us until the application joins again.
        o.logger.error('signaling subscription ended by the server', { code: ctx.code, reason: ctx.reason });
        handlers.onStateChange('disconnected');
      });
      client.on('disconnected', (ctx) => {
        if (this.#closed) return;
        if (ctx.code >= FIRST_TERMINAL_DISCONNECT_CODE || !settled) {
          // Before the first subscription any disconnect means the server refused us (bad token, full room, ...).
          o.logger.warn('signaling disconnected', { code: ctx.code, reason: ctx.reason });
          if (!settled) fail(`signaling connection refused: ${ctx.code} ${ctx.reason}`);
          else handlers.onStateChange('disconnected');
        }
      });
      client.connect();
      sub.subscribe();
    });
  }

  /** Publishes `message`, paced by {@link CentrifugeSignalingOptions.publishRate}; resolves once the server accepted it. */
  send(message: SignalingMessage): Promise<void> {
    if (!this.#sub || this.#closed) return Promise.reject(new SignalingError('signaling is closed'));
    if (this.#queue.length >= MAX_QUEUED_PUBLISHES) return Promise.reject(new SignalingError('too many publications waiting'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ message, resolve, reject });
      this.#drain();
    });
  }

  #drain(): void {
    if (this.#queueTimer !== null) return;
    const now = performance.now();
    this.#tokens = Math.min(this.#rate.burst, this.#tokens + ((now - this.#refilledAt) / 1000) * this.#rate.perSecond);
    this.#refilledAt = now;
    while (this.#queue.length > 0 && this.#tokens >= 1) {
      this.#tokens -= 1;
      const { message, resolve, reject } = this.#queue.shift()!;
      this.#publish(message).then(resolve, reject);
    }
    if (this.#queue.length > 0) {
      this.#queueTimer = setTimeout(() => {
        this.#queueTimer = null;
        this.#drain();
      }, ((1 - this.#tokens) / this.#rate.perSecond) * 1000);
    }
  }

  async #publish(message: SignalingMessage): Promise<void> {
    const sub = this.#sub;
    if (!sub || this.#closed) throw new SignalingError('signaling is closed');
    try {
      await sub.publish(message);
    } catch (cause) {
      throw new SignalingError(`publish of ${message.type} failed: ${describe(cause)}`, { cause });
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#queueTimer !== null) clearTimeout(this.#queueTimer);
    this.#queueTimer = null;
    for (const { reject } of this.#queue.splice(0)) reject(new SignalingError('signaling is closed'));
    this.#sub?.unsubscribe();
    this.#client?.disconnect();
    this.#clientsByPeer.clear();
  }

  /** Rebuilds presence from the server after a (re)subscription and announces this peer. */
  async #resync(handlers: SignalingHandlers): Promise<void> {
    const sub = this.#sub;
    if (!sub || this.#closed) return;
    try {
      const result = await sub.presence();
      this.#clientsByPeer.clear();
      for (const info of Object.values(result.clients)) this.#addClient(info);
    } catch (cause) {
      // Without presence the room is learned from join pushes and peer-joined announcements only.
      this.#options.logger.warn('signaling presence failed', { error: describe(cause) });
    }
    if (this.#closed) return;
    handlers.onStateChange('connected');
    handlers.onPresence([...this.#clientsByPeer.keys()]);
    this.send({ type: 'peer-joined', from: this.localId }).catch((e: unknown) =>
      this.#options.logger.warn('peer-joined announcement failed', { error: describe(e) }));
  }

  #onPublication(handlers: SignalingHandlers, data: unknown, info: ClientInfo | undefined): void {
    const msg = validateSignalingMessage(data);
    if (!msg) return handlers.onDropped('malformed');
    // The server checks `from` on publish, but a real Centrifugo does not: the authenticated sender is `info.user`.
    if (!info || info.user !== msg.from) return handlers.onDropped('forged');
    if (msg.from === this.localId) return; // our own broadcasts come back to us
    if ('to' in msg && msg.to !== this.localId) return; // addressed payloads reach every subscriber
    handlers.onMessage(msg);
  }

  /** Records a connection; true when it is the peer's first (the peer joined). */
  #addClient(info: ClientInfo): boolean {
    if (!info.user || info.user === this.localId) return false;
    let set = this.#clientsByPeer.get(info.user);
    if (!set) this.#clientsByPeer.set(info.user, (set = new Set()));
    const first = set.size === 0;
    set.add(info.client);
    return first;
  }

  /** Forgets a connection; true when it was the peer's last (the peer left). */
  #removeClient(info: ClientInfo): boolean {
    const set = this.#clientsByPeer.get(info.user);
    if (!set || !set.delete(info.client)) return false;
    if (set.size > 0) return false;
    this.#clientsByPeer.delete(info.user);
    return true;
  }
}
