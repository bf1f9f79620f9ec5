// Limits and protocol violations: server pings and the pong deadline, rate limiting, frame and publication
// size, malformed frames, connections per address, connections that never authenticate. Each refusal must
// carry Centrifugo's code, and none may take the server down.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { signJwt } from '../src/index.ts';
import { joined, next, Raw, rawConnected, SECRET, startServer, token } from './helpers.ts';

describe('pings', () => {
  test('a client that never pongs is disconnected with 3012; the official client and a ponging client stay', async () => {
    const srv = await startServer({ timing: { pingIntervalMs: 50, pongTimeoutMs: 100 } });
    try {
      const t = await token(srv.base, 'ping');
      const official = await joined(t);
      const silent = await rawConnected(srv.wsUrl, await token(srv.base, 'ping'));
      const ponger = await rawConnected(srv.wsUrl, await token(srv.base, 'ping'));
      let pings = 0;
      ponger.ws.on('message', (data) => {
        if (data.toString() === '{}') {
          pings++;
          ponger.send('{}');
        }
      });
      const closed = await silent.closed;
      assert.equal(closed.code, 3012);
      assert.equal(closed.reason, 'no pong');
      while (pings < 5) await new Promise((r) => setTimeout(r, 20));
      assert.equal(ponger.ws.readyState, ponger.ws.OPEN, 'a client answering pings stays connected');
      assert.equal(official.c.state, 'connected', 'the official client answers pings');
      official.c.disconnect();
      ponger.close();
    } finally {
      await srv.server.close();
    }
  });

  test('the connect reply announces pings in seconds and asks for pongs', async () => {
    const srv = await startServer();
    try {
      const raw = await rawConnected(srv.wsUrl, await token(srv.base, 'announce'));
      const reply = raw.messages().find((m) => m.id === 1);
      assert.equal(reply.connect.ping, 25);
      assert.equal(reply.connect.pong, true);
      raw.close();
    } finally {
      await srv.server.close();
    }
  });
});

describe('rate limit', () => {
  test('commands over the bucket are refused with 111 (temporary); the connection stays', async () => {
    const srv = await startServer({ limits: { messagesPerSecond: 1, messageBurst: 6 } });
    try {
      const t = await token(srv.base, 'rate');
      const { c, sub } = await joined(t);
      // connect and subscribe took two tokens; four publications fit, the rest are refused.
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => sub.publish({ type: 'peer-joined', from: t.peerId })));
      const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as { code: number; temporary: boolean });
      assert.ok(refused.length >= 1, `some publications are refused (${refused.length} of 8)`);
      assert.ok(refused.every((e) => e.code === 111 && e.temporary === true), 'every refusal is 111 too many requests, temporary');
      assert.ok(results.some((r) => r.status === 'fulfilled'), 'the ones within the bucket went through');
      assert.equal(c.state, 'connected');
      c.disconnect();
    } finally {
      await srv.server.close();
    }
  });

  test('a client that keeps sending while refused is disconnected with 3013', async () => {
    const srv = await startServer({ limits: { messagesPerSecond: 1, messageBurst: 5 } });
    try {
      const t = await token(srv.base, 'flood');
      const raw = await rawConnected(srv.wsUrl, t);
      const frame = Array.from({ length: 50 }, (_, i) => JSON.stringify({ id: i + 2, presence_stats: { channel: t.channel } })).join('\n');
      raw.send(frame);
      const closed = await raw.closed;
      assert.equal(closed.code, 3013);
      assert.ok(raw.messages().some((m) => m.error?.code === 111), 'refusals came before the disconnect');
    } finally {
      await srv.server.close();
    }
  });
});

describe('sizes', () => {
  test('a frame over 64 KB closes the connection with 1009, which the official client reports as message size limit', async () => {
    const srv = await startServer();
    try {
      const t = await token(srv.base, 'big');
      const { c, sub } = await joined(t);
      const disconnected = next(c, 'disconnected');
      const publish = sub.publish({ type: 'offer', from: t.peerId, to: t.peerId, sdp: 'x'.repeat(70_000) });
      const ctx = await disconnected;
      assert.equal(ctx.code, 3, 'centrifuge-js disconnectedCodes.messageSizeLimit');
      await assert.rejects(publish);
      const metrics = await (await fetch(`${srv.base}/metrics`)).text();
      assert.match(metrics, /raftrtc_signaling_disconnects_total\{code="1009"\} 1/);
    } finally {
      await srv.server.close();
    }
  });

  test('publication data over the publication limit is refused with 106', async () => {
    const srv = await startServer({ limits: { maxPublicationBytes: 1000 } });
    try {
      const t = await token(srv.base, 'bigpub');
      const { c, sub } = await joined(t);
      await assert.rejects(sub.publish({ type: 'offer', from: t.peerId, to: t.peerId, sdp: 'x'.repeat(2000) }), (err: { code: number }) => err.code === 106);
      await sub.publish({ type: 'offer', from: t.peerId, to: t.peerId, sdp: 'x'.repeat(100) });
      c.disconnect();
    } finally {
      await srv.server.close();
    }
  });
});

describe('hostile data', () => {
  test('deeply nested publication data is refused with 107, not an internal error', async () => {
    const srv = await startServer();
    try {
      const t = await token(srv.base, 'nested');
      const raw = await rawConnected(srv.wsUrl, t);
      raw.send(JSON.stringify({ id: 2, subscribe: { channel: t.channel, token: t.subscriptionToken } }));
      await raw.waitFor((m) => m.id === 2);
      const depth = 30_000;
      raw.send(`{"id":3,"publish":{"channel":"${t.channel}","data":${'['.repeat(depth)}${']'.repeat(depth)}}}`);
      assert.equal((await raw.waitFor((m) => m.id === 3)).error.code, 107);
      raw.send(`{"id":4,"publish":{"channel":"${t.channel}","data":{"type":"offer","from":"${t.peerId}","to":"x","sdp":${'['.repeat(depth)}${']'.repeat(depth)}}}}`);
      assert.equal((await raw.waitFor((m) => m.id === 4)).error.code, 107);
      raw.close();
    } finally {
      await srv.server.close();
    }
  });
});

