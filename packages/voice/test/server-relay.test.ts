/**
 * The relay's forwarding logic alone, with fake streams and a fake clock (the gRPC server around it is
 * tested for real in server.test.ts and server-lifecycle.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Relay, Undecodable, validateRequest, DEFAULT_RELAY_LIMITS, resolveRelayLimits, type LeaveReason, type RelayClient, type RelayLimits } from '../src/index.js';
import type { ServerRES } from '../src/proto.js';

/** A fake stream: takes everything queued unless `stalled`, like a client that reads (or not). */
interface FakeStream {
  client: RelayClient<ServerRES>;
  got: ServerRES[];
  stalled: boolean;
  evicted: string[];
}

function setup(limits: Partial<RelayLimits> = {}) {
  let clock = 0;
  let ids = 0;
  const latencies: number[] = [];
  const relay = new Relay<ServerRES>({ encode: (res) => res, now: () => clock, observeLatency: (ms) => latencies.push(ms) }, limits, () => `c${++ids}`);
  const join = (room = ''): FakeStream => {
    const client = relay.admit(room);
    assert.ok(client, `admission to room ${JSON.stringify(room)} with ${relay.size} clients present`);
    const s: FakeStream = { client, got: [], stalled: false, evicted: [] };
    client.onWake = () => {
      if (s.stalled) {
        client.blocked();
        return;
      }
      for (let item = client.take(); item; item = client.take()) s.got.push(item.payload);
    };
    client.onEvict = (reason) => s.evicted.push(reason);
    return s;
  };
  const frame = (name: string, text: string) => ({ message: { chunk: Buffer.from(text), name, seq: 0 } });
  const texts = (s: FakeStream) => s.got.filter((r) => r.message).map((r) => `${r.message!.id}/${r.message!.msg!.name}:${r.message!.msg!.chunk.toString()}`);
  return { relay, join, frame, texts, latencies, advance: (ms: number) => (clock += ms) };
}

describe('relay: forwarding', () => {
  it('echoes a signal to its sender only', () => {
    const { relay, join } = setup();
    const a = join();
    const b = join();
    assert.equal(relay.receive(a.client, { signal: {}, request: 'signal' }), 'signal', 'a signal is recognised');
    assert.deepEqual(a.got, [{ signal: {} }], 'the sender gets one ServerSignal');
    assert.deepEqual(b.got, [], 'nobody else does');
  });

  it('forwards a frame to every other client of the room, tagged with the sender id, never to the sender', () => {
    const { relay, join, frame, texts } = setup();
    const a = join('x');
    const b = join('x');
    const c = join('x');
    const d = join('y');
    relay.receive(a.client, frame('alice', 'one'));
    relay.receive(b.client, frame('bob', 'two'));
    assert.deepEqual(texts(a), ['c2/bob:two'], 'a gets b only');
    assert.deepEqual(texts(b), ['c1/alice:one'], 'b gets a only');
    assert.deepEqual(texts(c), ['c1/alice:one', 'c2/bob:two'], 'c gets both, in order');
    assert.deepEqual(texts(d), [], 'room y hears nothing of room x');
    assert.equal(relay.counters.framesIn, 2, 'two frames in');
    assert.equal(relay.counters.framesOut, 4, 'four hand-overs');
  });

  it('keeps seq through the relay', () => {
    const { relay, join } = setup();
    const a = join();
    const b = join();
    relay.receive(a.client, { message: { chunk: Buffer.from('z'), name: 'a', seq: 41 }, request: 'message' });
    assert.equal(b.got[0]?.message?.msg?.seq, 41, 'seq forwarded');
  });
});

