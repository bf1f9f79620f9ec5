/**
 * One voice call: the connection test, then two pipelines decoupled by bounded queues (as in the seed, whose
 * stages are goroutines joined by buffered channels):
 *
 *   capture ─▶ [capture queue] ─▶ encode ─▶ [send queue] ─▶ gRPC write
 *   gRPC read ─▶ [receive queue] ─▶ jitter buffer per sender ─▶ tick: decode + mix ─▶ [playback queue] ─▶ sink
 *
 * Every queue drops its oldest item when full and counts it, so a stalled stage delays nothing else.
 * @module
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { calling, type ClientREQ, type ServerRES } from '../proto.js';
import { END_REASON_KEY } from '../server/voice-server.js';
import { AudioDeviceError, DeviceCapture, DeviceSink, findAudioCommand, SilentCapture, WavPlayer, WavSink, type AudioSink, type CaptureSource } from './audio-io.js';
import { FrameClock } from './clock.js';
import { mix } from './mixer.js';
import { CodecError, FRAME_MS, OpusEncoder } from './opus.js';
import { SenderPlayout } from './playout.js';
import { BoundedQueue } from './queue.js';

/** Exit codes of `voice call`, one per way a call ends. */
export const ExitCode = {
  /** Left normally: `stop`, Ctrl+C, SIGTERM, `--duration` reached, or the input ended with `--exit-on-eof`. */
  Ok: 0,
  /** An unexpected error. */
  Failure: 1,
  /** Bad command line. */
  Usage: 2,
  /** The server refused the passcode (UNAUTHENTICATED). */
  Unauthenticated: 3,
  /** The server is full (RESOURCE_EXHAUSTED). */
  ServerFull: 4,
  /** The server could not be reached, or did not answer the connection test in time. */
  Unreachable: 5,
  /** The server ended the call (shutdown, crash, disconnection) after it had started. */
  ServerGone: 6,
  /** No audio program for the microphone or speakers, or an unreadable input/output file. */
  Audio: 7,
} as const;

/** One of {@link ExitCode}'s values. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** How a call is set up. */
export interface CallOptions {
  /** `host:port` of the voice server. */
  server: string;
  /** Display name sent with every frame. */
  name: string;
  /** Sent in metadata `passcode`. */
  passcode: string;
  /** Sent in metadata `room` when set. */
  room?: string;
  /** A WAV file played into the call from the start, instead of the microphone. */
  input?: string;
  /** A WAV file the call is written to (48 kHz mono, in real time), instead of the speakers. */
  output?: string;
  /** Send nothing from a microphone (a listener; `play` can still send files). */
  noMic?: boolean;
  /** Jitter buffer depth; default 60 ms. */
  jitterMs?: number;
  /**
   * Most audio a speaker's jitter buffer holds before dropping the oldest, bounding the delay a burst after
   * a stall can add; default 1000 ms more than `jitterMs`.
   */
  jitterMaxMs?: number;
  /** PEM file of the CA to trust: the call then uses TLS. */
  tlsCa?: string;
  /** Leave after this long. */
  durationMs?: number;
  /** Leave when the `--input` file is over (after its last frame was sent). */
  exitOnEof?: boolean;
  /** How long to wait for the echo of the connection test; default 5000 ms. */
  connectTimeoutMs?: number;
}

/** Where a call reads commands and writes its messages. */
export interface CallIo {
  /** Commands, one a line (`mute`, `unmute`, `deafen`, `undeafen`, `play <file.wav>`, `stop`). */
  commands?: Readable;
  /** Status lines (stdout in the CLI). */
  print: (line: string) => void;
  /** Error lines (stderr in the CLI). */
  error: (line: string) => void;
}

/** How a call ended. */
export interface CallResult {
  code: ExitCodeValue;
  message: string;
  stats: CallStats;
}

/** Counters over the whole call. */
export interface CallStats {
  framesCaptured: number;
  framesSent: number;
  framesReceived: number;
  /** Items dropped by the bounded queues because a stage fell behind, by queue. */
  queueDrops: { capture: number; send: number; receive: number; playback: number };
  /** Summed over all senders' jitter buffers (`concealed`: lost frames and dry ticks bridged). */
  late: number;
  duplicates: number;
  concealed: number;
  /** Dropped by a jitter buffer holding its maximum, or skipped over by a wide gap. */
  overflowed: number;
  undecodable: number;
}

