// CentrifugeSignaling against the real server: presence per peer, join/leave, and publish pacing under the
// server's rate limit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { CentrifugeSignaling, type SignalingHandlers, type SignalingMessage } from '../src/index.ts';
import { startSignaling, token, waitFor } from './helpers.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

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
