/**
 * Mixing the speakers of one 20 ms tick into one frame.
 *
 * Summing voices can exceed the 16-bit range. Hard clipping there would square off the peaks (harsh, and it
 * happens exactly when several people talk at once), and scaling the whole frame down makes the level pump from
 * frame to frame. Instead a soft knee: below 75 % of full scale the sum passes unchanged (one speaker is never
 * altered), above it the excess is compressed with tanh, so the curve stays continuous, monotonic and below full
 * scale however many voices add up.
 * @module
 */
import { FRAME_SAMPLES } from './opus.js';

const FULL_SCALE = 32767;
/** Where the soft knee starts; sums below pass unchanged. */
export const KNEE = 24576;

/** The limiter curve applied to one summed sample. */
export function softLimit(x: number): number {
  const a = Math.abs(x);
  if (a <= KNEE) return x;
  const room = FULL_SCALE - KNEE;
  const y = KNEE + room * Math.tanh((a - KNEE) / room);
  return Math.sign(x) * y;
}

/** Mixes frames of {@link FRAME_SAMPLES} samples (none: silence) into a new frame. */
export function mix(frames: readonly Int16Array[]): Int16Array {
  const out = new Int16Array(FRAME_SAMPLES);
  if (frames.length === 0) return out;
  if (frames.length === 1) {
    out.set(frames[0].subarray(0, FRAME_SAMPLES));
    return out;
  }
  for (let i = 0; i < FRAME_SAMPLES; i++) {
    let sum = 0;
    for (const f of frames) sum += f[i] ?? 0;
    out[i] = Math.round(softLimit(sum));
  }
  return out;
}
