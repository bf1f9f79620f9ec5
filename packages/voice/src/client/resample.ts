/**
 * Sample-rate conversion for whole buffers (WAV files to and from the 48 kHz the codec runs at).
 *
 * Band-limited interpolation with a Blackman-windowed sinc: each output sample is a weighted sum of the input
 * samples within 16 zero crossings of the kernel on either side. The cutoff is 92 % of the lower Nyquist
 * frequency, so downsampling does not alias and upsampling does not image, at the cost of a little of the top
 * band (speech has nothing there that matters). Linear interpolation would be cheaper but folds everything above
 * the new Nyquist back into the band, which is audible on sibilants. The kernel is tabulated (512 steps per input
 * sample, linearly interpolated) so converting ten seconds takes a few tens of milliseconds.
 * @module
 */

const ZERO_CROSSINGS = 16;
const ROLLOFF = 0.92;
const TABLE_STEPS = 512;

/** Thrown for a rate that is not a positive integer. */
export class SampleRateError extends Error {
  override readonly name = 'SampleRateError';
}

/** Converts mono samples from `fromRate` to `toRate` (both in Hz); returns the input itself when they are equal. */
export function resample(input: Int16Array, fromRate: number, toRate: number): Int16Array {
  for (const rate of [fromRate, toRate]) {
    if (!Number.isInteger(rate) || rate <= 0) throw new SampleRateError(`invalid sample rate ${rate}`);
  }
  if (fromRate === toRate || input.length === 0) return input;
  const step = fromRate / toRate; // input samples per output sample
  // Cutoff in cycles per input sample.
  const fc = 0.5 * Math.min(1, toRate / fromRate) * ROLLOFF;
  const halfWidth = ZERO_CROSSINGS / (2 * fc); // in input samples
  const table = kernelTable(fc, halfWidth);
  const outLength = Math.floor((input.length * toRate) / fromRate);
  const out = new Int16Array(outLength);
  for (let j = 0; j < outLength; j++) {
    const x = j * step;
    const first = Math.max(0, Math.ceil(x - halfWidth));
    const last = Math.min(input.length - 1, Math.floor(x + halfWidth));
    let acc = 0;
    let weights = 0;
    for (let k = first; k <= last; k++) {
      const pos = Math.abs(x - k) * TABLE_STEPS;
      const i = Math.floor(pos);
      const frac = pos - i;
      const w = i + 1 < table.length ? table[i] + (table[i + 1] - table[i]) * frac : 0;
      acc += input[k] * w;
      weights += w;
    }
    // Dividing by the summed weights keeps the gain at exactly 1 for DC, also near the edges of the buffer.
    const v = weights > 0 ? acc / weights : 0;
    out[j] = v > 32767 ? 32767 : v < -32768 ? -32768 : Math.round(v);
  }
  return out;
}

/** h(t) for t in [0, halfWidth] in steps of 1/TABLE_STEPS: 2·fc·sinc(2·fc·t) times a Blackman window. */
function kernelTable(fc: number, halfWidth: number): Float64Array {
  const n = Math.ceil(halfWidth * TABLE_STEPS) + 2;
  const table = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / TABLE_STEPS;
    if (t >= halfWidth) break;
    const a = 2 * Math.PI * fc * t;
    const sinc = t === 0 ? 1 : Math.sin(a) / a;
    const u = 0.5 + t / (2 * halfWidth); // window position in [0.5, 1] for t in [0, halfWidth]
    const window = 0.42 - 0.5 * Math.cos(2 * Math.PI * u) + 0.08 * Math.cos(4 * Math.PI * u);
    table[i] = 2 * fc * sinc * window;
  }
  return table;
}
