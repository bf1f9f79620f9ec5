// The client's pure pieces: WAV files, resampling, framing, the Opus wrapper, the jitter buffer (randomized,
// seeded: the seed is printed on failure), the mixer, the bounded queue, the command line.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Rng } from '@raftrtc/raft/testing';
import { parseCallArgs } from '../src/client/args.ts';
import OpusScript from 'opusscript';
import { findAudioCommand } from '../src/client/audio-io.ts';
import { FrameClock } from '../src/client/clock.ts';
import { FrameSlicer, framesOf } from '../src/client/frames.ts';
import { JitterBuffer, JitterOptionsError, type Pop } from '../src/client/jitter-buffer.ts';
import { KNEE, mix, softLimit } from '../src/client/mixer.ts';
import { CodecError, FRAME_SAMPLES, OpusDecoder, OpusEncoder, SAMPLE_RATE } from '../src/client/opus.ts';
import { SenderPlayout } from '../src/client/playout.ts';
import { BoundedQueue } from '../src/client/queue.ts';
import { resample } from '../src/client/resample.ts';
import { bestMatch, envelope } from './client-helpers.ts';
import { encodeWav, parseWav, WavFormatError, WavWriter } from '../src/client/wav.ts';
import { UsageError } from '../src/command-line.ts';

