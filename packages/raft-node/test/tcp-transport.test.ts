/** TcpTransport runs the shared Transport conformance suite, plus authentication, hostile input, reconnects and queues. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Message, WireMessage } from '@raftrtc/raft';
import { runTransportConformance } from '../../raft/test/conformance/transport.js';
import { TcpTransport, TcpTransportError, type TcpAddress, type TcpTransportOptions } from '../src/tcp-transport.js';

const HOST = '127.0.0.1';
const SECRET = 'test-cluster-secret';

const hb = (from: string, to: string, ctx: number): Message => ({ type: 'Heartbeat', from, to, term: 1, commit: 0, ctx });
const ctxOf = (m: WireMessage): number => (m as { ctx: number }).ctx;

/** Waits until `cond` holds, polling on macrotasks; the bound is a count of polls, generous, not a latency claim. */
async function until(cond: () => boolean, what: string, attempts = 5000): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const make = (id: string, extra: Partial<TcpTransportOptions> = {}): TcpTransport =>
  new TcpTransport({ id, listen: { host: HOST, port: 0 }, secret: SECRET, backoff: { initialMs: 5, maxMs: 40 }, ...extra });

/** Starts `a` and `b` and introduces them to each other. */
async function startPair(a: TcpTransport, b: TcpTransport, atA: WireMessage[], atB: WireMessage[]): Promise<void> {
  await a.start((m) => atA.push(m));
  await b.start((m) => atB.push(m));
  a.addPeer(b.id, b.address());
  b.addPeer(a.id, a.address());
}

const proof = (secret: string, role: string, dialer: string, listener: string, dn: string, ln: string): string =>
  createHmac('sha256', secret).update(['raftrtc-tcp/1', role, dialer, listener, dn, ln].join('\n'), 'utf8').digest('base64');

const frame = (payload: Buffer): Buffer => {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(payload.length, 0);
  return Buffer.concat([head, payload]);
};

/**
 * A hand-written dialer, following the protocol in the module comment of tcp-transport.ts rather than the
 * implementation, so the wire format is pinned by the test. Resolves once the welcome has arrived and (when
 * `proofSecret` is given) our proof is written.
 */
async function rawDial(to: TcpAddress, as: string, proofSecret: string | null): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = connect({ host: to.host, port: to.port });
  socket.on('error', () => {}); // the listener may reset us; 'close' is what the tests wait for
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  const nonce = randomBytes(32).toString('base64');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(frame(Buffer.from(JSON.stringify({ t: 'hello', v: 1, id: as, nonce }))));
  const welcome = await new Promise<Record<string, string>>((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        socket.off('data', onData);
        resolve(JSON.parse(buf.subarray(4, 4 + buf.readUInt32BE(0)).toString('utf8')) as Record<string, string>);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed before the welcome')));
  });
  if (proofSecret !== null) {
    socket.write(frame(Buffer.from(JSON.stringify({ t: 'proof', proof: proof(proofSecret, 'dialer', as, welcome.id!, nonce, welcome.nonce!) }))));
  }
  return { socket, closed };
}

/** Sends bytes on an authenticated raw connection, half-closes, and waits until the listener has closed it. */
async function rawSend(to: TcpAddress, as: string, bytes: Buffer): Promise<void> {
  const { socket, closed } = await rawDial(to, as, SECRET);
  socket.end(bytes);
  await closed;
}

runTransportConformance('TcpTransport', async () => {
  const maxBytes = 4096;
  const ta = make('a', { maxMessageBytes: maxBytes });
  const tb = make('b', { maxMessageBytes: maxBytes });
  // The suite hands us unstarted endpoints; ports exist only after start, so each start introduces its node.
  const wrap = (t: TcpTransport, other: TcpTransport): TcpTransport['start'] => async (onMessage) => {
    await t.start(onMessage);
    other.addPeer(t.id, t.address());
  };
  const a = { id: ta.id, start: wrap(ta, tb), send: (m: WireMessage) => ta.send(m), close: () => ta.close() };
  const b = { id: tb.id, start: wrap(tb, ta), send: (m: WireMessage) => tb.send(m), close: () => tb.close() };
  return {
    a, b, maxBytes,
    // Each raw text gets its own authenticated connection: the listener closes one that carried garbage.
    sendRaw: (text) => rawSend(tb.address(), 'a', frame(Buffer.from(text, 'utf8'))),
    cleanup: async () => {},
  };
});

