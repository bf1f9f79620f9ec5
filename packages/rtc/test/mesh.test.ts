// Node.js peers (node-datachannel) forming full meshes through the real signaling server.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { joinPeer, meshReport, releaseNodeDataChannel, shutdown, startSignaling, waitFor, waitForMesh, type TestPeer } from './helpers.ts';

after(releaseNodeDataChannel);

async function mesh(n: number, room: string, t: { diagnostic(msg: string): void }): Promise<{ peers: TestPeer[]; close(): Promise<void> }> {
  const server = await startSignaling();
  const started = performance.now();
  const peers: TestPeer[] = [];
  // Joining concurrently makes both sides of most pairs offer at once: perfect negotiation must settle each.
  peers.push(...(await Promise.all(Array.from({ length: n }, (_, i) => joinPeer(server, room, `p${i}`)))));
  await waitForMesh(peers);
  t.diagnostic(`${n}-peer mesh: join to every control channel open in ${(performance.now() - started).toFixed(0)} ms`);
  return { peers, close: () => shutdown(peers, server) };
}

test('3 peers form a full mesh and exchange chat, raft and client messages', async (t) => {
  const { peers, close } = await mesh(3, 'three', t);
  try {
    for (const p of peers) {
      assert.equal(p.manager.stats().peersConnected, 2, `${p.name} counts two connected peers`);
      for (const q of peers) if (q !== p) assert.ok(p.rec.connected.includes(q.id), `${p.name} announced ${q.name} as connected`);
    }
    const [a, b, c] = peers as [TestPeer, TestPeer, TestPeer];
    assert.equal(a.manager.broadcastMessage('hello'), 2, 'broadcast reaches both other peers');
    assert.ok(b.manager.sendRaftMessage(c.id, { type: 'AppendEntries', term: 3, entries: [] }), 'raft object sent');
    assert.ok(b.manager.sendRaftMessage(c.id, '{"codec":"text"}'), 'raft codec text sent');
    assert.ok(c.manager.sendClientMessage(a.id, { text: 'for the leader' }), 'client-message sent');
    await waitFor(() => b.rec.messages.length === 1 && c.rec.messages.length === 1 && c.rec.raft.length === 2 && a.rec.client.length === 1,
      () => 'every frame to arrive');
    assert.deepEqual(b.rec.messages[0], { from: a.id, content: 'hello' }, 'b got the chat text from a');
    assert.deepEqual(c.rec.raft, [
      { from: b.id, message: { type: 'AppendEntries', term: 3, entries: [] } },
      { from: b.id, message: '{"codec":"text"}' },
    ], 'c got both raft messages in order, as sent');
    assert.deepEqual(a.rec.client[0], { from: c.id, message: { text: 'for the leader' } }, 'a got the client-message');
    await waitFor(() => peers.every((p) => p.manager.peers().every((i) => i.rttMs !== null)), () => 'an RTT for every pair');
    for (const p of peers) {
      for (const info of p.manager.peers()) assert.ok(info.rttMs !== null && info.rttMs >= 0, `${p.name} measured an RTT to ${info.id}`);
      assert.equal(p.manager.stats().droppedTotal, 0, `${p.name} dropped nothing: ${JSON.stringify(p.manager.stats().dropped)}`);
    }
    const polite = peers.map((p) => p.manager.peers().map((i) => i.polite));
    assert.ok(polite.flat().includes(true) && polite.flat().includes(false), 'both roles of perfect negotiation are in use');
  } finally {
    await close();
  }
});

test('5 peers form a full mesh; raft messages reach every pair', async (t) => {
  const { peers, close } = await mesh(5, 'five', t);
  try {
    for (const p of peers) for (const q of peers) if (p !== q) assert.ok(p.manager.sendRaftMessage(q.id, { from: p.id, to: q.id }), `${p.name} → ${q.name} sent`);
    await waitFor(() => peers.every((p) => p.rec.raft.length === 4), () => `20 raft messages (${meshReport(peers)})`);
    for (const p of peers) {
      const senders = p.rec.raft.map((r) => r.from).sort();
      assert.deepEqual(senders, peers.filter((q) => q !== p).map((q) => q.id).sort(), `${p.name} heard from every other peer once`);
      for (const r of p.rec.raft) assert.deepEqual(r.message, { from: r.from, to: p.id }, `${p.name}: the message is the one ${r.from} sent`);
    }
  } finally {
    await close();
  }
});
