/**
 * The voice relay's gRPC server: the seed's `Calling` service on @grpc/grpc-js, with the forwarding logic in
 * relay.ts. This file is the I/O around it: authentication, admission, one {@link Connection} per call that
 * drains the relay's queue into the stream under gRPC's write backpressure, shutdown and metrics.
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { constants as http2 } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { createLogger, type Logger, type LogLevel } from '@raftrtc/server/log';
import { calling, type ClientREQ, type ServerRES } from '../proto.js';
import { createRelayMetrics, type RelayMetrics } from './metrics.js';
import { Relay, Undecodable, type LeaveReason, type RelayClient, type RelayCounters, type RelayLimits } from './relay.js';

/** Trailing metadata key on a stream the server ended; its value says why (`shutdown`). */
export const END_REASON_KEY = 'voice-end-reason';

/** Longest accepted `room` metadata value. */
export const MAX_ROOM_LENGTH = 64;

/** Largest request message gRPC accepts; bigger ones end the call (RESOURCE_EXHAUSTED) before the relay sees them. */
export const MAX_REQUEST_BYTES = 64 * 1024;

/** TLS material, PEM. */
export interface VoiceTlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
}

/** Options of {@link startVoiceServer}. */
export interface VoiceServerOptions {
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** Port; 0 (the default) picks a free one. */
  port?: number;
  /** The passcode clients send in metadata `passcode`. Required, non-empty. */
  passcode: string;
  /** Clients at once, over all rooms; default 10. */
  maxClients?: number;
  /** The relay's other bounds (queue, stall, frame validation); see {@link RelayLimits}. */
  limits?: Partial<Omit<RelayLimits, 'maxClients'>>;
  /** Serve TLS instead of plaintext. */
  tls?: VoiceTlsOptions;
  /** Serve Prometheus metrics at `http://host:port/metrics` (port 0 picks one). */
  metrics?: { host?: string; port: number };
  /** Log level (JSON lines on stderr); default `RAFTRTC_LOG`, else `warn`. */
  logLevel?: LogLevel;
  /** Where log lines go; default stderr. */
  logWrite?: (line: string) => void;
  /**
   * How long a stream the server ends may take to deliver its status (a stalled client cannot receive
   * it) before it is reset; default 1000 ms.
   */
  resetGraceMs?: number;
  /** How long {@link VoiceServer.close} waits for streams to end before forcing; default 3000 ms. */
  shutdownGraceMs?: number;
}

/** A snapshot of the relay's state and counters. */
export interface VoiceServerMetrics extends RelayCounters {
  clients: number;
  rooms: number;
  /** Calls refused before admission, by gRPC status name. */
  refused: Record<string, number>;
}

/** A running voice relay. */
export interface VoiceServer {
  /** `host:port` the server listens on (IPv6 hosts in brackets). */
  readonly address: string;
  readonly port: number;
  /** `http://host:port/metrics` when metrics are served. */
  readonly metricsUrl: string | undefined;
  /** Counters and gauges now. */
  metrics(): VoiceServerMetrics;
  /** The Prometheus text exposition (also served at {@link metricsUrl}). */
  metricsText(): string;
  /**
   * Graceful shutdown: refuses new calls, ends every stream with status OK and trailing metadata
   * `voice-end-reason: shutdown`, waits up to `shutdownGraceMs` for them, then forces the rest. Idempotent.
   */
  close(): Promise<void>;
}

/** A passcode check that takes the same time whatever the guess: both sides are hashed to equal lengths first. */
function passcodeChecker(passcode: string): (guess: string) => boolean {
  const want = createHash('sha256').update(passcode, 'utf8').digest();
  return (guess) => timingSafeEqual(createHash('sha256').update(guess, 'utf8').digest(), want);
}

function firstString(md: grpc.Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}

function statusError(code: grpc.status, details: string): Partial<grpc.StatusObject> {
  return { code, details, metadata: new grpc.Metadata() };
}

/**
 * The HTTP/2 stream under a grpc-js server call. grpc-js offers no way to end a call whose peer stopped
 * reading: its status waits behind the unsent data, so the stream has to be reset. The stream sits in
 * private fields (checked against the installed grpc-js 1.14 by the stall test); when the walk finds
 * nothing, the caller falls back to the in-band status alone.
 */
function http2StreamOf(call: object): { close(code: number): void; closed: boolean } | undefined {
  let c = (call as { call?: unknown }).call as { stream?: unknown; nextCall?: unknown } | undefined;
  for (let depth = 0; c && depth < 8; depth++) {
    const s = c.stream as { close?: unknown; rstCode?: unknown } | undefined;
    if (s && typeof s.close === 'function' && 'rstCode' in s) return s as { close(code: number): void; closed: boolean };
    c = c.nextCall as typeof c;
  }
  return undefined;
}

type Call = grpc.ServerDuplexStream<ClientREQ | Undecodable, ServerRES | Buffer>;

interface ServerContext {
  relay: Relay<Buffer>;
  log: Logger;
  resetGraceMs: number;
  connections: Set<Connection>;
}