const dir = mkdtempSync(join(tmpdir(), 'voice-client-units-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `body` with a fresh seed; a failure names the seed so the case can be replayed. */
function seeded(body: (rng: Rng) => void): void {
  const seed = Number(process.env.VOICE_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
  try {
    body(new Rng(seed));
  } catch (err) {
    (err as Error).message = `[seed ${seed}, replay with VOICE_TEST_SEED=${seed}] ${(err as Error).message}`;
    throw err;
  }
}

function sine(freq: number, rate: number, seconds: number, amplitude = 10_000): Int16Array {
  const out = new Int16Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = Math.round(amplitude * Math.sin((2 * Math.PI * freq * i) / rate));
  return out;
}

function rms(x: ArrayLike<number>, fromAt = 0, toAt = x.length): number {
  const from = Math.floor(fromAt);
  const to = Math.floor(toAt);
  let s = 0;
  for (let i = from; i < to; i++) s += x[i] * x[i];
  return Math.sqrt(s / Math.max(1, to - from));
}

/** The frequency of a sine estimated from its zero crossings, away from the buffer's edges. */
function frequencyOf(x: Int16Array, rate: number): number {
  const from = Math.floor(x.length * 0.1);
  const to = Math.floor(x.length * 0.9);
  let first = -1;
  let last = -1;
  let crossings = 0;
  for (let i = from + 1; i < to; i++) {
    if (x[i - 1] < 0 && x[i] >= 0) {
      if (first < 0) first = i;
      else crossings++;
      last = i;
    }
  }
  return (crossings * rate) / (last - first);
}

describe('wav', () => {
  test('a file written then read gives the same samples and rate', () => {
    seeded((rng) => {
      const samples = Int16Array.from({ length: 1000 + rng.int(5000) }, () => rng.int(65536) - 32768);
      const back = parseWav(encodeWav({ sampleRate: 22050, samples }));
      assert.equal(back.sampleRate, 22050, 'the rate survives');
      assert.deepEqual(back.samples, samples, 'the samples survive');
    });
  });

  test('the streaming writer fixes the header sizes on close; before close the file reads to its end', () => {
    const path = join(dir, 'stream.wav');
    const w = new WavWriter(path, SAMPLE_RATE);
    const frames = framesOf(sine(440, SAMPLE_RATE, 0.1));
    for (const f of frames.slice(0, 3)) w.write(f);
    const unfinished = parseWav(readFileSync(path));
    assert.equal(unfinished.samples.length, 3 * FRAME_SAMPLES, 'an unclosed file (killed client) still holds what was written');
    for (const f of frames.slice(3)) w.write(f);
    w.close();
    w.close();
    const bytes = readFileSync(path);
    assert.equal(bytes.readUInt32LE(40), frames.length * FRAME_SAMPLES * 2, 'the data size is the real one');
    assert.equal(bytes.readUInt32LE(4), bytes.byteLength - 8, 'the RIFF size is the file size less 8');
    assert.equal(parseWav(bytes).samples.length, frames.length * FRAME_SAMPLES, 'all frames are read back');
  });

  test('stereo is averaged to mono; extra chunks are skipped', () => {
    const header = Buffer.from(encodeWav({ sampleRate: 8000, samples: new Int16Array(0) }));
    header.writeUInt16LE(2, 22);
    header.writeUInt16LE(4, 32);
    const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([3, 0, 0, 0]), Buffer.from('abc'), Buffer.from([0])]);
    const data = Buffer.alloc(8);
    data.writeInt16LE(100, 0);
    data.writeInt16LE(300, 2);
    data.writeInt16LE(-50, 4);
    data.writeInt16LE(-150, 6);
    const dataHeader = Buffer.from('data\x08\x00\x00\x00', 'latin1');
    const file = Buffer.concat([header.subarray(0, 36), list, dataHeader, data]);
    assert.deepEqual([...parseWav(file).samples], [200, -100], 'left and right are averaged');
  });

  test('what is not 16-bit PCM WAV is refused with a WavFormatError', () => {
    assert.throws(() => parseWav(Buffer.from('not a wav file at all')), WavFormatError, 'garbage');
    const eightBit = Buffer.from(encodeWav({ sampleRate: 8000, samples: new Int16Array(4) }));
    eightBit.writeUInt16LE(8, 34);
    assert.throws(() => parseWav(eightBit), /only 16/, '8-bit samples');
    const float = Buffer.from(encodeWav({ sampleRate: 8000, samples: new Int16Array(4) }));
    float.writeUInt16LE(3, 20);
    assert.throws(() => parseWav(float), /only integer PCM/, 'float samples');
    assert.throws(() => parseWav(encodeWav({ sampleRate: 8000, samples: new Int16Array(4) }).subarray(0, 30)), WavFormatError, 'truncated header');
  });
});

describe('resample', () => {
  test('a sine keeps its frequency and level converting to and from 48 kHz', () => {
    seeded((rng) => {
      for (const [from, to] of [[22050, 48000], [48000, 16000], [8000, 48000], [44100, 48000]]) {
        const freq = 200 + rng.int(Math.floor(Math.min(from, to) * 0.35) - 200);
        const src = sine(freq, from, 0.5);
        const out = resample(src, from, to);
        assert.equal(out.length, Math.floor((src.length * to) / from), `${from}→${to}: length scales with the rate`);
        const measured = frequencyOf(out, to);
        assert.ok(Math.abs(measured - freq) / freq < 0.01, `${from}→${to}: ${freq} Hz stays ${freq} Hz (measured ${measured.toFixed(1)})`);
        const level = rms(out, out.length * 0.1, out.length * 0.9) / rms(src, src.length * 0.1, src.length * 0.9);
        assert.ok(level > 0.97 && level < 1.03, `${from}→${to}: the level is kept (ratio ${level.toFixed(3)})`);
      }
    });
  });

  test('downsampling removes what the new rate cannot hold instead of aliasing it', () => {
    const tone = sine(10_000, SAMPLE_RATE, 0.5); // above the 8 kHz Nyquist of 16 kHz
    const out = resample(tone, SAMPLE_RATE, 16_000);
    const ratio = rms(out, out.length * 0.1, out.length * 0.9) / rms(tone);
    assert.ok(ratio < 0.01, `a 10 kHz tone is attenuated by more than 40 dB at 16 kHz (ratio ${ratio.toFixed(4)})`);
  });
});

describe('frames', () => {
  test('the slicer gives the same frames however the bytes are split (odd splits included)', () => {
    seeded((rng) => {
      const samples = Int16Array.from({ length: FRAME_SAMPLES * 7 }, () => rng.int(65536) - 32768);
      const bytes = Buffer.from(samples.buffer);
      const slicer = new FrameSlicer();
      const got: Int16Array[] = [];
      for (let at = 0; at < bytes.byteLength; ) {
        const n = 1 + rng.int(3000);
        got.push(...slicer.push(bytes.subarray(at, at + n)));
        at += n;
      }
      assert.deepEqual(got, framesOf(samples), 'seven whole frames, in order');
    });
  });

  test('the last partial frame of a file is padded with silence', () => {
    const frames = framesOf(new Int16Array(FRAME_SAMPLES + 10).fill(5));
    assert.equal(frames.length, 2, 'two frames');
    assert.equal(frames[1][9], 5, 'the partial frame keeps its samples');
    assert.equal(frames[1][10], 0, 'and is padded with zeros');
  });
});

describe('opus', () => {
  test('encoding and decoding keeps the signal (correlation with the source at the codec delay)', () => {
    // A voiced-speech-like signal: harmonics of a gliding pitch under a syllable-rate envelope.
    const n = SAMPLE_RATE;
    const src = new Int16Array(n);
    let phase = 0;
    for (let i = 0; i < n; i++) {
      const f0 = 120 + 40 * Math.sin((2 * Math.PI * i) / n);
      phase += (2 * Math.PI * f0) / SAMPLE_RATE;
      const env = 0.5 + 0.5 * Math.sin((2 * Math.PI * 4 * i) / SAMPLE_RATE);
      src[i] = Math.round(6000 * env * (Math.sin(phase) + 0.5 * Math.sin(2 * phase) + 0.3 * Math.sin(3 * phase)));
    }
    const enc = new OpusEncoder();
    const dec = new OpusDecoder();
    const out = new Int16Array(n);
    let bytes = 0;
    framesOf(src).forEach((f, i) => {
      const packet = enc.encode(f);
      bytes += packet.byteLength;
      out.set(dec.decode(packet), i * FRAME_SAMPLES);
    });
    let best = -1;
    for (let lag = 0; lag < 1000; lag++) {
      let s = 0;
      let a = 0;
      let b = 0;
      for (let i = 4800; i < n - 1000; i++) {
        s += src[i] * out[i + lag];
        a += src[i] * src[i];
        b += out[i + lag] * out[i + lag];
      }
      best = Math.max(best, s / Math.sqrt(a * b));
    }
    // Opus is perceptual: the waveform comes back close, not exact (0.84 measured for this signal at the default
    // bitrate); the 10 ms loudness envelope, which is what a listener follows, comes back almost exactly.
    assert.ok(best > 0.75, `decoded waveform correlates with the source (best ${best.toFixed(3)})`);
    const env = bestMatch(envelope(src.subarray(4800, n - 4800), 480), envelope(out, 480));
    assert.ok(env.r > 0.95, `decoded envelope matches the source (r ${env.r.toFixed(3)})`);
    assert.ok(bytes < src.byteLength / 8, `Opus compresses (${bytes} bytes for ${src.byteLength})`);
    assert.equal(dec.conceal().length, FRAME_SAMPLES, 'concealment gives one frame');
    assert.equal(dec.decode(enc.encode(framesOf(src)[3])).length, FRAME_SAMPLES, 'decoding goes on after concealment');
    assert.throws(() => dec.decode(new Uint8Array(0)), CodecError, 'an empty packet is refused');
    assert.throws(() => dec.decode(new Uint8Array(5000)), CodecError, 'an oversized packet is refused');
    assert.throws(() => enc.encode(new Int16Array(100)), CodecError, 'a frame of the wrong size is refused');
    enc.close();
    dec.close();
  });
});

function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('playout', () => {
  test('packets of 10, 20, 40 and 60 ms (seed senders) come out as 20 ms frames, at the right speed, in order', () => {
    for (const ms of [10, 20, 40, 60]) {
      const size = (SAMPLE_RATE * ms) / 1000;
      const src = sine(300, SAMPLE_RATE, 1.2, 8000);
      const opus = new OpusScript(SAMPLE_RATE, 1, OpusScript.Application.VOIP);
      const packets: Buffer[] = [];
      for (let at = 0; at + size <= src.length; at += size) packets.push(opus.encode(Buffer.from(src.buffer, at * 2, size * 2), size));
      opus.delete();
      const playout = new SenderPlayout('seed', { targetFrames: 3 });
      // Packets arrive in real time (packet i is complete at (i + 1)·ms), a 20 ms tick takes a frame.
      const out: Int16Array[] = [];
      let arrived = 0;
      for (let tick = 0; tick < 1000; tick++) {
        for (; arrived < packets.length && (arrived + 1) * ms <= (tick + 1) * 20; arrived++) playout.push(0, packets[arrived]); // a seed client sends no seq
        const frame = playout.next();
        if (frame) out.push(frame);
        else if (out.length > 0 && arrived === packets.length) break;
      }
      const played = out.length * FRAME_SAMPLES;
      const sent = packets.length * size;
      assert.ok(played >= sent && played <= sent + 3 * size + FRAME_SAMPLES, `${ms} ms packets: ${sent} samples sent, ${played} played (more: the concealed tail, three packets long, and padding)`);
      assert.deepEqual([playout.stats.concealed, playout.stats.stretched], [0, 3], `${ms} ms packets: nothing concealed but the tail`);
      const joined = new Int16Array(played);
      out.forEach((f, i) => joined.set(f, i * FRAME_SAMPLES));
      assert.ok(Math.abs(frequencyOf(joined.subarray(0, sent), SAMPLE_RATE) - 300) < 3, `${ms} ms packets play at the right speed (a 300 Hz tone stays 300 Hz)`);
      assert.equal(playout.stats.played, packets.length, `${ms} ms packets: every packet played`);
      playout.close();
    }
  });

  test('a lost packet is concealed for its duration; an undecodable one is counted and concealed', () => {
    const enc = new OpusEncoder();
    const frames = framesOf(sine(200, SAMPLE_RATE, 0.2));
    const playout = new SenderPlayout('x', { targetFrames: 1 });
    frames.forEach((f, i) => {
      const packet = enc.encode(f);
      if (i !== 4) playout.push(i + 1, i === 6 ? new Uint8Array(5000) : packet);
    });
    const out: Array<Int16Array | null> = [];
    for (let i = 0; i < frames.length; i++) out.push(playout.next());
    assert.ok(out.every((f) => f && f.length === FRAME_SAMPLES), 'one frame per tick, none missing');
    assert.equal(playout.stats.concealed, 1, 'the lost packet was concealed');
    assert.equal(playout.undecodable, 1, 'the oversized packet was counted');
    enc.close();
    playout.close();
  });
});

/** Feeds a jitter buffer from a simulated network and records what it plays. */
function simulate(
  rng: Rng,
  opts: { frames: number; target: number; maxDelay: number; loss: number; duplicate: number },
): { played: Array<Pop<number>>; lost: Set<number>; results: Array<{ seq: number; first: boolean; result: string }>; jb: JitterBuffer<number> } {
  const jb = new JitterBuffer<number>({ targetFrames: opts.target });
  const arrivals = new Map<number, number[]>();
  const lost = new Set<number>();
  const at = (tick: number, seq: number): void => void arrivals.set(tick, [...(arrivals.get(tick) ?? []), seq]);
  for (let seq = 1; seq <= opts.frames; seq++) {
    if (seq > 1 && seq < opts.frames && rng.chance(opts.loss)) {
      lost.add(seq);
      continue;
    }
    at(seq + rng.int(opts.maxDelay + 1), seq);
    if (rng.chance(opts.duplicate)) at(seq + rng.int(opts.maxDelay + 1), seq);
  }
  const played: Array<Pop<number>> = [];
  const results: Array<{ seq: number; first: boolean; result: string }> = [];
  const seen = new Set<number>();
  const last = opts.frames + opts.maxDelay + opts.target + 10;
  for (let tick = 1; tick <= last; tick++) {
    for (const seq of shuffled(rng, arrivals.get(tick) ?? [])) {
      results.push({ seq, first: !seen.has(seq), result: jb.push(seq, seq) });
      seen.add(seq);
    }
    played.push(jb.pop());
  }
  return { played, lost, results, jb };
}

describe('jitter buffer', () => {
  test('reordered, duplicated and lost frames within the jitter window: every frame plays once, in order, gaps concealed', () => {
    seeded((rng) => {
      for (let round = 0; round < 50; round++) {
        const target = 2 + rng.int(5);
        const { played, lost, results, jb } = simulate(rng, { frames: 200, target, maxDelay: target - 1, loss: 0.05, duplicate: 0.1 });
        for (const r of results) {
          if (r.first) assert.equal(r.result, 'accepted', `round ${round}: frame ${r.seq} arriving within the window is accepted`);
          else assert.notEqual(r.result, 'accepted', `round ${round}: a second copy of ${r.seq} is not accepted`);
        }
        const audible = played.filter((p) => p.kind === 'frame' || p.kind === 'conceal') as Array<Extract<Pop<number>, { seq: number }>>;
        const seqs = audible.map((p) => p.seq);
        for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1, `round ${round}: played seqs run without holes (${seqs[i - 1]} then ${seqs[i]})`);
        for (const p of audible) {
          if (p.kind === 'frame') assert.equal(p.payload, p.seq, `round ${round}: frame ${p.seq} carries its own payload`);
          else if (p.seq <= 200) assert.ok(lost.has(p.seq), `round ${round}: only lost frames are concealed (${p.seq} was not lost)`);
        }
        const framesPlayed = audible.filter((p) => p.kind === 'frame').length;
        assert.equal(framesPlayed, 200 - lost.size, `round ${round}: every frame that arrived played`);
        assert.equal(jb.stats.late, results.filter((r) => r.result === 'late').length, `round ${round}: late frames are counted`);
      }
    });
  });

  test('frames later than the jitter window are dropped as late, never played out of order', () => {
    seeded((rng) => {
      for (let round = 0; round < 50; round++) {
        const target = 1 + rng.int(4);
        const { played, results, jb } = simulate(rng, { frames: 200, target, maxDelay: target + 1 + rng.int(10), loss: 0.05, duplicate: 0.1 });
        const seqs = played.filter((p) => p.kind === 'frame' || p.kind === 'conceal').map((p) => (p as { seq: number }).seq);
        for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `round ${round}: played seqs increase (${seqs[i - 1]} then ${seqs[i]})`);
        const playedFrames = played.filter((p) => p.kind === 'frame').map((p) => (p as { seq: number }).seq);
        assert.equal(new Set(playedFrames).size, playedFrames.length, `round ${round}: no frame plays twice`);
        const s = jb.stats;
        assert.equal(s.accepted, s.played + s.overflowed + jb.size, `round ${round}: every accepted frame is played or overflowed (${JSON.stringify(s)})`);
        assert.equal(s.accepted + s.late + s.duplicates, results.length, `round ${round}: every arrival is accounted for`);
      }
    });
  });

  test('a dry buffer waits for the frame due (stretch) instead of giving it up', () => {
    const jb = new JitterBuffer<number>({ targetFrames: 2, concealFrames: 3 });
    jb.push(1, 1);
    jb.push(2, 2);
    assert.deepEqual([jb.pop(), jb.pop()].map((p) => p.kind), ['frame', 'frame'], 'frames 1 and 2 play');
    assert.deepEqual([jb.pop(), jb.pop()].map((p) => p.kind), ['stretch', 'stretch'], 'frame 3 is late: the wait is bridged');
    assert.equal(jb.push(3, 3), 'accepted', 'frame 3 arriving late is still taken');
    jb.push(4, 4);
    const next = [jb.pop(), jb.pop()];
    assert.deepEqual(next.map((p) => p.kind === 'frame' && p.seq), [3, 4], 'and played, in order');
    assert.equal(jb.stats.late + jb.stats.concealed, 0, 'nothing dropped, nothing lost');
  });

  test('after the sender goes quiet it bridges a short tail, goes idle, and a jump in seq (mute) is not a loss', () => {
    const jb = new JitterBuffer<number>({ targetFrames: 3, concealFrames: 2 });
    for (let seq = 1; seq <= 5; seq++) jb.push(seq, seq);
    const kinds = Array.from({ length: 10 }, () => jb.pop().kind);
    assert.deepEqual(kinds, ['frame', 'frame', 'frame', 'frame', 'frame', 'stretch', 'stretch', 'idle', 'idle', 'idle'], 'five frames, two bridged, then idle');
    assert.equal(jb.push(4, 4), 'late', 'a frame from before the silence is late');
    jb.push(500, 500);
    jb.push(501, 501);
    const after = Array.from({ length: 5 }, () => jb.pop());
    assert.deepEqual(after.map((p) => p.kind), ['idle', 'idle', 'frame', 'frame', 'stretch'], 'primes for the target depth, then plays 500 and 501 without concealing 6..499');
    assert.equal(jb.stats.concealed, 0, 'no concealment for the muted stretch');
    assert.equal(jb.stats.resets, 1, 'one reset');
  });

  test('seq 0 (senders built from the seed) plays in arrival order', () => {
    const jb = new JitterBuffer<string>({ targetFrames: 1 });
    for (const p of ['a', 'b', 'c']) jb.push(0, p);
    const got = [jb.pop(), jb.pop(), jb.pop()].map((p) => (p.kind === 'frame' ? p.payload : p.kind));
    assert.deepEqual(got, ['a', 'b', 'c'], 'arrival order');
  });

  test('a burst beyond the maximum drops the oldest; a gap wider than maxGapFrames is skipped, not concealed', () => {
    const jb = new JitterBuffer<number>({ targetFrames: 2, maxFrames: 4, maxGapFrames: 3 });
    for (let seq = 1; seq <= 6; seq++) jb.push(seq, seq);
    assert.equal(jb.stats.overflowed, 2, 'frames 1 and 2 are dropped');
    assert.equal(jb.push(2, 2), 'late', 'a dropped frame arriving again is late');
    assert.deepEqual([jb.pop(), jb.pop()].map((p) => (p as { seq: number }).seq), [3, 4], 'plays from the oldest kept');
    jb.push(20, 20);
    jb.pop();
    jb.pop();
    const next = jb.pop();
    assert.equal(next.kind === 'frame' && next.seq, 20, 'jumps over 7..19');
    assert.equal(jb.stats.skipped, 13, 'the skipped frames are counted');
    assert.throws(() => new JitterBuffer({ targetFrames: 0 }), JitterOptionsError, 'a zero depth is refused');
    assert.throws(() => new JitterBuffer({ targetFrames: 5, maxFrames: 2 }), JitterOptionsError, 'a maximum below the target is refused');
  });
});

