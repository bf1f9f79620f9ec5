// Local media bookkeeping of WebRTCManager with a fake getUserMedia (Node.js has no media; sending tracks to
// peers needs a browser).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MediaUnavailableError, WebRTCManager } from '../src/index.ts';
import { NodeRTCPeerConnection } from './helpers.ts';

/** Just enough of MediaStream / MediaStreamTrack for the manager. */
function fakeDevices() {
  const stopped: string[] = [];
  const calls: MediaStreamConstraints[] = [];
  const stream = (kind: 'audio' | 'video') => {
    const tracks: MediaStreamTrack[] = [{ kind, stop: () => stopped.push(kind) } as unknown as MediaStreamTrack];
    return {
      getTracks: () => [...tracks],
      addTrack: (t: MediaStreamTrack) => tracks.push(t),
      removeTrack: (t: MediaStreamTrack) => tracks.splice(tracks.indexOf(t), 1),
    } as unknown as MediaStream;
  };
  return {
    stopped, calls,
    mediaDevices: {
      getUserMedia: async (c?: MediaStreamConstraints) => {
        calls.push(c ?? {});
        return stream(c?.video ? 'video' : 'audio');
      },
    },
  };
}

test('enableVideo/enableAudio share one local stream; disabling stops the track; no devices is a typed error', async () => {
  const d = fakeDevices();
  const m = new WebRTCManager('a', { RTCPeerConnection: NodeRTCPeerConnection, mediaDevices: d.mediaDevices });
  assert.equal(m.getLocalStream(), null, 'no local stream before enabling');
  await m.enableVideo(true);
  await m.enableVideo(true);
  assert.deepEqual(d.calls, [{ video: true }], 'enabling twice asks for the camera once');
  const stream = m.getLocalStream();
  assert.ok(stream, 'a local stream once video is on');
  await m.enableAudio(true);
  assert.equal(m.getLocalStream(), stream, 'audio joins the same stream');
  assert.deepEqual(stream.getTracks().map((t) => t.kind), ['video', 'audio'], 'both tracks in it');
  await m.enableVideo(false);
  assert.deepEqual(d.stopped, ['video'], 'the camera track is stopped');
  assert.deepEqual(stream.getTracks().map((t) => t.kind), ['audio'], 'and removed from the stream');
  m.disconnect();
  assert.deepEqual(d.stopped, ['video', 'audio'], 'disconnect stops the rest');

  const bare = new WebRTCManager('b', { RTCPeerConnection: NodeRTCPeerConnection });
  await assert.rejects(bare.enableAudio(true), MediaUnavailableError);
  const denied = new WebRTCManager('c', { RTCPeerConnection: NodeRTCPeerConnection, mediaDevices: { getUserMedia: () => Promise.reject(new Error('NotAllowedError')) } });
  await assert.rejects(denied.enableVideo(true), (e: unknown) => e instanceof MediaUnavailableError && /NotAllowedError/.test(e.message));
});
