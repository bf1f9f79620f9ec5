/** MemoryTransport runs the shared Transport conformance suite, plus its network controls and the codec. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../src/core/messages.js';
import { CodecError, decodeMessage, encodeMessage } from '../src/node/codec.js';
import { MemoryNetwork } from '../src/node/memory-transport.js';
import type { WireMessage } from '../src/node/node-messages.js';
import { RaftError } from '../src/core/errors.js';
import { runTransportConformance } from './conformance/transport.js';

runTransportConformance('MemoryTransport', async () => {
  const net = new MemoryNetwork({ maxBytes: 4096 });
  return { a: net.transport('a'), b: net.transport('b'), sendRaw: (t) => net.sendRaw('b', t), maxBytes: 4096, cleanup: async () => {} };
});

runTransportConformance('MemoryTransport with random latency', async () => {
  const net = new MemoryNetwork({ maxBytes: 4096, latencyMs: () => Math.floor(Math.random() * 3) });
  return { a: net.transport('a'), b: net.transport('b'), sendRaw: (t) => net.sendRaw('b', t), maxBytes: 4096, cleanup: async () => {} };
});

const hb = (from: string, to: string, ctx: number): Message => ({ type: 'Heartbeat', from, to, term: 1, commit: 0, ctx });
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('codec', () => {
  it('round-trips core and node messages', () => {
    const m: WireMessage = { type: 'Forward', from: 'a', to: 'b', proposals: [{ id: 'a.x.1', command: [1, 'two'] }, { id: 'a.x.2', command: 3 }] };
    assert.deepEqual(decodeMessage(encodeMessage(m)), m);
    assert.deepEqual(decodeMessage(encodeMessage(hb('a', 'b', 3))), hb('a', 'b', 3));
  });

  it('throws a typed CodecError with a reason', () => {
    const cases: [string, string][] = [
      ['x'.repeat(101), 'oversized'],
      ['{"a":', 'not-json'],
      ['{"type":"Append","from":"a","to":"b","term":1}', 'malformed'],
      ['[]', 'malformed'],
    ];
    for (const [text, reason] of cases) {
      assert.throws(() => decodeMessage(text, { maxBytes: 100 }), (e: unknown) =>
        e instanceof CodecError && e instanceof RaftError && e.reason === reason, `reason ${reason}`);
    }
  });

  it('measures the limit in UTF-8 bytes', () => {
    const m = { ...hb('a', 'b', 1), pad: '€'.repeat(30) }; // 90 bytes of padding, 30 UTF-16 units
    const text = JSON.stringify(m);
    assert.throws(() => decodeMessage(text, { maxBytes: text.length + 10 }), CodecError);
    assert.doesNotThrow(() => decodeMessage(text, { maxBytes: text.length + 60 }));
  });
});

describe('MemoryNetwork controls', () => {
  it('never delivers inside send', async () => {
    const net = new MemoryNetwork();
    const got: WireMessage[] = [];
    const a = net.transport('a');
    const b = net.transport('b');
    await a.start(() => {});
    await b.start((m) => got.push(m));
    a.send(hb('a', 'b', 1));
    assert.equal(got.length, 0, 'delivery is asynchronous');
    await flush();
    assert.equal(got.length, 1, 'delivered afterwards');
  });

  it('drop, partition and heal', async () => {
    const net = new MemoryNetwork();
    const got = new Map<string, number[]>();
    const ts = ['a', 'b', 'c'].map((id) => net.transport(id));
    for (const t of ts) { got.set(t.id, []); await t.start((m) => got.get(t.id)!.push((m as { ctx: number }).ctx)); }
    const [a, b, c] = ts as [typeof ts[0], typeof ts[0], typeof ts[0]];
    net.drop('a', 'b');
    a.send(hb('a', 'b', 1));
    b.send(hb('b', 'a', 2));
    net.partition(['c']);
    a.send(hb('a', 'c', 3));
    c.send(hb('c', 'b', 4));
    await flush();
    assert.deepEqual(got.get('b'), [], 'a→b cut, c partitioned away');
    assert.deepEqual(got.get('a'), [2], 'b→a still works');
    assert.deepEqual(got.get('c'), [], 'c partitioned away');
    net.heal();
    a.send(hb('a', 'b', 5));
    a.send(hb('a', 'c', 6));
    await flush();
    assert.deepEqual(got.get('b'), [5]);
    assert.deepEqual(got.get('c'), [6]);
    assert.equal(net.stats.dropped, 3, 'three dropped');
  });

  it('a filter can drop chosen messages', async () => {
    const net = new MemoryNetwork();
    const got: number[] = [];
    const a = net.transport('a');
    const b = net.transport('b');
    await a.start(() => {});
    await b.start((m) => got.push((m as { ctx: number }).ctx));
    net.filter = (m) => (m as { ctx: number }).ctx % 2 === 0;
    for (let i = 1; i <= 6; i++) a.send(hb('a', 'b', i));
    await flush();
    assert.deepEqual(got, [2, 4, 6]);
  });
});
