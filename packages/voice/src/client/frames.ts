/**
 * Cutting audio into 20 ms frames: a streaming slicer for raw capture bytes (a pipe delivers any number of
 * bytes, possibly splitting a sample) and a whole-buffer one for files.
 * @module
 */
import { FRAME_SAMPLES } from './opus.js';

/** Accumulates raw little-endian 16-bit mono bytes and hands out complete frames. */
export class FrameSlicer {
  #pending: Buffer = Buffer.alloc(0);

  /** Adds bytes; returns every frame now complete, oldest first. */
  push(bytes: Uint8Array): Int16Array[] {
    const all = this.#pending.byteLength ? Buffer.concat([this.#pending, bytes]) : Buffer.from(bytes);
    const frameBytes = FRAME_SAMPLES * 2;
    const frames: Int16Array[] = [];
    let at = 0;
    for (; at + frameBytes <= all.byteLength; at += frameBytes) {
      const frame = new Int16Array(FRAME_SAMPLES);
      for (let i = 0; i < FRAME_SAMPLES; i++) frame[i] = all.readInt16LE(at + i * 2);
      frames.push(frame);
    }
    this.#pending = Buffer.from(all.subarray(at));
    return frames;
  }
}

/** Cuts samples into frames; the last one is padded with silence. */
export function framesOf(samples: Int16Array): Int16Array[] {
  const frames: Int16Array[] = [];
  for (let at = 0; at < samples.length; at += FRAME_SAMPLES) {
    const frame = new Int16Array(FRAME_SAMPLES);
    frame.set(samples.subarray(at, at + FRAME_SAMPLES));
    frames.push(frame);
  }
  return frames;
}
