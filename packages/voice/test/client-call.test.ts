// `voice call` end to end: real client processes (node --import tsx packages/voice/src/cli.ts call …) through a
// real relay on 127.0.0.1. Three speakers with espeak-ng voices: each output WAV holds the two others, in order,
// without gaps longer than the jitter buffer, and not its own. Then mute, a refused passcode, a full server,
// an unreachable one, and a server shut down mid-call.
//
// Thresholds are relative (correlations, level ratios), never durations: the stagger between speakers comes
// from silence in the input files, and the files are started with one `play` command each once all three
// clients are connected, so a slow machine shifts all voices alike. The machine is shared and may stall a
// process for a while: the jitter buffers are deeper than the default (200 ms) and hold up to 10 s, so a stall
// delays a voice instead of cutting it.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { startVoiceServer, type VoiceServer } from '../src/index.ts';
import { ExitCode } from '../src/client/call.ts';
import { FRAME_SAMPLES, SAMPLE_RATE } from '../src/client/opus.ts';
import { resample } from '../src/client/resample.ts';
import { encodeWav, parseWav, readWavFile } from '../src/client/wav.ts';
import { bestMatch, envelope, spawnCall } from './client-helpers.ts';
import { connect, waitFor } from './server-helpers.ts';

const PASSCODE = 'open sesame';
const JITTER_MS = 200;
/** 10 ms envelope windows at 48 kHz. */
const WINDOW = SAMPLE_RATE / 100;
const STAGGER_S = 3;

const hasEspeak = spawnSync('espeak-ng', ['--version']).status === 0;
const skipNoEspeak = hasEspeak ? false : 'espeak-ng is not installed (npm test installs it; or apt-get install espeak-ng)';

const dir = mkdtempSync(join(tmpdir(), 'voice-client-call-'));
// VOICE_TEST_KEEP=1 keeps the generated and recorded WAV files for listening.
after(() => (process.env.VOICE_TEST_KEEP === '1' ? console.log(`kept ${dir}`) : rmSync(dir, { recursive: true, force: true })));

interface Speaker {
  name: string;
  /** The sentence alone, at 48 kHz. */
  voice: Int16Array;
  /** The file played into the call: the sentence after `lead` seconds of silence. */
  file: string;
}

