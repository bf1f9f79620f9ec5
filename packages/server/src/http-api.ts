/**
 * The HTTP API: rooms, connection tokens, ICE configuration. JSON in and out; every error is
 * `{ error: { code, message } }` with a stable `code` (see docs/signaling.md).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { ArchiveError, validateArchiveBatch, type FileArchiveStore } from './archive-store.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { JwtError, signJwt, verifyJwt, type JwtClaims } from './jwt.js';
import type { Logger } from './log.js';
import type { ServerMetrics } from './metrics.js';
import type { IceServer, Limits, Timing } from './options.js';
import { WEBSOCKET_PATH } from './protocol.js';
import type { KeyedBuckets } from './rate-limit.js';
import { RoomError, ROOM_NAME, type RoomRegistry } from './rooms.js';
import { roomChannel } from './signaling-messages.js';

/** Codes of API errors other than the room ones ({@link RoomError}). */
export type ApiErrorCode =
  | 'bad_request'
  | 'invalid_json'
  | 'body_too_large'
  | 'invalid_name'
  | 'invalid_token'
  | 'token_expired'
  | 'not_found'
  | 'method_not_allowed'
  | 'too_many_requests'
  | 'internal';

/** A refused API request. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
    /** Extra response headers, e.g. `Allow` or `Retry-After`. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The answer of `POST /api/rooms/:room/token` and `POST /api/rooms/:room/refresh`. */
export interface TokenResponse {
  /** Connection token (HS256): `sub` = peerId, `info` = { name }, `iat`, `exp`. */
  readonly token: string;
  /** Subscription token for `channel` (HS256): `sub` = peerId, `channel`, `iat`, `exp`. */
  readonly subscriptionToken: string;
  /** The WebSocket endpoint to connect to. */
  readonly url: string;
  /** `room:<room>`. */
  readonly channel: string;
  readonly peerId: string;
  readonly iceServers: readonly IceServer[];
  /**
   * Where the room's leader flushes old messages (`POST`, then reads pages with `GET`), with the
   * subscription token as a Bearer token; null when this server keeps no archive.
   */
  readonly archiveUrl: string | null;
}

/** The message archive the API serves, if any. */
export interface ArchiveContext {
  readonly store: FileArchiveStore;
  /** Largest archive request body, in bytes (a batch of long messages is far larger than a token request). */
  readonly maxBodyBytes: number;
  /** Published in token answers instead of this server's own endpoint: an archive service elsewhere. */
  readonly url?: string;
}

/** What the API needs from the server. */
export interface ApiContext {
  readonly rooms: RoomRegistry;
  readonly secret: Uint8Array;
  readonly iceServers: readonly IceServer[];
  readonly limits: Limits;
  readonly timing: Timing;
  readonly metrics: ServerMetrics;
  readonly log: Logger;
  readonly postBuckets: KeyedBuckets;
  readonly publicUrl: string | undefined;
  readonly trustProxy: boolean;
  readonly clientIp: (req: IncomingMessage) => string;
  readonly archive: ArchiveContext | null;
}

/** The archive of one incarnation of a room: a room recreated under the same name starts a new one. */
export const archiveKey = (room: string, createdAt: number): string => `${room}~${createdAt}`;

/** The most messages one `GET …/archive` returns. */
export const ARCHIVE_PAGE_MAX = 500;

