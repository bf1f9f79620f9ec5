/**
 * WAV files: a reader for 16-bit PCM (any rate, mono or stereo, downmixed to mono) and a streaming writer whose
 * header sizes are fixed when it closes, so a call written in real time is a valid file once the client leaves.
 * @module
 */
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';

/** Thrown when bytes are not a WAV file this client can read (only 16-bit integer PCM is supported). */
export class WavFormatError extends Error {
  override readonly name = 'WavFormatError';
}

/** Decoded audio: mono 16-bit samples at `sampleRate`. */
export interface PcmAudio {
  sampleRate: number;
  samples: Int16Array;
}

const HEADER_BYTES = 44;
const FORMAT_PCM = 1;
const FORMAT_EXTENSIBLE = 0xfffe;

/**
 * Parses a RIFF/WAVE file holding 16-bit PCM. Stereo (or more channels) is averaged to mono. Unknown chunks
 * (LIST, fact…) are skipped; a data chunk longer than the file, as streaming writers leave behind when they
 * are killed, is read up to the end of the file.
 */
export function parseWav(bytes: Uint8Array): PcmAudio {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number): string => String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
  if (bytes.byteLength < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new WavFormatError('not a RIFF/WAVE file');
  let at = 12;
  let fmt: { channels: number; sampleRate: number; bits: number } | undefined;
  while (at + 8 <= bytes.byteLength) {
    const id = tag(at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.byteLength) throw new WavFormatError('truncated fmt chunk');
      const format = view.getUint16(body, true);
      const channels = view.getUint16(body + 2, true);
      const sampleRate = view.getUint32(body + 4, true);
      const bits = view.getUint16(body + 14, true);
      if (format !== FORMAT_PCM && format !== FORMAT_EXTENSIBLE) throw new WavFormatError(`unsupported WAV format ${format} (only integer PCM)`);
      if (bits !== 16) throw new WavFormatError(`unsupported sample size ${bits} bits (only 16)`);
      if (channels < 1 || sampleRate < 1) throw new WavFormatError(`invalid fmt chunk (${channels} channels, ${sampleRate} Hz)`);
      fmt = { channels, sampleRate, bits };
    } else if (id === 'data') {
      if (!fmt) throw new WavFormatError('data chunk before fmt chunk');
      const end = Math.min(body + size, bytes.byteLength);
      const frames = Math.floor((end - body) / (2 * fmt.channels));
      const samples = new Int16Array(frames);
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (let c = 0; c < fmt.channels; c++) sum += view.getInt16(body + (i * fmt.channels + c) * 2, true);
        samples[i] = Math.round(sum / fmt.channels);
      }
      return { sampleRate: fmt.sampleRate, samples };
    }
    at = body + size + (size & 1);
  }
  throw new WavFormatError(fmt ? 'no data chunk' : 'no fmt chunk');
}

/** Reads and parses a WAV file (see {@link parseWav}). */
export function readWavFile(path: string): PcmAudio {
  return parseWav(readFileSync(path));
}

/** A data size meaning "up to the end of the file", as streaming writers use before they know the length. */
const UNKNOWN_SIZE = 0xffffffff;

/** The 44-byte header of a mono 16-bit PCM WAV file holding `dataBytes` bytes of samples. */
export function wavHeader(sampleRate: number, dataBytes: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(dataBytes === UNKNOWN_SIZE ? UNKNOWN_SIZE : 36 + dataBytes, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(FORMAT_PCM, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/** Encodes mono samples as a complete WAV file. */
export function encodeWav(audio: PcmAudio): Buffer {
  const data = Buffer.from(audio.samples.buffer, audio.samples.byteOffset, audio.samples.byteLength);
  return Buffer.concat([wavHeader(audio.sampleRate, data.byteLength), data]);
}

/**
 * Writes a mono 16-bit WAV file as samples come. The header is written first with the sizes "unknown"
 * (0xFFFFFFFF: readers such as {@link parseWav}, sox and ffmpeg then read to the end of the file, so even a
 * killed client leaves a usable file) and rewritten with the real sizes by {@link WavWriter.close}, which also
 * fsyncs, so the file on disk is complete once `close` returns. Writes are synchronous: a frame is under 2 KB.
 */
export class WavWriter {
  readonly #fd: number;
  readonly #sampleRate: number;
  #dataBytes = 0;
  #closed = false;

  /** Creates (or truncates) `path`. */
  constructor(path: string, sampleRate: number) {
    this.#fd = openSync(path, 'w');
    this.#sampleRate = sampleRate;
    writeSync(this.#fd, wavHeader(sampleRate, UNKNOWN_SIZE));
  }

  /** Samples written so far. */
  get samplesWritten(): number {
    return this.#dataBytes / 2;
  }

  /** Appends samples; ignored after `close`. */
  write(samples: Int16Array): void {
    if (this.#closed) return;
    const bytes = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
    writeSync(this.#fd, bytes);
    this.#dataBytes += bytes.byteLength;
  }

  /** Fixes the header sizes, fsyncs and closes; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    writeSync(this.#fd, wavHeader(this.#sampleRate, this.#dataBytes), 0, HEADER_BYTES, 0);
    fsyncSync(this.#fd);
    closeSync(this.#fd);
  }
}