/** Speaks `text` with espeak-ng into a WAV file and returns it with `leadSeconds` of silence before it. */
function speak(name: string, text: string, voice: string, leadSeconds: number): Speaker {
  const raw = join(dir, `${name}-raw.wav`);
  const r = spawnSync('espeak-ng', ['-v', voice, '-w', raw, text]);
  assert.equal(r.status, 0, `espeak-ng ran: ${r.stderr}`);
  const audio = readWavFile(raw);
  const lead = new Int16Array(Math.round(audio.sampleRate * leadSeconds));
  const padded = new Int16Array(lead.length + audio.samples.length);
  padded.set(audio.samples, lead.length);
  const file = join(dir, `${name}.wav`);
  writeFileSync(file, encodeWav({ sampleRate: audio.sampleRate, samples: padded }));
  return { name, voice: resample(audio.samples, audio.sampleRate, SAMPLE_RATE), file };
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

function callArgs(server: VoiceServer, name: string, extra: string[]): string[] {
  return ['--server', server.address, '--name', name, '--passcode', PASSCODE, '--jitter-ms', String(JITTER_MS), '--jitter-max-ms', '10000', ...extra];
}

/** Where `needle` sits in `haystack` (10 ms windows) and how well it matches there. */
function locate(needle: Int16Array, haystack: Int16Array): { lag: number; r: number } {
  return bestMatch(envelope(needle, WINDOW), envelope(haystack, WINDOW));
}

/**
 * The longest run of 10 ms windows where the source voice is clearly sounding (over 10 % of its peak) but the
 * output, at the voice's position, is all but silent (under 1 % of that peak): audio that went missing.
 */
function longestGapMs(voice: Int16Array, out: Int16Array, lag: number): number {
  const src = envelope(voice, WINDOW);
  const got = envelope(out, WINDOW);
  const peak = Math.max(...src);
  let run = 0;
  let longest = 0;
  for (let i = 0; i < src.length; i++) {
    if (src[i] > 0.1 * peak && (got[lag + i] ?? 0) < 0.01 * peak) longest = Math.max(longest, ++run);
    else run = 0;
  }
  return longest * 10;
}

describe('three speakers through a real relay', { skip: skipNoEspeak }, () => {
  let server: VoiceServer;
  let speakers: Speaker[];
  const outputs = new Map<string, Int16Array>();
  const logs = new Map<string, string[]>();

  before(async () => {
    speakers = [
      // Alice too starts after a second of silence: the three clients are busy loading their files at first.
      speak('alice', 'Alice is here, hello everyone.', 'en+m3', 1),
      speak('bob', 'Bob speaking now, good afternoon.', 'en+f3', 1 + STAGGER_S),
      speak('carol', 'This is Carol, signing off, goodbye.', 'en-us+m5', 1 + 2 * STAGGER_S),
    ];
    for (const s of speakers) assert.ok(s.voice.length < STAGGER_S * SAMPLE_RATE, `${s.name}'s sentence is shorter than the stagger, so voices do not overlap`);
    server = await startVoiceServer({ port: 0, passcode: PASSCODE, maxClients: 10 });
    const procs = speakers.map((s) => spawnCall(callArgs(server, s.name, ['--no-mic', '--output', join(dir, `out-${s.name}.wav`)])));
    try {
      await Promise.all(procs.map((p) => p.line(/^connected to /)));
      for (const [i, p] of procs.entries()) p.command(`play ${speakers[i].file}`);
      await Promise.all(procs.map((p) => p.line(/^input ended/, 60_000)));
      // Every client has heard the others finish: each "is speaking" is matched by a "stopped speaking".
      for (const [i, p] of procs.entries()) {
        for (const other of speakers.filter((_, j) => j !== i)) {
          await waitFor(() => {
            const said = (what: string): number => p.lines().filter((l) => l === `${other.name} ${what}`).length;
            return said('is speaking') > 0 && said('is speaking') === said('stopped speaking');
          }, `${speakers[i].name} to hear ${other.name} finish`, 30_000);
        }
      }
      for (const p of procs) p.command('stop');
      const exits = await Promise.all(procs.map((p) => p.exited));
      for (const [i, e] of exits.entries()) {
        assert.equal(e.code, ExitCode.Ok, `${speakers[i].name} leaves with 0 after "stop"; stderr: ${e.stderr}`);
        logs.set(speakers[i].name, e.stdout.split('\n'));
        outputs.set(speakers[i].name, parseWav(readFileSync(join(dir, `out-${speakers[i].name}.wav`))).samples);
      }
    } finally {
      for (const p of procs) p.child.kill('SIGKILL');
      await server.close();
    }
  });

  test('each output holds the two other voices, in speaking order, and not its own', () => {
    const report: string[] = [];
    const at = new Map<string, number>(); // `${listener}/${speaker}` → lag in windows
    for (const listener of speakers) {
      const out = outputs.get(listener.name)!;
      for (const s of speakers) {
        if (s === listener) continue;
        const m = locate(s.voice, out);
        at.set(`${listener.name}/${s.name}`, m.lag);
        report.push(`${listener.name} hears ${s.name}: r=${m.r.toFixed(2)} at ${m.lag * 10} ms`);
        assert.ok(m.r >= 0.7, `${listener.name}'s output contains ${s.name}'s voice (envelope correlation ${m.r.toFixed(2)} ≥ 0.7)`);
      }
    }
    const [a, b, c] = ['alice', 'bob', 'carol'];
    assert.ok(at.get(`${a}/${b}`)! < at.get(`${a}/${c}`)!, 'alice hears bob before carol');
    assert.ok(at.get(`${b}/${a}`)! < at.get(`${b}/${c}`)!, 'bob hears alice before carol');
    assert.ok(at.get(`${c}/${a}`)! < at.get(`${c}/${b}`)!, 'carol hears alice before bob');
    // Where a listener's own voice would be in its output: the others' outputs tell how far it sits from a
    // voice the listener did hear. There the output must be silent next to the voices it holds.
    const own: Array<[string, string, string]> = [[a, b, c], [b, a, c], [c, a, b]]; // listener, other listener, voice both hear
    for (const [listener, other, both] of own) {
      const out = outputs.get(listener)!;
      const voice = speakers.find((s) => s.name === listener)!.voice;
      const start = (at.get(`${listener}/${both}`)! - (at.get(`${other}/${both}`)! - at.get(`${other}/${listener}`)!)) * WINDOW;
      const level = (x: Int16Array): number => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / Math.max(1, x.length));
      const ownWindow = out.subarray(Math.max(0, start), Math.max(0, start + voice.length));
      const heard = out.subarray(at.get(`${listener}/${both}`)! * WINDOW, at.get(`${listener}/${both}`)! * WINDOW + voice.length);
      const ratio = level(ownWindow) / level(heard);
      report.push(`${listener}'s own voice: level ${ratio.toFixed(3)} of the voice heard`);
      assert.ok(ratio <= 0.1, `${listener} does not hear itself (level where its voice would be: ${ratio.toFixed(3)} of ${both}'s, ≤ 0.1)`);
      const selfMatch = locate(voice, out);
      assert.ok(selfMatch.r <= 0.5 || Math.abs(selfMatch.lag * WINDOW - start) > voice.length, `${listener}'s voice is not found where it spoke (r ${selfMatch.r.toFixed(2)})`);
    }
    console.log(report.join('\n'));
  });

  test(`inside each voice no gap is longer than the jitter buffer (${JITTER_MS} ms)`, () => {
    for (const listener of speakers) {
      const out = outputs.get(listener.name)!;
      for (const s of speakers) {
        if (s === listener) continue;
        const { lag } = locate(s.voice, out);
        const gap = longestGapMs(s.voice, out, lag);
        assert.ok(gap <= JITTER_MS, `${listener.name} hears ${s.name} with no gap over ${JITTER_MS} ms (longest ${gap} ms)`);
      }
    }
  });

  test('each output is as long as the call: a frame of mix (or silence) per 20 ms tick', () => {
    for (const [name, out] of outputs) {
      assert.equal(out.length % FRAME_SAMPLES, 0, `${name}'s output is whole frames`);
      assert.ok(out.length > 2 * STAGGER_S * SAMPLE_RATE, `${name}'s output spans the whole conversation`);
      assert.ok(logs.get(name)!.some((l) => /^call ended: stopped; sent \d+ frames/.test(l)), `${name} prints its summary`);
    }
  });
});