interface Captured {
  seq: number;
  pcm: Int16Array;
}
interface Encoded {
  seq: number;
  packet: Uint8Array;
}
interface Received {
  id: string;
  name: string;
  seq: number;
  chunk: Uint8Array;
}
interface Sender {
  playout: SenderPlayout;
  speaking: boolean;
  idleTicks: number;
}

const QUEUE_FRAMES = 50; // one second of audio per queue
const FORGET_SENDER_TICKS = 30_000 / FRAME_MS; // a sender silent for 30 s frees its decoder
const HALF_CLOSE_GRACE_MS = 1000;
const DRAIN_GRACE_MS = 2000;

/** Human text for the statuses a call can end with before it started. */
function refusal(err: grpc.ServiceError): { code: ExitCodeValue; message: string } {
  switch (err.code) {
    case grpc.status.UNAUTHENTICATED:
      return { code: ExitCode.Unauthenticated, message: `the server refused the passcode (UNAUTHENTICATED: ${err.details})` };
    case grpc.status.RESOURCE_EXHAUSTED:
      return { code: ExitCode.ServerFull, message: `the server is full (RESOURCE_EXHAUSTED: ${err.details})` };
    case grpc.status.UNAVAILABLE:
    case grpc.status.DEADLINE_EXCEEDED:
      return { code: ExitCode.Unreachable, message: `the server cannot be reached (${grpc.status[err.code]}: ${err.details})` };
    default:
      return { code: ExitCode.Failure, message: `the call failed (${grpc.status[err.code] ?? err.code}: ${err.details})` };
  }
}

/**
 * A voice call. {@link Call.run} connects, runs until the call ends and resolves with the exit code; it never
 * rejects. {@link Call.stop} (Ctrl+C, SIGTERM) and the `stop` command leave cleanly: what was captured is sent,
 * the stream is half-closed, the output WAV is finalized and fsynced.
 */
