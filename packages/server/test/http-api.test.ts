// The HTTP API (rooms, tokens, ICE config), ops endpoints (metrics, health), the fallback, and graceful
// shutdown, against the real server.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { signJwt, verifyJwt, type TokenResponse } from '../src/index.ts';
import { api, client, joined, next, Raw, SECRET, startServer, token, type Running } from './helpers.ts';

describe('HTTP API', () => {
  let srv: Running;
  before(async () => {
    srv = await startServer({
      iceServers: [{ urls: 'stun:stun.example.org:3478' }, { urls: ['turn:turn.example.org'], username: 'u', credential: 'c' }],
      limits: { peersPerRoom: 2, maxBodyBytes: 1024 },
      fallback: (req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`app ${req.url}`);
      },
    });
  });
  after(() => srv.server.close());

  test('POST /api/rooms creates a named room, or a random URL-safe one; a taken name is 409', async () => {
    const named = await api(srv.base, 'POST', '/api/rooms', { name: 'lobby' });
    assert.equal(named.status, 201);
    assert.deepEqual(named.body, { room: 'lobby', protected: false, peers: 0 });
    const random = await api(srv.base, 'POST', '/api/rooms', {});
    assert.equal(random.status, 201);
    assert.match(random.body.room, /^[A-Za-z0-9_-]{8,}$/);
    const taken = await api(srv.base, 'POST', '/api/rooms', { name: 'lobby' });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.error.code, 'room_exists');
    for (const name of ['', 'a b', 'x'.repeat(65), 'é', 42]) {
      const bad = await api(srv.base, 'POST', '/api/rooms', { name });
      assert.equal(bad.status, 400, `name ${JSON.stringify(name)}`);
      assert.equal(bad.body.error.code, 'invalid_room_name');
    }
  });

  test('GET /api/rooms/:room describes a room; an unknown room is 404', async () => {
    await api(srv.base, 'POST', '/api/rooms', { name: 'described', password: 'pw' });
    const got = await api(srv.base, 'GET', '/api/rooms/described');
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, { room: 'described', protected: true, peers: 0 });
    const missing = await api(srv.base, 'GET', '/api/rooms/nowhere');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'room_not_found');
  });

  test('POST /api/rooms/:room/token issues tokens with the claims Centrifugo expects', async () => {
    await api(srv.base, 'POST', '/api/rooms', { name: 'claims' });
    const res = await api(srv.base, 'POST', '/api/rooms/claims/token', { name: '  Ann  ' });
    assert.equal(res.status, 200);
    const t = res.body;
    assert.equal(t.channel, 'room:claims');
    assert.equal(t.url, `${srv.wsUrl}`);
    assert.deepEqual(t.iceServers, [{ urls: 'stun:stun.example.org:3478' }, { urls: ['turn:turn.example.org'], username: 'u', credential: 'c' }]);
    const now = Math.floor(Date.now() / 1000);
    const conn = verifyJwt(t.token, Buffer.from(SECRET), now);
    assert.equal(conn.sub, t.peerId);
    assert.deepEqual(conn.info, { name: 'Ann' }, 'the name is trimmed');
    assert.ok(typeof conn.exp === 'number' && conn.exp > now, 'the connection token expires in the future');
    const sub = verifyJwt(t.subscriptionToken, Buffer.from(SECRET), now);
    assert.deepEqual([sub.sub, sub.channel], [t.peerId, 'room:claims']);
    assert.equal(res.headers.get('cache-control'), 'no-store');
  });

  test('token refusals: unknown room 404 unless create, bad name 400, password 403, full 409', async () => {
    const unknown = await api(srv.base, 'POST', '/api/rooms/ghost/token', { name: 'Ann' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'room_not_found');
    const created = await api(srv.base, 'POST', '/api/rooms/ghost/token', { name: 'Ann', create: true, password: 'secret' });
    assert.equal(created.status, 200, 'create: true creates the room');
    assert.equal((await api(srv.base, 'GET', '/api/rooms/ghost')).body.protected, true, 'with the password given');
    for (const name of [undefined, '', '   ', 'x'.repeat(65), 'tab\there', 7]) {
      const bad = await api(srv.base, 'POST', '/api/rooms/ghost/token', { name, password: 'secret' });
      assert.equal(bad.status, 400, `name ${JSON.stringify(name)}`);
      assert.equal(bad.body.error.code, 'invalid_name');
    }
    const missing = await api(srv.base, 'POST', '/api/rooms/ghost/token', { name: 'Bob' });
    assert.equal(missing.status, 403);
    assert.equal(missing.body.error.code, 'password_required');
    const wrong = await api(srv.base, 'POST', '/api/rooms/ghost/token', { name: 'Bob', password: 'guess' });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.error.code, 'wrong_password');
    const right = await api(srv.base, 'POST', '/api/rooms/ghost/token', { name: 'Bob', password: 'secret' });
    assert.equal(right.status, 200);
    const peers = [await joined(created.body), await joined(right.body)];
    const full = await api(srv.base, 'POST', '/api/rooms/ghost/token', { name: 'Cid', password: 'secret' });
    assert.equal(full.status, 409);
    assert.equal(full.body.error.code, 'room_full');
    assert.equal((await api(srv.base, 'GET', '/api/rooms/ghost')).body.peers, 2);
    for (const p of peers) p.c.disconnect();
  });

  test('bad requests: invalid JSON, not an object, body too large, wrong method, unknown path', async () => {
    const json = await api(srv.base, 'POST', '/api/rooms', '{"name":');
    assert.deepEqual([json.status, json.body.error.code], [400, 'invalid_json']);
    const array = await api(srv.base, 'POST', '/api/rooms', '[]');
    assert.deepEqual([array.status, array.body.error.code], [400, 'bad_request']);
    const large = await api(srv.base, 'POST', '/api/rooms', { name: 'big', pad: 'x'.repeat(2000) });
    assert.deepEqual([large.status, large.body.error.code], [413, 'body_too_large']);
    const method = await api(srv.base, 'DELETE', '/api/rooms/lobby');
    assert.deepEqual([method.status, method.body.error.code], [405, 'method_not_allowed']);
    assert.equal(method.headers.get('allow'), 'GET, HEAD');
    const path = await api(srv.base, 'GET', '/api/nothing');
    assert.deepEqual([path.status, path.body.error.code], [404, 'not_found']);
    const create = await api(srv.base, 'POST', '/api/rooms/lobby/token', { name: 'x', create: 'yes' });
    assert.deepEqual([create.status, create.body.error.code], [400, 'bad_request']);
  });

  test('GET /api/config gives the ICE servers', async () => {
    const res = await api(srv.base, 'GET', '/api/config');
    assert.equal(res.status, 200);
    assert.equal(res.body.iceServers.length, 2);
  });

  test('/healthz, /metrics, and the fallback for everything else', async () => {
    const health = await api(srv.base, 'GET', '/healthz');
    assert.deepEqual([health.status, health.body], [200, { status: 'ok' }]);
    const t = await token(srv.base, 'metered');
    const p = await joined(t);
    await p.sub.publish({ type: 'peer-joined', from: t.peerId });
    const res = await fetch(`${srv.base}/metrics`);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const line of [
      /^raftrtc_signaling_connections 1$/m,
      /^raftrtc_signaling_subscribers 1$/m,
      /^raftrtc_rooms \d+$/m,
      /^raftrtc_signaling_publications_received_total 1$/m,
      /^raftrtc_signaling_publications_delivered_total 1$/m,
      /^raftrtc_signaling_received_bytes_total \d+$/m,
      /^raftrtc_signaling_sent_bytes_total \d+$/m,
      /^raftrtc_refusals_total\{code="room_not_found",kind="http"\} \d+$/m,
      /^# TYPE raftrtc_refusals_total counter$/m,
    ]) {
      assert.match(text, line);
    }
    p.c.disconnect();
    const app = await fetch(`${srv.base}/index.html`);
    assert.equal(await app.text(), 'app /index.html');
    const ws = await fetch(`${srv.base}/connection/websocket`);
    assert.equal(ws.status, 400, 'the WebSocket endpoint does not fall through to the app');
  });
});