describe('protocol violations', () => {
  const cases: Array<[string, (raw: Raw, t: { token: string }) => void]> = [
    ['malformed JSON', (raw) => raw.send('{"id": 1, "connect": ')],
    ['a command before connect', (raw) => raw.send(JSON.stringify({ id: 1, presence: { channel: 'room:x' } }))],
    ['an unknown command', (raw, t) => raw.send(JSON.stringify({ id: 1, connect: { token: t.token } }) + '\n' + JSON.stringify({ id: 2, teleport: {} }))],
    ['a command without id', (raw, t) => raw.send(JSON.stringify({ connect: { token: t.token } }))],
    ['two methods in one command', (raw, t) => raw.send(JSON.stringify({ id: 1, connect: { token: t.token }, presence: { channel: 'room:x' } }))],
    ['a channel that is not a string', (raw, t) => raw.send(JSON.stringify({ id: 1, connect: { token: t.token } }) + '\n' + JSON.stringify({ id: 2, subscribe: { channel: 42 } }))],
    ['a binary frame', (raw) => raw.send(Buffer.from([1, 2, 3]))],
    ['a JSON array', (raw) => raw.send('[1,2]')],
    ['a second connect', (raw, t) => raw.send(JSON.stringify({ id: 1, connect: { token: t.token } }) + '\n' + JSON.stringify({ id: 2, connect: { token: t.token } }))],
    ['connect without a token', (raw) => raw.send(JSON.stringify({ id: 1, connect: {} }))],
  ];
  for (const [what, send] of cases) {
    test(`${what} is disconnected with 3501 bad request; the server keeps serving`, async () => {
      const srv = await startServer();
      try {
        const t = await token(srv.base, 'violations');
        const raw = new Raw(srv.wsUrl);
        await raw.open();
        send(raw, t);
        const closed = await raw.closed;
        assert.equal(closed.code, 3501, `${what}: ${closed.reason}`);
        assert.match(closed.reason, /^bad request: \w/, 'the reason says what was wrong');
        assert.doesNotMatch(closed.reason, /bad request: bad request/);
        const again = await rawConnected(srv.wsUrl, t);
        again.close();
      } finally {
        await srv.server.close();
      }
    });
  }
});

describe('connections', () => {
  test('connections over the per-address limit are closed with 3504', async () => {
    const srv = await startServer({ limits: { connectionsPerIp: 2 } });
    try {
      const a = new Raw(srv.wsUrl);
      const b = new Raw(srv.wsUrl);
      await Promise.all([a.open(), b.open()]);
      const c = new Raw(srv.wsUrl);
      const closed = await c.closed;
      assert.equal(closed.code, 3504);
      assert.match(closed.reason, /^connection limit/);
      a.close();
      await a.closed;
      // The slot is free again once the server has seen the close.
      while (!/raftrtc_signaling_connections 1\n/.test(await (await fetch(`${srv.base}/metrics`)).text())) await new Promise((r) => setTimeout(r, 10));
      const d = await rawConnected(srv.wsUrl, await token(srv.base, 'perip'));
      d.close();
      b.close();
    } finally {
      await srv.server.close();
    }
  });

  test('a connection that never sends connect is closed as stale (3502)', async () => {
    const srv = await startServer({ timing: { staleCloseMs: 50 } });
    try {
      const raw = new Raw(srv.wsUrl);
      assert.equal((await raw.closed).code, 3502);
    } finally {
      await srv.server.close();
    }
  });

  test('a connection whose token expired and was not refreshed is closed with 3005', async () => {
    const srv = await startServer({ timing: { expiredCloseDelayMs: 1 } });
    try {
      const t = await token(srv.base, 'expiry');
      const shortLived = signJwt({ sub: t.peerId, exp: Math.floor(Date.now() / 1000) + 1 }, Buffer.from(SECRET));
      const raw = await rawConnected(srv.wsUrl, { ...t, token: shortLived });
      const reply = raw.messages().find((m) => m.id === 1);
      assert.equal(reply.connect.expires, true, 'the connect reply says the connection expires');
      const closed = await raw.closed;
      assert.equal(closed.code, 3005);
    } finally {
      await srv.server.close();
    }
  });

  test('a subscription whose token expired and was not refreshed gets the unsubscribe push 2501', async () => {
    const srv = await startServer({ timing: { expiredCloseDelayMs: 1 } });
    try {
      const t = await token(srv.base, 'subexpiry');
      const raw = await rawConnected(srv.wsUrl, t);
      const shortLived = signJwt({ sub: t.peerId, channel: t.channel, exp: Math.floor(Date.now() / 1000) + 1 }, Buffer.from(SECRET));
      raw.send(JSON.stringify({ id: 2, subscribe: { channel: t.channel, token: shortLived } }));
      const push = await raw.waitFor((m) => m.push?.unsubscribe !== undefined, 5000);
      assert.deepEqual(push.push, { channel: t.channel, unsubscribe: { code: 2501, reason: 'subscription expired' } });
      raw.send(JSON.stringify({ id: 3, presence_stats: { channel: t.channel } }));
      assert.equal((await raw.waitFor((m) => m.id === 3)).error.code, 103, 'no longer subscribed');
      raw.close();
    } finally {
      await srv.server.close();
    }
  });
});