export class Call {
  readonly #opts: CallOptions;
  readonly #io: CallIo;
  readonly #targetFrames: number;
  readonly #maxFrames: number;
  #seq = 0;
  #muted = false;
  #deafened = false;
  #overlay: WavPlayer | undefined;
  #overlayIsInput = false;
  #stream: grpc.ClientDuplexStream<ClientREQ, ServerRES> | undefined;
  #client: grpc.Client | undefined;
  #streamDone = false;
  #capture: CaptureSource | undefined;
  #sink: AudioSink | undefined;
  #clock: FrameClock | undefined;
  #encoder: OpusEncoder | undefined;
  readonly #senders = new Map<string, Sender>();
  readonly #captureQ = new BoundedQueue<Captured>(QUEUE_FRAMES);
  readonly #sendQ = new BoundedQueue<Encoded>(QUEUE_FRAMES);
  readonly #receiveQ = new BoundedQueue<Received>(QUEUE_FRAMES * 4);
  readonly #playbackQ = new BoundedQueue<Int16Array>(QUEUE_FRAMES);
  readonly #stages: Promise<void>[] = [];
  #ending: Promise<CallResult> | undefined;
  #finished!: (r: CallResult) => void;
  readonly #result: Promise<CallResult>;
  readonly #stats: CallStats = {
    framesCaptured: 0,
    framesSent: 0,
    framesReceived: 0,
    queueDrops: { capture: 0, send: 0, receive: 0, playback: 0 },
    late: 0,
    duplicates: 0,
    concealed: 0,
    overflowed: 0,
    undecodable: 0,
  };
  #timers: NodeJS.Timeout[] = [];

  constructor(options: CallOptions, io: CallIo) {
    this.#opts = options;
    this.#io = io;
    this.#targetFrames = Math.max(1, Math.round((options.jitterMs ?? 60) / FRAME_MS));
    this.#maxFrames = Math.max(this.#targetFrames, Math.round((options.jitterMaxMs ?? (options.jitterMs ?? 60) + 1000) / FRAME_MS));
    this.#result = new Promise((resolve) => (this.#finished = resolve));
  }

  /** Runs the call to its end. */
  async run(): Promise<CallResult> {
    try {
      this.#prepareAudio();
      // Compiling the codec's WebAssembly takes a moment: done before connecting, not while audio arrives.
      this.#encoder = new OpusEncoder();
    } catch (err) {
      return this.stop(ExitCode.Audio, (err as Error).message);
    }
    const connected = await this.#connect();
    // A signal during the connection test has already ended the call.
    if (connected && !this.#ending) {
      try {
        this.#sink = this.#opts.output ? new WavSink(this.#opts.output) : this.#deviceSink();
      } catch (err) {
        void this.stop(ExitCode.Audio, `cannot open the output: ${(err as Error).message}`);
        return this.#result;
      }
      this.#startPipelines();
    }
    return this.#result;
  }

  /** Leaves the call (idempotent); resolves when everything is flushed and closed. */
  stop(code: ExitCodeValue = ExitCode.Ok, message = 'left the call'): Promise<CallResult> {
    this.#ending ??= this.#shutdown(code, message);
    return this.#ending;
  }

  /** Runs one command line; unknown commands are reported, never fatal. */
  command(line: string): void {
    const text = line.trim();
    const verb = text.split(/\s+/, 1)[0] ?? '';
    switch (verb.toLowerCase()) {
      case '':
        return;
      case 'mute':
        this.#muted = true;
        return this.#io.print(`muted at frame ${this.#seq}`);
      case 'unmute':
        this.#muted = false;
        return this.#io.print(`unmuted at frame ${this.#seq}`);
      case 'deafen':
        this.#deafened = true;
        return this.#io.print('deafened');
      case 'undeafen':
        this.#deafened = false;
        return this.#io.print('undeafened');
      case 'play': {
        const path = text.slice(verb.length).trim();
        if (!path) return this.#io.error('usage: play <file.wav>');
        try {
          this.#overlay = new WavPlayer(path);
          this.#overlayIsInput = false;
          return this.#io.print(`playing ${path}`);
        } catch (err) {
          return this.#io.error(`cannot play ${path}: ${(err as Error).message}`);
        }
      }
      case 'stop':
        void this.stop(ExitCode.Ok, 'stopped');
        return;
      default:
        this.#io.error(`unknown command "${verb}" (commands: mute, unmute, deafen, undeafen, play <file.wav>, stop)`);
    }
  }

  #prepareAudio(): void {
    if (this.#opts.input) {
      try {
        this.#overlay = new WavPlayer(this.#opts.input);
      } catch (err) {
        throw new AudioDeviceError(`cannot read the input ${this.#opts.input}: ${(err as Error).message}`);
      }
      this.#overlayIsInput = true;
      this.#capture = new SilentCapture();
    } else if (this.#opts.noMic) {
      this.#capture = new SilentCapture();
    } else {
      const command = findAudioCommand('capture');
      if (!command) throw new AudioDeviceError('no microphone program found: install arecord (alsa-utils) or sox, or use --input file.wav or --no-mic');
      this.#capture = new DeviceCapture(command);
    }
    if (!this.#opts.output && !findAudioCommand('playback')) {
      throw new AudioDeviceError('no speaker program found: install aplay (alsa-utils) or sox, or use --output file.wav');
    }
  }

  #deviceSink(): AudioSink {
    const command = findAudioCommand('playback');
    if (!command) throw new AudioDeviceError('no speaker program found');
    return new DeviceSink(command, (err) => void this.stop(ExitCode.Audio, err.message));
  }

  /** Opens the stream and runs the connection test; false when the call ended instead. */
  async #connect(): Promise<boolean> {
    let credentials: grpc.ChannelCredentials;
    try {
      credentials = this.#opts.tlsCa ? grpc.credentials.createSsl(readFileSync(this.#opts.tlsCa)) : grpc.credentials.createInsecure();
    } catch (err) {
      await this.stop(ExitCode.Usage, `cannot read the CA file ${this.#opts.tlsCa}: ${(err as Error).message}`);
      return false;
    }
    const client = new calling.Client(this.#opts.server, credentials);
    this.#client = client;
    const md = new grpc.Metadata();
    md.set('passcode', this.#opts.passcode);
    if (this.#opts.room) md.set('room', this.#opts.room);
    const stream = client.VoIP(md);
    this.#stream = stream;
    // Errors are read from the 'status' event (and, during the test, below); without a listener grpc-js's
    // 'error' event would be thrown, e.g. by the cancel at shutdown.
    stream.on('error', () => {});

    const outcome = await new Promise<{ ok: true } | { ok: false; code: ExitCodeValue; message: string }>((resolve) => {
      const timeoutMs = this.#opts.connectTimeoutMs ?? 5000;
      const timer = setTimeout(() => done({ ok: false, code: ExitCode.Unreachable, message: `the server did not answer the connection test within ${timeoutMs} ms` }), timeoutMs);
      const done = (r: { ok: true } | { ok: false; code: ExitCodeValue; message: string }): void => {
        clearTimeout(timer);
        stream.off('data', onData);
        stream.off('error', onError);
        stream.off('end', onEnd);
        resolve(r);
      };
      // Frames forwarded before the echo are dropped: playback starts with the call.
      const onData = (res: ServerRES): void => {
        if (res.signal) done({ ok: true });
      };
      const onError = (err: grpc.ServiceError): void => done({ ok: false, ...refusal(err) });
      const onEnd = (): void => done({ ok: false, code: ExitCode.ServerGone, message: 'the server ended the call during the connection test' });
      stream.on('data', onData);
      stream.on('error', onError);
      stream.on('end', onEnd);
      stream.write({ signal: {} });
    });
    if (!outcome.ok) {
      this.#streamDone = true;
      await this.stop(outcome.code, outcome.message);
      return false;
    }
    stream.on('data', (res: ServerRES) => this.#onServerMessage(res));
    stream.on('status', (status: grpc.StatusObject) => this.#onStreamStatus(status));
    this.#io.print(`connected to ${this.#opts.server} as ${this.#opts.name}${this.#opts.room ? ` in room ${this.#opts.room}` : ''}`);
    return true;
  }

  #onStreamStatus(status: grpc.StatusObject): void {
    this.#streamDone = true;
    if (this.#ending) return;
    const reason = status.metadata.get(END_REASON_KEY)[0];
    const detail = status.code === grpc.status.OK ? (reason ? `the server ended the call (${reason})` : 'the server ended the call') : `the server ended the call (${grpc.status[status.code] ?? status.code}: ${status.details})`;
    void this.stop(ExitCode.ServerGone, detail);
  }

  #onServerMessage(res: ServerRES): void {
    const msg = res.message?.msg;
    if (!res.message || !msg || msg.chunk.byteLength === 0) return;
    this.#stats.framesReceived++;
    this.#receiveQ.push({ id: res.message.id, name: msg.name, seq: msg.seq, chunk: msg.chunk });
  }

  #startPipelines(): void {
    for (const stage of [this.#encodeStage(), this.#sendStage(), this.#jitterStage(), this.#playbackStage()]) {
      this.#stages.push(stage.catch((err: Error) => void this.stop(ExitCode.Failure, `internal error: ${err.stack ?? err.message}`)));
    }
    this.#clock = new FrameClock(() => this.#tick(), { maxCatchUp: 250 });
    this.#clock.start();
    this.#capture?.start(
      (pcm) => this.#onCaptured(pcm),
      (err) => void this.stop(ExitCode.Audio, err.message),
    );
    if (this.#opts.durationMs !== undefined) this.#timers.push(setTimeout(() => void this.stop(ExitCode.Ok, 'duration reached'), this.#opts.durationMs));
    if (this.#opts.input) this.#io.print(`playing ${this.#opts.input}`);
    if (this.#io.commands) {
      const rl = createInterface({ input: this.#io.commands, terminal: false });
      rl.on('line', (line) => this.command(line));
      void this.#result.then(() => rl.close());
    }
  }

  /** One capture period: the counter advances whether or not anything is sent (muted, no input). */
  #onCaptured(pcm: Int16Array | null): void {
    if (this.#ending) return;
    const seq = ++this.#seq;
    let frame = pcm;
    if (this.#overlay) {
      const next = this.#overlay.next();
      if (next) frame = next;
      else {
        this.#io.print(`input ended: ${this.#overlay.path}`);
        const wasInput = this.#overlayIsInput;
        this.#overlay = undefined;
        if (wasInput && this.#opts.exitOnEof) void this.stop(ExitCode.Ok, 'input ended');
      }
    }
    if (!frame || this.#muted) return;
    this.#stats.framesCaptured++;
    this.#captureQ.push({ seq, pcm: frame });
  }

  async #encodeStage(): Promise<void> {
    for (let item = await this.#captureQ.shift(); item; item = await this.#captureQ.shift()) {
      try {
        this.#sendQ.push({ seq: item.seq, packet: this.#encoder!.encode(item.pcm) });
      } catch (err) {
        if (!(err instanceof CodecError)) throw err;
        this.#io.error(`encode failed, frame ${item.seq} dropped: ${err.message}`);
      }
    }
    this.#sendQ.close();
  }

  async #sendStage(): Promise<void> {
    const stream = this.#stream!;
    for (let item = await this.#sendQ.shift(); item; item = await this.#sendQ.shift()) {
      if (this.#streamDone) continue;
      const ok = stream.write({ message: { chunk: Buffer.from(item.packet), name: this.#opts.name, seq: item.seq } });
      this.#stats.framesSent++;
      if (!ok) await this.#drained(stream);
    }
  }

  /** Resolves when gRPC wants more, or when the stream is over (a dead stream never drains). */
  #drained(stream: grpc.ClientDuplexStream<ClientREQ, ServerRES>): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        stream.off('drain', done);
        stream.off('status', done);
        resolve();
      };
      stream.on('drain', done);
      stream.on('status', done);
    });
  }

  async #jitterStage(): Promise<void> {
    for (let r = await this.#receiveQ.shift(); r; r = await this.#receiveQ.shift()) {
      let sender = this.#senders.get(r.id);
      if (!sender) {
        const playout = new SenderPlayout(r.name || r.id, { targetFrames: this.#targetFrames, maxFrames: this.#maxFrames });
        sender = { playout, speaking: false, idleTicks: 0 };
        this.#senders.set(r.id, sender);
      }
      sender.playout.push(r.seq, r.chunk);
    }
  }

  /** One playback period: every sender's next 20 ms (decoded or concealed), mixed, queued for the sink. */
  #tick(): void {
    const frames: Int16Array[] = [];
    for (const [id, s] of this.#senders) {
      const frame = s.playout.next();
      if (!frame) {
        if (s.speaking) {
          s.speaking = false;
          this.#io.print(`${s.playout.name} stopped speaking`);
        }
        if (++s.idleTicks > FORGET_SENDER_TICKS && s.playout.buffered === 0) this.#forget(id, s);
        continue;
      }
      s.idleTicks = 0;
      if (!s.speaking) {
        s.speaking = true;
        this.#io.print(`${s.playout.name} is speaking`);
      }
      frames.push(frame);
    }
    this.#playbackQ.push(mix(this.#deafened ? [] : frames));
  }

  #forget(id: string, s: Sender): void {
    const j = s.playout.stats;
    this.#stats.late += j.late;
    this.#stats.duplicates += j.duplicates;
    this.#stats.concealed += j.concealed + j.stretched;
    this.#stats.overflowed += j.overflowed + j.skipped;
    this.#stats.undecodable += s.playout.undecodable;
    s.playout.close();
    this.#senders.delete(id);
  }

  async #playbackStage(): Promise<void> {
    for (let f = await this.#playbackQ.shift(); f; f = await this.#playbackQ.shift()) await this.#sink?.write(f);
  }

  async #shutdown(code: ExitCodeValue, message: string): Promise<CallResult> {
    for (const t of this.#timers) clearTimeout(t);
    this.#capture?.stop();
    this.#clock?.stop();
    // Drain in pipeline order: what was captured is encoded and sent before the stream is half-closed.
    this.#captureQ.close();
    this.#receiveQ.close();
    this.#playbackQ.close();
    if (this.#stages.length === 0) this.#sendQ.close();
    // Bounded: a server that stopped reading (or a wedged sound card) must not hold the exit; the cancel
    // below then ends the stream, which releases a send stage waiting for 'drain'.
    let drainTimer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(this.#stages), new Promise((resolve) => (drainTimer = setTimeout(resolve, DRAIN_GRACE_MS)))]);
    clearTimeout(drainTimer);
    const stream = this.#stream;
    if (stream && !this.#streamDone) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, HALF_CLOSE_GRACE_MS);
        stream.once('status', () => {
          clearTimeout(timer);
          resolve();
        });
        stream.end();
      });
    }
    stream?.cancel();
    this.#client?.close();
    try {
      await this.#sink?.close();
    } catch (err) {
      this.#io.error(`closing the output failed: ${(err as Error).message}`);
    }
    this.#encoder?.close();
    for (const [id, s] of this.#senders) this.#forget(id, s);
    this.#stats.queueDrops = { capture: this.#captureQ.dropped, send: this.#sendQ.dropped, receive: this.#receiveQ.dropped, playback: this.#playbackQ.dropped };
    const result: CallResult = { code, message, stats: { ...this.#stats } };
    this.#finished(result);
    return result;
  }
}
