/**
 * How clients leave a real voice relay and what it costs the others: the connection limit and every way
 * out (each must free the slot once), a client that stops reading, a client process killed with SIGKILL,
 * and shutdown, in process and by SIGTERM to `serve`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { END_REASON_KEY, startVoiceServer, type VoiceServer } from '../src/index.js';
import { connect, waitFor, type ConnectOptions, type TestClient } from './server-helpers.js';

const PASS = 'lifecycle';
const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

async function joined(server: VoiceServer, options: ConnectOptions = {}): Promise<TestClient> {
  const c = connect(server.address, { passcode: PASS, ...options });
  c.signal();
  await waitFor(() => c.received.some((r) => r.signal) || c.ended !== undefined, 'the signal echo');
  assert.equal(c.ended, undefined, `admitted (ended: ${c.ended && grpc.status[c.ended.code]} ${c.ended?.details})`);
  return c;
}

async function refusedAsFull(server: VoiceServer): Promise<void> {
  const c = connect(server.address, { passcode: PASS });
  c.signal();
  const end = await c.done();
  c.close();
  assert.equal(end.code, grpc.status.RESOURCE_EXHAUSTED, `one client too many is RESOURCE_EXHAUSTED, got ${grpc.status[end.code]}: ${end.details}`);
}

/** Ways a client leaves; each returns once it has started leaving. */
const LEAVES: Record<string, (c: TestClient) => void> = {
  'half-close': (c) => c.call.end(),
  cancel: (c) => c.call.cancel(),
  'half-close and cancel at once': (c) => {
    c.call.end();
    c.call.cancel();
  },
  'a request over the size limit (gRPC ends the call)': (c) => c.send('big', Buffer.alloc(100_000, 1)),
  'garbage until evicted': (c) => {
    for (let i = 0; i < 3; i++) c.call.write({});
  },
  'deadline passed': () => {},
};

/** Spawns `node --import tsx fixture args`; resolves once it printed `ready` (or `listening`) on the chosen stream. */
function spawnFixture(name: string, args: string[], readyOn: 'stdout' | 'stderr', ready: RegExp): Promise<{ child: ChildProcess; match: RegExpExecArray; output: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(fixtures, name), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const m = ready.exec(readyOn === 'stdout' ? out : err);
      if (m) resolve({ child, match: m, output: () => out + err });
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.on('exit', (code, signal) => reject(new Error(`${name} exited (${code ?? signal}) before it was ready: ${out}${err}`)));
  });
}

