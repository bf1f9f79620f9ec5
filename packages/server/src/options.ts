/**
 * The server's options and their defaults.
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LogLevel } from './log.js';

/** An ICE server for `RTCPeerConnection`'s `iceServers`. */
export interface IceServer {
  readonly urls: string | readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

/** Limits; every refusal they cause has a code (see docs/signaling.md). */
export interface Limits {
  /** Distinct peers (user ids) subscribed to one room channel. */
  readonly peersPerRoom: number;
  /** Largest WebSocket frame a client may send, in bytes (Centrifugo's `websocket_message_size_limit`). */
  readonly maxFrameBytes: number;
  /** Largest publication `data`, as JSON, in bytes. */
  readonly maxPublicationBytes: number;
  /** Sustained commands per second per connection (token bucket refill rate). */
  readonly messagesPerSecond: number;
  /** Commands a connection may send at once before the rate applies (token bucket size). */
  readonly messageBurst: number;
  /** Open WebSocket connections from one IP address. */
  readonly connectionsPerIp: number;
  /** Channels one connection may subscribe to (Centrifugo's `client_channel_limit`). */
  readonly channelsPerConnection: number;
  /** Bytes queued for a connection that does not read before it is disconnected as slow (`client_queue_max_size`). */
  readonly maxQueuedBytes: number;
  /** Largest HTTP API request body, in bytes. */
  readonly maxBodyBytes: number;
  /** Sustained HTTP API POST requests per second per IP (rooms and tokens; slows password guessing). */
  readonly httpRequestsPerSecond: number;
  /** HTTP API POST requests per IP at once before the rate applies. */
  readonly httpBurst: number;
}

/** Timings, in milliseconds unless named otherwise. */
export interface Timing {
  /** Interval of server pings (Centrifugo: 25 s). */
  readonly pingIntervalMs: number;
  /** How long after a ping a client has to answer before it is disconnected with 3012 (Centrifugo: 8 s). */
  readonly pongTimeoutMs: number;
  /** How long a connection may stay open without a connect command (Centrifugo's `client_stale_close_delay`, 10 s). */
  readonly staleCloseMs: number;
  /** Grace after a connection's token expired before it is closed with 3005, for the client to refresh. */
  readonly expiredCloseDelayMs: number;
  /** How long a room without peers lives before it is forgotten. */
  readonly roomIdleMs: number;
  /** Lifetime of the tokens `POST /api/rooms/:room/token` issues, in seconds. */
  readonly tokenTtlSeconds: number;
  /** How long after its expiry a token can still be exchanged at `POST /api/rooms/:room/refresh`, in seconds. */
  readonly refreshGraceSeconds: number;
  /** How long `close()` waits for clients to close their sockets before cutting them. */
  readonly shutdownGraceMs: number;
}

/** Options of {@link createServer}. */
export interface ServerOptions {
  /** HMAC secret of the HS256 tokens (Centrifugo's `token_hmac_secret_key`). Default: random per process. */
  readonly secret?: string | Uint8Array;
  /** STUN/TURN servers handed to clients. Default: none. */
  readonly iceServers?: readonly IceServer[];
  /** Overrides of {@link DEFAULT_LIMITS}. */
  readonly limits?: Partial<Limits>;
  /** Overrides of {@link DEFAULT_TIMING}. */
  readonly timing?: Partial<Timing>;
  /** Log level; default `RAFTRTC_LOG`, else `warn`. */
  readonly logLevel?: LogLevel;
  /** Handles every request that is not the API, metrics, health or the WebSocket endpoint. Default: 404. */
  readonly fallback?: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * The WebSocket URL put in issued tokens' answers (e.g. `wss://rooms.example.com/connection/websocket`,
   * or a Centrifugo cluster's). Default: derived from the request's `Host` header.
   */
  readonly publicUrl?: string;
  /** Take the client address from `X-Forwarded-For` and the scheme from `X-Forwarded-Proto` (behind a reverse proxy). */
  readonly trustProxy?: boolean;
  /**
   * The message archive rooms' leaders flush old chat messages to (`/api/rooms/:room/archive`); `false`
   * keeps none (rooms then keep every message in their replicated state). Default: archives in a temporary
   * directory removed at `close()`.
   */
  readonly archive?: ArchiveOptions | false;
}

/** Options of the message archive. */
export interface ArchiveOptions {
  /** Directory of the archive files (default: a temporary one). Files of a previous process are removed at start. */
  readonly dir?: string;
  /**
   * Publish this archive endpoint to clients instead of this server's own (`{room}` is replaced by the room
   * name); the service there must speak the same API and accept this server's subscription tokens.
   */
  readonly url?: string;
  /** Most messages one room's archive holds. Default 1,000,000. */
  readonly maxMessages?: number;
  /** Largest archive request body, in bytes. Default 1 MiB. */
  readonly maxBodyBytes?: number;
}

/** The limits used where {@link ServerOptions.limits} sets none. */
export const DEFAULT_LIMITS: Limits = {
  peersPerRoom: 16,
  maxFrameBytes: 65_536,
  maxPublicationBytes: 65_536,
  messagesPerSecond: 20,
  messageBurst: 40,
  connectionsPerIp: 32,
  channelsPerConnection: 8,
  maxQueuedBytes: 1_048_576,
  maxBodyBytes: 16_384,
  httpRequestsPerSecond: 10,
  httpBurst: 60,
};

/** The timings used where {@link ServerOptions.timing} sets none; Centrifugo's values where it has them. */
export const DEFAULT_TIMING: Timing = {
  pingIntervalMs: 25_000,
  pongTimeoutMs: 8_000,
  staleCloseMs: 10_000,
  expiredCloseDelayMs: 25_000,
  roomIdleMs: 10 * 60_000,
  tokenTtlSeconds: 24 * 3600,
  refreshGraceSeconds: 3600,
  shutdownGraceMs: 5_000,
};

function positive<T extends object>(name: string, merged: T): T {
  for (const [key, value] of Object.entries(merged)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new RangeError(`${name}.${key} must be a positive number, got ${String(value)}`);
  }
  return merged;
}

/** `overrides` without its undefined entries, so `{ x: undefined }` keeps the default of `x`. */
function defined<T extends object>(overrides: Partial<T>): Partial<T> {
  return Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Merges `limits` over the defaults; throws a RangeError for a non-positive value. */
export function resolveLimits(limits: Partial<Limits> = {}): Limits {
  return positive('limits', { ...DEFAULT_LIMITS, ...defined(limits) });
}

/** Merges `timing` over the defaults; throws a RangeError for a non-positive value. */
export function resolveTiming(timing: Partial<Timing> = {}): Timing {
  return positive('timing', { ...DEFAULT_TIMING, ...defined(timing) });
}
