// File transfer over the bulk channel between Node.js peers, with Raft traffic on the control channel meanwhile.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { PeerNotConnectedError } from '../src/index.ts';
import type { FileProgress } from '../src/index.ts';
import { joinPeer, releaseNodeDataChannel, sha256, shutdown, startSignaling, waitFor, waitForMesh, type TestPeer } from './helpers.ts';

after(releaseNodeDataChannel);

test('a file arrives intact while raft messages keep flowing on the control channel', async (t) => {
  const server = await startSignaling();
  const peers: TestPeer[] = [];
  try {
    peers.push(await joinPeer(server, 'files', 'a'), await joinPeer(server, 'files', 'b'));
    const [a, b] = peers as [TestPeer, TestPeer];
    await waitForMesh(peers);

    const bytes = new Uint8Array(randomBytes(16 * 1024 * 1024));
    const received: FileProgress[] = [];
    b.manager.setOnFileProgress((_from, p) => received.push(p));
    const sent: FileProgress[] = [];
    // Heartbeat-like Raft traffic for the whole transfer, on the sender's own timer: the transfer must neither
    // starve that timer nor lose or reorder what it sends.
    let beat = 0;
    const beats: number[] = [];
    let beforeFile = 0;
    b.manager.setOnRaftMessage((_from, m) => {
      beats.push((m as { beat: number }).beat);
      if (b.rec.files.length === 0) beforeFile++;
    });
    const heartbeat = setInterval(() => a.manager.sendRaftMessage(b.id, { type: 'heartbeat', beat: beat++ }), 5);
    const started = performance.now();
    let result;
    let beatsWhileSending = 0;
    const rtts: number[] = [];
    const rttProbe = setInterval(() => rtts.push(a.manager.peers()[0]?.rttMs ?? NaN), 50);
    try {
      const firstBeat = beat;
      result = await a.manager.sendFile(b.id, new Blob([bytes], { type: 'application/x-test' }), 'big.bin', { onProgress: (p) => sent.push(p) });
      beatsWhileSending = beat - firstBeat;
      await waitFor(() => b.rec.files.length === 1, () => 'the file on b');
    } finally {
      clearInterval(heartbeat);
      clearInterval(rttProbe);
    }
    const seconds = (performance.now() - started) / 1000;
    const sentBeats = beat;
    await waitFor(() => beats.length === sentBeats, () => `all ${sentBeats} heartbeats on b (got ${beats.length})`);
    t.diagnostic(`16 MiB in ${seconds.toFixed(2)} s (${(16 / seconds).toFixed(0)} MiB/s); ${beatsWhileSending} heartbeats sent while sending, ` +
      `${beforeFile} delivered before the file completed; control RTT samples during the transfer (ms): ${rtts.map((r) => r.toFixed(1)).join(' ')}`);

    const got = b.rec.files[0]!;
    assert.equal(got.from, a.id, 'the file is from a');
    assert.deepEqual({ id: got.file.id, name: got.file.name, mime: got.file.mime, size: got.file.size },
      { id: result.id, name: 'big.bin', mime: 'application/x-test', size: bytes.byteLength }, 'metadata as sent');
    assert.equal(sha256(got.file.data), sha256(bytes), 'the bytes are intact');
    assert.equal(sent.at(-1)?.bytes, bytes.byteLength, 'sender progress reaches the full size');
    assert.ok(sent.every((p, i) => i === 0 || p.bytes > sent[i - 1]!.bytes), 'sender progress only grows');
    assert.equal(received.at(-1)?.bytes, bytes.byteLength, 'receiver progress reaches the full size');
    assert.ok(beatsWhileSending > 0, 'the sender\'s heartbeat timer kept running during the transfer');
    assert.deepEqual(beats, beats.map((_, i) => i), 'every heartbeat arrived, in order');
    assert.equal(b.manager.stats().droppedTotal, 0, `b dropped nothing: ${JSON.stringify(b.manager.stats().dropped)}`);
  } finally {
    await shutdown(peers, server);
  }
});

test('bytes sources (ArrayBuffer, Uint8Array view, empty) and a peer that is not connected', async () => {
  const server = await startSignaling();
  const peers: TestPeer[] = [];
  try {
    peers.push(await joinPeer(server, 'sources', 'a'), await joinPeer(server, 'sources', 'b'));
    const [a, b] = peers as [TestPeer, TestPeer];
    await waitForMesh(peers);
    const backing = new Uint8Array(randomBytes(300_000));
    const view = backing.subarray(1000, 250_000);
    await a.manager.sendFile(b.id, backing.buffer.slice(0), 'buffer.bin');
    await a.manager.sendFile(b.id, view, 'view.bin');
    await a.manager.sendFile(b.id, new Uint8Array(0), 'empty.txt');
    await waitFor(() => b.rec.files.length === 3, () => `three files on b (got ${b.rec.files.length})`);
    const byName = new Map(b.rec.files.map((f) => [f.file.name, f.file]));
    assert.equal(sha256(byName.get('buffer.bin')!.data), sha256(backing), 'ArrayBuffer source intact');
    assert.equal(sha256(byName.get('view.bin')!.data), sha256(view), 'only the viewed bytes of a Uint8Array are sent');
    assert.equal(byName.get('empty.txt')!.size, 0, 'an empty file arrives');
    await assert.rejects(a.manager.sendFile('nobody', new Uint8Array(1)), PeerNotConnectedError);
  } finally {
    await shutdown(peers, server);
  }
});