/** One admitted call: reads requests into the relay, drains the client's queue into the stream. */
class Connection {
  private blocked = false;
  private done = false;
  private streamClosed = false;
  private resetTimer: NodeJS.Timeout | undefined;

  constructor(private readonly call: Call, readonly client: RelayClient<Buffer>, private readonly ctx: ServerContext) {
    client.onWake = this.pump;
    client.onEvict = (reason) => {
      const details = reason === 'stalled'
        ? `could not keep up: the stream accepted nothing for ${ctx.relay.limits.stallMs} ms`
        : `too many malformed requests (${ctx.relay.limits.maxConsecutiveMalformed} in a row)`;
      ctx.log.warn('client disconnected', { id: client.id, room: client.room, reason, dropped: client.dropped, malformed: client.malformed });
      this.end(reason, statusError(reason === 'stalled' ? grpc.status.RESOURCE_EXHAUSTED : grpc.status.INVALID_ARGUMENT, details));
    };
    call.on('data', (req: ClientREQ | Undecodable) => ctx.relay.receive(client, req));
    // A half-close is the client leaving: the relay has nothing to send to a client that sends nothing.
    call.on('end', () => this.end('ended', { code: grpc.status.OK }));
    call.on('error', () => this.end('error'));
    call.on('cancelled', () => this.end('cancelled'));
    call.on('finish', () => this.markClosed());
    call.on('close', () => {
      this.markClosed();
      this.end('closed');
    });
  }

  /** Writes queued frames until the stream refuses more, then waits for its 'drain'. */
  private readonly pump = (): void => {
    if (this.blocked || this.done) return;
    for (let item = this.client.take(); item !== undefined; item = this.client.take()) {
      if (!this.call.write(item.payload)) {
        this.blocked = true;
        this.client.blocked();
        this.call.once('drain', this.onDrain);
        return;
      }
    }
  };

  private readonly onDrain = (): void => {
    this.blocked = false;
    this.client.unblocked();
    this.pump();
  };

  /** Ends the call because the server is shutting down. */
  shutdown(): void {
    const md = new grpc.Metadata();
    md.set(END_REASON_KEY, 'shutdown');
    this.end('shutdown', { code: grpc.status.OK, metadata: md });
  }

  /**
   * The one way out: frees the slot (the relay ignores a second leave) and, for a server-side end, sends
   * `status`. Every event that can end a call comes here; only the first does anything.
   */
  private end(reason: LeaveReason, status?: Partial<grpc.StatusObject>): void {
    if (this.done) return;
    this.done = true;
    const freed = this.ctx.relay.leave(this.client, reason);
    this.ctx.connections.delete(this);
    this.call.off('drain', this.onDrain);
    this.ctx.log.debug('client left', { id: this.client.id, room: this.client.room, reason, freed });
    if (!status || this.streamClosed) return;
    if (status.code === grpc.status.OK) this.call.end(status.metadata ?? undefined);
    else this.call.emit('error', status);
    this.resetTimer = setTimeout(() => this.reset(reason === 'shutdown' ? http2.NGHTTP2_CANCEL : http2.NGHTTP2_ENHANCE_YOUR_CALM), this.ctx.resetGraceMs);
    this.resetTimer.unref();
  }

  /** Resets a stream whose status could not get out (its peer reads nothing). Also used at forced shutdown. */
  reset(code: number): void {
    if (this.streamClosed) return;
    const stream = http2StreamOf(this.call);
    if (!stream) this.ctx.log.warn('cannot reset a stream (grpc-js internals changed?): it ends when its client reads or goes', { id: this.client.id });
    else if (!stream.closed) {
      this.ctx.log.debug('stream reset', { id: this.client.id, code });
      stream.close(code);
    }
  }

  private markClosed(): void {
    this.streamClosed = true;
    clearTimeout(this.resetTimer);
  }
}

/** Formats `host:port`, bracketing IPv6 literals. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Starts a voice relay. Rejects with a RangeError for invalid options, or the bind error.
 * @example
 * const server = await startVoiceServer({ passcode: 'secret', port: 50051 });
 * // ... later
 * await server.close();
 */