describe('requests that could crash a server', () => {
  test('a request target that is not a URL path gets 400; a throwing fallback gets 500; the server keeps serving', async () => {
    const srv = await startServer({
      fallback: () => {
        throw new Error('the app broke');
      },
    });
    try {
      const port = new URL(srv.base).port;
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => socket.end('GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
        let data = '';
        socket.on('data', (d) => (data += d.toString()));
        socket.on('end', () => resolve(data));
        socket.on('error', reject);
      });
      assert.match(answer, /^HTTP\/1\.1 400/);
      assert.equal((await fetch(`${srv.base}/page`)).status, 500);
      assert.equal((await api(srv.base, 'GET', '/healthz')).status, 200);
    } finally {
      await srv.server.close();
    }
  });
});

describe('behind a reverse proxy (trustProxy)', () => {
  test('client address from X-Forwarded-For, wss URL from X-Forwarded-Proto', async () => {
    const srv = await startServer({ trustProxy: true, limits: { connectionsPerIp: 1 } });
    try {
      const res = await fetch(`${srv.base}/api/rooms/proxied/token`, {
        method: 'POST',
        headers: { 'x-forwarded-proto': 'https' },
        body: JSON.stringify({ name: 'Ann', create: true }),
      });
      const t = (await res.json()) as { url: string };
      assert.equal(t.url, `wss://${new URL(srv.base).host}/connection/websocket`);
      const open = (ip: string): Raw => new Raw(srv.wsUrl, { 'x-forwarded-for': `10.9.9.9, ${ip}` });
      const a = open('10.0.0.1');
      const b = open('10.0.0.2');
      await Promise.all([a.open(), b.open()]);
      const c = open('10.0.0.1');
      assert.equal((await c.closed).code, 3504, 'a second connection from 10.0.0.1 is over the limit');
      a.close();
      b.close();
    } finally {
      await srv.server.close();
    }
  });
});

