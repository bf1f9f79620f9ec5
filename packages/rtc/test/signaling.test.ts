// CentrifugeSignaling against the real server: presence per peer, join/leave, and publish pacing under the
// server's rate limit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { CentrifugeSignaling, type SignalingHandlers, type SignalingMessage } from '../src/index.ts';
import { startSignaling, token, waitFor } from './helpers.ts';

const quiet = process.env.RTC_DEBUG ? { debug() {}, info() {}, warn: (m: string, f?: unknown) => console.error('WARN', m, JSON.stringify(f)), error: (m: string, f?: unknown) => console.error('ERROR', m, JSON.stringify(f)) } : { debug() {}, info() {}, warn() {}, error() {} };

function recorder() {
  const r = { presence: [] as string[][], joins: [] as string[], leaves: [] as string[], messages: [] as SignalingMessage[], states: [] as string[], dropped: 0 };
  const handlers: SignalingHandlers = {
    onMessage: (m) => r.messages.push(m),
    onPresence: (p) => r.presence.push([...p].sort()),
    onJoin: (id) => r.joins.push(id),
    onLeave: (id) => r.leaves.push(id),
    onDropped: () => r.dropped++,
    onStateChange: (s) => r.states.push(s),
  };
  return { r, handlers };
}

test('presence, join/leave and addressed payloads between two signaling clients; publishing is paced under the server limit', async () => {
  const server = await startSignaling();
  const opened: CentrifugeSignaling[] = [];
  try {
    const join = async (name: string) => {
      const t = await token(server, 'sig', name);
      const s = new CentrifugeSignaling({ url: t.url, channel: t.channel, localId: t.peerId, token: t.token, subscriptionToken: t.subscriptionToken, WebSocket, logger: quiet });
      opened.push(s);
      const rec = recorder();
      await s.start(rec.handlers);
      return { s, ...rec };
    };
    const a = await join('a');
    assert.deepEqual(a.r.presence, [[]], 'a alone: empty presence');
    const b = await join('b');
    assert.deepEqual(b.r.presence, [[a.s.localId]], 'b sees a in presence');
    await waitFor(() => a.r.joins.includes(b.s.localId), () => 'the join push on a');
    await waitFor(() => a.r.messages.some((m) => m.type === 'peer-joined' && m.from === b.s.localId), () => 'b\'s announcement on a');

    // More publications at once than the server's burst (40): paced, none refused, b stays connected.
    const sends = Array.from({ length: 60 }, (_, i) => b.s.send({ type: 'offer', from: b.s.localId, to: a.s.localId, generation: i, sdp: 'v=0' }));
    await Promise.all(sends);
    await waitFor(() => a.r.messages.filter((m) => m.type === 'offer').length === 60, () => 'all 60 offers on a');
    assert.deepEqual(a.r.messages.filter((m) => m.type === 'offer').map((m) => m.generation), Array.from({ length: 60 }, (_, i) => i), 'in order');
    await b.s.send({ type: 'offer', from: b.s.localId, to: 'someone-else', sdp: 'v=0' });
    await b.s.send({ type: 'peer-joined', from: b.s.localId });
    await waitFor(() => a.r.messages.filter((m) => m.type === 'peer-joined').length === 2, () => 'the second announcement');
    assert.equal(a.r.messages.filter((m) => m.type === 'offer').length, 60, 'an offer for someone else is not delivered');
    assert.equal(a.r.dropped, 0, 'nothing malformed or forged');

    b.s.close();
    await waitFor(() => a.r.leaves.includes(b.s.localId), () => 'the leave push on a');
  } finally {
    for (const s of opened) s.close();
    await server.close();
  }
});

test('expiring tokens are renewed through getToken / getSubscriptionToken, keeping the peer id, and signaling goes on', async () => {
  // Tokens live 4 s (shorter ones can expire in transit: `exp` is whole seconds); the server closes an
  // expired connection 0.5 s after expiry unless it refreshed.
  const server = await startSignaling({ timing: { tokenTtlSeconds: 4, expiredCloseDelayMs: 500 } });
  const opened: CentrifugeSignaling[] = [];
  let refreshes = 0;
  const join = async (name: string) => {
    let current = await token(server, 'refresh', name);
    const refresh = async () => {
      const res = await fetch(`${server.url}/api/rooms/refresh/refresh`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: current.token, subscriptionToken: current.subscriptionToken }),
      });
      assert.equal(res.status, 200, `refresh answered ${res.status}`);
      const next = (await res.json()) as typeof current;
      assert.equal(next.peerId, current.peerId, `${name} renewed as the same peer`);
      current = next;
      refreshes++;
      return current;
    };
    const s = new CentrifugeSignaling({
      url: current.url, channel: current.channel, localId: current.peerId, token: current.token, subscriptionToken: current.subscriptionToken,
      getToken: async () => (await refresh()).token, getSubscriptionToken: async () => (await refresh()).subscriptionToken,
      WebSocket, logger: quiet,
    });
    opened.push(s);
    const rec = recorder();
    await s.start(rec.handlers);
    return { s, ...rec };
  };
  try {
    const a = await join('a');
    const b = await join('b');
    await waitFor(() => refreshes >= 4, () => `four renewals (${refreshes})`);
    await new Promise((r) => setTimeout(r, 1500)); // past the first tokens' expiry plus the server's grace
    await b.s.send({ type: 'offer', from: b.s.localId, to: a.s.localId, sdp: 'v=0' });
    await waitFor(() => a.r.messages.some((m) => m.type === 'offer'), () => 'the offer on a after the renewals');
    // Only renewed tokens can still be in use here: the first ones expired (and the server cuts expired connections).
    for (const p of [a, b]) assert.equal(p.r.states.at(-1), 'connected', `subscribed at the end (${p.r.states.join(', ')})`);
  } finally {
    for (const s of opened) s.close();
    await server.close();
  }
});
