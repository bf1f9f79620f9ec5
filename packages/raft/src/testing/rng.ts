/**
 * A seeded pseudo-random generator (sfc32, seeded through splitmix32). One `Rng` per simulation drives
 * every random choice, so a seed replays a run exactly, in Node and in browsers alike.
 * @module
 */

const TWO_32 = 4294967296;

/** One splitmix32 step: spreads the bits of a small or patterned seed over the whole word. */
function splitmix32(state: number): number {
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A deterministic random stream: the same seed always yields the same sequence. */
export class Rng {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  /** `seed` is any safe integer; seeds differing only above bit 32 still give different streams. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`Rng seed must be a safe integer, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_32) >>> 0;
    let s = (lo ^ Math.imul(hi, 0x9e3779b1)) >>> 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      s = (s + 0x9e3779b9) >>> 0;
      words.push(splitmix32(s));
    }
    this.seedWords(words);
  }

  private seedWords(w: readonly number[]): void {
    [this.a, this.b, this.c, this.d] = [w[0] | 0, w[1] | 0, w[2] | 0, w[3] | 1];
    // sfc32's first outputs still echo the seed words; burning a few decorrelates neighbouring seeds.
    for (let i = 0; i < 12; i++) this.uint32();
  }

  /** A uniformly random 32-bit unsigned integer. */
  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.uint32() / TWO_32;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0 || n > TWO_32) throw new RangeError(`Rng.int needs an integer in [1, 2^32], got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** An integer in [min, max], both inclusive. */
  range(min: number, max: number): number {
    if (max < min) throw new RangeError(`Rng.range: max ${max} is below min ${min}`);
    return min + this.int(max - min + 1);
  }

  /** True with probability `p`; `chance(0)` never draws true and `chance(1)` always does. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Rng.pick needs a non-empty array');
    return items[this.int(items.length)];
  }

  /**
   * A new stream seeded from this one. Giving each consumer its own fork keeps their draws apart: one
   * consumer drawing more or fewer numbers does not shift the other's sequence.
   */
  fork(): Rng {
    const child = new Rng(0);
    child.seedWords([this.uint32(), this.uint32(), this.uint32(), this.uint32()]);
    return child;
  }
}
