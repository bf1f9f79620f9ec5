// Audio comparison for the client tests: short-time RMS envelopes and normalized cross-correlation.
// Envelopes, not waveforms, because Opus is a perceptual codec and a mix adds other voices: what must survive
// is when and how loud each voice is.

/** RMS of consecutive windows of `windowSamples` samples. */
export function envelope(samples: Int16Array, windowSamples: number): Float64Array {
  const n = Math.floor(samples.length / windowSamples);
  const out = new Float64Array(n);
  for (let w = 0; w < n; w++) {
    let s = 0;
    for (let i = w * windowSamples; i < (w + 1) * windowSamples; i++) s += samples[i] * samples[i];
    out[w] = Math.sqrt(s / windowSamples);
  }
  return out;
}

/** Pearson correlation of `a` with `b[lag … lag + a.length)`; 0 when either side is constant. */
export function correlationAt(a: ArrayLike<number>, b: ArrayLike<number>, lag: number): number {
  let sa = 0;
  let sb = 0;
  const n = a.length;
  for (let i = 0; i < n; i++) {
    sa += a[i];
    sb += b[lag + i] ?? 0;
  }
  const ma = sa / n;
  const mb = sb / n;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i] - ma;
    const y = (b[lag + i] ?? 0) - mb;
    num += x * y;
    da += x * x;
    db += y * y;
  }
  return da > 0 && db > 0 ? num / Math.sqrt(da * db) : 0;
}

/** The lag (in windows) where `needle` matches `haystack` best, and how well. */
export function bestMatch(needle: ArrayLike<number>, haystack: ArrayLike<number>): { lag: number; r: number } {
  let best = { lag: 0, r: -1 };
  for (let lag = 0; lag + needle.length <= haystack.length; lag++) {
    const r = correlationAt(needle, haystack, lag);
    if (r > best.r) best = { lag, r };
  }
  return best;
}