describe('voice server: lifecycle', () => {
  it('refuses the 11th client, and frees each slot exactly once however its client leaves', async () => {
    const server = await startVoiceServer({ passcode: PASS, maxClients: 10, limits: { maxConsecutiveMalformed: 3 }, logLevel: 'error' });
    const kinds = Object.keys(LEAVES);
    const all: TestClient[] = [];
    try {
      for (let round = 0; round < 3; round++) {
        const cs: TestClient[] = [];
        for (let i = 0; i < 10; i++) {
          const kind = kinds[(i + round) % kinds.length]!;
          // The deadline must outlast the round's joining, even on a loaded machine, for the echo to come first.
          cs.push(await joined(server, kind === 'deadline passed' ? { callOptions: { deadline: Date.now() + 3000 } } : {}));
        }
        all.push(...cs);
        assert.equal(server.metrics().clients, 10, `round ${round}: ten in`);
        await refusedAsFull(server);
        cs.forEach((c, i) => LEAVES[kinds[(i + round) % kinds.length]!]!(c));
        await Promise.all(cs.map((c) => c.done()));
        await waitFor(() => server.metrics().clients === 0, `round ${round}: every slot free (${server.metrics().clients} in use)`);
      }
      const m = server.metrics();
      const left = Object.values(m.left).reduce((a, b) => a + b, 0);
      assert.equal(m.admitted, 30, 'thirty admitted');
      assert.equal(left, 30, `thirty left, each counted once: ${JSON.stringify(m.left)}`);
      const again: TestClient[] = [];
      for (let i = 0; i < 10; i++) again.push(await joined(server));
      all.push(...again);
      assert.equal(server.metrics().clients, 10, 'exactly ten fit again');
      await refusedAsFull(server);
    } finally {
      await server.close();
      for (const c of all) c.close();
    }
  });

  it('keeps the others whole while one client stops reading, then disconnects it with RESOURCE_EXHAUSTED', async () => {
    const server = await startVoiceServer({ passcode: PASS, limits: { queueFrames: 64, stallMs: 1500 }, resetGraceMs: 500, logLevel: 'error' });
    const clients: TestClient[] = [];
    try {
      const a = await joined(server);
      const b = await joined(server);
      const stalled = await joined(server);
      clients.push(a, b, stalled);
      stalled.call.pause();
      let sent = 0;
      const frame = (i: number): Buffer => {
        const chunk = Buffer.alloc(1000, 0x2e);
        chunk.writeUInt32BE(i);
        return chunk;
      };
      // 125 frames/s: under the per-client rate limit (200/s), so every frame must reach b.
      const pacer = setInterval(() => a.send('alice', frame(sent++)), 8);
      try {
        await waitFor(() => server.metrics().left.stalled === 1, 'the stalled client to be disconnected', 60_000);
        const more = sent + 20;
        await waitFor(() => sent >= more, 'twenty more frames');
      } finally {
        clearInterval(pacer);
      }
      await waitFor(() => b.frames().length === sent, `b to get all ${sent} frames (has ${b.frames().length})`, 30_000);
      const order = b.received.filter((r) => r.message).map((r) => r.message!.msg!.chunk.readUInt32BE(0));
      assert.deepEqual(order, Array.from({ length: sent }, (_, i) => i), 'b got every frame, in order, none dropped');
      const m = server.metrics();
      assert.ok(m.framesDropped > 0, `the stalled client's frames were dropped and counted (${m.framesDropped})`);
      assert.equal(m.clients, 2, 'its slot is free');
      // Its call ends while it still reads nothing: the server reset the stream (the status itself cannot get
      // past the unread data), which pins the grpc-js internals the reset goes through.
      await waitFor(() => stalled.ended !== undefined, 'the stalled call to end while still paused');
      stalled.call.resume();
      const end = await stalled.done();
      assert.equal(end.code, grpc.status.RESOURCE_EXHAUSTED, `the stalled client ends with RESOURCE_EXHAUSTED, got ${grpc.status[end.code]}: ${end.details}`);
    } finally {
      await server.close();
      for (const c of clients) c.close();
    }
  });

  it('frees the slot of a client process killed with SIGKILL', async () => {
    const server = await startVoiceServer({ passcode: PASS, maxClients: 2, logLevel: 'error' });
    const clients: TestClient[] = [];
    let child: ChildProcess | undefined;
    try {
      const listener = await joined(server);
      clients.push(listener);
      ({ child } = await spawnFixture('server-child-client.ts', [server.address, PASS], 'stdout', /ready/));
      await waitFor(() => listener.frames().length >= 5, 'frames from the child');
      assert.equal(server.metrics().clients, 2, 'the child holds the second slot');
      await refusedAsFull(server);
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      await waitFor(() => server.metrics().clients === 1, 'the killed client\'s slot to be freed');
      clients.push(await joined(server));
      assert.equal(server.metrics().clients, 2, 'a new client took the freed slot');
    } finally {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await server.close();
      for (const c of clients) c.close();
    }
  });

  it('ends every client cleanly on close(), a stalled one too, and refuses calls afterwards', async () => {
    // Queues deep enough that the reading clients get all 300 frames of the burst below, whatever the timing.
    const server = await startVoiceServer({ passcode: PASS, resetGraceMs: 300, shutdownGraceMs: 2000, limits: { queueFrames: 1024 }, logLevel: 'error' });
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 3; i++) clients.push(await joined(server, { room: i === 2 ? 'other' : '' }));
      const stalled = await joined(server);
      clients.push(stalled);
      stalled.call.pause();
      // Enough to fill the stalled client's flow-control window, so its end of stream cannot get through.
      for (let i = 0; i < 300; i++) clients[0]!.send('alice', Buffer.alloc(1000, i));
      await waitFor(() => clients[1]!.frames().length === 300, 'the frames at a reading client');
      await server.close();
      for (const c of clients.slice(0, 3)) {
        const end = await c.done();
        assert.equal(end.code, grpc.status.OK, `a reading client sees a clean end of stream, got ${grpc.status[end.code]}: ${end.details}`);
        assert.deepEqual(end.metadata.get(END_REASON_KEY), ['shutdown'], 'with the reason in trailing metadata');
      }
      stalled.call.resume();
      const end = await stalled.done();
      assert.notEqual(end.code, grpc.status.OK, 'the stalled client is cut off instead');
      assert.equal(server.metrics().clients, 0, 'no slot held');
      const late = connect(server.address, { passcode: PASS });
      late.signal();
      assert.equal((await late.done()).code, grpc.status.UNAVAILABLE, 'no calls after close');
      clients.push(late);
    } finally {
      for (const c of clients) c.close();
    }
  });

  it('serve shuts down on SIGTERM: clients get a clean end of stream, the process exits 0', async () => {
    const { child, match } = await spawnFixture('server-child-serve.ts', ['serve', '--listen', '127.0.0.1:0', '--passcode', PASS], 'stderr', /listening on (\S+)/);
    const address = match[1]!;
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const c = connect(address, { passcode: PASS });
        c.signal();
        await waitFor(() => c.received.length === 1, 'the echo from serve');
        clients.push(c);
      }
      const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      for (const c of clients) {
        const end = await c.done();
        assert.equal(end.code, grpc.status.OK, `clean end of stream, got ${grpc.status[end.code]}: ${end.details}`);
      }
      assert.equal(await exit, 0, 'serve exits 0');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      for (const c of clients) c.close();
    }
  });
});
