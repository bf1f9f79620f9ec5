// Glare, connection loss and departures between Node.js peers through the real signaling server.
import assert from 'node:assert/strict';
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { WebSocket } from 'ws';
import { CentrifugeSignaling } from '../src/index.ts';
import {
  NodeRTCPeerConnection, joinPeer, makePeer, releaseNodeDataChannel, shutdown, startSignaling, token, waitFor, waitForMesh, type TestPeer,
} from './helpers.ts';

after(releaseNodeDataChannel);

test('glare: both sides of every pair offer at once, and every pair still connects', async (t) => {
  const server = await startSignaling();
  const peers: TestPeer[] = [];
  try {
    // politeWaitMs 0: the polite side does not wait for the impolite side's offer, so offers cross.
    const glare = { timing: { politeWaitMs: 0 } };
    peers.push(...(await Promise.all(['a', 'b', 'c', 'd'].map((n) => joinPeer(server, 'glare', n, glare)))));
    await waitForMesh(peers);
    const collisions = peers.reduce((n, p) => n + p.manager.stats().collisions, 0);
    const recoveries = peers.reduce((n, p) => n + p.manager.stats().recoveries, 0);
    t.diagnostic(`${collisions} offer collisions settled, ${recoveries} connections recovered`);
    assert.ok(collisions > 0, 'offers collided (otherwise this test tests nothing)');
    for (const p of peers) {
      for (const q of peers) if (q !== p) assert.ok(p.manager.sendMessage(q.id, `from ${p.name}`), `${p.name} → ${q.name} sent`);
    }
    await waitFor(() => peers.every((p) => p.rec.messages.length === 3), () => 'three messages on every peer');
  } finally {
    await shutdown(peers, server);
  }
});

test('a connection closed abruptly: both sides see `failed`, recover with a new generation, and carry messages again', async () => {
  const server = await startSignaling();
  const peers: TestPeer[] = [];
  try {
    peers.push(...(await Promise.all(['a', 'b', 'c'].map((n) => joinPeer(server, 'kill', n)))));
    await waitForMesh(peers);
    const [a, b, c] = peers as [TestPeer, TestPeer, TestPeer];
    const before = a.manager.peers().find((i) => i.id === b.id)!.generation;
    a.manager.peerConnection(b.id)!.close(); // as if the connection had died under the manager

    await waitFor(() => a.rec.disconnected.length > 0 && b.rec.disconnected.length > 0, () => 'a disconnect event on a and b');
    assert.deepEqual(a.rec.disconnected[0], { peer: b.id, reason: 'failed' }, 'a sees b failed');
    assert.deepEqual(b.rec.disconnected[0], { peer: a.id, reason: 'failed' }, 'b sees a failed');
    await waitFor(() => a.rec.connected.filter((id) => id === b.id).length === 2 && b.rec.connected.filter((id) => id === a.id).length === 2,
      () => 'a and b connected again');
    await waitForMesh(peers);
    const after = a.manager.peers().find((i) => i.id === b.id)!;
    assert.ok(after.generation > before, `a new connection replaced the dead one (generation ${before} → ${after.generation})`);
    assert.equal(c.rec.disconnected.length, 0, 'c saw nothing');
    assert.ok(a.manager.stats().recoveries >= 1, 'a counts the recovery');
    assert.ok(a.manager.sendRaftMessage(b.id, { after: 'recovery' }), 'a → b sent');
    await waitFor(() => b.rec.raft.some((r) => r.from === a.id), () => 'the raft message on b');
  } finally {
    await shutdown(peers, server);
  }
});

test('a first connection that never opens is started over after the connect timeout', async () => {
  const server = await startSignaling();
  const peers: TestPeer[] = [];
  try {
    // a's first RTCPeerConnection never applies a remote description: the attempt hangs, as a broken first
    // connection of a fresh node-datachannel process sometimes does.
    let created = 0;
    class FirstHangs extends NodeRTCPeerConnection {
      constructor(configuration: RTCConfiguration) {
        super(configuration);
        if (created++ === 0) this.setRemoteDescription = () => new Promise<void>(() => {});
      }
    }
    peers.push(await joinPeer(server, 'timeout', 'a', { RTCPeerConnection: FirstHangs }), await joinPeer(server, 'timeout', 'b'));
    await waitForMesh(peers);
    const [a, b] = peers as [TestPeer, TestPeer];
    assert.ok(created >= 2, `a needed a second connection (${created} created)`);
    assert.ok(a.manager.peers()[0]!.generation >= 1, 'a is past generation 0');
    assert.equal(b.manager.peers()[0]!.generation, a.manager.peers()[0]!.generation, 'both sides agree on the generation');
    assert.deepEqual([a.rec.connected, b.rec.connected], [[b.id], [a.id]], 'each side announced the other once');
  } finally {
    await shutdown(peers, server);
  }
});

