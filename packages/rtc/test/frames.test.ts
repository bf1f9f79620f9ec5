// Frame encoding and validation: valid frames round-trip; randomized garbage is refused with a reason, never thrown.
import { Rng } from '@raftrtc/raft/testing';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CHUNK_HEADER_BYTES, decodeChunk, decodeControlFrame, encodeChunk, encodeControlFrame, exceedsUtf8Bytes, type ControlFrame,
} from '../src/frames.ts';
import { FrameEncodeError, FrameTooLargeError } from '../src/errors.ts';
import { IncomingFiles, type ReceivedFile } from '../src/file-transfer.ts';
import { validateSignalingMessage } from '../src/signaling.ts';
import { withoutCandidates } from '../src/peer-connection.ts';

const MAX = 256 * 1024;
const CHUNK = 64 * 1024;

test('every control frame type round-trips', () => {
  const frames: ControlFrame[] = [
    { type: 'message', content: 'héllo ✓' },
    { type: 'raft', message: { type: 'AppendEntries', term: 2, entries: [{ index: 1 }] } },
    { type: 'raft', message: '{"codec":"text"}' },
    { type: 'client-message', message: { id: 'x', text: 'hi' } },
    { type: 'file-meta', id: 7, name: 'a.bin', size: 123, mime: 'application/octet-stream', chunkSize: CHUNK },
    { type: 'file-abort', id: 7 },
    { type: 'ping', seq: 1, ts: 12.5 },
    { type: 'pong', seq: 1, ts: 12.5 },
    { type: 'bye' },
  ];
  for (const f of frames) {
    const r = decodeControlFrame(encodeControlFrame(f, MAX), MAX, CHUNK);
    assert.ok(r.ok, `${f.type} decodes`);
    assert.deepEqual(r.frame, f, `${f.type} round-trips unchanged`);
  }
});

test('encoding refuses oversized and non-JSON frames with typed errors', () => {
  assert.throws(() => encodeControlFrame({ type: 'message', content: 'x'.repeat(MAX) }, MAX), FrameTooLargeError);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => encodeControlFrame({ type: 'raft', message: cyclic }, MAX), FrameEncodeError);
  assert.throws(() => encodeControlFrame({ type: 'raft', message: { n: 1n } }, MAX), FrameEncodeError);
});

test('the UTF-8 size check is exact near the limit', () => {
  assert.equal(exceedsUtf8Bytes('é'.repeat(50), 100), false, '100 bytes fit in 100');
  assert.equal(exceedsUtf8Bytes('é'.repeat(50) + 'a', 100), true, '101 bytes do not');
  assert.equal(exceedsUtf8Bytes('😀'.repeat(25), 100), false, 'surrogate pairs are 4 bytes, not 6');
});

test('malformed control frames are refused with a reason', () => {
  const cases: [unknown, string][] = [
    [new Uint8Array([1, 2, 3]), 'wrong-kind'],
    ['x'.repeat(MAX + 1), 'oversize'],
    ['{not json', 'not-json'],
    ['null', 'malformed'],
    ['[]', 'malformed'],
    ['{"type":"unknown"}', 'malformed'],
    ['{"type":"message","content":5}', 'malformed'],
    ['{"type":"raft"}', 'malformed'],
    ['{"type":"file-meta","id":-1,"name":"a","size":1,"mime":"","chunkSize":1}', 'malformed'],
    ['{"type":"file-meta","id":1,"name":"a","size":1.5,"mime":"","chunkSize":1}', 'malformed'],
    [`{"type":"file-meta","id":1,"name":"a","size":1,"mime":"","chunkSize":${CHUNK + 1}}`, 'malformed'],
    [`{"type":"file-meta","id":1,"name":"${'n'.repeat(300)}","size":1,"mime":"","chunkSize":1}`, 'malformed'],
    ['{"type":"ping","seq":4294967296,"ts":1}', 'malformed'],
    ['{"type":"pong","seq":1,"ts":"1"}', 'malformed'],
  ];
  for (const [data, reason] of cases) {
    const r = decodeControlFrame(data, MAX, CHUNK);
    assert.ok(!r.ok, `refused: ${String(data).slice(0, 60)}`);
    assert.equal(r.reason, reason, `reason for ${String(data).slice(0, 60)}`);
  }
});

