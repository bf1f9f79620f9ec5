/**
 * The conformance suite every {@link Transport} runs: delivery, silence towards unknown peers, nothing
 * after close, and no garbage reaching `onMessage`. Checked through the interface alone; `makePair` builds
 * two connected endpoints and a way to put raw text on b's wire as if it came from a.
 * @module
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../src/core/messages.js';
import type { WireMessage } from '../../src/node/node-messages.js';
import type { Transport } from '../../src/node/transport.js';

/** What the suite needs from one implementation. */
export interface TransportPair {
  /** Endpoint of node `a`, not started. */
  a: Transport;
  /** Endpoint of node `b`, not started. */
  b: Transport;
  /** Puts `text` on b's incoming wire as if peer `a` had framed and sent it. */
  sendRaw(text: string): void | Promise<void>;
  /** The receiver's size limit in bytes. */
  maxBytes: number;
  cleanup(): Promise<void>;
}

/** Waits until `cond` holds, polling on macrotasks; fails after `attempts` polls (not a wall-clock bound). */
async function until(cond: () => boolean, what: string, attempts = 2000): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** Lets in-flight deliveries land: a round trip a→b→a proves the earlier messages on the path had their chance. */
async function settle(pair: TransportPair, received: WireMessage[]): Promise<void> {
  const marker = heartbeat('a', 'b', 424242);
  pair.a.send(marker);
  await until(() => received.some((m) => m.type === 'Heartbeat' && m.ctx === 424242), 'the settle marker');
}

const heartbeat = (from: string, to: string, ctx: number): Message =>
  ({ type: 'Heartbeat', from, to, term: 1, commit: 0, ctx });

/** Runs the suite for one implementation. */
export function runTransportConformance(name: string, makePair: () => Promise<TransportPair>): void {
  const withPair = async (body: (p: TransportPair, atB: WireMessage[], atA: WireMessage[]) => Promise<void>): Promise<void> => {
    const p = await makePair();
    const atA: WireMessage[] = [];
    const atB: WireMessage[] = [];
    try {
      await p.a.start((m) => atA.push(m));
      await p.b.start((m) => atB.push(m));
      await body(p, atB, atA);
    } finally {
      await p.a.close();
      await p.b.close();
      await p.cleanup();
    }
  };

  describe(`Transport conformance: ${name}`, () => {
    it('delivers messages both ways, intact', () => withPair(async (p, atB, atA) => {
      const append: Message = {
        type: 'Append', from: 'a', to: 'b', term: 3, prevIndex: 4, prevTerm: 2, commit: 4,
        entries: [{ index: 5, term: 3, type: 'normal', data: { k: 'ü✓', v: [1, null, 'x'] } }],
      };
      p.a.send(append);
      await until(() => atB.length === 1, 'the append at b');
      assert.deepEqual(atB[0], append);
      const resp: Message = { type: 'AppendResp', from: 'b', to: 'a', term: 3, index: 5, reject: false, hintIndex: 0, hintTerm: 0 };
      p.b.send(resp);
      await until(() => atA.length === 1, 'the answer at a');
      assert.deepEqual(atA[0], resp);
    }));

    it('carries node-layer messages (Forward)', () => withPair(async (p, atB) => {
      const fwd: WireMessage = { type: 'Forward', from: 'a', to: 'b', proposals: [{ id: 'a.1.7', command: { op: 'put', key: 'k' } }] };
      p.a.send(fwd);
      await until(() => atB.length === 1, 'the forward at b');
      assert.deepEqual(atB[0], fwd);
    }));

    it('delivers a burst completely', () => withPair(async (p, atB) => {
      for (let i = 1; i <= 200; i++) p.a.send(heartbeat('a', 'b', i));
      await until(() => atB.length === 200, 'all 200 messages');
      const ctxs = atB.map((m) => (m as { ctx: number }).ctx).sort((x, y) => x - y);
      assert.deepEqual(ctxs, Array.from({ length: 200 }, (_, i) => i + 1));
    }));

    it('a send to an unknown peer is silent and does not disturb other traffic', () => withPair(async (p, atB) => {
      assert.doesNotThrow(() => p.a.send(heartbeat('a', 'nobody', 1)), 'send to an unknown peer must not throw');
      p.a.send(heartbeat('a', 'b', 2));
      await until(() => atB.length === 1, 'the message to b');
      assert.equal((atB[0] as { ctx: number }).ctx, 2);
    }));

    it('after close, the closed endpoint receives nothing and sending from it does not throw', () => withPair(async (p, atB, atA) => {
      await p.b.close();
      p.a.send(heartbeat('a', 'b', 1));
      assert.doesNotThrow(() => p.b.send(heartbeat('b', 'a', 2)), 'send after close must not throw');
      // a round trip through a to itself is impossible; let a's own pending traffic settle instead.
      for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 1));
      assert.equal(atB.length, 0, 'nothing delivered after close');
      assert.ok(atA.every((m) => !(m.type === 'Heartbeat' && m.ctx === 2)), 'a closed endpoint sends nothing');
    }));

    it('oversized, non-JSON and malformed text never reaches onMessage', () => withPair(async (p, atB) => {
      const big = heartbeat('a', 'b', 1) as Message & { pad?: string };
      big.pad = 'x'.repeat(p.maxBytes + 1);
      await p.sendRaw(JSON.stringify(big));
      await p.sendRaw('{not json');
      await p.sendRaw(JSON.stringify({ type: 'Heartbeat', from: 'a', to: 'b' })); // missing fields
      await p.sendRaw(JSON.stringify({ type: 'Nonsense', from: 'a', to: 'b', term: 1 }));
      await p.sendRaw(JSON.stringify({ type: 'Forward', from: 'a', to: 'b', proposals: [{ id: '', command: 1 }] }));
      await p.sendRaw(JSON.stringify({ type: 'Forward', from: 'a', to: 'b', proposals: [] }));
      await p.sendRaw('null');
      await settle(p, atB);
      assert.deepEqual(atB.map((m) => m.type), ['Heartbeat'], 'only the settle marker arrives');
    }));
  });
}
