// The signaling server against the official `centrifuge` client (v5) in Node: connect, tokens, subscribe,
// publish, presence, join/leave, refusals. Raw frames only where the official client cannot be made to
// send them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signJwt } from '../src/index.ts';
import { client, joined, next, rawConnected, SECRET, startServer, token, type Running } from './helpers.ts';

const secret = Buffer.from(SECRET);
const now = (): number => Math.floor(Date.now() / 1000);

describe('official centrifuge client', () => {
  let srv: Running;
  before(async () => {
    srv = await startServer({ limits: { peersPerRoom: 3 } });
  });
  after(() => srv.server.close());

  test('connects with a connection token and learns its client id', async () => {
    const t = await token(srv.base, 'connect', 'Ann');
    const c = client(t);
    const connected = next(c, 'connected');
    c.connect();
    const ctx = await connected;
    assert.ok(typeof ctx.client === 'string' && ctx.client.length > 0, 'the connect reply carries a client id');
    assert.equal(ctx.transport, 'websocket');
    c.disconnect();
  });

  test('a token signed with another secret is disconnected with 3500 invalid token, without reconnecting', async () => {
    const t = await token(srv.base, 'badtoken');
    const forged = signJwt({ sub: t.peerId, exp: now() + 60 }, Buffer.from('other-secret'));
    const c = client({ url: t.url, token: forged });
    const disconnected = next(c, 'disconnected');
    c.connect();
    const ctx = await disconnected;
    assert.equal(ctx.code, 3500);
    assert.match(ctx.reason, /^invalid token/);
    assert.equal(c.state, 'disconnected');
  });

  test('an expired token gets error 109; the client fetches a new one with getToken and connects', async () => {
    const t = await token(srv.base, 'expired');
    const expired = signJwt({ sub: t.peerId, exp: now() - 10 }, secret);
    let fetched = 0;
    // getToken is what the client calls after a 109; a real app asks the HTTP API again.
    const getToken = async (): Promise<string> => {
      fetched++;
      return t.token;
    };
    const c = client({ url: t.url, token: expired }, { getToken, minReconnectDelay: 10, maxReconnectDelay: 20 });
    const error = next(c, 'error');
    const connected = next(c, 'connected');
    c.connect();
    const err = await error;
    assert.equal(err.type, 'connect');
    assert.equal(err.error.code, 109);
    await connected;
    assert.equal(fetched, 1, 'getToken was called once, after the 109');
    c.disconnect();
  });

  test('a subscription needs a valid subscription token for its channel and user', async () => {
    const t = await token(srv.base, 'subtokens');
    const other = await token(srv.base, 'subtokens-other');
    const c = client(t);
    c.connect();
    await c.ready(5000);
    const cases: Array<[string, string | undefined]> = [
      ['no token', undefined],
      ['token of another channel', signJwt({ sub: t.peerId, channel: other.channel, exp: now() + 60 }, secret)],
      ['token of another user', signJwt({ sub: other.peerId, channel: t.channel, exp: now() + 60 }, secret)],
      ['token with a bad signature', signJwt({ sub: t.peerId, channel: t.channel, exp: now() + 60 }, Buffer.from('nope'))],
    ];
    for (const [what, subToken] of cases) {
      const sub = c.newSubscription(t.channel, subToken ? { token: subToken } : {});
      const unsubscribed = next(sub, 'unsubscribed');
      sub.subscribe();
      const ctx = await unsubscribed;
      assert.equal(ctx.code, 103, `${what}: permission denied`);
      c.removeSubscription(sub);
    }
    const sub = c.newSubscription(t.channel, { token: t.subscriptionToken });
    sub.subscribe();
    await sub.ready(5000);
    assert.equal(sub.state, 'subscribed');
    c.disconnect();
  });

  test('a channel outside the room namespace is an unknown channel (102)', async () => {
    const t = await token(srv.base, 'ns');
    const c = client(t);
    c.connect();
    await c.ready(5000);
    const sub = c.newSubscription('chat:ns', { token: signJwt({ sub: t.peerId, channel: 'chat:ns', exp: now() + 60 }, secret) });
    const unsubscribed = next(sub, 'unsubscribed');
    sub.subscribe();
    assert.equal((await unsubscribed).code, 102);
    c.disconnect();
  });

  test('publications reach every subscriber with the publisher\'s info; receivers can check info.user === from', async () => {
    const ta = await token(srv.base, 'pub', 'Ann');
    const tb = await token(srv.base, 'pub', 'Bob');
    const a = await joined(ta);
    const b = await joined(tb);
    const got = next(b.sub, 'publication');
    const offer = { type: 'offer', from: ta.peerId, to: tb.peerId, sdp: 'v=0\r\n' };
    await a.sub.publish(offer);
    const pub = await got;
    assert.deepEqual(pub.data, offer);
    assert.equal(pub.info.user, ta.peerId);
    assert.equal(pub.info.user, pub.data.from, 'the publisher is who the payload says');
    assert.deepEqual(pub.info.connInfo, { name: 'Ann' });
    a.c.disconnect();
    b.c.disconnect();
  });

  test('publishing needs a subscription (103)', async () => {
    const t = await token(srv.base, 'nosub');
    const c = client(t);
    c.connect();
    await c.ready(5000);
    await assert.rejects(c.publish(t.channel, { type: 'peer-joined', from: t.peerId }), (err: { code: number }) => err.code === 103);
    c.disconnect();
  });

  test('a spoofed from is refused with 103 and anything but a signaling message with 107', async () => {
    const ta = await token(srv.base, 'spoof', 'Ann');
    const tb = await token(srv.base, 'spoof', 'Bob');
    const a = await joined(ta);
    const refusals: Array<[unknown, number]> = [
      [{ type: 'offer', from: tb.peerId, to: ta.peerId, sdp: 'v=0' }, 103],
      [{ type: 'chat', from: ta.peerId, text: 'hi' }, 107],
      [{ type: 'peer-joined', from: ta.peerId, extra: 1 }, 107],
      [{ type: 'answer', from: ta.peerId, sdp: 'v=0' }, 107],
      ['just a string', 107],
    ];
    for (const [data, code] of refusals) {
      await assert.rejects(a.sub.publish(data), (err: { code: number; message: string }) => {
        assert.equal(err.code, code, `${JSON.stringify(data)} → ${code} (${err.message})`);
        return true;
      });
    }
    assert.equal(a.c.state, 'connected', 'refused publications do not cost the connection');
    a.c.disconnect();
  });

  test('presence and presence_stats list the subscribers', async () => {
    const ta = await token(srv.base, 'presence', 'Ann');
    const tb = await token(srv.base, 'presence', 'Bob');
    const a = await joined(ta);
    const b = await joined(tb);
    const presence = await a.sub.presence();
    const users = Object.values(presence.clients).map((c) => c.user).sort();
    assert.deepEqual(users, [ta.peerId, tb.peerId].sort());
    const names = Object.values(presence.clients).map((c) => (c.connInfo as { name: string }).name).sort();
    assert.deepEqual(names, ['Ann', 'Bob']);
    assert.deepEqual(await b.sub.presenceStats(), { numClients: 2, numUsers: 2 });
    a.c.disconnect();
    b.c.disconnect();
  });

  test('join and leave are pushed to the other subscribers', async () => {
    const ta = await token(srv.base, 'joinleave', 'Ann');
    const tb = await token(srv.base, 'joinleave', 'Bob');
    const a = await joined(ta);
    const join = next(a.sub, 'join');
    const b = await joined(tb);
    const j = await join;
    assert.equal(j.info.user, tb.peerId);
    assert.deepEqual(j.info.connInfo, { name: 'Bob' });
    assert.ok(j.info.client, 'join carries the client id');
    const leave = next(a.sub, 'leave');
    b.sub.unsubscribe();
    assert.equal((await leave).info.user, tb.peerId);
    const join2 = next(a.sub, 'join');
    b.sub.subscribe();
    await join2;
    const leave2 = next(a.sub, 'leave');
    b.c.disconnect();
    assert.equal((await leave2).info.user, tb.peerId, 'a disconnect leaves too');
    assert.deepEqual(await a.sub.presenceStats(), { numClients: 1, numUsers: 1 });
    a.c.disconnect();
  });

  test('a full room refuses the token over HTTP (409) and a late subscriber with 106', async () => {
    const tokens = [await token(srv.base, 'full'), await token(srv.base, 'full'), await token(srv.base, 'full'), await token(srv.base, 'full')];
    const peers = [];
    for (const t of tokens.slice(0, 3)) peers.push(await joined(t));
    const res = await fetch(`${srv.base}/api/rooms/full/token`, { method: 'POST', body: JSON.stringify({ name: 'late' }) });
    assert.equal(res.status, 409);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'room_full');
    // The fourth token was issued before the room filled: the subscribe itself is refused.
    const c = client(tokens[3]!);
    c.connect();
    await c.ready(5000);
    const sub = c.newSubscription(tokens[3]!.channel, { token: tokens[3]!.subscriptionToken });
    const unsubscribed = next(sub, 'unsubscribed');
    sub.subscribe();
    const ctx = await unsubscribed;
    assert.equal(ctx.code, 106);
    assert.match(ctx.reason, /room is full/);
    c.disconnect();
    for (const p of peers) p.c.disconnect();
  });

  test('raw protocol: expired subscription token is 109, refresh renews the connection, refresh for another user is 3500', async () => {
    const t = await token(srv.base, 'raw');
    const raw = await rawConnected(srv.wsUrl, t);
    raw.send(JSON.stringify({ id: 2, subscribe: { channel: t.channel, token: signJwt({ sub: t.peerId, channel: t.channel, exp: now() - 1 }, secret) } }));
    assert.equal((await raw.waitFor((m) => m.id === 2)).error.code, 109);
    raw.send(JSON.stringify({ id: 3, subscribe: { channel: t.channel, token: t.subscriptionToken } }));
    const sub = await raw.waitFor((m) => m.id === 3);
    assert.equal(sub.subscribe.expires, true, 'a subscription token with exp makes the subscription expire');
    assert.ok(sub.subscribe.ttl > 0, 'with a ttl');
    const fresh = signJwt({ sub: t.peerId, exp: now() + 3600, info: { name: 'again' } }, secret);
    raw.send(JSON.stringify({ id: 4, refresh: { token: fresh } }));
    const refreshed = await raw.waitFor((m) => m.id === 4);
    assert.equal(refreshed.refresh.expires, true);
    assert.ok(refreshed.refresh.ttl > 3000, 'ttl follows the new token');
    raw.send(JSON.stringify({ id: 5, history: { channel: t.channel } }));
    assert.equal((await raw.waitFor((m) => m.id === 5)).error.code, 108, 'no history on room channels');
    raw.send(JSON.stringify({ id: 6, refresh: { token: signJwt({ sub: 'someone-else', exp: now() + 60 }, secret) } }));
    const closed = await raw.closed;
    assert.equal(closed.code, 3500);
  });
});
