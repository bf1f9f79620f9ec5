// A hostile peer: a raw node-datachannel connection that speaks our negotiation but sends garbage on the
// manager's channels. Everything malformed must be dropped and counted, and the link must keep working.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { IceCandidateInit, Signaling, SignalingHandlers, SignalingMessage } from '../src/index.ts';
import { encodeChunk } from '../src/frames.ts';
import { NodeRTCPeerConnection, makePeer, releaseNodeDataChannel, waitFor } from './helpers.ts';

after(releaseNodeDataChannel);

/** In-memory signaling between the manager under test ("a") and the raw peer ("z"). */
class PairSignaling implements Signaling {
  readonly localId = 'a';
  handlers: SignalingHandlers | null = null;
  toRaw: (m: SignalingMessage) => void = () => {};
  async start(handlers: SignalingHandlers): Promise<void> {
    this.handlers = handlers;
    handlers.onStateChange('connected');
    handlers.onPresence(['z']);
  }
  async send(m: SignalingMessage): Promise<void> {
    queueMicrotask(() => this.toRaw(m));
  }
  close(): void {}
}

test('garbage on both channels is dropped and counted; the link keeps working', async () => {
  const signaling = new PairSignaling();
  const a = makePeer('a', 'a', { limits: { maxControlFrameBytes: 1024, maxEarlyBytes: 16 } });
  const raw = new NodeRTCPeerConnection({ iceServers: [], bindAddress: '127.0.0.1' } as RTCConfiguration);
  try {
    const toManager = (m: SignalingMessage) => signaling.handlers!.onMessage(m);
    raw.onicecandidate = (e) => {
      if (e.candidate) toManager({ type: 'ice-candidate', from: 'z', to: 'a', generation: 0, candidate: { candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid } });
    };
    let control: RTCDataChannel | null = null;
    let bulk: RTCDataChannel | null = null;
    signaling.toRaw = (m) => {
      if (m.type === 'offer') {
        void (async () => {
          await raw.setRemoteDescription({ type: 'offer', sdp: m.sdp });
          control = raw.createDataChannel('control', { negotiated: true, id: 0 });
          bulk = raw.createDataChannel('bulk', { negotiated: true, id: 1 });
          await raw.setLocalDescription();
          toManager({ type: 'answer', from: 'z', to: 'a', generation: 0, sdp: raw.localDescription!.sdp });
        })();
      } else if (m.type === 'ice-candidate' && m.candidate) {
        void raw.addIceCandidate(m.candidate as IceCandidateInit);
      }
    };
    await a.manager.connect(signaling);
    await waitFor(() => a.manager.peerState('z') === 'connected' && control?.readyState === 'open' && bulk?.readyState === 'open', () => 'the raw peer connected');

    const c = control!;
    const k = bulk!;
    c.send('{not json');
    c.send(new Uint8Array([1, 2, 3]));
    c.send('{"type":"raft"}');
    c.send('{"type":"nope","content":"x"}');
    c.send(JSON.stringify({ type: 'message', content: 'x'.repeat(2000) }));
    c.send('{"type":"pong","seq":1,"ts":-5}');
    k.send('text on bulk');
    k.send(new Uint8Array([1, 2]));
    k.send(encodeChunk(99, 0, new Uint8Array(64))); // an unknown file's chunk beyond the early-bytes limit
    c.send(JSON.stringify({ type: 'file-meta', id: 5, name: 'f', size: 10, mime: '', chunkSize: 4 }));
    k.send(encodeChunk(5, 1, new Uint8Array(4))); // out of order: the transfer is dropped
    c.send(JSON.stringify({ type: 'message', content: 'still fine' }));

    await waitFor(() => a.rec.messages.length === 1, () => 'the valid message after the garbage');
    assert.deepEqual(a.rec.messages, [{ from: 'z', content: 'still fine' }], 'only the valid message got through');
    assert.deepEqual(a.manager.stats().dropped, {
      'not-json': 1, 'wrong-kind': 2, malformed: 4, oversize: 1, 'file-overflow': 1, 'file-malformed': 1,
    }, 'every piece of garbage is counted under its reason');
    assert.equal(a.manager.stats().droppedTotal, 10, 'ten drops in all');
    assert.equal(a.manager.peerState('z'), 'connected', 'the link is still up');
    assert.equal(a.rec.files.length, 0, 'no broken file was delivered');
  } finally {
    a.manager.disconnect();
    raw.close();
    await new Promise((r) => setTimeout(r, 200));
  }
});