describe('mixer', () => {
  test('one speaker passes unchanged; any sum stays in range, equals the plain sum below the knee, and keeps its order', () => {
    seeded((rng) => {
      const one = Int16Array.from({ length: FRAME_SAMPLES }, () => rng.int(65536) - 32768);
      assert.deepEqual(mix([one]), one, 'a single frame is copied as is');
      assert.deepEqual(mix([]), new Int16Array(FRAME_SAMPLES), 'no speaker is silence');
      for (let round = 0; round < 20; round++) {
        const frames = Array.from({ length: 2 + rng.int(8) }, () => Int16Array.from({ length: FRAME_SAMPLES }, () => rng.int(65536) - 32768));
        const out = mix(frames);
        for (let i = 0; i < FRAME_SAMPLES; i++) {
          const sum = frames.reduce((s, f) => s + f[i], 0);
          assert.ok(out[i] <= 32767 && out[i] >= -32767, `sample ${i} in range`);
          if (Math.abs(sum) <= KNEE) assert.equal(out[i], sum, `sample ${i}: a sum below the knee is exact`);
          assert.equal(Math.sign(out[i]), Math.sign(sum), `sample ${i}: the sign is kept`);
        }
      }
      let prev = -Infinity;
      for (let x = -200_000; x <= 200_000; x += 97) {
        const y = softLimit(x);
        assert.ok(y >= prev && Math.abs(y) < 32767.5, `the limiter is monotonic and bounded at ${x}`);
        prev = y;
      }
    });
  });
});