/** Display names: 1–64 characters after trimming, no control characters. */
export const MAX_NAME_LENGTH = 64;

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readJsonBody(req: IncomingMessage, max: number): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) throw new ApiError(413, 'body_too_large', `request bodies are at most ${max} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) throw new ApiError(413, 'body_too_large', `request bodies are at most ${max} bytes`);
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof ApiError) throw err;
    // The client went away mid-body: nothing is wrong with the server.
    throw new ApiError(400, 'bad_request', 'the request body was not received completely');
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, 'invalid_json', 'the body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ApiError(400, 'bad_request', 'the body must be a JSON object');
  return value as Record<string, unknown>;
}

function displayName(value: unknown): string {
  const name = typeof value === 'string' ? value.trim() : '';
  if (name.length === 0 || name.length > MAX_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new ApiError(400, 'invalid_name', `name must be 1–${MAX_NAME_LENGTH} characters (after trimming), without control characters`);
  }
  return name;
}

function roomParam(raw: string): string {
  let room: string;
  try {
    room = decodeURIComponent(raw);
  } catch {
    room = '';
  }
  if (!ROOM_NAME.test(room)) throw new RoomError('invalid_room_name', 'room names are 1–64 characters of A–Z, a–z, 0–9, _ and -');
  return room;
}

function allow(methods: string, method: string | undefined): void {
  if (!methods.split(', ').includes(method ?? '')) throw new ApiError(405, 'method_not_allowed', `use ${methods}`, { allow: methods });
}

/** Creates the handler of every `/api/…` request. */
export function createApiHandler(ctx: ApiContext): (req: IncomingMessage, res: ServerResponse, pathname: string) => Promise<void> {
  /** Whether the client reached us over TLS, as a trusted proxy says. */
  const secure = (req: IncomingMessage): boolean => ctx.trustProxy && String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]!.trim() === 'https';
  const host = (req: IncomingMessage): string => req.headers.host ?? '127.0.0.1';
  const wsUrl = (req: IncomingMessage): string => ctx.publicUrl ?? `${secure(req) ? 'wss' : 'ws'}://${host(req)}${WEBSOCKET_PATH}`;

  const archiveUrl = (req: IncomingMessage, room: string): string | null => {
    if (!ctx.archive) return null;
    return ctx.archive.url?.replace('{room}', encodeURIComponent(room)) ?? `${secure(req) ? 'https' : 'http'}://${host(req)}/api/rooms/${encodeURIComponent(room)}/archive`;
  };

  const tokensFor = (req: IncomingMessage, room: string, peerId: string, name: string): TokenResponse => {
    const channel = roomChannel(room);
    const iat = Math.floor(Date.now() / 1000);
    const exp = iat + ctx.timing.tokenTtlSeconds;
    return {
      token: signJwt({ sub: peerId, info: { name }, iat, exp }, ctx.secret),
      subscriptionToken: signJwt({ sub: peerId, channel, iat, exp }, ctx.secret),
      url: wsUrl(req),
      channel,
      peerId,
      iceServers: ctx.iceServers,
      archiveUrl: archiveUrl(req, room),
    };
  };

  /** Verifies a token this server issued, accepting one expired up to `refreshGraceSeconds` ago. */
  const verifyIssued = (token: unknown, what: string): JwtClaims => {
    if (typeof token !== 'string') throw new ApiError(400, 'bad_request', `${what} is required`);
    const now = Math.floor(Date.now() / 1000);
    try {
      return verifyJwt(token, ctx.secret, now - ctx.timing.refreshGraceSeconds);
    } catch (err) {
      if (err instanceof JwtError && err.reason === 'expired') throw new ApiError(401, 'token_expired', `${what} expired more than ${ctx.timing.refreshGraceSeconds} s ago: join again`);
      throw new ApiError(401, 'invalid_token', `${what} is not valid: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  /**
   * New tokens for the same peer, so that a client's getToken keeps its peer id (a new one would make it a
   * different peer to the room). The subscription token proves the peer was admitted to this room (password
   * included) and to this incarnation of it; the connection token gives its name.
   */
  /**
   * The peer a subscription token admitted to this incarnation of `room` (password included): a token of an
   * earlier room of the same name, which expired, opens nothing here. Returns its claims.
   */
  const admittedPeer = (room: string, subscriptionToken: unknown): JwtClaims & { sub: string } => {
    const sub = verifyIssued(subscriptionToken, 'subscriptionToken');
    const createdAt = ctx.rooms.createdAt(room);
    if (createdAt === undefined) throw new RoomError('room_not_found', `no room ${room}`);
    if (typeof sub.sub !== 'string' || sub.channel !== roomChannel(room)) throw new ApiError(401, 'invalid_token', 'the token is not of a peer of this room');
    if (typeof sub.iat !== 'number' || sub.iat < Math.floor(createdAt / 1000)) throw new ApiError(401, 'invalid_token', 'the token predates this room');
    return sub as JwtClaims & { sub: string };
  };

  /**
   * New tokens for the same peer, so that a client's getToken keeps its peer id (a new one would make it a
   * different peer to the room). The subscription token proves the peer was admitted to this room; the
   * connection token gives its name.
   */
  const refreshTokens = (req: IncomingMessage, room: string, body: Record<string, unknown>): TokenResponse => {
    const conn = verifyIssued(body.token, 'token');
    const sub = admittedPeer(room, body.subscriptionToken);
    if (conn.sub !== sub.sub) throw new ApiError(401, 'invalid_token', 'the tokens are not of one peer of this room');
    // A refresh is activity: with peers on a Centrifugo cluster this server's hub never sees them.
    ctx.rooms.touch(room);
    const info = conn.info as { name?: unknown } | undefined;
    return tokensFor(req, room, conn.sub, typeof info?.name === 'string' ? info.name : '');
  };

  /** The archive of this incarnation of `room`, for a request bearing a subscription token of it. */
  const archiveOf = (req: IncomingMessage, room: string): { archive: ArchiveContext; key: string; peer: string } => {
    if (!ctx.archive) throw new ApiError(404, 'not_found', 'this server keeps no message archive');
    const auth = /^Bearer\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''));
    if (!auth) throw new ApiError(401, 'invalid_token', 'send the room\'s subscription token as "Authorization: Bearer <token>"');
    const peer = admittedPeer(room, auth[1]).sub;
    return { archive: ctx.archive, key: archiveKey(room, ctx.rooms.createdAt(room)!), peer };
  };

  const pageQuery = (req: IncomingMessage): { before: number | undefined; limit: number } => {
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const int = (name: string, fallback: number | undefined): number | undefined => {
      const raw = query.get(name);
      if (raw === null || raw === '') return fallback;
      const n = Number(raw);
      if (!Number.isSafeInteger(n) || n < 0) throw new ApiError(400, 'bad_request', `${name} must be a non-negative integer`);
      return n;
    };
    return { before: int('before', undefined), limit: Math.min(int('limit', 100)!, ARCHIVE_PAGE_MAX) };
  };

  const issueToken = async (req: IncomingMessage, room: string, body: Record<string, unknown>): Promise<TokenResponse> => {
    const name = displayName(body.name);
    if (body.create !== undefined && typeof body.create !== 'boolean') throw new ApiError(400, 'bad_request', 'create must be a boolean');
    if (!ctx.rooms.info(room)) {
      if (body.create !== true) throw new RoomError('room_not_found', `no room ${room}`);
      try {
        await ctx.rooms.create(room, body.password);
      } catch (err) {
        // Someone created it meanwhile: join that room instead, with its password.
        if (!(err instanceof RoomError && err.code === 'room_exists')) throw err;
      }
    }
    await ctx.rooms.admit(room, body.password);
    return tokensFor(req, room, randomBytes(12).toString('base64url'), name);
  };

  const route = async (req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> => {
    const parts = pathname.split('/').filter((p) => p !== '');
    // parts[0] is 'api': the server routes only /api and /api/… here.
    if (req.method === 'POST' && !ctx.postBuckets.take(ctx.clientIp(req))) {
      throw new ApiError(429, 'too_many_requests', `over ${ctx.limits.httpRequestsPerSecond} requests per second from this address`, { 'retry-after': '1' });
    }
    if (parts.length === 2 && parts[1] === 'config') {
      allow('GET, HEAD', req.method);
      return sendJson(res, 200, { iceServers: ctx.iceServers });
    }
    if (parts.length === 2 && parts[1] === 'rooms') {
      allow('POST', req.method);
      const body = await readJsonBody(req, ctx.limits.maxBodyBytes);
      return sendJson(res, 201, await ctx.rooms.create(body.name, body.password));
    }
    if (parts.length === 3 && parts[1] === 'rooms') {
      allow('GET, HEAD', req.method);
      const room = roomParam(parts[2]!);
      const info = ctx.rooms.info(room);
      if (!info) throw new RoomError('room_not_found', `no room ${room}`);
      return sendJson(res, 200, info);
    }
    if (parts.length === 4 && parts[1] === 'rooms' && parts[3] === 'token') {
      allow('POST', req.method);
      const room = roomParam(parts[2]!);
      const body = await readJsonBody(req, ctx.limits.maxBodyBytes);
      const answer = await issueToken(req, room, body);
      ctx.log.info('token issued', { room, peerId: answer.peerId, ip: ctx.clientIp(req) });
      return sendJson(res, 200, answer);
    }
    if (parts.length === 4 && parts[1] === 'rooms' && parts[3] === 'refresh') {
      allow('POST', req.method);
      const room = roomParam(parts[2]!);
      const body = await readJsonBody(req, ctx.limits.maxBodyBytes);
      const answer = refreshTokens(req, room, body);
      ctx.log.info('tokens refreshed', { room, peerId: answer.peerId, ip: ctx.clientIp(req) });
      return sendJson(res, 200, answer);
    }
    if (parts.length === 4 && parts[1] === 'rooms' && parts[3] === 'archive') {
      allow('GET, HEAD, POST', req.method);
      const room = roomParam(parts[2]!);
      const { archive, key, peer } = archiveOf(req, room);
      if (req.method !== 'POST') {
        const { before, limit } = pageQuery(req);
        return sendJson(res, 200, await archive.store.read(key, before, limit));
      }
      const body = await readJsonBody(req, archive.maxBodyBytes);
      const result = await archive.store.append(key, validateArchiveBatch(body.messages));
      ctx.log.info('messages archived', { room, peerId: peer, ...result });
      return sendJson(res, 200, result);
    }
    throw new ApiError(404, 'not_found', `no API at ${pathname}`);
  };

  return async (req, res, pathname) => {
    try {
      await route(req, res, pathname);
      ctx.metrics.httpRequests({ status: String(res.statusCode) });
    } catch (err) {
      let status = 500;
      let code: string = 'internal';
      let message = 'internal error';
      const headers: Record<string, string> = err instanceof ApiError ? { ...err.headers } : {};
      if (err instanceof ApiError || err instanceof RoomError) {
        status = err.status;
        code = err.code;
        message = err.message;
      } else if (err instanceof ArchiveError) {
        status = err.code === 'archive_full' ? 507 : 400;
        code = err.code;
        message = err.message;
      } else {
        ctx.log.error('API request failed', { path: pathname, error: err instanceof Error ? err.stack : String(err) });
      }
      ctx.metrics.httpRequests({ status: String(status) });
      ctx.metrics.refusals({ kind: 'http', code });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // A body too large is not read to its end: close the connection rather than drain it.
      if (status === 413) headers.connection = 'close';
      sendJson(res, status, { error: { code, message } }, headers);
    }
  };
}