test('chunks round-trip and malformed chunks are refused', () => {
  const payload = new Uint8Array([9, 8, 7]);
  const r = decodeChunk(encodeChunk(0xfffffffe, 3, payload).buffer, CHUNK);
  assert.ok(r.ok, 'a chunk decodes');
  assert.deepEqual([r.frame.fileId, r.frame.index, [...r.frame.data]], [0xfffffffe, 3, [9, 8, 7]], 'fields survive');
  assert.deepEqual(decodeChunk('text', CHUNK), { ok: false, reason: 'wrong-kind' }, 'text on the bulk channel');
  assert.deepEqual(decodeChunk(new Uint8Array(CHUNK_HEADER_BYTES - 1), CHUNK), { ok: false, reason: 'malformed' }, 'short header');
  assert.deepEqual(decodeChunk(new Uint8Array(CHUNK_HEADER_BYTES + CHUNK + 1), CHUNK), { ok: false, reason: 'oversize' }, 'oversized payload');
  const bad = encodeChunk(1, 0, payload);
  bad[0] = 2;
  assert.deepEqual(decodeChunk(bad, CHUNK), { ok: false, reason: 'malformed' }, 'unknown chunk kind');
});

/** A random JSON-ish value, biased toward shapes that look like frames. */
function garbage(rand: () => number, depth = 0): unknown {
  const pick = Math.floor(rand() * 10);
  const keys = ['type', 'content', 'message', 'id', 'name', 'size', 'mime', 'chunkSize', 'seq', 'ts', 'x'];
  const types = ['message', 'raft', 'client-message', 'file-meta', 'file-abort', 'ping', 'pong', 'bye', 'other'];
  switch (pick) {
    case 0: return null;
    case 1: return rand() < 0.5;
    case 2: return [-1, 0, 1, 2 ** 32, 1.5, NaN, 1e300][Math.floor(rand() * 7)];
    case 3: return 'x'.repeat(Math.floor(rand() * 20));
    case 4: return depth > 2 ? 1 : Array.from({ length: Math.floor(rand() * 4) }, () => garbage(rand, depth + 1));
    default: {
      if (depth > 2) return {};
      const o: Record<string, unknown> = { type: types[Math.floor(rand() * types.length)] };
      for (const k of keys) if (rand() < 0.5) o[k] = garbage(rand, depth + 1);
      return o;
    }
  }
}

test('randomized garbage never throws: every input decodes or is refused with a reason', () => {
  const seed = Number(process.env.FRAMES_SEED ?? Date.now() % 1e9);
  const r = new Rng(seed);
  const rand = (): number => r.next();
  const counts: Record<string, number> = {};
  for (let i = 0; i < 20_000; i++) {
    let input: unknown;
    const kind = rand();
    if (kind < 0.6) input = JSON.stringify(garbage(rand));
    else if (kind < 0.75) input = JSON.stringify(garbage(rand)).slice(0, Math.floor(rand() * 30)); // truncated JSON
    else if (kind < 0.9) input = new Uint8Array(Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)));
    else input = garbage(rand); // not even a string
    let control, chunk;
    try {
      control = decodeControlFrame(input, 512, CHUNK);
      chunk = decodeChunk(input, 16);
    } catch (e) {
      assert.fail(`seed ${seed}, input ${i} threw: ${String(e)}`);
    }
    const key = control.ok ? `ok:${control.frame.type}` : control.reason;
    counts[key] = (counts[key] ?? 0) + 1;
    if (control.ok) assert.ok(typeof control.frame.type === 'string', `seed ${seed}: a decoded frame has a type`);
    assert.ok(chunk.ok || ['wrong-kind', 'oversize', 'malformed'].includes(chunk.reason), `seed ${seed}: chunk result has a known reason`);
    assert.ok(validateSignalingMessage(typeof input === 'string' ? safeParse(input) : input) !== undefined, `seed ${seed}: signaling validation answers`);
  }
  for (const reason of ['not-json', 'malformed', 'wrong-kind']) assert.ok((counts[reason] ?? 0) > 0, `seed ${seed}: garbage produced some ${reason} (${JSON.stringify(counts)})`);
});