test('disconnect() and removePeer(): the other side sees `left` and forgets the peer', async () => {
  const server = await startSignaling();
  const peers: TestPeer[] = [];
  try {
    peers.push(...(await Promise.all(['a', 'b', 'c'].map((n) => joinPeer(server, 'bye', n)))));
    await waitForMesh(peers);
    const [a, b, c] = peers as [TestPeer, TestPeer, TestPeer];
    c.manager.disconnect();
    await waitFor(() => a.rec.disconnected.length === 1 && b.rec.disconnected.length === 1, () => 'the departure on a and b');
    for (const p of [a, b]) {
      assert.deepEqual(p.rec.disconnected, [{ peer: c.id, reason: 'left' }], `${p.name} sees c left`);
      assert.equal(p.manager.peerState(c.id), null, `${p.name} no longer links c`);
    }
    assert.deepEqual(c.rec.disconnected.map((d) => d.reason), ['closed', 'closed'], 'c itself reports its links closed');
    assert.ok(a.manager.sendMessage(b.id, 'still here'), 'a and b stay connected');
    await waitFor(() => b.rec.messages.length === 1, () => 'the message on b');
    a.manager.removePeer(b.id);
    await waitFor(() => b.rec.disconnected.length === 2, () => 'the removal on b');
    assert.deepEqual(a.rec.disconnected.at(-1), { peer: b.id, reason: 'closed' }, 'a closed its link to b');
    assert.deepEqual(b.rec.disconnected.at(-1), { peer: a.id, reason: 'left' }, 'b sees a leave');
  } finally {
    await shutdown(peers, server);
  }
});

test('a crashed peer (connections and signaling gone, no goodbye): `failed`, then `left` on presence leave', async () => {
  const server = await startSignaling();
  const peers: TestPeer[] = [];
  try {
    peers.push(...(await Promise.all(['a', 'b'].map((n) => joinPeer(server, 'crash', n)))));
    // c joins with a signaling object the test holds, so it can cut c's signaling like a crash would.
    const t = await token(server, 'crash', 'c');
    const c = makePeer(t.peerId, 'c');
    const signaling = new CentrifugeSignaling({
      url: t.url, channel: t.channel, localId: t.peerId, token: t.token, subscriptionToken: t.subscriptionToken,
      WebSocket, logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    await c.manager.connect(signaling);
    peers.push(c);
    await waitForMesh(peers);
    const [a, b] = peers as [TestPeer, TestPeer];

    signaling.close();
    for (const p of [a, b]) c.manager.peerConnection(p.id)!.close();
    await waitFor(() => [a, b].every((p) => p.rec.disconnected.some((d) => d.reason === 'left')), () => `left on a and b (${JSON.stringify([a.rec.disconnected, b.rec.disconnected])})`);
    for (const p of [a, b]) {
      const reasons = p.rec.disconnected.filter((d) => d.peer === c.id).map((d) => d.reason);
      assert.equal(reasons.at(-1), 'left', `${p.name}'s last word on c is left (${reasons.join(', ')})`);
      assert.equal(p.manager.peerState(c.id), null, `${p.name} no longer links c`);
    }
    assert.equal(a.manager.peerState(b.id), 'connected', 'a and b are unaffected');
  } finally {
    await shutdown(peers, server);
  }
});

/** A TCP relay in front of the server whose connections the test can cut, and which can refuse for a while. */
async function relay(target: number): Promise<{ port: number; cut(): Promise<void>; resume(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const make = () => createNetServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => { sockets.delete(s); client.destroy(); upstream.destroy(); });
    }
    client.pipe(upstream).pipe(client);
  });
  let server = make();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const stop = () => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  });
  return {
    port,
    cut: stop,
    resume: async () => {
      server = make();
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    },
    close: stop,
  };
}

test('signaling reconnect: presence resync drops a peer that crashed meanwhile and connects one that joined meanwhile', async () => {
  const server = await startSignaling();
  const peers: TestPeer[] = [];
  const proxy = await relay(Number(new URL(server.url).port));
  try {
    // a reaches signaling through the relay; everyone else directly.
    const ta = await token(server, 'resync', 'a');
    const a = makePeer(ta.peerId, 'a');
    await a.manager.connectToCentrifugo(ta.url.replace(/:\d+\//, `:${proxy.port}/`), 'resync', { token: ta.token, subscriptionToken: ta.subscriptionToken });
    peers.push(a, await joinPeer(server, 'resync', 'b'));
    const tc = await token(server, 'resync', 'c');
    const c = makePeer(tc.peerId, 'c');
    const cSignaling = new CentrifugeSignaling({
      url: tc.url, channel: tc.channel, localId: tc.peerId, token: tc.token, subscriptionToken: tc.subscriptionToken,
      WebSocket, logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    await c.manager.connect(cSignaling);
    peers.push(c);
    await waitForMesh(peers);
    const b = peers[1]!;

    await proxy.cut(); // a loses signaling (its WebRTC connections stay up)
    await waitFor(() => a.manager.stats().signaling === 'disconnected', () => 'a to notice');
    cSignaling.close(); // c crashes: a cannot hear its presence leave
    for (const p of [a, b]) c.manager.peerConnection(p.id)!.close();
    const d = await joinPeer(server, 'resync', 'd'); // and d joins: a cannot hear its join
    peers.push(d);
    await waitForMesh([b, d]);
    await proxy.resume();

    await waitFor(() => a.manager.stats().signaling === 'connected', () => 'a to resubscribe');
    await waitFor(() => a.rec.disconnected.some((x) => x.peer === c.id && x.reason === 'left'), () => `a to drop c (${JSON.stringify(a.rec.disconnected)})`);
    await waitForMesh([a, b, d]);
    assert.equal(a.manager.peerState(c.id), null, 'a no longer links c');
    assert.ok(!a.rec.disconnected.some((x) => x.peer === b.id), 'the a–b connection survived the signaling outage');
  } finally {
    await shutdown(peers, server);
    await proxy.close();
  }
});