/** A TCP relay in front of a listener, which can be switched off (it then cuts and refuses connections). */
class Relay {
  private readonly server: Server;
  private readonly pairs = new Set<Socket>();
  up = true;
  constructor(target: TcpAddress) {
    this.server = createServer((client) => {
      client.on('error', () => {});
      if (!this.up) return void client.destroy();
      const upstream = connect({ host: target.host, port: target.port });
      upstream.on('error', () => {});
      for (const s of [client, upstream]) {
        this.pairs.add(s);
        s.once('close', () => { this.pairs.delete(s); client.destroy(); upstream.destroy(); });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }
  async listen(): Promise<TcpAddress> {
    await new Promise<void>((r) => this.server.listen(0, HOST, () => r()));
    const a = this.server.address();
    assert.ok(a && typeof a === 'object', 'the relay listens on a port');
    return { host: HOST, port: a.port };
  }
  down(): void {
    this.up = false;
    for (const s of this.pairs) s.destroy();
  }
  async close(): Promise<void> {
    this.down();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

describe('TcpTransport', () => {
  it('a wrong secret delivers nothing and counts an auth failure on both sides', async () => {
    const a = make('a');
    const b = make('b', { secret: 'another-secret' });
    const atA: WireMessage[] = [];
    const atB: WireMessage[] = [];
    try {
      await startPair(a, b, atA, atB);
      a.send(hb('a', 'b', 1));
      b.send(hb('b', 'a', 2));
      // Each dialer finds the listener's proof wrong (the listener never sees a proof from it).
      await until(() => a.stats().authFailures >= 1 && b.stats().authFailures >= 1, 'auth failures on both dialers');
      // A hand-written dialer with the right hello but a wrong proof is refused by the listener's check.
      const before = b.stats().authFailures;
      const { socket, closed } = await rawDial(b.address(), 'a', SECRET); // b's secret is another-secret
      socket.write(frame(Buffer.from(JSON.stringify(hb('a', 'b', 3)))));
      await closed;
      assert.ok(b.stats().authFailures > before, 'the listener counted the wrong proof');
      assert.equal(atA.length, 0, 'nothing delivered at a');
      assert.equal(atB.length, 0, 'nothing delivered at b');
      assert.equal(a.stats().authenticated + b.stats().authenticated, 0, 'no connection authenticated');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('an oversized frame or garbage from a raw socket closes that connection; good peers keep working', async () => {
    const a = make('a', { maxMessageBytes: 1024 });
    const b = make('b', { maxMessageBytes: 1024 });
    const atA: WireMessage[] = [];
    const atB: WireMessage[] = [];
    try {
      await startPair(a, b, atA, atB);
      a.send(hb('a', 'b', 1));
      await until(() => atB.length === 1, 'the first message');

      // Unauthenticated garbage: a header announcing a huge frame, then random bytes.
      const g1 = connect({ host: HOST, port: b.address().port });
      g1.on('error', () => {});
      const g1closed = new Promise<void>((r) => g1.once('close', () => r()));
      g1.write(Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), randomBytes(64)]));
      await g1closed;
      // Unauthenticated, a small frame that is not a hello.
      const g2 = connect({ host: HOST, port: b.address().port });
      g2.on('error', () => {});
      const g2closed = new Promise<void>((r) => g2.once('close', () => r()));
      g2.write(frame(randomBytes(100)));
      await g2closed;
      // Authenticated, then a frame over the message limit (only its header is needed to refuse it).
      await rawSend(b.address(), 'a', Buffer.from([0, 0, 8, 0])); // announces 2048 bytes against a limit of 1024
      // Authenticated, then bytes that are not UTF-8.
      await rawSend(b.address(), 'a', frame(Buffer.from([0xc3, 0x28, 0xa0, 0xa1])));
      // Authenticated, then a valid message claiming another sender: dropped, the connection kept.
      const forged = await rawDial(b.address(), 'a', SECRET);
      forged.socket.write(frame(Buffer.from(JSON.stringify(hb('c', 'b', 99)))));
      forged.socket.write(frame(Buffer.from(JSON.stringify(hb('a', 'c', 98)))));
      forged.socket.end(frame(Buffer.from(JSON.stringify(hb('a', 'b', 97)))));
      await forged.closed;

      const s = b.stats();
      assert.ok(s.authFailures >= 2, `two unauthenticated connections refused (${s.authFailures})`);
      assert.equal(s.oversized, 1, 'one oversized frame counted');
      assert.equal(s.malformed, 1, 'one frame that is not UTF-8 counted');
      assert.equal(s.misaddressed, 2, 'the forged sender and the wrong recipient dropped');

      a.send(hb('a', 'b', 2));
      b.send(hb('b', 'a', 3));
      await until(() => atB.length === 3 && atA.length === 1, 'traffic after the hostile connections');
      assert.deepEqual(atB.map(ctxOf), [1, 97, 2], 'only well-formed, correctly addressed messages delivered');
      assert.deepEqual(atA.map(ctxOf), [3]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a peer down and up again: queued and new messages flow after the reconnect', async () => {
    const a = make('a');
    const b = make('b');
    const atA: WireMessage[] = [];
    const atB: WireMessage[] = [];
    let relay: Relay | null = null;
    try {
      await startPair(a, b, atA, atB);
      relay = new Relay(b.address());
      a.addPeer('b', await relay.listen());
      a.send(hb('a', 'b', 1));
      await until(() => atB.length === 1, 'the first message through the relay');
      relay.down();
      // Until a notices the cut, a send would go into the dying socket and be lost (as Raft allows).
      await until(() => a.peerStatus('b')?.connected === false, 'a to notice the cut');
      for (let i = 2; i <= 6; i++) a.send(hb('a', 'b', i));
      // Redials are refused while the relay is down; wait until a has failed a few times, then restore.
      await until(() => (a.peerStatus('b')?.failures ?? 0) >= 3, 'failed redials while the peer is down');
      assert.equal(a.peerStatus('b')?.queued, 5, 'the messages wait in the queue');
      relay.up = true;
      await until(() => atB.length === 6, 'the queued messages after the reconnect');
      a.send(hb('a', 'b', 7));
      await until(() => atB.length === 7, 'a new message');
      assert.deepEqual(atB.map(ctxOf), [1, 2, 3, 4, 5, 6, 7], 'everything queued arrives, in order');
      assert.equal(a.peerStatus('b')?.failures, 0, 'a successful handshake resets the backoff');
    } finally {
      await a.close();
      await b.close();
      await relay?.close();
    }
  });

  it('the send queue is bounded and drops the oldest while a peer is down', async () => {
    const a = make('a', { maxQueuedMessages: 10 });
    const b = make('b');
    const atA: WireMessage[] = [];
    const atB: WireMessage[] = [];
    let relay: Relay | null = null;
    try {
      await startPair(a, b, atA, atB);
      relay = new Relay(b.address());
      a.addPeer('b', await relay.listen());
      relay.down();
      for (let i = 1; i <= 100; i++) a.send(hb('a', 'b', i));
      assert.equal(a.stats().queueDropped, 90, 'ninety of a hundred dropped at a queue of ten');
      await until(() => (a.peerStatus('b')?.failures ?? 0) >= 2, 'failed dials while the peer is down');
      relay.up = true;
      await until(() => atB.length === 10, 'the ten queued messages');
      a.send(hb('a', 'b', 101));
      await until(() => atB.length === 11, 'a new message');
      assert.deepEqual(atB.map(ctxOf), [...Array.from({ length: 10 }, (_, i) => 91 + i), 101], 'the newest ten survive');
    } finally {
      await a.close();
      await b.close();
      await relay?.close();
    }
  });

  it('a message spanning many socket chunks arrives intact; one over the limit is not sent at all', async () => {
    const a = make('a', { maxMessageBytes: 4 << 20 });
    const b = make('b', { maxMessageBytes: 4 << 20 });
    const atA: WireMessage[] = [];
    const atB: WireMessage[] = [];
    try {
      await startPair(a, b, atA, atB);
      const big = (size: number): Message => ({
        type: 'Append', from: 'a', to: 'b', term: 1, prevIndex: 0, prevTerm: 0, commit: 0,
        entries: [{ index: 1, term: 1, type: 'normal', data: 'é'.repeat(size / 2) }],
      });
      a.send(big(3 << 20)); // 3 MiB of two-byte characters, far above one socket read
      a.send(big(5 << 20)); // above the limit: refused at the sender, which keeps the connection
      a.send(hb('a', 'b', 1));
      await until(() => atB.length === 2, 'the big message and the heartbeat');
      assert.deepEqual(atB[0], big(3 << 20), 'the big message intact');
      assert.equal(ctxOf(atB[1]!), 1);
      assert.equal(a.stats().unroutable, 1, 'the over-limit message counted at the sender');
      assert.equal(b.stats().oversized, 0, 'the receiver never saw it');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('redials back off exponentially up to maxMs, with jitter from the injected random', async () => {
    const delays: number[] = [];
    const a = make('a', {
      backoff: { initialMs: 8, maxMs: 32 }, random: () => 0, // the factor is then exactly 0.5
      log: (event, fields) => { if (event === 'tcp.redial') delays.push(fields.delayMs as number); },
    });
    const nobody = await new Promise<TcpAddress>((resolve) => {
      // A port that refuses: listen on an ephemeral port, note it, and close it again.
      const s = createServer().listen(0, HOST, () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve({ host: HOST, port }));
      });
    });
    try {
      await a.start(() => {});
      a.addPeer('b', nobody);
      a.send(hb('a', 'b', 1));
      await until(() => delays.length >= 5, 'five redials');
      assert.deepEqual(delays.slice(0, 5), [4, 8, 16, 16, 16], 'initialMs doubling per failure, capped at maxMs, times the jitter');
      assert.ok((a.peerStatus('b')?.failures ?? 0) >= 5, 'failures counted');
    } finally {
      await a.close();
    }
  });

  it('a connection that never completes the handshake is closed after handshakeTimeoutMs', async () => {
    const b = make('b', { handshakeTimeoutMs: 20 });
    try {
      await b.start(() => {});
      const idle = connect({ host: HOST, port: b.address().port });
      idle.on('error', () => {});
      await new Promise<void>((r) => idle.once('close', () => r()));
      assert.equal(b.stats().authFailures, 1, 'the silent connection counted as a failed handshake');
    } finally {
      await b.close();
    }
  });

  it('addPeer with a new address redirects, removePeer stops sending, unknown peers are unroutable', async () => {
    const a = make('a');
    const b1 = make('b');
    const b2 = make('b');
    const at1: WireMessage[] = [];
    const at2: WireMessage[] = [];
    try {
      await a.start(() => {});
      await b1.start((m) => at1.push(m));
      await b2.start((m) => at2.push(m));
      a.addPeer('b', b1.address());
      a.send(hb('a', 'b', 1));
      await until(() => at1.length === 1, 'the message at the first address');
      a.addPeer('b', b2.address());
      a.send(hb('a', 'b', 2));
      await until(() => at2.length === 1, 'the message at the new address');
      a.removePeer('b');
      a.send(hb('a', 'b', 3));
      a.send(hb('a', 'zed', 4));
      assert.equal(a.stats().unroutable, 2, 'sends to a removed and an unknown peer are counted');
      assert.deepEqual([...at1, ...at2].map(ctxOf), [1, 2]);
    } finally {
      await a.close();
      await b1.close();
      await b2.close();
    }
  });

  it('start twice or after close throws a typed error; an empty secret is refused', async () => {
    const a = make('a');
    await a.start(() => {});
    await assert.rejects(a.start(() => {}), TcpTransportError, 'second start');
    await a.close();
    await assert.rejects(a.start(() => {}), TcpTransportError, 'start after close');
    assert.throws(() => make('x', { secret: '' }), TcpTransportError, 'empty secret');
  });

  it('close() leaves no sockets, servers or timers behind, even with redials and handshakes pending', async () => {
    const count = (): Record<string, number> => {
      const c: Record<string, number> = {};
      for (const r of process.getActiveResourcesInfo()) c[r] = (c[r] ?? 0) + 1;
      return c;
    };
    const before = count();
    const a = make('a', { backoff: { initialMs: 1000, maxMs: 10_000 } });
    const b = make('b');
    await startPair(a, b, [], []);
    a.send(hb('a', 'b', 1));
    b.send(hb('b', 'a', 2));
    a.addPeer('dead', { host: HOST, port: 1 }); // refused: leaves a redial timer
    a.send(hb('a', 'dead', 3));
    // A raw connection that never says hello: leaves a handshake timer at b.
    const idle = connect({ host: HOST, port: b.address().port });
    idle.on('error', () => {});
    const idleClosed = new Promise<void>((r) => idle.once('close', () => r()));
    await until(() => a.stats().dials >= 2 && b.stats().accepted >= 2, 'connections under way');
    await a.close();
    await b.close();
    await idleClosed;
    const after = count();
    for (const kind of ['TCPSocketWrap', 'TCPServerWrap', 'Timeout']) {
      assert.ok((after[kind] ?? 0) <= (before[kind] ?? 0), `${kind}: ${after[kind] ?? 0} after close, ${before[kind] ?? 0} before`);
    }
  });
});