describe('token refresh', () => {
  test('POST /api/rooms/:room/refresh gives new tokens for the same peer; refusals', async () => {
    const srv = await startServer({ timing: { refreshGraceSeconds: 1 } });
    try {
      const a = await token(srv.base, 'refresh', 'Ann');
      const b = await token(srv.base, 'refresh', 'Bob');
      const other = await token(srv.base, 'refresh-other', 'Cid');
      const ok = await api(srv.base, 'POST', '/api/rooms/refresh/refresh', { token: a.token, subscriptionToken: a.subscriptionToken });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.peerId, a.peerId, 'the same peer');
      assert.equal(ok.body.channel, 'room:refresh');
      const claims = verifyJwt(ok.body.token, Buffer.from(SECRET), Math.floor(Date.now() / 1000));
      assert.deepEqual([claims.sub, claims.info], [a.peerId, { name: 'Ann' }]);
      const refusals: Array<[string, unknown, number, string]> = [
        ['tokens of two peers', { token: a.token, subscriptionToken: b.subscriptionToken }, 401, 'invalid_token'],
        ['a subscription token of another room', { token: other.token, subscriptionToken: other.subscriptionToken }, 401, 'invalid_token'],
        ['a forged token', { token: a.token.slice(0, -2) + 'xx', subscriptionToken: a.subscriptionToken }, 401, 'invalid_token'],
        ['no subscription token', { token: a.token }, 400, 'bad_request'],
        [
          'tokens expired beyond the grace',
          {
            token: signJwt({ sub: a.peerId, exp: Math.floor(Date.now() / 1000) - 5 }, Buffer.from(SECRET)),
            subscriptionToken: a.subscriptionToken,
          },
          401,
          'token_expired',
        ],
      ];
      for (const [what, body, status, code] of refusals) {
        const res = await api(srv.base, 'POST', '/api/rooms/refresh/refresh', body);
        assert.deepEqual([res.status, res.body.error.code], [status, code], what);
      }
      const gone = await api(srv.base, 'POST', '/api/rooms/nowhere/refresh', { token: a.token, subscriptionToken: a.subscriptionToken });
      assert.deepEqual([gone.status, gone.body.error.code], [404, 'room_not_found']);
    } finally {
      await srv.server.close();
    }
  });

  test('the official client keeps its connection and subscription with getToken callbacks on the refresh endpoint', async () => {
    const srv = await startServer({ timing: { tokenTtlSeconds: 1 } });
    try {
      let current = await token(srv.base, 'longcall', 'Ann');
      let refreshes = 0;
      const refresh = async (): Promise<TokenResponse> => {
        const res = await api(srv.base, 'POST', '/api/rooms/longcall/refresh', { token: current.token, subscriptionToken: current.subscriptionToken });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        current = res.body as TokenResponse;
        refreshes++;
        return current;
      };
      const c = client(current, { getToken: async () => (await refresh()).token });
      c.connect();
      const connected = await next(c, 'connected');
      const sub = c.newSubscription(current.channel, { token: current.subscriptionToken, getToken: async () => (await refresh()).subscriptionToken });
      sub.subscribe();
      await sub.ready(5000);
      while (refreshes < 4) await new Promise((r) => setTimeout(r, 50));
      assert.equal(c.state, 'connected', 'the connection was refreshed, not closed');
      assert.equal(sub.state, 'subscribed', 'the subscription was refreshed');
      const presence = await sub.presence();
      assert.deepEqual(Object.keys(presence.clients), [connected.client], 'the same connection');
      assert.equal(Object.values(presence.clients)[0]!.user, current.peerId);
      c.disconnect();
    } finally {
      await srv.server.close();
    }
  });
});

