/**
 * The voice relay's protocol over a real grpc-js server on 127.0.0.1 with real grpc-js clients: the
 * connection test, forwarding and rooms, the passcode, frame validation, wire compatibility with the
 * seed's own proto, TLS, metrics and the `serve` command line. Leaving, stalls, kills and shutdown are in
 * server-lifecycle.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { calling, loadCallingProto, parseServeArgs, startVoiceServer, UsageError, VOIP_PATH, type ClientREQ, type ServerRES, type VoiceServer } from '../src/index.js';
import { connect, waitFor, type TestClient } from './server-helpers.js';

const PASS = 'correct horse';

/** The seed's proto exactly as published (../shared/seeds/002_5e8f19ac2cb857e5.txt §ii). */
const SEED_PROTO = `syntax = "proto3";
option go_package="/protobuf";
//one server, many clients....

message ClientMSG {
    bytes chunk = 1;
    string name = 2;
}
message ClientSignal{}
message ClientREQ{
    oneof request{
        ClientMSG message =1;
        ClientSignal signal =2;
    }
}
message ServerMSG{
    ClientMSG msg = 1;
    string id = 2;    
}
message ServerSignal{}
message ServerRES{
    oneof response{
        ServerMSG message =1;
        ServerSignal signal =2;
    }
}

service Calling {
    rpc VoIP (stream ClientREQ) returns (stream ServerRES);
}
`;

/** Connects and completes the connection test (signal echoed), so the client is surely admitted. */
async function joined(server: VoiceServer, options: Parameters<typeof connect>[1] = {}): Promise<TestClient> {
  const c = connect(server.address, { passcode: PASS, ...options });
  c.signal();
  await waitFor(() => c.received.some((r) => r.signal) || c.ended !== undefined, 'the signal echo');
  assert.equal(c.ended, undefined, `the call is up (ended: ${JSON.stringify(c.ended)})`);
  return c;
}