describe('call control and failures', () => {
  let server: VoiceServer;
  before(async () => {
    server = await startVoiceServer({ port: 0, passcode: PASSCODE, maxClients: 2 });
  });
  after(() => server.close());

  test('mute: nothing is sent while muted, and the frame counter keeps running', { skip: skipNoEspeak }, async () => {
    const talker = speak('talker', 'One two three four five six seven eight nine ten, and again one two three four five six seven eight nine ten.', 'en', 0);
    const observer = connect(server.address, { passcode: PASSCODE });
    observer.signal();
    await waitFor(() => observer.received.some((r) => r.signal), 'the observer to be connected');
    const p = spawnCall(callArgs(server, 'talker', ['--input', talker.file, '--output', join(dir, 'talker-out.wav')]));
    try {
      const seqs = (): number[] => observer.received.filter((r) => r.message?.msg?.name === 'talker').map((r) => r.message!.msg!.seq);
      await waitFor(() => seqs().length >= 10, 'frames from the talker');
      p.command('mute');
      const muted = Number(/^muted at frame (\d+)$/.exec(await p.line(/^muted at frame/))![1]);
      const before = seqs().length;
      // A muted stretch of about half a second (any length would do: the check is on frame numbers).
      await new Promise((r) => setTimeout(r, 500));
      p.command('unmute');
      const unmuted = Number(/^unmuted at frame (\d+)$/.exec(await p.line(/^unmuted at frame/))![1]);
      await waitFor(() => seqs().some((s) => s > unmuted), 'frames after unmute');
      p.command('stop');
      const e = await p.exited;
      assert.equal(e.code, ExitCode.Ok, `the talker leaves with 0; stderr: ${e.stderr}`);
      const all = seqs();
      assert.ok(unmuted > muted, `the counter advanced while muted (${muted} → ${unmuted})`);
      assert.deepEqual(all.filter((s) => s > muted && s <= unmuted), [], `no frame captured while muted (${muted}, ${unmuted}] reached the others`);
      assert.ok(all.some((s) => s <= muted) && all.some((s) => s > unmuted), `frames before mute (${before}) and after unmute arrive`);
      for (let i = 1; i < all.length; i++) assert.ok(all[i] > all[i - 1], `frames arrive with increasing seq (${all[i - 1]} then ${all[i]})`);
    } finally {
      p.child.kill('SIGKILL');
      observer.call.cancel();
      observer.close();
    }
  });

  test('deafen: what is received is not played (the output stays silent), yet the call goes on', { skip: skipNoEspeak }, async () => {
    const talker = speak('loud', 'You should not hear this sentence.', 'en', 0);
    await waitFor(() => server.metrics().clients === 0, 'the earlier tests\' clients to be gone');
    const out = join(dir, 'deaf.wav');
    const listener = spawnCall(callArgs(server, 'deaf', ['--no-mic', '--output', out]));
    try {
      await listener.line(/^connected to /);
      listener.command('deafen');
      await listener.line(/^deafened$/);
      const e = await spawnCall(callArgs(server, 'loud', ['--input', talker.file, '--exit-on-eof', '--output', join(dir, 'loud-out.wav')])).exited;
      assert.equal(e.code, ExitCode.Ok, `the talker leaves with 0; stderr: ${e.stderr}`);
      await listener.line(/^loud stopped speaking$/);
      listener.command('stop');
      assert.equal((await listener.exited).code, ExitCode.Ok, 'the listener leaves with 0');
      const samples = parseWav(readFileSync(out)).samples;
      assert.ok(samples.length > talker.voice.length, 'the output spans the talk');
      assert.equal(samples.findIndex((v) => v !== 0), -1, 'and is all silence');
    } finally {
      listener.child.kill('SIGKILL');
    }
  });

  test('a wrong passcode ends with exit code 3 and says so; no output file is created', async () => {
    const out = join(dir, 'refused.wav');
    const e = await spawnCall(['--server', server.address, '--name', 'mallory', '--passcode', 'wrong', '--no-mic', '--output', out]).exited;
    assert.equal(e.code, ExitCode.Unauthenticated, `exit code 3; stderr: ${e.stderr}`);
    assert.match(e.stderr, /refused the passcode \(UNAUTHENTICATED/, 'the message names the cause');
    assert.equal(existsSync(out), false, 'nothing written');
  });

  test('a full server ends with exit code 4 and says so', async () => {
    await waitFor(() => server.metrics().clients === 0, 'the earlier tests\' clients to be gone');
    const held = [connect(server.address, { passcode: PASSCODE }), connect(server.address, { passcode: PASSCODE })];
    try {
      for (const h of held) h.signal();
      await waitFor(() => held.every((h) => h.received.some((r) => r.signal)), 'two clients holding both slots');
      const e = await spawnCall(callArgs(server, 'third', ['--no-mic', '--output', join(dir, 'full.wav')])).exited;
      assert.equal(e.code, ExitCode.ServerFull, `exit code 4; stderr: ${e.stderr}`);
      assert.match(e.stderr, /server is full \(RESOURCE_EXHAUSTED/, 'the message names the cause');
    } finally {
      for (const h of held) {
        h.call.cancel();
        h.close();
      }
    }
  });

  test('an unreachable server ends with exit code 5 and says so', async () => {
    const port = await freePort();
    const e = await spawnCall(['--server', `127.0.0.1:${port}`, '--name', 'x', '--passcode', PASSCODE, '--no-mic', '--output', join(dir, 'none.wav')]).exited;
    assert.equal(e.code, ExitCode.Unreachable, `exit code 5; stderr: ${e.stderr}`);
    assert.match(e.stderr, /cannot be reached/, 'the message names the cause');
  });

  test('--input with --exit-on-eof sends every frame of the file to its --room, then leaves with 0', { skip: skipNoEspeak }, async () => {
    const talker = speak('reader', 'Every frame of this sentence is counted.', 'en', 0);
    const frames = Math.ceil(talker.voice.length / FRAME_SAMPLES);
    await waitFor(() => server.metrics().clients === 0, 'the earlier tests\' clients to be gone');
    const observer = connect(server.address, { passcode: PASSCODE, room: 'library' });
    try {
      observer.signal();
      await waitFor(() => observer.received.some((r) => r.signal), 'the observer to be connected');
      const e = await spawnCall(callArgs(server, 'reader', ['--room', 'library', '--input', talker.file, '--exit-on-eof', '--output', join(dir, 'reader-out.wav')])).exited;
      assert.equal(e.code, ExitCode.Ok, `leaves with 0; stderr: ${e.stderr}`);
      assert.match(e.stdout, /^input ended: .*\ncall ended: input ended; sent (\d+) frames/m, 'says why it left');
      const got = (): number => observer.received.filter((r) => r.message?.msg?.name === 'reader').length;
      await waitFor(() => got() >= frames, `all ${frames} frames to reach the observer`, 10_000).catch(() => {});
      assert.equal(got(), frames, `the observer got every frame of the file (${frames})`);
    } finally {
      observer.call.cancel();
      observer.close();
    }
  });

  test('Ctrl+C (SIGINT) leaves cleanly: exit 0, the slot freed, the output WAV complete', async () => {
    await waitFor(() => server.metrics().clients === 0, 'the earlier tests\' clients to be gone');
    const out = join(dir, 'sigint.wav');
    const p = spawnCall(callArgs(server, 'leaver', ['--no-mic', '--output', out]));
    try {
      await p.line(/^connected to /);
      await waitFor(() => server.metrics().clients === 1, 'the client to be admitted');
      p.child.kill('SIGINT');
      const e = await p.exited;
      assert.equal(e.code, ExitCode.Ok, `exit 0 after SIGINT; stderr: ${e.stderr}`);
      assert.match(e.stdout, /SIGINT: leaving the call/, 'says it is leaving');
      await waitFor(() => server.metrics().clients === 0, 'the slot to be freed');
      const bytes = readFileSync(out);
      assert.equal(bytes.readUInt32LE(40), bytes.byteLength - 44, 'the WAV header holds the real data size');
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  test('no microphone or speaker program: exit code 7 and a message saying what to install or use', async () => {
    const empty = mkdtempSync(join(dir, 'empty-path-'));
    const env = { ...process.env, PATH: empty };
    const mic = await spawnCall(callArgs(server, 'nomic', ['--output', join(dir, 'nomic.wav')]), env).exited;
    assert.equal(mic.code, ExitCode.Audio, `exit code 7 without a capture program; stderr: ${mic.stderr}`);
    assert.match(mic.stderr, /no microphone program found: install arecord \(alsa-utils\) or sox, or use --input file.wav or --no-mic/, 'what to do');
    const speaker = await spawnCall(callArgs(server, 'nospeaker', ['--no-mic']), env).exited;
    assert.equal(speaker.code, ExitCode.Audio, `exit code 7 without a playback program; stderr: ${speaker.stderr}`);
    assert.match(speaker.stderr, /no speaker program found: install aplay \(alsa-utils\) or sox, or use --output file.wav/, 'what to do');
  });

  test('a usage error ends with exit code 2 and the usage', async () => {
    const e = await spawnCall(['--name', 'x']).exited;
    assert.equal(e.code, ExitCode.Usage, `exit code 2; stderr: ${e.stderr}`);
    assert.match(e.stderr, /--server HOST:PORT is required[\s\S]*usage: npm run voice -- call/, 'the message and the usage');
  });
});

test('--tls-ca: the call runs over TLS, trusting the given CA (a self-signed certificate from openssl)', { skip: spawnSync('openssl', ['version']).status === 0 ? false : 'no openssl' }, async () => {
  const key = join(dir, 'tls-key.pem');
  const cert = join(dir, 'tls-cert.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { encoding: 'utf8' });
  assert.equal(r.status, 0, `openssl made a certificate: ${r.stderr}`);
  const server = await startVoiceServer({ port: 0, passcode: PASSCODE, tls: { cert: readFileSync(cert), key: readFileSync(key) } });
  const p = spawnCall(callArgs(server, 'secure', ['--no-mic', '--output', join(dir, 'tls.wav'), '--tls-ca', cert]));
  try {
    await p.line(/^connected to /);
    await waitFor(() => server.metrics().clients === 1, 'the TLS client to be admitted');
    p.command('stop');
    assert.equal((await p.exited).code, ExitCode.Ok, 'leaves with 0');
    const plain = await spawnCall(callArgs(server, 'plain', ['--no-mic', '--output', join(dir, 'plain.wav')])).exited;
    assert.equal(plain.code, ExitCode.Unreachable, `without --tls-ca the TLS server cannot be talked to (exit 5); stderr: ${plain.stderr}`);
  } finally {
    p.child.kill('SIGKILL');
    await server.close();
  }
});

test('a server killed mid-call (SIGKILL): the client exits with code 6 and says the server went away', async () => {
  const serve = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../src/cli.ts', import.meta.url)), 'serve', '--listen', '127.0.0.1:0', '--passcode', PASSCODE], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  serve.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
  let p: ReturnType<typeof spawnCall> | undefined;
  try {
    await waitFor(() => /listening on (\S+)/.test(log), 'the relay process to listen', 30_000);
    const address = /listening on (\S+)/.exec(log)![1];
    const out = join(dir, 'killed.wav');
    p = spawnCall(['--server', address, '--name', 'orphan', '--passcode', PASSCODE, '--no-mic', '--output', out]);
    await p.line(/^connected to /);
    serve.kill('SIGKILL');
    const e = await p.exited;
    assert.equal(e.code, ExitCode.ServerGone, `exit code 6; stderr: ${e.stderr}`);
    assert.match(e.stderr, /the server ended the call \(UNAVAILABLE/, 'the message says the server went away');
    const bytes = readFileSync(out);
    assert.equal(bytes.readUInt32LE(40), bytes.byteLength - 44, 'the output WAV is closed properly');
  } finally {
    p?.child.kill('SIGKILL');
    serve.kill('SIGKILL');
  }
});

test('a server shut down mid-call: the client exits with code 6, its output WAV complete', async () => {
  const server = await startVoiceServer({ port: 0, passcode: PASSCODE });
  const out = join(dir, 'shutdown.wav');
  const p = spawnCall(callArgs(server, 'stayer', ['--no-mic', '--output', out]));
  try {
    await p.line(/^connected to /);
    await server.close();
    const e = await p.exited;
    assert.equal(e.code, ExitCode.ServerGone, `exit code 6; stderr: ${e.stderr}`);
    assert.match(e.stderr, /the server ended the call \(shutdown\)/, 'the message says the server shut down');
    const bytes = readFileSync(out);
    assert.equal(bytes.readUInt32LE(40), bytes.byteLength - 44, 'the WAV header holds the real data size (closed, not abandoned)');
    assert.equal(parseWav(bytes).samples.length % FRAME_SAMPLES, 0, 'whole frames of silence were written while connected');
  } finally {
    p.child.kill('SIGKILL');
    await server.close();
  }
});