function safeParse(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

test('signaling payloads: the server\'s shapes pass, anything else is refused', () => {
  const ok = [
    { type: 'offer', from: 'a', to: 'b', generation: 2, sdp: 'v=0' },
    { type: 'answer', from: 'a', to: 'b', sdp: 'v=0' },
    { type: 'ice-candidate', from: 'a', to: 'b', generation: 0, candidate: { candidate: 'candidate:1', sdpMid: '0', sdpMLineIndex: 0 } },
    { type: 'ice-candidate', from: 'a', to: 'b', candidate: null },
    { type: 'peer-joined', from: 'a', name: 'Ann' },
    { type: 'peer-list', from: 'a', to: 'b', peers: ['c', 'd'] },
  ];
  for (const m of ok) assert.deepEqual(validateSignalingMessage(m), m, `${m.type} passes unchanged`);
  const bad = [
    { type: 'chat', from: 'a' },
    { type: 'offer', from: 'a', to: 'b' },
    { type: 'offer', from: 'a b', to: 'b', sdp: 'v=0' },
    { type: 'offer', from: 'a', to: 'b', sdp: 'v=0', generation: -1 },
    { type: 'ice-candidate', from: 'a', to: 'b', candidate: { candidate: 5 } },
    { type: 'peer-list', from: 'a', to: 'b', peers: ['ok', ''] },
  ];
  for (const m of bad) assert.equal(validateSignalingMessage(m), null, `refused: ${JSON.stringify(m)}`);
});

test('offers travel without candidate lines', () => {
  const sdp = ['v=0', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'a=candidate:1 1 UDP 1 127.0.0.1 5000 typ host', 'a=end-of-candidates', 'a=mid:0', ''].join('\r\n');
  assert.equal(withoutCandidates(sdp), ['v=0', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'a=mid:0', ''].join('\r\n'));
});

test('incoming files: chunks before their meta are held, malformed transfers and oversize files are dropped', () => {
  const files: ReceivedFile[] = [];
  const dropped: string[] = [];
  const incoming = new IncomingFiles({ maxFileBytes: 100, maxConcurrentFiles: 2, maxEarlyBytes: 8 }, {
    file: (f) => files.push(f), progress: () => {}, dropped: (r) => dropped.push(r),
  });
  const meta = (id: number, size: number) => ({ type: 'file-meta' as const, id, name: `f${id}`, size, mime: 'x/y', chunkSize: 4 });
  incoming.onChunk({ fileId: 1, index: 0, data: new Uint8Array([1, 2, 3, 4]) }); // early
  incoming.onMeta(meta(1, 6));
  incoming.onChunk({ fileId: 1, index: 1, data: new Uint8Array([5, 6]) });
  assert.deepEqual(files.map((f) => [...f.data]), [[1, 2, 3, 4, 5, 6]], 'early chunk and tail assemble the file');
  incoming.onMeta(meta(2, 0));
  assert.equal(files[1]?.size, 0, 'an empty file completes on its meta');
  incoming.onMeta(meta(3, 8));
  incoming.onChunk({ fileId: 3, index: 1, data: new Uint8Array(4) });
  assert.deepEqual(dropped, ['file-malformed'], 'an out-of-order chunk drops the transfer');
  incoming.onChunk({ fileId: 3, index: 0, data: new Uint8Array(4) });
  assert.equal(files.length, 2, 'chunks of a dropped transfer are ignored');
  incoming.onMeta(meta(4, 101));
  assert.deepEqual(dropped, ['file-malformed', 'file-refused'], 'a file over the size limit is refused');
  incoming.onChunk({ fileId: 9, index: 0, data: new Uint8Array(4) });
  incoming.onChunk({ fileId: 9, index: 1, data: new Uint8Array(4) });
  incoming.onChunk({ fileId: 9, index: 2, data: new Uint8Array(4) });
  assert.deepEqual(dropped.at(-1), 'file-overflow', 'early bytes beyond the limit are dropped');
});