describe('relay: validation', () => {
  const limits = { maxChunkBytes: DEFAULT_RELAY_LIMITS.maxChunkBytes, maxNameLength: DEFAULT_RELAY_LIMITS.maxNameLength };
  const cases: Array<[string, Parameters<typeof validateRequest>[0], string]> = [
    ['undecodable bytes', new Undecodable(3), 'undecodable'],
    ['neither message nor signal', {}, 'empty-request'],
    ['an empty chunk', { message: { chunk: Buffer.alloc(0), name: 'a', seq: 0 } }, 'empty-chunk'],
    ['a chunk over the limit', { message: { chunk: Buffer.alloc(4001), name: 'a', seq: 0 } }, 'chunk-too-large'],
    ['an empty name', { message: { chunk: Buffer.from('x'), name: '', seq: 0 } }, 'empty-name'],
    ['a 65-character name', { message: { chunk: Buffer.from('x'), name: 'n'.repeat(65), seq: 0 } }, 'name-too-long'],
  ];
  for (const [what, req, reason] of cases) {
    it(`drops ${what}`, () => {
      const v = validateRequest(req, limits);
      assert.deepEqual(v, { kind: 'malformed', reason }, `${what} is malformed (${reason})`);
    });
  }

  it('accepts a 4000-byte chunk and a 64-character name (astral characters count once)', () => {
    const v = validateRequest({ message: { chunk: Buffer.alloc(4000, 1), name: '🎤'.repeat(64), seq: 0 } }, limits);
    assert.equal(v.kind, 'message', `the limits are inclusive: ${JSON.stringify(v)}`);
  });

  it('counts malformed requests and keeps the client until too many come in a row', () => {
    const { relay, join, frame, texts } = setup({ maxConsecutiveMalformed: 3 });
    const a = join();
    const b = join();
    relay.receive(a.client, {});
    relay.receive(a.client, new Undecodable(9));
    relay.receive(a.client, frame('alice', 'ok'));
    assert.deepEqual(texts(b), ['c1/alice:ok'], 'a valid frame after garbage still goes through');
    assert.equal(relay.counters.malformed, 2, 'two malformed counted');
    relay.receive(a.client, {});
    relay.receive(a.client, {});
    assert.equal(relay.receive(a.client, {}), 'evicted', 'the third malformed in a row evicts');
    assert.deepEqual(a.evicted, ['malformed'], 'the host is told once');
    assert.equal(relay.size, 1, 'a\'s slot is free');
  });

  it('rejects bad limits with a RangeError', () => {
    assert.throws(() => resolveRelayLimits({ queueFrames: 0 }), RangeError, 'zero queue');
    assert.throws(() => resolveRelayLimits({ stallMs: 1.5 }), RangeError, 'fractional stall');
  });
});

describe('relay: queues and stalls', () => {
  it('drops the oldest frames of a stalled client, keeps the others whole, and evicts it after stallMs', () => {
    const { relay, join, frame, texts, advance } = setup({ queueFrames: 4, stallMs: 1000 });
    const a = join();
    const b = join();
    const c = join();
    c.stalled = true;
    for (let i = 0; i < 10; i++) {
      if (i > 0) {
        advance(100);
        assert.equal(relay.sweep(), 0, `not evicted after ${i * 100} ms blocked`);
      }
      relay.receive(a.client, frame('alice', String(i)));
    }
    assert.equal(texts(b).length, 10, 'b got every frame');
    assert.equal(c.client.queued, 4, 'c holds only its queue\'s worth');
    assert.equal(c.client.dropped, 6, 'the six oldest were dropped');
    assert.deepEqual(c.evicted, [], 'not evicted before stallMs');
    advance(100);
    assert.equal(relay.sweep(), 1, 'evicted by the first sweep after stallMs blocked');
    assert.deepEqual(c.evicted, ['stalled'], 'the host is told once');
    assert.equal(relay.size, 2, 'its slot is free');
    assert.equal(relay.counters.framesDropped, 6 + 4, 'the drops and the frames left in its queue are counted');
    relay.receive(a.client, frame('alice', 'after'));
    assert.equal(texts(b).at(-1), 'c1/alice:after', 'b still gets frames');
  });

  it('does not blame the clients for a stall of the host: a late sweep restarts the stall clocks', () => {
    const { relay, join, frame, advance } = setup({ stallMs: 1000 });
    const a = join();
    const c = join();
    c.stalled = true;
    relay.receive(a.client, frame('alice', 'x'));
    advance(2000);
    assert.equal(relay.sweep(), 0, 'the sweep came 2 s late: nobody is judged on that time');
    for (let t = 0; t < 750; t += 250) {
      advance(250);
      assert.equal(relay.sweep(), 0, `blocked ${t + 250} ms since the restart: kept`);
    }
    advance(250);
    assert.equal(relay.sweep(), 1, 'a full stallMs of on-time sweeps later: evicted');
    assert.deepEqual(c.evicted, ['stalled'], 'once');
  });

  it('a drained stream stops the stall clock', () => {
    const { relay, join, frame, advance } = setup({ stallMs: 500 });
    const a = join();
    const c = join();
    c.client.blocked();
    advance(100);
    relay.sweep();
    advance(100);
    relay.sweep();
    c.client.unblocked();
    for (let i = 0; i < 10; i++) {
      advance(100);
      relay.sweep();
    }
    relay.receive(a.client, frame('alice', 'x'));
    assert.deepEqual(c.evicted, [], 'blocked 200 ms then drained: not stalled');
  });

  it('reports latency from arrival to hand-over', () => {
    const { relay, join, frame, advance, latencies } = setup();
    const a = join();
    const c = join();
    c.stalled = true;
    relay.receive(a.client, frame('alice', 'x'));
    advance(30);
    assert.ok(c.client.take(), 'the frame waited');
    assert.deepEqual(latencies, [30], 'its latency is the time it waited');
  });
});

