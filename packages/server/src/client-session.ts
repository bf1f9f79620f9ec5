/**
 * One client connection speaking Centrifugo's JSON protocol v2 over a WebSocket: authentication with the
 * connect command, commands and their replies, pushes from the hub, server pings, rate limiting and limits.
 *
 * Every command is handled synchronously, in order, so replies and pushes reach the client in the order their
 * causes happened. What a frame's commands produce for this connection (replies, and pushes such as the
 * client's own publication) is sent as one frame after the frame is handled.
 * @module
 */
import { randomUUID } from 'node:crypto';
import { WebSocket, type RawData } from 'ws';
import { ClientError, ClientErrors, DisconnectError, Disconnects, Unsubscribes, type DisconnectShape } from './codes.js';
import type { Hub } from './hub.js';
import { JwtError, verifyJwt, type JwtClaims } from './jwt.js';
import type { Logger } from './log.js';
import type { ServerMetrics } from './metrics.js';
import type { Limits, Timing } from './options.js';
import { parseFrame, type ClientInfo, type Command, type Push } from './protocol.js';
import { TokenBucket } from './rate-limit.js';
import { ROOM_NAME } from './rooms.js';
import { ROOM_NAMESPACE, validateSignalingMessage } from './signaling-messages.js';

/** What a session needs from the server. */
export interface SessionContext {
  readonly hub: Hub;
  readonly secret: Uint8Array;
  readonly limits: Limits;
  readonly timing: Timing;
  readonly metrics: ServerMetrics;
  readonly log: Logger;
  /** The version string put in connect replies. */
  readonly version: string;
  /**
   * Room policy beyond the subscription token: refuses a subscription to room `room` with a reply error
   * (e.g. the room does not exist, or the token predates it), or returns undefined to accept it.
   */
  readonly admitSubscriber: (room: string, claims: JwtClaims) => ClientError | undefined;
  /** Called once when the session ends. */
  readonly onClosed: (session: ClientSession) => void;
}

interface ConnectionClaims {
  readonly sub: string;
  readonly info: unknown;
  readonly exp: number | undefined;
}

interface Subscription {
  readonly info: ClientInfo;
  timer: NodeJS.Timeout | undefined;
}

// setTimeout fires at once for delays beyond 2^31-1 ms; longer waits are taken in steps.
const MAX_TIMER_MS = 2_147_483_647;

