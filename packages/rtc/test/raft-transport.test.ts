/**
 * WebRtcTransport over the in-memory mesh: the shared Transport conformance suite, then what only a mesh
 * transport has to refuse (spoofed senders, non-text payloads) and the counters that report it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Message, WireMessage } from '@raftrtc/raft';
import { runTransportConformance } from '../../raft/test/conformance/transport.js';
import { MemoryMesh } from '../src/raft/memory-mesh.js';
import { MeshHub, ROOM_STATE_TYPE } from '../src/raft/mesh-link.js';
import { WebRtcTransport } from '../src/raft/webrtc-transport.js';

const MAX_BYTES = 64 * 1024;

/** Lets queued microtasks and the deliveries they start run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

const hb = (from: string, to: string, ctx: number): Message => ({ type: 'Heartbeat', from, to, term: 1, commit: 0, ctx });

/** Peers `ids` on one mesh, every pair connected, each with a started transport collecting what it receives. */
async function meshOf(ids: string[]): Promise<{ mesh: MemoryMesh; hubs: Map<string, MeshHub>; ts: Map<string, WebRtcTransport>; got: Map<string, WireMessage[]> }> {
  const mesh = new MemoryMesh();
  const hubs = new Map(ids.map((id) => [id, new MeshHub(mesh.link(id))]));
  for (const id of ids) mesh.connectAll(id);
  await settle();
  const ts = new Map<string, WebRtcTransport>();
  const got = new Map<string, WireMessage[]>();
  for (const id of ids) {
    const t = new WebRtcTransport({ id, hub: hubs.get(id)!, maxMessageBytes: MAX_BYTES });
    const box: WireMessage[] = [];
    await t.start((m) => box.push(m));
    ts.set(id, t);
    got.set(id, box);
  }
  return { mesh, hubs, ts, got };
}

runTransportConformance('WebRtcTransport over MemoryMesh', async () => {
  const mesh = new MemoryMesh();
  const hubA = new MeshHub(mesh.link('a'));
  const hubB = new MeshHub(mesh.link('b'));
  mesh.connect('a', 'b');
  await settle();
  return {
    a: new WebRtcTransport({ id: 'a', hub: hubA, maxMessageBytes: MAX_BYTES }),
    b: new WebRtcTransport({ id: 'b', hub: hubB, maxMessageBytes: MAX_BYTES }),
    sendRaw: (text: string) => mesh.inject('a', 'b', text),
    maxBytes: MAX_BYTES,
    cleanup: async () => {},
  };
});