export async function startVoiceServer(options: VoiceServerOptions): Promise<VoiceServer> {
  if (typeof options.passcode !== 'string' || options.passcode === '') throw new RangeError('passcode must be a non-empty string');
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port must be 0..65535, not ${port}`);
  const resetGraceMs = options.resetGraceMs ?? 1000;
  const shutdownGraceMs = options.shutdownGraceMs ?? 3000;
  const log = createLogger(options.logLevel, options.logWrite);
  const checkPasscode = passcodeChecker(options.passcode);

  const method = calling.service.VoIP!;
  const serializeResponse = method.responseSerialize as (res: ServerRES) => Buffer;
  const deserializeRequest = method.requestDeserialize as (bytes: Buffer) => ClientREQ;
  const relay: Relay<Buffer> = new Relay<Buffer>(
    {
      // Encoded once per frame, then the same bytes go to every recipient (the service passes Buffers through).
      encode: (res) => serializeResponse(res),
      now: () => performance.now(),
      observeLatency: (ms) => metrics.observeLatency(ms),
      onMalformed: (client, reason) => log.debug('malformed request', { id: client.id, reason }),
    },
    { ...options.limits, maxClients: options.maxClients ?? 10 },
  );
  const metrics: RelayMetrics = createRelayMetrics(() => relay);
  const refused: Record<string, number> = {};
  const connections = new Set<Connection>();
  const ctx: ServerContext = { relay, log, resetGraceMs, connections };
  let closing = false;

  const refuse = (call: Call, code: grpc.status, details: string, fields: Record<string, unknown>): void => {
    const name = grpc.status[code];
    refused[name] = (refused[name] ?? 0) + 1;
    metrics.refused(name);
    log.info('call refused', { code: name, details, peer: call.getPeer(), ...fields });
    call.emit('error', statusError(code, details));
  };

  const voip = (call: Call): void => {
    if (closing) return refuse(call, grpc.status.UNAVAILABLE, 'server shutting down', {});
    const guess = firstString(call.metadata, 'passcode');
    if (guess === undefined) return refuse(call, grpc.status.UNAUTHENTICATED, 'missing passcode (metadata "passcode")', {});
    if (!checkPasscode(guess)) return refuse(call, grpc.status.UNAUTHENTICATED, 'wrong passcode', {});
    const room = firstString(call.metadata, 'room') ?? '';
    if (room.length > MAX_ROOM_LENGTH) return refuse(call, grpc.status.INVALID_ARGUMENT, `room name longer than ${MAX_ROOM_LENGTH} characters`, {});
    const client = relay.admit(room);
    if (!client) return refuse(call, grpc.status.RESOURCE_EXHAUSTED, `server full: ${relay.limits.maxClients} clients connected`, { room });
    connections.add(new Connection(call, client, ctx));
    log.debug('client joined', { id: client.id, room, peer: call.getPeer(), clients: relay.size });
  };

  const service: grpc.ServiceDefinition = {
    VoIP: {
      ...method,
      responseSerialize: (value: ServerRES | Buffer) => (Buffer.isBuffer(value) ? value : serializeResponse(value)),
      // Garbage bytes become a malformed request the relay drops and counts, instead of grpc-js ending the call.
      requestDeserialize: (bytes: Buffer) => {
        try {
          return deserializeRequest(bytes);
        } catch {
          return new Undecodable(bytes.length);
        }
      },
    },
  };

  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_REQUEST_BYTES,
    // Pings find clients that vanished without closing their connection (a dead host, a pulled cable).
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
  });
  server.addService(service, { VoIP: voip });
  const credentials = options.tls
    ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(options.tls.cert), private_key: Buffer.from(options.tls.key) }], false)
    : grpc.ServerCredentials.createInsecure();
  const boundPort = await new Promise<number>((resolve, reject) => {
    server.bindAsync(formatHostPort(host, port), credentials, (err, p) => (err ? reject(err) : resolve(p)));
  });

  const sweeper = setInterval(() => relay.sweep(), Math.max(1, Math.floor(relay.limits.stallMs / 4)));
  sweeper.unref();

  let metricsHttp: HttpServer | undefined;
  let metricsUrl: string | undefined;
  if (options.metrics) {
    metricsHttp = createHttpServer((req, res) => {
      const ok = req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'));
      const body = ok ? metrics.render() : 'not found: metrics are at /metrics\n';
      res.writeHead(ok ? 200 : 404, { 'content-type': ok ? 'text/plain; version=0.0.4; charset=utf-8' : 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    const mhost = options.metrics.host ?? '127.0.0.1';
    const http = metricsHttp;
    try {
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(options.metrics!.port, mhost, () => resolve());
      });
    } catch (err) {
      clearInterval(sweeper);
      server.forceShutdown();
      throw err;
    }
    metricsUrl = `http://${formatHostPort(mhost, (http.address() as AddressInfo).port)}/metrics`;
  }

  const address = formatHostPort(host, boundPort);
  log.info('listening', { address, maxClients: relay.limits.maxClients, tls: Boolean(options.tls), metrics: metricsUrl });

  let closed: Promise<void> | undefined;
  return {
    address,
    port: boundPort,
    metricsUrl,
    metrics: () => ({ ...relay.counters, left: { ...relay.counters.left }, clients: relay.size, rooms: relay.roomCount, refused: { ...refused } }),
    metricsText: () => metrics.render(),
    close() {
      closed ??= (async () => {
        closing = true;
        clearInterval(sweeper);
        const open = [...connections];
        for (const c of open) c.shutdown();
        const drained = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), shutdownGraceMs);
        });
        if (await Promise.race([drained.then(() => false), timedOut])) {
          log.warn('shutdown grace over: forcing', { streams: open.length });
          for (const c of open) c.reset(http2.NGHTTP2_CANCEL);
          server.forceShutdown();
          await drained;
        }
        clearTimeout(timer);
        if (metricsHttp) {
          const http = metricsHttp;
          const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
          // A scraper's keep-alive connection would otherwise hold close() open.
          http.closeAllConnections();
          await httpClosed;
        }
        log.info('closed', { ...relay.counters.left });
      })();
      return closed;
    },
  };
}
