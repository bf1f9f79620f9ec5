// Shared helpers of the server tests: a server on 127.0.0.1:0, the HTTP API, the official centrifuge client,
// and a raw WebSocket client for what the official client never does (malformed frames, no pongs).
import { Centrifuge, type Options, type Subscription } from 'centrifuge';
import WebSocket from 'ws';
import { createServer, type RaftRtcServer, type ServerOptions, type TokenResponse } from '../src/index.ts';

export const SECRET = 'test-secret';

/** A started server; `stop()` closes it. */
export interface Running {
  readonly server: RaftRtcServer;
  readonly base: string;
  readonly wsUrl: string;
}

export async function startServer(options: ServerOptions = {}): Promise<Running> {
  // The HTTP POST rate limit would throttle tests that issue many tokens; the tests of that limit set their own.
  const server = createServer({ secret: SECRET, logLevel: 'silent', ...options, limits: { httpRequestsPerSecond: 1000, httpBurst: 1000, ...options.limits } });
  const { port } = await server.listen(0);
  return { server, base: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/connection/websocket` };
}

/** A JSON HTTP call; `body` undefined sends no body. */
export async function api(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

/** Issues a token for `room` (created if needed). */
export async function token(base: string, room: string, name = 'peer', extra: Record<string, unknown> = {}): Promise<TokenResponse> {
  const res = await api(base, 'POST', `/api/rooms/${room}/token`, { name, create: true, ...extra });
  if (res.status !== 200) throw new Error(`token: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as TokenResponse;
}

/** Resolves with the next `event` of an emitter, failing after `ms` so a missing event fails the test instead of hanging it. */
export function next<T = any>(emitter: { on(e: string, f: (ctx: any) => void): unknown; removeListener(e: string, f: (ctx: any) => void): unknown }, event: string, ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.removeListener(event, on);
      reject(new Error(`no ${event} event within ${ms} ms`));
    }, ms);
    const on = (ctx: T): void => {
      clearTimeout(timer);
      emitter.removeListener(event, on);
      resolve(ctx);
    };
    emitter.on(event, on);
  });
}

/** The official client with the `ws` WebSocket, not yet connected. Reconnects are slow so a test sees one attempt. */
export function client(t: TokenResponse | { url: string; token: string }, options: Partial<Options> = {}): Centrifuge {
  return new Centrifuge(t.url, { websocket: WebSocket, token: t.token, minReconnectDelay: 60_000, maxReconnectDelay: 60_000, timeout: 4000, ...options });
}

/** A connected official client subscribed to its room. */
export async function joined(t: TokenResponse): Promise<{ c: Centrifuge; sub: Subscription }> {
  const c = client(t);
  c.connect();
  await c.ready(5000);
  const sub = c.newSubscription(t.channel, { token: t.subscriptionToken });
  sub.subscribe();
  await sub.ready(5000);
  return { c, sub };
}

/** A raw WebSocket speaking the protocol by hand. */
export class Raw {
  readonly ws: WebSocket;
  readonly frames: string[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];

  constructor(url: string, headers: Record<string, string> = {}) {
    this.ws = new WebSocket(url, { headers });
    // The raw client never answers pings: ws answers only protocol-level pings, not Centrifugo's `{}`.
    this.ws.on('message', (data) => {
      this.frames.push(data.toString());
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('error', () => {});
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  send(text: string | Buffer): void {
    this.ws.send(text);
  }

  /** Every reply or push received so far, one parsed object per line. */
  messages(): any[] {
    return this.frames.flatMap((f) => f.split('\n').map((l) => JSON.parse(l)));
  }

  /** Waits until a received message satisfies `pred`. */
  async waitFor(pred: (m: any) => boolean, ms = 5000): Promise<any> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.messages().find(pred);
      if (found) return found;
      if (Date.now() > deadline) throw new Error('expected message not received');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  close(): void {
    this.ws.terminate();
  }
}

/** A raw client connected with a connection token. */
export async function rawConnected(wsUrl: string, t: TokenResponse): Promise<Raw> {
  const raw = new Raw(wsUrl);
  await raw.open();
  raw.send(JSON.stringify({ id: 1, connect: { token: t.token } }));
  const reply = await raw.waitFor((m) => m.id === 1);
  if (!reply.connect) throw new Error(`connect failed: ${JSON.stringify(reply)}`);
  return raw;
}