/** Calls `onDue` at `due` (epoch ms); `store` receives each pending timer so the caller can clear it. */
function runAt(due: number, store: (timer: NodeJS.Timeout | undefined) => void, onDue: () => void): void {
  const left = due - Date.now();
  if (left <= 0) {
    store(undefined);
    onDue();
    return;
  }
  store(setTimeout(() => runAt(due, store, onDue), Math.min(left, MAX_TIMER_MS)));
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function closeReason(disconnect: DisconnectShape, detail: string): string {
  // A close frame's reason is at most 123 bytes; the standard reason comes first so it always fits.
  const full = detail ? `${disconnect.reason}: ${detail}` : disconnect.reason;
  let reason = full;
  while (Buffer.byteLength(reason) > 123) reason = reason.slice(0, -1);
  return reason;
}

/** One WebSocket connection. */
export class ClientSession {
  /** Centrifugo's client id: unique per connection. */
  readonly client = randomUUID();
  private state: 'connecting' | 'connected' | 'closed' = 'connecting';
  private user = '';
  private connInfo: unknown = undefined;
  private readonly subs = new Map<string, Subscription>();
  private readonly bucket: TokenBucket;
  private refusedInARow = 0;
  /** Frames produced while handling a frame, sent together once it is handled. */
  private outbox: string[] | undefined;
  private staleTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private pongTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ws: WebSocket,
    readonly ip: string,
    private readonly ctx: SessionContext,
  ) {
    this.bucket = new TokenBucket(ctx.limits.messagesPerSecond, ctx.limits.messageBurst);
    this.staleTimer = setTimeout(() => this.disconnect(Disconnects.stale, 'no connect command in time'), ctx.timing.staleCloseMs);
    ws.on('message', (data, isBinary) => this.onFrame(data, isBinary));
    ws.on('error', (err) => this.onSocketError(err));
    ws.on('close', () => this.cleanup());
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Ends the session with a Centrifugo disconnect: a close frame with its code and reason. */
  disconnect(disconnect: DisconnectShape, detail = ''): void {
    if (this.state === 'closed') return;
    this.ctx.metrics.disconnects({ code: String(disconnect.code) });
    this.ctx.log.info('disconnect', { client: this.client, user: this.user, ip: this.ip, code: disconnect.code, reason: disconnect.reason, detail });
    this.flush();
    this.cleanup();
    this.ws.close(disconnect.code, closeReason(disconnect, detail));
    // A peer that never answers the close handshake would hold the socket; cut it after a while.
    setTimeout(() => this.ws.terminate(), 2_000).unref();
  }

  private onSocketError(err: Error & { code?: string }): void {
    // ws already closes the socket with the matching code; record why. An oversized frame closes with 1009,
    // which the official client reports as "message size limit exceeded" and does not retry.
    if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.ctx.metrics.disconnects({ code: '1009' });
    this.ctx.log.info('socket error', { client: this.client, ip: this.ip, error: err.message, code: err.code });
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    if (this.state === 'closed') return;
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    this.ctx.metrics.bytesIn({}, buf.length);
    // Any frame shows the client is alive, as a pong does.
    this.clearPongTimer();
    if (isBinary) {
      this.disconnect(Disconnects.badRequest, 'binary frame on the JSON protocol');
      return;
    }
    this.outbox = [];
    try {
      for (const command of parseFrame(buf.toString('utf8'))) {
        if (this.isClosed()) break; // an earlier command of the frame ended the session
        this.handle(command);
      }
    } catch (err) {
      if (err instanceof DisconnectError) {
        this.disconnect(err.disconnect, err.detail);
      } else {
        this.ctx.log.error('command failed', { client: this.client, error: err instanceof Error ? err.stack : String(err) });
        this.disconnect(Disconnects.serverError);
      }
    } finally {
      this.flush();
    }
  }

  private handle(command: Command): void {
    if (command.method === 'pong') return;
    this.ctx.metrics.commands({ method: command.method });
    if (this.state === 'connecting' && command.method !== 'connect') throw new DisconnectError(Disconnects.badRequest, `${command.method} before connect`);
    if (!this.bucket.take()) {
      this.ctx.metrics.refusals({ kind: 'error', code: String(ClientErrors.tooManyRequests.code) });
      // A client that keeps sending while refused is not backing off: cut it instead of answering forever.
      if (++this.refusedInARow > this.ctx.limits.messageBurst) throw new DisconnectError(Disconnects.tooManyRequests, 'kept sending while rate limited');
      if (command.method !== 'send') this.reply(command.id, { error: new ClientError(ClientErrors.tooManyRequests, `over ${this.ctx.limits.messagesPerSecond} commands per second`).toReply() });
      return;
    }
    this.refusedInARow = 0;
    if (command.method === 'send') throw new DisconnectError(Disconnects.notAvailable, 'asynchronous messages are not supported');
    try {
      const result = this.dispatch(command);
      this.reply(command.id, { [command.method]: result });
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      this.ctx.metrics.refusals({ kind: 'error', code: String(err.code) });
      this.ctx.log.debug('command refused', { client: this.client, user: this.user, method: command.method, code: err.code, message: err.message });
      this.reply(command.id, { error: err.toReply() });
    }
  }

  private dispatch(command: Exclude<Command, { method: 'pong' | 'send' }>): Record<string, unknown> {
    switch (command.method) {
      case 'connect':
        if (this.state !== 'connecting') throw new DisconnectError(Disconnects.badRequest, 'already connected');
        return this.connect(command.req.token);
      case 'refresh':
        return this.refresh(command.req.token);
      case 'subscribe':
        return this.subscribe(command.req.channel, command.req.token);
      case 'sub_refresh':
        return this.subRefresh(command.req.channel, command.req.token);
      case 'unsubscribe':
        this.unsubscribe(command.req.channel);
        return {};
      case 'publish':
        this.publish(command.req.channel, command.req.data);
        return {};
      case 'presence':
        this.requireSubscribed(command.req.channel);
        return { presence: this.ctx.hub.presence(command.req.channel) };
      case 'presence_stats': {
        this.requireSubscribed(command.req.channel);
        const stats = this.ctx.hub.stats(command.req.channel);
        return { num_clients: stats.numClients, num_users: stats.numUsers };
      }
      case 'history':
        this.roomOf(command.req.channel);
        throw new ClientError(ClientErrors.notAvailable, 'room channels keep no history');
      case 'rpc':
        throw new ClientError(ClientErrors.notAvailable, 'no RPC methods');
    }
  }

  // --- connection -------------------------------------------------------------------------------------

  /** Verifies a connection token: `'expired'` for an expired one, a disconnect 3500 for any other fault. */
  private verifyConnectionToken(token: string | undefined): ConnectionClaims | 'expired' {
    if (!token) throw new DisconnectError(Disconnects.badRequest, 'connection token required');
    let claims: JwtClaims;
    try {
      claims = verifyJwt(token, this.ctx.secret, nowSeconds());
    } catch (err) {
      if (err instanceof JwtError && err.reason === 'expired') return 'expired';
      throw new DisconnectError(Disconnects.invalidToken, err instanceof Error ? err.message : String(err));
    }
    if (typeof claims.sub !== 'string' || claims.sub === '') throw new DisconnectError(Disconnects.invalidToken, 'sub claim required');
    return { sub: claims.sub, info: claims.info, exp: typeof claims.exp === 'number' ? claims.exp : undefined };
  }

  private connect(token: string | undefined): Record<string, unknown> {
    const claims = this.verifyConnectionToken(token);
    // The client fetches a new token (its getToken) and connects again.
    if (claims === 'expired') throw new ClientError(ClientErrors.tokenExpired);
    clearTimeout(this.staleTimer);
    this.state = 'connected';
    this.user = claims.sub;
    this.connInfo = claims.info;
    this.armExpiry(claims.exp);
    this.pingTimer = setInterval(() => this.ping(), this.ctx.timing.pingIntervalMs);
    this.ctx.log.debug('connected', { client: this.client, user: this.user, ip: this.ip });
    return {
      client: this.client,
      version: this.ctx.version,
      // Seconds, as Centrifugo sends them; the client expects a ping within this plus its own allowance.
      ping: Math.max(1, Math.ceil(this.ctx.timing.pingIntervalMs / 1000)),
      pong: true,
      ...this.expiresFields(claims.exp),
    };
  }

  private refresh(token: string): Record<string, unknown> {
    const claims = this.verifyConnectionToken(token);
    if (claims === 'expired') throw new DisconnectError(Disconnects.expired, 'refresh token expired');
    if (claims.sub !== this.user) throw new DisconnectError(Disconnects.invalidToken, 'refresh token is for another user');
    this.connInfo = claims.info;
    this.armExpiry(claims.exp);
    return { client: this.client, version: this.ctx.version, ...this.expiresFields(claims.exp) };
  }

  private expiresFields(exp: number | undefined): Record<string, unknown> {
    return exp === undefined ? {} : { expires: true, ttl: Math.max(0, exp - nowSeconds()) };
  }

  private armExpiry(exp: number | undefined): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    if (exp === undefined) return;
    runAt(exp * 1000 + this.ctx.timing.expiredCloseDelayMs, (t) => (this.expiryTimer = t), () => this.disconnect(Disconnects.expired, 'connection token not refreshed'));
  }

  private ping(): void {
    if (this.state !== 'connected') return;
    this.send('{}');
    if (this.pongTimer === undefined) this.pongTimer = setTimeout(() => this.disconnect(Disconnects.noPong), this.ctx.timing.pongTimeoutMs);
  }

  private clearPongTimer(): void {
    clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
  }

  // --- channels ---------------------------------------------------------------------------------------

  /** The room of a channel; other namespaces do not exist here (102, as Centrifugo for an undefined namespace). */
  private roomOf(channel: string): string {
    const prefix = `${ROOM_NAMESPACE}:`;
    const room = channel.startsWith(prefix) ? channel.slice(prefix.length) : '';
    if (!ROOM_NAME.test(room)) throw new ClientError(ClientErrors.unknownChannel, `channels are ${prefix}<room>`);
    return room;
  }

  private requireSubscribed(channel: string): Subscription {
    this.roomOf(channel);
    const sub = this.subs.get(channel);
    if (!sub) throw new ClientError(ClientErrors.permissionDenied, 'subscribe to the channel first');
    return sub;
  }

  /** Verifies a subscription token for `channel`: HS256, `sub` equal to this connection's user, `channel` equal. */
  private verifySubscriptionToken(channel: string, token: string | undefined): { claims: JwtClaims; exp: number | undefined } {
    if (!token) throw new ClientError(ClientErrors.permissionDenied, 'subscription token required');
    let claims: JwtClaims;
    try {
      claims = verifyJwt(token, this.ctx.secret, nowSeconds());
    } catch (err) {
      if (err instanceof JwtError && err.reason === 'expired') throw new ClientError(ClientErrors.tokenExpired);
      throw new ClientError(ClientErrors.permissionDenied, `invalid subscription token (${err instanceof Error ? err.message : String(err)})`);
    }
    if (claims.sub !== this.user) throw new ClientError(ClientErrors.permissionDenied, 'subscription token is for another user');
    if (claims.channel !== channel) throw new ClientError(ClientErrors.permissionDenied, 'subscription token is for another channel');
    return { claims, exp: typeof claims.exp === 'number' ? claims.exp : undefined };
  }

  private subscribe(channel: string, token: string | undefined): Record<string, unknown> {
    const room = this.roomOf(channel);
    if (this.subs.has(channel)) throw new ClientError(ClientErrors.alreadySubscribed);
    if (this.subs.size >= this.ctx.limits.channelsPerConnection) throw new ClientError(ClientErrors.limitExceeded, `at most ${this.ctx.limits.channelsPerConnection} channels per connection`);
    const { claims, exp } = this.verifySubscriptionToken(channel, token);
    const refusal = this.ctx.admitSubscriber(room, claims);
    if (refusal) throw refusal;
    const hub = this.ctx.hub;
    if (!hub.hasUser(channel, this.user) && hub.stats(channel).numUsers >= this.ctx.limits.peersPerRoom) {
      throw new ClientError(ClientErrors.limitExceeded, `room is full (${this.ctx.limits.peersPerRoom} peers)`);
    }
    const info: ClientInfo = {
      client: this.client,
      user: this.user,
      ...(this.connInfo !== undefined ? { conn_info: this.connInfo } : {}),
      ...(claims.info !== undefined ? { chan_info: claims.info } : {}),
    };
    const sub: Subscription = { info, timer: undefined };
    this.subs.set(channel, sub);
    hub.subscribe(channel, { info, send: (frame) => this.send(frame) });
    this.armSubExpiry(channel, sub, exp);
    return this.expiresFields(exp);
  }

  private subRefresh(channel: string, token: string): Record<string, unknown> {
    const sub = this.requireSubscribed(channel);
    const { exp } = this.verifySubscriptionToken(channel, token);
    this.armSubExpiry(channel, sub, exp);
    return this.expiresFields(exp);
  }

  private armSubExpiry(channel: string, sub: Subscription, exp: number | undefined): void {
    clearTimeout(sub.timer);
    sub.timer = undefined;
    if (exp === undefined) return;
    runAt(exp * 1000 + this.ctx.timing.expiredCloseDelayMs, (t) => (sub.timer = t), () => {
      if (this.subs.get(channel) !== sub) return;
      this.unsubscribe(channel);
      // Code 2501 makes the client subscribe again, with a fresh token from its getToken.
      const push: Push = { channel, unsubscribe: Unsubscribes.expired };
      this.send(JSON.stringify({ push }));
    });
  }

  private unsubscribe(channel: string): void {
    const sub = this.subs.get(channel);
    if (!sub) return;
    clearTimeout(sub.timer);
    this.subs.delete(channel);
    this.ctx.hub.unsubscribe(channel, this.client);
  }

  private publish(channel: string, data: unknown): void {
    const sub = this.requireSubscribed(channel);
    // Shape first: it bounds the nesting, and JSON.stringify of arbitrarily deep data can overflow the stack.
    const check = validateSignalingMessage(data);
    if (!check.ok) throw new ClientError(ClientErrors.badRequest, check.reason);
    const bytes = Buffer.byteLength(JSON.stringify(data));
    if (bytes > this.ctx.limits.maxPublicationBytes) throw new ClientError(ClientErrors.limitExceeded, `publication data over ${this.ctx.limits.maxPublicationBytes} bytes`);
    if (check.message.from !== this.user) throw new ClientError(ClientErrors.permissionDenied, 'from must be the publisher\'s own peer id');
    this.ctx.metrics.publicationsIn();
    const delivered = this.ctx.hub.publish(channel, data, sub.info);
    this.ctx.metrics.publicationsOut({}, delivered);
  }

  // --- output -----------------------------------------------------------------------------------------

  private reply(id: number, body: Record<string, unknown>): void {
    this.send(JSON.stringify({ id, ...body }));
  }

  /** Queues a frame while a frame is handled, else sends it at once. */
  private send(frame: string): void {
    if (this.outbox) this.outbox.push(frame);
    else this.write(frame);
  }

  private flush(): void {
    const out = this.outbox;
    this.outbox = undefined;
    if (out && out.length > 0) this.write(out.join('\n'));
  }

  private write(frame: string): void {
    if (this.state === 'closed' || this.ws.readyState !== WebSocket.OPEN) return;
    if (this.ws.bufferedAmount > this.ctx.limits.maxQueuedBytes) {
      this.disconnect(Disconnects.slow, `over ${this.ctx.limits.maxQueuedBytes} bytes queued`);
      return;
    }
    this.ctx.metrics.bytesOut({}, Buffer.byteLength(frame));
    this.ws.send(frame);
  }

  /** Leaves every channel and stops the timers; idempotent. */
  private cleanup(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.outbox = undefined;
    clearTimeout(this.staleTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.expiryTimer);
    this.clearPongTimer();
    for (const channel of [...this.subs.keys()]) this.unsubscribe(channel);
    this.ctx.onClosed(this);
  }
}