describe('voice server: protocol', () => {
  let server: VoiceServer;
  const logs: string[] = [];
  const clients: TestClient[] = [];
  const track = (c: TestClient): TestClient => (clients.push(c), c);

  before(async () => {
    server = await startVoiceServer({ passcode: PASS, limits: { maxConsecutiveMalformed: 20 }, logWrite: (line) => logs.push(line) });
  });
  after(async () => {
    await server.close();
    for (const c of clients) c.close();
  });

  it('echoes the first signal as a ServerSignal', async () => {
    const a = track(connect(server.address, { passcode: PASS }));
    a.signal();
    await waitFor(() => a.received.length === 1, 'one response');
    assert.deepEqual(a.received[0], { signal: {}, response: 'signal' }, 'a ServerSignal, nothing else');
    a.call.end();
    assert.equal((await a.done()).code, grpc.status.OK, 'half-closing ends the call with OK');
  });

  it('forwards each frame to every other client of its room, with the sender id, never back to the sender', async () => {
    const a = track(await joined(server, { room: 'r1' }));
    const b = track(await joined(server, { room: 'r1' }));
    const c = track(await joined(server, { room: 'r1' }));
    const other = track(await joined(server, { room: 'r2' }));
    const lobby = track(await joined(server));
    for (let i = 0; i < 5; i++) {
      a.send('alice', `a${i}`, i + 1);
      b.send('bob', `b${i}`, i + 1);
    }
    other.send('olga', 'o0');
    lobby.send('lou', 'l0');
    await waitFor(() => c.frames().length === 10, 'c to get 10 frames');
    await waitFor(() => a.frames().length === 5 && b.frames().length === 5, 'a and b to get 5 each');
    assert.deepEqual(a.frames(), ['bob:b0', 'bob:b1', 'bob:b2', 'bob:b3', 'bob:b4'], 'a hears b only, in order');
    assert.deepEqual(b.frames(), ['alice:a0', 'alice:a1', 'alice:a2', 'alice:a3', 'alice:a4'], 'b hears a only, in order');
    assert.deepEqual(c.frames().filter((f) => f.startsWith('alice')), ['alice:a0', 'alice:a1', 'alice:a2', 'alice:a3', 'alice:a4'], 'c hears a in order');
    const idsAtC = new Set(c.received.filter((r) => r.message).map((r) => `${r.message!.msg!.name}=${r.message!.id}`));
    assert.equal(idsAtC.size, 2, `one id per sender: ${[...idsAtC].join(' ')}`);
    const seqs = c.received.filter((r) => r.message?.msg?.name === 'bob').map((r) => r.message!.msg!.seq);
    assert.deepEqual(seqs, [1, 2, 3, 4, 5], 'seq goes through');
    // The other rooms' frames went nowhere: give them the time a frame in the same room took, and more.
    a.send('alice', 'marker');
    await waitFor(() => c.frames().includes('alice:marker'), 'the marker');
    assert.deepEqual(other.frames(), [], 'room r2 hears nothing of r1 (and olga is alone)');
    assert.deepEqual(lobby.frames(), [], 'the default room hears nothing of r1');
    assert.ok(!c.frames().some((f) => f.startsWith('olga') || f.startsWith('lou')), 'r1 hears nothing of the other rooms');
    for (const t of [a, b, c, other, lobby]) t.call.end();
    await Promise.all([a, b, c, other, lobby].map((t) => t.done()));
    await waitFor(() => server.metrics().clients === 0, 'every slot free again');
  });

  it('refuses a wrong or missing passcode with UNAUTHENTICATED', async () => {
    const wrong = track(connect(server.address, { passcode: 'correct horse!' }));
    const missing = track(connect(server.address));
    wrong.signal();
    missing.signal();
    const [w, m] = await Promise.all([wrong.done(), missing.done()]);
    assert.equal(w.code, grpc.status.UNAUTHENTICATED, `wrong passcode: ${w.details}`);
    assert.equal(m.code, grpc.status.UNAUTHENTICATED, `missing passcode: ${m.details}`);
    assert.match(m.details, /missing passcode/, 'the missing case says so');
    assert.deepEqual(wrong.received, [], 'no echo for a refused call');
    assert.equal(server.metrics().clients, 0, 'no slot taken');
    assert.equal(server.metrics().refused.UNAUTHENTICATED, 2, 'both refusals counted');
  });

  it('refuses a room name over 64 characters with INVALID_ARGUMENT', async () => {
    const long = track(connect(server.address, { passcode: PASS, room: 'r'.repeat(65) }));
    long.signal();
    const end = await long.done();
    assert.equal(end.code, grpc.status.INVALID_ARGUMENT, `status ${grpc.status[end.code]}: ${end.details}`);
    const ok = track(await joined(server, { room: 'r'.repeat(64) }));
    ok.call.end();
    await ok.done();
  });

  it('drops and counts malformed frames, keeps the stream up, and forwards the valid ones', async () => {
    const a = track(await joined(server, { room: 'm' }));
    const b = track(await joined(server, { room: 'm' }));
    const before = server.metrics().malformed;
    a.call.write({});
    a.send('alice', Buffer.alloc(0));
    a.send('alice', Buffer.alloc(4001, 7));
    a.send('', 'no name');
    a.send('x'.repeat(65), 'long name');
    // Bytes that are no ClientREQ at all, on a second call sent raw.
    const raw = new grpc.Client(server.address, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set('passcode', PASS);
    md.set('room', 'm');
    const rawCall = raw.makeBidiStreamRequest(VOIP_PATH, (b: Buffer) => b, calling.service.VoIP!.responseDeserialize as (b: Buffer) => ServerRES, md);
    const rawGot: ServerRES[] = [];
    let rawStatus: grpc.StatusObject | undefined;
    rawCall.on('data', (r: ServerRES) => rawGot.push(r));
    rawCall.on('error', () => {});
    rawCall.on('status', (s: grpc.StatusObject) => (rawStatus = s));
    rawCall.write(Buffer.from([0xff, 0xff, 0xff]));
    rawCall.write(Buffer.from([0x0a, 0x05, 0x01]));
    rawCall.write(calling.service.VoIP!.requestSerialize({ signal: {} }));
    await waitFor(() => rawGot.some((r) => r.signal), 'the raw call\'s echo after its garbage');
    a.send('alice', 'valid', 9);
    a.signal();
    await waitFor(() => b.frames().length === 1, 'the valid frame at b');
    await waitFor(() => a.received.filter((r) => r.signal).length === 2, 'a second echo to a');
    assert.deepEqual(b.frames(), ['alice:valid'], 'only the valid frame reached b');
    assert.equal(server.metrics().malformed - before, 7, 'five malformed from a, two undecodable from the raw call');
    assert.equal(a.ended, undefined, 'a is still connected');
    assert.equal(rawStatus, undefined, 'the raw call is still up');
    rawCall.end();
    raw.close();
    a.call.end();
    b.call.end();
  });

  it('disconnects a client that sends only garbage, with INVALID_ARGUMENT', async () => {
    const a = track(await joined(server));
    for (let i = 0; i < 20; i++) a.call.write({});
    const end = await a.done();
    assert.equal(end.code, grpc.status.INVALID_ARGUMENT, `status ${grpc.status[end.code]}: ${end.details}`);
    assert.match(end.details, /malformed/, 'the details say why');
    const line = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'client disconnected');
    assert.equal(line?.level, 'warn', `one structured warning: ${logs.join('\n')}`);
    assert.equal(line?.reason, 'malformed', 'it gives the reason');
  });

  it('drops and counts a sender\'s frames over its rate, and only its own', async () => {
    const limited = await startVoiceServer({ passcode: PASS, limits: { maxFramesPerSecond: 1, frameBurst: 5 }, logLevel: 'error' });
    try {
      const a = await joined(limited);
      const b = await joined(limited);
      for (let i = 0; i < 20; i++) a.send('alice', `a${i}`);
      b.send('bob', 'b0');
      await waitFor(() => limited.metrics().framesIn + limited.metrics().rateLimited === 21, 'all 21 frames seen by the server');
      await waitFor(() => a.frames().length === 1, 'b\'s frame at a (bob has a bucket of his own)');
      const dropped = limited.metrics().rateLimited;
      // At 1 frame/s, only a stall of over 15 s between alice's writes could refill enough to pass them all.
      assert.ok(dropped > 0, 'frames over the rate were dropped and counted');
      await waitFor(() => b.frames().length === 20 - dropped, `the ${20 - dropped} frames that passed at b`);
      assert.deepEqual(b.frames().slice(0, 5), ['alice:a0', 'alice:a1', 'alice:a2', 'alice:a3', 'alice:a4'], 'the first five (the burst) went through');
      assert.equal(a.ended, undefined, 'the sender stays connected');
      a.close();
      b.close();
    } finally {
      await limited.close();
    }
  });

  it('talks to a client built from the seed\'s proto exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'voice-seed-'));
    try {
      writeFileSync(join(dir, 'calling.proto'), SEED_PROTO);
      const seed = loadCallingProto(join(dir, 'calling.proto'));
      const s = track(await joined(server, { proto: seed, room: 'seed' }));
      const ours = track(await joined(server, { room: 'seed' }));
      assert.deepEqual(s.received[0], { signal: {}, response: 'signal' }, 'the seed client\'s connection test passes');
      // The seed's ClientMSG has no seq: this is exactly what its Go client puts on the wire.
      s.call.write({ message: { chunk: Buffer.from('from-seed'), name: 'go' } } as ClientREQ);
      ours.send('ts', 'from-ours', 77);
      await waitFor(() => ours.frames().length === 1 && s.frames().length === 1, 'one frame each way');
      assert.deepEqual(ours.frames(), ['go:from-seed'], 'ours hears the seed client');
      assert.equal(ours.received.find((r) => r.message)!.message!.msg!.seq, 0, 'seq is 0 from a seed client');
      assert.deepEqual(s.frames(), ['ts:from-ours'], 'the seed client hears ours (seq skipped as unknown)');
      assert.match(s.received.find((r) => r.message)!.message!.id, /^[0-9a-f-]{36}$/, 'the sender id is a UUID, like the seed\'s');
      s.call.end();
      ours.call.end();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves Prometheus metrics over HTTP', async () => {
    const m = await startVoiceServer({ passcode: PASS, metrics: { port: 0 } });
    try {
      assert.ok(m.metricsUrl, 'a metrics URL');
      const a = await joined(m);
      const b = await joined(m);
      a.send('alice', 'x');
      await waitFor(() => b.frames().length === 1, 'the frame');
      const res = await fetch(m.metricsUrl!);
      const text = await res.text();
      assert.equal(res.status, 200, 'GET /metrics is 200');
      assert.match(text, /^raftrtc_voice_clients 2$/m, 'two clients');
      assert.match(text, /^raftrtc_voice_frames_received_total 1$/m, 'one frame in');
      assert.match(text, /^raftrtc_voice_forward_latency_seconds_count \d+$/m, 'the latency histogram');
      assert.match(text, /^raftrtc_voice_frames_dropped_total 0$/m, 'nothing dropped');
      assert.equal((await fetch(m.metricsUrl!.replace('/metrics', '/other'))).status, 404, 'other paths are 404');
      a.close();
      b.close();
    } finally {
      await m.close();
    }
  });

  it('serves TLS with --tls-cert/--tls-key (self-signed by openssl)', async (t) => {
    if (spawnSync('which', ['openssl']).status !== 0) return t.skip('no openssl');
    const dir = mkdtempSync(join(tmpdir(), 'voice-tls-'));
    try {
      const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { encoding: 'utf8' });
      assert.equal(r.status, 0, `openssl made a certificate: ${r.stderr}`);
      const opts = parseServeArgs(['serve', '--listen', '127.0.0.1:0', '--passcode', PASS, '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')]);
      const tls = await startVoiceServer(opts);
      try {
        // The certificate names localhost; TLS does not send an IP address as the server name.
        const secureOptions = { credentials: grpc.credentials.createSsl(readFileSync(join(dir, 'cert.pem'))), channelOptions: { 'grpc.ssl_target_name_override': 'localhost' } };
        const secure = await joined(tls, secureOptions);
        const second = await joined(tls, secureOptions);
        secure.send('alice', 'over tls');
        await waitFor(() => second.frames().length === 1, 'the frame over TLS');
        assert.deepEqual(second.frames(), ['alice:over tls'], 'forwarded over TLS');
        const plain = connect(tls.address, { passcode: PASS, channelOptions: { 'grpc.initial_reconnect_backoff_ms': 100 } });
        plain.call.write({ signal: {} });
        const end = await plain.done();
        assert.equal(end.code, grpc.status.UNAVAILABLE, `a plaintext client cannot talk to the TLS server: ${end.details}`);
        for (const c of [secure, second, plain]) c.close();
      } finally {
        await tls.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('voice server: options and command line', () => {
  it('parses serve flags, with the passcode from VOICE_PASSCODE', () => {
    const o = parseServeArgs(['serve', '--listen', '[::1]:7000', '--max-clients', '3', '--metrics', '127.0.0.1:9464', '--stall-ms', '900'], { VOICE_PASSCODE: 'env-pass' });
    assert.equal(o.host, '::1', 'IPv6 host');
    assert.equal(o.port, 7000, 'port');
    assert.equal(o.passcode, 'env-pass', 'passcode from the environment');
    assert.equal(o.maxClients, 3, 'max clients');
    assert.deepEqual(o.metrics, { host: '127.0.0.1', port: 9464 }, 'metrics address');
    assert.deepEqual(o.limits, { stallMs: 900 }, 'stall limit');
    assert.equal(parseServeArgs(['--passcode', 'p'], {}).port, 50051, 'the default port, without the leading "serve"');
  });

  const bad: Array<[string, string[]]> = [
    ['no passcode', ['serve']],
    ['an unknown flag', ['serve', '--passcode', 'p', '--bogus']],
    ['a listen address without a port', ['serve', '--passcode', 'p', '--listen', 'localhost']],
    ['a port out of range', ['serve', '--passcode', 'p', '--listen', '127.0.0.1:70000']],
    ['zero clients', ['serve', '--passcode', 'p', '--max-clients', '0']],
    ['a certificate without a key', ['serve', '--passcode', 'p', '--tls-cert', 'c.pem']],
    ['an unreadable certificate', ['serve', '--passcode', 'p', '--tls-cert', '/nonexistent/c.pem', '--tls-key', '/nonexistent/k.pem']],
    ['an unknown log level', ['serve', '--passcode', 'p', '--log', 'loud']],
    ['a stray positional', ['serve', '--passcode', 'p', 'extra']],
  ];
  for (const [what, argv] of bad) {
    it(`rejects ${what} with a UsageError`, () => {
      assert.throws(() => parseServeArgs(argv, {}), UsageError, what);
    });
  }

  it('rejects an empty passcode and a bad port when started programmatically', async () => {
    await assert.rejects(startVoiceServer({ passcode: '' }), RangeError, 'empty passcode');
    await assert.rejects(startVoiceServer({ passcode: 'p', port: -1 }), RangeError, 'negative port');
    await assert.rejects(startVoiceServer({ passcode: 'p', limits: { queueFrames: 0 } }), RangeError, 'zero queue');
  });
});
