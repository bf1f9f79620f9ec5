/**
 * `@raftrtc/server`: RaftRTC's signaling server. It speaks enough of Centrifugo's client protocol (v2, JSON,
 * WebSocket at `/connection/websocket`) for the official `centrifuge` client, issues connection and
 * subscription tokens for rooms over a small HTTP API, and exposes Prometheus metrics and a health check.
 * Every other request goes to `fallback` (the web app). See docs/signaling.md.
 *
 * The signaling payload types and their validator are also available alone, without Node.js imports, as
 * `@raftrtc/server/signaling-messages`.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ClientError, ClientErrors, Disconnects } from './codes.js';
import { ClientSession, type SessionContext } from './client-session.js';
import { FileArchiveStore } from './archive-store.js';
import { archiveKey, createApiHandler, type ArchiveContext } from './http-api.js';
import { Hub } from './hub.js';
import { createLogger } from './log.js';
import { createServerMetrics } from './metrics.js';
import { resolveLimits, resolveTiming, type ServerOptions } from './options.js';
import { WEBSOCKET_PATH } from './protocol.js';
import { KeyedBuckets } from './rate-limit.js';
import { RoomRegistry } from './rooms.js';
import { ROOM_NAMESPACE } from './signaling-messages.js';

export { ClientError, ClientErrors, DisconnectError, Disconnects, Unsubscribes, type ClientErrorShape, type DisconnectShape } from './codes.js';
export { ARCHIVE_LIMITS, ArchiveError, FileArchiveStore, validateArchiveBatch, type ArchivedMessage, type ArchivePage, type FileArchiveOptions } from './archive-store.js';
export { ApiError, ARCHIVE_PAGE_MAX, type ApiErrorCode, type TokenResponse } from './http-api.js';
export { EnvError, serverOptionsFromEnv } from './env.js';
export { JwtError, signJwt, verifyJwt, type JwtClaims, type JwtFailure } from './jwt.js';
export type { LogLevel } from './log.js';
export { DEFAULT_LIMITS, DEFAULT_TIMING, type ArchiveOptions, type IceServer, type Limits, type ServerOptions, type Timing } from './options.js';
export { WEBSOCKET_PATH } from './protocol.js';
export { RoomError, type RoomErrorCode, type RoomInfo } from './rooms.js';
export * from './signaling-messages.js';

/** A running (or not yet listening) signaling server. */
export interface RaftRtcServer {
  /** The underlying HTTP server (the WebSocket endpoint is its `upgrade` handler). */
  readonly http: Server;
  /** Starts listening; resolves with the bound port (useful with port 0). */
  listen(port: number, host?: string): Promise<{ port: number }>;
  /**
   * Graceful shutdown: stops accepting connections, disconnects every client with Centrifugo's shutdown code
   * (3001, after which clients reconnect elsewhere or later), waits for them to close (up to
   * `timing.shutdownGraceMs`), then closes the HTTP server.
   */
  close(): Promise<void>;
  /** `http://host:port` once listening; throws before. */
  readonly url: string;
}

function packageVersion(): string {
  // ../package.json from both src/ (tsx) and dist/ (compiled).
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return `raftrtc-server ${pkg.version}`;
}

function secretBytes(secret: ServerOptions['secret']): Uint8Array {
  if (secret === undefined) return randomBytes(32);
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  if (bytes.length === 0) throw new RangeError('secret must not be empty');
  return bytes;
}

/** The path of a request, or undefined when its target does not parse (e.g. `//[`). */
function pathOf(req: IncomingMessage): string | undefined {
  try {
    return new URL(req.url ?? '/', 'http://x').pathname;
  } catch {
    return undefined;
  }
}