describe('room lifetime and POST rate', () => {
  test('a room without peers expires after the idle time; a room with peers does not', async () => {
    const srv = await startServer({ timing: { roomIdleMs: 100 } });
    try {
      await api(srv.base, 'POST', '/api/rooms', { name: 'idle' });
      const t = await token(srv.base, 'busy');
      const p = await joined(t);
      await new Promise((r) => setTimeout(r, 250));
      assert.equal((await api(srv.base, 'GET', '/api/rooms/idle')).status, 404, 'the idle room expired');
      assert.equal((await api(srv.base, 'GET', '/api/rooms/busy')).status, 200, 'the room with a peer lives');
      p.c.disconnect();
    } finally {
      await srv.server.close();
    }
  });

  test('a token for an expired room does not open a new room of the same name', async () => {
    const srv = await startServer({ timing: { roomIdleMs: 50 } });
    try {
      const old = await token(srv.base, 'reused');
      await new Promise((r) => setTimeout(r, 1100));
      // The room expired; someone creates it again (a second later, so the old token's iat is older).
      await api(srv.base, 'POST', '/api/rooms', { name: 'reused' });
      const c = client(old);
      c.connect();
      await c.ready(5000);
      const sub = c.newSubscription(old.channel, { token: old.subscriptionToken });
      const unsubscribed = next(sub, 'unsubscribed');
      sub.subscribe();
      assert.equal((await unsubscribed).code, 103);
      c.disconnect();
    } finally {
      await srv.server.close();
    }
  });

  test('POSTs over the per-address rate are refused with 429', async () => {
    const srv = await startServer({ limits: { httpRequestsPerSecond: 1, httpBurst: 3 } });
    try {
      const responses = [];
      for (let i = 0; i < 5; i++) responses.push(await api(srv.base, 'POST', '/api/rooms', {}));
      assert.deepEqual(responses.slice(0, 3).map((r) => r.status), [201, 201, 201], 'the burst goes through');
      const refused = responses.slice(3).find((r) => r.status === 429);
      assert.ok(refused, `later POSTs are refused (${responses.map((r) => r.status).join(',')})`);
      assert.equal(refused.body.error.code, 'too_many_requests');
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.equal((await api(srv.base, 'GET', '/api/config')).status, 200, 'GETs are not limited');
    } finally {
      await srv.server.close();
    }
  });
});

describe('graceful shutdown', () => {
  test('close() sends clients the shutdown disconnect (3001, they reconnect later) and stops the server', async () => {
    const srv = await startServer();
    const t = await token(srv.base, 'bye');
    const { c } = await joined(t);
    const connecting = next(c, 'connecting');
    await srv.server.close();
    const ctx = await connecting;
    assert.equal(ctx.code, 3001);
    assert.equal(ctx.reason, 'shutdown');
    await assert.rejects(fetch(`${srv.base}/healthz`), 'the server no longer accepts connections');
    c.disconnect();
  });
});
