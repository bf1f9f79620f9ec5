/**
 * Where audio comes from and goes to: the sound card through `arecord`/`aplay` (ALSA) or `sox`, whichever is
 * installed, or WAV files. Devices run as child processes exchanging raw 48 kHz mono S16_LE on pipes, so no
 * native addon is needed.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { FrameClock } from './clock.js';
import { FrameSlicer, framesOf } from './frames.js';
import { SAMPLE_RATE } from './opus.js';
import { resample } from './resample.js';
import { readWavFile, WavWriter } from './wav.js';

/** Thrown when no capture or playback program is installed, or one fails. */
export class AudioDeviceError extends Error {
  override readonly name = 'AudioDeviceError';
}

/** A program and its arguments. */
export interface Command {
  program: string;
  args: string[];
}

const RAW = ['-r', String(SAMPLE_RATE), '-e', 'signed-integer', '-b', '16', '-c', '1'];
const CAPTURE: Record<string, string[]> = {
  arecord: ['-q', '-f', 'S16_LE', '-r', String(SAMPLE_RATE), '-c', '1', '-t', 'raw'],
  sox: ['-q', '-d', '-t', 'raw', ...RAW, '-'],
};
const PLAYBACK: Record<string, string[]> = {
  aplay: ['-q', '-f', 'S16_LE', '-r', String(SAMPLE_RATE), '-c', '1', '-t', 'raw'],
  sox: ['-q', '-t', 'raw', ...RAW, '-', '-d'],
};

/** Whether `program` is an executable on `PATH`. */
export function onPath(program: string, path = process.env.PATH ?? ''): boolean {
  return path.split(delimiter).some((dir) => {
    if (!dir) return false;
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The first installed capture ('capture') or playback ('playback') command, in order of preference; null if none. */
export function findAudioCommand(kind: 'capture' | 'playback', installed: (program: string) => boolean = (p) => onPath(p)): Command | null {
  const table = kind === 'capture' ? CAPTURE : PLAYBACK;
  for (const [program, args] of Object.entries(table)) if (installed(program)) return { program, args };
  return null;
}

/** Produces one 20 ms frame per period; `null` for a period with nothing captured. */
export interface CaptureSource {
  start(onFrame: (pcm: Int16Array | null) => void, onError: (err: Error) => void): void;
  stop(): void;
}

/** The microphone, through a capture program (see {@link findAudioCommand}); paced by the sound card. */
export class DeviceCapture implements CaptureSource {
  readonly #command: Command;
  #child: ChildProcess | undefined;

  constructor(command: Command) {
    this.#command = command;
  }

  start(onFrame: (pcm: Int16Array | null) => void, onError: (err: Error) => void): void {
    const slicer = new FrameSlicer();
    const child = spawn(this.#command.program, this.#command.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
    child.stdout.on('data', (d: Buffer) => {
      for (const frame of slicer.push(d)) onFrame(frame);
    });
    child.on('error', (err) => onError(new AudioDeviceError(`${this.#command.program}: ${err.message}`)));
    child.on('exit', (code, signal) => {
      if (this.#child === child) onError(new AudioDeviceError(`${this.#command.program} exited (${signal ?? code}): ${stderr.trim() || 'no message'}`));
    });
  }

  stop(): void {
    const child = this.#child;
    this.#child = undefined;
    child?.kill('SIGTERM');
  }
}

/** No microphone: a clock that ticks every 20 ms with nothing, so files played into the call keep real time. */
export class SilentCapture implements CaptureSource {
  #clock: FrameClock | undefined;

  start(onFrame: (pcm: Int16Array | null) => void): void {
    this.#clock = new FrameClock(() => onFrame(null));
    this.#clock.start();
  }

  stop(): void {
    this.#clock?.stop();
  }
}

/** A WAV file's audio as 48 kHz frames, handed out one per tick. */
export class WavPlayer {
  readonly path: string;
  readonly #frames: Int16Array[];
  #at = 0;

  /** Reads and converts `path` (throws a `WavFormatError` or a file system error). */
  constructor(path: string) {
    const audio = readWavFile(path);
    this.path = path;
    this.#frames = framesOf(resample(audio.samples, audio.sampleRate, SAMPLE_RATE));
  }

  /** The next frame, or undefined once the file is over. */
  next(): Int16Array | undefined {
    return this.#frames[this.#at++];
  }
}

/** Where the mix goes, one 20 ms frame at a time. */
export interface AudioSink {
  /** Resolves when the sink can take more (a device pipe applies backpressure). */
  write(frame: Int16Array): Promise<void>;
  close(): Promise<void>;
}

/** A WAV file written as the call goes (see {@link WavWriter}). */
export class WavSink implements AudioSink {
  readonly #writer: WavWriter;

  constructor(path: string) {
    this.#writer = new WavWriter(path, SAMPLE_RATE);
  }

  write(frame: Int16Array): Promise<void> {
    this.#writer.write(frame);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#writer.close();
    return Promise.resolve();
  }
}

/** The speakers, through a playback program (see {@link findAudioCommand}). */
export class DeviceSink implements AudioSink {
  readonly #child: ChildProcess;
  readonly #program: string;
  #failure: Error | undefined;

  constructor(command: Command, onError: (err: Error) => void) {
    this.#program = command.program;
    this.#child = spawn(command.program, command.args, { stdio: ['pipe', 'ignore', 'ignore'] });
    const fail = (err: Error): void => {
      if (this.#failure) return;
      this.#failure = err;
      onError(err);
    };
    this.#child.on('error', (err) => fail(new AudioDeviceError(`${this.#program}: ${err.message}`)));
    this.#child.stdin?.on('error', (err) => fail(new AudioDeviceError(`${this.#program}: ${err.message}`)));
  }

  write(frame: Int16Array): Promise<void> {
    const stdin = this.#child.stdin;
    if (!stdin || this.#failure || stdin.destroyed) return Promise.resolve();
    if (stdin.write(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength))) return Promise.resolve();
    return new Promise((resolve) => {
      stdin.once('drain', resolve);
      stdin.once('close', resolve);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#child.exitCode !== null || this.#child.signalCode !== null) return resolve();
      this.#child.once('exit', () => resolve());
      this.#child.stdin?.end();
      // aplay drains what it has; do not hang the exit on a wedged sound card.
      setTimeout(() => this.#child.kill('SIGTERM'), 1000).unref();
    });
  }
}