describe('relay: rate limit', () => {
  it('drops a sender\'s frames over its rate after the burst, and lets it through again as tokens refill', () => {
    const { relay, join, frame, texts, advance } = setup({ maxFramesPerSecond: 100, frameBurst: 5 });
    const a = join();
    const b = join();
    const results = Array.from({ length: 8 }, (_, i) => relay.receive(a.client, frame('alice', String(i))));
    assert.deepEqual(results, ['forwarded', 'forwarded', 'forwarded', 'forwarded', 'forwarded', 'rate-limited', 'rate-limited', 'rate-limited'], 'the burst passes, then nothing');
    assert.equal(relay.counters.rateLimited, 3, 'three counted');
    advance(10);
    assert.equal(relay.receive(a.client, frame('alice', 'refilled')), 'forwarded', '10 ms at 100/s is one token');
    assert.equal(relay.receive(a.client, frame('alice', 'again')), 'rate-limited', 'and only one');
    relay.receive(b.client, frame('bob', 'b'));
    assert.equal(texts(a).length, 1, 'b has a bucket of its own');
    assert.equal(texts(b).length, 6, 'b got the five of the burst and the refilled one');
    assert.equal(relay.receive(a.client, { signal: {} }), 'signal', 'signals are not rate-limited');
  });

  it('lets a steady 50 frames/s through under the default limit', () => {
    const { relay, join, frame, advance } = setup();
    const a = join();
    join();
    for (let i = 0; i < 500; i++) {
      assert.equal(relay.receive(a.client, frame('alice', String(i))), 'forwarded', `frame ${i}`);
      advance(20);
    }
  });
});

describe('relay: slots', () => {
  it('refuses past maxClients and frees a slot exactly once however often it is left', () => {
    const { relay, join } = setup({ maxClients: 2 });
    const a = join();
    join();
    assert.equal(relay.admit(''), null, 'the third is refused');
    assert.equal(relay.leave(a.client, 'ended'), true, 'the first leave frees');
    for (const reason of ['cancelled', 'error', 'closed', 'shutdown', 'stalled'] as const) {
      assert.equal(relay.leave(a.client, reason), false, `a later ${reason} does nothing`);
    }
    assert.equal(relay.size, 1, 'one slot in use');
    join();
    assert.equal(relay.admit(''), null, 'exactly one slot was freed');
    assert.equal(relay.counters.left.ended, 1, 'counted once, under the first reason');
  });

  it('never leaks or double-frees over random admissions, leaves, stalls and garbage', () => {
    const seed = Number(process.env.VOICE_SEED ?? Date.now() % 1_000_000);
    let x = seed;
    const rand = (n: number): number => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x % n;
    };
    try {
      const maxClients = 5;
      const { relay, join, frame, advance } = setup({ maxClients, queueFrames: 3, stallMs: 200, maxConsecutiveMalformed: 4 });
      const live: FakeStream[] = [];
      const reasons: LeaveReason[] = ['ended', 'cancelled', 'error', 'closed', 'shutdown'];
      for (let step = 0; step < 5000; step++) {
        const op = rand(6);
        if (op === 0) {
          if (relay.size < maxClients) live.push(join(['', 'r'][rand(2)]));
          else assert.equal(relay.admit(''), null, 'full means refused');
        } else if (op === 1 && live.length > 0) {
          const s = live[rand(live.length)]!;
          // Several leave paths racing for one client, as stream events do.
          for (let k = 0; k < 1 + rand(3); k++) relay.leave(s.client, reasons[rand(reasons.length)]!);
        } else if (op === 2 && live.length > 0) {
          live[rand(live.length)]!.stalled = rand(2) === 0;
        } else if (op === 3 && live.length > 0) {
          relay.receive(live[rand(live.length)]!.client, rand(3) === 0 ? {} : frame('n', 'f'));
        } else if (op === 4) {
          advance(rand(100));
          relay.sweep();
        } else if (op === 5 && live.length > 0) {
          const s = live[rand(live.length)]!;
          if (!s.stalled) s.client.onWake();
        }
        for (let i = live.length - 1; i >= 0; i--) if (live[i]!.client.left) live.splice(i, 1);
        assert.equal(relay.size, live.length, `slots in use equal clients present (step ${step})`);
        const left = Object.values(relay.counters.left).reduce((p, q) => p + q, 0);
        assert.equal(relay.counters.admitted - left, relay.size, `admitted - left = present (step ${step})`);
        for (const s of live) assert.ok(s.evicted.length === 0, `a present client was never evicted (step ${step})`);
      }
      for (const s of live) relay.leave(s.client, 'shutdown');
      assert.equal(relay.size, 0, 'all free at the end');
      assert.equal(relay.roomCount, 0, 'no empty rooms kept');
    } catch (err) {
      console.error(`relay slot fuzz failed with seed ${seed} (rerun with VOICE_SEED=${seed})`);
      throw err;
    }
  });
});