describe('WebRtcTransport: what a mesh peer must not get through', () => {
  it('drops and counts a message whose from is not the peer it came from (spoofing)', async () => {
    const { mesh, ts, got } = await meshOf(['a', 'b', 'c']);
    // c's channel carries a message claiming to come from a.
    mesh.inject('c', 'b', JSON.stringify(hb('a', 'b', 1)));
    mesh.inject('c', 'b', JSON.stringify(hb('c', 'b', 2)));
    await settle();
    assert.deepEqual(got.get('b')!.map((m) => (m as { ctx: number }).ctx), [2], 'only the honest message arrives');
    assert.equal(ts.get('b')!.stats.misaddressed, 1, 'the spoofed message is counted');
  });

  it('drops and counts a message addressed to another node', async () => {
    const { mesh, ts, got } = await meshOf(['a', 'b', 'c']);
    mesh.inject('a', 'b', JSON.stringify(hb('a', 'c', 1)));
    await settle();
    assert.equal(got.get('b')!.length, 0, 'nothing delivered');
    assert.equal(ts.get('b')!.stats.misaddressed, 1, 'counted as misaddressed');
  });

  it('counts oversized text apart from malformed payloads; objects and numbers are malformed', async () => {
    const { mesh, ts, got } = await meshOf(['a', 'b']);
    const big = { ...hb('a', 'b', 1), pad: 'é'.repeat(MAX_BYTES / 2) }; // under MAX_BYTES in UTF-16 units, over it in UTF-8
    mesh.inject('a', 'b', JSON.stringify(big));
    mesh.inject('a', 'b', hb('a', 'b', 2)); // a valid message, but not codec text
    mesh.inject('a', 'b', 42);
    mesh.inject('a', 'b', '{"type":"Append"');
    mesh.inject('a', 'b', JSON.stringify({ type: 'Vote', from: 'a', to: 'b', term: -1 }));
    await settle();
    const s = ts.get('b')!.stats;
    assert.equal(got.get('b')!.length, 0, 'nothing reaches onMessage');
    assert.equal(s.oversized, 1, 'one oversized');
    assert.equal(s.malformed, 4, 'four malformed');
    assert.equal(s.delivered, 0, 'none delivered');
  });

  it('does not hand room membership messages to Raft, valid or not', async () => {
    const { mesh, ts, hubs } = await meshOf(['a', 'b']);
    const room: unknown[] = [];
    hubs.get('b')!.on('room', (_from, p) => room.push(p));
    mesh.inject('a', 'b', { type: ROOM_STATE_TYPE, from: 'a', to: 'b', state: 'fresh', leader: null, voters: [], learners: [] });
    mesh.inject('a', 'b', { type: ROOM_STATE_TYPE, bogus: true });
    await settle();
    assert.equal(room.length, 2, 'both went to the room listeners');
    assert.equal(ts.get('b')!.stats.malformed, 0, 'the transport saw neither');
  });

  it('drops sends to a peer whose channel is not open, and delivers again once it reopens', async () => {
    const { mesh, ts, got } = await meshOf(['a', 'b']);
    mesh.disconnect('a', 'b', 'failed');
    await settle();
    ts.get('a')!.send(hb('a', 'b', 1));
    assert.equal(ts.get('a')!.stats.unsent, 1, 'counted as unsent');
    mesh.connect('a', 'b');
    await settle();
    ts.get('a')!.send(hb('a', 'b', 2));
    await settle();
    assert.deepEqual(got.get('b')!.map((m) => (m as { ctx: number }).ctx), [2], 'only the message sent while open arrives');
  });

  it('counts a message the mesh refuses (over its frame limit) as refused, and keeps going', async () => {
    const mesh = new MemoryMesh({ maxFrameLength: 200 });
    const hubs = ['a', 'b'].map((id) => new MeshHub(mesh.link(id)));
    mesh.connect('a', 'b');
    await settle();
    const a = new WebRtcTransport({ id: 'a', hub: hubs[0]! });
    const b = new WebRtcTransport({ id: 'b', hub: hubs[1]! });
    const atB: WireMessage[] = [];
    await a.start(() => {});
    await b.start((m) => atB.push(m));
    a.send({ ...hb('a', 'b', 1), pad: 'x'.repeat(300) } as unknown as Message); // valid for the codec, too big for this mesh
    a.send(hb('a', 'b', 2));
    await settle();
    assert.equal(a.stats.refused, 1, 'the oversized frame was refused by the mesh');
    assert.deepEqual(atB.map((m) => (m as { ctx: number }).ctx), [2], 'the next message still went through');
  });

  it('counts a message that is not JSON as refused instead of throwing', async () => {
    const { ts } = await meshOf(['a', 'b']);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const fwd = { type: 'Forward', from: 'a', to: 'b', proposals: [{ id: 'a.1', command: cyclic }] } as WireMessage;
    assert.doesNotThrow(() => ts.get('a')!.send(fwd), 'send never throws');
    assert.equal(ts.get('a')!.stats.refused, 1, 'counted as refused');
  });

  it('sends a message longer than the fragment size in fragments that fit the mesh, and it arrives whole', async () => {
    const mesh = new MemoryMesh({ maxFrameLength: 8 * 1024 });
    const hubs = ['a', 'b'].map((id) => new MeshHub(mesh.link(id)));
    mesh.connect('a', 'b');
    await settle();
    const a = new WebRtcTransport({ id: 'a', hub: hubs[0]!, fragmentChars: 1024 });
    const b = new WebRtcTransport({ id: 'b', hub: hubs[1]! });
    const atB: WireMessage[] = [];
    await a.start(() => {});
    await b.start((m) => atB.push(m));
    // Quotes and non-Latin text: the worst case for the frame size of a fragment.
    const big: Message = {
      type: 'Append', from: 'a', to: 'b', term: 2, prevIndex: 0, prevTerm: 0, commit: 0,
      entries: Array.from({ length: 50 }, (_, i) => ({ index: i + 1, term: 2, type: 'normal' as const, data: { text: `"Xin chào" 你好 #${i} `.repeat(20) } })),
    };
    a.send(big);
    a.send(hb('a', 'b', 7));
    await settle();
    assert.ok(a.stats.fragmented === 1 && a.stats.refused === 0, `sent in fragments, none refused (${JSON.stringify(a.stats)})`);
    assert.deepEqual(atB, [big, hb('a', 'b', 7)], 'the big message arrived whole, then the next one');
  });

  it('discards a broken fragment sequence: out of order, too large in total, or cut by a disconnect', async () => {
    const { mesh, ts, got } = await meshOf(['a', 'b']);
    const text = JSON.stringify(hb('a', 'b', 1));
    const half = Math.ceil(text.length / 2);
    const frag = (i: number, n: number, piece: string): string => `#${i}/${n}:${piece}`;
    const b = ts.get('b')!;
    mesh.inject('a', 'b', frag(1, 2, text.slice(half))); // no start
    mesh.inject('a', 'b', '#x/2:{');
    mesh.inject('a', 'b', frag(0, 1, text)); // a "sequence" of one
    await settle();
    assert.equal(b.stats.malformed, 3, 'three malformed fragments');
    mesh.inject('a', 'b', frag(0, 2, text.slice(0, half)));
    mesh.inject('a', 'b', JSON.stringify(hb('a', 'b', 2))); // a whole message interrupts the sequence
    mesh.inject('a', 'b', frag(1, 2, text.slice(half)));
    await settle();
    assert.equal(b.stats.incomplete, 1, 'the interrupted sequence was discarded');
    mesh.inject('a', 'b', frag(0, 2, text.slice(0, half)));
    await settle();
    mesh.disconnect('a', 'b', 'failed');
    await settle();
    assert.equal(b.stats.incomplete, 2, 'the disconnect discarded the pending fragments');
    mesh.connect('a', 'b');
    await settle();
    mesh.inject('a', 'b', frag(0, 3, 'x'.repeat(MAX_BYTES)));
    mesh.inject('a', 'b', frag(1, 3, 'x'));
    await settle();
    assert.equal(b.stats.oversized, 1, 'fragments adding up past the bound are refused as they arrive');
    mesh.inject('a', 'b', frag(0, 2, text.slice(0, half)));
    mesh.inject('a', 'b', frag(1, 2, text.slice(half)));
    await settle();
    assert.deepEqual(got.get('b')!.map((m) => (m as { ctx: number }).ctx), [2, 1], 'only the whole message and the complete sequence arrived');
  });

  it('keeps nothing for a peer that is away: a send to it never grows a queue', async () => {
    const { mesh, ts } = await meshOf(['a', 'b']);
    mesh.disconnect('a', 'b', 'closed');
    await settle();
    for (let i = 0; i < 10_000; i++) ts.get('a')!.send(hb('a', 'b', i));
    mesh.connect('a', 'b');
    await settle();
    assert.equal(ts.get('a')!.stats.unsent, 10_000, 'every send while away is dropped at once');
    assert.equal(mesh.stats.delivered, 0, 'none is delivered after the reconnect');
  });
});