function sendPlain(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Creates the server; call `listen` to start it. Throws a RangeError for invalid options. */
export function createServer(options: ServerOptions = {}): RaftRtcServer {
  const limits = resolveLimits(options.limits);
  const timing = resolveTiming(options.timing);
  const secret = secretBytes(options.secret);
  const iceServers = options.iceServers ?? [];
  const log = createLogger(options.logLevel);
  const metrics = createServerMetrics();
  const roomPrefix = `${ROOM_NAMESPACE}:`;
  // Rooms and the hub refer to each other: the hub tells rooms when a room empties (its idle time starts),
  // rooms ask the hub how many peers a room has. The callback runs only once both exist.
  const hub = new Hub((channel) => {
    if (channel.startsWith(roomPrefix)) rooms.touch(channel.slice(roomPrefix.length));
  });
  const archive: ArchiveContext | null = options.archive === false ? null : {
    // Rooms live in this process's memory: archives an earlier process left are of rooms that no longer exist.
    store: new FileArchiveStore({ dir: options.archive?.dir, maxMessages: options.archive?.maxMessages, fresh: true }),
    maxBodyBytes: options.archive?.maxBodyBytes ?? 1_048_576,
    url: options.archive?.url,
  };
  const rooms = new RoomRegistry({
    idleMs: timing.roomIdleMs,
    peersPerRoom: limits.peersPerRoom,
    peers: (room) => hub.stats(roomPrefix + room).numUsers,
    onForget: (room, createdAt) => {
      archive?.store.drop(archiveKey(room, createdAt)).catch((err: unknown) => log.warn('could not delete an archive', { room, error: String(err) }));
    },
  });
  const sessions = new Set<ClientSession>();
  const perIp = new Map<string, number>();
  const postBuckets = new KeyedBuckets(limits.httpRequestsPerSecond, limits.httpBurst);
  let closing = false;

  metrics.registry.gauge('raftrtc_signaling_connections', 'Open WebSocket connections.', () => sessions.size);
  metrics.registry.gauge('raftrtc_rooms', 'Rooms in the registry.', () => {
    rooms.sweep();
    return rooms.size;
  });
  metrics.registry.gauge('raftrtc_signaling_channels', 'Channels with at least one subscriber.', () => hub.channelCount);
  metrics.registry.gauge('raftrtc_signaling_subscribers', 'Subscriptions over all channels.', () => hub.subscriptionCount);

  const clientIp = (req: IncomingMessage): string => {
    if (options.trustProxy) {
      // The proxy appends the address it saw: the last entry is the one a client cannot forge.
      const forwarded = String(req.headers['x-forwarded-for'] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
      if (forwarded.length > 0) return forwarded[forwarded.length - 1]!;
    }
    return req.socket.remoteAddress ?? 'unknown';
  };

  const sessionContext: SessionContext = {
    hub,
    secret,
    limits,
    timing,
    metrics,
    log,
    version: packageVersion(),
    admitSubscriber: (room, claims) => {
      const createdAt = rooms.createdAt(room);
      if (createdAt === undefined) return new ClientError(ClientErrors.unknownChannel, `no room ${room}`);
      // A token issued for an earlier room of the same name (which expired) must not open the new one.
      if (typeof claims.iat === 'number' && claims.iat < Math.floor(createdAt / 1000)) return new ClientError(ClientErrors.permissionDenied, 'token issued before the room was created');
      return undefined;
    },
    onClosed: (session) => {
      sessions.delete(session);
      const n = (perIp.get(session.ip) ?? 1) - 1;
      if (n <= 0) perIp.delete(session.ip);
      else perIp.set(session.ip, n);
    },
  };

  const api = createApiHandler({ rooms, secret, iceServers, limits, timing, metrics, log, postBuckets, publicUrl: options.publicUrl, trustProxy: options.trustProxy === true, clientIp, archive });

  const route = (req: IncomingMessage, res: ServerResponse): void => {
    const pathname = pathOf(req);
    if (pathname === undefined) {
      sendPlain(res, 400, 'application/json; charset=utf-8', JSON.stringify({ error: { code: 'bad_request', message: 'the request target is not a URL path' } }));
    } else if (pathname === '/api' || pathname.startsWith('/api/')) {
      void api(req, res, pathname);
    } else if (pathname === '/metrics') {
      sendPlain(res, 200, 'text/plain; version=0.0.4; charset=utf-8', metrics.registry.render());
    } else if (pathname === '/healthz') {
      sendPlain(res, closing ? 503 : 200, 'application/json; charset=utf-8', JSON.stringify({ status: closing ? 'shutting down' : 'ok' }));
    } else if (pathname === WEBSOCKET_PATH) {
      sendPlain(res, 400, 'application/json; charset=utf-8', JSON.stringify({ error: { code: 'bad_request', message: 'this endpoint takes WebSocket connections only' } }));
    } else if (options.fallback) {
      options.fallback(req, res);
    } else {
      sendPlain(res, 404, 'application/json; charset=utf-8', JSON.stringify({ error: { code: 'not_found', message: `nothing at ${pathname}` } }));
    }
  };

  const http = createHttpServer((req, res) => {
    // An exception here (e.g. from the fallback) would be uncaught and end the process.
    try {
      route(req, res);
    } catch (err) {
      log.error('request failed', { url: req.url, error: err instanceof Error ? err.stack : String(err) });
      if (res.headersSent) res.destroy();
      else sendPlain(res, 500, 'application/json; charset=utf-8', JSON.stringify({ error: { code: 'internal', message: 'internal error' } }));
    }
  });

  // maxPayload makes ws close an oversized frame with 1009, which the official client reports as
  // "message size limit exceeded" (as against Centrifugo's websocket_message_size_limit).
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxFrameBytes, perMessageDeflate: false });

  const accept = (ws: WebSocket, req: IncomingMessage): void => {
    const ip = clientIp(req);
    const count = perIp.get(ip) ?? 0;
    if (count >= limits.connectionsPerIp) {
      // Without a listener, an error on this socket (e.g. an oversized frame) would be thrown.
      ws.on('error', () => {});
      metrics.disconnects({ code: String(Disconnects.connectionLimit.code) });
      log.warn('connection limit', { ip, limit: limits.connectionsPerIp });
      ws.close(Disconnects.connectionLimit.code, `${Disconnects.connectionLimit.reason}: ${limits.connectionsPerIp} connections per address`);
      return;
    }
    perIp.set(ip, count + 1);
    metrics.connectionsAccepted();
    sessions.add(new ClientSession(ws, ip, sessionContext));
  };

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (closing || pathOf(req) !== WEBSOCKET_PATH) {
      socket.end(`HTTP/1.1 ${closing ? '503 Service Unavailable' : '404 Not Found'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, req));
  });

  const sweeper = setInterval(() => {
    rooms.sweep();
    postBuckets.sweep();
  }, 30_000);
  sweeper.unref();

  let closed: Promise<void> | undefined;
  return {
    http,
    listen(port, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(port, host, () => {
          http.off('error', reject);
          const address = http.address() as AddressInfo;
          log.info('listening', { host, port: address.port });
          resolve({ port: address.port });
        });
      });
    },
    close() {
      closed ??= (async () => {
        closing = true;
        clearInterval(sweeper);
        const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
        for (const session of [...sessions]) session.disconnect(Disconnects.shutdown);
        http.closeIdleConnections();
        // ws has no "all clients gone" event: poll until the close handshakes are done or the grace ends.
        const deadline = Date.now() + timing.shutdownGraceMs;
        while (wss.clients.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        for (const ws of wss.clients) ws.terminate();
        http.closeAllConnections();
        await httpClosed;
        wss.close();
        await archive?.store.close();
        log.info('closed');
      })();
      return closed;
    },
    get url() {
      const address = http.address();
      if (address === null || typeof address === 'string') throw new Error('the server is not listening');
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return `http://${host}:${address.port}`;
    },
  };
}