describe('frame clock', () => {
  test('ticks are due at start + 20·k on the clock it is given: missed ones are caught up, beyond maxCatchUp skipped', async () => {
    let now = 1000;
    const ticks: number[] = [];
    const clock = new FrameClock((k) => ticks.push(k), { now: () => now, maxCatchUp: 10 });
    clock.start();
    assert.deepEqual(ticks, [0], 'the first tick runs at once');
    now += 105; // five periods later (and a bit): ticks 1..5 are due
    await waitUntil(() => ticks.length >= 6);
    assert.deepEqual(ticks, [0, 1, 2, 3, 4, 5], 'every missed tick runs, in order');
    now += 20 * 100; // a long stall: 100 more are due, only the last 10 (+ the one due now) run
    await waitUntil(() => ticks.at(-1) === 105);
    assert.deepEqual(ticks.slice(6), [95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 105], 'the clock realigns past maxCatchUp');
    clock.stop();
    const count = ticks.length;
    now += 1000;
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(ticks.length, count, 'nothing runs after stop');
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 5));
}

describe('bounded queue', () => {
  test('drops the oldest when full, counts drops, hands the rest out after close', async () => {
    const q = new BoundedQueue<number>(3);
    for (let i = 1; i <= 5; i++) q.push(i);
    assert.equal(q.dropped, 2, 'two dropped');
    q.close();
    q.push(6);
    const got = [await q.shift(), await q.shift(), await q.shift(), await q.shift()];
    assert.deepEqual(got, [3, 4, 5, undefined], 'the newest three, then the end');
    const w = new BoundedQueue<string>(1);
    const pending = w.shift();
    w.push('x');
    assert.equal(await pending, 'x', 'a waiting consumer gets the item');
    assert.throws(() => new BoundedQueue(0), RangeError, 'a zero capacity is refused');
  });
});

describe('command line and devices', () => {
  test('call options are parsed and checked', () => {
    const ok = parseCallArgs(['call', '--server', '127.0.0.1:50051', '--name', 'alice', '--passcode', 'p', '--input', 'a.wav', '--jitter-ms', '80', '--duration', '2.5']);
    assert.equal(ok.jitterMs, 80, 'jitter');
    assert.equal(ok.durationMs, 2500, 'duration in ms');
    assert.equal(parseCallArgs(['--server', 'h:1', '--name', 'n'], { VOICE_PASSCODE: 'env' }).passcode, 'env', 'passcode from the environment');
    const bad: Array<[string[], RegExp]> = [
      [['--name', 'a', '--passcode', 'p'], /--server/],
      [['--server', 'nohost', '--name', 'a', '--passcode', 'p'], /HOST:PORT/],
      [['--server', 'h:1', '--passcode', 'p'], /--name/],
      [['--server', 'h:1', '--name', 'x'.repeat(65), '--passcode', 'p'], /--name/],
      [['--server', 'h:1', '--name', 'a'], /passcode/],
      [['--server', 'h:1', '--name', 'a', '--passcode', 'p', '--jitter-ms', '50'], /multiple of 20/],
      [['--server', 'h:1', '--name', 'a', '--passcode', 'p', '--input', 'a.wav', '--no-mic'], /exclude/],
      [['--server', 'h:1', '--name', 'a', '--passcode', 'p', '--exit-on-eof'], /needs --input/],
      [['--server', 'h:1', '--name', 'a', '--passcode', 'p', '--bogus'], /bogus/],
    ];
    for (const [args, message] of bad) assert.throws(() => parseCallArgs(args, {}), (e: unknown) => e instanceof UsageError && message.test(e.message), `refused: ${args.join(' ')}`);
  });

  test('the first installed audio program is chosen; none installed is null', () => {
    assert.equal(findAudioCommand('capture', (p) => p === 'arecord' || p === 'sox')?.program, 'arecord', 'arecord first');
    assert.equal(findAudioCommand('playback', (p) => p === 'sox')?.program, 'sox', 'sox when it is all there is');
    assert.equal(findAudioCommand('playback', () => false), null, 'nothing installed');
  });
});
